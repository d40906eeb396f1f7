"""benchmarks.bench_inspection_routes: a 100-stop team-day problem with business-hours windows on the city's roads.

Budget (issue 16): ≤ 2 s, within 3 % of the same solver given 60 s (measured once, in the same run). 100 open
entities of the bench city's busiest town (chosen by a hash of their credit code), business hours by the draw's rule
(planning.draw.business_hours), 20–50 minutes of service each; one office (the town's most central of them, moved
a street away), team-days 08:30–17:30 as vehicles. Reported beside it: VROOM (pyvroom, exploration level 5, one
thread) on the same matrix as the speed reference, and the road network against straight lines: the matrix build,
the mean ratio of road to straight-line times, and the routes planned on straight-line times driven on road times.
Then the service path: a joint plan of the town created and drawn by the services, its team days solved, stored and
read back with their road paths (in a transaction rolled back at the end).

BenchmarkFailed when our 2 s answer is more than 3 % above the 60 s one, a route breaks a window (recomputed here
from the matrix), or a stop is lost.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import vroom
from sqlalchemy import Engine, text

from benchmarks.common import BenchmarkFailed
from gis import clock
from gis.settings import DatabaseSettings
from planning import inspection_plans
from planning.draw import business_hours
from planning.route_service import plan_routes, solve_plan_routes
from planning.routing.travel import RoadNetwork, StraightLine
from planning.routing.vrp import Job, Problem, Solution, Vehicle, evaluate, solve
from supervision.scope import CITY
from synthetic.inspections import load_inspection_lists

# Seals the benchmark plans' server seeds until their draw (any fixed secret of 32+ characters will do).
BENCH_SECRET_KEY = "gridgov-benchmark-secret-" + "b" * 32

BUDGET_S = 2.0
REFERENCE_S = 60.0
GAP_BUDGET = 0.03
STOPS = 100
TEAM_DAYS = 10
DAY = (8 * 3600 + 1800, 17 * 3600 + 1800)
PLAN_DEPARTMENTS = ("market_supervision", "health")
ACTOR = "bench:inspection-routes"


def _stops(engine: Engine) -> tuple[str, list[dict[str, Any]]]:
    """The busiest town and 100 of its open entities with a point, chosen by a hash of the credit code."""
    with engine.connect() as conn:
        town = conn.execute(
            text(
                "SELECT town_code FROM entity WHERE status = 'open' AND geom IS NOT NULL"
                " GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1"
            )
        ).scalar_one()
        rows = conn.execute(
            text(
                "SELECT uscc, kind, industry, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity"
                " WHERE town_code = :t AND status = 'open' AND geom IS NOT NULL ORDER BY md5(uscc) LIMIT :n"
            ),
            {"t": town, "n": STOPS},
        )
        return str(town), [dict(r._mapping) for r in rows]


def _problem(durations: np.ndarray[Any, Any], stops: list[dict[str, Any]], distances: Any = None) -> Problem:
    """Jobs with business hours and 20–50 minutes of service (by credit code), TEAM_DAYS days from the office (0)."""
    jobs = []
    for k, stop in enumerate(stops, start=1):
        opens, closes = business_hours(stop["kind"], stop["industry"])
        minutes = 20 + int(hashlib.sha256(stop["uscc"].encode()).hexdigest(), 16) % 31
        jobs.append(Job(k, k, service_s=minutes * 60, windows=((opens * 60, closes * 60),)))
    vehicles = [Vehicle(100 + d, 0, 0, window=DAY) for d in range(TEAM_DAYS)]
    return Problem(durations, jobs, vehicles, distances)


def _check(problem: Problem, solution: Solution, what: str) -> None:
    """BenchmarkFailed when a stop is lost or a route breaks a window or the day (recomputed from the matrix)."""
    if solution.unassigned:
        raise BenchmarkFailed(f"{what}: {len(solution.unassigned)} stops left out ({solution.unassigned[0].reason})")
    routed = sorted(j for r in solution.routes for j in r.job_ids)
    if routed != [j.id for j in problem.jobs]:
        raise BenchmarkFailed(f"{what}: stops lost or repeated")
    _check_orders(problem, [(r.vehicle_id, r.job_ids, r.steps[0].arrival) for r in solution.routes], what)


def _check_orders(problem: Problem, routes: list[tuple[int, list[int], int]], what: str) -> None:
    """Every service starts inside its window and every day ends by its close, driving the matrix."""
    jobs = {j.id: j for j in problem.jobs}
    for vehicle_id, order, start in routes:
        clock, here = start, 0
        for job_id in order:
            job = jobs[job_id]
            clock += int(problem.durations[here, job.location or 0])
            begin = max(clock, job.windows[0][0])
            if begin > job.windows[0][1]:
                raise BenchmarkFailed(f"{what}: job {job_id} of day {vehicle_id} starts after its window closes")
            clock, here = begin + job.service_s, job.location or 0
        if clock + int(problem.durations[here, 0]) > DAY[1]:
            raise BenchmarkFailed(f"{what}: day {vehicle_id} ends after {DAY[1] // 3600}:30")


def _vroom(problem: Problem) -> tuple[int, float, int]:
    """VROOM on the same matrix: (cost, seconds, unassigned)."""
    data = vroom.Input()
    data.set_durations_matrix(profile="car", matrix_input=problem.durations.tolist())
    for v in problem.vehicles:
        data.add_vehicle(vroom.Vehicle(id=v.id, start=0, end=0, time_window=vroom.TimeWindow(*v.window)))
    for j in problem.jobs:
        data.add_job(
            vroom.Job(
                id=j.id,
                location=j.location or 0,
                default_service=j.service_s,
                time_windows=[vroom.TimeWindow(*j.windows[0])],
            )
        )
    started = time.perf_counter()
    result = data.solve(exploration_level=5, nb_threads=1)
    seconds = time.perf_counter() - started
    return int(result.summary.cost), seconds, len(result.unassigned)


def _plan_days(engine: Engine, town: str) -> str:
    """The service path: a joint plan of the town created and drawn, its team days solved and read back; all rolled
    back, so the bench database is left as it was."""
    with engine.connect() as conn, conn.begin() as transaction:
        if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM inspector)")).scalar_one():
            load_inspection_lists(conn, seed=7)
        request = inspection_plans.PlanRequest(
            departments=PLAN_DEPARTMENTS,
            towns=(town,),
            public_value_source="基准测试：摇号时当场公布的公开随机数",
            public_value_at=clock.now(),
            title="路线基准：联合抽查",
        )
        plan = inspection_plans.create_plan(conn, request, actor=ACTOR, scope=CITY, secret_key=BENCH_SECRET_KEY)
        inspection_plans.draw(conn, plan.id, "bench-16", actor=ACTOR, scope=CITY, secret_key=BENCH_SECRET_KEY)
        started = time.perf_counter()
        solved = solve_plan_routes(conn, plan.id, scope=CITY, actor=ACTOR, max_seconds=BUDGET_S)
        solve_s = time.perf_counter() - started
        started = time.perf_counter()
        read = plan_routes(conn, plan.id, scope=CITY)
        read_s = time.perf_counter() - started
        transaction.rollback()
    stops = [s for t in read.teams for d in t.days for s in d.stops]
    for stop in stops:
        begin = int(stop.start[:2]) * 60 + int(stop.start[3:])
        if not stop.window[0] <= begin <= stop.window[1]:
            raise BenchmarkFailed(
                f"the plan's visit {stop.visit_id} starts at {stop.start}, outside {stop.window_text}"
            )
    reasons: dict[str, int] = {}
    for missing in read.unassigned:
        reasons[missing.reason] = reasons.get(missing.reason, 0) + 1
    if reasons.get("day_full"):
        raise BenchmarkFailed(f"{reasons['day_full']} of the plan's visits found no day")
    if solved.figures["stops"] != len(stops):
        raise BenchmarkFailed("the stored days read back differ from the solved ones")
    days = sum(len(t.days) for t in read.teams)
    left = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) or "none"
    return (
        f"Service path (a joint plan of {' + '.join(PLAN_DEPARTMENTS)} over the town, created and drawn by the "
        f"services, rolled back afterwards): {len(stops) + len(read.unassigned)} visits, "
        f"{len([t for t in read.teams if t.days])} teams, {days} team-days; solved and stored in {solve_s:.2f} s "
        f"(the {BUDGET_S:.0f} s budget shared by the teams), read back with every day's road path in {read_s:.2f} s; "
        f"left out: {left}."
    )


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Measure and return markdown: our 2 s solve beside PyVRP at 60 s, VROOM, and road against straight-line times."""
    del settings
    town, stops = _stops(engine)
    if len(stops) < STOPS:
        raise BenchmarkFailed(f"the busiest town has only {len(stops)} open entities with a point")
    lons = np.array([s["lon"] for s in stops])
    lats = np.array([s["lat"] for s in stops])
    central = int(np.argmin((lons - np.median(lons)) ** 2 + (lats - np.median(lats)) ** 2))
    office = (float(lons[central]) + 0.001, float(lats[central]) + 0.001)
    points = [office, *zip(lons.tolist(), lats.tolist(), strict=True)]

    with engine.connect() as conn:
        started = time.perf_counter()
        network = RoadNetwork.load(conn, [town])
        load_s = time.perf_counter() - started
    started = time.perf_counter()
    matrix = network.matrix(points)
    matrix_s = time.perf_counter() - started
    started = time.perf_counter()
    straight_s, straight_m = StraightLine().durations(points)
    straight_build_s = time.perf_counter() - started
    off = ~np.eye(len(points), dtype=bool)
    time_ratio = float(np.mean(matrix.durations_s[off] / np.maximum(straight_s[off], 1)))
    metre_ratio = float(np.mean(matrix.distances_m[off] / np.maximum(straight_m[off], 1)))

    road = _problem(matrix.durations_s, stops, matrix.distances_m)
    started = time.perf_counter()
    ours = solve(road, max_seconds=BUDGET_S)
    ours_s = time.perf_counter() - started
    _check(road, ours, "ours (2 s)")
    started = time.perf_counter()
    reference = solve(road, max_seconds=REFERENCE_S, ceiling=REFERENCE_S, no_improvement=0)  # its whole 60 s
    reference_s = time.perf_counter() - started
    _check(road, reference, "PyVRP (60 s)")
    gap = ours.cost / reference.cost - 1
    vroom_cost, vroom_s, vroom_left = _vroom(road)

    # Routes planned on straight-line times, then driven on the road times.
    flat = _problem(straight_s, stops)
    planned = solve(flat, max_seconds=BUDGET_S)
    driven_cost = 0
    broken = 0
    for route in planned.routes:
        order = route.job_ids
        here = 0
        for job_id in order:
            driven_cost += int(matrix.durations_s[here, job_id])
            here = job_id
        driven_cost += int(matrix.durations_s[here, 0])
        vehicle = next(v for v in road.vehicles if v.id == route.vehicle_id)
        if evaluate(road, vehicle, order) is None:
            broken += 1
    straight_left = len(planned.unassigned)

    if gap > GAP_BUDGET:
        raise BenchmarkFailed(f"our 2 s answer is {gap:.1%} above the 60 s one (budget {GAP_BUDGET:.0%})")
    within = ours_s <= BUDGET_S
    service_path = _plan_days(engine, town)
    return (
        f"{STOPS} open entities of town {town} (the busiest), business hours by the draw's rule, 20–50 min of service "
        f"each, one office, {TEAM_DAYS} team-days 08:30–17:30 available; cost = total travel seconds (VROOM's).\n\n"
        "| solver | seconds | iterations | cost (travel s) | team-days used | stops left | gap to PyVRP 60 s |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        f"| ours: PyVRP under our guard, 2 s | {ours_s:.2f} | {ours.iterations:,} | {ours.cost:,} | "
        f"{len(ours.routes)} | {len(ours.unassigned)} | {gap:+.2%} |\n"
        f"| PyVRP given 60 s (once) | {reference_s:.2f} | {reference.iterations:,} | {reference.cost:,} | "
        f"{len(reference.routes)} | {len(reference.unassigned)} | — |\n"
        f"| VROOM 1.15 (pyvroom, level 5, 1 thread) | {vroom_s:.2f} | — | {vroom_cost:,} | — | {vroom_left} | "
        f"{vroom_cost / reference.cost - 1:+.2%} |\n\n"
        f"Road network of the town: built in {load_s:.2f} s ({network.node_count:,} nodes, {network.connector_count:,} "
        f"connectors joining street islands); the {len(points)}×{len(points)} road matrix in {matrix_s:.3f} s "
        f"({matrix.fallback_pairs} pairs fell back to straight lines), the straight-line one in {straight_build_s:.4f} s. "
        f"Road time / straight-line time (haversine × 1.35 at 25 km/h): mean {time_ratio:.2f}; road metres / "
        f"straight-line metres: mean {metre_ratio:.2f}. Routes planned on straight-line times and driven on road "
        f"times: {driven_cost:,} s of travel ({driven_cost / ours.cost - 1:+.1%} against ours), {broken} of "
        f"{len(planned.routes)} days break a window or the day's end, {straight_left} stops left out. "
        f"Budget ≤ {BUDGET_S:.0f} s within {GAP_BUDGET:.0%}: {'met' if within else 'MISSED'} "
        f"({ours_s:.2f} s, {gap:+.2%}).\n\n{service_path}"
    )
