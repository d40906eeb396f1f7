"""planning.staffing_service: the staffing plan of a town (or the city) from the database, and applying it, audited.

`plan` reads the active version's grids the caller's scope covers, their workload (planning.workload_service) and
their active workers (fewest open tasks first: the ones who hand over least move first), and asks the pure
`planning.staffing` for the targets and the fewest moves. `apply` recomputes the plan in the caller's transaction,
refuses it when it is no longer the one the caller saw (the plan's fingerprint), moves the workers by the existing
rules (their open tasks stay in the old grid with its other workers, each hand-over audited in task_event), lets
the receiving grids' queued tasks go to their new workers, and records one `planning_batch` with one
`territory_move` per worker. `batches` reads those records back: the plans applied in the caller's area.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gis import clock
from grids.codes import town_of
from planning.errors import NothingToPlan, PlanNotFound, StalePlan
from planning.staffing import WITHIN_VALUES, GridStaff, Move, Within, plan_moves, recommended, targets
from planning.workload import Standards
from planning.workload_service import city_standards, grid_workloads
from supervision.assignment import assign_to_workers
from supervision.audit import Actor, Holder
from supervision.errors import InvalidInput, OutOfScope
from supervision.intake import GRID_VERSION_LOCK
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES, WORKER_HELD
from supervision.workers import reassign_worker_tasks, worker_in_scope

# One staffing apply at a time: two leaders applying plans of one town at once would each move workers the other's
# plan counted on. The key is fixed; the lock lasts until the transaction ends.
_STAFFING_LOCK_KEY = 0x57AFF


@dataclass(frozen=True)
class GridLine:
    """One grid of a staffing plan: its workload, its workers now, what it should have and what it will have."""

    code: str
    name: str | None
    community_code: str
    community_name: str
    town_code: str
    town_name: str
    hours: float  # workload, hours per month
    workers: int  # active workers now
    recommended: int  # workload over one worker's capacity, within min..max
    target: int  # recommended, fitted to the workers the group has
    short_by: int  # recommended - target when the group is short of workers overall (planning.staffing), else 0
    after: int  # active workers once the plan is applied
    hours_per_worker_before: float | None  # None: no worker
    hours_per_worker_after: float | None
    lon: float  # a point inside the grid (WGS84), where the map draws its moves from and to
    lat: float


@dataclass(frozen=True)
class PlannedMove:
    """One worker the plan moves, and the open tasks they hand over to the colleagues they leave."""

    worker_id: int
    worker_name: str
    from_grid: str
    to_grid: str
    distance_m: float
    open_tasks: int


@dataclass(frozen=True)
class PlanTotals:
    """The plan in figures: grids, workers, hours, and how many grids are off their recommendation before/after."""

    grids: int
    workers: int
    hours: float
    recommended: int
    understaffed_before: int  # grids with fewer workers than recommended
    understaffed_after: int
    overstaffed_before: int  # grids with more workers than recommended
    overstaffed_after: int
    shortfall_after: int  # workers still missing after the plan: the group has too few to move
    moves: int
    distance_m: float
    open_tasks_handed_over: int


@dataclass(frozen=True)
class StaffingPlan:
    """A staffing plan of the grids a caller covers: per grid, the moves, the totals and its fingerprint."""

    town_code: str | None  # None: the whole city
    community_code: str | None  # a dispatcher's plan covers their community only
    within: Within
    standards_version: str
    capacity_hours: float  # one worker's monthly field capacity
    grids: list[GridLine]
    moves: list[PlannedMove]
    totals: PlanTotals
    fingerprint: str


@dataclass(frozen=True)
class ApplyResult:
    """What applying a plan did: the batch that records it, the moves made and the tasks handed over."""

    batch_id: int
    moves: list[PlannedMove]
    open_tasks_handed_over: int
    queued_tasks_assigned: int


def fingerprint(town_code: str | None, within: str, moves: Sequence[Move]) -> str:
    """sha256 of the plan's area and its sorted moves: the same moves give the same fingerprint, any change another."""
    payload = {
        "town": town_code,
        "within": within,
        "moves": sorted([m.worker_id, m.from_grid, m.to_grid] for m in moves),
    }
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _check_within(scope: Scope, within: str) -> None:
    """ValueError for an unknown `within`; OutOfScope for moves across the city asked by anyone but the city.

    Moving workers between towns is the command centre's decision: a town or community caller may balance only
    inside their own area, so `within="city"` is refused rather than quietly read as their town.
    """
    if within not in WITHIN_VALUES:
        raise ValueError(f"within must be one of {WITHIN_VALUES}")
    if within == "city" and scope.kind != "city":
        raise OutOfScope("跨镇街调配网格员（全市范围）仅限市指挥中心")


