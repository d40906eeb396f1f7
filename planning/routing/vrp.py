"""planning.routing.vrp: the vehicle-routing problem with time windows, solved by PyVRP under our own wall-clock guard.

Pure: a `Problem` holds integer matrices (seconds; metres optional), jobs and vehicles; `solve` returns a `Solution`
with every route's schedule recomputed from the matrix and every job it could not place, with the reason.

The objective is VROOM's default one: the total travel time (the seconds are given to PyVRP as its "distance", so its
cost is ours; its duration limits the time windows and the day). A vehicle's `max_travel_s` is that distance limit.

Every job is optional (`required=False`) with a prize far above any route's cost: a stop that cannot be served is left
out rather than failing the whole day, and it is explained afterwards:

- `unknown_location`: it has no place to go to;
- `no_vehicle_skills`: no vehicle has the skills it asks for;
- `service_too_long`: its service alone is longer than any vehicle's day or than its own windows;
- `travel_limit`: every vehicle that could serve it would drive longer than its `max_travel_s` just to go and return;
- `window_closed`: even alone, no vehicle reaches it from its start inside one of its windows and gets back in time;
- `over_capacity`: its delivery or pickup exceeds the capacity of every vehicle that has its skills;
- `day_full`: it could be served alone, but not together with the others.

Amounts follow VROOM: a job's `delivery` is loaded at the vehicle's start, its `pickup` carried to the end, and the
load never exceeds the vehicle's `capacity` in any dimension (PyVRP's delivery, pickup and capacity, the same rule).

A job with several time windows becomes one PyVRP client per window, in a mutually exclusive group (at most one is
visited). Skills become routing profiles: a vehicle type's profile makes the jobs it lacks the skills for unreachable.

The guard: PyVRP's own `MaxRuntime` and a stopping criterion of ours with a monotonic deadline (the time building the
model counts too, and the search leaves FINISH_RESERVE_S to read and schedule the answer), and after the solve a check
that the whole call kept to the deadline plus a margin (logged when not). The solver's seed is fixed (`SEED`), so a run
is reproducible for a given iteration count; under a time limit the number of iterations depends on the machine, so
pass `max_iterations` when an exact repeat matters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pyvrp import Depot, Model, PenaltyParams, ProblemData, SolveParams
from pyvrp import solve as pyvrp_solve
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement, StoppingCriterion

log = logging.getLogger(__name__)

SEED = 16
# Early stopping: the search ends once it has not found a better solution for this many iterations. A problem of at
# most TINY_JOBS jobs is settled in TINY_PATIENCE (a few milliseconds: VROOM's two-job example took 1.9 s when only
# the clock stopped it); a larger one waits PATIENCE_PER_JOB iterations per job (a 100-stop day keeps its 2 s).
TINY_JOBS = 10
TINY_PATIENCE = 300
PATIENCE_PER_JOB = 100
DEFAULT_SECONDS = 2.0
MAX_SECONDS = 30.0
GUARD_MARGIN_S = 0.5
FINISH_RESERVE_S = 0.1
HORIZON = 10**9
# The prize of serving a job: above any day's travel time (11 days of seconds), so a job is left out only when it
# cannot be served; not far above it, or PyVRP's time-warp penalties (bounded) stop steering it back to feasibility.
PRIZE = 10**6
PRIORITY_STEP = 10**4
UNLIMITED_LOAD = 2**40
LOAD_MAX_PENALTY = 100.0 * PRIZE

REASONS_ZH: dict[str, str] = {
    "unknown_location": "位置不明，无法安排",
    "no_vehicle_skills": "没有车辆（检查组）具备所需技能",
    "service_too_long": "服务时长超过可用的工作时间",
    "window_closed": "即使单独前往，也无法在营业时间内到达并按时返回",
    "travel_limit": "往返路程超过车辆（检查组）的最长行驶时间",
    "day_full": "单独可以安排，但与其他站点一起排不下（当日已满）",
    "over_capacity": "货量超过任何车辆的载量",
}


class Guard:
    """A stopping criterion of ours: stop once the monotonic clock passes the deadline, whatever the cost."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, best_cost: float) -> bool:
        """Whether to stop now (PyVRP calls this once per iteration with the best cost so far)."""
        del best_cost  # the guard watches the clock only
        return time.monotonic() >= self.deadline


