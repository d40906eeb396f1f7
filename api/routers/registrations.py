"""api.routers.registrations: registration events in, and the dispatchers' review queue.

An event is stored with its outbox row in one transaction, then relayed at once in the same request (so the
answer already names the tasks it pushed). If that relay fails, the row stays in the outbox and the background
relay of `gridgov serve` processes it: an accepted event is never lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine

from address_library.live import LiveGeocoder
from api.auth.errors import NotAllowed
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, Limit, ReadConn, actor_of, allowed, require
from api.input_guard import FreeText, OneLine
from api.routers.addresses import NOTE_PATTERN, Lat, Lon, placement
from api.routers.live import wake_live_feed
from gis import clock
from grids.repository import place_names
from supervision.events import EventSender, check_recent, find_event, parse_event, registration_status
from supervision.export import MAX_CSV_ROWS, bounded, csv_file, review_columns
from supervision.live import recent_registrations
from supervision.outbox import accept_events, relay_batch
from supervision.permissions import Capability, Role
from supervision.review import (
    ReviewItem,
    ReviewProposal,
    list_review,
    propose_address,
    resolve_review,
    resolve_with_new_address,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["登记事件与待核队列"])

Sender = Annotated[Principal, Depends(allowed(Capability.REGISTRATION_SEND))]
RegistrationReader = Annotated[Principal, Depends(allowed(Capability.REGISTRATION_READ))]
ReviewReader = Annotated[Principal, Depends(allowed(Capability.REVIEW_READ))]
Resolver = Annotated[Principal, Depends(allowed(Capability.REVIEW_RESOLVE))]
ReviewId = Annotated[int, Path(ge=1, le=2**63 - 1, description="待核队列编号")]


class RegistrationBody(BaseModel):
    """一条登记事件（新设、地址变更、经营范围变更、注销）。"""

    # No control character in a name or an identifier (PostgreSQL text cannot hold NUL): 422 at the edge.
    event_id: OneLine = Field(min_length=1, max_length=64, description="事件编号，重放同一事件不会重复建任务")
    kind: Literal["new", "address_change", "scope_change", "deregistration"]
    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码（校验 GB 32100 校验码）")
    name: OneLine = Field(min_length=1, max_length=500)
    address: FreeText = Field(min_length=1, max_length=500, description="登记住所（原文）")
    business_scope: FreeText = Field(default="", max_length=500)
    occurred_at: datetime = Field(description="登记发生时间（须带时区）")


class RegistrationStatus(BaseModel):
    """事件的接收与处理情况；event_id 为发送方自己的事件编号，sender 为发送方（key#12、user#5，平台自身为 system）。"""

    event_id: str
    sender: str
    duplicate: bool = False
    kind: str
    uscc: str
    outcome: str
    reason: str | None
    received_at: datetime
    processed_at: datetime | None
    pushed_at: datetime | None
    town_code: str | None
    task_ids: list[int]
    review_id: int | None = None


def _status(db: Engine, event_id: str, duplicate: bool = False) -> dict[str, Any]:
    with db.connect() as conn:
        return {**registration_status(conn, event_id), "duplicate": duplicate}


@router.post(
    "/registrations",
    response_model=RegistrationStatus,
    status_code=201,
    summary="接收一条登记事件",
    responses={
        200: {"description": "重放：该事件已收到，未新建任何内容"},
        409: {"description": "同一事件编号内容不同"},
    },
)
def post_registration(
    request: Request, response: Response, body: RegistrationBody, principal: Sender, db: DbEngine
) -> Any:
    """校验（含信用代码校验码）后入库并写入发件箱，随即处理：地理编码、落网格、建“4+2”任务并派给网格员。无法落点或有歧义的进入待核队列。

    事件记下发送方（密钥或账号），其引起的任务新建、撤销、移动都以发送方记入审计；事件编号按发送方各自唯一。
    限定了事件类型的密钥发送其他类型：403；occurred_at 早于 30 天前（GRIDGOV_REGISTRATION_MAX_AGE_DAYS）或晚于现在 5 分钟以上：422。
    """
    if principal.event_kinds is not None and body.kind not in principal.event_kinds:
        allowed_kinds = ", ".join(sorted(principal.event_kinds)) or "none"
        raise NotAllowed(f"this credential may not send {body.kind} events (it may send: {allowed_kinds})")
    event = check_recent(parse_event(body.model_dump()))
    sender = EventSender(principal.owner, principal.audit_name)
    with db.begin() as conn:
        accepted = accept_events(conn, [event], sender=sender)[0]
    if accepted.duplicate:
        response.status_code = 200
    else:
        live: LiveGeocoder = request.app.state.geocoder
        try:
            with db.begin() as conn:
                relay_batch(conn, live.get(), event_ids=[accepted.event_id])
        except Exception:  # the outbox keeps it: the background relay retries
            log.exception("immediate relay of %s failed; left to the background relay", accepted.event_id)
            jobs = getattr(request.app.state, "jobs", None)
            if jobs is not None:
                jobs.wake()
        wake_live_feed(request)
    return _status(db, accepted.event_id, accepted.duplicate)