def _area(conn: Connection, scope: Scope, town_code: str | None) -> tuple[str | None, str | None]:
    """The (town, community) a caller's plan covers; OutOfScope for a town beyond it, PlanNotFound for none known.

    The scope is checked before the town is looked up, so an answer never tells an outsider whether a town exists.
    """
    if scope.kind == "city":
        town, community = town_code, None
    elif scope.kind == "town" and scope.code:
        if town_code not in (None, scope.code):
            raise OutOfScope(f"镇街 {town_code} 不在您的管辖范围内")
        town, community = scope.code, None
    elif scope.kind == "community" and scope.code:
        if town_code not in (None, town_of(scope.code)):
            raise OutOfScope(f"镇街 {town_code} 不在您的管辖范围内")
        town, community = town_of(scope.code), scope.code
    else:
        raise OutOfScope("您的账号没有可调配网格员的范围")
    if town is not None and conn.execute(text("SELECT 1 FROM town WHERE code = :t"), {"t": town}).first() is None:
        raise PlanNotFound(f"未找到镇街 {town}")
    return town, community


_GRIDS = text(
    """
    SELECT g.code, g.name, g.community_code, c.name AS community_name, g.town_code, tw.name AS town_name,
           ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat,
           ST_X(ST_Transform(p.pt, 4547)) AS x, ST_Y(ST_Transform(p.pt, 4547)) AS y
    FROM grid g
    JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
    JOIN community c ON c.code = g.community_code
    JOIN town tw ON tw.code = g.town_code
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(g.geom) AS pt) p
    WHERE (CAST(:town AS text) IS NULL OR g.town_code = :town)
      AND (CAST(:community AS text) IS NULL OR g.community_code = :community)
    ORDER BY g.code
    """
)

# Active workers of the area, each grid's fewest open tasks first: a plan moves those who hand over least.
_WORKERS = text(
    """
    SELECT w.id, w.name, w.grid_code, count(t.id) AS open_tasks
    FROM worker w
    JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'
    LEFT JOIN task t ON t.worker_id = w.id AND t.status = ANY(:open)
    WHERE w.active
      AND (CAST(:town AS text) IS NULL OR w.town_code = :town)
      AND (CAST(:community AS text) IS NULL OR left(w.grid_code, length(:community)) = :community)
    GROUP BY w.id, w.name, w.grid_code
    ORDER BY w.grid_code, count(t.id), w.id
    """
)


@dataclass(frozen=True)
class _Area:
    """What a plan reads of its area: the grid rows, the grids as the pure planner sees them, the workers' names
    and open tasks."""

    rows: list[Any]
    grids: list[GridStaff]
    names: dict[int, str]
    open_tasks: dict[int, int]


def _read(conn: Connection, town: str | None, community: str | None, standards: Standards) -> _Area:
    """The area's grids, their workload and active workers (fewest open tasks first); NothingToPlan with no grid."""
    rows = conn.execute(_GRIDS, {"town": town, "community": community}).all()
    if not rows:
        raise NothingToPlan("该范围内没有现行网格，无法制定配员方案", reason="no_grids")
    staff: dict[str, list[int]] = defaultdict(list)
    names: dict[int, str] = {}
    open_tasks: dict[int, int] = {}
    for w in conn.execute(_WORKERS, {"town": town, "community": community, "open": list(OPEN_STATUSES)}):
        staff[w.grid_code].append(int(w.id))
        names[int(w.id)] = str(w.name)
        open_tasks[int(w.id)] = int(w.open_tasks)
    loads = grid_workloads(conn, grid_codes=[r.code for r in rows], standards=standards)
    grids = [
        GridStaff(
            r.code, r.town_code, r.community_code, float(loads[r.code].hours) if r.code in loads else 0.0,
            tuple(staff[r.code]), r.x, r.y,
        )
        for r in rows
    ]  # fmt: skip
    return _Area(list(rows), grids, names, open_tasks)


def staff_of(
    conn: Connection, *, scope: Scope, town_code: str | None = None, standards: Standards | None = None
) -> list[GridStaff]:
    """The grids a caller's plan covers, as the pure planner (planning.staffing) sees them."""
    town, community = _area(conn, scope, town_code)
    return _read(conn, town, community, standards or city_standards(conn)).grids


