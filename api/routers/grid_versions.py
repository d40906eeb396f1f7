"""api.routers.grid_versions: draft grid versions for the command centre — draw, read, compare, apply, roll back,
discard (an area holds five drafts at most).

A town leader draws drafts for their own town (or one of its communities) and reads them; the command centre and
admins draw anywhere and alone may make a draft the active version or roll back (`grids.apply`: the official map).
Every route asks for one capability and checks that the caller's scope covers the draft's area; the rules live in
`planning.grid_versions`, which raises the planning refusals api/errors.py maps (422 infeasible, 409 stale draft or
wrong state, 404 unknown).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection

from api.auth.deps import optional_principal
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, ReadConn, WriteConn, allowed
from api.routers.pages import refused_page, sign_in_first, wants_html
from grids.codes import COMMUNITY_PATTERN, GRID_PATTERN, TOWN_PATTERN, is_town, within
from maps.page import render_forbidden, render_grid_version, render_grid_versions
from planning import grid_versions
from planning.errors import Infeasible, PlanNotFound
from supervision.errors import OutOfScope
from supervision.permissions import Capability
from supervision.scope import Scope

router = APIRouter(tags=["规划"])
pages_router = APIRouter(tags=["页面"])

VersionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="网格版本编号")]
VersionStatus = Literal["draft", "active", "retired"]
MAX_LOCKS = 200


class DraftRequest(BaseModel):
    """What to redraw: one community or one whole town, how many grids, which grids stay exactly as they are."""

    model_config = ConfigDict(extra="forbid")

    community: str | None = Field(
        None, pattern=COMMUNITY_PATTERN.pattern, description="村（社区）编码（12 位）；与 town 二选一"
    )
    town: str | None = Field(
        None, pattern=TOWN_PATTERN.pattern, description="镇街编码（12 位，以 000 结尾）；与 community 二选一"
    )
    grids: int | None = Field(None, ge=1, le=99, description="调整后的网格数（默认与现在相同）")
    lock: list[Annotated[str, Field(pattern=GRID_PATTERN.pattern)]] = Field(
        default_factory=list, max_length=MAX_LOCKS, description="保持不变的网格编码（编码与边界都不变）"
    )
    method: Literal["auto", "cpsat", "local"] = Field(
        "auto", description="求解方法：auto 自动，cpsat 约束求解，local 局部调整"
    )
    follow_roads: bool = Field(False, description="网格边界尽量沿道路")
    pp_floor: float | None = Field(
        None,
        ge=0,
        le=1,
        description="紧凑度（Polsby-Popper）下限；默认先取本村（社区）现有网格中最差者，无法均衡时放宽至所在镇街最差者",
    )
    tolerance: float = Field(0.10, ge=0.01, le=0.5, description="每人工作量允许偏离平均值的比例（默认 ±10%）")

    @model_validator(mode="after")
    def one_area(self) -> DraftRequest:
        """Exactly one of community and town."""
        if (self.community is None) == (self.town is None):
            raise ValueError("give exactly one of community and town (请指定一个村（社区）或一个镇街)")
        if self.community is not None and is_town(self.community):
            raise ValueError(f"community {self.community} is a town code (这是镇街编码，请用 town)")
        return self

    @property
    def area_code(self) -> str:
        """The community or town this draft redraws."""
        return self.community or self.town or ""

    @property
    def area_level(self) -> Literal["community", "town"]:
        """Whether the area is a community or a town."""
        return "community" if self.community else "town"


class GridFigures(BaseModel):
    """One grid's figures before or after a redesign."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="网格编码")
    hours: float = Field(description="工作量（小时/月）")
    workers: int = Field(description="网格员人数")
    hours_per_worker: float = Field(description="每人工作量（小时/月）")
    deviation: float = Field(description="每人工作量偏离区域平均值的比例（如 0.05 即 +5%）")
    polsby_popper: float = Field(description="紧凑度（Polsby-Popper，1 为圆）")
    area_m2: float = Field(description="面积（平方米）")
    addresses: int = Field(description="标准地址数")


class AreaOut(BaseModel):
    """The area a draft redraws."""

    code: str = Field(description="区域编码")
    level: str = Field(description="区域层级：community 或 town")
    name: str = Field(description="区域名称")


