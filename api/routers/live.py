"""api.routers.live: server-sent events of registrations, task moves and clues, scoped by credential.

The app has one feed (supervision.live.LiveFeed on `app.state.live_feed`, made on the first request); each stream
is one subscriber of it. The last hour's registrations as GeoJSON are GET /v1/registrations/recent
(api.routers.registrations, beside the other registration routes).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.auth.errors import NotAllowed
from api.deps import CurrentPrincipal, engine
from supervision.live import LiveEvent, LiveFeed, Subscription, TooManyStreams
from supervision.permissions import Capability

router = APIRouter(tags=["实时"])
RETRY_MS = 3000
# Said just before the server ends a stream on purpose (its time is up, or the client fell behind), so that the
# browser reconnects at once rather than after RETRY_MS.
RECONNECT_MS = 250
_FEED_LOCK = threading.Lock()
# What each kind of event needs: tasks and clues their read capability, a registration waiting for review the
# review queue's; a placed registration is for anyone who may read registrations.
_AUDIENCE_CAPABILITY = {
    "task": Capability.TASK_READ,
    "clue": Capability.CLUE_READ,
    "registration": Capability.REGISTRATION_READ,
    "review": Capability.REVIEW_READ,
}
_STREAM_CAPABILITIES = (Capability.TASK_READ, Capability.CLUE_READ, Capability.REVIEW_READ)
LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", pattern=r"^\d{1,20}$", description="断线重连时浏览器自动带上的最后事件编号"),
]


def live_feed(request: Request) -> LiveFeed:
    """The app's one live feed, made on first use."""
    state = request.app.state
    with _FEED_LOCK:
        feed: LiveFeed | None = getattr(state, "live_feed", None)
        if feed is None:
            per_credential = state.server_settings.live_streams_per_credential
            feed = LiveFeed(engine(request), max_per_owner=per_credential)
            state.live_feed = feed
    return feed


def wake_live_feed(request: Request) -> None:
    """Tell the app's feed, if it runs, to read now: a registration just committed reaches its dashboards at once."""
    feed: LiveFeed | None = getattr(request.app.state, "live_feed", None)
    if feed is not None:
        feed.wake()


@router.get(
    "/live",
    summary="实时事件流（SSE）：新登记、任务流转、新线索",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "text/event-stream"},
        429: {"description": "实时连接数已满，请稍后重试"},
    },
)
async def get_live(
    request: Request,
    principal: CurrentPrincipal,
    last_event_header: LastEventId = None,
    last_event_id: Annotated[
        str | None, Query(pattern=r"^\d{1,20}$", description="同 Last-Event-ID（新开连接续读时，放在查询串中）")
    ] = None,
) -> StreamingResponse:
    """本账号范围内的事件（与列表同一范围规则）：event 为 registration、task 或 clue，data 为 JSON；每 15 秒一行注释心跳；带 Last-Event-ID 重连可补发断线期间的事件。"""
    feed = live_feed(request)
    scope = principal.area
    audiences = [a for a, cap in _AUDIENCE_CAPABILITY.items() if principal.may(cap)]
    # A stream holds a slot: only roles that receive work on it (tasks, clues, the review queue) may open one.
    if not any(principal.may(cap) for cap in _STREAM_CAPABILITIES):
        raise NotAllowed(f"a {principal.role} may not read live events")
    grids = frozenset[str]()
    if scope.kind == "worker":
        grids = await run_in_threadpool(_worker_grids, request, principal)
    resume = last_event_header or last_event_id
    await run_in_threadpool(feed.prepare)
    try:
        sub, replay = feed.subscribe(scope, audiences, worker_grids=grids,
                                     last_seq=int(resume) if resume else None,
                                     owner=principal.audit_name)  # fmt: skip
    except TooManyStreams as exc:
        raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "10"}) from exc
    return StreamingResponse(
        _stream(feed, sub, replay),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(feed.unsubscribe, sub),
    )


def _worker_grids(request: Request, principal: CurrentPrincipal) -> frozenset[str]:
    """A grid worker's grids, read once when their stream opens."""
    with engine(request).connect() as conn:
        return principal.area.worker_grids(conn)


async def _stream(feed: LiveFeed, sub: Subscription, replay: list[LiveEvent]) -> AsyncIterator[str]:
    """The stream's text: the retry delay, the missed events, then each new event, with heartbeats between."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + feed.max_stream_s
    try:
        yield f"retry: {RETRY_MS}\n\n"
        for missed in replay:
            yield missed.sse()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event: LiveEvent | None
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=min(feed.heartbeat_s, remaining))
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if event is None:
                break
            yield event.sse()
        yield f"retry: {RECONNECT_MS}\n\n"
    finally:
        feed.unsubscribe(sub)
