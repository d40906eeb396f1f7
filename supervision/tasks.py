"""supervision.tasks: creating, assigning, moving and reassigning tasks, with deadlines and the audit trail.

Every change of a task writes one `task_event` row (who, when, from, to, note, and what held afterwards: the
holder and the deadline in force). Rows are never updated or deleted; the history of a task, an entity or a
worker is read back from them, and overdue time is attributed from them to whoever held the task.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, text

from gis import clock
from supervision.calendar import WorkCalendar, default_calendar
from supervision.errors import InvalidInput, InvalidMove, NotFound, NotPermitted, OutOfScope, StaleVersion
from supervision.routing import RoutingError, default_router
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

OPEN_STATUSES = tuple(s.value for s in Status if is_open(s))
# States in which the grid's worker must act. In the others the community or a department holds the task: a
# change of worker changes only the worker of record, never who must act now.
WORKER_HELD = frozenset(
    s.value
    for s in (
        Status.PUSHED,
        Status.ASSIGNED,
        Status.INSPECTED_OK,
        Status.INSPECTED_PROBLEM,
        Status.NOTICE_ISSUED,
        Status.REINSPECTED,
    )
)
PAGE_LIMIT_MAX = 500
# A client clock this far ahead of ours is an error, not a slightly fast phone.
FUTURE_TOLERANCE = timedelta(minutes=5)

ScopeKind = Literal["city", "town", "community", "worker", "department", "none"]


@dataclass(frozen=True)
class TaskScope:
    """Which tasks a caller may see and change: the whole city, a town, a community, a worker's grids, a department."""

    kind: ScopeKind
    code: str | None = None

    def sql(self, alias: str = "t") -> tuple[str, dict[str, Any]]:
        """A WHERE fragment over the task alias, with its bound parameters."""
        if self.kind == "city":
            return "TRUE", {}
        if self.kind == "town":
            return f"{alias}.town_code = :scope_code", {"scope_code": self.code}
        if self.kind == "community":
            return f"{alias}.community_code = :scope_code", {"scope_code": self.code}
        if self.kind == "worker":
            worker_id = int(self.code) if self.code and self.code.isdigit() else -1
            return (
                f"{alias}.grid_code IN (SELECT w.grid_code FROM worker w WHERE w.id = :scope_worker AND w.active)",  # noqa: S608 - fixed SQL fragments; values are bound
                {"scope_worker": worker_id},
            )
        if self.kind == "department":
            return f":scope_code = ANY(string_to_array({alias}.department_codes, ','))", {"scope_code": self.code}
        return "FALSE", {}

    def covers(self, conn: Connection, level: str, code: str | None) -> bool:
        """Whether the caller may act on, or read the figures of, a town, community, grid or department.

        `code` None means "every unit of the level within my area": only the city and a town may ask that.
        """
        if self.kind == "city":
            return True
        if level == "department":
            return self.kind == "department" and code == self.code
        if code is None:
            return self.kind == "town"
        if self.kind == "town":
            return self.code is not None and code[:9] == self.code[:9]
        if self.kind == "community":
            return level != "town" and self.code is not None and code.startswith(self.code)
        if self.kind == "worker":
            return level == "grid" and code in self.worker_grids(conn)
        return False

    def worker_grids(self, conn: Connection) -> frozenset[str]:
        """The grids of a worker scope (their active worker row); empty for any other scope."""
        if self.kind != "worker" or not self.code or not self.code.isdigit():
            return frozenset()
        rows = conn.execute(text("SELECT grid_code FROM worker WHERE id = :w AND active"), {"w": int(self.code)})
        return frozenset(r[0] for r in rows)


