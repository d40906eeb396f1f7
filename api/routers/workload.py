"""api.routers.workload: GET /v1/workload — a grid's, community's or town's hours per month, workers and breakdown."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth.roles import Principal
from api.deps import CurrentScope, WriteConn, allowed
from planning.workload_service import UnitWorkload, unit_workload
from supervision.permissions import Capability

router = APIRouter(tags=["规划"])
pages_router = APIRouter(tags=["页面"])

WorkloadReader = Annotated[Principal, Depends(allowed(Capability.WORKLOAD_READ))]


class WorkloadItemOut(BaseModel):
    """工作量的一项：每月件数 × 标准分钟 = 每月小时。"""

    key: str = Field(description="项目键，如 tasks:opening_check、patrol、clues、travel:area")
    label_zh: str = Field(description="项目名称")
    count: float = Field(description="每月件数（通行项为平方公里或公里）")
    minutes_each: float = Field(description="每件标准分钟")
    hours: float = Field(description="每月小时")


class GridWorkloadOut(BaseModel):
    """单元内一个网格的工作量与人员。"""

    code: str = Field(description="网格编码")
    name: str | None = Field(description="网格名称")
    hours: float = Field(description="每月工作量（小时）")
    workers: int = Field(description="网格员人数（草案为规划人数）")
    hours_per_worker: float | None = Field(description="每人每月工作量（小时）；无网格员时为空")
    recommended_workers: int = Field(description="建议网格员人数（2–5）")


class WorkerWorkloadOut(BaseModel):
    """网格员的每月工作量：平分网格的日常工作，加上本人在办任务。"""

    id: int = Field(description="网格员编号")
    name: str = Field(description="姓名")
    hours: float = Field(description="每月工作量（小时）")
    own_open_tasks: float = Field(description="本人在办任务数")
    own_open_hours: float = Field(description="本人在办任务的工时（小时）")


class WorkloadOut(BaseModel):
    """一个网格、村（社区）或镇街在某一网格版本中的每月工作量。"""

    level: Literal["grid", "community", "town"] = Field(description="层级")
    code: str = Field(description="单元编码")
    name: str = Field(description="单元名称")
    version_id: int = Field(description="网格版本")
    version_status: str = Field(description="版本状态：active 生效、draft 草案、retired 已停用")
    standards_version: str = Field(description="工时标准版本")
    hours: float = Field(description="每月工作量（小时）")
    workers: int = Field(description="网格员人数")
    hours_per_worker: float | None = Field(description="每人每月工作量（小时）")
    capacity_hours: float = Field(description="人员承载量：人数 × 每人每月外勤小时")
    recommended_workers: int = Field(description="各网格建议人数之和")
    items: list[WorkloadItemOut] = Field(description="工作量构成")
    grids: list[GridWorkloadOut] | None = Field(description="村（社区）、镇街：各网格明细")
    worker_loads: list[WorkerWorkloadOut] | None = Field(description="网格（生效版本）：各网格员的每月工作量")


def _out(unit: UnitWorkload) -> WorkloadOut:
    """The response of a unit's workload."""
    return WorkloadOut(
        level=unit.level,  # type: ignore[arg-type]  # checked by the service
        code=unit.code,
        name=unit.name,
        version_id=unit.version_id,
        version_status=unit.version_status,
        standards_version=unit.standards_version,
        hours=unit.workload.hours,
        workers=unit.workers,
        hours_per_worker=unit.hours_per_worker,
        capacity_hours=unit.capacity_hours,
        recommended_workers=unit.recommended_workers,
        items=[WorkloadItemOut(**vars(i)) for i in unit.workload.items],
        grids=None if unit.level == "grid" else [GridWorkloadOut(**vars(g)) for g in unit.grids],
        worker_loads=None if unit.worker_loads is None else [WorkerWorkloadOut(**vars(w)) for w in unit.worker_loads],
    )


@router.get(
    "/workload",
    response_model=WorkloadOut,
    summary="网格、村（社区）或镇街的每月工作量",
    responses={
        403: {"description": "该单元（或草案调整的区域）不在本账号范围内"},
        404: {"description": "单元或网格版本不存在"},
        422: {"description": "层级或编码格式不对"},
    },
)
def get_workload(
    _: WorkloadReader,
    scope: CurrentScope,
    conn: WriteConn,
    level: Annotated[
        Literal["grid", "community", "town"], Query(description="层级：grid 网格、community 村（社区）、town 镇街")
    ],
    code: Annotated[str, Query(max_length=15, pattern=r"^\d+$", description="单元编码")],
    version: Annotated[int | None, Query(ge=1, description="网格版本（默认生效版本；可为草案）")] = None,
) -> WorkloadOut:
    """每月工作量（小时）、人数、每人工作量、建议人数与构成；version 为草案时按草案网格计算（写连接：算出的结果会存下）。"""
    return _out(unit_workload(conn, scope, level=level, code=code, version_id=version))
