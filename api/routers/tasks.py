"""api.routers.tasks: the grid's tasks — list, read, move through the state machine, and read the audit trail.

Every answer is confined to the caller's scope (supervision.scope.Scope, from the credential): a worker their grid, a
dispatcher their community, a department its own cases. A transition names the version it saw: a stale one
answers 409, as does a move the state machine refuses, with the moves allowed from the current state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth.roles import Principal
from api.deps import (
    CurrentScope,
    CurrentViewer,
    Cursor,
    GridCode,
    Limit,
    ReadConn,
    TownCode,
    WriteConn,
    actor_of,
    allowed,
    viewer_of,
)
from grids.codes import COMMUNITY_PATTERN, GRID_PATTERN
from grids.repository import place_names
from supervision.audit import HistoryEntry, history
from supervision.backdating import check_supplied_time
from supervision.export import csv_file, every_page, task_columns
from supervision.paging import Page
from supervision.permissions import Capability
from supervision.privacy import shown
from supervision.task_queries import TaskFilters, TaskView, list_tasks, task_by_id
from supervision.transitions import Move
from supervision.transitions import transition as move_task
from supervision.workers import WorkerAction, change_worker
from supervision.workflow import Duty, Status

router = APIRouter(tags=["任务"])
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="任务编号")]
CommunityCode = Annotated[str | None, Query(pattern=COMMUNITY_PATTERN.pattern, description="村（社区）编码（12 位）")]
TaskReader = Annotated[Principal, Depends(allowed(Capability.TASK_READ))]
TaskMover = Annotated[Principal, Depends(allowed(Capability.TASK_TRANSITION))]
WorkerManager = Annotated[Principal, Depends(allowed(Capability.WORKER_MANAGE))]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "版本已变（乐观锁）或状态机不允许此流转；返回当前状态与允许的流转（allowed）"},
    403: {"description": "不在本账号范围内，或本角色不能做此流转"},
    404: {"description": "没有这个任务"},
}


def task_filters(
    grid: GridCode = None,
    town: TownCode = None,
    community: CommunityCode = None,
    status: Annotated[Status | None, Query()] = None,
    worker: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    uscc: Annotated[str | None, Query(min_length=18, max_length=18)] = None,
    duty: Annotated[Duty | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> TaskFilters:
    """The task list's filters, one definition for the JSON list and its CSV export."""
    return TaskFilters(
        grid=grid,
        town=town,
        community=community,
        status=status.value if status else None,
        worker=worker,
        uscc=uscc,
        duty=duty.value if duty else None,
        department=department,
        overdue=overdue,
    )


Filters = Annotated[TaskFilters, Depends(task_filters)]


@router.get("/tasks", response_model=Page[TaskView], summary="任务列表（本账号范围内）")
def get_tasks(
    _: TaskReader,
    scope: CurrentScope,
    viewer: CurrentViewer,
    conn: ReadConn,
    filters: Filters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskView]:
    """按镇街、村（社区）、网格、状态、网格员、信用代码筛选，新的在前，{items, total, next} 分页。网格员姓名按权限脱敏。"""
    return shown(list_tasks(conn, scope, filters, limit=limit, cursor=cursor), viewer)


@router.get(
    "/tasks.csv",
    summary="导出任务列表（CSV）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8（带 BOM）CSV，中文表头"}},
)
def get_tasks_csv(
    _: TaskReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn, filters: Filters
) -> Response:
    """与任务列表同样的筛选和范围，全部行（至多 10000 行，超过时请缩小筛选），UTF-8 带 BOM，中文表头。"""
    items = shown(
        every_page(lambda limit, cursor: list_tasks(conn, scope, filters, limit=limit, cursor=cursor)), viewer
    )
    towns, communities = place_names(conn)
    doc = csv_file(task_columns(towns, communities), items, "任务清单", "tasks")
    return Response(doc.body, media_type=doc.media_type, headers=doc.headers)


@router.get("/tasks/{task_id}", summary="一个任务", responses=CONFLICT)
def get_task(task_id: TaskId, _: TaskReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn) -> TaskView:
    """任务详情，含当前允许的流转（allowed）。"""
    return shown(task_by_id(conn, task_id, scope), viewer)