CITY = TaskScope("city")


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as the audit trail names them, with their role and scope."""

    name: str
    role: str
    scope: TaskScope = CITY
    worker_id: int | None = None


SYSTEM = Actor("system", "system")

# Moves a role may make (None: any move the state machine allows). Grid workers do the field work and may
# raise a case to the community; departments answer; the community, the command centre and admins decide.
_ROLE_TARGETS: dict[str, frozenset[Status] | None] = {
    "system": None,
    "admin": None,
    "command_centre": None,
    "dispatcher": None,
    "grid_worker": frozenset(
        {
            Status.ASSIGNED,
            Status.INSPECTED_OK,
            Status.INSPECTED_PROBLEM,
            Status.NOTICE_ISSUED,
            Status.REINSPECTED,
            Status.ESCALATED_COMMUNITY,
            Status.CLOSED,
        }
    ),
    "department_officer": frozenset({Status.DEPARTMENT_FEEDBACK, Status.CLOSED}),
}


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


@dataclass
class Page:
    """One page of a listing, newest first, and the cursor of the next page."""

    items: list[dict[str, Any]]
    total: int
    next: str | None


@dataclass
class TaskFilters:
    """Optional filters of the task listing."""

    grid: str | None = None
    status: str | None = None
    worker: int | None = None
    uscc: str | None = None
    duty: str | None = None
    kind: str | None = None
    department: str | None = None
    overdue: bool | None = None


# ------------------------------------------------------------------------------------------------ creation


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
                "holder": f"grid:{item.grid_code}",
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
    _write_events(
        conn,
        [
            {
                "task_id": r.id,
                "from_status": None,
                "to_status": Status.PUSHED.value,
                "actor": actor.name,
                "at": r.pushed_at,
                "note": notes.get(_task_key(r.event_id, r.duty, r.entity_uscc, r.clue_id, r.campaign)),
                "worker_id": None,
                "holder": r.holder,
                "due_at": r.due_at,
            }
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


# ------------------------------------------------------------------------------------------------ assignment


def assign_to_workers(
    conn: Connection,
    task_ids: Sequence[int],
    *,
    actor: Actor = SYSTEM,
    at: datetime | None = None,
    exclude_worker: int | None = None,
    note: str | None = None,
) -> dict[int, int | None]:
    """Give each task to the worker of its grid with the least open workload, within capacity; task → worker.

    Tasks still `pushed` become `assigned`; tasks further along keep their state and change hands. A task whose
    grid has nobody with room waits in the grid's queue (holder grid:<code>).
    """
    if not task_ids:
        return {}
    tasks = conn.execute(
        text(
            "SELECT id, grid_code, status, worker_id, version, due_at, holder FROM task "
            "WHERE id = ANY(:ids) AND status = ANY(:open) ORDER BY id FOR UPDATE"
        ),
        {"ids": list(task_ids), "open": list(OPEN_STATUSES)},
    ).all()
    grids = sorted({t.grid_code for t in tasks})
    # Locking the grids' worker rows serializes assignment per grid: two intakes cannot both fill one free slot.
    workers = conn.execute(
        text(
            """
            SELECT w.id, w.grid_code, w.capacity,
                   (SELECT count(*) FROM task t WHERE t.worker_id = w.id AND t.status = ANY(:open)) AS open_tasks
            FROM worker w JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'
            WHERE w.grid_code = ANY(:grids) AND w.active
            ORDER BY w.id
            FOR UPDATE OF w
            """
        ),
        {"grids": grids, "open": list(OPEN_STATUSES)},
    ).all()
    load: dict[str, list[list[int]]] = {}
    for w in workers:
        if w.id != exclude_worker:
            load.setdefault(w.grid_code, []).append([int(w.open_tasks), int(w.id), int(w.capacity)])
    moment = at or _now()
    result: dict[int, int | None] = {}
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for t in tasks:
        candidates = [c for c in load.get(t.grid_code, []) if c[0] < c[2] and c[1] != t.worker_id]
        chosen = min(candidates) if candidates else None
        worker_id = chosen[1] if chosen else None
        if chosen:
            chosen[0] += 1
        if worker_id is None and t.worker_id is None:
            result[t.id] = None
            continue  # already waiting in the grid's queue
        if t.worker_id is not None:
            for c in load.get(t.grid_code, []):
                if c[1] == t.worker_id:
                    c[0] -= 1
        status = Status.ASSIGNED.value if t.status == Status.PUSHED.value and worker_id else t.status
        if t.status in WORKER_HELD:
            holder = f"worker:{worker_id}" if worker_id else f"grid:{t.grid_code}"
        else:
            holder = t.holder
        updates.append({"id": t.id, "worker_id": worker_id, "status": status, "holder": holder, "at": moment})
        events.append(
            {
                "task_id": t.id,
                "from_status": t.status,
                "to_status": status,
                "actor": actor.name,
                "at": moment,
                "note": note
                or (
                    f"assigned to worker {worker_id}"
                    if worker_id
                    else "no worker of the grid has room: waiting in the grid's queue"
                ),
                "worker_id": worker_id,
                "holder": holder,
                "due_at": t.due_at,
            }
        )
        result[t.id] = worker_id
    if updates:
        conn.execute(
            text(
                "UPDATE task SET worker_id = :worker_id, status = :status, holder = :holder, "
                "version = version + 1, updated_at = :at WHERE id = :id"
            ),
            updates,
        )
        _write_events(conn, events)
    return result


def assign_waiting(conn: Connection, *, actor: Actor = SYSTEM, at: datetime | None = None) -> dict[int, int]:
    """Tasks waiting in their grid's queue (no worker had room) go to a worker who has room now; task → worker.

    Run periodically: capacity frees up as tasks close, and a worker can join or have their capacity raised.
    Tasks whose grid still has nobody with room keep waiting, and nothing is written for them.
    """
    waiting = [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT id FROM task WHERE worker_id IS NULL AND status = ANY(:held) AND holder LIKE 'grid:%' "
                "ORDER BY pushed_at, id"
            ),
            {"held": sorted(WORKER_HELD)},
        )
    ]
    if not waiting:
        return {}
    found = assign_to_workers(conn, waiting, actor=actor, at=at, note="a worker of the grid has room now")
    return {task_id: worker for task_id, worker in found.items() if worker is not None}


def reassign_worker_tasks(
    conn: Connection, worker_id: int, *, actor: Actor, reason: str, at: datetime | None = None
) -> dict[int, int | None]:
    """Hand a worker's open tasks to the other workers of each task's grid by the same rule (audited)."""
    ids = [
        int(r.id)
        for r in conn.execute(
            text("SELECT id FROM task WHERE worker_id = :w AND status = ANY(:open) ORDER BY id"),
            {"w": worker_id, "open": list(OPEN_STATUSES)},
        )
    ]
    return assign_to_workers(
        conn, ids, actor=actor, at=at, exclude_worker=worker_id, note=f"reassigned from worker {worker_id}: {reason}"
    )


def deactivate_worker(conn: Connection, worker_id: int, *, actor: Actor, reason: str = "worker left") -> int:
    """A worker leaves: mark them inactive and reassign their open tasks; the number of tasks moved."""
    found = conn.execute(text("UPDATE worker SET active = false WHERE id = :w RETURNING id"), {"w": worker_id}).first()
    if found is None:
        raise NotFound(f"no worker {worker_id}")
    return len(reassign_worker_tasks(conn, worker_id, actor=actor, reason=reason))


def worker_in_scope(conn: Connection, worker_id: int, scope: TaskScope) -> None:
    """NotFound for an unknown worker, OutOfScope for one whose grid the caller may not manage."""
    row = conn.execute(text("SELECT grid_code, town_code FROM worker WHERE id = :w"), {"w": worker_id}).first()
    if row is None:
        raise NotFound(f"no worker {worker_id}")
    if not scope.covers(conn, "grid", row.grid_code):
        raise OutOfScope(f"worker {worker_id} works outside your area")


def move_worker(conn: Connection, worker_id: int, grid_code: str, *, actor: Actor) -> int:
    """A worker moves to another grid: their open tasks stay in the old grid, with its other workers (audited)."""
    found = conn.execute(
        text(
            "UPDATE worker w SET grid_code = g.code, town_code = g.town_code FROM grid g "
            "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "WHERE w.id = :w AND g.code = :grid AND w.version_id = g.version_id RETURNING w.id"
        ),
        {"w": worker_id, "grid": grid_code},
    ).first()
    if found is None:
        raise NotFound(f"no worker {worker_id} or no active grid {grid_code}")
    return len(reassign_worker_tasks(conn, worker_id, actor=actor, reason=f"worker moved to grid {grid_code}"))


def move_entity_tasks(
    conn: Connection, uscc: str, grid_code: str, *, actor: Actor, note: str, at: datetime | None = None
) -> list[int]:
    """An address change: the entity's open tasks move to the new grid and its workers (audited)."""
    moment = at or _now()
    moved = conn.execute(
        text(
            """
            UPDATE task t SET grid_code = g.code, community_code = g.community_code, town_code = g.town_code,
                   worker_id = NULL, version = t.version + 1, updated_at = :at,
                   holder = CASE WHEN t.status = ANY(:worker_held) THEN 'grid:' || g.code
                                 WHEN t.status = 'escalated_community' THEN 'community:' || g.community_code
                                 ELSE t.holder END
            FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            WHERE g.code = :grid AND t.entity_uscc = :uscc AND t.status = ANY(:open) AND t.grid_code <> g.code
            RETURNING t.id, t.status, t.due_at, t.holder
            """
        ),
        {
            "grid": grid_code,
            "uscc": uscc,
            "open": list(OPEN_STATUSES),
            "worker_held": sorted(WORKER_HELD),
            "at": moment,
        },
    ).all()
    _write_events(
        conn,
        [
            {
                "task_id": r.id,
                "from_status": r.status,
                "to_status": r.status,
                "actor": actor.name,
                "at": moment,
                "note": f"moved to grid {grid_code}: {note}",
                "worker_id": None,
                "holder": r.holder,
                "due_at": r.due_at,
            }
            for r in moved
        ],
    )
    ids = [int(r.id) for r in moved]
    assign_to_workers(conn, ids, actor=actor, at=moment, note=f"assigned in the new grid {grid_code}")
    return ids


