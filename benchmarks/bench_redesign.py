"""benchmarks.bench_redesign: the least-disruption grid redesign on the bench city, against same-run baselines.

Read-only (one transaction, rolled back). Inputs are the real ones the draft versions use: the active grids and
communities, `planning.workload_service.area_work` (hours placed on points, addresses, roads) and the active workers
per grid. The scenario of the issue is made in memory: the work of one grid is doubled (the hours of its points x2:
the grid of each area with the most located hours), and one other grid is locked (one that some head-count in
[min, max] balances after the doubling, nearest the mean with its own: the lock itself leaves balance possible).

Areas: (a) ten communities of five grids, spread over the city; (b) the town whose grid count is nearest 100, every
community redrawn at the town's mean (`town_redesign`).

Methods and baselines on the same areas, in the same run:
- `local`, `cpsat` (communities only: small areas) and `auto` (what `gridgov grids redesign` uses);
- the from-scratch partition (`grids.partition`, the same k per community, hours as weights; head-counts then chosen
  for it by the same rule, at no price per worker moved, and codes matched to the current grids by addresses);
- GerryChain ReCom started from the current plan, on the same units (hours as population, target = the mean per
  grid, splits within ±50% of it: at ±10% no pair holding the doubled grid can be split), for the same time
  budget (5 s per community, 60 s for the town), keeping its best plan by balance;
  head-counts chosen the same way.
Figures: seconds, worst deviation of hours per worker from the mean, share of grids within ±10%, worst
Polsby-Popper against the current plan's worst, share of addresses kept in their grid.

Raises BenchmarkFailed when a redesign is wrong: a gap or overlap, a grid in several pieces, a changed locked grid,
head-counts outside [min, max] or not summing to the total.
"""

from __future__ import annotations

import math
import random
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from benchmarks.common import BenchmarkFailed
from gis.crs import to_metric
from gis.settings import DatabaseSettings
from grids.partition import partition
from grids.repository import geometries_by_code
from planning.errors import PlanningError
from planning.grid_version_repository import active_workers_by_grid
from planning.redesign import Problem, Solution, build_units, redesign, town_redesign, unit_work
from planning.redesign.figures import polsby_popper
from planning.redesign.workers import choose_workers
from planning.workload import load_standards
from planning.workload_service import AreaWork, area_work

COMMUNITIES = 10
GRIDS_PER_COMMUNITY = 5
TOWN_GRIDS = 100
COMMUNITY_BUDGET_S = 5.0
TOWN_BUDGET_S = 60.0
TOLERANCE = 0.10
KEPT_BUDGET = 0.80
# ReCom splits a merged pair only into halves within this share of the target: at ±10% no pair that holds the doubled
# grid can be split at all (the chain never moves), so it runs looser and keeps its best plan by balance.
RECOM_EPSILON = 0.5
# A tiling is exact when gaps and overlaps together are below this share of the area (float noise of the noding).
_TILING_SHARE = 1e-6

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Case:
    """One area of the scenario: its Problem per community, the doubled and the locked grid."""

    name: str
    problems: dict[str, Problem]
    areas: dict[str, BaseGeometry]
    doubled: str
    locked: str | None
    points_xy: dict[str, FloatArray]
    points_hours: dict[str, FloatArray]
    address_xy: dict[str, FloatArray]
    work: AreaWork
    town_floor: float  # Polsby-Popper of the worst grid of the area's town today


@dataclass
class Outcome:
    """What one method did on one area."""

    seconds: float
    refused: str | None = None
    max_deviation: float = math.nan
    within: float = math.nan  # share of grids within ±10%
    worst_pp: float = math.nan
    worst_pp_before: float = math.nan
    kept: float = math.nan
    notes: list[str] = field(default_factory=list)


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """The redesign section of RESULTS.md: communities and a town, every method beside the baselines."""
    del settings
    standards = load_standards()
    with engine.connect() as conn:
        version = int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())
        grids = {c: to_metric(g) for c, g in geometries_by_code(conn, "grid", version_id=version).items()}
        communities = {c: to_metric(g) for c, g in geometries_by_code(conn, "community").items()}
        picked = _pick_communities(conn, version)
        town = _pick_town(conn, version)
        cases = [
            _case(
                conn,
                version,
                [c],
                grids,
                communities,
                name=c,
                standards_min=standards.min_workers,
                standards_max=standards.max_workers,
            )
            for c in picked
        ]
        town_communities = [
            str(c)
            for c in conn.execute(
                text(
                    "SELECT DISTINCT community_code FROM grid WHERE version_id = :v AND town_code = :t "
                    "ORDER BY community_code"
                ),
                {"v": version, "t": town},
            ).scalars()
        ]
        town_case = _case(
            conn,
            version,
            town_communities,
            grids,
            communities,
            name=town,
            standards_min=standards.min_workers,
            standards_max=standards.max_workers,
        )
        conn.rollback()
    community_rows = _community_table(cases)
    town_rows = _town_table(town_case)
    return "\n".join([_intro(cases, town_case), "", community_rows, "", town_rows])