@router.get(
    "/registrations/recent",
    summary="近时段已落网格的登记（GeoJSON 点）",
    responses={200: {"content": {"application/geo+json": {}}}},
)
def get_recent_registrations(
    _: Annotated[Principal, Depends(allowed(Capability.TASK_READ))],
    scope: CurrentScope,
    conn: ReadConn,
    minutes: Annotated[int, Query(ge=1, le=1440, description="最近多少分钟（1–1440）")] = 60,
) -> JSONResponse:
    """最近 minutes 分钟内处理并落网格的登记，点位为市场主体位置（WGS84），属性 event_id、kind、name、address、grid_code、at；按本账号范围过滤。

    与任务图层同一权限（task.read）：登记系统的接口密钥只能查询自己发送的事件，不能看全市的主体分布。"""
    until = clock.now()
    collection = recent_registrations(conn, scope, since=until - timedelta(minutes=minutes), until=until)
    return JSONResponse(collection, media_type="application/geo+json")


def reads_own_events_only(principal: Principal) -> bool:
    """Whether the principal reads back only the events it sent: every API key, and every api_client account."""
    return principal.kind == "api_key" or principal.role == Role.API_CLIENT


@router.get(
    "/registrations/{event_id}",
    response_model=RegistrationStatus,
    summary="查询登记事件处理情况",
    responses={
        403: {"description": "该事件不在本账号范围内"},
        404: {"description": "没有该事件（密钥与接口账号只查得到自己发送的事件）"},
        422: {"description": "多个发送方用了同一事件编号：请以 sender 指明"},
    },
)
def get_registration(
    event_id: Annotated[str, Path(max_length=64)],
    principal: RegistrationReader,
    scope: CurrentScope,
    conn: ReadConn,
    sender: Annotated[
        str | None,
        Query(
            max_length=80,
            pattern=r"^(system|(key|user)#[0-9]{1,19})$",
            description="发送方（key#12、user#5、system）；指挥中心等查询时用于区分同号事件",
        ),
    ] = None,
) -> Any:
    """事件何时收到、何时处理、何时推送任务，结果与原因。

    接口密钥与接口账号只查得到自己发送的事件；部门人员只查得到其任务移交本部门的事件；镇街、村（社区）与网格员只查本辖区；
    指挥中心与管理员查全市。"""
    own = principal.owner if reads_own_events_only(principal) else sender
    return registration_status(conn, find_event(conn, event_id, sender=own), scope)


# One component of an address: short text without control characters.
Component = Annotated[str | None, Field(max_length=100, pattern=NOTE_PATTERN)]


class AddressComponents(BaseModel):
    """新标准地址的要素（由原文解析预填，调度员可修改）；标准全文按固定顺序由它们组成。"""

    model_config = ConfigDict(extra="forbid")

    town: Component = Field(default=None, description="镇街全称", examples=["长安镇"])
    community: Component = Field(default=None, description="村（社区），无道路时写入全文")
    village: Component = Field(default=None, description="自然村 / 坊")
    park: Component = Field(default=None, description="工业区")
    road: Component = Field(default=None, description="道路", examples=["长青路"])
    lane: Component = Field(default=None, description="巷")
    door_no: Component = Field(default=None, description="门牌号（不含“号”）", examples=["12"])
    sub_no: Component = Field(default=None, description="附号（12-1号的 1）")
    compound: Component = Field(default=None, description="小区 / 市场")
    phase: Component = Field(default=None, description="期")
    building: Component = Field(default=None, description="楼栋，如 3栋")
    unit: Component = Field(default=None, description="单元")
    floor: Component = Field(default=None, description="楼层，如 3楼")
    room: Component = Field(default=None, description="房间，如 302室")
    stall: Component = Field(default=None, description="档口 / 铺位")


class NewAddressBody(BaseModel):
    """把这条登记的地址加入标准地址库：地图上点选的位置与地址要素。"""

    model_config = ConfigDict(extra="forbid")

    lon: Lon
    lat: Lat
    components: AddressComponents