def cancel_entity_tasks(
    conn: Connection, uscc: str, *, actor: Actor, note: str, at: datetime | None = None
) -> list[int]:
    """A deregistration: the entity's open tasks are cancelled (audited)."""
    moment = at or _now()
    rows = conn.execute(
        text(
            "UPDATE task t SET status = 'cancelled', closed_at = :at, due_at = NULL, warn_at = NULL, holder = NULL, "
            "version = t.version + 1, updated_at = :at "
            "FROM task old WHERE old.id = t.id AND t.entity_uscc = :uscc AND t.status = ANY(:open) "
            "RETURNING t.id, old.status AS old_status, t.worker_id"
        ),
        {"uscc": uscc, "open": list(OPEN_STATUSES), "at": moment},
    ).all()
    _write_events(
        conn,
        [
            {
                "task_id": r.id,
                "from_status": r.old_status,
                "to_status": Status.CANCELLED.value,
                "actor": actor.name,
                "at": moment,
                "note": note,
                "worker_id": r.worker_id,
                "holder": None,
                "due_at": None,
            }
            for r in rows
        ],
    )
    return [int(r.id) for r in rows]


# ------------------------------------------------------------------------------------------------ transitions


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


def transition(
    conn: Connection, task_id: int, move: Move, *, actor: Actor, calendar: WorkCalendar | None = None
) -> dict[str, Any]:
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
    permitted = _ROLE_TARGETS.get(actor.role, frozenset())
    if permitted is not None and target not in permitted:
        raise NotPermitted(f"a {actor.role} cannot move a task to {target.value}")
    moment = move.at or _now()
    if moment > _now() + FUTURE_TOLERANCE:
        raise InvalidInput(f"time {moment.isoformat()} is in the future", field="at")
    if moment < current["updated_at"] - FUTURE_TOLERANCE:
        raise InvalidInput("time is before the task's last change", field="at")

    worker_id = current["worker_id"]
    department_codes = current["department_codes"]
    holder = current["holder"]
    distance_m: float | None = None
    flagged = False
    if target is Status.ASSIGNED:
        worker_id = move.worker_id or actor.worker_id
        if worker_id is None:
            assigned = assign_to_workers(conn, [task_id], actor=actor, at=moment, note=move.note)
            if assigned.get(task_id) is None:
                raise InvalidMove("no worker of the grid has room for this task", status.value, [])
            return task_by_id(conn, task_id, CITY)
        _check_worker_in_grid(conn, worker_id, current["grid_code"])
        holder = f"worker:{worker_id}"
    elif target in INSPECTION_TARGETS:
        assert move.lon is not None and move.lat is not None
        _check_lonlat(move.lon, move.lat)
        distance_m = _distance_to_subject(conn, current, move.lon, move.lat)
        flagged = distance_m is not None and distance_m > PRESENCE_LIMIT_M
        if actor.worker_id is not None:
            worker_id = actor.worker_id
    elif target is Status.ESCALATED_COMMUNITY:
        holder = f"community:{current['community_code']}"
    elif target is Status.ESCALATED_DEPARTMENT:
        codes = list(move.department_codes) or _departments_for(conn, current)
        router = default_router()
        for code in codes:
            try:
                router.department(code)
            except RoutingError as exc:
                raise InvalidInput(str(exc), field="department_codes") from None
        department_codes = ",".join(dict.fromkeys([*(department_codes or "").split(","), *codes]).keys()).strip(",")
        holder = "department:" + ",".join(codes)
    if target.value in WORKER_HELD:
        holder = f"worker:{worker_id}" if worker_id else f"grid:{current['grid_code']}"

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
            "holder": holder,
            "departments": department_codes,
            "due_at": due_at,
            "warn_at": warn_at,
            "provisional": provisional,
            "flagged": flagged,
            "terminal": not is_open(target),
            "at": moment,
        },
    )
    _write_events(
        conn,
        [
            {
                "task_id": task_id,
                "from_status": status.value,
                "to_status": target.value,
                "actor": actor.name,
                "at": moment,
                "note": move.note,
                "worker_id": worker_id,
                "holder": holder,
                "due_at": due_at,
                "distance_m": distance_m,
                "lon": move.lon if has_position else None,
                "lat": move.lat if has_position else None,
                "flagged": flagged,
            }
        ],
    )
    if current["clue_id"] is not None:
        conn.execute(text("UPDATE clue SET status = :s WHERE id = :id"), {"s": target.value, "id": current["clue_id"]})
    return task_by_id(conn, task_id, CITY)


