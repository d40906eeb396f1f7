"""api.routers.inspection_results: 检查结果 — record a result per item of a drawn visit, read a visit with its team and
results, publish a plan's results before they fall due (credential required; the public face is the notice page)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, WriteConn, actor_of, allowed
from planning import inspection_results
from supervision.permissions import Capability

router = APIRouter(tags=["双随机抽查"])

InspectionReader = Annotated[Principal, Depends(allowed(Capability.INSPECTION_READ))]
ResultRecorder = Annotated[Principal, Depends(allowed(Capability.INSPECTION_RESULT))]
VisitId = Annotated[int, Path(ge=1, le=2**62, description="检查户编号")]
PlanId = Annotated[int, Path(ge=1, le=2**62, description="抽查计划编号")]


class ResultIn(BaseModel):
    """一个抽查事项的检查结果。"""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=48, description="抽查事项编码（须是该户抽中的事项）")
    outcome: str = Field(
        min_length=1,
        max_length=12,
        description="检查结果：ok 未发现问题；problem 发现问题（已责令整改）；not_found 通过登记的住所无法联系",
    )
    note: str = Field(default="", max_length=inspection_results.NOTE_MAX, description="检查备注（内部，不公示）")


class ResultOut(BaseModel):
    """一个事项的检查结果（内部）。"""

    id: int = Field(description="结果编号")
    visit_id: int = Field(description="检查户编号")
    plan_id: int = Field(description="抽查计划编号")
    uscc: str = Field(description="统一社会信用代码")
    item_code: str = Field(description="抽查事项编码")
    item_name: str = Field(description="抽查事项名称")
    department_code: str = Field(description="事项所属部门")
    outcome: str = Field(description="检查结果：ok、problem、not_found")
    outcome_zh: str = Field(description="检查结果（中文）")
    note: str = Field(description="检查备注（内部，不公示）")
    recorded_by: str = Field(description="录入人")
    recorded_at: datetime = Field(description="录入时间")
    publish_due: date = Field(description="最迟公示日期（录入之日起若干个工作日）")
    published_at: datetime | None = Field(description="公示时间；未公示为空")
    task_id: int | None = Field(description="由此产生的网格任务（整改复查或地址核查）")
    visit_status: str = Field(description="检查户状态：planned 待检查，done 各事项均已有结果")


class InspectorOut(BaseModel):
    """检查组的一名执法人员。"""

    id: int = Field(description="执法人员编号")
    code: str = Field(description="执法证号")
    name: str = Field(description="姓名")
    department: str = Field(description="所属部门")


class TeamOut(BaseModel):
    """负责该户的检查组。"""

    id: int = Field(description="检查组编号")
    team_no: int = Field(description="组号")
    departments: list[str] = Field(description="检查组涵盖的部门")
    inspectors: list[InspectorOut] = Field(description="组员")


class VisitItemOut(BaseModel):
    """该户抽中的一个事项及其结果。"""

    code: str = Field(description="抽查事项编码")
    name: str = Field(description="抽查事项名称")
    department: str | None = Field(description="事项所属部门")
    result: ResultOut | None = Field(description="检查结果；尚未录入为空")


class VisitOut(BaseModel):
    """一户检查对象：主体、抽中的事项与结果、检查组。"""

    id: int = Field(description="检查户编号")
    plan_id: int = Field(description="抽查计划编号")
    plan_title: str = Field(description="抽查计划名称")
    plan_status: str = Field(description="计划状态：committed、drawn、cancelled")
    uscc: str = Field(description="统一社会信用代码")
    name: str = Field(description="主体名称")
    address: str | None = Field(description="登记住所")
    town_code: str | None = Field(description="镇街编码")
    grid_code: str | None = Field(description="网格编码")
    lon: float | None = Field(description="经度")
    lat: float | None = Field(description="纬度")
    departments: list[str] = Field(description="该户涉及的部门（联合检查时多个）")
    status: str = Field(description="planned 待检查，done 已完成")
    unmatched_reason: str | None = Field(description="未能匹配检查组的原因")
    items: list[VisitItemOut] = Field(description="抽中的事项及结果")
    team: TeamOut | None = Field(description="检查组；未匹配为空")


class PublishOut(BaseModel):
    """提前公示的结果。"""

    plan_id: int = Field(description="抽查计划编号")
    published: int = Field(description="本次公示的事项结果条数")


@router.post(
    "/inspection-visits/{visit_id}/results",
    response_model=ResultOut,
    status_code=201,
    summary="录入一个抽查事项的检查结果",
    responses={
        403: {"description": "无权录入：部门人员只能录入本部门事项"},
        404: {"description": "没有该检查户"},
        409: {"description": "计划尚未摇号或已撤销、该户未匹配检查组，或该事项已录入不同的结果（已公示的更不能改）"},
        422: {"description": "检查结果或事项不合要求"},
    },
)
def post_result(
    visit_id: VisitId, principal: ResultRecorder, scope: CurrentScope, conn: WriteConn, body: ResultIn
) -> Any:
    """发现问题的，记入信用记录并为主体所在网格生成整改复查任务；查无下落的，记入信用记录并生成地址核查任务。
    同一结果重复提交不重复记录；结果一经录入不可更改。"""
    view = inspection_results.record_result(
        conn,
        visit_id,
        item_code=body.item_code,
        outcome=body.outcome,
        note=body.note,
        actor=actor_of(principal).name,
        scope=scope,
    )
    return asdict(view)


@router.get(
    "/inspection-visits/{visit_id}",
    response_model=VisitOut,
    summary="检查户详情：事项、结果与检查组",
    responses={403: {"description": "该户所属计划不在本账号范围内"}, 404: {"description": "没有该检查户"}},
)
def get_visit(visit_id: VisitId, _: InspectionReader, scope: CurrentScope, conn: ReadConn) -> Any:
    """指挥中心看全部；部门人员看含本部门的计划；镇街领导看涉及本镇街的计划。"""
    view = inspection_results.visit_view(conn, visit_id, scope)
    view["items"] = [
        {**item, "result": asdict(item["result"]) if item["result"] is not None else None} for item in view["items"]
    ]
    return view


@router.post(
    "/inspection-plans/{plan_id}/publish",
    response_model=PublishOut,
    summary="提前公示一个计划已录入的检查结果",
    responses={
        403: {"description": "该计划不含本部门（部门人员只公示本部门事项的结果）"},
        404: {"description": "没有该抽查计划"},
        409: {"description": "计划尚未摇号或已撤销"},
    },
)
def post_publish(plan_id: PlanId, principal: ResultRecorder, scope: CurrentScope, conn: WriteConn) -> Any:
    """结果默认在录入后若干个工作日（计划设定，默认 20）自动公示；此处可提前公示。"""
    published = inspection_results.publish_plan(conn, plan_id, actor=actor_of(principal).name, scope=scope)
    return {"plan_id": plan_id, "published": published}
