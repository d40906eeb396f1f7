"""Inspection routes, solved by PyVRP under our guard and read and written in VROOM's JSON: checked against VROOM itself.

The same problem goes to the real VROOM engine (pyvroom) and to us; our answer has VROOM's shape, costs no more than
MARGIN above VROOM's, and every arrival, recomputed here from the matrix, falls inside its window.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vroom
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.errors import InvalidPlan
from planning.routing.vroom_format import read_problem, write_solution
from planning.routing.vrp import REASONS_ZH, Guard, Job, Problem, Vehicle, evaluate, order_around_pin, solve

# Our cost may exceed VROOM's by at most this fraction on the same problem (both are heuristics; PyVRP usually wins).
MARGIN = 0.03

# VROOM's docs/example_2.json, its "matrix" written the current way (matrices.car.durations).
EXAMPLE_2: dict[str, Any] = {
    "vehicles": [{"id": 0, "start_index": 0, "end_index": 3}],
    "jobs": [{"id": 1414, "location_index": 1}, {"id": 1515, "location_index": 2}],
    "matrices": {
        "car": {"durations": [[0, 2104, 197, 1299], [2103, 0, 2255, 3152], [197, 2256, 0, 1102], [1299, 3153, 1102, 0]]}
    },
}

# VROOM's docs/example_1.json as published (capacities, breaks, a shipment).
EXAMPLE_1: dict[str, Any] = {
    "vehicles": [
        {
            "id": 1,
            "start": [2.35044, 48.71764],
            "end": [2.35044, 48.71764],
            "capacity": [4],
            "skills": [1, 14],
            "time_window": [28800, 43200],
            "breaks": [{"id": 1, "service": 300, "time_windows": [[36000, 37800]]}],
        },
        {
            "id": 2,
            "start": [2.35044, 48.71764],
            "end": [2.35044, 48.71764],
            "capacity": [4],
            "skills": [2, 14],
            "time_window": [28800, 43200],
            "breaks": [{"id": 2, "service": 300, "time_windows": [[36000, 37800]]}],
        },
    ],
    "jobs": [
        {
            "id": 1,
            "service": 300,
            "delivery": [1],
            "location": [1.98935, 48.701],
            "skills": [1],
            "time_windows": [[32400, 36000]],
        },
        {"id": 2, "service": 300, "delivery": [1], "location": [2.03655, 48.61128], "skills": [1]},
        {"id": 5, "service": 300, "delivery": [1], "location": [2.28325, 48.5958], "skills": [14]},
        {"id": 6, "service": 300, "delivery": [1], "location": [2.89357, 48.90736], "skills": [14]},
    ],
    "shipments": [
        {
            "amount": [1],
            "skills": [2],
            "pickup": {"id": 4, "service": 300, "location": [2.41808, 49.22619]},
            "delivery": {"id": 3, "service": 300, "location": [2.39719, 49.07611]},
        }
    ],
}


def vroom_solve(problem: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The real VROOM engine's solution of a JSON problem (with matrices), as its JSON."""
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    result: dict[str, Any] = vroom.Input.from_json(path).solve(exploration_level=5, nb_threads=1).to_dict()
    return result


def ours(problem: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Our solution of a JSON problem with matrices."""
    request = read_problem(problem)
    return write_solution(request, solve(request.problem(), max_seconds=kw.get("seconds", 1.0)), with_distance=False)


def example_1_by_index() -> dict[str, Any]:
    """Example 1 without what we do not serve (capacities, breaks, the shipment), on a straight-line matrix at 50 km/h."""
    points = [EXAMPLE_1["vehicles"][0]["start"]] + [j["location"] for j in EXAMPLE_1["jobs"]]
    lon, lat = np.radians(np.array(points)).T
    h = (
        np.sin((lat[:, None] - lat[None, :]) / 2) ** 2
        + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[:, None] - lon[None, :]) / 2) ** 2
    )
    seconds = np.rint(2 * 6_371_000 * np.arcsin(np.sqrt(h)) / (50 / 3.6)).astype(int)
    keep_vehicle = ("id", "skills", "time_window")
    keep_job = ("id", "service", "skills", "time_windows")
    return {
        "vehicles": [
            {**{k: v[k] for k in keep_vehicle}, "start_index": 0, "end_index": 0} for v in EXAMPLE_1["vehicles"]
        ],
        "jobs": [
            {**{k: j[k] for k in keep_job if k in j}, "location_index": i + 1} for i, j in enumerate(EXAMPLE_1["jobs"])
        ],
        "matrices": {"car": {"durations": seconds.tolist()}},
    }


def windowed_problem(seed: int, stops: int, vehicles: int) -> dict[str, Any]:
    """A city-like day: stops on a 12 km square at 25 km/h, business-hours windows, 10–40 minutes of service."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 12_000, (stops + 1, 2))
    seconds = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) * 1.3 / (25 / 3.6)).astype(int)
    jobs = []
    for i in range(1, stops + 1):
        opens = int(rng.choice([9 * 3600, 9 * 3600 + 1800, 10 * 3600]))
        jobs.append(
            {
                "id": i,
                "location_index": i,
                "service": int(rng.integers(10, 41)) * 60,
                "time_windows": [[opens, 17 * 3600 + 1800]],
            }
        )
    fleet = [
        {"id": 100 + k, "start_index": 0, "end_index": 0, "time_window": [8 * 3600 + 1800, 17 * 3600 + 1800]}
        for k in range(vehicles)
    ]
    return {"jobs": jobs, "vehicles": fleet, "matrices": {"car": {"durations": seconds.tolist()}}}