def plan(
    conn: Connection,
    *,
    scope: Scope,
    within: Within = "town",
    town_code: str | None = None,
    standards: Standards | None = None,
) -> StaffingPlan:
    """The staffing plan of the grids the scope covers (a town leader: their town; the command centre: the city or
    `town_code`; a dispatcher: their community), moving workers only within each town (or community, or the city).
    """
    _check_within(scope, within)
    standards = standards or city_standards(conn)
    town, community = _area(conn, scope, town_code)
    found = _read(conn, town, community, standards)
    rows, grids, names, open_tasks = found.rows, found.grids, found.names, found.open_tasks
    wanted = targets(grids, standards, within=within)
    moves = plan_moves(grids, wanted, within=within)
    change: dict[str, int] = defaultdict(int)
    for move in moves:
        change[move.from_grid] -= 1
        change[move.to_grid] += 1
    lines = [
        GridLine(
            code=r.code,
            name=r.name,
            community_code=r.community_code,
            community_name=r.community_name,
            town_code=r.town_code,
            town_name=r.town_name,
            hours=round(g.hours, 2),
            workers=len(g.workers),
            recommended=recommended(g.hours, standards),
            target=wanted[g.code],
            short_by=max(0, recommended(g.hours, standards) - wanted[g.code]),
            after=len(g.workers) + change[g.code],
            hours_per_worker_before=_per_worker(g.hours, len(g.workers)),
            hours_per_worker_after=_per_worker(g.hours, len(g.workers) + change[g.code]),
            lon=float(r.lon),
            lat=float(r.lat),
        )
        for r, g in zip(rows, grids, strict=True)
    ]
    planned = [
        PlannedMove(
            m.worker_id, names[m.worker_id], m.from_grid, m.to_grid, round(m.distance_m, 1), open_tasks[m.worker_id]
        )
        for m in moves
    ]
    return StaffingPlan(
        town_code=town,
        community_code=community,
        within=within,
        standards_version=standards.version,
        capacity_hours=standards.field_hours_per_worker_month,
        grids=lines,
        moves=planned,
        totals=_totals(lines, planned),
        fingerprint=fingerprint(town, within, moves),
    )


def _per_worker(hours: float, workers: int) -> float | None:
    """Hours per month per worker, rounded for people; None when the grid has nobody."""
    return round(hours / workers, 2) if workers > 0 else None


def _totals(lines: Sequence[GridLine], moves: Sequence[PlannedMove]) -> PlanTotals:
    """The plan's figures."""
    return PlanTotals(
        grids=len(lines),
        workers=sum(g.workers for g in lines),
        hours=round(sum(g.hours for g in lines), 2),
        recommended=sum(g.recommended for g in lines),
        understaffed_before=sum(g.workers < g.recommended for g in lines),
        understaffed_after=sum(g.after < g.recommended for g in lines),
        overstaffed_before=sum(g.workers > g.recommended for g in lines),
        overstaffed_after=sum(g.after > g.recommended for g in lines),
        shortfall_after=sum(max(0, g.recommended - g.after) for g in lines),
        moves=len(moves),
        distance_m=round(sum(m.distance_m for m in moves), 1),
        open_tasks_handed_over=sum(m.open_tasks for m in moves),
    )