class ResolveBody(BaseModel):
    """调度员的处理：选定一个标准地址，或在地图上点一个位置，或把地址加入标准地址库（三者选一）。"""

    model_config = ConfigDict(extra="forbid")

    address_id: int | None = Field(default=None, ge=1, description="选定的标准地址编号（原文将学为其别名）")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    add_address: NewAddressBody | None = Field(
        default=None, description="加入标准地址库并以之落点（须有 review.add_address 权限，点位须在本辖区内）"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ResolveBody:
        if self.add_address is not None and (
            self.address_id is not None or self.lon is not None or self.lat is not None
        ):
            raise ValueError("add_address comes alone, without address_id, lon or lat")
        return self


class AddedAddress(BaseModel):
    """为这条登记新增的标准地址。"""

    id: int
    full_text: str
    level: str
    parent_id: int | None
    lon: float
    lat: float
    grid_code: str | None
    community_code: str
    town_code: str


class Resolution(RegistrationStatus):
    """处理后的登记情况；加入标准地址库时附新地址。"""

    added_address: AddedAddress | None = None


class ReviewQueue(BaseModel):
    """待核队列（旧的在前）；total 为本页条数。"""

    items: list[ReviewItem]
    total: int


@router.get("/review", response_model=ReviewQueue, summary="待核队列（无法落点或有歧义的登记）")
def get_review(
    _: ReviewReader,
    scope: CurrentScope,
    conn: ReadConn,
    include_resolved: Annotated[bool, Query()] = False,
    limit: Limit = 100,
) -> ReviewQueue:
    """本辖区内待调度员处理的登记，含原因与候选标准地址。"""
    items = list_review(
        conn,
        scope=scope,
        open_only=not include_resolved,
        limit=limit,
    )
    return ReviewQueue(items=items, total=len(items))


@router.get(
    "/review.csv",
    summary="导出待核队列（CSV）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8（带 BOM）CSV，中文表头"}},
)
def get_review_csv(
    _: ReviewReader,
    scope: CurrentScope,
    conn: ReadConn,
    include_resolved: Annotated[bool, Query()] = False,
) -> Response:
    """与待核队列同样的范围（至多 10000 行），UTF-8 带 BOM，中文表头。"""
    items = bounded(list_review(conn, scope=scope, open_only=not include_resolved, limit=MAX_CSV_ROWS + 1))
    towns, communities = place_names(conn)
    doc = csv_file(review_columns(towns, communities), items, "待核队列", "review")
    return Response(doc.body, media_type=doc.media_type, headers=doc.headers)


@router.get(
    "/review/{review_id}/proposal",
    response_model=ReviewProposal,
    summary="待核登记拟加入标准地址库的地址（预填）",
    responses={403: {"description": "该条不在本辖区内"}, 404: {"description": "没有这条待核登记"}},
)
def get_proposal(request: Request, review_id: ReviewId, _: ReviewReader, scope: CurrentScope, conn: ReadConn) -> Any:
    """原文解析出的地址要素、按要素将得到的标准全文（库中已有时给出该地址）、地理编码的粗略落点，供表单与地图预填。"""
    live: LiveGeocoder = request.app.state.geocoder
    return propose_address(conn, review_id, scope=scope, geocoder=live.get())


@router.post(
    "/review/{review_id}/resolve",
    response_model=Resolution,
    summary="处理一条待核登记",
    responses={
        403: {"description": "无权处理、该条不在本辖区内，或无权新增标准地址"},
        409: {"description": "已处理过；或新地址的标准全文库中已有（附 address_id、standard_address）"},
        422: {"description": "请求无效、点位不在本辖区或任何网格内、地址要素不成标准地址（附 rejections 原因）"},
    },
)
def post_resolve(
    request: Request,
    review_id: ReviewId,
    body: ResolveBody,
    principal: Resolver,
    db: DbEngine,
) -> Any:
    """落点后流程继续（建任务、派单）；选定标准地址时，原文成为其别名，同样的原文下次直接匹配。

    add_address：在同一事务中新增标准地址（网格、村（社区）由点位确定，级别由要素确定，记入地址历史），以之落点，
    原文成为其别名；正在运行的地理编码随即认得这个地址。
    """
    live: LiveGeocoder = request.app.state.geocoder
    actor = actor_of(principal)
    geocoder = live.get() if live.ready else None
    if body.add_address is not None:
        require(principal, Capability.REVIEW_ADD_ADDRESS)
        new = body.add_address
        with db.begin() as conn:
            added = resolve_with_new_address(
                conn, review_id, actor=actor, placement=placement(request, conn),
                components=new.components.model_dump(), lon=new.lon, lat=new.lat, geocoder=geocoder,
            )  # fmt: skip
        live.learn_address(added.address, alias=added.alias)
        wake_live_feed(request)
        return {**_status(db, added.result.event_id), "added_address": added.address}
    with db.begin() as conn:
        result = resolve_review(
            conn,
            review_id,
            actor=actor,
            geocoder=geocoder,
            address_id=body.address_id,
            lon=body.lon,
            lat=body.lat,
        )
    wake_live_feed(request)
    return _status(db, result.event_id)