def _locked_task(conn: Connection, task_id: int, scope: TaskScope) -> dict[str, Any]:
    row = conn.execute(text("SELECT * FROM task WHERE id = :id FOR UPDATE"), {"id": task_id}).mappings().first()
    if row is None:
        raise NotFound(f"no task {task_id}")
    where, params = scope.sql("t")
    visible = conn.execute(text(f"SELECT 1 FROM task t WHERE t.id = :id AND {where}"), {"id": task_id, **params})  # noqa: S608 - fixed SQL fragments; values are bound
    if visible.first() is None:
        raise OutOfScope(f"task {task_id} is outside your area")
    return dict(row)


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
        return [c for c in task_row["department_codes"].split(",") if c and c != router.command_centre()] or [
            router.address_problem_department()
        ]
    if task_row["duty"] in (Duty.ADDRESS_CHECK.value, Duty.OPENING_CHECK.value) or not task_row["entity_uscc"]:
        return [router.address_problem_department()]
    scope = conn.execute(
        text("SELECT business_scope FROM entity WHERE uscc = :u"), {"u": task_row["entity_uscc"]}
    ).scalar_one_or_none()
    return router.departments_for_scope(scope or "") or [router.address_problem_department()]


# ------------------------------------------------------------------------------------------------ reading

_TASK_COLUMNS = """
    t.id, t.kind, t.duty, t.entity_uscc, e.name AS entity_name, t.clue_id, t.event_id, t.town_code,
    t.community_code, t.grid_code, t.worker_id, t.department_codes, t.status, t.pushed_at, t.due_at, t.warn_at,
    t.calendar_provisional, t.closed_at, t.version, t.flagged, t.holder, t.campaign, t.updated_at
"""


