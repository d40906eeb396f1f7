"""Staffing targets and moves (pure): each grid reaches the head-count its workload asks, with the fewest moves."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_staffing import naive_moves
from planning.staffing import (
    WITHIN_VALUES,
    GridStaff,
    Move,
    Within,
    apply_moves,
    group_of,
    lower_bound,
    plan_moves,
    recommended,
    targets,
)
from planning.workload import load_standards, recommended_workers


@dataclass(frozen=True)
class _Standards:
    field_hours_per_worker_month: float = 100.0
    min_workers: int = 2
    max_workers: int = 5


STANDARDS = _Standards()


def _grid(code: str, hours: float, workers: tuple[int, ...], x: float = 0.0, y: float = 0.0) -> GridStaff:
    town = code[:2]
    return GridStaff(code, town, code[:3], hours, workers, x, y)


@st.composite
def cities(draw: st.DrawFn) -> list[GridStaff]:
    """A few towns of a few communities of grids, 0..7 workers each, hours from idle to overloaded."""
    grids: list[GridStaff] = []
    next_worker = 1
    for town in range(draw(st.integers(1, 3))):
        for community in range(draw(st.integers(1, 3))):
            for number in range(draw(st.integers(1, 5))):
                count = draw(st.integers(0, 7))
                workers = tuple(range(next_worker, next_worker + count))
                next_worker += count
                grids.append(
                    GridStaff(
                        code=f"{town}{community}{number:02d}",
                        town_code=str(town),
                        community_code=f"{town}{community}",
                        hours=draw(st.floats(0, 700, allow_nan=False)),
                        workers=workers,
                        x=draw(st.floats(0, 20_000, allow_nan=False)),
                        y=draw(st.floats(0, 20_000, allow_nan=False)),
                    )
                )
    return grids


WITHIN = st.sampled_from(WITHIN_VALUES)


def test_a_grid_is_recommended_one_worker_per_capacity_within_two_to_five() -> None:
    assert recommended(0, STANDARDS) == 2
    assert recommended(250, STANDARDS) == 3
    assert recommended(300, STANDARDS) == 3
    assert recommended(301, STANDARDS) == 4
    assert recommended(2_000, STANDARDS) == 5


def test_an_overloaded_grid_gets_a_worker_from_the_quiet_grid_next_door() -> None:
    quiet = _grid("10001", 150, (1, 2, 3, 4), x=0)
    busy = _grid("10002", 390, (5, 6), x=1_000)
    planned = targets([quiet, busy], STANDARDS)
    assert planned == {"10001": 2, "10002": 4}
    moves = plan_moves([quiet, busy], planned)
    assert moves == [Move(1, "10001", "10002", 1_000.0), Move(2, "10001", "10002", 1_000.0)]


def test_the_nearest_spare_worker_fills_a_gap() -> None:
    far = _grid("10001", 100, (1, 2, 3), x=9_000)
    near = _grid("10002", 100, (4, 5, 6), x=1_000)
    busy = _grid("10003", 250, (7, 8), x=0)
    moves = plan_moves([far, near, busy], targets([far, near, busy], STANDARDS))
    assert moves == [Move(4, "10002", "10003", 1_000.0)]


def test_the_grid_with_most_spare_workers_gives_first() -> None:
    # The empty grid lies nearer to the grid with one spare worker, but the one with four spare gives both.
    empty = _grid("10001", 100, (), x=0)
    one_spare = _grid("10002", 100, (1, 2, 3), x=500)
    four_spare = _grid("10003", 100, (4, 5, 6, 7, 8, 9), x=1_500)
    planned = targets([empty, one_spare, four_spare], STANDARDS)
    assert planned == {"10001": 2, "10002": 3, "10003": 4}
    assert [m.worker_id for m in plan_moves([empty, one_spare, four_spare], planned)] == [4, 5]


def test_the_grid_missing_most_workers_is_filled_first() -> None:
    # One spare worker for two grids short: the one with nobody gets them before the one with one worker left.
    spare = _grid("10001", 100, (1, 2, 3), x=0)
    alone = _grid("10002", 100, (4,), x=200)
    empty = _grid("10003", 100, (), x=5_000)
    moves = plan_moves([spare, alone, empty], {"10001": 2, "10002": 2, "10003": 2})
    assert moves == [Move(1, "10001", "10003", 5_000.0)]


def test_a_town_short_of_workers_lets_the_grid_with_least_work_per_worker_wait() -> None:
    # Recommended 5 + 3 + 2 = 10, the town has 8: the two missing workers are missing where work per worker is lowest.
    grids = [_grid("10001", 480, (1, 2, 3)), _grid("10002", 260, (4, 5, 6)), _grid("10003", 120, (7, 8))]
    planned = targets(grids, STANDARDS)
    assert sum(planned.values()) == 8
    assert planned == {"10001": 4, "10002": 2, "10003": 2}


def test_a_grid_with_no_work_gives_up_its_last_worker_before_a_busy_grid_does() -> None:
    # The town has two workers for 5 + 2 recommended and too few for the minimum everywhere: the busy grid keeps both.
    grids = [_grid("10001", 646, (1, 2)), _grid("10002", 0, ())]
    planned = targets(grids, STANDARDS)
    assert planned == {"10001": 2, "10002": 0}
    assert plan_moves(grids, planned) == []


def _hours_per_worker(grid: GridStaff, count: int) -> float:
    """A grid's hours per worker with `count` workers (infinite: work and nobody to do it)."""
    if count:
        return grid.hours / count
    return math.inf if grid.hours > 0 else 0.0