class TransitionBody(BaseModel):
    """一次流转：目标状态、所见版本；现场核查须带网格员的经纬度（到场证明）。"""

    to: Status
    version: int = Field(ge=1, description="读取任务时的 version（乐观锁）")
    note: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False, description="经度（WGS84）")
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False, description="纬度（WGS84）")
    at: datetime | None = Field(
        default=None, description="现场时间（默认服务器时间；不早于 7 天前，不晚于现在 5 分钟后）"
    )
    worker_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="派给指定网格员（assigned）")
    department_codes: list[str] = Field(default_factory=list, max_length=10, description="上报的部门（可多个）")


@router.post("/tasks/{task_id}/transitions", summary="任务流转", responses=CONFLICT)
def post_transition(task_id: TaskId, body: TransitionBody, principal: TaskMover, conn: WriteConn) -> TaskView:
    """按状态机流转；核查超出主体 200 米的会标记待查；逾期、预警按工作日计算。"""
    if body.at is not None:  # a field time, within the backdating floor (supervision.backdating)
        check_supplied_time(body.at, "at")
    move = Move(
        to=body.to.value,
        version=body.version,
        note=body.note,
        lon=body.lon,
        lat=body.lat,
        at=body.at,
        worker_id=body.worker_id,
        department_codes=body.department_codes,
    )
    return shown(move_task(conn, task_id, move, actor=actor_of(principal)), viewer_of(principal))


class History(BaseModel):
    """审计记录：谁、何时、从何状态、到何状态、说明，及之后的责任方与期限。"""

    items: list[HistoryEntry]


@router.get("/tasks/{task_id}/history", response_model=History, summary="任务的审计记录")
def get_task_history(
    task_id: TaskId, _: TaskReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn
) -> History:
    """一个任务的全部流转，旧的在前；记录只增不删。操作者（个人账号）按权限脱敏。"""
    task_by_id(conn, task_id, scope)
    return History(items=shown(history(conn, scope, task_id=task_id), viewer, read_in_scope=True))


@router.get("/entities/{uscc}/history", response_model=History, summary="市场主体的审计记录")
def get_entity_history(
    uscc: Annotated[str, Path(min_length=18, max_length=18)],
    _: TaskReader,
    scope: CurrentScope,
    viewer: CurrentViewer,
    conn: ReadConn,
) -> History:
    """该主体所有任务的全部流转（本账号范围内）。"""
    return History(items=shown(history(conn, scope, uscc=uscc), viewer, read_in_scope=True))


@router.get("/workers/{worker_id}/history", response_model=History, summary="网格员经手的审计记录")
def get_worker_history(
    worker_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    _: TaskReader,
    scope: CurrentScope,
    viewer: CurrentViewer,
    conn: ReadConn,
) -> History:
    """该网格员经手过的任务的全部流转（本账号范围内）。"""
    return History(items=shown(history(conn, scope, worker_id=worker_id), viewer, read_in_scope=True))


class WorkerChange(BaseModel):
    """网格员离岗或调往另一网格。"""

    action: WorkerAction
    grid_code: str | None = Field(default=None, pattern=GRID_PATTERN.pattern)
    reason: str | None = Field(default=None, max_length=500)


class WorkerChangeResult(BaseModel):
    """离岗或调动的结果：改派的在办任务数。"""

    worker_id: int
    action: WorkerAction = Field(description="leave（离岗）或 move（调动）")
    tasks_reassigned: int = Field(description="改派的在办任务数")


@router.post("/workers/{worker_id}/changes", summary="网格员离岗或调动（其在办任务在网格内改派）")
def post_worker_change(
    worker_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: WorkerChange,
    principal: WorkerManager,
    conn: WriteConn,
) -> WorkerChangeResult:
    """在办任务按同一规则改派给本网格负担最轻的网格员，并记入审计。"""
    moved = change_worker(
        conn, worker_id, body.action, actor=actor_of(principal), grid_code=body.grid_code, reason=body.reason
    )
    return WorkerChangeResult(worker_id=worker_id, action=body.action, tasks_reassigned=moved)
