"""planning.daily_service: the morning's assignment on the database — load open tasks and workers, plan, write it.

What the pure plan (planning.daily) is fed:

- tasks: the open tasks a grid worker must act on (supervision.task_states.WORKER_HELD), including those waiting
  in a grid's queue. Tasks not yet started (pushed, assigned) or waiting in a queue are placed; a task further
  along (inspected, notice issued, reinspected) stays with the worker who holds it — they saw the premises and
  follow the case — and counts as work that worker already carries;
- each task's hours: the standard hours of its duty (planning.workload.duty_hours; a clue's task: the clue's
  standard minutes), its deadline in working days after the day planned (supervision.calendar);
- workers: the active workers of the active grid version, each with the daily field hours one worker gives
  (standards.field_hours_per_worker_month over the month's working days; none on a day off), today's hours minus
  the hours of the tasks they already carry, and their capacity (a count of open tasks, as intake keeps it)
  minus those tasks: a worker at their capacity takes no more unless nobody has room;
- neighbours: grids of the active version in the same community that share a boundary of positive length
  (one PostGIS query per call).

The changes go through the audited path: one UPDATE of the changed tasks guarded by their version (a task a worker
moved meanwhile is left alone), one `task_event` per change with a note that names the day, and one
`planning_batch` row (kind daily_assignment) with the summary. Running it twice the same morning changes nothing
the second time (the plan is idempotent, see planning.daily).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from gis import clock
from planning.daily import DailyPlan, DailyTask, DailyWorker, lateness_days
from planning.daily import assign_daily as plan_daily
from planning.errors import NothingToPlan, PlanNotFound
from planning.workload import Standards, duty_hours
from planning.workload_service import city_standards
from supervision.audit import SYSTEM, Actor, Holder, TaskEvent, write_events
from supervision.calendar import WorkCalendar, default_calendar
from supervision.intake import hold_grid_versions_shared
from supervision.jobs import DailyJob
from supervision.task_states import WORKER_HELD
from supervision.workflow import Status

# States in which a task is not started yet: the morning plan may give it to anyone with room.
MOVABLE = frozenset({Status.PUSHED.value, Status.ASSIGNED.value})
# A task with no deadline counts as due this many working days after the day planned (it never crowds others).
NO_DEADLINE_DAYS = 10_000
BATCH_KIND = "daily_assignment"


@dataclass(frozen=True)
class DailySummary:
    """What one morning's assignment did (or, in a dry run, would do)."""

    on: date
    town_code: str | None
    dry_run: bool
    tasks: int  # open tasks placed by the plan
    carried: int  # tasks further along that stay with their worker
    workers: int
    hours_per_day: float  # one worker's daily field hours that day
    changed: int  # tasks whose worker changed (or that left a queue)
    kept: int  # tasks that kept their worker
    crossed: int  # tasks held after the run by a worker of a neighbouring grid (given this run or before)
    crossed_now: int  # of the changed tasks, those this run gave to a neighbouring grid (0 when nothing changed)
    overflow: int  # tasks nobody could finish by their deadline (they will be late)
    unplaced: int  # tasks left in their grid's queue (no worker there or next door)
    late_days: int  # working days late, summed over the overflow tasks, if worked in deadline order
    max_worker_hours: float
    mean_worker_hours: float
    batch_id: int | None
    lenders: tuple[tuple[str, int], ...] = ()  # the grids that handed most tasks to a neighbour this run, how many

    def as_json(self) -> dict[str, Any]:
        """The summary as the planning batch and the job log store it."""
        out = asdict(self)
        out["on"] = self.on.isoformat()
        out["lenders"] = [list(pair) for pair in self.lenders]
        return out


class _TaskRow(NamedTuple):
    """An open task as read for the morning plan (a named tuple: 50,000 are built each morning)."""

    id: int
    status: str
    version: int
    grid_code: str
    community_code: str
    worker_id: int | None
    holder: str | None
    due_at: datetime | None
    hours: float
    due_s: float  # the deadline in epoch seconds (inf: none)
    days_after: int  # working days after the day planned up to the deadline's day


def daily_hours(on: date, standards: Standards, calendar: WorkCalendar) -> float:
    """One worker's field hours on that day: the monthly capacity over the month's working days (0 on a day off)."""
    if not calendar.is_working_day(on):
        return 0.0
    first = on.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    working = calendar.working_days_between(first - timedelta(days=1), last)
    return standards.field_hours_per_worker_month / max(working, 1)