def check_windows(problem: dict[str, Any], answer: dict[str, Any]) -> None:
    """Recompute every route from the matrix: arrivals add up, service starts inside a window, the day is kept."""
    matrix = problem["matrices"]["car"]["durations"]
    jobs = {j["id"]: j for j in problem["jobs"]}
    vehicles = {v["id"]: v for v in problem["vehicles"]}
    for route in answer["routes"]:
        vehicle = vehicles[route["vehicle"]]
        steps = route["steps"]
        assert steps[0]["type"] == "start" and steps[-1]["type"] == "end"
        here, clock = vehicle["start_index"], steps[0]["arrival"]
        assert clock >= vehicle.get("time_window", [0, 0])[0]
        for step in steps[1:]:
            index = step["location_index"]
            clock += matrix[here][index]
            assert step["arrival"] == clock
            if step["type"] == "job":
                job = jobs[step["id"]]
                begin = clock + step["waiting_time"]
                windows = job.get("time_windows", [[0, 10**9]])
                assert any(s <= begin <= e for s, e in windows), (job["id"], begin, windows)
                clock = begin + job.get("service", 0)
            here = index
        if "time_window" in vehicle:
            assert steps[-1]["arrival"] <= vehicle["time_window"][1]


def test_vroom_example_2_is_answered_like_vroom_in_its_own_format(tmp_path: Path) -> None:
    theirs = vroom_solve(EXAMPLE_2, tmp_path)
    answer = ours(EXAMPLE_2)
    assert answer["code"] == 0
    assert answer["summary"]["cost"] == theirs["summary"]["cost"]
    assert set(theirs) == set(answer)
    assert set(theirs["summary"]) <= set(answer["summary"])
    assert set(theirs["summary"]["computing_times"]) == set(answer["summary"]["computing_times"])
    assert set(theirs["routes"][0]) <= set(answer["routes"][0])
    for their_step, our_step in zip(theirs["routes"][0]["steps"], answer["routes"][0]["steps"], strict=True):
        assert set(their_step) <= set(our_step)
        assert their_step["type"] == our_step["type"]
    assert [s.get("id") for s in answer["routes"][0]["steps"]] == [s.get("id") for s in theirs["routes"][0]["steps"]]
    check_windows(EXAMPLE_2, answer)


def test_vroom_example_1_as_published_is_refused_with_what_we_do_not_serve() -> None:
    with pytest.raises(InvalidPlan) as refused:
        read_problem(EXAMPLE_1)
    assert refused.value.reason == "unsupported"
    assert "shipments" in str(refused.value)


def test_vroom_example_1_without_loads_keeps_skills_windows_and_cost_within_margin(tmp_path: Path) -> None:
    problem = example_1_by_index()
    theirs = vroom_solve(problem, tmp_path)
    answer = ours(problem)
    assert answer["summary"]["unassigned"] == theirs["summary"]["unassigned"]
    assert answer["summary"]["cost"] <= theirs["summary"]["cost"] * (1 + MARGIN)
    served_by = {s["id"]: r["vehicle"] for r in answer["routes"] for s in r["steps"] if s["type"] == "job"}
    assert served_by[1] == 1 and served_by[2] == 1  # skill 1: only vehicle 1 has it
    check_windows(problem, answer)


