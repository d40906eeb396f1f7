"""supervision.transitions: moving one task through the workflow (Move), after every check a move must pass.

A move locks the task, checks the caller's scope, the version they saw (stale → StaleVersion), the state
machine, their role and, for an inspection, their position; then it updates the task and writes one audit row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis import clock
from supervision.assignment import assign_to_workers
from supervision.audit import Actor, Holder, TaskEvent, stored, write_events
from supervision.calendar import WorkCalendar, default_calendar
from supervision.errors import InvalidInput, InvalidMove, NotPermitted, StaleVersion
from supervision.permissions import may_move_to, may_reassign
from supervision.routing import RoutingError, default_router
from supervision.scope import CITY, Scope, visible_row
from supervision.task_queries import TaskView, task_by_id
from supervision.task_states import WORKER_HELD, merge_departments, split_departments
from supervision.workflow import (
    INSPECTION_TARGETS,
    PRESENCE_LIMIT_M,
    Duty,
    Status,
    TransitionError,
    allowed_moves,
    check_move,
    deadline_for,
    is_open,
    restarts_clock,
)

# A client clock this far ahead of ours is an error, not a slightly fast phone.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Move:
    """A requested transition: the target state, the version the caller saw, and what an inspection carries."""

    to: str
    version: int
    note: str | None = None
    lon: float | None = None
    lat: float | None = None
    at: datetime | None = None
    worker_id: int | None = None
    department_codes: Sequence[str] = ()


def transition(  # noqa: C901 - one locked move: scope, version, state machine, role, presence, deadline
    conn: Connection, task_id: int, move: Move, *, actor: Actor, calendar: WorkCalendar | None = None
) -> TaskView:
    """Move one task (locked), after the scope, version, state-machine, role and presence checks; the new task."""
    calendar = calendar or default_calendar()
    current = _locked_task(conn, task_id, actor.scope)
    status = Status(current["status"])
    if move.version != current["version"]:
        raise StaleVersion(task_id, move.version, current["version"], [s.value for s in allowed_moves(status)])
    has_position = move.lon is not None and move.lat is not None
    try:
        target = check_move(status, move.to, has_position=has_position)
    except TransitionError as exc:
        raise InvalidMove(str(exc), status.value, [s.value for s in exc.allowed]) from None
    if not may_move_to(actor.role, status, target):
        raise NotPermitted(f"a {actor.role} cannot move a task that is {status.value} to {target.value}")
    moment = move.at or clock.now()
    if moment > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput(f"time {moment.isoformat()} is in the future", field="at")
    if moment < current["updated_at"] - FUTURE_TOLERANCE:
        raise InvalidInput("time is before the task's last change", field="at")

    worker_id = current["worker_id"]
    department_codes = current["department_codes"]
    holder = Holder.read(current["holder"])
    distance_m: float | None = None
    flagged = False
    if target is Status.ASSIGNED and status is Status.ASSIGNED:
        # A reassignment: a decision of the community or the centre (a worker takes only unassigned work), to
        # another active worker of the task's grid; the deadline keeps running.
        if not may_reassign(actor.role):
            raise NotPermitted(f"a {actor.role} cannot reassign a task held by a worker")
        if move.worker_id is None or move.worker_id == current["worker_id"]:
            raise InvalidInput("a reassignment names another worker of the grid", field="worker_id")
    if target is Status.ASSIGNED:
        if actor.worker_id is not None and move.worker_id not in (None, actor.worker_id):
            # A grid worker takes unassigned work for themselves; handing it to someone else is the community's.
            raise NotPermitted(f"a {actor.role} takes a task for themselves, not for worker {move.worker_id}")
        worker_id = move.worker_id or actor.worker_id
        if worker_id is None:
            assigned = assign_to_workers(conn, [task_id], actor=actor, at=moment, note=move.note)
            if assigned.get(task_id) is None:
                raise InvalidMove("no worker of the grid has room for this task", status.value, [])
            return task_by_id(conn, task_id, CITY)
        _check_worker_in_grid(conn, worker_id, current["grid_code"])
        holder = Holder.worker(worker_id)
    elif target in INSPECTION_TARGETS:
        assert move.lon is not None and move.lat is not None
        _check_lonlat(move.lon, move.lat)
        distance_m = _distance_to_subject(conn, current, move.lon, move.lat)
        flagged = distance_m is not None and distance_m > PRESENCE_LIMIT_M
        if actor.worker_id is not None:
            worker_id = actor.worker_id
    elif target is Status.ESCALATED_COMMUNITY:
        holder = Holder.community(current["community_code"])
    elif target is Status.ESCALATED_DEPARTMENT:
        codes = list(move.department_codes) or _departments_for(conn, current)
        router = default_router()
        for code in codes:
            try:
                router.department(code)
            except RoutingError as exc:
                raise InvalidInput(str(exc), field="department_codes") from None
        department_codes = merge_departments(department_codes, codes)
        holder = Holder.departments(codes)
    if target.value in WORKER_HELD:
        holder = Holder.worker_or_queue(worker_id, current["grid_code"])

    due_at, warn_at, provisional = current["due_at"], current["warn_at"], current["calendar_provisional"]
    if not is_open(target):
        due_at = warn_at = None
        holder = None
    elif restarts_clock(status, target):
        step = deadline_for(target)
        assert step is not None
        info = calendar.due_at(moment, step.working_days)
        due_at, warn_at, provisional = info.due_at, info.warning_at, info.provisional
    elif deadline_for(target) is None:
        due_at = warn_at = None

    conn.execute(
        text(
            """
            UPDATE task SET status = :status, worker_id = :worker_id, holder = :holder,
                   department_codes = :departments, due_at = :due_at, warn_at = :warn_at,
                   calendar_provisional = :provisional, flagged = flagged OR :flagged,
                   closed_at = CASE WHEN :terminal THEN :at ELSE NULL END,
                   version = version + 1, updated_at = :at
            WHERE id = :id
            """
        ),
        {
            "id": task_id,
            "status": target.value,
            "worker_id": worker_id,
            "holder": stored(holder),
            "departments": department_codes,
            "due_at": due_at,
            "warn_at": warn_at,
            "provisional": provisional,
            "flagged": flagged,
            "terminal": not is_open(target),
            "at": moment,
        },
    )
    write_events(
        conn,
        [
            TaskEvent(
                task_id=task_id,
                from_status=status.value,
                to_status=target.value,
                actor=actor.name,
                at=moment,
                note=move.note,
                worker_id=worker_id,
                holder=holder,
                due_at=due_at,
                distance_m=distance_m,
                lon=move.lon if has_position else None,
                lat=move.lat if has_position else None,
                flagged=flagged,
            )
        ],
    )
    if current["clue_id"] is not None:
        conn.execute(text("UPDATE clue SET status = :s WHERE id = :id"), {"s": target.value, "id": current["clue_id"]})
    return task_by_id(conn, task_id, CITY)


def _locked_task(conn: Connection, task_id: int, scope: Scope) -> dict[str, Any]:
    """The task's row, locked for the move, if the caller's scope sees it (NotFound, OutOfScope)."""
    where, params = scope.task_sql("t", held=True)
    sql = f"SELECT t.*, ({where}) AS visible FROM task t WHERE t.id = :id FOR UPDATE OF t"  # noqa: S608 - fixed SQL fragments; values are bound
    return visible_row(conn, sql, {"id": task_id, **params}, what=f"task {task_id}")


def _check_worker_in_grid(conn: Connection, worker_id: int, grid_code: str) -> None:
    row = conn.execute(text("SELECT grid_code, active FROM worker WHERE id = :w"), {"w": worker_id}).first()
    if row is None or not row.active:
        raise InvalidInput(f"no active worker {worker_id}", field="worker_id")
    if row.grid_code != grid_code:
        raise InvalidInput(f"worker {worker_id} works in grid {row.grid_code}, not {grid_code}", field="worker_id")


def _check_lonlat(lon: float, lat: float) -> None:
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"lon/lat ({lon}, {lat}) is not a WGS84 position", field="lon")


def _distance_to_subject(conn: Connection, task_row: dict[str, Any], lon: float, lat: float) -> float | None:
    """Metres from the inspection's position to the entity (or the clue) inspected; None when it has no point."""
    row = conn.execute(
        text(
            """
            SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS d
            FROM (SELECT geom FROM entity WHERE uscc = :uscc
                  UNION ALL SELECT geom FROM clue WHERE id = :clue) s
            WHERE geom IS NOT NULL LIMIT 1
            """
        ),
        {"lon": lon, "lat": lat, "uscc": task_row["entity_uscc"], "clue": task_row["clue_id"]},
    ).first()
    return None if row is None else round(float(row.d), 1)


def _departments_for(conn: Connection, task_row: dict[str, Any]) -> list[str]:
    """Who licenses, supervises: the entity scope's licensing departments; address problems to market supervision."""
    router = default_router()
    if task_row["department_codes"]:
        return [c for c in split_departments(task_row["department_codes"]) if c != router.command_centre()] or [
            router.address_problem_department()
        ]
    if task_row["duty"] in (Duty.ADDRESS_CHECK.value, Duty.OPENING_CHECK.value) or not task_row["entity_uscc"]:
        return [router.address_problem_department()]
    scope = conn.execute(
        text("SELECT business_scope FROM entity WHERE uscc = :u"), {"u": task_row["entity_uscc"]}
    ).scalar_one_or_none()
    return router.departments_for_scope(scope or "") or [router.address_problem_department()]
