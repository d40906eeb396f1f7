"""api.observability: request ids and structured logs, Prometheus metrics and the readiness check (issue 17, part G1).

`RequestContext` is the outermost middleware; `router` serves /metrics and /ready.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.types import ASGIApp, Receive, Scope, Send

router = APIRouter(tags=["运维"])


class RequestContext:
    """A request id on every request and answer, and one structured log line per request (to be filled in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
