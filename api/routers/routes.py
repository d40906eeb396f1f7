"""api.routers.routes: 检查路线 — VROOM 格式求解（POST /v1/routes/solve）与抽查计划的检查组每日路线（求解、查看、手动调整）。"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, WriteConn, allowed
from api.errors import InvalidRequest
from planning.route_service import PlanRoutes, move_stop, plan_routes, solve_plan_routes, solve_vroom
from planning.routing.vrp import MAX_SECONDS
from supervision.permissions import Capability

router = APIRouter(tags=["双随机抽查"])

MAX_BODY_BYTES = 10 * 1024 * 1024

RouteSolver = Annotated[Principal, Depends(allowed(Capability.ROUTE_SOLVE))]
PlanReader = Annotated[Principal, Depends(allowed(Capability.INSPECTION_READ))]
Planner = Annotated[Principal, Depends(allowed(Capability.INSPECTION_PLAN))]
PlanId = Annotated[int, Path(ge=1, le=2**62, description="抽查计划编号")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "无此权限，或计划不在本账号范围内"},
    404: {"description": "计划、检查对象或检查组不存在"},
    409: {"description": "计划尚未摇号（或已撤销），或尚未生成路线"},
    422: {"description": "检查组不能承担该对象，或当天排不下（route_infeasible，unassigned 列出原因）"},
}


# ------------------------------------------------------------------------------------------- VROOM's solution


class _Out(BaseModel):
    """Closed answers: the schema lists every field."""

    model_config = ConfigDict(extra="forbid")


class ComputingTimesOut(_Out):
    """耗时（毫秒）。"""

    loading: int = Field(description="建模耗时（毫秒）")
    solving: int = Field(description="求解耗时（毫秒）")
    routing: int = Field(description="按道路计算行程时间矩阵的耗时（毫秒；请求自带矩阵时为 0）")


class SummaryOut(_Out):
    """整体汇总（与 VROOM 的 summary 相同）。"""

    cost: int = Field(description="总成本：全部路线的行驶时间（秒）")
    routes: int = Field(description="路线数")
    unassigned: int = Field(description="未安排的任务数")
    setup: int = Field(description="准备时间（秒，暂不支持，恒为 0）")
    service: int = Field(description="服务时间合计（秒）")
    duration: int = Field(description="行驶时间合计（秒）")
    waiting_time: int = Field(description="等待时间合计（秒）")
    priority: int = Field(description="已安排任务的优先级合计")
    distance: int | None = Field(default=None, description="行驶距离合计（米；有距离时给出）")
    delivery: list[int] | None = Field(default=None, description="送货量合计（各维；请求含货量时给出）")
    amount: list[int] | None = Field(default=None, description="送货量合计（VROOM 旧字段，同 delivery）")
    pickup: list[int] | None = Field(default=None, description="取货量合计（各维；请求含货量时给出）")
    violations: list[Any] = Field(description="约束违反（恒为空：不返回违反约束的路线）")
    computing_times: ComputingTimesOut = Field(description="耗时")


class StepOut(_Out):
    """路线中的一步：出发、任务或返回。"""

    type: str = Field(description="start 出发、job 任务、end 返回")
    location: list[float] | None = Field(default=None, description="位置 [经度, 纬度]（请求用经纬度时）")
    location_index: int | None = Field(default=None, description="矩阵中的位置序号（请求用矩阵时）")
    id: int | None = Field(default=None, description="任务编号（job）")
    job: int | None = Field(default=None, description="任务编号（job，VROOM 旧字段）")
    description: str | None = Field(default=None, description="任务说明（请求中给出时）")
    setup: int = Field(description="准备时间（秒）")
    service: int = Field(description="服务时间（秒）")
    waiting_time: int = Field(description="到达后等待开门的时间（秒）")
    arrival: int = Field(description="到达时刻（秒）")
    duration: int = Field(description="至此累计行驶时间（秒）")
    distance: int | None = Field(default=None, description="至此累计行驶距离（米）")
    load: list[int] | None = Field(default=None, description="离开此处时的车上货量（各维；请求含货量时给出）")
    violations: list[Any] = Field(description="约束违反（恒为空）")


class RouteOut(_Out):
    """一辆车（检查组）的路线。"""

    vehicle: int = Field(description="车辆编号")
    description: str | None = Field(default=None, description="车辆说明（请求中给出时）")
    cost: int = Field(description="成本：行驶时间（秒）")
    setup: int = Field(description="准备时间（秒）")
    service: int = Field(description="服务时间（秒）")
    duration: int = Field(description="行驶时间（秒）")
    waiting_time: int = Field(description="等待时间（秒）")
    priority: int = Field(description="优先级合计")
    distance: int | None = Field(default=None, description="行驶距离（米）")
    delivery: list[int] | None = Field(default=None, description="本路线送货量（各维；请求含货量时给出）")
    amount: list[int] | None = Field(default=None, description="本路线送货量（VROOM 旧字段，同 delivery）")
    pickup: list[int] | None = Field(default=None, description="本路线取货量（各维；请求含货量时给出）")
    steps: list[StepOut] = Field(description="各步")
    violations: list[Any] = Field(description="约束违反（恒为空）")


class UnassignedOut(_Out):
    """未能安排的任务及原因。"""

    id: int = Field(description="任务编号")
    type: str = Field(description="类型，恒为 job")
    location: list[float] | None = Field(default=None, description="位置 [经度, 纬度]")
    location_index: int | None = Field(default=None, description="矩阵中的位置序号")
    reason: str = Field(
        description="原因代码：unknown_location、no_vehicle_skills、service_too_long、travel_limit、window_closed、"
        "over_capacity、day_full"
    )
    description: str = Field(description="原因说明")


class VroomSolutionOut(_Out):
    """VROOM 格式的解。"""

    code: int = Field(description="0 表示成功")
    summary: SummaryOut = Field(description="汇总")
    unassigned: list[UnassignedOut] = Field(description="未安排的任务")
    routes: list[RouteOut] = Field(description="路线")


async def _json_body(request: Request) -> Any:
    """The request's JSON, read at most MAX_BODY_BYTES (413 beyond), 422 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, "请求超过 10 MB")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, "请求超过 10 MB")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"请求不是合法的 JSON：{exc}") from None


