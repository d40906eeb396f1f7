"""api.routers.inspections: 双随机抽查计划 — preview the strata, create a plan and publish its commitment, draw with the
announced public value, cancel, read a plan with its teams and visits (credential required; the public face is
api.routers.public_inspections)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, WriteConn, actor_of, allowed
from planning import inspection_plans
from supervision.permissions import Capability

router = APIRouter(tags=["双随机抽查"])

InspectionReader = Annotated[Principal, Depends(allowed(Capability.INSPECTION_READ))]
InspectionPlanner = Annotated[Principal, Depends(allowed(Capability.INSPECTION_PLAN))]
PlanId = Annotated[int, Path(ge=1, le=2**62, description="抽查计划编号")]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "无权办理，或该计划不在本账号范围内（部门人员只能办理本部门单独的计划）"},
    404: {"description": "没有该抽查计划"},
}


class PlanIn(BaseModel):
    """建立抽查计划：部门、事项、区域（镇街、网格或多边形三选一）、比例与公开随机数的来源和公布时间。"""

    model_config = ConfigDict(extra="forbid")

    departments: list[str] = Field(min_length=1, max_length=40, description="部门编码（至少一个；多个为联合抽查）")
    items: list[str] | None = Field(
        default=None, max_length=500, description="抽查事项编码；不填为所选部门全部在用事项"
    )
    towns: list[str] | None = Field(default=None, max_length=40, description="镇街编码（区域三选一）")
    grids: list[str] | None = Field(default=None, max_length=3000, description="网格编码（区域三选一）")
    polygon: dict[str, Any] | None = Field(
        default=None, description="在地图上画出的区域：GeoJSON Polygon（经纬度，最多 2000 个顶点；区域三选一）"
    )
    ratios: dict[str, Decimal] | None = Field(
        default=None, description='按信用类别的抽查比例，如 {"A": 0.03, "D": 0.2}（0–1，最多 5 位小数）'
    )
    item_ratios: dict[str, dict[str, Decimal]] | None = Field(
        default=None, description="按事项、信用类别的抽查比例，优先于 ratios"
    )
    public_value_source: str = Field(
        min_length=1, max_length=200, description="摇号所用公开随机数的来源，如“中国福利彩票3D 第2026335期开奖号码”"
    )
    public_value_at: datetime = Field(description="公开随机数的公布时间（须带时区，不早于现在）")
    title: str | None = Field(default=None, max_length=200, description="计划名称；不填按部门与日期生成")
    load_cap: int = Field(default=20, ge=1, le=200, description="每名执法人员本计划的检查户数上限")
    publish_days: int = Field(default=20, ge=0, le=60, description="检查结果在几个工作日内公示")
    visit_date: date | None = Field(default=None, description="检查开始日期；不填为公开随机数公布后的下一个工作日")

    def request(self) -> inspection_plans.PlanRequest:
        """The service's request."""
        return inspection_plans.PlanRequest(
            departments=tuple(self.departments),
            items=tuple(self.items) if self.items is not None else None,
            towns=tuple(self.towns) if self.towns else None,
            grids=tuple(self.grids) if self.grids else None,
            polygon=self.polygon,
            ratios=self.ratios,
            item_ratios=self.item_ratios,
            public_value_source=self.public_value_source,
            public_value_at=self.public_value_at,
            title=self.title,
            load_cap=self.load_cap,
            publish_days=self.publish_days,
            visit_date=self.visit_date,
        )


class PreviewIn(BaseModel):
    """预览分层：部门、事项、区域与比例（不建立任何记录）。"""

    model_config = ConfigDict(extra="forbid")

    departments: list[str] = Field(min_length=1, max_length=40, description="部门编码")
    items: list[str] | None = Field(default=None, max_length=500, description="抽查事项编码；不填为全部在用事项")
    towns: list[str] | None = Field(default=None, max_length=40, description="镇街编码（区域三选一）")
    grids: list[str] | None = Field(default=None, max_length=3000, description="网格编码（区域三选一）")
    polygon: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon（经纬度；区域三选一）")
    ratios: dict[str, Decimal] | None = Field(default=None, description="按信用类别的抽查比例")
    item_ratios: dict[str, dict[str, Decimal]] | None = Field(default=None, description="按事项、信用类别的抽查比例")


