"""api.routers.aliases: the geocoder's learned aliases: list, trace, promote and withdraw (issue 17, part E).

An alias is taught by a dispatcher's resolution of a review item and answers only within its community until the
command centre, or a second independent resolution, promotes it to the whole city (address_library.match: the
alias rule). A withdrawal takes effect at once in this process and within the geocoder's fingerprint check
elsewhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from address_library.live import LiveGeocoder
from address_library.repository import AliasEntry
from api.auth.roles import Principal
from api.deps import CurrentScope, Cursor, DbEngine, Limit, ReadConn, actor_of, allowed
from api.input_guard import FREE_TEXT_PATTERN, ONE_LINE_PATTERN
from grids.codes import COMMUNITY_PATTERN
from supervision.aliases import (
    MAX_REASON_CHARS,
    AliasFilters,
    AliasScope,
    AliasState,
    AliasTrace,
    AliasView,
    alias_trace,
    list_aliases,
    promote,
    withdraw,
)
from supervision.paging import Page
from supervision.permissions import Capability

router = APIRouter(tags=["标准地址"])
AliasReader = Annotated[Principal, Depends(allowed(Capability.ALIAS_READ))]
AliasWithdrawer = Annotated[Principal, Depends(allowed(Capability.ALIAS_WITHDRAW))]
AliasPromoter = Annotated[Principal, Depends(allowed(Capability.ALIAS_PROMOTE))]
AliasId = Annotated[int, Path(ge=1, le=2**63 - 1, description="别名编号")]


class ReasonBody(BaseModel):
    """升为全市或撤销的理由（必填，记入别名的来历）。"""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=FREE_TEXT_PATTERN, description="理由")


def _filters(
    state: Annotated[AliasState | None, Query(description="active / suspended / withdrawn")] = None,
    scope: Annotated[AliasScope | None, Query(description="community / city")] = None,
    community: Annotated[
        str | None, Query(pattern=COMMUNITY_PATTERN.pattern, description="教会它的村（社区）编码")
    ] = None,
    text: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=ONE_LINE_PATTERN, description="原文（规范化）包含")
    ] = None,
    taught_by: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=ONE_LINE_PATTERN, description="教会它的账号")
    ] = None,
) -> AliasFilters:
    return AliasFilters(state=state, scope=scope, community=community, text=text, taught_by=taught_by)


Filters = Annotated[AliasFilters, Depends(_filters)]


@router.get(
    "/aliases",
    response_model=Page[AliasView],
    summary="地理编码学到的别名（本账号范围内）",
    responses={403: {"description": "无权查看别名"}},
)
def get_aliases(
    _: AliasReader, scope: CurrentScope, conn: ReadConn, filters: Filters, limit: Limit = 50, cursor: Cursor = None
) -> Page[AliasView]:
    """调度员看本村（社区）的，镇街领导看本镇街的，指挥中心看全部；按状态、范围、村（社区）、原文、教会者筛选，最近变动的在前。"""
    return list_aliases(conn, scope, filters, limit=limit, cursor=cursor)


@router.get(
    "/aliases/{alias_id}",
    response_model=AliasTrace,
    summary="一条别名的来历",
    responses={403: {"description": "不在本辖区内"}, 404: {"description": "没有这条别名"}},
)
def get_alias(alias_id: AliasId, _: AliasReader, scope: CurrentScope, conn: ReadConn) -> AliasTrace:
    """谁教会、何时、来自哪条待核登记，之后每次处理是确认还是冲突，谁升为全市、谁撤销及理由。"""
    return alias_trace(conn, alias_id, scope)


def _tell_geocoder(request: Request, trace: AliasTrace) -> None:
    """This process's geocoder uses the alias as it now stands, at once (the others at their next check)."""
    live: LiveGeocoder = request.app.state.geocoder
    alias = trace.alias
    if alias.state == "active":
        live.learn_alias(
            AliasEntry(alias.id, alias.normalized_text, alias.address_id, alias.scope, alias.community_code)
        )
    else:
        live.forget_alias(alias.id)


@router.post(
    "/aliases/{alias_id}/promote",
    response_model=AliasTrace,
    summary="别名升为全市通用（指挥中心）",
    responses={
        403: {"description": "无权升级别名"},
        404: {"description": "没有这条别名"},
        422: {"description": "未给理由，或别名已撤销"},
    },
)
def post_promote(
    request: Request, alias_id: AliasId, body: ReasonBody, principal: AliasPromoter, db: DbEngine
) -> AliasTrace:
    """全市任何不与之矛盾的查询都用这条别名；冲突暂停的别名恢复使用（指向其原地址）。"""
    with db.begin() as conn:
        trace = promote(conn, alias_id, actor=actor_of(principal), reason=body.reason)
    _tell_geocoder(request, trace)
    return trace


@router.post(
    "/aliases/{alias_id}/withdraw",
    response_model=AliasTrace,
    summary="撤销一条别名",
    responses={
        403: {"description": "无权撤销，或别名不在本村（社区）且不是本人教会的"},
        404: {"description": "没有这条别名"},
        422: {"description": "未给理由，或已撤销"},
    },
)
def post_withdraw(
    request: Request, alias_id: AliasId, body: ReasonBody, principal: AliasWithdrawer, db: DbEngine
) -> AliasTrace:
    """撤销后地理编码立即不再使用（本进程立即，其他进程在下次检查时）；记录保留，可再由新的处理重新教会。"""
    with db.begin() as conn:
        trace = withdraw(conn, alias_id, actor=actor_of(principal), reason=body.reason)
    _tell_geocoder(request, trace)
    return trace
