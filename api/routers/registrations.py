"""api.routers.registrations: registration events in, and the dispatchers' review queue.

An event is stored with its outbox row in one transaction, then relayed at once in the same request (so the
answer already names the tasks it pushed). If that relay fails, the row stays in the outbox and the background
relay of `gridgov serve` processes it: an accepted event is never lost.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from address_library.live import LiveGeocoder
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, Limit, ReadConn, actor_of, allowed
from supervision.events import parse_event, registration_status
from supervision.outbox import accept_events, relay_batch
from supervision.permissions import Capability
from supervision.review import ReviewItem, list_review, resolve_review

log = logging.getLogger(__name__)
router = APIRouter(tags=["登记事件与待核队列"])

Sender = Annotated[Principal, Depends(allowed(Capability.REGISTRATION_SEND))]
RegistrationReader = Annotated[Principal, Depends(allowed(Capability.REGISTRATION_READ))]
ReviewReader = Annotated[Principal, Depends(allowed(Capability.REVIEW_READ))]
Resolver = Annotated[Principal, Depends(allowed(Capability.REVIEW_RESOLVE))]


class RegistrationBody(BaseModel):
    """一条登记事件（新设、地址变更、经营范围变更、注销）。"""

    event_id: str = Field(min_length=1, max_length=64, description="事件编号，重放同一事件不会重复建任务")
    kind: Literal["new", "address_change", "scope_change", "deregistration"]
    uscc: str = Field(min_length=18, max_length=18, description="统一社会信用代码（校验 GB 32100 校验码）")
    name: str = Field(min_length=1, max_length=500)
    address: str = Field(min_length=1, max_length=500, description="登记住所（原文）")
    business_scope: str = Field(default="", max_length=500)
    occurred_at: datetime = Field(description="登记发生时间（须带时区）")


class RegistrationStatus(BaseModel):
    """事件的接收与处理情况。"""

    event_id: str
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
def post_registration(request: Request, response: Response, body: RegistrationBody, _: Sender, db: DbEngine) -> Any:
    """校验（含信用代码校验码）后入库并写入发件箱，随即处理：地理编码、落网格、建“4+2”任务并派给网格员。无法落点或有歧义的进入待核队列。"""
    event = parse_event(body.model_dump())
    with db.begin() as conn:
        accepted = accept_events(conn, [event])[0]
    if accepted.duplicate:
        response.status_code = 200
    else:
        live: LiveGeocoder = request.app.state.geocoder
        try:
            with db.begin() as conn:
                relay_batch(conn, live.get(), event_ids=[event.event_id])
        except Exception:  # the outbox keeps it: the background relay retries
            log.exception("immediate relay of %s failed; left to the background relay", event.event_id)
            jobs = getattr(request.app.state, "jobs", None)
            if jobs is not None:
                jobs.wake()
    return _status(db, event.event_id, accepted.duplicate)


@router.get("/registrations/{event_id}", response_model=RegistrationStatus, summary="查询登记事件处理情况")
def get_registration(
    event_id: Annotated[str, Path(max_length=64)], _: RegistrationReader, scope: CurrentScope, conn: ReadConn
) -> Any:
    """事件何时收到、何时处理、何时推送任务，结果与原因。"""
    return registration_status(conn, event_id, scope)


class ResolveBody(BaseModel):
    """调度员的处理：选定一个标准地址，或在地图上点一个位置。"""

    address_id: int | None = Field(default=None, ge=1, description="选定的标准地址编号（原文将学为其别名）")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)


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


@router.post("/review/{review_id}/resolve", response_model=RegistrationStatus, summary="处理一条待核登记")
def post_resolve(
    request: Request,
    review_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: ResolveBody,
    principal: Resolver,
    db: DbEngine,
) -> Any:
    """落点后流程继续（建任务、派单）；选定标准地址时，原文成为其别名，同样的原文下次直接匹配。"""
    live: LiveGeocoder = request.app.state.geocoder
    with db.begin() as conn:
        result = resolve_review(
            conn,
            review_id,
            actor=actor_of(principal),
            geocoder=live.get() if live.ready else None,
            address_id=body.address_id,
            lon=body.lon,
            lat=body.lat,
        )
    return _status(db, result.event_id)
