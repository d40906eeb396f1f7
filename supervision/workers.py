"""supervision.workers: a grid worker leaves or moves, and their open tasks go to the other workers of the grid.

Every hand-over is assigned by the usual rule (`supervision.assignment`) and audited. Each change checks both the
worker (the actor's scope covers their grid) and, for a move, the target grid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, text

from supervision.assignment import assign_to_workers
from supervision.audit import Actor
from supervision.errors import InvalidInput, NotFound, OutOfScope
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES


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


WorkerAction = Literal["leave", "move"]


def change_worker(
    conn: Connection,
    worker_id: int,
    action: WorkerAction,
    *,
    actor: Actor,
    grid_code: str | None = None,
    reason: str | None = None,
) -> int:
    """A worker leaves or moves to `grid_code` (required for a move); the number of open tasks handed over."""
    if action == "leave":
        return deactivate_worker(conn, worker_id, actor=actor, reason=reason or "worker left")
    worker_in_scope(conn, worker_id, actor.scope)
    if grid_code is None:
        raise InvalidInput("a move needs grid_code", field="grid_code")
    return move_worker(conn, worker_id, grid_code, actor=actor)


def deactivate_worker(conn: Connection, worker_id: int, *, actor: Actor, reason: str = "worker left") -> int:
    """A worker leaves: mark them inactive and reassign their open tasks; the number of tasks moved."""
    worker_in_scope(conn, worker_id, actor.scope)
    found = conn.execute(text("UPDATE worker SET active = false WHERE id = :w RETURNING id"), {"w": worker_id}).first()
    if found is None:
        raise NotFound(f"no worker {worker_id}")
    return len(reassign_worker_tasks(conn, worker_id, actor=actor, reason=reason))


def worker_in_scope(conn: Connection, worker_id: int, scope: Scope) -> None:
    """NotFound for an unknown worker, OutOfScope for one whose grid the caller may not manage."""
    row = conn.execute(text("SELECT grid_code, town_code FROM worker WHERE id = :w"), {"w": worker_id}).first()
    if row is None:
        raise NotFound(f"no worker {worker_id}")
    if not scope.covers(conn, "grid", row.grid_code):
        raise OutOfScope(f"worker {worker_id} works outside your area")


def move_worker(conn: Connection, worker_id: int, grid_code: str, *, actor: Actor) -> int:
    """A worker moves to another grid: their open tasks stay in the old grid, with its other workers (audited).

    The worker and the target must both lie in the actor's scope: a dispatcher moves workers only within their
    community.
    """
    worker_in_scope(conn, worker_id, actor.scope)
    if not actor.scope.covers(conn, "grid", grid_code):
        raise OutOfScope(f"grid {grid_code} is outside your area")
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