def test_a_sixty_stop_day_costs_no_more_than_vroom_within_margin_and_keeps_every_window(tmp_path: Path) -> None:
    problem = windowed_problem(seed=7, stops=60, vehicles=5)
    theirs = vroom_solve(problem, tmp_path)
    answer = ours(problem, seconds=2.0)
    assert theirs["summary"]["unassigned"] == 0
    assert answer["summary"]["unassigned"] == 0
    assert answer["summary"]["cost"] <= theirs["summary"]["cost"] * (1 + MARGIN)
    check_windows(problem, answer)
    served = sorted(s["id"] for r in answer["routes"] for s in r["steps"] if s["type"] == "job")
    assert served == list(range(1, 61))


def test_every_stop_left_out_says_why() -> None:
    matrix = np.array(
        [
            [0, 600, 600, 600, 600],
            [600, 0, 60, 60, 60],
            [600, 60, 0, 60, 60],
            [600, 60, 60, 0, 60],
            [600, 60, 60, 60, 0],
        ]
    )
    day = Vehicle(1, 0, 0, window=(8 * 3600, 12 * 3600))
    jobs = [
        Job(1, 1, service_s=1800, windows=((9 * 3600, 12 * 3600),)),
        Job(2, 2, service_s=2 * 3600, windows=((9 * 3600, 9 * 3600 + 600),)),  # with job 3: only one fits the morning
        Job(3, 3, service_s=2 * 3600, windows=((9 * 3600, 9 * 3600 + 600),)),
        Job(4, 4, service_s=600, windows=((7 * 3600, 8 * 3600 + 300),)),  # closes before the team can get there
        Job(5, 1, service_s=5 * 3600),  # longer than the whole morning
        Job(6, None, service_s=600),  # no place
        Job(7, 2, service_s=600, skills=frozenset({9})),  # nobody has skill 9
    ]
    solution = solve(Problem(matrix, jobs, [day]), max_seconds=0.5)
    reasons = {u.job_id: u.reason for u in solution.unassigned}
    assert reasons[4] == "window_closed"
    assert reasons[5] == "service_too_long"
    assert reasons[6] == "unknown_location"
    assert reasons[7] == "no_vehicle_skills"
    assert (2 in reasons) != (3 in reasons)  # one of the two morning jobs waits for another day
    assert reasons.get(2, reasons.get(3)) == "day_full"
    assert all(u.detail for u in solution.unassigned)
    assert 1 in solution.routes[0].job_ids


def test_a_job_with_two_windows_is_served_in_the_one_it_can_reach() -> None:
    matrix = np.array([[0, 1000], [1000, 0]])
    job = Job(1, 1, service_s=60, windows=((0, 500), (3000, 4000)))
    solution = solve(Problem(matrix, [job], [Vehicle(1, 0, 0, window=(0, 10_000))]), max_seconds=0.3)
    step = solution.routes[0].steps[1]
    assert not solution.unassigned
    assert 3000 <= step.arrival + step.waiting <= 4000


def test_a_vehicle_without_an_end_finishes_at_its_last_job() -> None:
    problem = {
        "vehicles": [{"id": 1, "start_index": 0}],
        "jobs": [{"id": 1, "location_index": 1}],
        "matrices": {"car": {"durations": [[0, 50], [70, 0]]}},
    }
    answer = ours(problem)
    assert [s["type"] for s in answer["routes"][0]["steps"]] == ["start", "job"]
    assert answer["summary"]["cost"] == 50


def test_the_same_seed_and_iterations_give_the_same_routes() -> None:
    request = read_problem(windowed_problem(seed=3, stops=30, vehicles=2))
    first = solve(request.problem(), max_seconds=30, max_iterations=300)
    second = solve(request.problem(), max_seconds=30, max_iterations=300)
    assert [r.job_ids for r in first.routes] == [r.job_ids for r in second.routes]
    assert first.cost == second.cost


def test_the_guard_stops_the_search_once_its_deadline_has_passed() -> None:
    assert Guard(time.monotonic() - 1)(123.0) is True
    assert Guard(time.monotonic() + 60)(123.0) is False


