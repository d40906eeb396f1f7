"""planning.staffing: how many workers each grid should have, and the fewest worker moves that get there.

Pure: no database. Two steps, each explainable to a town leader:

1. `targets` — each grid's head-count to reach. It starts from the recommended workers of the grid's workload
   (hours per month over one worker's monthly field capacity, kept within 一格两员..一格五员), then fits each group
   (a town by default) to the workers it actually has, because a plan only moves workers, it never hires:

   * fewer workers than recommended in total: the shortfall is taken, one worker at a time, from the grid whose
     hours per worker stay lowest after losing one (so the busiest grid per worker is as light as it can be), never
     below the minimum head-count while the group has enough workers for every grid's minimum. So under a shortage
     a grid's target can be below its own recommendation, and a plan may even take a worker from a grid that is
     already short: the town cannot staff every grid as recommended, and the plan spreads the gap so that hours
     per worker are as even across the town as the head-count rules allow, rather than leaving the gap wherever
     it happens to be now. The service shows it per grid (`short_by`, "缺 N 人（全镇人手不足）") so nobody reads
     the target as the grid's need. A grid with no work gives up its last worker before any grid with work;
   * as many or more workers than recommended: every grid below its recommendation is filled, and the extra workers
     stay where they are (no move for nothing); the gaps are filled by the extras `plan_moves` would send (the grid
     with most extras first, then the least travel), and those grids' targets drop by as many.
     A grid with extras stays at or above its recommendation, so its hours per worker stay within one worker's
     capacity.

2. `plan_moves` — the fewest moves that reach the targets inside each group. A grid with more workers than its
   target has surplus slots (its first workers, fewest open tasks first); a grid with fewer has deficit slots. The
   number of moves is exactly min(surplus, deficit) of each group — the lower bound, since every move fills at most
   one missing worker and empties at most one extra one. Which surplus worker fills which gap is an assignment of
   least total travel distance between grid centroids (`scipy.optimize.linear_sum_assignment`). When one side is
   longer, the grid missing most workers is filled first (and the grid with most extras gives first), level by
   level, then distance decides.

Ties are broken by grid code and worker order, so the same input always gives the same plan in the same order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

Within = Literal["town", "community", "city"]
WITHIN_VALUES: tuple[Within, ...] = ("town", "community", "city")


class StaffingStandards(Protocol):
    """The part of the workload standards staffing reads (planning.workload.Standards has them all)."""

    @property
    def field_hours_per_worker_month(self) -> float: ...

    @property
    def min_workers(self) -> int: ...

    @property
    def max_workers(self) -> int: ...


@dataclass(frozen=True)
class GridStaff:
    """One grid as staffing sees it: its workload, its active workers and where it lies."""

    code: str
    town_code: str
    community_code: str
    hours: float  # workload, hours per month
    workers: tuple[int, ...]  # active worker ids, in the order they would be moved (fewest open tasks first)
    x: float  # metric (EPSG:4547) centroid, metres
    y: float


@dataclass(frozen=True)
class Move:
    """One worker moving from one grid to another, and how far apart the grids' centroids lie."""

    worker_id: int
    from_grid: str
    to_grid: str
    distance_m: float


def recommended(hours: float, standards: StaffingStandards) -> int:
    """Recommended workers of one grid: its hours per month over one worker's capacity, rounded up, within min..max."""
    capacity = standards.field_hours_per_worker_month
    needed = math.ceil(hours / capacity - 1e-9) if capacity > 0 and hours > 0 else 0
    return max(standards.min_workers, min(standards.max_workers, needed))


def group_of(grid: GridStaff, within: Within) -> str:
    """The key of the group a grid's workers may move within: its town, its community, or the whole city."""
    if within == "town":
        return grid.town_code
    if within == "community":
        return grid.community_code
    if within == "city":
        return "city"
    raise ValueError(f"within must be one of {WITHIN_VALUES}, not {within!r}")


def _groups(grids: Sequence[GridStaff], within: Within) -> dict[str, list[GridStaff]]:
    """Grids by group, each group in code order (the deterministic order every tie falls back on)."""
    groups: dict[str, list[GridStaff]] = defaultdict(list)
    for grid in sorted(grids, key=lambda g: g.code):
        groups[group_of(grid, within)].append(grid)
    return dict(sorted(groups.items()))


def _hours_per_worker_after_losing_one(hours: float, count: int) -> float:
    """Hours per worker a grid would carry with one worker fewer (infinite when its work would have nobody left).

    A grid with no work loses its last worker first: keeping one there would take them from a grid that has work.
    """
    if count > 1:
        return hours / (count - 1)
    return math.inf if hours > 0 else 0.0


def targets(grids: Sequence[GridStaff], standards: StaffingStandards, *, within: Within = "town") -> dict[str, int]:
    """The head-count each grid should reach: its recommended workers, fitted to the workers its group has."""
    result: dict[str, int] = {}
    for members in _groups(grids, within).values():
        result.update(_group_targets(members, standards))
    return result


