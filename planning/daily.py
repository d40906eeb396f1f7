"""planning.daily: each morning's assignment of open tasks to grid workers, by deadline and hours (pure, no database).

Method: earliest deadline first (EDF). Tasks are taken in order of (deadline, id); each goes to a worker who can
still finish it by its deadline, where a worker's room before a deadline is today's free hours plus their daily
field hours for every working day after today up to the deadline (`DailyTask.days_after_today`), minus the hours
of the tasks this pass gave them before — and, when a worker has a cap on the tasks they hold (`max_tasks`), only
while they are under it. Taken in EDF order, a worker's tasks then form a schedule in which every
task that had room finishes in time (the classic single-machine EDF argument).

The choice for one task, in order:

1. its current worker, when they work in the task's grid and still have room (no churn for nothing);
2. the worker of the task's grid with the most room;
3. only when nobody in the task's own grid has room: its current worker if they work in a neighbouring grid of the
   same community and have room, else the worker of a neighbouring grid (adjacent, same community) with the most
   room — the task crosses to a neighbour but keeps its grid;
4. nobody has room: the task will be late (overflow); it stays with its current worker when they work in its grid,
   else goes to the worker of its grid with the most room (the least overloaded); a grid with no worker at all
   hands it to its current neighbour worker, else the least overloaded neighbour (crossed and late);
5. a grid without any worker and no neighbour at all: its current holder in the community keeps it (late), else it
   waits in the grid's queue (unplaced).

Every rule reads only the loads the earlier tasks left, so the result is deterministic (independent of input
order) and idempotent: feeding the plan back as the current workers gives the same plan. The cost is
O(T log T + T × workers of a community) with small constants: the whole city (about 9,800 workers, 50,000 tasks)
in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Hours closer than this count as equal: float sums of task hours must not flip a decision.
EPS_HOURS = 1e-9


@dataclass(frozen=True)
class DailyTask:
    """An open task to place: its grid and community, deadline (epoch seconds), standard hours and current holder.

    `days_after_today` is the number of working days after today up to the deadline's day (0: due today or
    overdue); it widens a worker's room for a task due later. `due_at_s` may be `math.inf` (no deadline).
    """

    id: int
    grid: str
    community: str
    due_at_s: float
    hours: float
    worker: int | None
    days_after_today: int = 0


@dataclass(frozen=True)
class DailyWorker:
    """A grid worker: their grid and community, today's free field hours, and their field hours per working day.

    `max_tasks` caps how many more tasks they may hold (supervision's per-worker capacity, a count, minus what
    they already carry); None: no cap.
    """

    id: int
    grid: str
    community: str
    hours_free: float
    hours_per_day: float = 0.0
    max_tasks: int | None = None

    def room(self, load_h: float, task: DailyTask) -> float:
        """Hours left before the task's deadline once `load_h` hours are already planned for this worker."""
        return self.hours_free + self.hours_per_day * task.days_after_today - load_h

    def fits(self, load_h: float, held: int, task: DailyTask) -> bool:
        """Whether the task fits: its hours before its deadline, and a place under the cap on tasks held."""
        return self.room(load_h, task) >= task.hours - EPS_HOURS and (self.max_tasks is None or held < self.max_tasks)


@dataclass(frozen=True)
class DailyPlan:
    """The morning's plan: task → worker, the tasks that crossed to a neighbour grid, the late ones, the hours."""

    assignment: dict[int, int]
    crossed: frozenset[int]
    overflow: frozenset[int]
    unplaced: frozenset[int]
    hours: dict[int, float] = field(default_factory=dict)

    def changed(self, tasks: Sequence[DailyTask]) -> list[DailyTask]:
        """The tasks whose worker this plan changes (those that keep their worker, or stay queued, are left out)."""
        return [t for t in tasks if self.assignment.get(t.id) != t.worker]


def edf_key(task: DailyTask) -> tuple[float, int]:
    """The order tasks are placed in: earliest deadline first, then the lower id (deterministic)."""
    return (task.due_at_s, task.id)


