"""api.edges: what every answer carries and every cookie-authenticated change must show (issue 17, part C).

`SecurityHeaders` adds the security headers to every answer — pages, JSON, tiles, static files, errors and the
other middlewares' refusals: nosniff, a referrer policy, `frame-ancestors 'none'` (and `X-Frame-Options` for old
browsers), a cross-origin opener policy, a permissions policy that denies what the platform never uses, and a
Content-Security-Policy: the pages' strict one (no inline script or style, everything from this server; MapLibre's
workers come from blob: URLs), or `default-src 'none'` for everything that is not a page. A CSP a route set itself
(the public pages' stricter one) is kept. HSTS only when the request came over HTTPS: the scheme uvicorn reports,
which its proxy-headers support takes from a trusted proxy's `X-Forwarded-Proto` (`FORWARDED_ALLOW_IPS`).

`CsrfGuard` refuses a state change (POST, PUT, PATCH, DELETE) that carries the session cookie — and `POST /login`,
`POST /logout` always — when the browser says it came from another site: `Sec-Fetch-Site` present and neither
`same-origin` nor `none`, or `Origin` present and not this server's own origin. Without either header (programs, old
browsers) the request passes (OWASP: verifying origin with standard headers). Requests that carry no session
cookie are authenticated by a bearer token or an API key header, which a browser never adds on its own: they pass.
Both are pure ASGI middlewares, wired in api.main.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.deps import SESSION_COOKIE
from api.auth.page import LOGIN_PATH
from api.input_guard import drain

# Pages: every script, style, image, font and connection from this server; MapLibre builds its workers from blob:
# URLs and its canvases export to blob:/data: images. No inline script or style anywhere.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "worker-src 'self' blob:; child-src 'self' blob:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Everything that is not a page (JSON, tiles, CSV, files): nothing may run or load from it, nor frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Attachments (an offline map export is HTML with its scripts inline): downloaded, never run on this origin.
ATTACHMENT_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
HSTS = "max-age=31536000; includeSubDomains"
# A file input needs no camera permission; the field page reads the position through the Geolocation API.
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(self), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=(), interest-cohort=()"
)
COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALWAYS_CHECKED = frozenset({LOGIN_PATH, "/logout"})
CSRF_DETAIL = "cross-site request refused: a cookie-authenticated change must come from this site's own pages"
CSRF_PAGE_ZH = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>请求被拒绝</title></head><body>'
    "<h1>请求被拒绝</h1><p>该请求来自其他网站，已被拒绝。请直接打开本系统的登录页面后再登录。</p></body></html>"
)


# Pages, and scripts: a script may be started as a worker (MapLibre's), and a worker runs under the policy its own
# script was served with, so it must allow what the pages allow (its tile requests to this server).
PAGE_MEDIA_TYPES = frozenset({"text/html", "text/javascript", "application/javascript"})


def content_security_policy(media_type: str, disposition: str) -> str:
    """The CSP an answer gets when its route set none: strict for pages and scripts, nothing-at-all for the rest."""
    if disposition.lower().startswith("attachment"):
        return ATTACHMENT_CSP
    return PAGE_CSP if media_type.split(";")[0].strip().lower() in PAGE_MEDIA_TYPES else API_CSP


def is_https(scope: Scope) -> bool:
    """Whether the request came over HTTPS (uvicorn sets the scheme from a trusted proxy's X-Forwarded-Proto)."""
    return scope.get("scheme") in ("https", "wss")


class SecurityHeaders:
    """Security headers on every answer (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = is_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS:
                    if name not in headers:
                        headers[name] = value
                own = headers.get("content-security-policy")
                if own is None:
                    headers["Content-Security-Policy"] = content_security_policy(
                        headers.get("content-type", ""), headers.get("content-disposition", "")
                    )
                elif "frame-ancestors" not in own:
                    # A route's own policy is kept and only made stricter: no one may frame this server.
                    headers["Content-Security-Policy"] = f"{own.rstrip('; ')}; frame-ancestors 'none'"
                if https and "strict-transport-security" not in headers:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def own_origin(scope: Scope, headers: Headers) -> str:
    """This server's origin as the browser sees it: the scheme (proxy-aware) and the Host header."""
    scheme = "https" if is_https(scope) else "http"
    host = headers.get("host", "")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    default_port = ":443" if scheme == "https" else ":80"
    if host.endswith(default_port):
        host = host[: -len(default_port)]
    return f"{scheme}://{host}".lower()


def _normal_origin(origin: str) -> str:
    origin = origin.strip().lower().rstrip("/")
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[: -len(port)]
    return origin


def cross_site(scope: Scope, headers: Headers) -> bool:
    """Whether the browser's own headers say the request came from another site (no header: not known, False)."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    # "null" is what a sandboxed frame, a data: page or a cross-origin redirect sends: never this site.
    return origin is not None and _normal_origin(origin) != own_origin(scope, headers)


def has_session_cookie(headers: Headers) -> bool:
    """Whether the request carries the browser session cookie."""
    for value in headers.getlist("cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except Exception:  # a malformed cookie header: look for the name itself
            if SESSION_COOKIE in value:
                return True
            continue
        if SESSION_COOKIE in jar:
            return True
    return False


class CsrfGuard:
    """Cookie-authenticated state changes from another site are refused (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET").upper() not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path = scope.get("path", "")
        checked = path in ALWAYS_CHECKED or has_session_cookie(headers)
        if not checked or not cross_site(scope, headers):
            await self.app(scope, receive, send)
            return
        await drain(receive)
        if path == LOGIN_PATH:
            media_type, body = "text/html; charset=utf-8", CSRF_PAGE_ZH.encode()
        else:
            media_type = "application/json"
            body = json.dumps({"error": "csrf", "detail": CSRF_DETAIL}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