def task_hours(duty: str, kind: str, standards: Standards) -> float:
    """Standard hours of one open task: its duty's, or a clue's for a clue task."""
    if kind == "clue":
        return standards.clue_minutes / 60.0
    return duty_hours(duty, standards)


def load_neighbours(conn: Connection, *, town_code: str | None = None) -> dict[str, list[str]]:
    """Grid → the grids of the active version in its community that share a boundary of positive length."""
    rows = conn.execute(
        text(
            """
            SELECT a.code AS a, b.code AS b
            FROM grid a
            JOIN grid_version v ON v.id = a.version_id AND v.status = 'active'
            JOIN grid b ON b.version_id = a.version_id AND b.community_code = a.community_code AND b.code > a.code
                       AND b.geom && a.geom
            WHERE (CAST(:town AS text) IS NULL OR a.town_code = :town)
              AND (ST_Relate(a.geom, b.geom, '****1****') OR ST_Relate(a.geom, b.geom, '2********'))
            """
        ),
        {"town": town_code},
    ).all()
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.a, []).append(r.b)
        out.setdefault(r.b, []).append(r.a)
    return {g: sorted(n) for g, n in out.items()}


def _load_tasks(
    conn: Connection, town_code: str | None, on: date, standards: Standards, calendar: WorkCalendar
) -> list[_TaskRow]:
    rows = conn.execute(
        text(
            """
            SELECT id, status, version, grid_code, community_code, worker_id, holder, due_at, duty, kind,
                   extract(epoch FROM due_at) AS due_s, (due_at AT TIME ZONE 'Asia/Shanghai')::date AS due_day
            FROM task WHERE status = ANY(:held) AND (CAST(:town AS text) IS NULL OR town_code = :town)
            ORDER BY id
            """
        ),
        {"held": sorted(WORKER_HELD), "town": town_code},
    ).all()
    # Deadlines fall on a few days and tasks are of a few duties: each is worked out once.
    hours: dict[tuple[str, str], float] = {}
    days: dict[date | None, int] = {}
    out = []
    for task_id, status, version, grid, community, worker, holder, due_at, duty, kind, due_s, due_day in rows:
        key = (duty, kind)
        if key not in hours:
            hours[key] = task_hours(duty, kind, standards)
        if due_day not in days:
            days[due_day] = days_after(on, due_day, calendar)
        deadline_s = float(due_s) if due_s is not None else math.inf
        out.append(
            _TaskRow(task_id, status, version, grid, community, worker, holder, due_at, hours[key], deadline_s,
                     days[due_day])
        )  # fmt: skip
    return out


def _load_workers(conn: Connection, town_code: str | None) -> list[tuple[int, str, str, int]]:
    rows = conn.execute(
        text(
            """
            SELECT w.id, w.grid_code, g.community_code, w.capacity
            FROM worker w
            JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'
            JOIN grid g ON g.version_id = w.version_id AND g.code = w.grid_code
            WHERE w.active AND (CAST(:town AS text) IS NULL OR g.town_code = :town)
            ORDER BY w.id
            """
        ),
        {"town": town_code},
    ).all()
    return [(int(r.id), r.grid_code, r.community_code, int(r.capacity)) for r in rows]


def days_after(on: date, due_day: date | None, calendar: WorkCalendar) -> int:
    """Working days after `on` up to the deadline's day (Asia/Shanghai) (0: due that day or overdue)."""
    if due_day is None:
        return NO_DEADLINE_DAYS
    if due_day <= on:
        return 0
    return calendar.working_days_between(on, due_day)


