"""planning.workload_service: grid and worker workloads from the database, stored per grid version (grid_workload).

Every located thing that carries work — an open entity (patrols, the annual-report campaign), a task pushed in the
history window, an open task, a clue reported in the window — is placed SPATIALLY in the grids of the version asked
for: a point belongs to the grid of that version that covers it, the lowest code on a shared edge (the locator's
tie rule). Tasks lie at their entity's point, or their clue's. Things without a point carry no workload in space.
One function places them (`_placed`: the things in one query, then GEOS `covers` in bulk, as PostGIS ST_Covers
answers it) for both `grid_workloads` and `area_work`. So the same rule serves the active version and drafts, and `area_work` gives the redesign the very points (and
travel rates) whose sums the API later shows: for any grid, hours = Σ hours of the points it covers + area × rate
+ road length inside × rate (the consistency law).

Expected tasks are those of registrations and changes: campaign tasks (the annual-report reminders) are left out
of them, the campaign item counts that work.

Stored rows are current while the standards version, the day, and a cheap signature of the data (the change marks
of entities, tasks and clues, the addresses, the version's grids) are unchanged; otherwise they are computed in one
pass (three queries: the things, the grids, land and roads per grid) and stored in one upsert.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString
from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gis import clock
from gis.crs import METRIC_EPSG, lonlat_to_metric
from grids.codes import COMMUNITY_PATTERN, GRID_PATTERN, TOWN_PATTERN
from planning.errors import PlanNotFound
from planning.models import grid_workload, workload_setting
from planning.workload import (
    GridCounts,
    Standards,
    Workload,
    WorkloadItem,
    campaign_hours,
    clue_hours,
    combine,
    expected_task_hours,
    load_standards,
    open_task_hours,
    patrol_hours,
    recommended_workers,
    share,
    workload,
    workload_from_json,
    workload_to_json,
)
from supervision.calendar import SHANGHAI
from supervision.errors import InvalidInput, OutOfScope
from supervision.jobs import DailyJob
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES

# Every located thing that carries work, one row each: (kind, id, key, needs_licence, unfiled, geom). `key` is the
# duty of a task, the credit class of an entity. Bound parameters: :since, :at, :year_start, :open; the query that
# embeds it defines `box`, the bounding box of the grids asked for (only things inside it are looked at).
_ITEMS_SQL = """
    SELECT 'entity'::text AS kind, e.uscc::text AS id, e.credit_class::text AS key, e.needs_licence AS licence,
           (e.registered_on < :year_start
            AND (e.annual_report_filed_on IS NULL OR e.annual_report_filed_on < :year_start)) AS unfiled,
           e.geom
      FROM entity e WHERE e.status = 'open' AND e.geom && (SELECT b FROM box)
    UNION ALL
    SELECT 'task', t.id::text, t.duty::text, false, false, COALESCE(e.geom, c.geom)
      FROM task t LEFT JOIN entity e ON e.uscc = t.entity_uscc LEFT JOIN clue c ON c.id = t.clue_id
     WHERE t.kind = 'task' AND t.campaign IS NULL AND t.pushed_at > :since AND t.pushed_at <= :at
       AND COALESCE(e.geom, c.geom) && (SELECT b FROM box)
    UNION ALL
    SELECT 'open', t.id::text, t.duty::text, false, false, COALESCE(e.geom, c.geom)
      FROM task t LEFT JOIN entity e ON e.uscc = t.entity_uscc LEFT JOIN clue c ON c.id = t.clue_id
     WHERE t.status = ANY(:open) AND COALESCE(e.geom, c.geom) && (SELECT b FROM box)
    UNION ALL
    SELECT 'clue', c.id::text, ''::text, false, false, c.geom
      FROM clue c WHERE c.reported_at > :since AND c.reported_at <= :at AND c.geom && (SELECT b FROM box)
"""

# The items inside the bounding box of the grids asked for (all grids of the version when :codes is NULL), WGS84.
_ITEMS_IN_BOX_SQL = f"""
    WITH box AS (SELECT ST_Extent(geom)::geometry AS b FROM grid
                  WHERE version_id = :version_id AND (CAST(:codes AS text[]) IS NULL OR code = ANY(:codes))),
    items AS ({_ITEMS_SQL})
    SELECT kind, key, licence, unfiled, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM items
