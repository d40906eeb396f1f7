"""supervision.assignment: giving tasks to the worker of their grid with the least open workload, within capacity.

A task whose grid has nobody with room waits in the grid's queue (holder `grid:<code>`); `assign_waiting`, run
periodically, hands queued tasks to a worker as soon as one has room.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gis import clock
from supervision.audit import SYSTEM, Actor, Holder, TaskEvent, stored, write_events
from supervision.task_states import OPEN_STATUSES, WORKER_HELD
from supervision.workflow import Status


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
    moment = at or clock.now()
    result: dict[int, int | None] = {}
    updates: list[dict[str, Any]] = []
    events: list[TaskEvent] = []
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
        holder: Holder | None
        if t.status in WORKER_HELD:
            holder = Holder.worker_or_queue(worker_id, t.grid_code)
        else:
            holder = Holder.read(t.holder)
        updates.append({"id": t.id, "worker_id": worker_id, "status": status, "holder": stored(holder), "at": moment})
        events.append(
            TaskEvent(
                task_id=t.id,
                from_status=t.status,
                to_status=status,
                actor=actor.name,
                at=moment,
                note=note
                or (
                    f"assigned to worker {worker_id}"
                    if worker_id
                    else "no worker of the grid has room: waiting in the grid's queue"
                ),
                worker_id=worker_id,
                holder=holder,
                due_at=t.due_at,
            )
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
        write_events(conn, events)
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
                "SELECT id FROM task WHERE worker_id IS NULL AND status = ANY(:held) AND holder LIKE :queued "
                "ORDER BY pushed_at, id"
            ),
            {"held": sorted(WORKER_HELD), "queued": Holder.prefix("grid") + "%"},
        )
    ]
    if not waiting:
        return {}
    found = assign_to_workers(conn, waiting, actor=actor, at=at, note="a worker of the grid has room now")
    return {task_id: worker for task_id, worker in found.items() if worker is not None}
