"""supervision.creation: creating tasks (NewTask) — once per event and duty, or per entity, duty and campaign.

A new task is pushed to its grid with the first deadline, audited, and handed to a worker of the grid
(`supervision.assignment`). Replaying an event or rerunning a campaign creates nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, text

from supervision.assignment import assign_to_workers
from supervision.audit import SYSTEM, Actor, Holder, TaskEvent, write_events
from supervision.calendar import WorkCalendar, default_calendar
from supervision.errors import InvalidInput
from supervision.workflow import Duty, Status, deadline_for


@dataclass
class NewTask:
    """A task to create: its duty, what it is about, where, and who must answer for it."""

    duty: Duty
    grid_code: str
    pushed_at: datetime
    entity_uscc: str | None = None
    clue_id: int | None = None
    event_id: str | None = None
    department_codes: Sequence[str] = ()
    campaign: str | None = None
    kind: Literal["task", "clue"] = "task"
    note: str | None = None


def create_tasks(
    conn: Connection, new: Sequence[NewTask], *, actor: Actor = SYSTEM, calendar: WorkCalendar | None = None
) -> list[int]:
    """Insert the tasks that do not exist yet (by event and duty, or campaign), push and assign them; their ids."""
    calendar = calendar or default_calendar()
    fresh = _without_existing(conn, new)
    if not fresh:
        return []
    rows: list[dict[str, Any]] = []
    for item in fresh:
        deadline = calendar.due_at(item.pushed_at, _first_deadline_days())
        rows.append(
            {
                "kind": item.kind,
                "duty": item.duty.value,
                "entity_uscc": item.entity_uscc,
                "clue_id": item.clue_id,
                "event_id": item.event_id,
                "grid_code": item.grid_code,
                "department_codes": ",".join(item.department_codes) or None,
                "campaign": item.campaign,
                "pushed_at": item.pushed_at,
                "due_at": deadline.due_at,
                "warn_at": deadline.warning_at,
                "provisional": deadline.provisional,
                "holder": str(Holder.grid(item.grid_code)),
                "ord": len(rows),
            }
        )
    # One statement for the whole batch; a grid code that is not in the active version inserts nothing.
    inserted = conn.execute(
        text(
            """
            INSERT INTO task (kind, duty, entity_uscc, clue_id, event_id, town_code, community_code, grid_code,
                              department_codes, campaign, status, pushed_at, due_at, warn_at, calendar_provisional,
                              holder, updated_at)
            SELECT r.kind, r.duty, r.entity_uscc, r.clue_id, r.event_id, g.town_code, g.community_code, g.code,
                   r.department_codes, r.campaign, 'pushed', r.pushed_at, r.due_at, r.warn_at, r.provisional,
                   r.holder, r.pushed_at
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
                     kind text, duty text, entity_uscc text, clue_id bigint, event_id text, grid_code text,
                     department_codes text, campaign text, pushed_at timestamptz, due_at timestamptz,
                     warn_at timestamptz, provisional boolean, holder text, ord bigint)
            JOIN grid g ON g.code = r.grid_code
            JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            ORDER BY r.ord
            RETURNING id, grid_code, pushed_at, due_at, holder, event_id, duty, entity_uscc, clue_id, campaign
            """
        ),
        {"rows": json.dumps(rows, default=_json_default)},
    ).all()
    if len(inserted) != len(rows):
        known = {r.grid_code for r in inserted}
        missing = sorted({str(r["grid_code"]) for r in rows} - known)
        raise InvalidInput(f"no active grid with code {', '.join(missing)}", field="grid_code")
    notes = {_task_key(r["event_id"], r["duty"], r["entity_uscc"], r["clue_id"], r["campaign"]): n.note
             for r, n in zip(rows, fresh, strict=True)}  # fmt: skip
    write_events(
        conn,
        [
            TaskEvent(
                task_id=r.id,
                from_status=None,
                to_status=Status.PUSHED.value,
                actor=actor.name,
                at=r.pushed_at,
                note=notes.get(_task_key(r.event_id, r.duty, r.entity_uscc, r.clue_id, r.campaign)),
                worker_id=None,
                holder=Holder.read(r.holder),
                due_at=r.due_at,
            )
            for r in inserted
        ],
    )
    ids = [int(r.id) for r in inserted]
    assign_to_workers(conn, ids, actor=actor, at=max(item.pushed_at for item in fresh))
    return ids


def _task_key(*parts: object) -> tuple[object, ...]:
    return tuple(None if p is None else str(p) for p in parts)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _first_deadline_days() -> int:
    first = deadline_for(Status.PUSHED)
    assert first is not None
    return first.working_days


def _without_existing(conn: Connection, new: Sequence[NewTask]) -> list[NewTask]:
    """Drop tasks that exist already: the same event and duty, or the same entity, duty and campaign."""
    event_ids = sorted({n.event_id for n in new if n.event_id})
    campaigns = sorted({n.campaign for n in new if n.campaign})
    seen_event: set[tuple[str, str]] = set()
    seen_campaign: set[tuple[str | None, str, str]] = set()
    if event_ids:
        seen_event = {
            (r.event_id, r.duty)
            for r in conn.execute(
                text("SELECT event_id, duty FROM task WHERE event_id = ANY(:ids)"), {"ids": event_ids}
            )
        }
    if campaigns:
        usccs = sorted({n.entity_uscc for n in new if n.campaign and n.entity_uscc})
        seen_campaign = {
            (r.entity_uscc, r.duty, r.campaign)
            for r in conn.execute(
                text(
                    "SELECT entity_uscc, duty, campaign FROM task "
                    "WHERE campaign = ANY(:campaigns) AND entity_uscc = ANY(:usccs)"
                ),
                {"campaigns": campaigns, "usccs": usccs},
            )
        }
    out: list[NewTask] = []
    for item in new:
        key_event = (item.event_id, item.duty.value) if item.event_id else None
        key_campaign = (item.entity_uscc, item.duty.value, item.campaign) if item.campaign else None
        if key_event in seen_event or key_campaign in seen_campaign:
            continue
        if key_event:
            seen_event.add(key_event)
        if key_campaign:
            seen_campaign.add(key_campaign)
        out.append(item)
    return out
