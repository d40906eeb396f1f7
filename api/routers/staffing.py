"""api.routers.staffing: the staffing plan of a town (GET /v1/staffing/plan), its map (GET /v1/staffing/grids),
applying it in one audited step (POST /v1/staffing/apply), and the staffing page (/staffing)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.deps import optional_principal
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, ReadConn, TownCode, WriteConn, actor_of, allowed
from api.routers.pages import refused_page, sign_in_first
from grids.codes import TOWN_PATTERN
from maps.page import page_config, render_page
from maps.settings import MapSettings
from planning import staffing_service
from supervision.permissions import Capability

router = APIRouter(tags=["规划"])
pages_router = APIRouter(tags=["页面"])

WorkloadReader = Annotated[Principal, Depends(allowed(Capability.WORKLOAD_READ))]
StaffingApplier = Annotated[Principal, Depends(allowed(Capability.STAFFING_APPLY))]
WithinParam = Annotated[
    Literal["town", "community", "city"],
    Query(description="网格员在什么范围内调动：town 本镇街内（默认）、community 本村（社区）内、city 全市"),
]


class GridLineOut(BaseModel):
    """配员方案中的一个网格：工作量、现有与建议人数、调整后人数、人均工作量。"""

    code: str = Field(description="网格编码")
    name: str | None = Field(description="网格名称")
    community_code: str = Field(description="村（社区）编码")
    community_name: str = Field(description="村（社区）名称")
    town_code: str = Field(description="镇街编码")
    town_name: str = Field(description="镇街名称")
    hours: float = Field(description="工作量（小时/月）")
    workers: int = Field(description="现有在岗网格员数")
    recommended: int = Field(description="建议网格员数（工作量 ÷ 每人每月外勤工时，2–5 人）")
    target: int = Field(description="本方案的目标人数（按本范围现有人数调整后的建议）")
    short_by: int = Field(
        description="目标低于建议的人数：本范围人手总数不足时，缺口按人均工作量最均衡的方式分摊到各网格（否则为 0）"
    )
    after: int = Field(description="方案实施后的网格员数")
    hours_per_worker_before: float | None = Field(description="调整前人均工作量（小时/月）；无人时为空")
    hours_per_worker_after: float | None = Field(description="调整后人均工作量（小时/月）；无人时为空")
    lon: float = Field(description="网格内一点的经度（WGS84），地图上调动连线的端点")
    lat: float = Field(description="网格内一点的纬度（WGS84）")


class MoveOut(BaseModel):
    """一名网格员的调动：从哪个网格到哪个网格、距离、需移交的在办任务数。"""

    worker_id: int = Field(description="网格员编号")
    worker_name: str = Field(description="网格员姓名")
    from_grid: str = Field(description="调出网格")
    to_grid: str = Field(description="调入网格")
    distance_m: float = Field(description="两网格间距离（米）")
    open_tasks: int = Field(description="需移交给原网格其他网格员的在办任务数")


class TotalsOut(BaseModel):
    """方案汇总。"""

    grids: int = Field(description="网格数")
    workers: int = Field(description="在岗网格员数")
    hours: float = Field(description="总工作量（小时/月）")
    recommended: int = Field(description="建议总人数")
    understaffed_before: int = Field(description="调整前人数少于建议的网格数")
    understaffed_after: int = Field(description="调整后人数少于建议的网格数")
    overstaffed_before: int = Field(description="调整前人数多于建议的网格数")
    overstaffed_after: int = Field(description="调整后人数多于建议的网格数")
    shortfall_after: int = Field(description="调整后仍缺的网格员数（本范围人手不足，需增配）")
    moves: int = Field(description="调动人数")
    distance_m: float = Field(description="调动总距离（米）")
    open_tasks_handed_over: int = Field(description="需移交的在办任务数")


class StaffingPlanOut(BaseModel):
    """网格员配置方案：各网格、调动清单、汇总与方案指纹（应用时提交，用于确认方案未变）。"""

    town_code: str | None = Field(description="镇街编码；全市方案为空")
    community_code: str | None = Field(description="村（社区）编码（调度员的方案只含本村（社区））")
    within: Literal["town", "community", "city"] = Field(description="调动范围")
    standards_version: str = Field(description="工作量标准版本")
    capacity_hours: float = Field(description="每名网格员每月外勤工时")
    grids: list[GridLineOut]
    moves: list[MoveOut]
    totals: TotalsOut
    fingerprint: str = Field(description="方案指纹（调动清单的 sha256）")


class ApplyIn(BaseModel):
    """应用配员方案：所见方案的范围与指纹（不接受其他字段，如自拟的 moves）。"""

    model_config = ConfigDict(extra="forbid")

    town: str | None = Field(default=None, pattern=TOWN_PATTERN.pattern, description="镇街编码；全市方案为空")
    within: Literal["town", "community", "city"] = Field(default="town", description="调动范围")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$", description="所见方案的指纹")


class ApplyOut(BaseModel):
    """方案已应用：批次编号、已调动的网格员与移交的任务。"""

    batch_id: int = Field(description="调整批次编号（审计记录）")
    moves: list[MoveOut]
    open_tasks_handed_over: int = Field(description="移交给原网格其他网格员的在办任务数")
    queued_tasks_assigned: int = Field(description="调入网格中排队等待、现已分派给新到网格员的任务数")


@router.get(
    "/staffing/plan",
    response_model=StaffingPlanOut,
    summary="网格员配置方案（按工作量，最少调动）",
    responses={403: {"description": "该镇街不在本账号范围内"}, 404: {"description": "没有该镇街"}},
)
def get_plan(
    _: WorkloadReader, scope: CurrentScope, conn: ReadConn, town: TownCode = None, within: WithinParam = "town"
) -> Any:
    """本账号范围内各网格的建议人数与最少调动方案（镇街领导默认本镇街，指挥中心可看全市或任一镇街）。"""
    return asdict(staffing_service.plan(conn, scope=scope, within=within, town_code=town))


@router.get(
    "/staffing/grids",
    summary="配员方案范围内的网格边界（GeoJSON，WGS84）",
    responses={403: {"description": "该镇街不在本账号范围内"}, 404: {"description": "没有该镇街"}},
)
def get_grid_shapes(_: WorkloadReader, scope: CurrentScope, conn: ReadConn, town: TownCode = None) -> JSONResponse:
    """方案所涉网格的边界（轻度简化），供配员页面地图使用。"""
    shapes = staffing_service.grid_shapes(conn, scope=scope, town_code=town)
    return JSONResponse(shapes, media_type="application/geo+json")


@router.post(
    "/staffing/apply",
    response_model=ApplyOut,
    summary="应用网格员配置方案（一次完成，留痕）",
    responses={
        403: {"description": "无权调配或该镇街不在本账号范围内"},
        409: {"description": "方案已变化（指纹不符），请刷新后重新确认"},
        422: {"description": "方案无需调动"},
    },
)
def post_apply(principal: StaffingApplier, conn: WriteConn, body: ApplyIn) -> Any:
    """在一个事务内调动方案中的全部网格员；其在办任务按既有规则移交原网格其他网格员，并记录调整批次。"""
    result = staffing_service.apply(
        conn, actor=actor_of(principal), fingerprint=body.fingerprint, within=body.within, town_code=body.town
    )
    return asdict(result)


class MovedWorkerOut(BaseModel):
    """调整批次中调动的一名网格员。"""

    worker_id: int = Field(description="网格员编号")
    worker_name: str | None = Field(description="网格员姓名")
    from_grid: str | None = Field(description="调出网格")
    to_grid: str | None = Field(description="调入网格")


class BatchOut(BaseModel):
    """一次已应用的配员方案：时间、操作人、原因与调动的网格员。"""

    id: int = Field(description="调整批次编号")
    at: datetime = Field(description="应用时间")
    actor: str = Field(description="操作人")
    area_code: str | None = Field(description="方案范围（镇街或村（社区）编码；全市为空）")
    reason: str = Field(description="原因")
    moves: list[MovedWorkerOut]


class BatchList(BaseModel):
    """最近应用的配员方案（新的在前）。"""

    items: list[BatchOut]


@router.get(
    "/staffing/batches",
    response_model=BatchList,
    summary="最近应用的配员方案（审计记录）",
    responses={403: {"description": "该镇街不在本账号范围内"}, 404: {"description": "没有该镇街"}},
)
def get_batches(
    _: WorkloadReader,
    scope: CurrentScope,
    conn: ReadConn,
    town: TownCode = None,
    limit: Annotated[int, Query(ge=1, le=100, description="条数")] = 20,
) -> Any:
    """本账号范围内最近应用的配员方案，含每名调动网格员的调出与调入网格。"""
    return {"items": [asdict(b) for b in staffing_service.batches(conn, scope=scope, town_code=town, limit=limit)]}


@pages_router.get("/staffing", response_class=HTMLResponse, summary="网格员配置方案", include_in_schema=False)
def staffing_page(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    db: DbEngine,
    town: TownCode = None,
) -> Response:
    """The staffing page: the plan's table, the town's grids coloured by shortage or surplus with the moves drawn,
    and the apply button for callers who may apply (staffing.apply)."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.WORKLOAD_READ):
        return refusal
    with db.connect() as conn:
        choices = staffing_service.town_choices(conn, principal.area)
    settings: MapSettings = request.app.state.map_settings
    config = {
        **_outline_config(page_config(settings)),
        "town": town,
        "towns": [asdict(choice) for choice in choices],
        "canApply": principal.may(Capability.STAFFING_APPLY),
    }
    html = render_page("staffing.html", title="网格员配置方案", config=config, user=principal.name)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _outline_config(config: dict[str, Any]) -> dict[str, Any]:
    """The page draws WGS84 GeoJSON: outlines only unless the basemap is in WGS84 too."""
    if config["coords"] != "wgs84":
        return {**config, "basemap": "none", "tileUrl": None, "coords": "wgs84"}
    return config
