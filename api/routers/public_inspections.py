"""api.routers.public_inspections: 公开：抽查计划的承诺、摇号结果、候选名单与检查结果公示（无需凭证）.

Everything an outside auditor needs to recompute a draw (docs/INSPECTIONS.md, tools/verify_draw.py), and nothing
more: never a credit class, an inspector or a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.deps import read_connection
from api.errors import error_body
from planning import inspection_plans

router = APIRouter(tags=["双随机抽查"])

PublicConn = Annotated[Connection, Depends(read_connection, scope="function")]
PlanId = Annotated[int, Path(ge=1, le=2**62, description="抽查计划编号")]


class PublicPlanSummary(BaseModel):
    """公开目录中的一项抽查计划。"""

    id: int = Field(description="计划编号")
    title: str = Field(description="计划名称")
    departments: list[str] = Field(description="部门编码")
    status: str = Field(description="状态：committed 已公布承诺、drawn 已摇号、cancelled 已撤销")
    created_at: datetime = Field(description="建立（公布承诺）时间")
    public_value_source: str = Field(description="公开随机数的来源")
    public_value_at: datetime = Field(description="公开随机数的公布时间")
    public_value_announced: bool = Field(
        description="公开随机数是否事先公布（否：摇号时当场给出，复核时应核实其来源，事先公布的更可信）"
    )
    drawn_at: datetime | None = Field(description="摇号时间")
    cancelled_at: datetime | None = Field(description="撤销时间")


class PublicPlanList(BaseModel):
    """全部抽查计划（新的在前）。"""

    items: list[PublicPlanSummary]


class PublicItem(BaseModel):
    """抽查事项。"""

    code: str = Field(description="事项编码")
    name: str = Field(description="事项名称")
    department: str = Field(description="部门编码")


class PublicStratum(BaseModel):
    """一个分层：公开编号、候选户数、比例、应抽户数与抽中的统一社会信用代码（不含信用类别）。"""

    id: str = Field(description="分层编号（事项编码/随机串）")
    size: int = Field(description="候选户数")
    ratio: float = Field(
        description="抽查比例（至多 5 位小数；按其十进制文本精确计算 ⌈比例 × 户数⌉，勿用二进制浮点相乘）"
    )
    n: int = Field(description="应抽户数 ⌈比例 × 候选户数⌉")
    selected: list[str] = Field(description="抽中的统一社会信用代码（摇号前为空）")


class PublicResultItem(BaseModel):
    """一项检查结果。"""

    code: str = Field(description="事项编码")
    name: str = Field(description="事项名称")
    outcome: str = Field(description="结果代码：ok、problem、not_found")
    outcome_zh: str = Field(description="结果")


class PublicResult(BaseModel):
    """一户已公示的检查结果（只含名称、代码、事项与结果）。"""

    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="市场主体名称")
    items: list[PublicResultItem]
    published_at: datetime = Field(description="公示时间")


class PublicPlan(PublicPlanSummary):
    """可供任何人复核的抽查计划：承诺、公开随机数、服务器种子、种子、候选名单摘要与各分层的抽取结果。"""

    cancel_reason: str | None = Field(description="撤销原因")
    items: list[PublicItem]
    commitment: str = Field(description="承诺：SHA-256(服务器种子的 32 字节)，十六进制")
    public_value: str | None = Field(description="摇号所用的公开随机数（摇号前为空）")
    server_seed: str | None = Field(description="服务器种子，十六进制（摇号前为空）")
    seed: str | None = Field(description="种子 SHA-256(服务器种子 ‖ 公开随机数的 UTF-8 字节)，十六进制（摇号前为空）")
    candidates_sha256: str = Field(description="候选名单 candidates.csv 的 SHA-256")
    candidate_count: int = Field(description="候选名单行数")
    strata: list[PublicStratum]
    results: list[PublicResult]


@router.get("/inspections", response_model=PublicPlanList, summary="公开：全部抽查计划")
def get_public_plans(conn: PublicConn) -> Any:
    """公开目录：每项计划的名称、部门、状态与时间（已撤销的也保留）。"""
    return {"items": inspection_plans.public_list(conn)}


@router.get(
    "/inspections/{plan_id:int}",
    response_model=PublicPlan,
    summary="公开：抽查计划的承诺、摇号与结果",
    responses={404: {"description": "没有该抽查计划"}},
)
def get_public_plan(plan_id: PlanId, conn: PublicConn) -> Any:
    """任何人可据此与候选名单复核抽取结果（算法见 docs/INSPECTIONS.md）；不含信用类别，不含执法人员。"""
    return inspection_plans.public_view(conn, plan_id)


@router.get(
    "/inspections/{plan_id:int}/candidates.csv",
    summary="公开：候选名单（stratum_id,uscc），其 SHA-256 即 candidates_sha256",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}},
        404: {"description": "没有该抽查计划"},
        410: {"description": "计划已撤销，候选名单已撤回（承诺与撤销原因仍在计划的公开页面上）"},
    },
)
def get_public_candidates(plan_id: PlanId, conn: PublicConn) -> Response:
    """按 (stratum_id, uscc) 排序、LF 换行、UTF-8 无 BOM 的原始字节；已撤销的计划不再提供（410）。"""
    try:
        data = inspection_plans.public_candidates_csv(conn, plan_id)
    except inspection_plans.PlanWithdrawn as exc:
        # Gone, not a conflict: the list existed and is withdrawn for good (a cancelled plan is never drawn).
        return JSONResponse({**error_body("gone", str(exc)), "reason": exc.reason}, status_code=410)
    return Response(
        content=data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inspection-{plan_id}-candidates.csv"'},
    )