def test_a_hand_placed_stop_keeps_its_position_while_the_others_are_reordered() -> None:
    matrix = np.array([[abs(a - b) * 100 for b in range(6)] for a in range(6)])
    jobs = [Job(i, i, service_s=60) for i in range(1, 6)]
    problem = Problem(matrix, jobs, [Vehicle(1, 0, 0, window=(0, 100_000))])
    route = order_around_pin(problem, problem.vehicles[0], [5, 3, 1, 2], pinned=4, position=0)
    assert route is not None
    assert route.job_ids[0] == 4
    assert sorted(route.job_ids) == [1, 2, 3, 4, 5]
    # A pin that cannot be kept inside the day: refused, not bent.
    tight = Problem(matrix, jobs, [Vehicle(1, 0, 0, window=(0, 900))])
    assert order_around_pin(tight, tight.vehicles[0], [1, 2, 3], pinned=5, position=0) is None
    assert evaluate(problem, problem.vehicles[0], [1, 2, 3, 4, 5]) is not None


def test_bad_problems_are_refused_in_chinese() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"jobs": [], "vehicles": [{"id": 1, "start": [113.7, 23.0]}]}, "jobs"),
        ({"jobs": [{"id": 1, "location": [113.7, 23.0]}], "vehicles": [{"id": 1}]}, "起点或终点"),
        ({"jobs": [{"id": 1, "location_index": 0}], "vehicles": [{"id": 1, "start": [113.7, 23.0]}]}, "matrices"),
        (
            {
                "jobs": [{"id": 1, "location": [113.7, 23.0], "time_windows": [[5, 1]]}],
                "vehicles": [{"id": 1, "start": [113.7, 23.0]}],
            },
            "开始晚于结束",
        ),
        (
            {
                "jobs": [{"id": 1, "location": [113.7, 23.0]}],
                "vehicles": [{"id": 1, "start": [113.7, 23.0]}],
                "options": {"max_seconds": 31},
            },
            "max_seconds",
        ),
        (
            {
                "jobs": [{"id": 1, "location": [113.7, 23.0]}, {"id": 1, "location": [113.7, 23.0]}],
                "vehicles": [{"id": 1, "start": [113.7, 23.0]}],
            },
            "重复",
        ),
        (
            {
                "jobs": [{"id": 1, "location": [113.7, 23.0]}],
                "vehicles": [{"id": 1, "start": [113.7, 23.0], "breaks": []}],
            },
            "breaks",
        ),
        (
            {
                "jobs": [{"id": 1, "location_index": 2}],
                "vehicles": [{"id": 1, "start_index": 0}],
                "matrices": {"car": {"durations": [[0, 1], [1, 0]]}},
            },
            "location_index",
        ),
        (
            {
                "jobs": [{"id": 1, "location_index": 1}],
                "vehicles": [{"id": 1, "start_index": 0}],
                "matrices": {"car": {"durations": [[0, -1], [1, 0]]}},
            },
            "非负整数",
        ),
        (
            {
                "jobs": [{"id": i, "location": [113.7, 23.0]} for i in range(2001)],
                "vehicles": [{"id": 1, "start": [113.7, 23.0]}],
            },
            "2000",
        ),
    ]
    for payload, words in cases:
        with pytest.raises(InvalidPlan) as refused:
            read_problem(payload)
        assert words in str(refused.value), (payload, str(refused.value))


@st.composite
def small_problems(draw: st.DrawFn) -> Problem:
    """Up to 8 jobs on a line, 1–2 vehicles from 0, windows that may be too tight, services that may be too long."""
    n = draw(st.integers(1, 8))
    xs = draw(st.lists(st.integers(0, 3000), min_size=n + 1, max_size=n + 1))
    matrix = np.array([[abs(a - b) for b in xs] for a in xs], dtype=np.int64)
    jobs = []
    for i in range(1, n + 1):
        start = draw(st.integers(0, 8000))
        jobs.append(
            Job(i, i, service_s=draw(st.integers(0, 3000)), windows=((start, start + draw(st.integers(0, 4000))),))
        )
    fleet = [Vehicle(k + 1, 0, 0, window=(0, draw(st.integers(2000, 12_000)))) for k in range(draw(st.integers(1, 2)))]
    return Problem(matrix, jobs, fleet)