# --- choosing the areas ---------------------------------------------------------------------------------------------


def _pick_communities(conn: Connection, version: int) -> list[str]:
    """Ten communities of five grids, spread evenly over the list of such communities (by code)."""
    codes = [
        str(c)
        for c in conn.execute(
            text(
                "SELECT community_code FROM grid WHERE version_id = :v GROUP BY community_code "
                "HAVING count(*) = :n ORDER BY community_code"
            ),
            {"v": version, "n": GRIDS_PER_COMMUNITY},
        ).scalars()
    ]
    if len(codes) < COMMUNITIES:
        raise BenchmarkFailed(f"only {len(codes)} communities of {GRIDS_PER_COMMUNITY} grids in the bench city")
    step = len(codes) / COMMUNITIES
    return [codes[int(i * step)] for i in range(COMMUNITIES)]


def _pick_town(conn: Connection, version: int) -> str:
    """The town whose number of grids is nearest TOWN_GRIDS (lower code on ties)."""
    rows = conn.execute(
        text("SELECT town_code, count(*) FROM grid WHERE version_id = :v GROUP BY town_code ORDER BY town_code"),
        {"v": version},
    ).all()
    return str(min(rows, key=lambda r: (abs(int(r[1]) - TOWN_GRIDS), str(r[0])))[0])


def _case(
    conn: Connection,
    version: int,
    community_codes: Sequence[str],
    grids: Mapping[str, BaseGeometry],
    communities: Mapping[str, BaseGeometry],
    *,
    name: str,
    standards_min: int,
    standards_max: int,
) -> Case:
    """Load an area, double its busiest grid's located hours, lock the grid nearest the mean, build the Problems."""
    work = area_work(conn, community_codes)
    grid_rows = conn.execute(
        text("SELECT code, community_code FROM grid WHERE version_id = :v AND community_code = ANY(:c) ORDER BY code"),
        {"v": version, "c": list(community_codes)},
    ).all()
    by_community: dict[str, dict[str, BaseGeometry]] = {}
    for code, community in grid_rows:
        by_community.setdefault(str(community), {})[str(code)] = grids[str(code)]
    workers = active_workers_by_grid(conn, version, community_codes)
    point_owner = _owner(by_community, work.points_xy)
    address_owner = _owner(by_community, work.address_xy)
    point_hours = np.bincount(point_owner.codes_idx, weights=work.points_hours, minlength=len(point_owner.codes) + 1)
    doubled_idx = int(np.argmax(point_hours[: len(point_owner.codes)]))
    doubled = point_owner.codes[doubled_idx]
    hours = work.points_hours.copy()
    hours[point_owner.codes_idx == doubled_idx] *= 2.0
    problems: dict[str, Problem] = {}
    points_xy, points_hours, address_xy = {}, {}, {}
    for community, members in sorted(by_community.items()):
        in_p = point_owner.community == community
        in_a = address_owner.community == community
        area = communities[community]
        units = build_units(area, members)
        unit_hours, unit_addresses = unit_work(
            units,
            work.points_xy[in_p],
            hours[in_p],
            work.address_xy[in_a],
            work.hours_per_m2,
            work.hours_per_road_m,
            [r for r in work.roads if r.intersects(area)],
        )
        problems[community] = Problem(
            units=units,
            unit_hours=unit_hours,
            unit_addresses=unit_addresses,
            current=members,
            workers={c: int(workers.get(c, 0)) for c in members},
            tolerance=TOLERANCE,
            min_workers=standards_min,
            max_workers=standards_max,
            new_codes=[f"{community}N{i}" for i in range(1, 4)],
        )
        points_xy[community], points_hours[community], address_xy[community] = (
            work.points_xy[in_p],
            hours[in_p],
            work.address_xy[in_a],
        )
    locked = _lock(problems, doubled)
    if locked is not None:
        owner = next(c for c, p in problems.items() if locked in p.current)
        problems[owner] = replace(problems[owner], locked=frozenset({locked}))
    return Case(
        name,
        problems,
        {c: communities[c] for c in problems},
        doubled,
        locked,
        points_xy,
        points_hours,
        address_xy,
        work,
        # Grid codes start with their community's code, whose first nine digits name the town.
        min(polsby_popper(g) for c, g in grids.items() if c.startswith(community_codes[0][:9])),
    )