def build_inputs(
    conn: Connection,
    *,
    on: date,
    town_code: str | None = None,
    standards: Standards | None = None,
    calendar: WorkCalendar | None = None,
) -> tuple[list[DailyTask], list[DailyWorker], dict[str, list[str]], list[_TaskRow], float, int]:
    """The pure plan's inputs for that morning: tasks to place, workers with their free hours, grid neighbours.

    Also returns the task rows (for the writes), one worker's daily hours and how many carried tasks were counted.
    """
    standards = standards or city_standards(conn)
    calendar = calendar or default_calendar()
    per_day = daily_hours(on, standards, calendar)
    rows = _load_tasks(conn, town_code, on, standards, calendar)
    worker_rows = _load_workers(conn, town_code)
    known = {w[0] for w in worker_rows}
    carried_h: dict[int, float] = {}
    carried_n: dict[int, int] = {}
    placed: list[_TaskRow] = []
    carried = 0
    for r in rows:
        if r.status not in MOVABLE and r.worker_id is not None and r.worker_id in known:
            carried_h[r.worker_id] = carried_h.get(r.worker_id, 0.0) + r.hours
            carried_n[r.worker_id] = carried_n.get(r.worker_id, 0) + 1
            carried += 1
        else:
            placed.append(r)
    tasks = [
        DailyTask(
            id=r.id,
            grid=r.grid_code,
            community=r.community_code,
            due_at_s=r.due_s,
            hours=r.hours,
            worker=r.worker_id,
            days_after_today=r.days_after,
        )
        for r in placed
    ]
    workers = [
        DailyWorker(w, g, c, per_day - carried_h.get(w, 0.0), per_day, max(cap - carried_n.get(w, 0), 0))
        for w, g, c, cap in worker_rows
    ]
    return tasks, workers, load_neighbours(conn, town_code=town_code), placed, per_day, carried


def assign_daily(
    conn: Connection,
    *,
    on: date,
    town_code: str | None = None,
    dry_run: bool = False,
    actor: Actor = SYSTEM,
    at: datetime | None = None,
    standards: Standards | None = None,
) -> DailySummary:
    """Assign the open tasks of the city (or one town) for the morning of `on`; write the changes unless a dry run."""
    moment = at or clock.now()
    if (
        town_code is not None
        and conn.execute(text("SELECT 1 FROM town WHERE code = :c"), {"c": town_code}).first() is None
    ):
        raise PlanNotFound(f"没有编码为 {town_code} 的镇街", reason="unknown_town")
    if not dry_run:
        # An apply or rollback of a grid version in progress moves tasks and workers between grids: wait for it, and
        # keep the active version fixed while this plan is read and written.
        hold_grid_versions_shared(conn)
    tasks, workers, neighbours, rows, per_day, carried = build_inputs(
        conn, on=on, town_code=town_code, standards=standards
    )
    if not workers and not tasks:
        raise NothingToPlan("该范围内没有网格员，也没有待办任务", reason="no_workers")
    plan = plan_daily(tasks, workers, neighbours)
    changed = plan.changed(tasks)
    late = lateness_days(plan, tasks, workers)
    grid_of = {w.id: w.grid for w in workers}
    # What this run changes (in a dry run: would change): a second run the same morning reports none of it.
    moved = changed
    batch_id: int | None = None
    if not dry_run and changed:
        moved = _write(conn, plan, changed, {r.id: r for r in rows}, grid_of, on=on, actor=actor, at=moment)
    elif not dry_run:
        moved = []
    worker_hours = [plan.hours.get(w.id, 0.0) + per_day - w.hours_free for w in workers]
    summary = DailySummary(
        on=on,
        town_code=town_code,
        dry_run=dry_run,
        tasks=len(tasks),
        carried=carried,
        workers=len(workers),
        hours_per_day=round(per_day, 4),
        changed=len(moved),
        kept=len(tasks) - len(changed),
        crossed=len(plan.crossed),
        crossed_now=sum(1 for t in moved if t.id in plan.crossed),
        overflow=len(plan.overflow),
        unplaced=len(plan.unplaced),
        late_days=sum(late.values()),
        max_worker_hours=round(max(worker_hours, default=0.0), 3),
        mean_worker_hours=round(sum(worker_hours) / len(worker_hours), 3) if worker_hours else 0.0,
        batch_id=None,
        lenders=_lenders(plan, moved),
    )
    if not dry_run and moved:
        batch_id = _record_batch(conn, summary, actor=actor, at=moment)
        summary = DailySummary(**{**asdict(summary), "batch_id": batch_id})
    return summary