@settings(max_examples=40, deadline=None)
@given(small_problems())
def test_every_job_is_routed_once_or_explained_and_routes_keep_their_windows(problem: Problem) -> None:
    solution = solve(problem, max_seconds=5, max_iterations=150)
    routed = [j for r in solution.routes for j in r.job_ids]
    left = [u.job_id for u in solution.unassigned]
    assert sorted(routed + left) == [j.id for j in problem.jobs]
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.vehicles}
    for route in solution.routes:
        vehicle = vehicles[route.vehicle_id]
        clock, here = route.steps[0].arrival, 0
        for step in route.steps[1:-1]:
            job = jobs[step.job_id or 0]
            clock += int(problem.durations[here, job.location or 0])
            begin = max(clock, job.windows[0][0])
            assert begin <= job.windows[0][1]
            clock, here = begin + job.service_s, job.location or 0
        assert clock + int(problem.durations[here, 0]) <= vehicle.window[1]
    for missing in solution.unassigned:
        job = jobs[missing.job_id]
        alone_ok = any(
            max(v.window[0] + int(problem.durations[0, job.location or 0]), job.windows[0][0]) <= job.windows[0][1]
            and max(v.window[0] + int(problem.durations[0, job.location or 0]), job.windows[0][0])
            + job.service_s
            + int(problem.durations[job.location or 0, 0])
            <= v.window[1]
            for v in problem.vehicles
        )
        assert (missing.reason == "day_full") == alone_ok or missing.reason == "service_too_long"
    assert math.isfinite(solution.cost)


def test_when_not_all_fit_the_higher_priority_job_is_served_and_travel_limits_hold(tmp_path: Path) -> None:
    problem = {
        "vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "time_window": [0, 1000]}],
        "jobs": [
            {"id": 1, "location_index": 1, "service": 700, "priority": 0},
            {"id": 2, "location_index": 2, "service": 700, "priority": 90},
        ],
        "matrices": {"car": {"durations": [[0, 50, 100], [50, 0, 60], [100, 60, 0]]}},
        "options": {"allow_unassigned": True},
    }
    answer = ours(problem)
    assert [u["id"] for u in answer["unassigned"]] == [1]
    assert answer["unassigned"][0]["reason"] == "day_full"
    theirs = vroom_solve({k: v for k, v in problem.items() if k != "options"}, tmp_path)
    assert [u["id"] for u in theirs["unassigned"]] == [1]
    # A vehicle may drive at most 150 s: the far job (100 s each way) is out of its reach even alone.
    limited = {
        "vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "max_travel_time": 150}],
        "jobs": [{"id": 1, "location_index": 1}, {"id": 2, "location_index": 2}],
        "matrices": problem["matrices"],
    }
    answer = ours(limited)
    assert [(u["id"], u["reason"], u["description"]) for u in answer["unassigned"]] == [
        (2, "travel_limit", REASONS_ZH["travel_limit"])
    ]
    assert answer["summary"]["duration"] <= 150


@st.composite
def pinned_days(draw: st.DrawFn) -> tuple[Problem, list[int], int, int]:
    """A day of 1–10 stops at random places with windows (some tight), one of them pinned at a random position."""
    n = draw(st.integers(1, 10))
    xs = draw(st.lists(st.integers(0, 2000), min_size=n + 1, max_size=n + 1))
    matrix = np.array([[abs(a - b) for b in xs] for a in xs], dtype=np.int64)
    jobs = []
    for i in range(1, n + 1):
        start = draw(st.integers(0, 6000))
        jobs.append(
            Job(i, i, service_s=draw(st.integers(0, 900)), windows=((start, start + draw(st.integers(0, 20_000))),))
        )
    day = draw(st.permutations(list(range(1, n + 1))))
    pinned = draw(st.sampled_from(day))
    others = [j for j in day if j != pinned]
    position = draw(st.integers(0, len(others)))
    return Problem(matrix, jobs, [Vehicle(1, 0, 0, window=(0, 40_000))]), others, pinned, position


@settings(max_examples=300, deadline=None)
@given(pinned_days())
def test_a_reordered_day_holds_each_of_its_stops_once_with_the_pin_where_it_was_put(
    case: tuple[Problem, list[int], int, int],
) -> None:
    problem, others, pinned, position = case
    route = order_around_pin(problem, problem.vehicles[0], others, pinned, position)
    if route is not None:
        assert sorted(route.job_ids) == sorted([*others, pinned])
        assert route.job_ids[position] == pinned


