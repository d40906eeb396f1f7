"""The morning's assignment, pure: deadlines first, the own grid before a neighbour, nobody over their hours."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.daily import DailyPlan, DailyTask, DailyWorker, assign_daily, edf_key, lateness_days

# Two communities of three grids each, in a row: A1-A2-A3 and B1-B2-B3 (A3 touches B1 across the community line).
GRIDS = {"A1": "A", "A2": "A", "A3": "A", "B1": "B", "B2": "B", "B3": "B"}
NEIGHBOURS = {
    "A1": ["A2"],
    "A2": ["A1", "A3"],
    "A3": ["A2", "B1"],  # B1 lies in another community: never used
    "B1": ["B2", "A3"],
    "B2": ["B1", "B3"],
    "B3": ["B2"],
}


@st.composite
def mornings(draw: st.DrawFn) -> tuple[list[DailyTask], list[DailyWorker]]:
    """A random morning: 0-3 workers per grid, 0-40 tasks with deadlines over the next days and current holders."""
    workers: list[DailyWorker] = []
    next_id = 1
    for grid, community in GRIDS.items():
        for _ in range(draw(st.integers(0, 3))):
            free = draw(st.sampled_from([0.0, 1.0, 2.5, 5.7]))
            per_day = draw(st.sampled_from([0.0, 5.7]))
            cap = draw(st.sampled_from([None, None, 0, 2, 4]))
            workers.append(DailyWorker(next_id, grid, community, free, per_day, cap))
            next_id += 1
    tasks: list[DailyTask] = []
    for task_id in range(1, draw(st.integers(0, 40)) + 1):
        grid = draw(st.sampled_from(sorted(GRIDS)))
        days = draw(st.integers(0, 4))
        same_community = [w.id for w in workers if w.community == GRIDS[grid]]
        holder = draw(st.one_of(st.none(), st.sampled_from(same_community))) if same_community else None
        tasks.append(
            DailyTask(
                id=task_id,
                grid=grid,
                community=GRIDS[grid],
                due_at_s=days * 86_400.0 + draw(st.integers(0, 3)) * 3_600.0,
                hours=draw(st.sampled_from([0.5, 1.0, 1.5, 3.0])),
                worker=holder,
                days_after_today=days,
            )
        )
    return tasks, workers


def _before(plan: DailyPlan, tasks: list[DailyTask], worker: int, task: DailyTask) -> list[DailyTask]:
    """The tasks a worker had been given before this one was placed (EDF order)."""
    return [t for t in tasks if plan.assignment.get(t.id) == worker and edf_key(t) < edf_key(task)]


def _fits(plan: DailyPlan, tasks: list[DailyTask], w: DailyWorker, task: DailyTask) -> bool:
    """Whether the task fitted the worker when it was placed: its hours before its deadline, under their cap."""
    earlier = _before(plan, tasks, w.id, task)
    room = w.hours_free + w.hours_per_day * task.days_after_today - sum(t.hours for t in earlier)
    return room >= task.hours - 1e-9 and (w.max_tasks is None or len(earlier) < w.max_tasks)


prop = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@prop
@given(mornings())
def test_nobody_works_past_a_deadline_unless_every_candidate_was_full(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    by_id = {w.id: w for w in workers}
    for t in tasks:
        if t.id in plan.assignment and t.id not in plan.overflow:
            w = by_id[plan.assignment[t.id]]
            assert _fits(plan, tasks, w, t)
    # Every task the EDF schedule finishes late was flagged as overflow beforehand.
    late = lateness_days(plan, tasks, workers)
    assert {t for t, days in late.items() if days > 0} <= plan.overflow


@prop
@given(mornings())
def test_a_task_never_leaves_its_community_and_keeps_its_grid_or_an_adjacent_one(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    by_id = {w.id: w for w in workers}
    for t in tasks:
        if t.id in plan.assignment:
            w = by_id[plan.assignment[t.id]]
            assert w.community == t.community
            staffed = any(x.grid == t.grid for x in workers)
            assert (
                w.grid == t.grid
                or (w.grid in NEIGHBOURS[t.grid] and t.id in plan.crossed)
                or (not staffed and w.id == t.worker and t.id in plan.overflow)
            )
        else:
            assert t.id in plan.unplaced


@prop
@given(mornings())
def test_a_neighbour_is_used_only_when_the_own_grid_was_full(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    for t in tasks:
        if t.id in plan.crossed:
            for w in workers:
                if w.grid == t.grid:
                    assert not _fits(plan, tasks, w, t)


@prop
@given(mornings())
def test_a_later_deadline_never_takes_the_slot_an_earlier_task_needed(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    for t in tasks:
        if t.id in plan.overflow or t.id in plan.crossed:
            # When it was placed, only earlier-deadline tasks filled its grid's workers, and they left no room.
            for w in workers:
                if w.grid == t.grid:
                    assert all(edf_key(u) < edf_key(t) for u in _before(plan, tasks, w.id, t))
                    assert not _fits(plan, tasks, w, t)


@prop
@given(mornings())
def test_a_task_whose_worker_still_has_room_keeps_them(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    by_id = {w.id: w for w in workers}
    for t in tasks:
        holder = by_id.get(t.worker) if t.worker is not None else None
        if holder is not None and holder.grid == t.grid and _fits(plan, tasks, holder, t):
            assert plan.assignment[t.id] == holder.id


@prop
@given(mornings(), st.randoms(use_true_random=False))
def test_the_plan_is_deterministic_and_a_second_run_changes_nothing(morning: tuple, rnd: random.Random) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    shuffled_tasks, shuffled_workers = tasks[:], workers[:]
    rnd.shuffle(shuffled_tasks)
    rnd.shuffle(shuffled_workers)
    assert assign_daily(shuffled_tasks, shuffled_workers, NEIGHBOURS) == plan
    again = [replace(t, worker=plan.assignment.get(t.id)) for t in tasks]
    second = assign_daily(again, workers, NEIGHBOURS)
    assert second.assignment == plan.assignment
    assert second.changed(again) == []


@prop
@given(mornings())
def test_the_hours_of_each_worker_are_the_hours_of_their_tasks(morning: tuple) -> None:
    tasks, workers = morning
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    for w in workers:
        mine = sum(t.hours for t in tasks if plan.assignment.get(t.id) == w.id)
        assert math.isclose(plan.hours[w.id], mine, abs_tol=1e-9)


def test_an_overloaded_grid_hands_its_latest_tasks_to_the_neighbour_with_room() -> None:
    # Grid A1's one worker has 4 hours today; six 1-hour tasks due today. A2's worker is free, A3's is busy.
    workers = [DailyWorker(1, "A1", "A", 4.0), DailyWorker(2, "A2", "A", 4.0), DailyWorker(3, "A3", "A", 0.0)]
    tasks = [DailyTask(i, "A1", "A", float(i), 1.0, 1) for i in range(1, 7)]
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    assert [plan.assignment[i] for i in range(1, 7)] == [1, 1, 1, 1, 2, 2]
    assert plan.crossed == {5, 6}
    assert not plan.overflow


def test_when_every_worker_is_full_the_task_stays_in_its_grid_and_is_counted_late() -> None:
    workers = [DailyWorker(1, "A1", "A", 1.0), DailyWorker(2, "A1", "A", 0.5), DailyWorker(3, "A2", "A", 0.0)]
    tasks = [DailyTask(1, "A1", "A", 0.0, 1.0, None), DailyTask(2, "A1", "A", 1.0, 1.0, None)]
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    assert plan.assignment == {1: 1, 2: 2}  # the second to the one with the most room left
    assert plan.overflow == {2}
    assert lateness_days(plan, tasks, workers) == {1: 0, 2: 1}


def test_a_task_due_next_week_fits_into_the_days_before_its_deadline() -> None:
    # 2 hours free today, 5 hours a day after: a 6-hour task due in two working days fits, one due today does not.
    workers = [DailyWorker(1, "A1", "A", 2.0, 5.0), DailyWorker(2, "A2", "A", 8.0, 5.0)]
    later = DailyTask(1, "A1", "A", 2 * 86_400.0, 6.0, None, days_after_today=2)
    today = DailyTask(2, "A1", "A", 0.0, 6.0, None, days_after_today=0)
    plan = assign_daily([later, today], workers, NEIGHBOURS)
    assert plan.assignment == {2: 2, 1: 1}
    assert plan.crossed == {2}


def test_a_grid_without_workers_lends_its_tasks_to_a_neighbour_not_to_another_community() -> None:
    workers = [DailyWorker(1, "A3", "A", 0.0), DailyWorker(2, "B1", "B", 9.0)]
    tasks = [DailyTask(1, "A2", "A", 0.0, 1.0, None), DailyTask(2, "A1", "A", 0.0, 1.0, None)]
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    assert plan.assignment == {1: 1}  # late, but done by the neighbour in A3; never by B1's free worker
    assert plan.crossed == plan.overflow == {1}
    assert plan.unplaced == {2}  # A1 has no worker and its only neighbour A2 none either: it waits in the queue


def test_a_worker_at_their_cap_on_tasks_gets_no_more_even_with_hours_to_spare() -> None:
    workers = [DailyWorker(1, "A1", "A", 8.0, max_tasks=2), DailyWorker(2, "A2", "A", 8.0)]
    tasks = [DailyTask(i, "A1", "A", float(i), 0.5, None) for i in range(1, 4)]
    plan = assign_daily(tasks, workers, NEIGHBOURS)
    assert plan.assignment == {1: 1, 2: 1, 3: 2} and plan.crossed == {3}


def test_a_task_of_a_grid_left_without_staff_stays_with_its_holder_rather_than_an_empty_queue() -> None:
    workers = [DailyWorker(1, "A3", "A", 5.0)]
    plan = assign_daily([DailyTask(1, "A1", "A", 0.0, 1.0, 1)], workers, NEIGHBOURS)
    assert plan.assignment == {1: 1} and plan.overflow == {1} and not plan.unplaced
