"""api.routers.inspection_directory: 一单两库 — inspection items, inspectors and the target directory, with CSV
import and export (issue 16).

Item lists are public policy: whoever may read plans reads every department's items. Inspectors and the target
directory's credit codes belong to the departments: an officer sees and imports their own department's rows only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from starlette.datastructures import UploadFile

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, WriteConn, allowed
from api.errors import InvalidRequest
from api.input_guard import form_problem
from planning.directory import targets_csv, to_utf8
from planning.directory_service import (
    ImportSummary,
    department_codes,
    export_inspectors,
    export_items,
    import_inspectors,
    import_items,
    item_departments,
    list_inspectors,
    list_items,
    target_counts,
    target_entity_count,
    target_export_rows,
)
from planning.errors import InvalidPlan
from supervision.errors import OutOfScope
from supervision.permissions import Capability
from supervision.routing import default_router
from supervision.scope import Scope

router = APIRouter(tags=["双随机抽查"])

PlanReader = Annotated[Principal, Depends(allowed(Capability.INSPECTION_READ))]
DirectoryKeeper = Annotated[Principal, Depends(allowed(Capability.INSPECTION_DIRECTORY))]
Department = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_]+$", description="部门编码；缺省为全部")]
MAX_CSV_BYTES = 5 * 1024 * 1024
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8（带 BOM）CSV，英文列名"}
}
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        "description": "CSV 文件（UTF-8，可带 BOM；或 GB18030），至多 5 MB",
    }
}


class ItemOut(BaseModel):
    """一个抽查事项（检查事项清单的一行）。"""

    code: str = Field(description="事项编号，如 market_supervision-01")
    department_code: str = Field(description="部门编码")
    department_name: str = Field(description="部门名称")
    name: str = Field(description="事项名称")
    basis: str = Field(description="检查依据（法律法规条款）")
    key: bool = Field(description="是否重点检查事项（重点事项抽查比例不设上限）")
    entity_kinds: list[str] = Field(description="适用的主体类型：company 企业、individual 个体工商户")
    industries: list[str] = Field(description="适用的行业词（主体行业包含其一即适用）；空为全部行业")
    licence_only: bool = Field(description="是否仅适用于经营范围需许可的主体")
    service_minutes: int = Field(description="每户检查用时（分钟，假设值）")
    source: str = Field(description="事项名称出处（公布的清单及版本，或 assumption: 说明）")
    active: bool = Field(description="是否在用（停用的事项不再进入抽查）")
    updated_at: datetime = Field(description="最后修改时间")


class ItemsOut(BaseModel):
    """抽查事项清单。"""

    items: list[ItemOut] = Field(description="事项，按编号排序")
    total: int = Field(description="事项数")


class InspectorOut(BaseModel):
    """一名执法检查人员（检查人员名录的一行）。"""

    id: int = Field(description="人员编号（系统内）")
    code: str = Field(description="执法证号")
    department_code: str = Field(description="部门编码")
    name: str = Field(description="姓名")
    qualifications: list[str] = Field(description="可检查的事项编号")
    home_grid_code: str | None = Field(description="居住地网格（回避：不派往本人居住网格）")
    office_name: str = Field(description="办公地点（出发和返回处）")
    office_lon: float = Field(description="办公地点经度（WGS84）")
    office_lat: float = Field(description="办公地点纬度（WGS84）")
    conflicts: list[str] = Field(description="申报回避的主体统一社会信用代码")
    load_cap: int | None = Field(description="每个抽查计划至多检查户数；空为计划默认值")
    active: bool = Field(description="是否在岗")
    updated_at: datetime = Field(description="最后修改时间")


class InspectorsOut(BaseModel):
    """检查人员名录。"""

    items: list[InspectorOut] = Field(description="人员，按执法证号排序")
    total: int = Field(description="人数")


class ImportOut(BaseModel):
    """一次导入的结果（全部成功才写入；同一文件再导入一次不做任何改动）。"""

    created: int = Field(description="新增行数")
    updated: int = Field(description="修改行数")
    unchanged: int = Field(description="未变行数")
    deactivated: int = Field(description="因替换而停用的行数（不删除）")
    rows: int = Field(description="文件中的行数")


class TargetCountOut(BaseModel):
    """某事项某信用等级的检查对象数。"""

    item_code: str = Field(description="事项编号")
    credit_class: str = Field(description="信用等级 A–D（内部，不公开）")
    count: int = Field(description="检查对象数")


class TargetsOut(BaseModel):
    """检查对象名录的统计：按事项 × 信用等级。"""

    town: str | None = Field(description="镇街编码；空为全市")
    items: list[str] = Field(description="所查事项编号")
    strata: list[TargetCountOut] = Field(description="各事项各等级的对象数（只列非零的）")
    per_item: dict[str, int] = Field(description="各事项的对象数")
    total: int = Field(description="对象数合计（同一主体适用多个事项时分别计）")
    entities: int = Field(description="涉及的不同主体数")


def department_names() -> dict[str, str]:
    """Department code → its Chinese name."""
    return {d.code: d.name for d in default_router().departments()}


def _summary(summary: ImportSummary) -> ImportOut:
    return ImportOut(
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        deactivated=summary.deactivated,
        rows=summary.rows,
    )


def _own_department(scope: Scope, department: str | None) -> str | None:
    """The department whose rows the caller reads or writes: an officer's own (403 for another), else as asked."""
    if scope.kind == "department":
        if department is not None and department != scope.code:
            raise OutOfScope("只能查看和维护本部门的名录")
        return scope.code
    if department is not None and department not in department_codes():
        raise InvalidPlan(f"未知的部门编码“{department}”", reason="unknown_department")
    return department


