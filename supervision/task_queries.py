"""supervision.task_queries: reading tasks as the API shows them — one by id, or a filtered page in scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis import clock
from supervision.errors import NotFound, OutOfScope
from supervision.paging import PAGE_LIMIT_MAX, Page, decode_cursor, encode_cursor
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES
from supervision.workflow import Status, allowed_moves


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


_TASK_COLUMNS = """
    t.id, t.kind, t.duty, t.entity_uscc, e.name AS entity_name, t.clue_id, t.event_id, t.town_code,
    t.community_code, t.grid_code, t.worker_id, t.department_codes, t.status, t.pushed_at, t.due_at, t.warn_at,
    t.calendar_provisional, t.closed_at, t.version, t.flagged, t.holder, t.campaign, t.updated_at
"""


def task_by_id(conn: Connection, task_id: int, scope: Scope) -> dict[str, Any]:
    """One task as the API shows it, with the moves allowed now; NotFound or OutOfScope."""
    where, params = scope.task_sql("t")
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
    out["overdue"] = bool(out["due_at"] is not None and out["due_at"] < clock.now())
    return out


def list_tasks(
    conn: Connection, scope: Scope, filters: TaskFilters, *, limit: int = 50, cursor: str | None = None
) -> Page:
    """Tasks in scope, newest first, as {items, total, next} with a keyset cursor."""
    where, params = scope.task_sql("t")
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
        params["now"] = clock.now()
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