class PreviewStratumOut(BaseModel):
    """一个分层（事项 × 信用类别）的规模、比例与应抽户数。"""

    item_code: str = Field(description="抽查事项编码")
    item_name: str = Field(description="抽查事项名称")
    department: str = Field(description="部门编码")
    credit_class: str = Field(description="信用类别（内部信息，不公开）")
    size: int = Field(description="候选户数")
    ratio: float = Field(description="抽查比例（至多 5 位小数，按其十进制文本精确计算）")
    n: int = Field(description="应抽户数 ⌈比例 × 候选户数⌉")


class PreviewOut(BaseModel):
    """区域内的分层预览。"""

    items: list[str] = Field(description="本计划的抽查事项编码")
    town_codes: list[str] = Field(description="区域涉及的镇街")
    strata: list[PreviewStratumOut]
    candidate_count: int = Field(description="候选总数（一户适用多项事项时按事项分别计）")
    selected_count: int = Field(description="应抽总数")


class StratumOut(BaseModel):
    """一个分层：公开编号（不含信用类别）、事项、信用类别、规模、比例、应抽户数与抽中的统一社会信用代码。"""

    id: str = Field(description="分层公开编号（事项编码/随机串，不透露信用类别）")
    item_code: str = Field(description="抽查事项编码")
    credit_class: str | None = Field(description="信用类别（内部信息，不公开；镇街领导查看涉及其他镇街的计划时不显示）")
    size: int = Field(description="候选户数")
    ratio: float = Field(description="抽查比例（至多 5 位小数，按其十进制文本精确计算）")
    n: int = Field(description="应抽户数")
    selected: list[str] = Field(description="抽中的统一社会信用代码（摇号前为空）")


class PlanItemOut(BaseModel):
    """计划的一个抽查事项。"""

    code: str = Field(description="事项编码")
    name: str = Field(description="事项名称")
    department: str = Field(description="部门编码")


class TeamInspectorOut(BaseModel):
    """检查组的一名执法人员。"""

    id: int = Field(description="执法人员编号")
    code: str = Field(description="执法证号")
    name: str = Field(description="姓名")
    department: str = Field(description="所属部门编码")
    home_grid: str | None = Field(description="住所所在网格")


class OfficeOut(BaseModel):
    """检查组出发与返回的办公地点。"""

    name: str = Field(description="办公地点名称")
    lon: float = Field(description="经度（WGS84）")
    lat: float = Field(description="纬度（WGS84）")


class TeamOut(BaseModel):
    """一个检查组：组号、部门、成员与办公地点。"""

    id: int = Field(description="检查组编号")
    team_no: int = Field(description="组号（1 起）")
    departments: list[str] = Field(description="检查组涵盖的部门")
    inspectors: list[TeamInspectorOut]
    office: OfficeOut


class VisitInspectorOut(BaseModel):
    """派往一户的执法人员。"""

    id: int = Field(description="执法人员编号")
    department: str = Field(description="所属部门编码")
    home_grid: str | None = Field(description="住所所在网格（从不派往本网格）")


class VisitOut(BaseModel):
    """一户检查对象：一次上门检查其抽中的全部事项（进一次门、查多项事）。"""

    id: int = Field(description="检查编号")
    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="市场主体名称")
    grid_code: str | None = Field(description="所在网格")
    town_code: str | None = Field(description="所在镇街")
    lon: float | None = Field(description="经度（WGS84）")
    lat: float | None = Field(description="纬度（WGS84）")
    items: list[str] = Field(description="本次检查的事项编码")
    departments: list[str] = Field(description="涉及的部门（多个为联合检查）")
    team_id: int | None = Field(description="检查组编号；未能组队时为空")
    inspectors: list[VisitInspectorOut]
    window: list[int] = Field(description="营业时间 [开始, 结束]（当日零点起的分钟数）")
    service_minutes: int = Field(description="检查所需分钟数（各事项之和）")
    status: str = Field(description="状态：planned 待检查、done 已完成")
    unmatched_reason: str | None = Field(description="未能组队的原因代码")
    unmatched_reason_zh: str | None = Field(description="未能组队的原因")


