"""planning.grid_versions: draft grid versions — draw one for a community or town, compare, apply, roll back.

- `draw` redraws an area with the least-disruption redesign (`planning.redesign`) and stores the result as a
  **draft** version: a full copy of the active version with the area's grids replaced, its figures, and the
  fingerprint of the data it was drawn on. The active version is not touched.
- `apply` makes a draft active in ONE transaction under the grid-version lock (`supervision.intake` takes the
  same lock, shared, before it places a registration): addresses, entities, clues and open tasks of the area take
  their new grids, workers follow their grid's successor and are re-staffed with the fewest moves
  (`planning.staffing.plan_moves`) to the planned head-counts, tasks whose worker is no longer of their grid are
  handed over by the usual rule (`supervision.assignment`), and every move is recorded under one planning batch
  whose reason names the version. A draft whose base is no longer active, or whose area's data changed since it
  was drawn, is refused (`StaleDraft`) and nothing is applied.
- `rollback` activates the active version's base the same way and returns the workers the apply moved.
- An area holds at most MAX_DRAFTS_PER_AREA drafts at a time; `discard` deletes a draft's grids and keeps its row
  (retired, with who discarded it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from gis import clock
from gis.crs import lonlat_to_metric, to_lonlat, to_metric
from grids.codes import GRID_NUMBER_DIGITS, grid_code, grid_number, is_community, is_town
from planning import grid_version_repository as repo
from planning.errors import Infeasible, PlanNotFound, StaleDraft, VersionState
from planning.staffing import GridStaff, plan_moves
from planning.workload_service import area_work, city_standards, grid_workloads, refresh
from supervision.assignment import assign_to_workers
from supervision.audit import Actor, Holder, TaskEvent, write_events

AreaLevelOrCity = Literal["community", "town", "city"]

# Vertices of a redrawn grid closer than this (degrees, about 0.6 m) to a boundary of the grids it replaces are put
# exactly on it: a vertex the unit lattice put on a long straight edge is off the stored (WGS84-straight) edge after
# reprojection by up to a fraction of a metre, and would open a sliver against the neighbour that kept that edge.
SNAP_DEGREES = 6e-6

# A piece of a redrawn grid smaller than this (m²), cut off by making the area tile exactly, joins a neighbour.
CRUMB_M2 = 0.01

# Drafts one area (community or town) may have at a time; a discarded draft no longer counts.
MAX_DRAFTS_PER_AREA = 5

# A community run without a floor first tries its own worst grid's compactness with this share of its time limit,
# then its town's worst with the rest (at least MIN_RETRY_S).
FIRST_FLOOR_SHARE = 0.6
MIN_RETRY_S = 1.0

# A grid code has three digits for its number within the community.
MAX_GRID_NUMBER = 10**GRID_NUMBER_DIGITS - 1

PART_LABELS_ZH = {
    "base": "生效的网格版本已变更",
    "addresses": "区域内的标准地址",
    "entities": "区域内的市场主体",
    "workers": "区域内的网格员",
}


@dataclass(frozen=True)
class DraftSummary:
    """A grid version as people see it: a draft (or an applied / retired one), its area, figures and freshness."""

    id: int
    area_code: str | None
    area_level: AreaLevelOrCity
    base_version_id: int | None
    status: str
    figures: dict[str, Any]
    created_by: str | None
    created_at: datetime
    stale: bool
    name: str = ""
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    stale_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyResult:
    """What an apply or a rollback did: the batch, the version now active, what moved (by kind) and how long it took."""

    batch_id: int
    version_id: int
    retired_version_id: int
    area_code: str
    moved: dict[str, int]
    seconds: float


# ----------------------------------------------------------------------------------------------------------- draw


def draw(
    conn: Connection,
    *,
    community: str | None = None,
    town: str | None = None,
    k: int | None = None,
    locked: Sequence[str] = (),
    method: str = "auto",
    follow_roads: bool = False,
    pp_floor: float | None = None,
    tolerance: float = 0.10,
    actor_name: str,
) -> DraftSummary:
    """Redraw a community (or every community of a town) with the least disruption and store it as a draft.

    Runs in the caller's transaction; the active version is only read. Raises PlanNotFound for an unknown area,
    Infeasible (`lock_outside_area`, `k_needs_community`, and the redesign's own reasons) or NothingToPlan.
    """
    started = time.perf_counter()
    area = _area(conn, community=community, town=town)
    from planning.redesign import Problem, town_redesign, union_figures

    if k is not None and area.level == "town":
        raise Infeasible("按镇街重划时不能指定网格数；请按村（社区）指定网格数", reason="k_needs_community")
    if method not in ("auto", "cpsat", "local"):
        raise Infeasible(f"未知的求解方法：{method}（可选 auto、cpsat、local）", reason="unknown_method")
    repo.lock_versions_shared(conn)
    base = repo.active_version(conn)
    if base is None:
        raise PlanNotFound("没有生效的网格版本", reason="no_active_version")
    drafts = repo.drafts_of_area(conn, area.code)
    if len(drafts) >= MAX_DRAFTS_PER_AREA:
        listed = "、".join(str(d) for d in drafts)
        raise VersionState(
            f"{area.name}已有 {len(drafts)} 份草案（编号 {listed}），最多 {MAX_DRAFTS_PER_AREA} 份："
            "请先删除不再需要的草案（gridgov grids discard 编号）",
            reason="too_many_drafts",
        )
    current = repo.grids_of(conn, base.id, area.community_codes)
    current_codes = {g.code for g in current}
    locks = list(dict.fromkeys(locked))
    outside = [code for code in locks if code not in current_codes]
    if outside:
        raise Infeasible(f"锁定的网格 {'、'.join(outside)} 不在{area.name}内", reason="lock_outside_area")
    standards = city_standards(conn)
    # A community run without a floor tries its own worst grid first and, when that cannot balance, the town's.
    town_floor = (
        repo.worst_polsby_popper(conn, base.id, area.town_code)
        if pp_floor is None and area.level == "community"
        else None
    )
    work = area_work(conn, area.community_codes, standards=standards)
    workers = repo.active_workers_by_grid(conn, base.id, area.community_codes)
    used = repo.used_grid_numbers(conn, area.community_codes)
    metric = {g.code: to_metric(g.geom) for g in current}
    point_community = _communities_of(area, work.points_xy)
    address_community = _communities_of(area, work.address_xy)
    # A town run may give a busy community many more grids than it has (`town_redesign` raises K up to its share of
    # the town's workers over the least a grid holds): every community gets codes enough for the largest such K.
    town_room = sum(workers.values()) // max(standards.min_workers, 1) if area.level == "town" else 0
    problems: dict[str, Any] = {}
    for community_code in area.community_codes:
        grids = {g.code: metric[g.code] for g in current if g.community_code == community_code}
        if not grids:
            continue
        problems[community_code] = _problem(
            Problem,
            area=to_metric(area.community_geoms[community_code]),
            grids=grids,
            work=work,
            points=point_community == community_code,
            addresses=address_community == community_code,
            workers={code: workers.get(code, 0) for code in grids},
            locked=frozenset(code for code in locks if code in grids),
            k=k,
            new_codes=free_grid_codes(
                community_code, used.get(community_code, set()), max(k or 0, len(grids), town_room) + 2
            ),
            tolerance=tolerance,
            min_workers=standards.min_workers,
            max_workers=standards.max_workers,
            pp_floor=pp_floor,
            method=method,
            follow_roads=follow_roads,
        )
    read_s = time.perf_counter() - started
    if area.level == "community":
        solution, relaxed = _community_solution(problems[area.code], town_floor)
        solutions = {area.code: solution}
        figures = _figures_json(solution.figures)
        if relaxed:
            figures["notes"] = [*figures.get("notes", []), relaxed]
    else:
        solutions = town_redesign(problems)
        figures = _figures_json(union_figures(solutions))
        figures["communities"] = len(solutions)
    figures["area"] = {"code": area.code, "level": area.level, "name": area.name}
    figures["locked"] = locks
    figures["tolerance"] = tolerance
    figures["follow_roads"] = follow_roads
    solve_s = time.perf_counter() - started - read_s
    planned: dict[str, BaseGeometry | None] = {}
    planned_workers: dict[str, int] = {}
    for solution in solutions.values():
        for code, geom in solution.grids.items():
            planned[code] = None if geom is metric.get(code) else geom
        planned_workers.update({code: int(n) for code, n in solution.workers.items()})
    version_id = save_draft(
        conn,
        area=area,
        base_version_id=base.id,
        grids=planned,
        workers=planned_workers,
        figures=figures,
        actor_name=actor_name,
    )
    figures["draw_seconds"] = round(time.perf_counter() - started, 3)
    # Where the time went: reading the area and building units, solving, writing the draft (copy, counts, workload).
    figures["timings"] = {
        "read_s": round(read_s, 3),
        "solve_s": round(solve_s, 3),
        "write_s": round(figures["draw_seconds"] - read_s - solve_s, 3),
    }
    repo.set_figures(conn, version_id, figures)
    return summary(conn, version_id)


def _community_solution(problem: Any, town_floor: float | None) -> tuple[Any, str]:
    """Redesign a community at its own worst grid's compactness, else at its town's worst; (solution, note).

    The note (Chinese) says when the floor was relaxed. Local search answers in well under a second, so the first
    try gets the larger share of the time limit and the retry the rest.
    """
    from dataclasses import replace

    from planning.redesign import redesign
    from planning.redesign.figures import polsby_popper

    own_floor = min(polsby_popper(g) for g in problem.current.values())
    if town_floor is None or town_floor >= own_floor:
        return redesign(problem), ""
    limit = float(problem.time_limit_s)
    first = FIRST_FLOOR_SHARE * limit
    started = time.perf_counter()
    try:
        return redesign(replace(problem, pp_floor=own_floor, time_limit_s=first)), ""
    except Infeasible as refused:
        if refused.reason != "no_balanced_plan":
            raise
    left = max(limit - (time.perf_counter() - started), MIN_RETRY_S)
    solution = redesign(replace(problem, pp_floor=town_floor, time_limit_s=left))
    return solution, f"紧凑度下限由 {own_floor:.2f} 放宽至 {town_floor:.2f} 以达到均衡"


def _problem(
    problem_type: Any,
    *,
    area: BaseGeometry,
    grids: Mapping[str, BaseGeometry],
    work: Any,
    points: NDArray[np.bool_],
    addresses: NDArray[np.bool_],
    workers: Mapping[str, int],
    locked: frozenset[str],
    k: int | None,
    new_codes: list[str],
    tolerance: float,
    min_workers: int,
    max_workers: int,
    pp_floor: float | None,
    method: str,
    follow_roads: bool,
) -> Any:
    """One community's redesign problem: its units (cut by roads when asked), their hours and addresses."""
    from planning.redesign import build_units, unit_work

    roads = [r for r in work.roads if r.intersects(area)]
    units = build_units(area, grids, roads=roads if follow_roads else ())
    hours, unit_addresses = unit_work(
        units,
        work.points_xy[points],
        work.points_hours[points],
        work.address_xy[addresses],
        work.hours_per_m2,
        work.hours_per_road_m,
        roads,
    )
    return problem_type(
        units=units,
        unit_hours=hours,
        unit_addresses=unit_addresses,
        current=grids,
        workers=workers,
        locked=locked,
        k=k,
        new_codes=new_codes,
        tolerance=tolerance,
        min_workers=min_workers,
        max_workers=max_workers,
        pp_floor=pp_floor,
        method=method,
    )


def _area(conn: Connection, *, community: str | None, town: str | None) -> repo.Area:
    """The community or town asked for (exactly one of them)."""
    if (community is None) == (town is None):
        raise Infeasible("请指定一个村（社区）或一个镇街", reason="area_required")
    if community is not None:
        found = repo.community_area(conn, community) if is_community(community) else None
        if found is None:
            raise PlanNotFound(f"没有编码为 {community} 的村（社区）", reason="unknown_area")
        return found
    assert town is not None
    found = repo.town_area(conn, town) if is_town(town) else None
    if found is None:
        raise PlanNotFound(f"没有编码为 {town} 的镇街", reason="unknown_area")
    return found


def _communities_of(area: repo.Area, xy: NDArray[np.float64]) -> NDArray[np.object_]:
    """The community (of the area) each metric point lies in; the lowest code on a shared edge; None outside."""
    out = np.full(len(xy), None, dtype=object)
    if not len(xy):
        return out
    for code in sorted(area.community_codes):
        geom = to_metric(area.community_geoms[code])
        shapely.prepare(geom)
        free = out == None  # noqa: E711 - an elementwise test of an object array
        inside = np.zeros(len(xy), dtype=bool)
        inside[free] = shapely.intersects_xy(geom, xy[free, 0], xy[free, 1])
        out[inside] = code
    return out


def free_grid_codes(community_code: str, used: set[int], count: int) -> list[str]:
    """The next `count` grid codes the community has never used in any version (fewer when the numbers run out)."""
    out: list[str] = []
    number = max(used, default=0)
    while len(out) < count and number < MAX_GRID_NUMBER:
        number += 1
        if number not in used:
            out.append(grid_code(community_code, number))
    return out


def _figures_json(figures: Any) -> dict[str, Any]:
    """A redesign's Figures as JSON (plain floats, lists and strings)."""
    return _plain(asdict(figures))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_draft(
    conn: Connection,
    *,
    area: repo.Area,
    base_version_id: int,
    grids: Mapping[str, BaseGeometry | None],
    workers: Mapping[str, int],
    figures: Mapping[str, Any],
    actor_name: str,
) -> int:
    """Store a redrawn area as a draft version: the base version's grids, the area's replaced by `grids`; its id.

    `grids`: code → metric (EPSG:4547) polygon, or None for a grid kept exactly as in the base version (its stored
    geometry is copied byte for byte). Codes of the base area missing from `grids` are retired by the draft.
    """
    base_grids = {g.code: g for g in repo.grids_of(conn, base_version_id, area.community_codes)}
    missing = [code for code, geom in grids.items() if geom is None and code not in base_grids]
    if missing:
        raise Infeasible(f"保留的网格 {'、'.join(missing)} 不在基础版本中", reason="unknown_kept_grid")
    # A kept grid's head-count when the plan names none: its active workers now (the stored count may be stale).
    staffed = repo.active_workers_by_grid(conn, base_version_id, area.community_codes)
    base_metric = {c: to_metric(g.geom) for c, g in base_grids.items()}
    snap_lines = _boundary_segments([g.geom for g in base_grids.values()] + list(area.community_geoms.values()))
    drawn = {
        code: _snapped(to_lonlat(geom), snap_lines)
        for code, geom in grids.items()
        if geom is not None and code[:12] in area.community_names
    }
    drawn = _tiled(drawn, {c: g.geom for c, g in base_grids.items() if grids.get(c, 0) is None}, area)
    rows: list[repo.NewGrid] = []
    for code in sorted(grids):
        geom = grids[code]
        community_code = code[:12]
        if community_code not in area.community_names:
            raise Infeasible(f"网格 {code} 不在{area.name}内", reason="grid_outside_area")
        if geom is None:
            kept = base_grids[code]
            rows.append(
                repo.NewGrid(
                    code=code,
                    community_code=community_code,
                    town_code=kept.town_code,
                    name=kept.name,
                    wkb=kept.wkb,
                    area_m2=float(to_metric(kept.geom).area),
                    worker_count=int(workers.get(code, staffed.get(code, 0))),
                    population=kept.population,
                )
            )
            continue
        lonlat = drawn[code]
        # The population of the base grids it takes over, each by the share of its area it covers.
        population = sum(
            base.population * geom.intersection(base_metric[c]).area / base_metric[c].area
            for c, base in base_grids.items()
            if base.community_code == community_code and base_metric[c].area > 0 and geom.intersects(base_metric[c])
        )
        name = (
            base_grids[code].name
            if code in base_grids
            else f"{area.community_names[community_code]}第{grid_number(code)}网格"
        )
        rows.append(
            repo.NewGrid(
                code=code,
                community_code=community_code,
                town_code=area.town_code,
                name=name,
                wkb=shapely.to_wkb(_multi(lonlat)),
                area_m2=float(to_metric(lonlat).area),
                worker_count=int(workers.get(code, 0)),
                population=round(population),
            )
        )
    version_id = repo.insert_draft(
        conn,
        name=f"网格调整草案：{area.name}",
        note=f"{area.name}（{area.code}）的网格调整草案，基于版本 {base_version_id}",
        base_version_id=base_version_id,
        area_code=area.code,
        created_by=actor_name,
        created_at=clock.now(),
        figures=figures,
        fingerprint="",
    )
    repo.copy_grids_except(
        conn, from_version=base_version_id, to_version=version_id, community_codes=area.community_codes
    )
    repo.insert_area_grids(conn, version_id, rows, base_version_id=base_version_id)
    repo.count_draft_points(conn, version_id, area.community_codes)
    refresh(conn, version_id=version_id, grid_codes=[r.code for r in rows])
    parts = repo.fingerprint_parts(conn, base_version_id=base_version_id, community_codes=area.community_codes)
    repo.set_fingerprint(conn, version_id, repo.encode_fingerprint(parts))
    return version_id


def _tiled(
    drawn: Mapping[str, BaseGeometry], kept: Mapping[str, BaseGeometry], area: repo.Area
) -> dict[str, BaseGeometry]:
    """The redrawn grids (WGS84) made to tile each community exactly with the grids kept as they are.

    Each new grid is clipped to its community and loses what a kept grid or a new grid of lower code already holds
    (no overlap); each gap piece goes to the new grid sharing its longest edge; a grid left in pieces keeps its
    largest and hands each crumb (< CRUMB_M2) to the neighbour sharing its longest edge. A grid drawn in several
    parts (islands) keeps them.
    """
    out: dict[str, BaseGeometry] = {}
    for community_code in sorted({code[:12] for code in drawn}):
        community = area.community_geoms[community_code]
        lat = float(community.centroid.y)
        crumb = CRUMB_M2 / (111_320.0**2 * float(np.cos(np.radians(lat))))
        codes = sorted(c for c in drawn if c[:12] == community_code)
        taken = shapely.union_all([g for c, g in kept.items() if c[:12] == community_code])
        mine: dict[str, BaseGeometry] = {}
        for code in codes:
            piece = shapely.difference(shapely.intersection(drawn[code], community), taken)
            mine[code] = _polygons(piece)
            taken = shapely.union(taken, mine[code])
        gaps = shapely.difference(community, taken)
        for gap in shapely.get_parts(_polygons(gaps)):
            _give(mine, gap)
        for code in codes:
            parts = list(shapely.get_parts(mine[code]))
            if len(parts) <= 1 or len(shapely.get_parts(drawn[code])) > 1:
                continue
            parts.sort(key=lambda g: -g.area)
            mine[code] = parts[0]
            for part in parts[1:]:
                if part.area < crumb and _give(mine, part, besides=code):
                    continue
                mine[code] = shapely.union(mine[code], part)
        for code in codes:
            one = _polygons(mine[code])
            out[code] = one if not one.is_empty else drawn[code]
    return out


def _polygons(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (a collection's lines and points dropped)."""
    parts = [p for p in shapely.get_parts(shapely.make_valid(geom)) if isinstance(p, (Polygon, MultiPolygon))]
    if not parts:
        return MultiPolygon()
    return shapely.union_all(parts)


def _give(grids: dict[str, BaseGeometry], piece: BaseGeometry, *, besides: str | None = None) -> bool:
    """Add a piece to the grid (other than `besides`) sharing its longest edge; False when none touches it."""
    best, length = None, 0.0
    for code, geom in grids.items():
        if code == besides or not piece.intersects(geom):
            continue
        shared = shapely.intersection(piece.boundary, geom.boundary).length
        if shared > length:
            best, length = code, shared
    if best is None:
        return False
    grids[best] = _polygons(shapely.union(grids[best], piece))
    return True


def _multi(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polygons = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polygons)


def _boundary_segments(geoms: Sequence[BaseGeometry]) -> NDArray[np.object_]:
    """Every straight segment of these polygons' boundaries (WGS84), as 2-point lines."""
    segments: list[NDArray[np.float64]] = []
    for geom in geoms:
        for ring in shapely.get_rings(shapely.get_parts(geom)):
            xy = shapely.get_coordinates(ring)
            if len(xy) > 1:
                segments.append(np.stack([xy[:-1], xy[1:]], axis=1))
    if not segments:
        return np.empty(0, dtype=object)
    stacked = np.concatenate(segments)
    return np.asarray(shapely.linestrings(stacked), dtype=object)


def _snapped(geom: BaseGeometry, segments: NDArray[np.object_]) -> BaseGeometry:
    """`geom` (WGS84) with vertices lying within SNAP_DEGREES of a replaced boundary put exactly on it."""
    if not len(segments):
        return geom
    tree = shapely.STRtree(segments)

    def onto(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        points = shapely.points(coords)
        (point_i, segment_i), distance = tree.query_nearest(
            points, max_distance=SNAP_DEGREES, return_distance=True, all_matches=False
        )
        off = distance > 0
        if not off.any():
            return coords
        lines = segments[segment_i[off]]
        targets = points[point_i[off]]
        placed = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, targets))
        out = np.array(coords, copy=True)
        out[point_i[off]] = shapely.get_coordinates(placed)
        return out

    snapped = shapely.transform(geom, onto)
    if not snapped.is_valid:
        snapped = shapely.make_valid(snapped)
    # A snap that would pinch a grid in two (or leave it invalid) is not taken: one polygon matters more.
    return snapped if isinstance(snapped, Polygon) or not isinstance(geom, Polygon) else geom


# ----------------------------------------------------------------------------------------------- reading drafts


def summary(conn: Connection, version_id: int) -> DraftSummary:
    """A grid version with its figures and whether it is stale (PlanNotFound when unknown)."""
    row = repo.version(conn, version_id)
    if row is None:
        raise PlanNotFound(f"没有编号为 {version_id} 的网格版本", reason="not_found")
    return _summary(conn, row)


def versions(conn: Connection, *, status: str | None = None) -> list[DraftSummary]:
    """Every grid version (or those of one status: draft, active, retired), newest first; staleness of drafts."""
    return [_summary(conn, row) for row in repo.versions(conn, status=status)]


def _summary(conn: Connection, row: repo.VersionRow) -> DraftSummary:
    reasons = _stale_reasons(conn, row) if row.status == "draft" else []
    level: AreaLevelOrCity = "city"
    if row.area_code is not None:
        level = "town" if is_town(row.area_code) else "community"
    return DraftSummary(
        id=row.id,
        area_code=row.area_code,
        area_level=level,
        base_version_id=row.base_version_id,
        status=row.status,
        figures=dict(row.figures or {}),
        created_by=row.created_by,
        created_at=row.created_at,
        stale=bool(reasons),
        name=row.name,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
        stale_reasons=reasons,
    )


def _stale_reasons(conn: Connection, row: repo.VersionRow) -> list[str]:
    """What changed since a draft was drawn (Chinese, one entry per changed part); empty when it is fresh."""
    active = repo.active_version(conn)
    if row.base_version_id is None or active is None or active.id != row.base_version_id:
        return [PART_LABELS_ZH["base"]]
    if row.area_code is None:
        return []
    stored = repo.decode_fingerprint(row.fingerprint)
    now = repo.fingerprint_parts(
        conn, base_version_id=row.base_version_id, community_codes=_community_codes(conn, row.area_code)
    )
    return [f"{PART_LABELS_ZH[k]}已变化" for k in repo.FINGERPRINT_PARTS if stored.get(k) != now[k]]


def _community_codes(conn: Connection, area_code: str) -> tuple[str, ...]:
    area = repo.town_area(conn, area_code) if is_town(area_code) else repo.community_area(conn, area_code)
    if area is None:
        raise PlanNotFound(f"没有编码为 {area_code} 的区域", reason="unknown_area")
    return area.community_codes


def comparison(conn: Connection, version_id: int) -> dict[str, Any]:
    """The draft beside its base: both sets of the area's grids, the pieces that change grid, and the figures."""
    row = repo.version(conn, version_id)
    if row is None:
        raise PlanNotFound(f"没有编号为 {version_id} 的网格版本", reason="not_found")
    if row.base_version_id is None or row.area_code is None:
        raise VersionState(f"网格版本 {version_id} 不是调整草案，没有可比较的基础版本", reason="no_base_version")
    area = _area_of(conn, row.area_code)
    figures = dict(row.figures or {})
    locked = set(figures.get("locked", []))
    after = {g["code"]: g for g in figures.get("grids_after", [])}
    before = {g["code"]: g for g in figures.get("grids_before", [])}
    kept, new = set(figures.get("codes_kept", [])), set(figures.get("codes_new", []))
    current = repo.features(conn, row.base_version_id, area.community_codes)
    draft = repo.features(conn, row.id, area.community_codes)
    for feature in current:
        props = feature["properties"]
        props.update({k: v for k, v in before.get(props["code"], {}).items() if k != "code"})
        props["locked"] = props["code"] in locked
        props["retired"] = props["code"] in set(figures.get("codes_retired", []))
    for feature in draft:
        props = feature["properties"]
        props.update({k: v for k, v in after.get(props["code"], {}).items() if k != "code"})
        props["locked"] = props["code"] in locked
        props["change"] = "new" if props["code"] in new else "kept" if props["code"] in kept else "unchanged"
    moved = repo.moved_pieces(
        conn, base_version_id=row.base_version_id, version_id=row.id, community_codes=area.community_codes
    )
    return {
        "id": row.id,
        "status": row.status,
        "area": row.area_code,
        "area_name": area.name,
        "area_level": area.level,
        "base_version_id": row.base_version_id,
        "current": {"type": "FeatureCollection", "features": current},
        "draft": {"type": "FeatureCollection", "features": draft},
        "moved": {"type": "FeatureCollection", "features": moved},
        "figures": figures,
        "locked": sorted(locked),
    }


def _area_of(conn: Connection, area_code: str) -> repo.Area:
    area = repo.town_area(conn, area_code) if is_town(area_code) else repo.community_area(conn, area_code)
    if area is None:
        raise PlanNotFound(f"没有编码为 {area_code} 的区域", reason="unknown_area")
    return area


def discard(conn: Connection, version_id: int, *, actor_name: str) -> DraftSummary:
    """Discard a draft: its grids and workloads go, its row stays retired with who discarded it (audit).

    PlanNotFound when unknown, VersionState when it is not a draft (an active or retired version is never deleted).
    """
    row = repo.version(conn, version_id, for_update=True)
    if row is None:
        raise PlanNotFound(f"没有编号为 {version_id} 的网格版本", reason="not_found")
    if row.status != "draft":
        state = {"active": "已生效", "retired": "已停用"}.get(row.status, row.status)
        raise VersionState(f"网格版本 {version_id} {state}，只有草案可以删除", reason="not_a_draft")
    repo.discard_draft(conn, version_id, at=clock.now(), actor=actor_name)
    return summary(conn, version_id)


# ------------------------------------------------------------------------------------------------ apply, rollback


def apply(conn: Connection, version_id: int, *, actor_name: str) -> ApplyResult:
    """Make a draft the active version in the caller's transaction: everything of its area moves, audited.

    Refused, with nothing applied: PlanNotFound (unknown), VersionState (not a draft), StaleDraft (its base is no
    longer active, or the area's addresses, entities, open tasks or workers changed since it was drawn).
    """
    started = time.perf_counter()
    repo.lock_versions(conn)
    row = repo.version(conn, version_id, for_update=True)
    if row is None:
        raise PlanNotFound(f"没有编号为 {version_id} 的网格版本", reason="not_found")
    if row.status != "draft":
        state = {"active": "已生效", "retired": "已停用"}.get(row.status, row.status)
        raise VersionState(f"网格版本 {version_id} {state}，只有草案可以生效", reason="not_a_draft")
    reasons = _stale_reasons(conn, row)
    if reasons:
        raise StaleDraft(f"草案 {version_id} 已过期：{'；'.join(reasons)}。请重新生成草案", reason="stale_draft")
    assert row.base_version_id is not None and row.area_code is not None
    area = _area_of(conn, row.area_code)
    targets = repo.planned_workers(conn, row.id, area.community_codes)
    return _activate(
        conn,
        old_version=row.base_version_id,
        new_version=row.id,
        area=area,
        kind="grid_apply",
        actor_name=actor_name,
        reason=f"网格版本 {row.id} 生效",
        targets=targets,
        restore={},
        started=started,
    )


def rollback(conn: Connection, *, actor_name: str) -> ApplyResult:
    """Restore the active version's base version the same way (the rolled-back version is retired)."""
    started = time.perf_counter()
    repo.lock_versions(conn)
    active = repo.active_version(conn, for_update=True)
    if active is None or active.base_version_id is None or active.area_code is None:
        raise VersionState("当前生效的网格版本没有可回退的上一版本", reason="nothing_to_roll_back")
    base = repo.version(conn, active.base_version_id, for_update=True)
    if base is None or base.status != "retired":
        raise VersionState(f"上一版本 {active.base_version_id} 不可恢复", reason="nothing_to_roll_back")
    area = _area_of(conn, active.area_code)
    applied = repo.last_batch(conn, kind="grid_apply", version_id=active.id)
    restore = repo.worker_moves_of_batch(conn, applied) if applied is not None else {}
    return _activate(
        conn,
        old_version=active.id,
        new_version=base.id,
        area=area,
        kind="grid_rollback",
        actor_name=actor_name,
        reason=f"网格版本 {active.id} 回退，恢复网格版本 {base.id}",
        targets=None,
        restore=restore,
        started=started,
    )


def _activate(
    conn: Connection,
    *,
    old_version: int,
    new_version: int,
    area: repo.Area,
    kind: str,
    actor_name: str,
    reason: str,
    targets: Mapping[str, int] | None,
    restore: Mapping[int, str],
    started: float,
) -> ApplyResult:
    """Switch the active version from `old_version` to `new_version` and move the area's objects with it."""
    at = clock.now()
    actor = Actor(actor_name, "planning")
    communities = area.community_codes
    batch = repo.insert_batch(
        conn, kind=kind, version_id=new_version, area_code=area.code, actor=actor_name, at=at, reason=reason
    )
    retired = repo.retired_code_map(conn, old_version=old_version, new_version=new_version, community_codes=communities)
    workers = repo.area_workers(conn, old_version, communities)
    repo.switch_active(conn, retire=old_version, activate=new_version, at=at)
    new_codes = {g.code for g in repo.grids_of(conn, new_version, communities)}
    grid_of = {w.id: w.grid_code for w in workers}
    final = dict(grid_of)
    for w in workers:
        if w.grid_code in retired:
            final[w.id] = retired[w.grid_code]
        if w.id in restore and restore[w.id] in new_codes:
            final[w.id] = restore[w.id]
    repo.move_workers_to_version(
        conn,
        old_version=old_version,
        new_version=new_version,
        grid_of={w: code for w, code in final.items() if code != grid_of[w]},
    )
    moved = repo.relocate_points(conn, batch_id=batch, version_id=new_version, community_codes=communities)
    tasks = repo.relocate_open_tasks(conn, community_codes=communities, retired=retired, at=at)
    write_events(
        conn,
        [
            TaskEvent(
                task_id=t.id,
                from_status=t.status,
                to_status=t.status,
                actor=actor_name,
                at=at,
                note=f"{reason}：任务随所在位置由网格 {t.old_grid} 调入网格 {t.new_grid}",
                worker_id=t.worker_id,
                holder=Holder.read(t.holder),
                due_at=t.due_at,
            )
            for t in tasks
        ],
    )
    repo.record_moves(conn, batch, "task", [(str(t.id), t.old_grid, t.new_grid) for t in tasks])
    moved["task"] = len(tasks)
    if targets is not None:
        restaffed = _restaff(conn, new_version, area, [w for w in workers if w.active], final, targets)
        repo.set_worker_grids(conn, restaffed)
        final.update(restaffed)
    worker_moves = [(str(w), grid_of[w], final[w]) for w in sorted(final) if final[w] != grid_of[w]]
    repo.record_moves(conn, batch, "worker", worker_moves)
    moved["worker"] = len(worker_moves)
    waiting = repo.tasks_to_hand_over(conn, communities)
    handed = assign_to_workers(
        conn, [t for t, _ in waiting], actor=actor, at=at, note=f"{reason}：网格员调整后按规则改派"
    )
    held = {t for t, worker in waiting if worker is not None}
    moved["handed_over"] = sum(1 for t, worker in handed.items() if worker is not None or t in held)
    repo.refresh_grid_counts(conn, new_version, communities)
    # Workers outside the area moved too while the other version was active (staffing): every grid is recounted.
    repo.recount_workers(conn, new_version)
    refresh(conn, version_id=new_version, grid_codes=sorted(new_codes))
    seconds = round(time.perf_counter() - started, 3)
    repo.finish_batch(
        conn,
        batch,
        {
            "moved": moved,
            "retired_codes": retired,
            "from_version": old_version,
            "to_version": new_version,
            "seconds": seconds,
        },
    )
    return ApplyResult(
        batch_id=batch,
        version_id=new_version,
        retired_version_id=old_version,
        area_code=area.code,
        moved=moved,
        seconds=seconds,
    )


def _restaff(
    conn: Connection,
    version_id: int,
    area: repo.Area,
    active: Sequence[repo.WorkerRow],
    grid_of: Mapping[int, str],
    targets: Mapping[str, int],
) -> dict[int, str]:
    """The fewest worker moves that give each grid of the area its planned head-count (worker → new grid)."""
    codes = sorted(targets)
    hours = grid_workloads(conn, version_id=version_id, grid_codes=codes)
    points = repo.grid_centroids(conn, version_id, codes)
    lon = np.array([points[c][0] for c in codes])
    lat = np.array([points[c][1] for c in codes])
    x_m, y_m = lonlat_to_metric(lon, lat)
    members: dict[str, list[repo.WorkerRow]] = {c: [] for c in codes}
    for w in active:
        code = grid_of[w.id]
        if code in members:
            members[code].append(w)
    staff = [
        GridStaff(
            code=code,
            town_code=area.town_code,
            community_code=code[:12],
            hours=float(hours[code].hours) if code in hours else 0.0,
            workers=tuple(w.id for w in sorted(members[code], key=lambda w: (w.open_tasks, w.id))),
            x=float(x_m[i]),
            y=float(y_m[i]),
        )
        for i, code in enumerate(codes)
    ]
    within: Literal["town", "community"] = "town" if area.level == "town" else "community"
    return {m.worker_id: m.to_grid for m in plan_moves(staff, dict(targets), within=within)}
