"""api.edges: what every answer carries and every cookie-authenticated change must show (issue 17, part C).

`SecurityHeaders` adds the security headers to every answer; `CsrfGuard` refuses cookie-authenticated state changes
from another site. Both are pure ASGI middlewares, wired in api.main.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class SecurityHeaders:
    """Security headers on every answer (to be filled in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class CsrfGuard:
    """Cookie-authenticated state changes from another site are refused (to be filled in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