class UnmatchedOut(BaseModel):
    """未能组队的检查对象，按原因汇总。"""

    reason: str = Field(description="原因代码")
    reason_zh: str = Field(description="原因")
    count: int = Field(description="户数")


class PlanOut(BaseModel):
    """抽查计划：承诺、候选名单摘要、分层、检查组与检查对象（仅限有权账号）。"""

    id: int = Field(description="计划编号")
    title: str = Field(description="计划名称")
    departments: list[str] = Field(description="部门编码")
    status: str = Field(description="状态：committed 已公布承诺、drawn 已摇号、cancelled 已撤销")
    created_at: datetime = Field(description="建立时间")
    public_value_source: str = Field(description="公开随机数的来源")
    public_value_at: datetime = Field(description="公开随机数的公布时间")
    public_value_announced: bool = Field(description="公开随机数是否事先公布（否：摇号时当场给出）")
    drawn_at: datetime | None = Field(description="摇号时间")
    cancelled_at: datetime | None = Field(description="撤销时间")
    items: list[PlanItemOut]
    area: dict[str, Any] = Field(description="抽查区域（镇街、网格或多边形）")
    town_codes: list[str] = Field(description="区域涉及的镇街")
    commitment: str = Field(description="承诺 SHA-256(服务器种子)，十六进制")
    candidates_sha256: str = Field(description="候选名单 candidates.csv 的 SHA-256")
    candidate_count: int = Field(description="候选名单行数")
    public_value: str | None = Field(description="摇号所用的公开随机数（摇号后）")
    seed: str | None = Field(description="摇号种子（十六进制，摇号后）")
    load_cap: int = Field(description="每名执法人员的检查户数上限")
    publish_days: int = Field(description="结果公示期限（工作日）")
    visit_date: date | None = Field(description="检查开始日期")
    created_by: str = Field(description="建立人")
    drawn_by: str | None = Field(description="摇号人")
    cancel_reason: str | None = Field(description="撤销原因（公开）")
    cancelled_by: str | None = Field(default=None, description="撤销人（不公开）")
    public_url: str = Field(description="公开页面（JSON）地址")
    strata: list[StratumOut]
    teams: list[TeamOut]
    visits: list[VisitOut]
    unmatched: list[UnmatchedOut] = Field(default=[], description="未能组队的检查对象按原因汇总（户数多者在前）")


class PlanSummaryOut(BaseModel):
    """抽查计划列表中的一项。"""

    id: int = Field(description="计划编号")
    title: str = Field(description="计划名称")
    departments: list[str] = Field(description="部门编码")
    status: str = Field(description="状态")
    created_at: datetime = Field(description="建立时间")
    public_value_source: str = Field(description="公开随机数的来源")
    public_value_at: datetime = Field(description="公开随机数的公布时间")
    public_value_announced: bool = Field(description="公开随机数是否事先公布（否：摇号时当场给出）")
    drawn_at: datetime | None = Field(description="摇号时间")
    cancelled_at: datetime | None = Field(description="撤销时间")
    town_codes: list[str] = Field(description="区域涉及的镇街")
    candidate_count: int = Field(description="候选名单行数")


class PlanList(BaseModel):
    """本账号范围内的抽查计划（新的在前）。"""

    items: list[PlanSummaryOut]


class DrawIn(BaseModel):
    """摇号：事先公布来源与时间的公开随机数，按公告原样逐字输入（不去空格）。"""

    model_config = ConfigDict(extra="forbid")

    public_value: str = Field(description="公开随机数（如彩票开奖号码），原样逐字使用")


class CancelIn(BaseModel):
    """撤销计划（仅摇号前）。"""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, description="撤销原因（公开）")


