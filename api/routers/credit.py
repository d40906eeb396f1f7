"""api.routers.credit: 信用分级分类 — an entity's class with reasons and history, the recompute, the sampling ratios.

The class is internal: these routes need a credential with `credit.read` (a town leader sees the entities of their
town only); nothing here is mounted under /public.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, WriteConn, allowed
from planning.credit import CLASS_LABELS_ZH
from planning.credit_service import RECORD_KINDS, RECORD_SOURCES, CreditView, RecomputeSummary, credit_of, recompute
from planning.errors import PlanNotFound
from planning.ratios import CLASSES, RatioOverview, clear_ratio, ratio_overview, set_ratio
from supervision.calendar import today
from supervision.permissions import Capability

router = APIRouter(tags=["双随机抽查"])

CreditReader = Annotated[Principal, Depends(allowed(Capability.CREDIT_READ))]
CreditRecomputer = Annotated[Principal, Depends(allowed(Capability.CREDIT_RECOMPUTE))]
InspectionReader = Annotated[Principal, Depends(allowed(Capability.INSPECTION_READ))]
CreditClass = Literal["A", "B", "C", "D"]
Uscc = Annotated[str, Path(min_length=18, max_length=18, description="统一社会信用代码（18 位）")]


class ReasonOut(BaseModel):
    """信用类别的一条理由。"""

    code: str = Field(description="理由代码，如 abnormal_list、unresolved_finding、no_adverse_records")
    label_zh: str = Field(description="理由名称")
    detail_zh: str = Field(description="理由说明")
    points: int = Field(description="该理由计入的风险分（无不良记录为 0）")


class AssessmentOut(BaseModel):
    """信用类别的一次评定（历史记录）。"""

    credit_class: CreditClass = Field(description="评定类别：A 信用风险低 … D 信用风险高")
    previous_class: CreditClass | None = Field(description="评定前的类别")
    reasons: list[ReasonOut] = Field(description="评定理由")
    rules_version: str = Field(description="评定规则版本")
    assessed_at: datetime = Field(description="评定时间")
    run_id: int | None = Field(description="评定批次（任务运行记录编号）")


class RecordOut(BaseModel):
    """一条尚未消除的信用记录。"""

    id: int = Field(description="记录编号")
    kind: str = Field(description=f"类型：{'、'.join(f'{k} {v}' for k, v in RECORD_KINDS.items())}")
    kind_zh: str = Field(description="类型名称")
    source: str = Field(description=f"来源：{'、'.join(f'{k} {v}' for k, v in RECORD_SOURCES.items())}")
    source_id: str | None = Field(description="来源编号，如 result:123")
    department_code: str | None = Field(description="记录部门")
    detail: str = Field(description="说明")
    recorded_at: datetime = Field(description="记录时间")


class CreditOut(BaseModel):
    """市场主体的信用风险分类：当前类别、理由、历史与未消除的记录（内部信息，不公示）。"""

    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="名称")
    town_code: str | None = Field(description="所在镇街")
    status: str = Field(description="登记状态：open 存续、closed 注销")
    credit_class: CreditClass = Field(description="当前类别")
    class_label_zh: str = Field(description="类别名称，如 信用风险低")
    reasons: list[ReasonOut] = Field(description="当前类别的理由（至少一条）")
    assessed_at: datetime | None = Field(description="最近评定时间；尚未按规则评定过时为空（理由为按现有记录的测算）")
    history: list[AssessmentOut] = Field(description="评定历史，最新在前")
    open_records: list[RecordOut] = Field(description="尚未消除的信用记录，最新在前")


class RecomputeIn(BaseModel):
    """重新评定信用类别：指定一个市场主体，或不填重算全市。"""

    uscc: str | None = Field(default=None, min_length=18, max_length=18, description="统一社会信用代码；不填为全市")


class RecomputeOut(BaseModel):
    """一次重新评定的结果。"""

    run_id: int = Field(description="评定批次（任务运行记录编号）")
    as_of: str = Field(description="评定所依据的日期（YYYY-MM-DD）")
    rules_version: str = Field(description="评定规则版本")
    entities: int = Field(description="评定的市场主体数（存续）")
    changed: int = Field(description="类别或理由有变化、写入历史的数量")
    by_class: dict[str, int] = Field(description="各类别的数量")
    moves: dict[str, int] = Field(description="类别变化及数量，如 A→B")


class ClassRatioOut(BaseModel):
    """一个信用类别的抽查比例规则。"""

    credit_class: CreditClass = Field(description="信用类别")
    label_zh: str = Field(description="类别名称")
    default: float = Field(description="规则文件的默认比例")
    floor: float = Field(description="最低比例（任何类别都不免于抽查）")
    general_cap: float = Field(description="一般检查事项的最高比例（重点检查事项不设上限）")
    effective: float = Field(description="未单独设置的事项现行比例（本市全部事项设置，否则默认）")


class RatioSettingOut(BaseModel):
    """本市设置的一条抽查比例。"""

    item_code: str = Field(description="检查事项编码；* 为全部事项")
    credit_class: CreditClass = Field(description="信用类别")
    ratio: float = Field(description="比例")
    source: str = Field(description="依据")
    set_by: str = Field(description="设置人")
    set_at: datetime = Field(description="设置时间")


class RatiosOut(BaseModel):
    """抽查比例：规则文件、本市设置与现行比例。优先级：计划指定事项 > 计划指定类别 > 本市事项 > 本市全部事项 > 默认。"""

    rules_version: str = Field(description="规则版本")
    classes: list[ClassRatioOut] = Field(description="各信用类别")
    settings: list[RatioSettingOut] = Field(description="本市设置")


class RatioIn(BaseModel):
    """设置本市的一条抽查比例。"""

    item_code: str = Field(min_length=1, max_length=48, description="检查事项编码；* 为全部事项")
    credit_class: CreditClass = Field(description="信用类别")
    ratio: Decimal = Field(description="比例，(0, 1] 之间，最多 5 位小数")
    source: str = Field(min_length=1, max_length=500, description="依据，如年度抽查工作计划的文号")


def _credit_out(view: CreditView) -> CreditOut:
    """The response of an entity's credit."""
    return CreditOut(
        uscc=view.uscc,
        name=view.name,
        town_code=view.town_code,
        status=view.status,
        credit_class=view.credit_class,  # type: ignore[arg-type]  # checked by the table
        class_label_zh=view.class_label_zh,
        reasons=[ReasonOut(**r) for r in view.reasons],
        assessed_at=view.assessed_at,
        history=[
            AssessmentOut(
                credit_class=h.credit_class,  # type: ignore[arg-type]
                previous_class=h.previous_class,  # type: ignore[arg-type]
                reasons=[ReasonOut(**r) for r in h.reasons],
                rules_version=h.rules_version,
                assessed_at=h.assessed_at,
                run_id=h.run_id,
            )
            for h in view.history
        ],
        open_records=[
            RecordOut(
                id=r.id,
                kind=r.kind,
                kind_zh=RECORD_KINDS[r.kind],
                source=r.source,
                source_id=r.source_id,
                department_code=r.department_code,
                detail=r.detail,
                recorded_at=r.recorded_at,
            )
            for r in view.open_records
        ],
    )


