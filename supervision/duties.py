"""supervision.duties: the "4+2" duty tasks a newly registered entity gets, and its routed licence check."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from supervision.creation import NewTask
from supervision.events import RegistrationEvent
from supervision.routing import default_router
from supervision.workflow import Duty


def duty_tasks(
    conn: Connection, event: RegistrationEvent, grid_code: str, pushed_at: datetime, *, holds: bool | None = None
) -> list[NewTask]:
    """The "4+2" duties that apply to a newly registered entity, one task each (`holds`: it has a licence)."""
    tasks = [
        NewTask(Duty.ADDRESS_CHECK, grid_code, pushed_at, event.uscc, event_id=event.event_id),
        NewTask(Duty.OPENING_CHECK, grid_code, pushed_at, event.uscc, event_id=event.event_id),
    ]
    router = default_router()
    if router.needs_licence(event.business_scope):
        tasks.append(licence_task(event, grid_code, pushed_at))
        if holds is None:
            holds = (
                conn.execute(text("SELECT 1 FROM entity_licence WHERE uscc = :u"), {"u": event.uscc}).first()
                is not None
            )
        if holds:
            tasks.append(NewTask(Duty.LICENCE_DISPLAY, grid_code, pushed_at, event.uscc, event_id=event.event_id))
    return tasks


def licence_task(event: RegistrationEvent, grid_code: str, pushed_at: datetime) -> NewTask:
    """The licence check, routed to every department whose licence the scope needs (one joint case)."""
    departments = default_router().departments_for_scope(event.business_scope)
    licences = "、".join(r.licence for r in default_router().requirements(event.business_scope))
    return NewTask(
        Duty.LICENCE_CHECK,
        grid_code,
        pushed_at,
        event.uscc,
        event_id=event.event_id,
        department_codes=departments,
        note=f"needs {licences}" + (" (joint case)" if len(departments) > 1 else ""),
    )