@dataclass(frozen=True)
class _Owners:
    codes: list[str]
    codes_idx: NDArray[np.int64]  # index into codes, len(codes) when outside
    community: NDArray[np.object_]


def _owner(by_community: Mapping[str, Mapping[str, BaseGeometry]], xy: FloatArray) -> _Owners:
    """The grid (lowest code on shared edges) and community of each point."""
    codes = sorted(c for members in by_community.values() for c in members)
    community_of = {c: com for com, members in by_community.items() for c in members}
    geoms = [next(m[c] for m in by_community.values() if c in m) for c in codes]
    idx = np.full(len(xy), len(codes), dtype=np.int64)
    if len(xy):
        p_idx, g_idx = shapely.STRtree(geoms).query(shapely.points(xy), predicate="covered_by")
        np.minimum.at(idx, p_idx, g_idx.astype(np.int64))
    community = np.asarray([community_of[codes[i]] if i < len(codes) else None for i in idx], dtype=object)
    return _Owners(codes, idx, community)


def _lock(problems: Mapping[str, Problem], doubled: str) -> str | None:
    """The grid (not the doubled one) whose hours per worker are nearest the area's mean after the doubling."""
    hours_total = sum(float(p.unit_hours.sum()) for p in problems.values())
    workers_total = sum(sum(p.workers.values()) for p in problems.values())
    mean = hours_total / max(workers_total, 1)
    best: tuple[float, float, str] | None = None
    for p in problems.values():
        for code in sorted(p.current):
            if code == doubled or p.workers[code] <= 0:
                continue
            hours = float(p.unit_hours[p.units.grid == code].sum())
            # Lockable: some head-count balances it (a locked grid keeps its outline, not necessarily its staff).
            reachable = min(abs(hours / (w * mean) - 1.0) for w in range(p.min_workers, p.max_workers + 1))
            key = (round(reachable, 6), abs(hours / p.workers[code] / mean - 1.0), code)
            if best is None or key < best:
                best = key
    return best[2] if best is not None else None


# --- checks ---------------------------------------------------------------------------------------------------------


def _check(solution: Solution, problem: Problem, area: BaseGeometry, what: str, *, town_run: bool = False) -> None:
    """Raise BenchmarkFailed unless the solution tiles the area, keeps grids whole and locks exact, staffs right."""
    geoms = list(solution.grids.values())
    union = shapely.union_all(geoms)
    gap = float(shapely.union_all(list(problem.current.values())).symmetric_difference(union).area)
    overlap = float(sum(g.area for g in geoms) - union.area)
    if gap > _TILING_SHARE * area.area or overlap > _TILING_SHARE * area.area:
        raise BenchmarkFailed(
            f"{what}: the grids do not tile the area (gap/difference {gap:.3f} m², overlap {overlap:.3f} m²)"
        )
    for code, geom in solution.grids.items():
        # An unchanged grid is the stored object itself (a MultiPolygon of one part in the database); a grid that
        # already spans islands of the community keeps them, no more.
        before = shapely.get_num_geometries(problem.current[code]) if code in problem.current else 1
        if shapely.get_num_geometries(geom) > max(before, 1):
            raise BenchmarkFailed(f"{what}: grid {code} is in several pieces")
    for code in problem.locked:
        if solution.grids.get(code) is not problem.current[code]:
            raise BenchmarkFailed(f"{what}: locked grid {code} changed")
    # A town run apportions the town's workers among its communities: there the total is checked town-wide.
    total = problem.total_workers if problem.total_workers is not None else sum(problem.workers.values())
    if (town_run is False and sum(solution.workers.values()) != total) or not all(
        problem.min_workers <= w <= problem.max_workers for w in solution.workers.values()
    ):
        raise BenchmarkFailed(f"{what}: head-counts {solution.workers} break [min, max] or the total {total}")