"""  # noqa: S608 - fixed SQL fragments; values are bound

# Every grid of the version that may cover a point of that box (a neighbour outside :codes may win a shared edge).
_GRIDS_IN_BOX_SQL = """
    WITH box AS (SELECT ST_Extent(geom)::geometry AS b FROM grid
                  WHERE version_id = :version_id AND (CAST(:codes AS text[]) IS NULL OR code = ANY(:codes)))
    SELECT g.code, ST_AsBinary(g.geom) FROM grid g, box WHERE g.version_id = :version_id AND g.geom && box.b
"""


# Land and road length (metric) of every grid of the version, or of :codes.
_TRAVEL_SQL = f"""
    WITH g AS (SELECT code, geom, ST_Transform(geom, {METRIC_EPSG}) AS gm FROM grid
                WHERE version_id = :version_id AND (CAST(:codes AS text[]) IS NULL OR code = ANY(:codes)))
    SELECT g.code, ST_Area(g.gm) AS area_m2,
           COALESCE((SELECT sum(ST_Length(ST_Intersection(ST_Transform(r.geom, {METRIC_EPSG}), g.gm)))
                       FROM road r WHERE ST_Intersects(r.geom, g.geom)), 0) AS road_m
      FROM g
"""  # noqa: S608 - fixed SQL fragments; values are bound


@dataclass(frozen=True)
class AreaWork:
    """What the grid redesign needs to place hours in space (metric EPSG:4547, metres).

    `points_xy`/`points_hours`: every located thing that carries work in the area's active grids (an open entity's
    patrols and campaign reminders, each task pushed in the window, each open task, each clue), one row each.
    `address_xy`: every ACTIVE standard address of the area, all levels (door, building and room rows alike: each is
    a row that changes grid when its grid changes), for the share of addresses that keep their grid.
    `roads`: the road lines clipped to the area. Travel is `area_m2 × hours_per_m2 + road_m × hours_per_road_m`.
    """

    points_xy: NDArray[np.float64]
    points_hours: NDArray[np.float64]
    address_xy: NDArray[np.float64]
    hours_per_m2: float
    hours_per_road_m: float
    roads: list[LineString]


CAPACITY_KEY = "field_hours_per_worker_month"


@dataclass(frozen=True)
class CapacitySetting:
    """The city's own monthly field capacity of one worker, over the standards file's, and who set it and why."""

    hours: float
    source: str
    set_by: str
    set_at: datetime


def city_standards(conn: Connection, *, path: Path | None = None) -> Standards:
    """The standards every service uses: the packaged file's numbers with the city's own capacity, when it set one."""
    standards = load_standards(path)
    setting = capacity_setting(conn)
    if setting is None:
        return standards
    return replace(standards, field_hours_per_worker_month=setting.hours)


def capacity_setting(conn: Connection) -> CapacitySetting | None:
    """The capacity the city set (None: the standards file's applies)."""
    row = conn.execute(
        select(
            workload_setting.c.value, workload_setting.c.source, workload_setting.c.set_by, workload_setting.c.set_at
        ).where(workload_setting.c.key == CAPACITY_KEY)
    ).first()
    return None if row is None else CapacitySetting(float(row[0]), str(row[1]), str(row[2]), row[3])


def set_capacity(conn: Connection, hours: float | None, *, source: str, actor_name: str) -> None:
    """Set the city's monthly field capacity of one worker (hours > 0), or clear it (None: the file's applies)."""
    if hours is None:
        conn.execute(workload_setting.delete().where(workload_setting.c.key == CAPACITY_KEY))
        return
    if not (hours > 0 and hours < 1000):
        raise InvalidInput(f"每人每月外勤承载量须大于 0 小时、小于 1000 小时，收到 {hours}", field="hours")
    if not source.strip():
        raise InvalidInput("请写明承载量的依据（如工时测定报告）", field="source")
    stmt = pg_insert(workload_setting).values(key=CAPACITY_KEY, value=hours, source=source, set_by=actor_name)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[workload_setting.c.key],
            set_={
                "value": stmt.excluded.value,
                "source": stmt.excluded.source,
                "set_by": stmt.excluded.set_by,
                "set_at": func.now(),
            },
        )
    )