@dataclass(frozen=True)
class Job:
    """A stop: its matrix index (None: unknown), service seconds, windows (seconds), skills and priority 0–100."""

    id: int
    location: int | None
    service_s: int = 0
    windows: tuple[tuple[int, int], ...] = ((0, HORIZON),)
    skills: frozenset[int] = frozenset()
    priority: int = 0
    # Amounts (VROOM's multidimensional quantities): `delivery` is loaded at the start and dropped here, `pickup`
    # taken here and carried to the end. Empty: nothing.
    delivery: tuple[int, ...] = ()
    pickup: tuple[int, ...] = ()


@dataclass(frozen=True)
class Vehicle:
    """A team or vehicle: start and end matrix indices (None: anywhere), its window, travel limit and skills."""

    id: int
    start: int | None
    end: int | None
    window: tuple[int, int] = (0, HORIZON)
    max_travel_s: int | None = None
    skills: frozenset[int] = frozenset()
    # What using this vehicle at all costs (seconds of travel): a team's later days cost more, so days fill in order.
    fixed_cost: int = 0
    # The most it carries at any moment, per dimension of the jobs' amounts (empty: no limit).
    capacity: tuple[int, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Jobs and vehicles over a square seconds matrix (and optionally metres)."""

    durations: NDArray[np.int64]
    jobs: Sequence[Job]
    vehicles: Sequence[Vehicle]
    distances: NDArray[np.int64] | None = None


@dataclass(frozen=True)
class Step:
    """One step of a route: start, job or end, with its times (seconds) and the travel so far."""

    kind: str
    location: int | None
    job_id: int | None
    arrival: int
    waiting: int
    service: int
    travel_s: int
    distance_m: int


@dataclass(frozen=True)
class Route:
    """One vehicle's route: its steps, travel (cost), service, waiting and distance."""

    vehicle_id: int
    steps: list[Step]
    travel_s: int
    service_s: int
    waiting_s: int
    distance_m: int

    @property
    def job_ids(self) -> list[int]:
        """The jobs in visiting order."""
        return [s.job_id for s in self.steps if s.job_id is not None]


@dataclass(frozen=True)
class Unassigned:
    """A job left out, and why (a code of REASONS_ZH)."""

    job_id: int
    reason: str

    @property
    def detail(self) -> str:
        """The reason in Chinese."""
        return REASONS_ZH[self.reason]


@dataclass
class Solution:
    """Routes, jobs left out, cost (total travel seconds) and the time spent."""

    routes: list[Route]
    unassigned: list[Unassigned]
    loading_s: float = 0.0
    solving_s: float = 0.0
    iterations: int = 0
    overran: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> int:
        """The objective: total travel seconds over every route."""
        return sum(r.travel_s for r in self.routes)


def solve(
    problem: Problem,
    *,
    max_seconds: float = DEFAULT_SECONDS,
    max_iterations: int | None = None,
    no_improvement: int | None = None,
    seed: int = SEED,
    ceiling: float = MAX_SECONDS,
) -> Solution:
    """The best routes PyVRP finds within `max_seconds` (at most `ceiling`, MAX_SECONDS unless a benchmark's
    reference run raises it) of wall clock, and who is left out.

    The search also stops after `no_improvement` iterations without a better solution (None: `patience` of the job
    count; 0: never, for a reference run that must use its whole time)."""
    started = time.monotonic()
    limit = min(max(max_seconds, 0.05), ceiling)
    # The search stops a little early: reading the answer and scheduling its routes must fit in the limit too.
    deadline = started + limit - min(FINISH_RESERVE_S, limit * 0.1)
    _check(problem)
    unassigned: dict[int, str] = {}
    feasible_jobs: list[Job] = []
    for job in problem.jobs:
        reason = _alone_reason(problem, job)
        if reason is None:
            feasible_jobs.append(job)
        else:
            unassigned[job.id] = reason
    if not feasible_jobs or not problem.vehicles:
        for job in feasible_jobs:
            unassigned[job.id] = "day_full"
        return Solution([], _in_order(problem, unassigned), loading_s=time.monotonic() - started)
    model, clients = _model(problem, feasible_jobs)
    data = _data(problem, model)
    loaded = time.monotonic()
    criteria: list[StoppingCriterion] = [MaxRuntime(max(deadline - loaded, 0.01)), Guard(deadline)]
    if max_iterations is not None:
        criteria.append(MaxIterations(max_iterations))
    patience_iterations = patience(len(feasible_jobs)) if no_improvement is None else no_improvement
    if patience_iterations > 0:
        criteria.append(NoImprovement(patience_iterations))
    params = SolveParams()
    if _dims(problem):
        # A unit of excess load must cost more than a stop's prize, or the search overloads a vehicle to collect it
        # (PyVRP's default ceiling of 100,000 per unit is below PRIZE).
        params = SolveParams(penalty=PenaltyParams(max_penalty=LOAD_MAX_PENALTY))
    result = pyvrp_solve(
        data, stop=MultipleCriteria(criteria), seed=seed, display=False, collect_stats=False, params=params
    )
    solved = time.monotonic()
    routes: list[Route] = []
    served: set[int] = set()
    vehicle_of_type = _vehicle_slots(problem)
    for route in result.best.routes():
        vehicle = vehicle_of_type[route.vehicle_type()].pop(0)
        visits = [clients[a.idx] for a in route.schedule() if a.is_client()]
        built = _schedule(problem, vehicle, visits, int(route.start_time()))
        if built is None:  # a route PyVRP could not make feasible in time: its jobs are left out
            for job, _window in visits:
                unassigned[job.id] = "day_full"
            continue
        routes.append(built)
        served.update(job.id for job, _window in visits)
    for job in feasible_jobs:
        if job.id not in served and job.id not in unassigned:
            unassigned[job.id] = "day_full"
    elapsed = time.monotonic() - started
    overran = elapsed > limit + GUARD_MARGIN_S
    if overran:
        log.warning("route solve took %.2f s, over its %.2f s guard", elapsed, limit)
    routes.sort(key=lambda r: [v.id for v in problem.vehicles].index(r.vehicle_id))
    return Solution(
        routes,
        _in_order(problem, unassigned),
        loading_s=loaded - started,
        solving_s=solved - loaded,
        iterations=int(result.num_iterations),
        overran=overran,
    )


def patience(jobs: int) -> int:
    """Iterations without a better solution after which a search of `jobs` jobs stops."""
    return TINY_PATIENCE if jobs <= TINY_JOBS else PATIENCE_PER_JOB * jobs


def evaluate(problem: Problem, vehicle: Vehicle, job_ids: Sequence[int], start: int | None = None) -> Route | None:
    """A given order of jobs driven by one vehicle (earliest times), or None when it breaks a window or a limit."""
    by_id = {j.id: j for j in problem.jobs}
    visits = [(by_id[i], -1) for i in job_ids]
    return _schedule(problem, vehicle, visits, vehicle.window[0] if start is None else start)


def order_around_pin(
    problem: Problem, vehicle: Vehicle, others: Sequence[int], pinned: int, position: int, *, max_passes: int = 50
) -> Route | None:
    """One vehicle's best order found for `others` with `pinned` held at `position`, or None when none is feasible.

    Starts from the given order of the others and relocates one of them at a time (steepest descent on lateness,
    then travel) while the pinned job keeps its place: a dispatcher's hand-placed stop stays where it was put.
    """
    by_id = {j.id: j for j in problem.jobs}
    position = max(0, min(position, len(others)))

    def score(order: Sequence[int]) -> tuple[int, int]:
        seq = [*order[:position], pinned, *order[position:]]
        return _soft(problem, vehicle, [by_id[i] for i in seq])

    best = list(others)
    best_score = score(best)
    for _ in range(max_passes):
        improved = False
        for i in range(len(best)):
            # The stop taken out and the order without it are fixed for this i: `best` changes only after every place
            # j was tried (replacing it inside the loop made best[i] another stop while `rest` still held the old one,
            # so a stop was doubled and another lost).
            moving = best[i]
            rest = best[:i] + best[i + 1 :]
            chosen: list[int] | None = None
            for j in range(len(best)):
                if j == i:
                    continue
                candidate = [*rest[:j], moving, *rest[j:]]
                candidate_score = score(candidate)
                if candidate_score < best_score:
                    chosen, best_score = candidate, candidate_score
            if chosen is not None:
                best, improved = chosen, True
        if not improved:
            break
    if best_score[0] > 0:
        return None
    return evaluate(problem, vehicle, [*best[:position], pinned, *best[position:]])


def _soft(problem: Problem, vehicle: Vehicle, jobs: Sequence[Job]) -> tuple[int, int]:
    """(seconds late over every window and the day's end, travel seconds) of one order driven as early as possible."""
    t = vehicle.window[0]
    here = vehicle.start
    late = travel = 0
    for job in jobs:
        leg = _travel(problem, here, job.location)
        travel += leg
        arrival = t + leg
        fitting = [(s, e) for s, e in job.windows if arrival <= e]
        if fitting:
            begin = max(arrival, fitting[0][0])
        else:
            begin = arrival
            late += arrival - job.windows[-1][1]
        t = begin + job.service_s
        here = job.location
    leg = _travel(problem, here, vehicle.end)
    travel += leg
    t += leg
    late += max(0, t - vehicle.window[1])
    if vehicle.max_travel_s is not None:
        late += max(0, travel - vehicle.max_travel_s)
    return late, travel


def _check(problem: Problem) -> None:
    """ValueError for a matrix that is not square, or an index outside it."""
    size = problem.durations.shape[0]
    if problem.durations.shape != (size, size):
        raise ValueError("the durations matrix must be square")
    if problem.distances is not None and problem.distances.shape != (size, size):
        raise ValueError("the distances matrix must have the durations' shape")
    indices = [j.location for j in problem.jobs] + [i for v in problem.vehicles for i in (v.start, v.end)]
    if any(i is not None and not 0 <= i < size for i in indices):
        raise ValueError("a location index lies outside the matrix")


def _travel(problem: Problem, a: int | None, b: int | None) -> int:
    """Seconds from a to b (an open start or end costs nothing)."""
    if a is None or b is None:
        return 0
    return int(problem.durations[a, b])


def _metres(problem: Problem, a: int | None, b: int | None) -> int:
    """Metres from a to b, when known (0 otherwise)."""
    if a is None or b is None or problem.distances is None:
        return 0
    return int(problem.distances[a, b])


def _alone_reason(problem: Problem, job: Job) -> str | None:
    """Why no vehicle could serve this job even if it were the only one (None: some vehicle can)."""
    if job.location is None:
        return "unknown_location"
    able = [v for v in problem.vehicles if job.skills <= v.skills]
    if not able:
        return "no_vehicle_skills"
    dims = _dims(problem)
    able_load = [
        v for v in able if _fits(_amount(job.delivery, dims), v, dims) and _fits(_amount(job.pickup, dims), v, dims)
    ]
    if not able_load:
        return "over_capacity"
    able = able_load
    longest_day = max(v.window[1] - v.window[0] for v in able)
    if job.service_s > longest_day:
        return "service_too_long"
    out_of_reach = True
    for vehicle in able:
        go = _travel(problem, vehicle.start, job.location)
        back = _travel(problem, job.location, vehicle.end)
        if vehicle.max_travel_s is not None and go + back > vehicle.max_travel_s:
            continue
        out_of_reach = False
        for early, late in job.windows:
            begin = max(vehicle.window[0] + go, early)
            if begin <= late and begin + job.service_s + back <= vehicle.window[1]:
                return None
    return "travel_limit" if out_of_reach else "window_closed"


def _model(problem: Problem, jobs: Sequence[Job]) -> tuple[Model, list[tuple[Job, int]]]:
    """The PyVRP model: a location per matrix index (plus a free one for open starts and ends), a client per window."""
    model = Model()
    size = problem.durations.shape[0]
    open_ends = any(v.start is None or v.end is None for v in problem.vehicles)
    locations = [model.add_location(x=float(i), y=0.0) for i in range(size + (1 if open_ends else 0))]
    free = size if open_ends else None
    depots: dict[int, Depot] = {}
    for v in problem.vehicles:
        for index in (v.start, v.end):
            key = free if index is None else index
            if key is not None and key not in depots:
                depots[key] = model.add_depot(locations[key])
    skill_sets = sorted({v.skills for v in problem.vehicles}, key=sorted)
    needs_profiles = any(j.skills for j in jobs)
    profiles = {s: model.add_profile(name=",".join(map(str, sorted(s)))) for s in skill_sets} if needs_profiles else {}
    dims = _dims(problem)
    for v in problem.vehicles:
        start = depots[_key(v.start, free)]
        end = depots[_key(v.end, free)]
        model.add_vehicle_type(
            num_available=1,
            capacity=_capacity(v, dims),
            start_depot=start,
            end_depot=end,
            tw_early=v.window[0],
            tw_late=v.window[1],
            max_distance=v.max_travel_s if v.max_travel_s is not None else np.iinfo(np.int64).max,
            unit_distance_cost=1,
            fixed_cost=v.fixed_cost,
            profile=profiles.get(v.skills),
            name=str(v.id),
        )
    clients: list[tuple[Job, int]] = []
    for job in jobs:
        assert job.location is not None
        prize = PRIZE + PRIORITY_STEP * job.priority
        group = model.add_client_group(required=False) if len(job.windows) > 1 else None
        for w, (early, late) in enumerate(job.windows):
            model.add_client(
                locations[job.location],
                delivery=_amount(job.delivery, dims),
                pickup=_amount(job.pickup, dims),
                service_duration=job.service_s,
                tw_early=early,
                tw_late=late,
                required=False,
                prize=prize,
                group=group,
                name=str(job.id),
            )
            clients.append((job, w))
    return model, clients


def _dims(problem: Problem) -> int:
    """How many dimensions the problem's amounts have (0: no loads at all)."""
    sizes = [len(j.delivery) for j in problem.jobs] + [len(j.pickup) for j in problem.jobs]
    return max([*sizes, *(len(v.capacity) for v in problem.vehicles)], default=0)


def _amount(amount: Sequence[int], dims: int) -> list[int]:
    """An amount over every dimension (missing ones are zero)."""
    return [*amount, *([0] * (dims - len(amount)))]


def _capacity(vehicle: Vehicle, dims: int) -> list[int]:
    """A vehicle's capacity over every dimension (no capacity given: no limit)."""
    if not vehicle.capacity:
        return [UNLIMITED_LOAD] * dims
    return _amount(vehicle.capacity, dims)


def _fits(load: Sequence[int], vehicle: Vehicle, dims: int) -> bool:
    """Whether a load fits the vehicle in every dimension."""
    return all(a <= c for a, c in zip(load, _capacity(vehicle, dims), strict=True))


def _key(index: int | None, free: int | None) -> int:
    """The location of a start or end: its index, or the free location of an open one."""
    key = free if index is None else index
    assert key is not None  # an open end exists only when the free location does
    return key


def _data(problem: Problem, model: Model) -> ProblemData:
    """The model's data with its matrices set at once (numpy, not an edge per pair): seconds for both "distance" and
    duration; per skills profile, the jobs it lacks skills for unreachable; the free start or end at no cost."""
    size = problem.durations.shape[0]
    count = len(model.locations)
    base = np.zeros((count, count), dtype=np.int64)
    base[:size, :size] = problem.durations
    matrices = [base]
    if model.profiles:
        matrices = []
        for profile in model.profiles:
            skills = frozenset(int(x) for x in profile.name.split(",") if x)
            matrix = base.copy()
            for job in problem.jobs:
                if job.location is not None and not job.skills <= skills:
                    matrix[:, job.location] = HORIZON
                    matrix[job.location, job.location] = 0
            matrices.append(matrix)
    # PyVRP's stubs type a matrix as ndarray[int]; ours are int64 arrays of that shape.
    return model.data().replace(
        distance_matrices=matrices,  # type: ignore[arg-type]
        duration_matrices=[m.copy() for m in matrices],  # type: ignore[misc]
    )


def _vehicle_slots(problem: Problem) -> dict[int, list[Vehicle]]:
    """Vehicle type index → its vehicle (one vehicle per type, in the problem's order)."""
    return {i: [v] for i, v in enumerate(problem.vehicles)}


def _schedule(problem: Problem, vehicle: Vehicle, visits: Sequence[tuple[Job, int]], start: int) -> Route | None:
    """The route's times from the matrix: leave at `start`, serve each job as early as its window allows.

    A window index of -1 takes the first window the arrival fits. None when a window, the day or the travel limit
    is broken.
    """
    dims = _dims(problem)
    if dims:
        # Loaded with every delivery at the start; each stop drops its delivery and takes its pickup.
        load = [sum(col) for col in zip(*(_amount(job.delivery, dims) for job, _w in visits), strict=True)] or [
            0
        ] * dims
        if not _fits(load, vehicle, dims):
            return None
        for job, _w in visits:
            load = [
                x - d + p for x, d, p in zip(load, _amount(job.delivery, dims), _amount(job.pickup, dims), strict=True)
            ]
            if not _fits(load, vehicle, dims):
                return None
    t = max(start, vehicle.window[0])
    steps = [Step("start", vehicle.start, None, t, 0, 0, 0, 0)]
    here = vehicle.start
    travel = metres = service = waiting = 0
    for job, w in visits:
        travel += _travel(problem, here, job.location)
        metres += _metres(problem, here, job.location)
        arrival = t + _travel(problem, here, job.location)
        windows = job.windows if w < 0 else (job.windows[w],)
        fitting = [(s, e) for s, e in windows if arrival <= e]
        if not fitting:
            return None
        begin = max(arrival, fitting[0][0])
        steps.append(Step("job", job.location, job.id, arrival, begin - arrival, job.service_s, travel, metres))
        waiting += begin - arrival
        service += job.service_s
        t = begin + job.service_s
        here = job.location
    travel += _travel(problem, here, vehicle.end)
    metres += _metres(problem, here, vehicle.end)
    t += _travel(problem, here, vehicle.end)
    if t > vehicle.window[1] or (vehicle.max_travel_s is not None and travel > vehicle.max_travel_s):
        return None
    steps.append(Step("end", vehicle.end, None, t, 0, 0, travel, metres))
    return Route(vehicle.id, steps, travel, service, waiting, metres)


def _in_order(problem: Problem, unassigned: dict[int, str]) -> list[Unassigned]:
    """The jobs left out, in the problem's order."""
    return [Unassigned(j.id, unassigned[j.id]) for j in problem.jobs if j.id in unassigned]
