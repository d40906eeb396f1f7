"""api.auth.deps: the credential check (session cookie, Bearer JWT, X-API-Key or key=) as FastAPI dependencies."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, APIKeyQuery, OAuth2PasswordBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.auth import service
from api.auth.errors import InvalidToken
from api.auth.login import LoginGate
from api.auth.ratelimit import RateLimiter, retry_after_header
from api.auth.revocation import KeyCache, RevocationListener
from api.auth.roles import Principal
from api.auth.security import decode_access_token, keyed_digest

SESSION_COOKIE = "gridgov_session"
API_KEY_HEADER = "X-API-Key"
API_KEY_QUERY = "key"
TOKEN_URL = "/v1/auth/token"
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="gridgov"'}
MISSING_CREDENTIAL = "a credential is required: sign in, or send Authorization: Bearer <token> or X-API-Key"
INVALID_CREDENTIAL = "the credential is invalid, expired or revoked"

# auto_error=False: the four schemes are alternatives, so none of them may refuse on its own.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False, description="OAuth2 密码模式获取的访问令牌")
api_key_header_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API 密钥（请求头）")
api_key_query_scheme = APIKeyQuery(
    name=API_KEY_QUERY, auto_error=False, description="API 密钥（查询参数，兼容 Nominatim 客户端）"
)
session_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="浏览器登录会话")


@dataclass
class AuthRuntime:
    """Per-application authentication state: the secret, the key cache, the rate limiter and the sign-in gate.

    A checked API key is cached (api.auth.revocation: emptied by NOTIFY in every process, trusted only while its
    listener is live); a session's or a bearer token's user row is read on every request. So a revoked key, a
    disabled user, a reset password or a signed-out token is refused from the next request in every worker process.
    """

    secret_key: str
    token_minutes: float = 30.0
    session_hours: float = 12.0
    limiter: RateLimiter = field(default_factory=RateLimiter)
    # Peers whose X-Forwarded-For names the client (addresses or networks), for the sign-in throttle.
    trusted_proxies: tuple[str, ...] = ()
    login_gate: LoginGate = field(default_factory=LoginGate)
    key_cache: KeyCache = field(default_factory=KeyCache)
    listener: RevocationListener | None = None

    def start_listener(self, conninfo: str) -> None:
        """Listen for revocations (until `close`); without it the key cache is never trusted."""
        self.listener = RevocationListener(conninfo, self.key_cache)
        self.listener.start()

    def close(self) -> None:
        """Stop the listener and the sign-in threads (the application's shutdown)."""
        if self.listener is not None:
            self.listener.stop()
        self.login_gate.close()


def auth_runtime(request: Request) -> AuthRuntime:
    """The application's authentication state (created in the lifespan)."""
    runtime: AuthRuntime = request.app.state.auth
    return runtime


def _engine(request: Request) -> Engine:
    result: Engine = request.app.state.engine
    return result


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=WWW_AUTHENTICATE)


def _api_key_principal(request: Request, runtime: AuthRuntime, key: str) -> Principal:
    digest = keyed_digest(runtime.secret_key, key)
    record = runtime.key_cache.get(digest)
    if record is None:
        generation = runtime.key_cache.generation
        with _engine(request).connect() as conn:
            record = service.find_api_key(conn, digest)
        if record is None:
            raise _unauthorized(INVALID_CREDENTIAL)
        runtime.key_cache.put(digest, record, generation)
    if record.rate_limited:
        wait_s = runtime.limiter.acquire(record.id, record.rate_per_minute)
        if wait_s > 0:
            raise HTTPException(
                status_code=429,
                detail=f"rate limit of {record.rate_per_minute} requests per minute exceeded for key {record.prefix}…",
                headers={"Retry-After": retry_after_header(wait_s)},
            )
    return record.principal()


def _session_principal(request: Request, runtime: AuthRuntime, token: str) -> Principal:
    with _engine(request).connect() as conn:
        user = service.find_session_user(conn, runtime.secret_key, token)
    if user is None:
        raise _unauthorized(INVALID_CREDENTIAL)
    return user.principal()


def _token_principal(request: Request, runtime: AuthRuntime, token: str) -> Principal:
    """The token's user as the database has them now: refused when disabled, reset or revoked since (`ver`)."""
    try:
        claims = decode_access_token(runtime.secret_key, token)
    except InvalidToken:
        raise _unauthorized(INVALID_CREDENTIAL) from None
    with _engine(request).connect() as conn:
        user = service.find_token_user(conn, claims.subject, claims.version)
    if user is None:
        raise _unauthorized(INVALID_CREDENTIAL)
    return user.principal()


def resolve_principal(
    request: Request,
    *,
    header_key: str | None,
    query_key: str | None,
    bearer: str | None,
    session_token: str | None,
) -> Principal | None:
    """The principal of the first credential present (None when there is none); 401/429 when it is refused.

    The first credential present decides: a bad key is refused even if a good cookie came with it.
    """
    runtime = auth_runtime(request)
    principal: Principal | None = None
    if header_key:
        principal = _api_key_principal(request, runtime, header_key)
    elif query_key:
        principal = _api_key_principal(request, runtime, query_key)
    elif bearer:
        principal = _token_principal(request, runtime, bearer)
    elif session_token:
        principal = _session_principal(request, runtime, session_token)
    if principal is not None:
        request.state.principal = principal
    return principal


def optional_principal(
    request: Request,
    header_key: Annotated[str | None, Security(api_key_header_scheme)],
    query_key: Annotated[str | None, Security(api_key_query_scheme)],
    bearer: Annotated[str | None, Security(bearer_scheme)],
    session_token: Annotated[str | None, Security(session_cookie_scheme)],
) -> Principal | None:
    """Who is asking, or None when no valid credential came (pages redirect to the login page then)."""
    try:
        return resolve_principal(
            request, header_key=header_key, query_key=query_key, bearer=bearer, session_token=session_token
        )
    except HTTPException as exc:
        if exc.status_code == 401:
            return None
        raise


async def current_principal(
    request: Request,
    header_key: Annotated[str | None, Security(api_key_header_scheme)],
    query_key: Annotated[str | None, Security(api_key_query_scheme)],
    bearer: Annotated[str | None, Security(bearer_scheme)],
    session_token: Annotated[str | None, Security(session_cookie_scheme)],
) -> Principal:
    """Who is asking; 401 (with WWW-Authenticate) without a valid credential, 429 over a key's rate limit.

    A cached API key is checked on the event loop (no I/O: the geocoding hot path); anything that needs the
    database (a key not cached, a bearer token's user, a session) goes to the thread pool.
    """
    runtime = auth_runtime(request)
    kwargs = {"header_key": header_key, "query_key": query_key, "bearer": bearer, "session_token": session_token}
    if not any(kwargs.values()):
        raise _unauthorized(MISSING_CREDENTIAL)
    key = header_key or query_key
    if key and runtime.key_cache.get(keyed_digest(runtime.secret_key, key)) is not None:
        principal = resolve_principal(request, **kwargs)
    else:
        principal = await run_in_threadpool(functools.partial(resolve_principal, request, **kwargs))
    if principal is None:
        raise _unauthorized(MISSING_CREDENTIAL)
    return principal