@router.post(
    "/routes/solve",
    response_model=VroomSolutionOut,
    response_model_exclude_none=True,
    summary="按 VROOM 的 JSON 格式求解路线（带时间窗）",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "VROOM 的问题 JSON"}}},
        }
    },
    responses={
        413: {"description": "请求超过 10 MB"},
        422: {
            "description": "问题不合法或含暂不支持的内容（如 shipments）；或有任务无法安排"
            "（route_infeasible，unassigned 列出原因；options.allow_unassigned 为 true 时返回部分解）"
        },
    },
)
async def solve_routes(request: Request, _: RouteSolver, conn: ReadConn) -> dict[str, Any]:
    """VROOM 的问题（jobs、vehicles、可选 matrices）→ VROOM 的解（routes、steps、summary、unassigned）。

    不带 matrices 时，位置须在本市范围内，按城市道路计算行程时间。任一任务无法安排时返回 422（error 为
    route_infeasible，unassigned 列出每个任务的原因）；options.allow_unassigned 为 true 时与 VROOM 一样返回 200 的部分解。
    求解时限 options.max_seconds（默认 2 秒，最多 30 秒），按道路计算矩阵的时间也计入其中：预计矩阵用时超过时限的
    75% 时直接返回 422（reason 为 too_large；30 秒时限约可容一个镇内 1,500 个位置、全市范围 570 个位置），
    可附上 matrices 或调高时限。支持 jobs 的 delivery、pickup 与 vehicles 的 capacity（单维或多维）。
    """
    payload = await _json_body(request)
    answer, _unassigned = await run_in_threadpool(solve_vroom, conn, payload)
    return answer


# ------------------------------------------------------------------------------------------- a plan's team days


class OfficeOut(BaseModel):
    """检查组的出发地（执法所）。"""

    name: str = Field(description="名称")
    lon: float = Field(description="经度")
    lat: float = Field(description="纬度")


class RouteStopOut(BaseModel):
    """一天路线中的一个检查对象。"""

    visit_id: int = Field(description="检查对象（走访）编号")
    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="名称")
    address: str | None = Field(description="地址")
    lon: float = Field(description="经度")
    lat: float = Field(description="纬度")
    arrival: str = Field(description="到达时间（HH:MM）")
    start: str = Field(description="开始检查时间（HH:MM；未开门时等待）")
    departure: str = Field(description="离开时间（HH:MM）")
    waiting_min: int = Field(description="等待开门的分钟数")
    service_min: int = Field(description="检查用时（分钟）")
    items: list[str] = Field(description="检查事项编码")
    departments: list[str] = Field(description="涉及部门")
    window: list[int] = Field(description="营业时间 [开始, 结束]（当日零点起的分钟数）")
    window_text: str = Field(description="营业时间（如 09:00–17:30）")


class LineStringOut(BaseModel):
    """沿道路的路线（GeoJSON LineString，经纬度）。"""

    type: str = Field(description="恒为 LineString")
    coordinates: list[list[float]] = Field(description="坐标 [经度, 纬度] 序列；无站点时为空")


class RouteDayOut(BaseModel):
    """检查组一天的路线。"""

    day: int = Field(description="第几天（从 1 起）")
    date: str = Field(description="日期（工作日）")
    manual: bool = Field(description="是否经人工调整")
    leave: str = Field(description="出发时间（HH:MM）")
    back: str = Field(description="返回时间（HH:MM）")
    duration_s: int = Field(description="出发至返回的时长（秒）")
    travel_s: int = Field(description="行驶时间（秒）")
    distance_m: int = Field(description="行驶距离（米）")
    stops: list[RouteStopOut] = Field(description="依次检查的对象")
    geometry: LineStringOut = Field(description="沿道路的路线，供地图绘制")