def _group_targets(members: list[GridStaff], standards: StaffingStandards) -> dict[str, int]:
    """Targets of one group (see the module docstring for the two cases)."""
    current = {g.code: len(g.workers) for g in members}
    hours = {g.code: max(g.hours, 0.0) for g in members}
    target = {g.code: recommended(g.hours, standards) for g in members}
    have, want = sum(current.values()), sum(target.values())
    if have < want:
        # Take the shortfall where hours per worker stay lowest; the minimum is kept while the group allows it.
        floor = standards.min_workers if have >= standards.min_workers * len(members) else 0
        for _ in range(want - have):
            candidates = [c for c in target if target[c] > floor] or [c for c in target if target[c] > 0]
            code = min(candidates, key=lambda c: (_hours_per_worker_after_losing_one(hours[c], target[c]), c))
            target[code] -= 1
        return target
    # Enough workers: every grid below its recommendation is filled and the extra workers stay where they are. Which
    # extras fill the gaps is the matching `plan_moves` makes (most extras first, then least travel), so the
    # targets name exactly the workers that will move and the plan of these targets moves nobody else.
    kept = {c: max(target[c], current[c]) for c in target}
    for move in _group_moves(members, target):
        kept[move.from_grid] -= 1
    return kept


def lower_bound(grids: Sequence[GridStaff], targets: Mapping[str, int], *, within: Within = "town") -> int:
    """The fewest moves any plan needs: per group, min(total surplus, total deficit) against the targets."""
    total = 0
    for members in _groups(grids, within).values():
        surplus = sum(max(0, len(g.workers) - targets.get(g.code, len(g.workers))) for g in members)
        deficit = sum(max(0, targets.get(g.code, len(g.workers)) - len(g.workers)) for g in members)
        total += min(surplus, deficit)
    return total


def plan_moves(grids: Sequence[GridStaff], targets: Mapping[str, int], *, within: Within = "town") -> list[Move]:
    """The fewest moves that reach the targets inside each group, by least total travel; deterministic.

    A grid missing from `targets` keeps its workers. Moves come ordered by source grid, then worker order.
    """
    moves: list[Move] = []
    for members in _groups(grids, within).values():
        moves.extend(_group_moves(members, targets))
    position = {(g.code, w): i for g in grids for i, w in enumerate(g.workers)}
    return sorted(moves, key=lambda m: (m.from_grid, position[(m.from_grid, m.worker_id)], m.to_grid))


def _group_moves(members: list[GridStaff], targets: Mapping[str, int]) -> list[Move]:
    """The moves of one group: surplus slots matched to deficit slots, the most off their target first, then by
    least distance."""
    # One slot per worker to give and per worker to receive, each with its level: how far its grid still is from
    # its target when that slot is used (the grid with most extras gives first, the grid missing most is filled first).
    give: list[tuple[GridStaff, int]] = []
    take: list[tuple[GridStaff, int]] = []
    for grid in members:
        want = targets.get(grid.code, len(grid.workers))
        extra, missing = len(grid.workers) - want, want - len(grid.workers)
        give.extend((grid, extra - k) for k in range(max(0, extra)))
        take.extend((grid, missing - k) for k in range(max(0, missing)))
    if not give or not take:
        return []
    gx = np.array([g.x for g, _ in give], dtype=np.float64)
    gy = np.array([g.y for g, _ in give], dtype=np.float64)
    tx = np.array([g.x for g, _ in take], dtype=np.float64)
    ty = np.array([g.y for g, _ in take], dtype=np.float64)
    distance = np.hypot(tx[:, None] - gx[None, :], ty[:, None] - gy[None, :])
    # Levels come first: a penalty per level step larger than any total distance the matching could save. Levels
    # are small (a grid holds a handful of workers), so the sum stays exact enough in float64. Only the longer side's
    # levels matter: the shorter side is used whole.
    step = float(distance.max()) * min(len(give), len(take)) + 1.0
    level_give = np.array([lv for _, lv in give], dtype=np.float64)
    level_take = np.array([lv for _, lv in take], dtype=np.float64)
    level_give, level_take = level_give.max() - level_give, level_take.max() - level_take
    cost = distance + step * (level_take[:, None] + level_give[None, :])
    rows, cols = linear_sum_assignment(cost)
    # The matching fixes which grid gives to which; each giving grid then sends its workers in their order, and the
    # pairs are taken in (giver, receiver) order so the first worker goes to the first receiving grid by code.
    pairs = sorted((give[c][0].code, take[r][0].code, float(distance[r, c])) for r, c in zip(rows, cols, strict=True))
    by_code = {g.code: g for g in members}
    sent: dict[str, int] = defaultdict(int)
    moves: list[Move] = []
    for source, destination, distance_m in pairs:
        worker = by_code[source].workers[sent[source]]
        sent[source] += 1
        moves.append(Move(worker, source, destination, distance_m))
    return moves


def apply_moves(grids: Sequence[GridStaff], moves: Sequence[Move]) -> list[GridStaff]:
    """The grids after the moves: each moved worker leaves its grid and joins the end of the other's list."""
    workers = {g.code: list(g.workers) for g in grids}
    for move in moves:
        workers[move.from_grid].remove(move.worker_id)
        workers[move.to_grid].append(move.worker_id)
    return [GridStaff(g.code, g.town_code, g.community_code, g.hours, tuple(workers[g.code]), g.x, g.y) for g in grids]