def _charset(content_type: str | None) -> str | None:
    """The charset a Content-Type header declares, if any."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip()
    return None


async def _csv_body(request: Request) -> bytes:
    """The uploaded CSV as UTF-8 (the body, or the one file of a form upload; a declared GBK/GB18030 charset read as
    such, undeclared GB18030 recognised by the parser), refused over 5 MB before it is all read."""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10, max_part_size=MAX_CSV_BYTES)
        problem = form_problem(form)  # the text fields (input_guard's one multipart check)
        if problem is not None:
            raise InvalidRequest(problem)
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise InvalidPlan("表单中没有 CSV 文件，请以文件字段上传", reason="invalid_directory")
        data = await files[0].read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise HTTPException(status_code=413, detail="文件超过 5 MB")
        content_type = files[0].content_type or ""
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_CSV_BYTES:
                raise HTTPException(status_code=413, detail="文件超过 5 MB")
            chunks.append(chunk)
        data = b"".join(chunks)
    if not data.strip():
        raise InvalidPlan("请在请求体中提交 CSV 文件", reason="invalid_directory")
    return to_utf8(data, _charset(content_type))


def _csv(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _item_codes(conn: Connection, raw: list[str] | None, department: str | None) -> list[str]:
    """The item codes asked for (repeated or comma-separated), or else the department's active items; unknown
    ones refused."""
    codes = sorted({c.strip() for value in raw or [] for c in value.split(",") if c.strip()})
    if not codes and department is not None:
        if department not in department_codes():
            raise InvalidPlan(f"未知的部门编码“{department}”", reason="unknown_department")
        codes = [i["code"] for i in list_items(conn, department)]
    if not codes:
        raise InvalidPlan("请至少指定一个检查事项（items）或一个部门（department）", reason="no_items")
    known = item_departments(conn)
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidPlan(f"未知的检查事项：{'、'.join(unknown)}", reason="unknown_item")
    return codes


def _own_items(conn: Connection, scope: Scope, items: list[str] | None, department: str | None, verb: str) -> list[str]:
    """The item codes asked for; a department officer's only of their own department (their whole list by default),
    OutOfScope for another department's: the class counts and the targets of a department are that department's."""
    if scope.kind == "department" and not items:
        department = _own_department(scope, department)
    codes = _item_codes(conn, items, department)
    if scope.kind == "department":
        departments = item_departments(conn)
        foreign = [c for c in codes if departments[c] != scope.code]
        if foreign:
            raise OutOfScope(f"只能{verb}本部门事项的检查对象：{'、'.join(foreign)} 不是本部门事项")
    return codes


Items = Annotated[
    list[str] | None, Query(description="事项编号（可重复或用逗号分隔）；缺省为所选部门的全部在用事项", max_length=100)
]
Town = Annotated[str | None, Query(pattern=r"^\d{12}$", description="镇街编码；镇街领导缺省为本镇街")]


@router.get("/inspection-items", summary="抽查事项清单")
def get_items(_: PlanReader, conn: ReadConn, department: Department = None) -> ItemsOut:
    """各部门的随机抽查事项（公开的政策清单）：依据、重点/一般、适用主体类型和行业、出处。"""
    if department is not None and department not in department_codes():
        raise InvalidPlan(f"未知的部门编码“{department}”", reason="unknown_department")
    names = department_names()
    rows = [
        ItemOut.model_validate(r | {"department_name": names.get(r["department_code"], r["department_code"])})
        for r in list_items(conn, department, include_inactive=True)
    ]
    return ItemsOut(items=rows, total=len(rows))


@router.get("/inspection-items.csv", summary="导出抽查事项清单（CSV）", response_class=Response, responses=CSV_RESPONSE)
def get_items_csv(_: PlanReader, conn: ReadConn, department: Department = None) -> Response:
    """在用事项，格式与导入相同：导出后原样导入不做任何改动。"""
    if department is not None and department not in department_codes():
        raise InvalidPlan(f"未知的部门编码“{department}”", reason="unknown_department")
    return _csv(export_items(conn, department), f"inspection-items-{department or 'all'}.csv")


@router.post("/inspection-items/import", summary="导入抽查事项清单（CSV）", openapi_extra=CSV_BODY)
async def post_items_import(
    request: Request,
    principal: DirectoryKeeper,
    scope: CurrentScope,
    conn: WriteConn,
    replace: Annotated[bool, Query(description="是否停用本部门文件中没有的事项")] = False,
) -> ImportOut:
    """按事项编号新增或修改（全部行无误才写入）；部门执法人员只能导入本部门的行，有一行属于其他部门则整个文件不导入。"""
    data = await _csv_body(request)
    department = _own_department(scope, None)
    summary = import_items(conn, data, actor=principal.audit_name, department=department, replace=replace)
    return _summary(summary)


@router.get("/inspectors", summary="检查人员名录")
def get_inspectors(
    _: DirectoryKeeper, scope: CurrentScope, conn: ReadConn, department: Department = None
) -> InspectorsOut:
    """执法检查人员：资格、居住地网格、办公地点、申报回避；部门执法人员只看本部门。"""
    rows = [InspectorOut.model_validate(r) for r in list_inspectors(conn, _own_department(scope, department))]
    return InspectorsOut(items=rows, total=len(rows))


@router.get("/inspectors.csv", summary="导出检查人员名录（CSV）", response_class=Response, responses=CSV_RESPONSE)
def get_inspectors_csv(
    _: DirectoryKeeper, scope: CurrentScope, conn: ReadConn, department: Department = None
) -> Response:
    """全部人员（离岗的 active 为“否”），格式与导入相同。"""
    own = _own_department(scope, department)
    return _csv(export_inspectors(conn, own), f"inspectors-{own or 'all'}.csv")


@router.post("/inspectors/import", summary="导入检查人员名录（CSV）", openapi_extra=CSV_BODY)
async def post_inspectors_import(
    request: Request,
    principal: DirectoryKeeper,
    scope: CurrentScope,
    conn: WriteConn,
    replace: Annotated[bool, Query(description="是否将本部门文件中没有的人员设为离岗")] = False,
) -> ImportOut:
    """按执法证号新增或修改（全部行无误才写入）：资格须为本部门已有事项，居住地网格须在现行版本中，办公地点须在市内。"""
    data = await _csv_body(request)
    department = _own_department(scope, None)
    summary = import_inspectors(conn, data, actor=principal.audit_name, department=department, replace=replace)
    return _summary(summary)


@router.get("/inspection-targets", summary="检查对象名录统计")
def get_targets(
    _: PlanReader,
    scope: CurrentScope,
    conn: ReadConn,
    items: Items = None,
    department: Department = None,
    town: Town = None,
) -> TargetsOut:
    """所选事项在镇街（或全市）内的检查对象数，按事项 × 信用等级；随登记主体实时变化。镇街领导只能看本镇街，
    部门执法人员只能看本部门事项。"""
    codes = _own_items(conn, scope, items, department, "查看")
    area = scope.map_town(town)
    counts = target_counts(conn, codes, towns=[area] if area else None)
    entities = target_entity_count(conn, codes, towns=[area] if area else None)
    per_item: dict[str, int] = {}
    for (item, _class), n in counts.items():
        per_item[item] = per_item.get(item, 0) + n
    strata = [TargetCountOut(item_code=i, credit_class=c, count=n) for (i, c), n in sorted(counts.items())]
    return TargetsOut(
        town=area, items=codes, strata=strata, per_item=per_item, total=sum(counts.values()), entities=entities
    )


@router.get(
    "/inspection-targets.csv", summary="导出检查对象名录（CSV）", response_class=Response, responses=CSV_RESPONSE
)
def get_targets_csv(
    _: DirectoryKeeper,
    scope: CurrentScope,
    conn: ReadConn,
    items: Items = None,
    department: Department = None,
    town: Town = None,
) -> Response:
    """所选事项的检查对象：事项、统一社会信用代码、名称、镇街、网格（不含信用等级）；部门执法人员只能导出本部门事项。"""
    codes = _own_items(conn, scope, items, department, "导出")
    area = scope.map_town(town)
    rows = target_export_rows(conn, codes, towns=[area] if area else None)
    return _csv(targets_csv(rows), f"inspection-targets-{area or 'city'}.csv")