class TeamRoutesOut(BaseModel):
    """一个检查组的各天路线。"""

    team_id: int = Field(description="检查组编号")
    team_no: int = Field(description="组号")
    departments: list[str] = Field(description="涵盖部门")
    office: OfficeOut = Field(description="出发地")
    days: list[RouteDayOut] = Field(description="各天路线")


class UnroutedVisitOut(BaseModel):
    """未排入路线的检查对象及原因。"""

    visit_id: int = Field(description="检查对象（走访）编号")
    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="名称")
    team_id: int | None = Field(description="所属检查组（未配组时为空）")
    reason: str = Field(
        description="原因代码：unmatched 未配齐检查组、unknown_location、service_too_long、window_closed、day_full"
    )
    detail: str = Field(description="原因说明")


class PlanRoutesOut(BaseModel):
    """抽查计划各检查组的每日路线。"""

    plan_id: int = Field(description="计划编号")
    status: str = Field(description="计划状态")
    visit_date: str | None = Field(description="首个检查日")
    day_start: str = Field(description="每天最早出发时间")
    day_end: str = Field(description="每天最晚返回时间")
    travel_source: str = Field(description="行程时间来源：road 城市道路")
    solved_at: str | None = Field(description="路线生成时间；尚未生成时为空")
    teams: list[TeamRoutesOut] = Field(description="各检查组")
    unassigned: list[UnroutedVisitOut] = Field(description="未排入路线的检查对象")
    figures: dict[str, float] = Field(description="合计：天数、站点数、行驶时间（秒）、距离（米）、求解耗时（秒）")


class SolveIn(BaseModel):
    """生成路线的选项。"""

    model_config = ConfigDict(extra="forbid")

    max_seconds: float = Field(default=2.0, gt=0, le=MAX_SECONDS, description="求解时限（秒，各检查组分摊）")


class MoveIn(BaseModel):
    """手动调整：把一个检查对象放到某检查组某天的某个位置。"""

    model_config = ConfigDict(extra="forbid")

    visit_id: int = Field(ge=1, le=2**62, description="检查对象（走访）编号")
    team_id: int = Field(ge=1, le=2**62, description="目标检查组编号")
    day: int = Field(ge=1, le=366, description="目标第几天（可为该组最后一天的下一天）")
    position: int = Field(ge=0, le=10_000, description="在当天的位置（0 为第一站）")


def _out(routes: PlanRoutes) -> PlanRoutesOut:
    """The answer of a plan's routes."""
    return PlanRoutesOut.model_validate(routes.as_dict())


@router.get(
    "/inspection-plans/{plan_id}/routes",
    response_model=PlanRoutesOut,
    summary="抽查计划各检查组的每日路线",
    responses=_ERRORS,
)
def get_plan_routes(plan_id: PlanId, _: PlanReader, scope: CurrentScope, conn: ReadConn) -> PlanRoutesOut:
    """各检查组每天的检查顺序、到达时间、营业时间与沿道路的路线，以及未排入路线的对象和原因。"""
    return _out(plan_routes(conn, plan_id, scope=scope))


@router.post(
    "/inspection-plans/{plan_id}/routes",
    response_model=PlanRoutesOut,
    summary="生成（重新生成）抽查计划的每日路线",
    responses=_ERRORS,
)
def post_plan_routes(
    plan_id: PlanId,
    principal: Planner,
    scope: CurrentScope,
    conn: WriteConn,
    body: Annotated[SolveIn | None, Body()] = None,
) -> PlanRoutesOut:
    """按城市道路为每个检查组安排工作日路线（从执法所出发并返回，08:30–17:30，营业时间内检查），替换原有路线。"""
    options = body or SolveIn()
    return _out(
        solve_plan_routes(conn, plan_id, scope=scope, actor=principal.audit_name, max_seconds=options.max_seconds)
    )


@router.post(
    "/inspection-plans/{plan_id}/routes/move",
    response_model=PlanRoutesOut,
    summary="手动调整一个检查对象，其余重新优化",
    responses=_ERRORS,
)
def move_plan_stop(
    plan_id: PlanId, body: MoveIn, principal: Planner, scope: CurrentScope, conn: WriteConn
) -> PlanRoutesOut:
    """把检查对象放到某组某天的指定位置（固定在此），当天其余站点及其原来所在的那天重新优化；排不下时返回 422 且不作改动。"""
    return _out(
        move_stop(
            conn,
            plan_id,
            visit_id=body.visit_id,
            team_id=body.team_id,
            day=body.day,
            position=body.position,
            scope=scope,
            actor=principal.audit_name,
        )
    )
