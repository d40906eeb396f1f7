"""supervision.deadlines: the deadlines of open tasks — warnings as they come due, and provisional ones recomputed.

`raise_warnings` records the 80 % and overdue warnings (`task_warning`) once per task, step and level.

A deadline that runs into a year without an official schedule (make-up working days unknown) is computed on
Monday–Friday minus the statutory holidays and flagged `calendar_provisional`. When the year's schedule is added
(supervision/data/workday_schedule.csv, or a newer chinese-calendar), each open provisional task is recomputed
from the start of its current step, and the change is written to its audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from gis import clock
from supervision.audit import Holder, TaskEvent, write_events
from supervision.calendar import WorkCalendar, default_calendar
from supervision.task_states import OPEN_STATUSES
from supervision.workflow import Status, deadline_for

# The audit name of the calendar's recomputations.
CALENDAR_ACTOR = "system:calendar"


def raise_warnings(conn: Connection, *, now: datetime | None = None) -> dict[str, int]:
    """Record the 80% and overdue warnings that have come due (once per task, step and level)."""
    moment = now or clock.now()
    counts: dict[str, int] = {}
    for level, condition in (
        ("due_soon", "t.warn_at <= :now AND t.due_at > :now"),
        ("overdue", "t.due_at <= :now"),
    ):
        result = conn.execute(
            text(
                f"""
                INSERT INTO task_warning (task_id, level, due_at, holder, raised_at)
                SELECT t.id, :level, t.due_at, t.holder, :now FROM task t
                WHERE t.status = ANY(:open) AND t.due_at IS NOT NULL AND {condition}
                ON CONFLICT ON CONSTRAINT uq_task_warning_step DO NOTHING
                """  # noqa: S608 - fixed SQL fragments; values are bound
            ),
            {"level": level, "now": moment, "open": list(OPEN_STATUSES)},
        )
        counts[level] = result.rowcount
    return counts


@dataclass(frozen=True)
class Recomputed:
    """One task whose deadline moved."""

    task_id: int
    old_due_at: datetime
    new_due_at: datetime
    provisional: bool


def recompute_provisional(
    conn: Connection, *, calendar: WorkCalendar | None = None, now: datetime | None = None
) -> list[Recomputed]:
    """Recompute every open task whose deadline is provisional; audit the ones that change."""
    calendar = calendar or default_calendar()
    moment = now or clock.now()
    rows = conn.execute(
        text(
            """
            SELECT t.id, t.status, t.due_at, t.holder, t.worker_id,
                   (SELECT te.at FROM task_event te WHERE te.task_id = t.id AND te.due_at = t.due_at
                    ORDER BY te.at, te.id LIMIT 1) AS step_start,
                   (SELECT te.to_status FROM task_event te WHERE te.task_id = t.id AND te.due_at = t.due_at
                    ORDER BY te.at, te.id LIMIT 1) AS step_status
            FROM task t
            WHERE t.calendar_provisional AND t.due_at IS NOT NULL AND t.status = ANY(:open)
            ORDER BY t.id FOR UPDATE OF t
            """
        ),
        {"open": list(OPEN_STATUSES)},
    ).all()
    changed: list[Recomputed] = []
    for row in rows:
        if row.step_start is None:
            continue
        step = deadline_for(Status(row.step_status)) or deadline_for(Status(row.status))
        if step is None:
            continue
        info = calendar.due_at(row.step_start, step.working_days)
        if info.due_at == row.due_at and info.provisional:
            continue
        conn.execute(
            text(
                "UPDATE task SET due_at = :due, warn_at = :warn, calendar_provisional = :provisional, "
                "version = version + 1, updated_at = :now WHERE id = :id"
            ),
            {"due": info.due_at, "warn": info.warning_at, "provisional": info.provisional, "now": moment, "id": row.id},
        )
        write_events(
            conn,
            [
                TaskEvent(
                    task_id=row.id,
                    from_status=row.status,
                    to_status=row.status,
                    actor=CALENDAR_ACTOR,
                    at=moment,
                    note=(
                        f"deadline recomputed with the official working-day schedule: "
                        f"{row.due_at.date().isoformat()} → {info.due_at.date().isoformat()}"
                    ),
                    worker_id=row.worker_id,
                    holder=Holder.read(row.holder),
                    due_at=info.due_at,
                )
            ],
        )
        changed.append(Recomputed(int(row.id), row.due_at, info.due_at, info.provisional))
    return changed