def _lenders(plan: DailyPlan, tasks: list[DailyTask], top: int = 10) -> tuple[tuple[str, int], ...]:
    """The grids of `tasks` that handed most of them to a neighbour (most first, then by code), with their counts."""
    counts: dict[str, int] = {}
    for t in tasks:
        if t.id in plan.crossed:
            counts[t.grid] = counts.get(t.grid, 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


def _note(on: date, task: DailyTask, worker: int | None, crossed: bool, late: bool, grid_of: Mapping[int, str]) -> str:
    """The audit note of one change, in Chinese then English, naming the day."""
    day = on.isoformat()
    if worker is None:
        return f"每日分派 {day}：本网格及相邻网格无网格员，任务在网格队列等待 / daily assignment {day}: no worker, waits in the queue"
    where = f"相邻网格 {grid_of[worker]}（本网格已满）" if crossed else "本网格"
    suffix = "，预计逾期" if late else ""
    english = f"worker {worker} of {'neighbouring grid ' + grid_of[worker] if crossed else 'the grid'}"
    return f"每日分派 {day}：交{where}网格员 {worker}{suffix} / daily assignment {day}: to {english}" + (
        " (late)" if late else ""
    )


def _write(
    conn: Connection,
    plan: DailyPlan,
    changed: list[DailyTask],
    rows: Mapping[int, _TaskRow],
    grid_of: Mapping[int, str],
    *,
    on: date,
    actor: Actor,
    at: datetime,
) -> list[DailyTask]:
    """Update the changed tasks (guarded by the version read) and audit each one; the tasks written."""
    ids, versions, workers, statuses, holders, holder_of = [], [], [], [], [], []
    for t in changed:
        r = rows[t.id]
        worker = plan.assignment.get(t.id)
        status = Status.ASSIGNED.value if r.status == Status.PUSHED.value and worker else r.status
        ids.append(t.id)
        versions.append(r.version)
        workers.append(worker)
        statuses.append(status)
        holder = Holder.worker_or_queue(worker, r.grid_code)
        holder_of.append(holder)
        holders.append(str(holder))
    done = {
        int(row[0])
        for row in conn.execute(
            text(
                """
                UPDATE task t SET worker_id = u.worker_id, status = u.status, holder = u.holder,
                       version = t.version + 1, updated_at = :at
                FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:workers AS bigint[]),
                            CAST(:statuses AS text[]), CAST(:holders AS text[]))
                     AS u(id, version, worker_id, status, holder)
                WHERE t.id = u.id AND t.version = u.version AND t.status = ANY(:held)
                RETURNING t.id
                """
            ),
            {
                "ids": ids,
                "versions": versions,
                "workers": workers,
                "statuses": statuses,
                "holders": holders,
                "at": at,
                "held": sorted(WORKER_HELD),
            },  # fmt: skip
        )
    }
    events, written = [], []
    for t, worker, status, holder in zip(changed, workers, statuses, holder_of, strict=True):
        if t.id not in done:
            continue  # a worker moved it since it was read: their move stands
        written.append(t)
        events.append(
            TaskEvent(
                task_id=t.id,
                from_status=rows[t.id].status,
                to_status=status,
                actor=actor.name,
                at=at,
                note=_note(on, t, worker, t.id in plan.crossed, t.id in plan.overflow, grid_of),
                worker_id=worker,
                holder=holder,
                due_at=rows[t.id].due_at,
            )
        )
    write_events(conn, events)
    return written


def _record_batch(conn: Connection, summary: DailySummary, *, actor: Actor, at: datetime) -> int:
    """One planning_batch row for the run, with its summary."""
    return int(
        conn.execute(
            text(
                """
                INSERT INTO planning_batch (kind, area_code, actor, at, reason, summary, version_id)
                VALUES (:kind, :area, :actor, :at, :reason, CAST(:summary AS jsonb),
                        (SELECT id FROM grid_version WHERE status = 'active' ORDER BY id DESC LIMIT 1))
                RETURNING id
                """
            ),
            {
                "kind": BATCH_KIND,
                "area": summary.town_code,
                "actor": actor.name,
                "at": at,
                "reason": f"每日分派 {summary.on.isoformat()} / daily assignment {summary.on.isoformat()}",
                "summary": json.dumps(summary.as_json(), ensure_ascii=False),
            },
        ).scalar_one()
    )


def _morning_run(conn: Connection, day: date, moment: datetime) -> dict[str, object]:
    """The morning job: the whole city's assignment for the day, its summary for the job log."""
    try:
        return assign_daily(conn, on=day, at=moment).as_json()
    except NothingToPlan as exc:
        return {"skipped": str(exc), "reason": exc.reason}


# `gridgov serve` runs it once per working day, at the first tick from 07:00 Asia/Shanghai on.
MORNING_JOB = DailyJob(name=BATCH_KIND, at=time(7, 0), run=_morning_run)