# --- methods --------------------------------------------------------------------------------------------------------


def _ours(case: Case, method: str, budget_s: float, *, town_floor: bool = False) -> Outcome:
    """Run the redesign (per community, or town-wide) with a method; check and measure it.

    town_floor: the Polsby-Popper floor is the worst grid of the town today instead of the area's own worst.
    """
    if town_floor:
        case = replace(case, problems={c: replace(p, pp_floor=case.town_floor) for c, p in case.problems.items()})
    problems = {
        c: replace(p, method=method, time_limit_s=budget_s if len(case.problems) == 1 else p.time_limit_s)
        for c, p in case.problems.items()
    }
    started = time.perf_counter()
    try:
        if len(problems) == 1:
            ((code, problem),) = problems.items()
            solutions = {code: redesign(problem)}
        else:
            solutions = town_redesign(problems)
    except PlanningError as error:
        return Outcome(seconds=time.perf_counter() - started, refused=f"{error.reason}: {error}")
    seconds = time.perf_counter() - started
    for code, solution in solutions.items():
        _check(solution, problems[code], case.areas[code], f"{case.name}/{code} ({method})", town_run=len(problems) > 1)
    staffed = sum(sum(s.workers.values()) for s in solutions.values())
    if staffed != sum(sum(p.workers.values()) for p in problems.values()):
        raise BenchmarkFailed(f"{case.name} ({method}): {staffed} workers planned, not the area's total")
    before = [r for s in solutions.values() for r in s.figures.grids_before]
    after = [r for s in solutions.values() for r in s.figures.grids_after]
    total = sum(int(r["addresses"]) for r in before)
    moved = sum(s.figures.addresses_moved for s in solutions.values())
    return Outcome(
        seconds=seconds,
        max_deviation=max(abs(r["deviation"]) for r in after),
        within=float(np.mean([abs(r["deviation"]) <= TOLERANCE + 1e-9 for r in after])),
        worst_pp=min(r["polsby_popper"] for r in after),
        worst_pp_before=min(r["polsby_popper"] for r in before),
        kept=(total - moved) / total if total else 1.0,
        notes=sorted({m for s in solutions.values() for m in [s.figures.method]}),
    )


def _draw_default(case: Case) -> Outcome:
    """What a community draw does without --pp-floor: the community's own worst grid as the floor (local search,
    fast), and when no plan balances there, the town's worst grid (auto); both attempts count in its seconds."""
    first = _ours(case, "local", COMMUNITY_BUDGET_S)
    if first.refused is None or not first.refused.startswith("no_balanced_plan"):
        return first
    second = _ours(case, "auto", max(COMMUNITY_BUDGET_S - first.seconds, 0.5), town_floor=True)
    return replace(second, seconds=first.seconds + second.seconds)


def _measure_parts(
    case: Case, community: str, parts: Sequence[BaseGeometry], mean: float, total_workers: int
) -> tuple[list[float], list[float], int, int]:
    """Deviations (best head-counts), Polsby-Popper, addresses kept and total for plain polygons of one community."""
    problem = case.problems[community]
    work = case.work
    geoms = list(parts)
    tree = shapely.STRtree(geoms)
    xy = case.points_xy[community]
    owner = np.full(len(xy), len(geoms), dtype=np.int64)
    if len(xy):
        p_idx, g_idx = tree.query(shapely.points(xy), predicate="covered_by")
        np.minimum.at(owner, p_idx, g_idx.astype(np.int64))
    hours = np.bincount(owner, weights=case.points_hours[community], minlength=len(geoms) + 1)[: len(geoms)]
    roads = [r for r in work.roads if r.intersects(case.areas[community])]
    road_m = np.zeros(len(geoms))
    if roads:
        road_arr = np.asarray(roads, dtype=object)
        r_idx, g_idx = tree.query(road_arr, predicate="intersects")
        lengths = shapely.length(shapely.intersection(np.asarray(geoms, dtype=object)[g_idx], road_arr[r_idx]))
        road_m = np.bincount(g_idx, weights=lengths, minlength=len(geoms))
    hours = hours + np.asarray([g.area for g in geoms]) * work.hours_per_m2 + road_m * work.hours_per_road_m
    workers = choose_workers(
        hours,
        np.full(len(geoms), 3, dtype=np.int64),
        total_workers,
        mean,
        TOLERANCE,
        min_workers=problem.min_workers,
        max_workers=problem.max_workers,
        move_cost_hours=0.0,
    )
    deviation = list(hours / (workers * mean) - 1.0)
    pp = [polsby_popper(g) for g in geoms]
    kept, total = _kept(case, community, geoms)
    return deviation, pp, kept, total