@settings(max_examples=300, deadline=None)
@given(cities())
def test_under_a_shortage_the_plan_never_makes_hours_per_worker_less_even(grids: list[GridStaff]) -> None:
    """A town short of workers: its gap falls where hours per worker stay lowest. When the town starts within the
    rules (every grid between the minimum, if the town can afford it, and its recommendation), no plan makes the
    busiest grid busier or widens the spread of hours per worker; and in every short town, a grid left below its
    recommendation carries no more per worker than any grid that could have given it a worker would after giving."""
    planned = targets(grids, STANDARDS)
    after = {g.code: len(g.workers) for g in apply_moves(grids, plan_moves(grids, planned))}
    for town in {g.town_code for g in grids}:
        members = [g for g in grids if g.town_code == town]
        rec = {g.code: recommended(g.hours, STANDARDS) for g in members}
        have = sum(len(g.workers) for g in members)
        if have >= sum(rec.values()):
            continue
        floor = STANDARDS.min_workers if have >= STANDARDS.min_workers * len(members) else 0
        for short in (g for g in members if planned[g.code] < rec[g.code]):
            for giver in (g for g in members if g is not short and planned[g.code] > floor):
                assert _hours_per_worker(short, planned[short.code]) <= (
                    _hours_per_worker(giver, planned[giver.code] - 1) + 1e-9
                )
        if all(floor <= len(g.workers) <= rec[g.code] for g in members):
            before = [_hours_per_worker(g, len(g.workers)) for g in members]
            now = [_hours_per_worker(g, after[g.code]) for g in members]
            assert max(now) <= max(before) + 1e-9
            if math.isfinite(max(before)):
                assert max(now) - min(now) <= max(before) - min(before) + 1e-9


def test_extra_workers_stay_where_they_are() -> None:
    grids = [_grid("10001", 100, (1, 2, 3, 4)), _grid("10002", 150, (5, 6, 7))]
    assert targets(grids, STANDARDS) == {"10001": 4, "10002": 3}
    assert plan_moves(grids, targets(grids, STANDARDS)) == []


def test_workers_never_cross_a_town_line_by_default() -> None:
    spare = _grid("10001", 50, (1, 2, 3, 4, 5))
    short = _grid("20001", 450, (6, 7))
    assert plan_moves([spare, short], targets([spare, short], STANDARDS)) == []
    city_wide = plan_moves([spare, short], targets([spare, short], STANDARDS, within="city"), within="city")
    assert [m.worker_id for m in city_wide] == [1, 2, 3]


@settings(max_examples=200, deadline=None)
@given(cities(), WITHIN)
def test_targets_respect_the_head_count_rules(grids: list[GridStaff], within: Within) -> None:
    planned = targets(grids, STANDARDS, within=within)
    assert set(planned) == {g.code for g in grids}
    groups: dict[str, list[GridStaff]] = {}
    for grid in grids:
        groups.setdefault(group_of(grid, within), []).append(grid)
    for members in groups.values():
        have = sum(len(g.workers) for g in members)
        want = sum(recommended(g.hours, STANDARDS) for g in members)
        # A plan only moves workers: the group's targets add up to the workers it has.
        assert sum(planned[g.code] for g in members) == have
        for grid in members:
            rec = recommended(grid.hours, STANDARDS)
            if have >= want:
                assert planned[grid.code] >= rec
                assert planned[grid.code] <= max(rec, len(grid.workers))
            else:
                assert planned[grid.code] <= rec
                if have >= STANDARDS.min_workers * len(members):
                    assert planned[grid.code] >= STANDARDS.min_workers