class DraftFigures(BaseModel):
    """A draft's figures before → after (planning.redesign.Figures and how the draft was asked for)."""

    model_config = ConfigDict(extra="allow")

    grids_before: list[GridFigures] = Field(description="调整前各网格")
    grids_after: list[GridFigures] = Field(description="调整后各网格")
    max_deviation_before: float = Field(description="调整前每人工作量最大偏离平均值的比例")
    max_deviation_after: float = Field(description="调整后每人工作量最大偏离平均值的比例")
    worst_pp_before: float = Field(description="调整前最差紧凑度")
    worst_pp_after: float = Field(description="调整后最差紧凑度")
    share_addresses_kept: float = Field(description="留在原网格的地址比例")
    addresses_moved: int = Field(description="改变网格的地址数")
    units_moved: int = Field(description="改变网格的基本单元数")
    codes_kept: list[str] = Field(description="保留的网格编码")
    codes_new: list[str] = Field(description="新增的网格编码")
    codes_retired: list[str] = Field(description="停用的网格编码")
    balanced: bool = Field(description="每格每人工作量是否都在允许偏差内")
    method: str = Field(description="实际使用的求解方法")
    seconds: float = Field(description="求解用时（秒）")
    mean_hours_per_worker: float = Field(0.0, description="区域平均每人工作量（小时/月）")
    tolerance: float = Field(0.10, description="允许偏差")
    pp_floor: float = Field(0.0, description="紧凑度下限")
    notes: list[str] = Field(default_factory=list, description="求解说明")
    area: AreaOut | None = Field(None, description="调整区域")
    locked: list[str] = Field(default_factory=list, description="锁定的网格编码")
    follow_roads: bool = Field(False, description="边界是否尽量沿道路")
    draw_seconds: float | None = Field(None, description="绘制草案总用时（秒）")


class VersionLinks(BaseModel):
    """Where to read the draft and see it beside the current grids."""

    self: str = Field(description="本版本（JSON）")
    comparison: str = Field(description="对比数据（GeoJSON 与指标）")
    compare_page: str = Field(description="对比页面（浏览器）")


class GridVersionOut(BaseModel):
    """One grid version: a draft, the active version or a retired one, with its figures before → after."""

    id: int = Field(description="版本编号")
    name: str | None = Field(None, description="版本名称")
    status: str = Field(description="状态：draft 草案，active 生效，retired 已停用")
    area_code: str | None = Field(description="草案调整的村（社区）或镇街编码；全市版本为空")
    area_level: str = Field(description="区域层级：community 村（社区）、town 镇街或 city 全市")
    base_version_id: int | None = Field(description="草案所依据的版本")
    figures: DraftFigures | None = Field(
        description="调整前后的指标（每人工作量、偏差、紧凑度、地址保留率、编码保留/新增/停用）；导入的全市版本为空"
    )
    created_by: str | None = Field(description="绘制人")
    created_at: datetime = Field(description="绘制（或导入）时间")
    stale: bool = Field(description="草案是否已过期（所依据的数据或版本已变化）")
    stale_reasons: list[str] = Field(description="草案过期的原因（哪些数据已变化）")
    activated_at: datetime | None = Field(description="生效时间")
    retired_at: datetime | None = Field(description="停用时间")
    links: VersionLinks


class GridVersionList(BaseModel):
    """The grid versions the caller may see, newest first."""

    items: list[GridVersionOut]


class ComparisonOut(BaseModel):
    """The draft beside the current grids: three GeoJSON FeatureCollections (WGS84) and the figures."""

    id: int = Field(description="草案版本编号")
    status: str = Field(description="草案状态")
    area: str = Field(description="调整区域编码")
    area_name: str = Field(description="调整区域名称")
    area_level: str = Field(description="区域层级：community 或 town")
    base_version_id: int = Field(description="草案所依据的版本")
    locked: list[str] = Field(description="锁定（保持不变）的网格编码")
    current: dict[str, Any] = Field(description="现行网格（FeatureCollection）")
    draft: dict[str, Any] = Field(description="草案网格（FeatureCollection）")
    moved: dict[str, Any] = Field(description="改变所属网格的区域（FeatureCollection，属性 from、to）")
    figures: DraftFigures = Field(description="调整前后的指标")


class ApplyOut(BaseModel):
    """What one apply or roll back did, in one transaction."""

    batch_id: int = Field(description="调整批次编号（审计）")
    version_id: int = Field(description="现已生效的版本")
    retired_version_id: int = Field(description="停用的版本")
    area_code: str = Field(description="迁移涉及的区域")
    moved: dict[str, int] = Field(description="各类对象移动数量：address、entity、task、clue、worker")
    seconds: float = Field(description="用时（秒）")
    links: VersionLinks


def links_for(version_id: int) -> VersionLinks:
    """The links of a version."""
    return VersionLinks(
        self=f"/v1/grid-versions/{version_id}",
        comparison=f"/v1/grid-versions/{version_id}/comparison",
        compare_page=f"/grid-versions/{version_id}",
    )