def _kept(case: Case, community: str, parts: Sequence[BaseGeometry]) -> tuple[int, int]:
    """Addresses that stay with the current grid the part inherits (one-to-one matching by addresses)."""
    problem = case.problems[community]
    xy = case.address_xy[community]
    codes = sorted(problem.current)
    points = shapely.points(xy)
    before = np.full(len(xy), -1)
    after = np.full(len(xy), -1)
    for i, code in enumerate(codes):
        before[(before < 0) & shapely.covers(problem.current[code], points)] = i
    for j, part in enumerate(parts):
        after[(after < 0) & shapely.covers(part, points)] = j
    overlap = np.zeros((len(parts), len(codes)))
    ok = (before >= 0) & (after >= 0)
    np.add.at(overlap, (after[ok], before[ok]), 1)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return int(overlap[rows, cols].sum()), len(xy)


def _partition_baseline(case: Case) -> Outcome:
    """grids.partition from scratch on every community (same k), hours as the points' weights."""
    started = time.perf_counter()
    mean, totals = _means(case)
    deviations: list[float] = []
    pps: list[float] = []
    kept = total = 0
    for community, problem in case.problems.items():
        parts = partition(
            case.areas[community], case.points_xy[community], case.points_hours[community], len(problem.current)
        )
        d, pp, k, t = _measure_parts(case, community, parts, mean, totals[community])
        deviations += d
        pps += pp
        kept += k
        total += t
    return Outcome(
        seconds=time.perf_counter() - started,
        max_deviation=max(abs(d) for d in deviations),
        within=float(np.mean([abs(d) <= TOLERANCE + 1e-9 for d in deviations])),
        worst_pp=min(pps),
        kept=kept / total if total else 1.0,
    )


def _means(case: Case) -> tuple[float, dict[str, int]]:
    """The area's mean hours per worker and each community's worker total (the town apportionment when a town)."""
    from planning.redesign.town import apportion

    hours = {c: float(p.unit_hours.sum()) for c, p in case.problems.items()}
    workers = sum(sum(p.workers.values()) for p in case.problems.values())
    mean = sum(hours.values()) / workers
    if len(case.problems) == 1:
        (c,) = case.problems
        return mean, {c: workers}
    return mean, apportion(case.problems, hours, mean, workers)