def apply(
    conn: Connection,
    *,
    actor: Actor,
    fingerprint: str,
    within: Within = "town",
    town_code: str | None = None,
    reason: str | None = None,
    standards: Standards | None = None,
) -> ApplyResult:
    """Apply the plan the caller saw (its `fingerprint`) in the caller's transaction: all the moves, or none.

    StaleDraft when the plan computed now differs (the data changed, or another plan was applied meanwhile);
    NothingToPlan when it moves nobody; OutOfScope when a worker or a target grid lies beyond the actor's scope.
    InvalidInput for a fingerprint of the wrong form, OutOfScope for a city-wide plan asked by a town or community:
    both before anything is locked or computed.
    """
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InvalidInput("方案指纹格式不对（应为 64 位十六进制）")
    _check_within(actor.scope, within)
    # The active grid version must not switch under the moves (a grid apply takes this lock exclusively).
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": GRID_VERSION_LOCK})
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STAFFING_LOCK_KEY})
    current = plan(conn, scope=actor.scope, within=within, town_code=town_code, standards=standards)
    if current.fingerprint != fingerprint:
        raise StalePlan("配员方案已变化（数据或网格员已调整），请刷新后重新确认")
    if not current.moves:
        raise NothingToPlan("当前方案无需调动网格员", reason="no_moves")
    # Every end of every move is checked before anything changes, so a refusal leaves the staff as it was.
    for move in current.moves:
        worker_in_scope(conn, move.worker_id, actor.scope)
        if not actor.scope.covers(conn, "grid", move.to_grid):
            raise OutOfScope(f"网格 {move.to_grid} 不在您的管辖范围内")
    batch_id = _record_batch(conn, current, actor=actor, reason=reason)
    # All workers move first, then hand their tasks over: a task is never handed to a colleague who leaves too.
    conn.execute(
        text(
            "UPDATE worker w SET grid_code = g.code, town_code = g.town_code FROM grid g "
            "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "WHERE w.id = :worker AND g.code = :grid AND w.version_id = g.version_id"
        ),
        [{"worker": m.worker_id, "grid": m.to_grid} for m in current.moves],
    )
    handed_over = 0
    for move in current.moves:
        note = f"staffing batch {batch_id}: worker moved to grid {move.to_grid}"
        handed_over += len(reassign_worker_tasks(conn, move.worker_id, actor=actor, reason=note))
    queued = _assign_queued(conn, sorted({m.to_grid for m in current.moves}), actor=actor, batch_id=batch_id)
    _refresh_worker_counts(conn, sorted({m.from_grid for m in current.moves} | {m.to_grid for m in current.moves}))
    conn.execute(
        text("UPDATE planning_batch SET summary = summary || CAST(:extra AS jsonb) WHERE id = :id"),
        {"id": batch_id, "extra": json.dumps({"handed_over": handed_over, "queued_assigned": queued})},
    )
    return ApplyResult(batch_id, current.moves, handed_over, queued)


def _record_batch(conn: Connection, current: StaffingPlan, *, actor: Actor, reason: str | None) -> int:
    """One planning_batch row for the plan and one territory_move row per worker; the batch id."""
    summary = {
        "within": current.within,
        "town_code": current.town_code,
        "community_code": current.community_code,
        "fingerprint": current.fingerprint,
        "standards_version": current.standards_version,
        "moves": len(current.moves),
        "distance_m": current.totals.distance_m,
        "understaffed_before": current.totals.understaffed_before,
        "understaffed_after": current.totals.understaffed_after,
    }
    area = current.community_code or current.town_code
    batch_id = int(
        conn.execute(
            text(
                "INSERT INTO planning_batch (kind, area_code, actor, at, reason, summary) "
                "VALUES ('staffing', :area, :actor, :at, :reason, CAST(:summary AS jsonb)) RETURNING id"
            ),
            {
                "area": area,
                "actor": actor.name,
                "at": clock.now(),
                "reason": reason or f"配员方案：按工作量调配网格员（{len(current.moves)} 人）",
                "summary": json.dumps(summary, ensure_ascii=False),
            },
        ).scalar_one()
    )
    conn.execute(
        text(
            "INSERT INTO territory_move (batch_id, object_kind, object_id, from_grid, to_grid) "
            "VALUES (:batch, 'worker', :worker, :from_grid, :to_grid)"
        ),
        [
            {"batch": batch_id, "worker": str(m.worker_id), "from_grid": m.from_grid, "to_grid": m.to_grid}
            for m in current.moves
        ],
    )
    return batch_id


def _assign_queued(conn: Connection, grid_codes: Sequence[str], *, actor: Actor, batch_id: int) -> int:
    """Tasks waiting in a receiving grid's queue (nobody had room) go to its workers now; how many were assigned."""
    waiting = [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT t.id FROM task t WHERE t.grid_code = ANY(:grids) AND t.worker_id IS NULL "
                "AND t.status = ANY(:held) AND t.holder = :queue || t.grid_code ORDER BY t.pushed_at, t.id"
            ),
            {"grids": list(grid_codes), "held": sorted(WORKER_HELD), "queue": Holder.prefix("grid")},
        )
    ]
    found = assign_to_workers(
        conn, waiting, actor=actor, note=f"staffing batch {batch_id}: a worker joined the grid and has room"
    )
    return sum(1 for worker in found.values() if worker is not None)