def version_out(version: grid_versions.DraftSummary) -> GridVersionOut:
    """The API's view of a planning.grid_versions.DraftSummary."""
    return GridVersionOut(
        id=version.id,
        name=version.name or None,
        status=version.status,
        area_code=version.area_code,
        area_level=version.area_level,
        base_version_id=version.base_version_id,
        # A version without a redesign's figures (the city's first, a draft stored by hand) has none to show.
        figures=DraftFigures.model_validate(version.figures) if "grids_after" in version.figures else None,
        created_by=version.created_by,
        created_at=version.created_at,
        stale=version.stale,
        stale_reasons=list(version.stale_reasons),
        activated_at=version.activated_at,
        retired_at=version.retired_at,
        links=links_for(version.id),
    )


def apply_out(result: grid_versions.ApplyResult) -> ApplyOut:
    """The API's view of a planning.grid_versions.ApplyResult."""
    return ApplyOut(
        batch_id=result.batch_id,
        version_id=result.version_id,
        retired_version_id=result.retired_version_id,
        area_code=result.area_code,
        moved={str(kind): int(count) for kind, count in result.moved.items()},
        seconds=round(float(result.seconds), 3),
        links=links_for(result.version_id),
    )


def sees_version(conn: Connection, scope: Scope, area_level: str, area_code: str | None) -> bool:
    """Whether a scope covers a version's area; a city-wide version (no area) is every reader's map."""
    if area_code is None:
        return True
    return scope.covers(conn, area_level, area_code)


def check_area(conn: Connection, scope: Scope, area_level: str, area_code: str | None) -> None:
    """OutOfScope (403) unless the scope covers the area."""
    if not sees_version(conn, scope, area_level, area_code):
        raise OutOfScope(f"{area_code} 超出您的管辖范围")


def version_in_scope(conn: Connection, scope: Scope, version_id: int) -> grid_versions.DraftSummary:
    """The version's summary, or PlanNotFound (404) / OutOfScope (403) when its area is not the caller's."""
    summary = grid_versions.summary(conn, version_id)
    check_area(conn, scope, summary.area_level, summary.area_code)
    return summary


def check_locks(request: DraftRequest) -> None:
    """Infeasible (422, reason lock_outside_area) for a lock that is no grid of the area, before anything is read."""
    outside = [code for code in request.lock if not within(code, request.area_code)]
    if outside:
        raise Infeasible(
            f"锁定的网格不在调整区域 {request.area_code} 内：{'、'.join(outside)}", reason="lock_outside_area"
        )


@router.post(
    "/grid-versions",
    status_code=201,
    response_model=GridVersionOut,
    summary="绘制网格调整草案",
    description="为一个村（社区）或镇街绘制网格调整草案（不影响现行网格）：工作量均衡、变动最小、锁定网格保持不变。",
)
def draw_draft(
    body: DraftRequest,
    scope: CurrentScope,
    conn: WriteConn,
    principal: Annotated[Principal, Depends(allowed(Capability.GRID_REDESIGN))],
) -> GridVersionOut:
    """Draw a draft for the area the caller's scope covers; the draft is written in this request's transaction."""
    check_area(conn, scope, body.area_level, body.area_code)
    check_locks(body)
    summary = grid_versions.draw(
        conn,
        community=body.community,
        town=body.town,
        k=body.grids,
        locked=tuple(body.lock),
        method=body.method,
        follow_roads=body.follow_roads,
        pp_floor=body.pp_floor,
        tolerance=body.tolerance,
        actor_name=principal.audit_name,
    )
    return version_out(summary)


@router.get("/grid-versions", response_model=GridVersionList, summary="网格版本列表")
def list_versions(
    scope: CurrentScope,
    conn: ReadConn,
    _: Annotated[Principal, Depends(allowed(Capability.WORKLOAD_READ))],
    status: Annotated[VersionStatus | None, Query(description="按状态筛选：draft、active、retired")] = None,
) -> GridVersionList:
    """The versions whose area the caller's scope covers (city-wide versions are everyone's), newest first."""
    summaries = grid_versions.versions(conn, status=status)
    return GridVersionList(
        items=[version_out(s) for s in summaries if sees_version(conn, scope, s.area_level, s.area_code)]
    )


@router.post(
    "/grid-versions/rollback",
    response_model=ApplyOut,
    summary="回退到上一网格版本",
    description="把现行版本所依据的版本恢复为生效版本（一个事务内迁回地址、主体、任务与网格员，逐条审计）。",
)
def rollback_version(
    scope: CurrentScope,
    conn: WriteConn,
    principal: Annotated[Principal, Depends(allowed(Capability.GRID_APPLY))],
) -> ApplyOut:
    """Restore the active version's base version (409 version_state when there is nothing to roll back)."""
    for active in grid_versions.versions(conn, status="active"):
        check_area(conn, scope, active.area_level, active.area_code)
    return apply_out(grid_versions.rollback(conn, actor_name=principal.audit_name))