def _recom_baseline(case: Case, budget_s: float) -> Outcome:
    """GerryChain ReCom on each community's units from the current plan, for the budget; its best plan by balance."""
    import networkx as nx
    from gerrychain import Graph, Partition
    from gerrychain.proposals import recom
    from gerrychain.proposals.tree_proposals import MetagraphError
    from gerrychain.tree import ReselectException, bipartition_tree
    from gerrychain.updaters import Tally

    started = time.perf_counter()
    mean, totals = _means(case)
    deviations: list[float] = []
    pps: list[float] = []
    kept = total = 0
    steps = failed = 0
    per_community = budget_s / len(case.problems)
    for community, problem in sorted(case.problems.items()):
        units = problem.units
        locked_units = {u for u in range(len(units.geoms)) if units.grid[u] in problem.locked}
        network = nx.Graph()
        for u in range(len(units.geoms)):
            if u not in locked_units:
                network.add_node(u, hours=float(problem.unit_hours[u]))
        for (a, b), length in zip(units.edges.tolist(), units.edge_length_m.tolist(), strict=True):
            if a not in locked_units and b not in locked_units:
                network.add_edge(a, b, shared_perim=length)
        free = Graph.from_networkx(network)
        codes = sorted(c for c in problem.current if c not in problem.locked)
        assignment = {u: codes.index(str(units.grid[u])) for u in free.nodes}
        k = len(codes)
        target = float(sum(problem.unit_hours[u] for u in free.nodes)) / max(k, 1)
        initial = Partition(free, assignment, updaters={"hours": Tally("hours", alias="hours")})
        best = initial
        best_dev = _recom_deviation(initial, mean, totals, community, problem)
        if k >= 2:
            rng = random.Random(0)
            # Few attempts per pair, and a pair that cannot be split within the tolerance is simply another step:
            # ReCom's own rule of redrawing two whole districts at a time is what is measured. (A community of islands
            # is a disconnected graph, which gerrychain's tree code answers with a KeyError: also just a failed step.)
            split = partial(bipartition_tree, max_attempts=200, warn_attempts=10**9, allow_pair_reselection=True)
            proposal = partial(
                recom,
                pop_col="hours",
                pop_target=target,
                epsilon=RECOM_EPSILON,
                node_repeats=2,
                bipartition_tree_fn=split,
                rng=rng,
            )
            state = initial
            deadline = time.perf_counter() + per_community
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                while time.perf_counter() < deadline:
                    steps += 1
                    try:
                        state = proposal(state)
                    except (RuntimeError, ValueError, KeyError, ReselectException, MetagraphError):
                        failed += 1
                        continue
                    dev = _recom_deviation(state, mean, totals, community, problem)
                    if dev < best_dev:
                        best, best_dev = state, dev
        # The chain's graph is backed by rustworkx: its node ids are translated back to the unit indices.
        nodes = {part: best.graph.original_nx_node_ids_for_set(set(best.parts[part])) for part in sorted(best.parts)}
        parts = [shapely.union_all([units.geoms[int(u)] for u in nodes[part]]) for part in sorted(nodes)]
        parts += [problem.current[c] for c in sorted(problem.locked)]
        d, pp, kk, t = _measure_parts(case, community, parts, mean, totals[community])
        deviations += d
        pps += pp
        kept += kk
        total += t
    return Outcome(
        seconds=time.perf_counter() - started,
        max_deviation=max(abs(d) for d in deviations),
        within=float(np.mean([abs(d) <= TOLERANCE + 1e-9 for d in deviations])),
        worst_pp=min(pps),
        kept=kept / total if total else 1.0,
        notes=[f"{steps} steps, {failed} without a balanced split"],
    )


def _recom_deviation(state: object, mean: float, totals: Mapping[str, int], community: str, problem: Problem) -> float:
    """Worst deviation of a ReCom plan once the free head-count is spread by the same rule."""
    hours_by_part = state["hours"]  # type: ignore[index]
    parts = sorted(hours_by_part)
    hours = np.asarray([hours_by_part[p] for p in parts], dtype=np.float64)
    locked_workers = sum(problem.workers[c] for c in problem.locked)
    free_total = totals[community] - locked_workers
    if not len(parts) * problem.min_workers <= free_total <= len(parts) * problem.max_workers:
        return math.inf
    workers = choose_workers(
        hours,
        np.full(len(parts), 3, dtype=np.int64),
        free_total,
        mean,
        TOLERANCE,
        min_workers=problem.min_workers,
        max_workers=problem.max_workers,
        move_cost_hours=0.0,
    )
    return float(np.max(np.abs(hours / (workers * mean) - 1.0)))


# --- tables ---------------------------------------------------------------------------------------------------------


def _intro(cases: Sequence[Case], town: Case) -> str:
    """What was run."""
    units = [sum(len(p.units.geoms) for p in c.problems.values()) for c in cases]
    town_units = sum(len(p.units.geoms) for p in town.problems.values())
    town_grids = sum(len(p.current) for p in town.problems.values())
    return (
        f"Scenario (in memory, nothing written): in each area the grid with the most located hours gets its work "
        f"doubled and the grid nearest the mean after that is locked. {len(cases)} communities of "
        f"{GRIDS_PER_COMMUNITY} grids ({min(units)}–{max(units)} units each) and town {town.name} "
        f"({len(town.problems)} communities, {town_grids} grids, {town_units} units). Budgets: ≤ "
        f"{COMMUNITY_BUDGET_S:.0f} s per community, ≤ {TOWN_BUDGET_S:.0f} s per town; every grid within "
        f"±{TOLERANCE:.0%} of the mean hours per worker; ≥ {KEPT_BUDGET:.0%} of addresses keep their grid; worst "
        f"Polsby-Popper not below the current plan's worst."
    )