def _summary_out(summary: RecomputeSummary) -> RecomputeOut:
    """The response of a recompute."""
    return RecomputeOut(
        run_id=summary.run_id,
        as_of=summary.as_of.isoformat(),
        rules_version=summary.rules_version,
        entities=summary.entities,
        changed=summary.changed,
        by_class=summary.by_class,
        moves=summary.moves,
    )


def _ratios_out(overview: RatioOverview) -> RatiosOut:
    """The response of the ratios."""
    rules = overview.rules
    return RatiosOut(
        rules_version=rules.version,
        classes=[
            ClassRatioOut(
                credit_class=cls,  # type: ignore[arg-type]
                label_zh=CLASS_LABELS_ZH[cls],
                default=float(rules.default[cls]),
                floor=float(rules.floor[cls]),
                general_cap=float(rules.general_cap[cls]),
                effective=float(overview.effective[cls]),
            )
            for cls in CLASSES
        ],
        settings=[
            RatioSettingOut(
                item_code=s.item_code,
                credit_class=s.credit_class,  # type: ignore[arg-type]
                ratio=float(s.ratio),
                source=s.source,
                set_by=s.set_by,
                set_at=s.set_at,
            )
            for s in overview.settings
        ],
    )


@router.get(
    "/entities/{uscc}/credit",
    response_model=CreditOut,
    summary="市场主体的信用风险分类（类别、理由与历史；内部信息）",
)
def get_entity_credit(_: CreditReader, scope: CurrentScope, conn: ReadConn, uscc: Uscc) -> Any:
    """镇街领导只能查看本镇街的市场主体；代码格式或校验位错误为 422，不存在为 404。"""
    return _credit_out(credit_of(conn, uscc, scope))


@router.post("/credit/recompute", response_model=RecomputeOut, summary="重新评定信用类别（全市或一个市场主体）")
def post_recompute(principal: CreditRecomputer, conn: WriteConn, body: RecomputeIn) -> Any:
    """在一个事务内按现行规则重算；只有类别或理由变化的才写入历史。"""
    return _summary_out(recompute(conn, as_of=today(), actor=principal.audit_name, uscc=body.uscc))


@router.get("/inspection-ratios", response_model=RatiosOut, summary="抽查比例：规则、本市设置与现行比例")
def get_ratios(_: InspectionReader, conn: ReadConn) -> Any:
    """各信用类别的默认、下限、一般事项上限与现行比例，以及本市的设置。"""
    return _ratios_out(ratio_overview(conn))


@router.put("/inspection-ratios", response_model=RatiosOut, summary="设置本市的一条抽查比例")
def put_ratio(principal: CreditRecomputer, conn: WriteConn, body: RatioIn) -> Any:
    """比例超出 (0, 1]、低于下限或一般事项高于上限时为 422；成功后返回全部比例。"""
    set_ratio(
        conn,
        item_code=body.item_code,
        credit_class=body.credit_class,
        ratio=body.ratio,
        source=body.source,
        actor=principal.audit_name,
    )
    return _ratios_out(ratio_overview(conn))


@router.delete(
    "/inspection-ratios/{item_code}/{credit_class}",
    response_model=RatiosOut,
    summary="删除本市的一条抽查比例设置（恢复为全部事项的设置或默认）",
)
def delete_ratio(
    _: CreditRecomputer,
    conn: WriteConn,
    item_code: Annotated[str, Path(min_length=1, max_length=48, description="检查事项编码；* 为全部事项")],
    credit_class: Annotated[CreditClass, Path(description="信用类别")],
) -> Any:
    """没有这条设置时为 404；成功后返回全部比例。"""
    if not clear_ratio(conn, item_code, credit_class):
        label = "全部事项" if item_code == "*" else f"事项 {item_code}"
        raise PlanNotFound(f"本市没有{label}的 {credit_class} 类比例设置", reason="ratio_setting_not_found")
    return _ratios_out(ratio_overview(conn))