@router.get("/grid-versions/{version_id}", response_model=GridVersionOut, summary="网格版本（草案）详情")
def read_version(
    version_id: VersionId,
    scope: CurrentScope,
    conn: ReadConn,
    _: Annotated[Principal, Depends(allowed(Capability.WORKLOAD_READ))],
) -> GridVersionOut:
    """A version's summary, figures and whether it is stale."""
    return version_out(version_in_scope(conn, scope, version_id))


@router.get(
    "/grid-versions/{version_id}/comparison",
    response_model=ComparisonOut,
    summary="草案与现行网格对比",
    description="现行网格、草案网格、改变所属网格的区域（GeoJSON，WGS84）与调整前后的指标。",
)
def read_comparison(
    version_id: VersionId,
    scope: CurrentScope,
    conn: ReadConn,
    _: Annotated[Principal, Depends(allowed(Capability.WORKLOAD_READ))],
) -> ComparisonOut:
    """The comparison of a draft with the grids it would replace."""
    version_in_scope(conn, scope, version_id)
    return ComparisonOut.model_validate(grid_versions.comparison(conn, version_id))


@router.post(
    "/grid-versions/{version_id}/apply",
    response_model=ApplyOut,
    summary="草案生效",
    description="在一个事务内使草案成为现行版本：地址、主体、未办结任务与网格员迁入新网格，逐条审计；"
    "草案已过期（409 stale_draft）或不是草案（409 version_state）时不做任何改动。",
)
def apply_version(
    version_id: VersionId,
    scope: CurrentScope,
    conn: WriteConn,
    principal: Annotated[Principal, Depends(allowed(Capability.GRID_APPLY))],
) -> ApplyOut:
    """Make the draft the active version."""
    version_in_scope(conn, scope, version_id)
    return apply_out(grid_versions.apply(conn, version_id, actor_name=principal.audit_name))


@router.delete(
    "/grid-versions/{version_id}",
    status_code=204,
    summary="删除草案",
    description="删除一份草案的网格（版本记录保留为停用，并记下删除人）；只有草案可以删除（否则 409 version_state）。",
)
def discard_version(
    version_id: VersionId,
    scope: CurrentScope,
    conn: WriteConn,
    principal: Annotated[Principal, Depends(allowed(Capability.GRID_REDESIGN))],
) -> Response:
    """Discard a draft of the caller's area."""
    version_in_scope(conn, scope, version_id)
    grid_versions.discard(conn, version_id, actor_name=principal.audit_name)
    return Response(status_code=204)


# ------------------------------------------------------------------------------------------------------------ pages


def _refused_scope(request: Request, principal: Principal) -> Response:
    """A browser outside the version's area gets the Chinese 403 page; other clients the JSON 403."""
    if wants_html(request):
        return HTMLResponse(
            render_forbidden(user=principal.name), status_code=403, headers={"Cache-Control": "no-store"}
        )
    raise OutOfScope("该网格版本超出您的管辖范围")


def _page_rights(principal: Principal) -> dict[str, bool]:
    """What the page may offer this caller: drawing drafts, making one active."""
    return {
        "canRedesign": principal.may(Capability.GRID_REDESIGN),
        "canApply": principal.may(Capability.GRID_APPLY),
    }


@pages_router.get("/grid-versions", response_class=HTMLResponse, summary="网格调整", include_in_schema=False)
def versions_page(request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """The grid versions the caller may see, and the form to draw a draft for a community or a town."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.WORKLOAD_READ):
        return refusal
    html = render_grid_versions(rights=_page_rights(principal), home=principal.area.code, user=principal.name)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@pages_router.get(
    "/grid-versions/{version_id}", response_class=HTMLResponse, summary="网格调整对比", include_in_schema=False
)
def compare_page(
    request: Request,
    version_id: VersionId,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    db: DbEngine,
) -> Response:
    """The draft beside the current grids: two synchronised maps, moved areas, the figures, and the apply button."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.WORKLOAD_READ):
        return refusal
    status = 200
    with db.connect() as conn:
        try:
            summary = grid_versions.summary(conn, version_id)
        except PlanNotFound:
            if not wants_html(request):
                raise
            # The page itself says so in Chinese (its module reads the API's 404), with the way back to the list.
            status = 404
        else:
            if not sees_version(conn, principal.area, summary.area_level, summary.area_code):
                return _refused_scope(request, principal)
    html = render_grid_version(
        request.app.state.map_settings, version_id=version_id, rights=_page_rights(principal), user=principal.name
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-cache"})