@router.post(
    "/inspection-plans/preview",
    response_model=PreviewOut,
    summary="预览抽查分层（事项 × 信用类别的候选户数、比例与应抽户数）",
    responses={403: _REFUSALS[403], 422: {"description": "部门、事项、区域或比例不合要求"}},
)
def post_preview(_: InspectionPlanner, scope: CurrentScope, conn: ReadConn, body: PreviewIn) -> Any:
    """不建立任何记录，只按区域统计各分层的候选户数与应抽户数，供规划页面使用。"""
    request = inspection_plans.PlanRequest(
        departments=tuple(body.departments),
        items=tuple(body.items) if body.items is not None else None,
        towns=tuple(body.towns) if body.towns else None,
        grids=tuple(body.grids) if body.grids else None,
        polygon=body.polygon,
        ratios=body.ratios,
        item_ratios=body.item_ratios,
    )
    result = inspection_plans.preview(conn, request, scope=scope)
    out = asdict(result)
    for stratum in out["strata"]:
        stratum["ratio"] = inspection_plans.published_ratio(stratum["ratio"])
    return out


@router.post(
    "/inspection-plans",
    response_model=PlanOut,
    status_code=201,
    summary="建立抽查计划：固定候选名单，公布其 SHA-256 与承诺",
    responses={
        403: _REFUSALS[403],
        422: {"description": "部门、事项、区域、比例或公开随机数的公布时间不合要求，或区域内没有候选对象"},
    },
)
def post_plan(
    request: Request, principal: InspectionPlanner, scope: CurrentScope, conn: WriteConn, body: PlanIn
) -> Any:
    """在一个事务内按分层固定候选名单，生成服务器种子并公布承诺 SHA-256(服务器种子)；摇号前种子以系统密钥封存。"""
    plan = inspection_plans.create_plan(
        conn, body.request(), actor=actor_of(principal).name, scope=scope, secret_key=request.app.state.secret_key
    )
    return inspection_plans.plan_view(conn, plan.id, scope)


@router.get("/inspection-plans", response_model=PlanList, summary="本账号范围内的抽查计划")
def get_plans(_: InspectionReader, scope: CurrentScope, conn: ReadConn) -> Any:
    """指挥中心看全部；部门人员看含本部门的计划；镇街领导看涉及本镇街的计划。"""
    return {"items": inspection_plans.list_plans(conn, scope)}


@router.get(
    "/inspection-plans/{plan_id}",
    response_model=PlanOut,
    summary="抽查计划详情（含检查组与检查对象）",
    responses=_REFUSALS,
)
def get_plan(plan_id: PlanId, _: InspectionReader, scope: CurrentScope, conn: ReadConn) -> Any:
    """公开内容之外，另含各分层的信用类别、检查组成员与每户的检查人员。"""
    return inspection_plans.plan_view(conn, plan_id, scope)


@router.post(
    "/inspection-plans/{plan_id}/draw",
    response_model=PlanOut,
    summary="摇号：用事先公布的公开随机数抽取对象并匹配检查组",
    responses={
        **_REFUSALS,
        409: {"description": "已摇号、已撤销、公开随机数尚未公布、候选名单与公布的摘要不符，或服务器种子无法取出"},
        422: {"description": "公开随机数为空、过长或含控制字符"},
    },
)
def post_draw(
    request: Request,
    plan_id: PlanId,
    principal: InspectionPlanner,
    scope: CurrentScope,
    conn: WriteConn,
    body: DrawIn,
) -> Any:
    """公开服务器种子，按文档算法逐层抽取，合并为每户一次的联合检查并随机匹配检查组；全部在一个事务内完成。"""
    inspection_plans.draw(
        conn,
        plan_id,
        body.public_value,
        actor=actor_of(principal).name,
        scope=scope,
        secret_key=request.app.state.secret_key,
    )
    return inspection_plans.plan_view(conn, plan_id, scope)


@router.post(
    "/inspection-plans/{plan_id}/cancel",
    response_model=PlanOut,
    summary="撤销抽查计划（仅摇号前；撤销记录公开保留）",
    responses={**_REFUSALS, 409: {"description": "计划已摇号或已撤销"}},
)
def post_cancel(
    plan_id: PlanId, principal: InspectionPlanner, scope: CurrentScope, conn: WriteConn, body: CancelIn
) -> Any:
    """撤销尚未摇号的计划；计划与撤销原因仍在公开目录中可查。"""
    inspection_plans.cancel(conn, plan_id, body.reason, actor=actor_of(principal).name, scope=scope)
    return inspection_plans.plan_view(conn, plan_id, scope)