@settings(max_examples=200, deadline=None)
@given(cities(), WITHIN, st.data())
def test_moves_are_the_fewest_possible_and_reach_the_targets(
    grids: list[GridStaff], within: Within, data: st.DataObject
) -> None:
    # Any targets, not only those `targets` gives: the redesign asks for head-counts of its own.
    wanted = {g.code: data.draw(st.integers(0, 6), label=g.code) for g in grids}
    moves = plan_moves(grids, wanted, within=within)
    assert len(moves) == lower_bound(grids, wanted, within=within)
    by_code = {g.code: g for g in grids}
    moved = [m.worker_id for m in moves]
    assert len(moved) == len(set(moved)), "a worker moves at most once"
    for move in moves:
        source, destination = by_code[move.from_grid], by_code[move.to_grid]
        assert move.worker_id in source.workers
        assert group_of(source, within) == group_of(destination, within)
    after = {g.code: len(g.workers) for g in apply_moves(grids, moves)}
    for grid in grids:
        before, target = len(grid.workers), wanted[grid.code]
        # A move never takes a grid past its target, either way.
        assert min(before, target) <= after[grid.code] <= max(before, target)
    groups: dict[str, list[GridStaff]] = {}
    for grid in grids:
        groups.setdefault(group_of(grid, within), []).append(grid)
    for members in groups.values():
        if sum(len(g.workers) for g in members) >= sum(wanted[g.code] for g in members):
            assert all(after[g.code] >= wanted[g.code] for g in members), "the group had the workers"


@settings(max_examples=150, deadline=None)
@given(cities(), WITHIN)
def test_a_staffing_plan_keeps_grids_within_two_to_five_and_is_done_once_applied(
    grids: list[GridStaff], within: Within
) -> None:
    planned = targets(grids, STANDARDS, within=within)
    moves = plan_moves(grids, planned, within=within)
    after = apply_moves(grids, moves)
    for before, now in zip(grids, after, strict=True):
        if len(now.workers) < len(before.workers):  # gave workers: never below the minimum if it had it
            assert len(now.workers) >= min(len(before.workers), STANDARDS.min_workers) or planned[now.code] < 2
        if len(now.workers) > len(before.workers):  # received workers: never above the maximum
            assert len(now.workers) <= STANDARDS.max_workers
    # Applying the plan and planning again finds nothing to do.
    assert plan_moves(after, planned, within=within) == []
    assert targets(after, STANDARDS, within=within) == planned


@settings(max_examples=100, deadline=None)
@given(cities(), WITHIN, st.randoms(use_true_random=False))
def test_the_same_city_gives_the_same_plan_whatever_order_it_is_read_in(
    grids: list[GridStaff], within: Within, shuffle: random.Random
) -> None:
    planned = targets(grids, STANDARDS, within=within)
    moves = plan_moves(grids, planned, within=within)
    shuffled = list(grids)
    shuffle.shuffle(shuffled)
    assert targets(shuffled, STANDARDS, within=within) == planned
    assert plan_moves(shuffled, planned, within=within) == moves
    order = [(m.from_grid, m.to_grid) for m in moves]
    assert [f for f, _ in order] == sorted(f for f, _ in order), "moves come ordered by the grid they leave"


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 5_000, allow_nan=False))
def test_staffing_recommends_what_the_workload_model_recommends(hours: float) -> None:
    standards = load_standards()
    assert recommended(hours, standards) == recommended_workers(hours, standards)


@settings(max_examples=150, deadline=None)
@given(cities())
def test_the_plan_never_travels_further_than_balancing_by_eye(grids: list[GridStaff]) -> None:
    # The benchmark's baseline: one worker at a time from the lightest-loaded grid to the heaviest-loaded one.
    planned = targets(grids, STANDARDS)
    ours = plan_moves(grids, planned)
    naive = naive_moves(grids, planned, STANDARDS)
    after = {g.code: len(g.workers) for g in apply_moves(grids, naive)}
    if all(after[c] == planned[c] for c in planned):
        assert len(ours) == len(naive)
        assert sum(m.distance_m for m in ours) <= sum(m.distance_m for m in naive) + 1e-6