def _refresh_worker_counts(conn: Connection, grid_codes: Sequence[str]) -> None:
    """The active version's worker_count of these grids, recounted from the worker rows (maps and tiles show it)."""
    conn.execute(
        text(
            "UPDATE grid g SET worker_count = (SELECT count(*) FROM worker w WHERE w.version_id = g.version_id "
            "AND w.grid_code = g.code AND w.active) "
            "FROM grid_version v WHERE v.id = g.version_id AND v.status = 'active' AND g.code = ANY(:grids)"
        ),
        {"grids": list(grid_codes)},
    )


_SHAPES = text(
    """
    SELECT json_build_object(
      'type', 'FeatureCollection',
      'features', coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', g.code,
        'properties', json_build_object('code', g.code, 'name', g.name, 'community_code', g.community_code),
        'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, :tolerance_deg), 6)::json
      ) ORDER BY g.code), '[]'::json),
      'bbox', json_build_array(ST_XMin(ST_Extent(g.geom)), ST_YMin(ST_Extent(g.geom)),
                               ST_XMax(ST_Extent(g.geom)), ST_YMax(ST_Extent(g.geom)))
    )
    FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
    WHERE (CAST(:town AS text) IS NULL OR g.town_code = :town)
      AND (CAST(:community AS text) IS NULL OR g.community_code = :community)
    """
)
# About 2 m at Dongguan's latitude: invisible at the zooms a town is shown at, and it keeps a town's answer small.
_SHAPE_TOLERANCE_DEG = 2e-5


def grid_shapes(conn: Connection, *, scope: Scope, town_code: str | None = None) -> dict[str, Any]:
    """The outlines (WGS84 GeoJSON, lightly simplified) of the grids the caller's plan covers, and their bbox."""
    town, community = _area(conn, scope, town_code)
    result: dict[str, Any] = conn.execute(
        _SHAPES, {"town": town, "community": community, "tolerance_deg": _SHAPE_TOLERANCE_DEG}
    ).scalar_one()
    return result


@dataclass(frozen=True)
class TownChoice:
    """A town the caller may plan: its code and name."""

    code: str
    name: str


def town_choices(conn: Connection, scope: Scope) -> list[TownChoice]:
    """The towns whose staffing the caller may see (the city: all of them; others: their own), by code."""
    towns = scope.towns
    rows = conn.execute(
        text("SELECT code, name FROM town WHERE CAST(:towns AS text[]) IS NULL OR code = ANY(:towns) ORDER BY code"),
        {"towns": sorted(towns) if towns is not None else None},
    )
    return [TownChoice(str(r.code), str(r.name)) for r in rows]


@dataclass(frozen=True)
class MovedWorker:
    """One worker a past staffing batch moved."""

    worker_id: int
    worker_name: str
    from_grid: str | None
    to_grid: str | None


@dataclass(frozen=True)
class BatchRecord:
    """A staffing plan applied in the past: when, by whom, why, and the workers it moved."""

    id: int
    at: datetime
    actor: str
    area_code: str | None
    reason: str
    moves: list[MovedWorker]


_BATCHES = text(
    """
    SELECT b.id, b.at, b.actor, b.area_code, b.reason,
           coalesce(json_agg(json_build_object('worker_id', m.object_id::bigint, 'worker_name', w.name,
                                               'from_grid', m.from_grid, 'to_grid', m.to_grid)
                             ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL), '[]'::json) AS moves
    FROM planning_batch b
    LEFT JOIN territory_move m ON m.batch_id = b.id AND m.object_kind = 'worker'
    LEFT JOIN worker w ON w.id = m.object_id::bigint
    WHERE b.kind = 'staffing'
      AND (CAST(:town AS text) IS NULL OR left(b.area_code, 9) = left(:town, 9))
      AND (CAST(:community AS text) IS NULL OR b.area_code = :community)
    GROUP BY b.id
    ORDER BY b.at DESC, b.id DESC
    LIMIT :limit
    """
)


def batches(conn: Connection, *, scope: Scope, town_code: str | None = None, limit: int = 20) -> list[BatchRecord]:
    """The staffing plans applied in the caller's area (a town's and its communities'), latest first."""
    town, community = _area(conn, scope, town_code)
    rows = conn.execute(_BATCHES, {"town": town, "community": community, "limit": limit})
    return [
        BatchRecord(
            id=int(r.id),
            at=r.at,
            actor=str(r.actor),
            area_code=r.area_code,
            reason=str(r.reason),
            moves=[MovedWorker(**m) for m in r.moves],
        )
        for r in rows
    ]
