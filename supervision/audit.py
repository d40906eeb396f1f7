"""supervision.audit: the audit trail of tasks — who acts (Actor), who holds (Holder), one row per change (TaskEvent).

`history` reads the trail back as `HistoryEntry` rows (the API's shape).

Every change of a task writes one `task_event` row (who, when, from, to, note, and what held afterwards: the
holder and the deadline in force), through `write_events` and nowhere else. Rows are never updated or deleted;
the history of a task, an entity or a worker is read back from them, and overdue time is attributed from them
to whoever held the task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, cast, get_args

from sqlalchemy import Connection, text

from gis import clock
from supervision.errors import InvalidInput
from supervision.scope import CITY, Scope
from supervision.task_states import split_departments


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as the audit trail names them, with their role and scope."""

    name: str
    role: str
    scope: Scope = CITY

    @property
    def worker_id(self) -> int | None:
        """The worker who acts: their worker scope's; None for anyone else."""
        return self.scope.worker_id


SYSTEM = Actor("system", "system")

HolderKind = Literal["worker", "grid", "community", "department"]
_HOLDER_KINDS: frozenset[str] = frozenset(get_args(HolderKind))


@dataclass(frozen=True)
class Holder:
    """Who must act on a task now, stored as `worker:<id>`, `grid:<code>` (waiting in the grid's queue),
    `community:<code>` or `department:<codes>` (comma-separated: one joint case may involve several).
    """

    kind: HolderKind
    code: str

    @classmethod
    def worker(cls, worker_id: int) -> Holder:
        """A grid worker."""
        return cls("worker", str(worker_id))

    @classmethod
    def grid(cls, grid_code: str) -> Holder:
        """The grid's queue: no worker of the grid had room."""
        return cls("grid", grid_code)

    @classmethod
    def community(cls, community_code: str) -> Holder:
        """The community a case was raised to."""
        return cls("community", community_code)

    @classmethod
    def departments(cls, department_codes: Sequence[str]) -> Holder:
        """The departments a case was handed to."""
        return cls("department", ",".join(department_codes))

    @classmethod
    def worker_or_queue(cls, worker_id: int | None, grid_code: str) -> Holder:
        """The worker, or the grid's queue when there is none."""
        return cls.worker(worker_id) if worker_id else cls.grid(grid_code)

    @classmethod
    def parse(cls, value: str) -> Holder:
        """The holder a stored string names; ValueError for a string that is not one."""
        kind, sep, code = value.partition(":")
        if not sep or kind not in _HOLDER_KINDS:
            raise ValueError(f"not a task holder: {value!r}")
        return cls(cast(HolderKind, kind), code)

    @classmethod
    def read(cls, value: str | None) -> Holder | None:
        """A stored holder column: None (a closed task) or a holder."""
        return None if value is None else cls.parse(value)

    @staticmethod
    def prefix(kind: HolderKind) -> str:
        """The stored prefix of a kind of holder (`grid:`), for SQL that builds or matches holders."""
        return f"{kind}:"

    @property
    def worker_id(self) -> int | None:
        """The worker of a worker holder; None for any other."""
        return int(self.code) if self.kind == "worker" else None

    @property
    def department_codes(self) -> list[str]:
        """The departments of a department holder; empty for any other."""
        return split_departments(self.code) if self.kind == "department" else []

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


def stored(holder: Holder | None) -> str | None:
    """The holder as the `holder` columns store it."""
    return None if holder is None else str(holder)


@dataclass(frozen=True)
class TaskEvent:
    """One row of a task's audit trail: the move, who made it and when, and what held afterwards."""

    task_id: int
    from_status: str | None
    to_status: str
    actor: str
    at: datetime
    note: str | None
    worker_id: int | None
    holder: Holder | None
    due_at: datetime | None
    distance_m: float | None = None
    lon: float | None = None
    lat: float | None = None
    flagged: bool = False


def write_events(conn: Connection, events: Iterable[TaskEvent]) -> None:
    """Append rows to the audit trail (the one place that writes `task_event`)."""
    rows = [
        {
            "task_id": e.task_id,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "at": e.at,
            "note": e.note,
            "worker_id": e.worker_id,
            "holder": stored(e.holder),
            "due_at": e.due_at,
            "distance_m": e.distance_m,
            "lon": e.lon,
            "lat": e.lat,
            "flagged": e.flagged,
        }
        for e in events
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


@dataclass(frozen=True)
class HistoryEntry:
    """审计记录的一行：谁、何时、从何状态、到何状态、说明，及之后的责任方与期限。"""

    id: int
    task_id: int
    duty: str
    entity_uscc: str | None
    from_status: str | None = field(metadata={"description": "流转前状态（新建时为 null）"})
    to_status: str
    actor: str = field(metadata={"description": "操作者"})
    at: datetime
    note: str | None
    worker_id: int | None
    holder: str | None = field(metadata={"description": "之后的责任方"})
    due_at: datetime | None = field(metadata={"description": "之后的期限"})
    distance_m: float | None = field(metadata={"description": "核查位置到主体的距离（米）"})
    flagged: bool
    lon: float | None
    lat: float | None


class HeldSpan(Protocol):
    """What overdue attribution reads of an audit row: when it began, the deadline then, and who held the task."""

    @property
    def at(self) -> datetime: ...

    @property
    def due_at(self) -> datetime | None: ...

    @property
    def holder(self) -> str | None: ...


HISTORY_COLUMNS = (
    "te.id, te.task_id, t.duty, t.entity_uscc, te.from_status, te.to_status, te.actor, te.at, te.note, "
    "te.worker_id, te.holder, te.due_at, te.distance_m, te.flagged, ST_X(te.geom) AS lon, ST_Y(te.geom) AS lat"
)


def history(
    conn: Connection,
    scope: Scope,
    *,
    task_id: int | None = None,
    uscc: str | None = None,
    worker_id: int | None = None,
    limit: int = 1000,
) -> list[HistoryEntry]:
    """The audit trail of a task, an entity or a worker, oldest first (only tasks in the caller's scope)."""
    where, params = scope.task_sql("t", held=True)
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
    return [HistoryEntry(**r) for r in rows]


def overdue_attribution(events: Sequence[HeldSpan], *, now: datetime | None = None) -> dict[str, float]:
    """Overdue seconds by holder, from a task's events (oldest first): each span counts against who held it."""
    moment = now or clock.now()
    out: dict[str, float] = {}
    for i, event in enumerate(events):
        start = event.at
        end = events[i + 1].at if i + 1 < len(events) else moment
        due = event.due_at
        holder = event.holder
        if due is None or holder is None or end <= due:
            continue
        seconds = (end - max(start, due)).total_seconds()
        if seconds > 0:
            out[holder] = out.get(holder, 0.0) + seconds
    return out