def test_the_outside_testers_day_keeps_all_ten_stops_when_one_is_moved() -> None:
    # The reported day: stop 2992 moved to position 5 came back as [3019, 3019, 3004, ...] with 3016 lost.
    ids = [2992, 3016, 3019, 3004, 2949, 2951, 3001, 3033, 2993, 3039]
    rng = np.random.default_rng(16)
    xy = rng.integers(0, 600, size=(len(ids) + 1, 2))
    matrix = np.abs(xy[:, None, :] - xy[None, :, :]).sum(axis=2).astype(np.int64)
    jobs = [Job(v, k + 1, service_s=1800, windows=((9 * 3600, 17 * 3600 + 1800),)) for k, v in enumerate(ids)]
    problem = Problem(matrix, jobs, [Vehicle(1, 0, 0, window=(8 * 3600 + 1800, 17 * 3600 + 1800))])
    others = [v for v in ids if v != 2992]
    route = order_around_pin(problem, problem.vehicles[0], others, 2992, 5)
    assert route is not None
    assert sorted(route.job_ids) == sorted(ids)
    assert route.job_ids[5] == 2992


def test_a_tiny_problem_is_settled_as_soon_as_the_search_stops_improving() -> None:
    # The outside test: VROOM's two-job example took 1.9 s (VROOM: 7 ms) because only the clock stopped the search.
    problem = read_problem(EXAMPLE_2).problem()
    solution = solve(problem, max_seconds=2.0)
    assert solution.cost == 5461
    assert solution.iterations <= 1000  # stopped by its lack of progress, not after ~160,000 iterations to the clock
    # A reference run may still use its whole time (no early stop), as the benchmark's 60 s one does.
    assert solve(problem, max_seconds=0.3, no_improvement=0).iterations > 1000


def example_1_with_loads() -> dict[str, Any]:
    """VROOM's example 1 with its capacities and deliveries, less its shipment and breaks (still refused)."""
    problem = example_1_by_index()
    for vehicle, published in zip(problem["vehicles"], EXAMPLE_1["vehicles"], strict=True):
        vehicle["capacity"] = published["capacity"]
    for job, published in zip(problem["jobs"], EXAMPLE_1["jobs"], strict=True):
        job["delivery"] = published["delivery"]
    return problem


def test_vroom_example_1_with_its_deliveries_and_capacities_costs_what_vroom_finds(tmp_path: Path) -> None:
    # The outside test: VROOM's documentation example was refused for its delivery amounts and vehicle capacities.
    problem = example_1_with_loads()
    theirs = vroom_solve(problem, tmp_path)
    answer = ours(problem)
    assert answer["summary"]["cost"] == theirs["summary"]["cost"]
    assert answer["summary"]["unassigned"] == theirs["summary"]["unassigned"] == 0
    assert answer["summary"]["delivery"] == theirs["summary"]["delivery"] == [4]
    assert set(theirs["summary"]) <= set(answer["summary"])
    for route in answer["routes"]:
        assert all(set(s) >= {"load"} for s in route["steps"])
    check_windows(problem, answer)


def test_two_dimensional_loads_bind_like_vroom_and_a_load_no_vehicle_carries_is_explained(tmp_path: Path) -> None:
    problem = windowed_problem(7, 12, 3)
    rng = np.random.default_rng(7)
    for job in problem["jobs"]:
        job["delivery"] = [int(rng.integers(1, 4)), int(rng.integers(0, 3))]
        job["pickup"] = [0, int(rng.integers(0, 3))]
    for vehicle in problem["vehicles"]:
        vehicle["capacity"] = [9, 8]
    theirs = vroom_solve(problem, tmp_path)
    answer = ours(problem, seconds=2.0)
    assert answer["summary"]["unassigned"] == theirs["summary"]["unassigned"]
    assert answer["summary"]["cost"] <= theirs["summary"]["cost"] * (1 + MARGIN)
    capacity = problem["vehicles"][0]["capacity"]
    for route in answer["routes"]:
        assert all(all(x <= c for x, c in zip(s["load"], capacity, strict=True)) for s in route["steps"])
        assert route["steps"][0]["load"] == route["delivery"]
    check_windows(problem, answer)
    problem["jobs"][0]["delivery"] = [10, 0]
    heavy = read_problem({**problem, "options": {"allow_unassigned": True}})
    left = solve(heavy.problem(), max_seconds=0.5).unassigned
    assert [(u.job_id, u.reason) for u in left if u.job_id == 1] == [(1, "over_capacity")]
    with pytest.raises(InvalidPlan):
        read_problem({**problem, "vehicles": [{**problem["vehicles"][0], "capacity": [9]}]})