def assign_daily(
    tasks: Sequence[DailyTask], workers: Sequence[DailyWorker], neighbours: Mapping[str, Sequence[str]]
) -> DailyPlan:
    """Assign every task by earliest deadline first: own grid, then a neighbouring grid of its community, else late.

    `neighbours` maps a grid to the grids sharing a boundary with it inside its community; a listed neighbour of
    another community is ignored, so a task never leaves its community.
    """
    by_id = {w.id: w for w in workers}
    grid_workers: dict[str, list[DailyWorker]] = {}
    for w in sorted(workers, key=lambda w: w.id):
        grid_workers.setdefault(w.grid, []).append(w)
    load: dict[int, float] = dict.fromkeys(by_id, 0.0)
    held: dict[int, int] = dict.fromkeys(by_id, 0)
    assignment: dict[int, int] = {}
    crossed: set[int] = set()
    overflow: set[int] = set()
    unplaced: set[int] = set()
    neighbour_pool: dict[str, list[DailyWorker]] = {}

    for task in sorted(tasks, key=edf_key):
        own = grid_workers.get(task.grid, [])
        current = by_id.get(task.worker) if task.worker is not None else None
        if current is not None and current.community != task.community:
            current = None  # a holder outside the community cannot keep it: the community's work stays there
        chosen = _with_room(
            own, load, held, task, current if current is not None and current.grid == task.grid else None
        )
        if chosen is None:
            pool = neighbour_pool.get(task.grid)
            if pool is None:
                pool = neighbour_pool[task.grid] = _neighbour_workers(task, neighbours, grid_workers)
            keep = current if current is not None and current in pool else None
            chosen = _with_room(pool, load, held, task, keep)
            if chosen is not None:
                crossed.add(task.id)
            elif not own and pool:
                # A grid without workers: a late task is still better done by a neighbour than left in a queue
                # nobody serves.
                chosen = keep or _least_overloaded(pool, load, task)
                crossed.add(task.id)
                overflow.add(task.id)
        if chosen is None and own:
            overflow.add(task.id)
            if current is not None and current.grid == task.grid:
                chosen = current
            else:
                chosen = _least_overloaded(own, load, task)
        if chosen is None and current is not None:
            # No worker in its grid nor next door (a grid left without staff): its holder in the community keeps it
            # rather than a queue nobody serves.
            chosen = current
            crossed.add(task.id)
            overflow.add(task.id)
        if chosen is None:
            unplaced.add(task.id)
            continue
        assignment[task.id] = chosen.id
        load[chosen.id] += task.hours
        held[chosen.id] += 1
    return DailyPlan(assignment, frozenset(crossed), frozenset(overflow), frozenset(unplaced), load)


def _with_room(
    candidates: Sequence[DailyWorker],
    load: Mapping[int, float],
    held: Mapping[int, int],
    task: DailyTask,
    keep: DailyWorker | None,
) -> DailyWorker | None:
    """`keep` if the task fits them, else the candidate it fits with the most room (lowest id on ties), or None."""
    if keep is not None and keep.fits(load[keep.id], held[keep.id], task):
        return keep
    best: DailyWorker | None = None
    best_room = -math.inf
    for w in candidates:
        room = w.room(load[w.id], task)
        if room > best_room + EPS_HOURS and w.fits(load[w.id], held[w.id], task):
            best, best_room = w, room
    return best


def _least_overloaded(candidates: Sequence[DailyWorker], load: Mapping[int, float], task: DailyTask) -> DailyWorker:
    """The candidate with the most room left (the least overloaded when nobody has room), lowest id on ties."""
    return max(candidates, key=lambda w: (w.room(load[w.id], task), -w.id))


def _neighbour_workers(
    task: DailyTask, neighbours: Mapping[str, Sequence[str]], grid_workers: Mapping[str, Sequence[DailyWorker]]
) -> list[DailyWorker]:
    """The workers of the grids adjacent to the task's grid inside its community, in a fixed order."""
    pool = [
        w
        for g in sorted(set(neighbours.get(task.grid, ())) - {task.grid})
        for w in grid_workers.get(g, ())
        if w.community == task.community
    ]
    return sorted(pool, key=lambda w: w.id)


def lateness_days(plan: DailyPlan, tasks: Sequence[DailyTask], workers: Sequence[DailyWorker]) -> dict[int, int]:
    """Working days each placed task finishes after its deadline, when every worker works their tasks in EDF order.

    A worker spends today's free hours first, then their daily hours; a worker with no daily hours never catches up,
    so their late tasks count as late by one day more than the deadline allows (the plan cannot say when).
    """
    by_id = {w.id: w for w in workers}
    per_worker: dict[int, list[DailyTask]] = {}
    for t in tasks:
        worker = plan.assignment.get(t.id)
        if worker is not None:
            per_worker.setdefault(worker, []).append(t)
    late: dict[int, int] = {}
    for worker_id, own in per_worker.items():
        w = by_id[worker_id]
        done_h = 0.0
        for t in sorted(own, key=edf_key):
            done_h += t.hours
            extra = done_h - w.hours_free
            if extra <= EPS_HOURS:
                day = 0
            elif w.hours_per_day > 0:
                day = math.ceil(extra / w.hours_per_day - EPS_HOURS)
            else:
                day = t.days_after_today + 1
            late[t.id] = max(0, day - t.days_after_today)
    return late