def task_by_id(conn: Connection, task_id: int, scope: TaskScope) -> dict[str, Any]:
    """One task as the API shows it, with the moves allowed now; NotFound or OutOfScope."""
    where, params = scope.sql("t")
    row = (
        conn.execute(
            text(
                f"SELECT {_TASK_COLUMNS}, ({where}) AS visible FROM task t "  # noqa: S608 - fixed SQL fragments; values are bound
                "LEFT JOIN entity e ON e.uscc = t.entity_uscc WHERE t.id = :id"
            ),
            {"id": task_id, **params},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no task {task_id}")
    if not row["visible"]:
        raise OutOfScope(f"task {task_id} is outside your area")
    return _task_out(row)


def _task_out(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if k != "visible"}
    out["department_codes"] = [c for c in (out["department_codes"] or "").split(",") if c]
    out["allowed"] = [s.value for s in allowed_moves(Status(out["status"]))]
    out["overdue"] = bool(out["due_at"] is not None and out["due_at"] < _now())
    return out


def list_tasks(
    conn: Connection, scope: TaskScope, filters: TaskFilters, *, limit: int = 50, cursor: str | None = None
) -> Page:
    """Tasks in scope, newest first, as {items, total, next} with a keyset cursor."""
    where, params = scope.sql("t")
    clauses = [where]
    for column, value in (
        ("t.grid_code", filters.grid),
        ("t.status", filters.status),
        ("t.worker_id", filters.worker),
        ("t.entity_uscc", filters.uscc),
        ("t.duty", filters.duty),
        ("t.kind", filters.kind),
    ):
        if value is not None:
            key = column.split(".")[1]
            clauses.append(f"{column} = :f_{key}")
            params[f"f_{key}"] = value
    if filters.department is not None:
        clauses.append(":f_department = ANY(string_to_array(t.department_codes, ','))")
        params["f_department"] = filters.department
    if filters.overdue:
        clauses.append("t.due_at < :now AND t.status = ANY(:open)")
        params["open"] = list(OPEN_STATUSES)
        params["now"] = _now()
    condition = " AND ".join(clauses)
    total = int(conn.execute(text(f"SELECT count(*) FROM task t WHERE {condition}"), params).scalar_one())  # noqa: S608 - fixed SQL fragments; values are bound
    page_clause = ""
    if cursor:
        pushed_at, last_id = decode_cursor(cursor)
        page_clause = " AND (t.pushed_at, t.id) < (:c_at, :c_id)"
        params.update({"c_at": pushed_at, "c_id": last_id})
    limit = max(1, min(limit, PAGE_LIMIT_MAX))
    rows = (
        conn.execute(
            text(
                f"SELECT {_TASK_COLUMNS} FROM task t LEFT JOIN entity e ON e.uscc = t.entity_uscc "  # noqa: S608 - fixed SQL fragments; values are bound
                f"WHERE {condition}{page_clause} ORDER BY t.pushed_at DESC, t.id DESC LIMIT :limit"
            ),
            {**params, "limit": limit + 1},
        )
        .mappings()
        .all()
    )
    items = [_task_out(r) for r in rows[:limit]]
    following = encode_cursor(items[-1]["pushed_at"], items[-1]["id"]) if len(rows) > limit else None
    return Page(items=items, total=total, next=following)


def encode_cursor(at: datetime, row_id: int) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a cursor stands for; InvalidInput for a cursor this service did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), int(row_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the page cursor is not one this service made", field="cursor") from exc


HISTORY_COLUMNS = (
    "te.id, te.task_id, t.duty, t.entity_uscc, te.from_status, te.to_status, te.actor, te.at, te.note, "
    "te.worker_id, te.holder, te.due_at, te.distance_m, te.flagged, ST_X(te.geom) AS lon, ST_Y(te.geom) AS lat"
)


def history(
    conn: Connection,
    scope: TaskScope,
    *,
    task_id: int | None = None,
    uscc: str | None = None,
    worker_id: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The audit trail of a task, an entity or a worker, oldest first (only tasks in the caller's scope)."""
    where, params = scope.sql("t")
    if task_id is not None:
        subject, params["subject"] = "te.task_id = :subject", task_id
    elif uscc is not None:
        subject, params["subject"] = "t.entity_uscc = :subject", uscc
    elif worker_id is not None:
        subject = "te.task_id IN (SELECT task_id FROM task_event WHERE worker_id = :subject)"
        params["subject"] = worker_id
    else:
        raise InvalidInput("history needs a task, an entity or a worker")
    rows = conn.execute(
        text(
            f"SELECT {HISTORY_COLUMNS} FROM task_event te JOIN task t ON t.id = te.task_id "  # noqa: S608 - fixed SQL fragments; values are bound
            f"WHERE {subject} AND {where} ORDER BY te.at, te.id LIMIT :limit"
        ),
        {**params, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


# ------------------------------------------------------------------------------------------------ deadlines


def raise_warnings(conn: Connection, *, now: datetime | None = None) -> dict[str, int]:
    """Record the 80% and overdue warnings that have come due (once per task, step and level)."""
    moment = now or _now()
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


def overdue_attribution(events: Sequence[dict[str, Any]], *, now: datetime | None = None) -> dict[str, float]:
    """Overdue seconds by holder, from a task's events (oldest first): each span counts against who held it."""
    moment = now or _now()
    out: dict[str, float] = {}
    for i, event in enumerate(events):
        start: datetime = event["at"]
        end: datetime = events[i + 1]["at"] if i + 1 < len(events) else moment
        due: datetime | None = event["due_at"]
        holder = event["holder"]
        if due is None or holder is None or end <= due:
            continue
        seconds = (end - max(start, due)).total_seconds()
        if seconds > 0:
            out[holder] = out.get(holder, 0.0) + seconds
    return out


# ------------------------------------------------------------------------------------------------ internals


def _write_events(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
    rows = [
        {
            "distance_m": None,
            "lon": None,
            "lat": None,
            "flagged": False,
            **event,
        }
        for event in events
    ]
    if not rows:
        return
    conn.execute(
        text(
            """
            INSERT INTO task_event (task_id, from_status, to_status, actor, at, note, worker_id, holder, due_at,
                                    distance_m, flagged, geom)
            VALUES (:task_id, :from_status, :to_status, :actor, :at, :note, :worker_id, :holder, :due_at,
                    :distance_m, :flagged,
                    CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) END)
            """
        ),
        rows,
    )


def _now() -> datetime:
    return clock.now()