def _moment(at: datetime | None) -> datetime:
    """The instant the workload is computed for (the platform's clock unless a test gives one)."""
    return at or clock.now()


def months_before(at: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the day clamped to the month's last day)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


def _window(at: datetime, standards: Standards) -> dict[str, Any]:
    """The bound parameters of the item query: the history window, the report year, the open states."""
    day = at.astimezone(SHANGHAI).date()
    return {
        "since": months_before(at, standards.months_of_history),
        "at": at,
        "year_start": date(day.year, 1, 1),
        "open": list(OPEN_STATUSES),
    }


def _version(conn: Connection, version_id: int | None) -> int:
    """The version asked for (None: the active one); PlanNotFound when there is none."""
    if version_id is None:
        found = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one_or_none()
        if found is None:
            raise PlanNotFound("没有生效的网格版本", reason="no_active_version")
        return int(found)
    if conn.execute(text("SELECT 1 FROM grid_version WHERE id = :v"), {"v": version_id}).first() is None:
        raise PlanNotFound(f"网格版本 {version_id} 不存在", reason="unknown_version")
    return version_id


def _basis(conn: Connection, version_id: int, at: datetime, standards: Standards) -> str:
    """A cheap signature of what a version's workloads depend on: the day, the standards, the data's change marks.

    The marks are the tile cache's data versions of entities, tasks and clues (bumped by triggers at commit, per
    town; migration 0008) with this transaction's own pending changes, the addresses' last change, and the
    version's grids (count and area). Territory marks are left out: storing workloads notes them for the tiles.
    """
    marks = conn.execute(
        text(
            """
            SELECT concat_ws('|',
              (SELECT string_agg(layer_group || ':' || town_code || ':' || version, ',' ORDER BY layer_group, town_code)
                 FROM data_version WHERE layer_group IN ('entities', 'tasks', 'clues')),
              (SELECT count(*) FROM data_version_pending
                WHERE xact = txid_current() AND layer_group IN ('entities', 'tasks', 'clues')),
              (SELECT max(updated_at) FROM address),
              (SELECT count(*) || ':' || round(sum(area_m2)::numeric, 3) FROM grid WHERE version_id = :v))
            """
        ),
        {"v": version_id},
    ).scalar_one()
    day = at.astimezone(SHANGHAI).date().isoformat()
    return hashlib.sha256(f"{standards.version}|{day}|{marks}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Placed:
    """Located things (one row each) with the grid of the version that covers each (lowest code on a shared edge)."""

    kind: NDArray[np.str_]
    key: NDArray[np.str_]
    licence: NDArray[np.bool_]
    unfiled: NDArray[np.bool_]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    grid: NDArray[np.object_]  # None where no grid of the version covers the point


def _placed(
    conn: Connection, version_id: int, codes: Sequence[str] | None, at: datetime, standards: Standards
) -> _Placed:
    """The things that carry work in the box of the grids asked for, each placed in its grid.

    The placement is GEOS `covers` (as PostGIS ST_Covers) in bulk: a tree of the points, queried with each grid
    (prepared); of the grids covering a point, the lowest code wins. Only grids asked for are kept in `grid`.
    """
    params = {"version_id": version_id, "codes": list(codes) if codes is not None else None}
    rows = conn.execute(text(_ITEMS_IN_BOX_SQL), {**params, **_window(at, standards)}).all()
    grids = sorted((str(code), bytes(wkb)) for code, wkb in conn.execute(text(_GRIDS_IN_BOX_SQL), params))
    lon = np.fromiter((r.lon for r in rows), dtype=np.float64, count=len(rows))
    lat = np.fromiter((r.lat for r in rows), dtype=np.float64, count=len(rows))
    grid = np.full(len(rows), None, dtype=object)
    if rows and grids:
        shapes = shapely.from_wkb([wkb for _, wkb in grids])
        shapely.prepare(shapes)
        grid_index, point_index = shapely.STRtree(shapely.points(lon, lat)).query(shapes, predicate="covers")
        # Grids are in code order: the first (lowest) index covering a point wins.
        order = np.lexsort((grid_index, point_index))
        point_index, grid_index = point_index[order], grid_index[order]
        first = np.r_[True, point_index[1:] != point_index[:-1]] if len(point_index) else np.zeros(0, dtype=bool)
        grid_codes = np.array([code for code, _ in grids], dtype=object)
        grid[point_index[first]] = grid_codes[grid_index[first]]
        if codes is not None:
            grid[~np.isin(grid, np.array(list(codes), dtype=object))] = None
    return _Placed(
        kind=np.array([r.kind for r in rows], dtype=np.str_),
        key=np.array([r.key for r in rows], dtype=np.str_),
        licence=np.array([bool(r.licence) for r in rows], dtype=np.bool_),
        unfiled=np.array([bool(r.unfiled) for r in rows], dtype=np.bool_),
        lon=lon,
        lat=lat,
        grid=grid,
    )


def _counts(
    conn: Connection, version_id: int, codes: Sequence[str] | None, at: datetime, standards: Standards
) -> dict[str, GridCounts]:
    """What every grid of the version (or of `codes`) holds: things placed spatially, land and roads per grid."""
    params = {"version_id": version_id, "codes": list(codes) if codes is not None else None}
    placed = _placed(conn, version_id, codes, at, standards)
    tasks: dict[str, dict[str, float]] = defaultdict(dict)
    open_tasks: dict[str, dict[str, float]] = defaultdict(dict)
    entities: dict[str, dict[tuple[str, bool], float]] = defaultdict(dict)
    unfiled: dict[str, float] = defaultdict(float)
    clues: dict[str, float] = defaultdict(float)
    tally = Counter(
        zip(placed.grid.tolist(), placed.kind.tolist(), placed.key.tolist(), placed.licence.tolist(),
            placed.unfiled.tolist(), strict=True)
    )  # fmt: skip
    for (code, kind, key, licence, is_unfiled), n in tally.items():
        if code is None:
            continue
        if kind == "entity":
            entities[code][(key, licence)] = entities[code].get((key, licence), 0.0) + n
            unfiled[code] += n if is_unfiled else 0
        elif kind == "task":
            tasks[code][key] = tasks[code].get(key, 0.0) + n
        elif kind == "open":
            open_tasks[code][key] = open_tasks[code].get(key, 0.0) + n
        else:
            clues[code] += n
    return {
        code: GridCounts(
            tasks_by_duty=tasks.get(code, {}),
            open_by_duty=open_tasks.get(code, {}),
            entities_by_class=entities.get(code, {}),
            unfiled_entities=unfiled.get(code, 0.0),
            clues=clues.get(code, 0.0),
            area_m2=float(area_m2),
            road_m=float(road_m),
        )
        for code, area_m2, road_m in conn.execute(text(_TRAVEL_SQL), params)
    }


def _store(conn: Connection, version_id: int, basis: str, standards: Standards, loads: dict[str, Workload]) -> int:
    """Upsert the workloads of a version's grids in one statement; the rows written."""
    if not loads:
        return 0
    codes = sorted(loads)
    conn.execute(
        text(
            """
            INSERT INTO grid_workload (version_id, grid_code, standards_version, hours, items, computed_at)
            SELECT :version_id, u.code, :sv, u.hours, u.items, :at
              FROM unnest(CAST(:codes AS text[]), CAST(:hours AS float8[]), CAST(:items AS jsonb[]))
                   AS u(code, hours, items)
            ON CONFLICT (version_id, grid_code) DO UPDATE
              SET standards_version = EXCLUDED.standards_version, hours = EXCLUDED.hours,
                  items = EXCLUDED.items, computed_at = EXCLUDED.computed_at
            """
        ),
        {
            "version_id": version_id,
            "sv": standards.version,
            "at": clock.now(),
            "codes": codes,
            "hours": [loads[c].hours for c in codes],
            "items": [json.dumps({"basis": basis, "items": workload_to_json(loads[c])}) for c in codes],
        },
    )
    # The map's grid tiles show hours per worker: note the active version's towns as changed, so cached tiles of
    # those towns are rebuilt (the tile cache's data versions, migration 0008; flushed when the transaction commits).
    conn.execute(
        text(
            """
            INSERT INTO data_version_pending (xact, layer_group, town_code)
            SELECT DISTINCT txid_current(), 'territory', g.town_code
              FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
             WHERE g.version_id = :version_id AND g.code = ANY(:codes)
            ON CONFLICT DO NOTHING
            """
        ),
        {"version_id": version_id, "codes": codes},
    )
    return len(codes)


def _compute(
    conn: Connection, version_id: int, codes: Sequence[str] | None, at: datetime, standards: Standards
) -> dict[str, Workload]:
    """The workloads of a version's grids (or of `codes`) computed from the data now."""
    day = at.astimezone(SHANGHAI).date()
    return {code: workload(c, standards, at=day) for code, c in _counts(conn, version_id, codes, at, standards).items()}


def refresh(
    conn: Connection,
    *,
    version_id: int | None = None,
    grid_codes: Collection[str] | None = None,
    standards: Standards | None = None,
    at: datetime | None = None,
) -> int:
    """Recompute and store the workloads of a version's grids (None: the active version; all grids or `grid_codes`).

    One set-based pass; the rows written. Grid apply, redesign and the demo load call it after a change.
    """
    standards = standards or city_standards(conn)
    moment = _moment(at)
    version = _version(conn, version_id)
    codes = sorted(set(grid_codes)) if grid_codes is not None else None
    if codes == []:
        return 0
    loads = _compute(conn, version, codes, moment, standards)
    return _store(conn, version, _basis(conn, version, moment, standards), standards, loads)


def grid_workloads(
    conn: Connection,
    *,
    version_id: int | None = None,
    grid_codes: Collection[str] | None = None,
    standards: Standards | None = None,
    at: datetime | None = None,
) -> dict[str, Workload]:
    """Hours per month of each grid of a version (None: the active one; drafts too), by grid code.

    From the stored rows when they are current (same standards, day and data), else computed spatially and stored.
    Unknown codes are left out of the answer.
    """
    standards = standards or city_standards(conn)
    moment = _moment(at)
    version = _version(conn, version_id)
    codes = sorted(set(grid_codes)) if grid_codes is not None else None
    if codes == []:
        return {}
    basis = _basis(conn, version, moment, standards)
    stored: dict[str, Workload] = {}
    query = select(grid_workload.c.grid_code, grid_workload.c.hours, grid_workload.c["items"]).where(
        grid_workload.c.version_id == version, grid_workload.c.standards_version == standards.version
    )
    if codes is not None:
        query = query.where(grid_workload.c.grid_code.in_(codes))
    for code, hours, items in conn.execute(query):
        if isinstance(items, dict) and items.get("basis") == basis:
            stored[code] = workload_from_json(hours, items["items"])
    wanted = set(codes) if codes is not None else _grid_codes(conn, version)
    missing = sorted(wanted - set(stored))
    if not missing:
        return stored
    # Most of the version missing: one pass over everything is cheaper than a long list of codes.
    computed = _compute(conn, version, None if len(missing) > len(wanted) // 2 else missing, moment, standards)
    computed = {c: w for c, w in computed.items() if c in wanted}
    _store(conn, version, basis, standards, {c: computed[c] for c in computed if c not in stored})
    return {**computed, **stored}


def _grid_codes(conn: Connection, version_id: int) -> set[str]:
    """Every grid code of a version."""
    return {
        str(c) for c in conn.execute(text("SELECT code FROM grid WHERE version_id = :v"), {"v": version_id}).scalars()
    }


def worker_workloads(
    conn: Connection,
    worker_ids: Collection[int],
    *,
    standards: Standards | None = None,
    at: datetime | None = None,
) -> dict[int, Workload]:
    """Each worker's hours per month: an equal share of their grid's work among its active workers, except the open
    backlog, which counts for the worker who holds it (their own open tasks at their duties' minutes).

    An inactive worker carries only their own open tasks.
    """
    standards = standards or city_standards(conn)
    ids = sorted({int(i) for i in worker_ids})
    if not ids:
        return {}
    rows = conn.execute(
        text(
            """
            SELECT w.id, w.version_id, w.grid_code, w.active,
                   (SELECT count(*) FROM worker o WHERE o.version_id = w.version_id AND o.grid_code = w.grid_code
                     AND o.active) AS colleagues
              FROM worker w WHERE w.id = ANY(:ids)
            """
        ),
        {"ids": ids},
    ).all()
    open_by_worker: dict[int, dict[str, int]] = defaultdict(dict)
    for worker_id, duty, n in conn.execute(
        text(
            "SELECT worker_id, duty, count(*) FROM task WHERE worker_id = ANY(:ids) AND status = ANY(:open)"
            " GROUP BY worker_id, duty"
        ),
        {"ids": ids, "open": list(OPEN_STATUSES)},
    ):
        open_by_worker[int(worker_id)][str(duty)] = int(n)
    by_version: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        by_version[int(row.version_id)].add(str(row.grid_code))
    grids = {
        (version, code): w
        for version, codes in by_version.items()
        for code, w in grid_workloads(conn, version_id=version, grid_codes=codes, standards=standards, at=at).items()
    }
    result: dict[int, Workload] = {}
    for row in rows:
        own = open_by_worker.get(int(row.id), {})
        own_count = float(sum(own.values()))
        own_minutes = sum(n * open_task_hours(d, standards) * 60 for d, n in own.items())
        own_item = WorkloadItem(
            key="open_tasks",
            label_zh="本人在办任务",
            count=own_count,
            minutes_each=own_minutes / own_count if own_count else 0.0,
            hours=own_minutes / 60,
        )
        grid = grids.get((int(row.version_id), str(row.grid_code)))
        shared = (
            share(grid, 1.0 / int(row.colleagues), keys_excluded=frozenset({"open_tasks"}))
            if grid is not None and row.active and int(row.colleagues) > 0
            else Workload(hours=0.0, items=())
        )
        items = (*shared.items, own_item)
        result[int(row.id)] = Workload(hours=shared.hours + own_item.hours, items=items)
    return result


def area_work(
    conn: Connection,
    community_codes: Collection[str],
    *,
    standards: Standards | None = None,
    at: datetime | None = None,
) -> AreaWork:
    """The located work, addresses and roads of some communities' active grids, metric, for the grid redesign.

    A point is in the area when the active grid that covers it (lowest code on a shared edge) is a grid of these
    communities: exactly the points `grid_workloads` counts for those grids.
    """
    standards = standards or city_standards(conn)
    moment = _moment(at)
    version = _version(conn, None)
    day = moment.astimezone(SHANGHAI).date()
    codes = sorted(set(community_codes))
    area_grids = [
        str(c)
        for c in conn.execute(
            text("SELECT code FROM grid WHERE version_id = :v AND community_code = ANY(:c) ORDER BY code"),
            {"v": version, "c": codes},
        ).scalars()
    ]
    placed = _placed(conn, version, area_grids, moment, standards)
    inside = placed.grid != None  # noqa: E711 - elementwise over an object array
    x, y = lonlat_to_metric(placed.lon[inside], placed.lat[inside])
    kinds, keys = placed.kind[inside], placed.key[inside]
    licences, unfiled = placed.licence[inside], placed.unfiled[inside]
    reminder = campaign_hours(day, standards)
    per_clue = clue_hours(standards)
    hours = np.empty(len(kinds), dtype=np.float64)
    for n, (kind, key, licence, is_unfiled) in enumerate(zip(kinds, keys, licences, unfiled, strict=True)):
        if kind == "entity":
            hours[n] = patrol_hours(str(key), bool(licence), standards) + (reminder if is_unfiled else 0.0)
        elif kind == "task":
            hours[n] = expected_task_hours(str(key), standards)
        elif kind == "open":
            hours[n] = open_task_hours(str(key), standards)
        else:
            hours[n] = per_clue
    # A stable order (by kind, then place) whatever order the database returned the rows in.
    order = np.lexsort((y, x, kinds))
    xy = np.column_stack((x, y))[order] if len(order) else np.empty((0, 2), dtype=np.float64)
    hours = hours[order]
    addresses = conn.execute(
        text(
            f"""
            WITH vg AS (SELECT code, geom FROM grid WHERE version_id = :version_id),
            box AS (SELECT ST_Extent(geom)::geometry AS b FROM grid WHERE version_id = :version_id AND code = ANY(:codes)),
            placed AS (
              SELECT DISTINCT ON (a.id) a.id, a.geom, vg.code
                FROM address a CROSS JOIN box JOIN vg ON ST_Covers(vg.geom, a.geom)
               WHERE a.status = 'active' AND a.geom && box.b
               ORDER BY a.id, vg.code)
            SELECT ST_X(ST_Transform(geom, {METRIC_EPSG})), ST_Y(ST_Transform(geom, {METRIC_EPSG}))
              FROM placed WHERE code = ANY(:codes) ORDER BY id
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {"version_id": version, "codes": area_grids},
    ).all()
    road_wkb = conn.execute(
        text(
            f"""
            WITH area AS (SELECT ST_Transform(ST_Union(geom), {METRIC_EPSG}) AS am, ST_Union(geom) AS a FROM grid
                           WHERE version_id = :version_id AND code = ANY(:codes))
            SELECT ST_AsBinary((ST_Dump(ST_CollectionExtract(ST_Intersection(ST_Transform(r.geom, {METRIC_EPSG}),
                                                                            area.am), 2))).geom)
              FROM road r, area WHERE ST_Intersects(r.geom, area.a) ORDER BY r.id
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {"version_id": version, "codes": area_grids},
    ).scalars()
    roads = [g for g in (shapely.from_wkb(bytes(b)) for b in road_wkb) if isinstance(g, LineString) and g.length > 0]
    return AreaWork(
        points_xy=xy,
        points_hours=hours,
        address_xy=np.asarray([(float(x), float(y)) for x, y in addresses], dtype=np.float64).reshape(-1, 2),
        hours_per_m2=standards.hours_per_m2,
        hours_per_road_m=standards.hours_per_road_m,
        roads=roads,
    )


# ------------------------------------------------------------------------------- a unit's workload, for the API


@dataclass(frozen=True)
class GridFigures:
    """One grid of a unit: its hours, workers and recommended workers."""

    code: str
    name: str | None
    hours: float
    workers: int
    hours_per_worker: float | None
    recommended_workers: int


@dataclass(frozen=True)
class WorkerFigures:
    """One worker of a grid: their share of the grid's work plus the open tasks they hold."""

    id: int
    name: str
    hours: float
    own_open_tasks: float
    own_open_hours: float


@dataclass(frozen=True)
class UnitWorkload:
    """A grid's, community's or town's workload in one grid version, with its staffing figures."""

    level: str
    code: str
    name: str
    version_id: int
    version_status: str
    standards_version: str
    workload: Workload
    workers: int
    capacity_hours: float
    recommended_workers: int
    grids: list[GridFigures]
    worker_loads: list[WorkerFigures] | None = None

    @property
    def hours_per_worker(self) -> float | None:
        """Hours per month per worker (None when the unit has no worker)."""
        return self.workload.hours / self.workers if self.workers else None


_CODE_PATTERNS = {"grid": GRID_PATTERN, "community": COMMUNITY_PATTERN, "town": TOWN_PATTERN}
_LEVEL_ZH = {"grid": "网格", "community": "村（社区）", "town": "镇街"}


def unit_workload(
    conn: Connection,
    scope: Scope,
    *,
    level: str,
    code: str,
    version_id: int | None = None,
    standards: Standards | None = None,
) -> UnitWorkload:
    """The workload of a grid, community or town that the caller's scope covers, in the active version or a draft.

    InvalidInput for a level or code of the wrong form; OutOfScope when the unit (or, for a draft, the area it
    redraws) is outside the caller's area; PlanNotFound for an unknown version or unit. The scope is judged from the
    code's layout before anything is looked up, so an answer never tells an outsider whether a unit exists; a version
    the caller cannot see and one that does not exist get the same 403 (the city alone learns it is unknown).
    """
    standards = standards or city_standards(conn)
    pattern = _CODE_PATTERNS.get(level)
    if pattern is None:
        raise InvalidInput(f"层级须为 grid、community 或 town，收到 {level!r}")
    if not pattern.fullmatch(code) or (level == "community" and code.endswith("000")):
        raise InvalidInput(f"{_LEVEL_ZH[level]}编码格式不对：{code}")
    if not scope.covers(conn, level, code):
        raise OutOfScope(f"{_LEVEL_ZH[level]} {code} 不在本账号范围内")
    hidden = f"网格版本 {version_id} 不在本账号范围内"
    if version_id is not None and scope.kind != "city":
        found = conn.execute(
            text("SELECT status, area_code FROM grid_version WHERE id = :v"), {"v": version_id}
        ).one_or_none()
        if found is None:
            raise OutOfScope(hidden)
    version = _version(conn, version_id)
    status, area_code = conn.execute(
        text("SELECT status, area_code FROM grid_version WHERE id = :v"), {"v": version}
    ).one()
    if (
        status == "draft"
        and area_code
        and not scope.covers(conn, "town" if area_code.endswith("000") else "community", area_code)
    ):
        raise OutOfScope(hidden)
    if level == "grid":
        name = conn.execute(
            text("SELECT COALESCE(name, code) FROM grid WHERE version_id = :v AND code = :c"), {"v": version, "c": code}
        ).scalar_one_or_none()
    else:
        name = conn.execute(
            text("SELECT name FROM town WHERE code = :c")
            if level == "town"
            else text("SELECT name FROM community WHERE code = :c"),
            {"c": code},
        ).scalar_one_or_none()
    if name is None:
        raise PlanNotFound(f"{_LEVEL_ZH[level]} {code} 不存在（网格版本 {version}）", reason="unknown_unit")
    column = {"grid": "code", "community": "community_code", "town": "town_code"}[level]
    grid_rows = conn.execute(
        text(
            # The column name comes from the fixed table above, never from the caller.
            f"""
            SELECT g.code, g.name, g.worker_count,
                   (SELECT count(*) FROM worker w WHERE w.version_id = g.version_id AND w.grid_code = g.code
                     AND w.active) AS active_workers
              FROM grid g WHERE g.version_id = :v AND g.{column} = :c ORDER BY g.code
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {"v": version, "c": code},
    ).all()
    loads = grid_workloads(conn, version_id=version, grid_codes=[r.code for r in grid_rows], standards=standards)
    grids = []
    for row in grid_rows:
        # A draft has no worker rows yet: its grids carry the head-count the redesign planned.
        workers = int(row.worker_count) if status == "draft" else int(row.active_workers)
        hours = loads[row.code].hours if row.code in loads else 0.0
        grids.append(
            GridFigures(
                code=str(row.code),
                name=row.name,
                hours=hours,
                workers=workers,
                hours_per_worker=hours / workers if workers else None,
                recommended_workers=recommended_workers(hours, standards),
            )
        )
    total = combine([loads[g.code] for g in grids if g.code in loads]) if grids else Workload(hours=0.0, items=())
    workers = sum(g.workers for g in grids)
    worker_loads = None
    if level == "grid" and status != "draft":
        worker_loads = _grid_worker_figures(conn, version, code, standards)
    return UnitWorkload(
        level=level,
        code=code,
        name=str(name),
        version_id=version,
        version_status=str(status),
        standards_version=standards.version,
        workload=total,
        workers=workers,
        capacity_hours=workers * standards.field_hours_per_worker_month,
        recommended_workers=sum(g.recommended_workers for g in grids),
        grids=grids,
        worker_loads=worker_loads,
    )


def _grid_worker_figures(
    conn: Connection, version_id: int, grid_code: str, standards: Standards
) -> list[WorkerFigures]:
    """The active workers of a grid with their hours per month (`worker_workloads`), by id."""
    names: dict[int, str] = dict(
        conn.execute(
            text("SELECT id, name FROM worker WHERE version_id = :v AND grid_code = :g AND active ORDER BY id"),
            {"v": version_id, "g": grid_code},
        ).all()
    )
    loads = worker_workloads(conn, list(names), standards=standards)
    figures = []
    for worker_id in sorted(names):
        own = loads[worker_id].item("open_tasks")
        figures.append(
            WorkerFigures(
                id=int(worker_id),
                name=str(names[worker_id]),
                hours=loads[worker_id].hours,
                own_open_tasks=own.count if own else 0.0,
                own_open_hours=own.hours if own else 0.0,
            )
        )
    return figures


def _nightly_refresh(conn: Connection, day: date, moment: datetime) -> dict[str, object]:
    """The daily job: every grid's workload of the active version for the new day (the history window moved)."""
    del day
    written = refresh(conn, at=moment)
    return {"grids": written}


# `gridgov serve` runs it every day (weekends too: the map is read every day), at the first tick from 06:30
# Asia/Shanghai on, before the morning assignment: the map's grid colours then follow the day's data.
WORKLOAD_JOB = DailyJob(name="workload_refresh", at=time(6, 30), run=_nightly_refresh, working_days_only=False)
