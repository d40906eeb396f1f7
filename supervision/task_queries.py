"""supervision.task_queries: reading tasks as the API shows them (TaskView) — one by id, or a filtered page in scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gis import clock
from supervision.paging import Page, keyset_page
from supervision.scope import Scope, visible_row
from supervision.task_states import OPEN_STATUSES, split_departments
from supervision.workflow import Status, allowed_moves


@dataclass
class TaskFilters:
    """Optional filters of the task listing."""

    grid: str | None = None
    town: str | None = None
    community: str | None = None
    status: str | None = None
    worker: int | None = None
    uscc: str | None = None
    duty: str | None = None
    kind: str | None = None
    department: str | None = None
    overdue: bool | None = None


@dataclass(frozen=True)
class TaskView:
    """一个任务：对象、所在网格、责任方、状态与期限，及当前允许的流转（allowed）。"""

    id: int
    kind: str = field(metadata={"description": "task（登记任务）或 clue（线索任务）"})
    duty: str = field(metadata={"description": "“4+2”职责之一"})
    entity_uscc: str | None = field(metadata={"description": "市场主体统一社会信用代码"})
    entity_name: str | None
    clue_id: int | None
    event_id: str | None = field(metadata={"description": "来源登记事件编号"})
    town_code: str
    community_code: str
    grid_code: str
    worker_id: int | None
    department_codes: list[str] = field(metadata={"description": "经办部门（可多个）"})
    status: Status
    pushed_at: datetime
    due_at: datetime | None = field(metadata={"description": "当前期限"})
    warn_at: datetime | None = field(metadata={"description": "预警时间"})
    calendar_provisional: bool = field(metadata={"description": "期限按未公布的节假日暂算"})
    closed_at: datetime | None
    version: int = field(metadata={"description": "乐观锁版本，流转时带回"})
    flagged: bool = field(metadata={"description": "核查位置超出主体 200 米，待查"})
    holder: str | None = field(
        metadata={"description": "当前责任方：worker:<编号>、grid:<网格>、community:<社区>、department:<部门>"}
    )
    campaign: str | None
    updated_at: datetime
    allowed: list[Status] = field(metadata={"description": "当前允许的流转"})
    overdue: bool = field(metadata={"description": "已过期限"})
    address: str | None = field(
        metadata={"description": "对象地址：主体的标准地址（未落标准地址时为登记住所）或线索地址"}
    )
    lon: float | None = field(metadata={"description": "对象位置经度（WGS84）：主体或线索的点位"})
    lat: float | None = field(metadata={"description": "对象位置纬度（WGS84）"})
    worker_name: str | None = field(metadata={"description": "当前网格员姓名"})


_TASK_COLUMNS = """
    t.id, t.kind, t.duty, t.entity_uscc, e.name AS entity_name, t.clue_id, t.event_id, t.town_code,
    t.community_code, t.grid_code, t.worker_id, t.department_codes, t.status, t.pushed_at, t.due_at, t.warn_at,
    t.calendar_provisional, t.closed_at, t.version, t.flagged, t.holder, t.campaign, t.updated_at,
    coalesce(a.full_text, e.raw_address, c.address) AS address, ST_X(coalesce(e.geom, c.geom)) AS lon,
    ST_Y(coalesce(e.geom, c.geom)) AS lat, w.name AS worker_name
"""
# The task with what it is about: the entity (and its standard address) or the clue, and its worker.
_TASK_FROM = """
    task t LEFT JOIN entity e ON e.uscc = t.entity_uscc LEFT JOIN address a ON a.id = e.address_id
    LEFT JOIN clue c ON c.id = t.clue_id LEFT JOIN worker w ON w.id = t.worker_id
"""


def task_by_id(conn: Connection, task_id: int, scope: Scope) -> TaskView:
    """One task as the API shows it, with the moves allowed now; NotFound or OutOfScope."""
    where, params = scope.task_sql("t", held=True)
    sql = f"SELECT {_TASK_COLUMNS}, ({where}) AS visible FROM {_TASK_FROM} WHERE t.id = :id"  # noqa: S608 - fixed SQL fragments; values are bound
    row = visible_row(conn, sql, {"id": task_id, **params}, what=f"task {task_id}")
    return _task_out(row)


def _task_out(row: Any) -> TaskView:
    out = dict(row)
    status = Status(out.pop("status"))
    return TaskView(
        **{
            **out,
            "department_codes": split_departments(out["department_codes"]),
            "allowed": list(allowed_moves(status)),
            "overdue": bool(out["due_at"] is not None and out["due_at"] < clock.now()),
        },
        status=status,
    )


def list_tasks(
    conn: Connection, scope: Scope, filters: TaskFilters, *, limit: int = 50, cursor: str | None = None
) -> Page[TaskView]:
    """Tasks in scope, newest first, as {items, total, next} with a keyset cursor."""
    where, params = scope.task_sql("t", held=True)
    clauses = [where]
    for column, value in (
        ("t.grid_code", filters.grid),
        ("t.town_code", filters.town),
        ("t.community_code", filters.community),
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
    return keyset_page(
        conn,
        columns=_TASK_COLUMNS,
        rows_from=_TASK_FROM,
        count_from="task t",
        condition=" AND ".join(clauses),
        params=params,
        order=("t.pushed_at", "t.id"),
        limit=limit,
        cursor=cursor,
        build=_task_out,
    )