def _community_table(cases: Sequence[Case]) -> str:
    """One row per method over the ten communities."""
    results: dict[str, list[Outcome]] = {
        "local": [],
        "cpsat": [],
        "auto": [],
        "auto_town_floor": [],
        "default": [],
        "partition": [],
        "recom": [],
    }
    for case in cases:
        for method in ("local", "cpsat", "auto"):
            results[method].append(_ours(case, method, COMMUNITY_BUDGET_S))
        results["auto_town_floor"].append(_ours(case, "auto", COMMUNITY_BUDGET_S, town_floor=True))
        results["default"].append(_draw_default(case))
        results["partition"].append(_partition_baseline(case))
        results["recom"].append(_recom_baseline(case, COMMUNITY_BUDGET_S))
    rows = [
        "**(a) Ten communities of five grids** (one grid's work doubled, one grid locked)",
        "",
        "| method | balanced plans | seconds (median / max) | worst deviation (median / max) | grids within ±10% "
        "| worst PP after (min) vs before | addresses kept (min / mean) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "local": "redesign `local`",
        "cpsat": "redesign `cpsat`",
        "auto": "redesign `auto` (the CLI default)",
        "auto_town_floor": "redesign `auto`, PP floor = the town's worst grid today (`--pp-floor`)",
        "default": "**`gridgov grids redesign --community` as it runs**: own worst floor, else the town's",
        "partition": "baseline: `grids.partition` from scratch",
        "recom": "baseline: GerryChain ReCom, 5 s",
    }
    for method, outcomes in results.items():
        rows.append(_row(labels[method], outcomes))
    refusals = [
        f"{c.name} {m}: {o.refused}"
        for m, outs in results.items()
        for c, o in zip(cases, outs, strict=True)
        if o.refused
    ]
    if refusals:
        rows += ["", "Refused: " + "; ".join(refusals)]
    return "\n".join(rows)


def _row(label: str, outcomes: Sequence[Outcome]) -> str:
    """A table row summarising a method's outcomes."""
    done = [o for o in outcomes if o.refused is None]
    balanced = sum(1 for o in done if o.max_deviation <= TOLERANCE + 1e-9)
    seconds = [o.seconds for o in outcomes]
    if not done:
        return (
            f"| {label} | 0 / {len(outcomes)} | {statistics.median(seconds):.2f} / {max(seconds):.2f} | – | – | – | – |"
        )
    devs = [o.max_deviation for o in done]
    before = [o.worst_pp_before for o in done if not math.isnan(o.worst_pp_before)]
    pp_before = f" vs {min(before):.3f}" if before else ""
    return (
        f"| {label} | {balanced} / {len(outcomes)} | {statistics.median(seconds):.2f} / {max(seconds):.2f} "
        f"| {statistics.median(devs):.1%} / {max(devs):.1%} | {statistics.mean(o.within for o in done):.0%} "
        f"| {min(o.worst_pp for o in done):.3f}{pp_before} "
        f"| {min(o.kept for o in done):.1%} / {statistics.mean(o.kept for o in done):.1%} |"
    )


def _town_table(case: Case) -> str:
    """The town-wide run: local and auto, against the baselines."""
    outcomes = {
        "redesign `local`": _ours(case, "local", TOWN_BUDGET_S),
        "redesign `auto` (the CLI default)": _ours(case, "auto", TOWN_BUDGET_S),
        "baseline: `grids.partition` from scratch": _partition_baseline(case),
        f"baseline: GerryChain ReCom, {TOWN_BUDGET_S:.0f} s": _recom_baseline(case, TOWN_BUDGET_S),
    }
    rows = [
        f"**(b) Town {case.name}** ({sum(len(p.current) for p in case.problems.values())} grids; every community "
        "at the town's mean)",
        "",
        "| method | seconds | worst deviation | grids within ±10% | worst PP after vs before | addresses kept |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, o in outcomes.items():
        if o.refused:
            rows.append(f"| {label} | {o.seconds:.1f} | refused: {o.refused} | – | – | – |")
            continue
        before = "" if math.isnan(o.worst_pp_before) else f" vs {o.worst_pp_before:.3f}"
        rows.append(
            f"| {label} | {o.seconds:.1f} | {o.max_deviation:.1%} | {o.within:.0%} | {o.worst_pp:.3f}{before} "
            f"| {o.kept:.1%} |"
        )
    return "\n".join(rows)
