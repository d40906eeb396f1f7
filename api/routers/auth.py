"""api.routers.auth: access tokens (OAuth2 password flow), their revocation, and the browser's sign-in and sign-out.

Both ways of signing in go through api.auth.login: throttled per account and per client address (429 with
Retry-After), and verified in a small dedicated pool (429 with Retry-After when every slot stays busy), so that a
flood of sign-ins neither guesses a password nor starves the other routes.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from api.auth import login as sign_in
from api.auth import service
from api.auth.deps import SESSION_COOKIE, WWW_AUTHENTICATE, AuthRuntime, auth_runtime, current_principal
from api.auth.errors import NotAllowed
from api.auth.page import BAD_LOGIN_ZH, LOGIN_PATH, render_login, safe_next
from api.auth.ratelimit import retry_after_header
from api.auth.roles import Principal
from api.auth.security import issue_access_token
from api.auth.throttle import client_address
from api.deps import engine
from api.errors import InvalidRequest
from api.input_guard import control_character, describe
from maps.page import TITLE

router = APIRouter(tags=["认证"])
pages_router = APIRouter(tags=["认证"])

# The same answer for an unknown user, a disabled account and a wrong password: nobody can probe for user names.
BAD_LOGIN = "incorrect username or password"
THROTTLED = "too many failed sign-ins; try again later"
BUSY = "too many sign-ins at once; try again shortly"


def _control_field(fields: dict[str, str | None]) -> tuple[str, str] | None:
    """The first (field, description) of a form field holding a control character, or None.

    The input guard reads urlencoded bodies; a multipart form reaches the route, so the sign-in routes check every
    field they read here, before the throttle or the database sees it (PostgreSQL refuses a NUL in text).
    """
    for name, value in fields.items():
        found = control_character(value)
        if found is not None:
            return name, describe(found)
    return None


class AccessToken(BaseModel):
    """A short-lived bearer token (JWT, HS256)."""

    access_token: str = Field(description="JWT 访问令牌，放在 Authorization: Bearer 请求头中")
    token_type: str = Field(default="bearer", description="令牌类型，固定为 bearer")
    expires_in: int = Field(description="有效期（秒）")


@router.post(
    "/auth/token",
    summary="获取访问令牌（OAuth2 密码模式）",
    response_model=AccessToken,
    responses={401: {"description": "用户名或密码错误"}},
)
async def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: Annotated[Engine, Depends(engine)],
    runtime: Annotated[AuthRuntime, Depends(auth_runtime)],
) -> AccessToken:
    """用用户名和密码换取短期有效的 JWT 访问令牌（默认 30 分钟）。连续失败后按账号和客户端地址限流（429，附 Retry-After）。"""
    fields = {
        "username": form.username,
        "password": form.password,
        "grant_type": form.grant_type,
        "scope": " ".join(form.scopes),
        "client_id": form.client_id,
        "client_secret": form.client_secret,
    }
    bad = _control_field(fields)
    if bad is not None:
        raise InvalidRequest(f"{bad[0]} holds a control character ({bad[1]})", field=bad[0])
    address = client_address(request, runtime.trusted_proxies)
    result = await _attempt(runtime, functools.partial(sign_in.attempt, db, form.username, form.password, address))
    if result.wait_s > 0:
        raise HTTPException(
            status_code=429, detail=THROTTLED, headers={"Retry-After": retry_after_header(result.wait_s)}
        )
    user = result.user
    if user is None:
        raise HTTPException(status_code=401, detail=BAD_LOGIN, headers=WWW_AUTHENTICATE)
    token = issue_access_token(
        runtime.secret_key,
        subject=user.username,
        role=user.role,
        scope=user.scope,
        town_code=user.town_code,
        minutes=runtime.token_minutes,
        version=user.token_version,
    )
    return AccessToken(access_token=token, expires_in=int(runtime.token_minutes * 60))


async def _attempt(runtime: AuthRuntime, work: functools.partial[sign_in.LoginResult]) -> sign_in.LoginResult:
    """The attempt through the sign-in gate; 429 with Retry-After when no verification slot frees in time."""
    try:
        return await runtime.login_gate.run(work)
    except sign_in.LoginBusy:
        raise HTTPException(
            status_code=429, detail=BUSY, headers={"Retry-After": str(sign_in.BUSY_RETRY_AFTER_S)}
        ) from None


class TokensRevoked(BaseModel):
    """The caller's bearer tokens and browser sessions were revoked."""

    revoked: bool = Field(description="总为 true：此前签发的访问令牌和浏览器会话均已失效")


@router.post(
    "/auth/revoke",
    summary="吊销自己的全部访问令牌",
    response_model=TokensRevoked,
    responses={401: {"description": "缺少或无效的凭据"}, 403: {"description": "API 密钥不能用此接口"}},
)
def revoke_own_tokens(
    principal: Annotated[Principal, Depends(current_principal)], db: Annotated[Engine, Depends(engine)]
) -> TokensRevoked:
    """吊销调用者（已登录用户）此前签发的全部访问令牌和浏览器会话，在所有服务进程中下一次请求即生效。"""
    if principal.kind != "user" or principal.id is None:
        raise NotAllowed("an API key is revoked by an operator: gridgov apikey revoke PREFIX")
    with db.begin() as conn:
        service.revoke_user_tokens(conn, principal.id)
    return TokensRevoked(revoked=True)


@pages_router.get(LOGIN_PATH, response_class=HTMLResponse, summary="登录页面", include_in_schema=False)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    runtime = auth_runtime(request)
    body = render_login(TITLE, session_hours=runtime.session_hours, next_path=next)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@pages_router.post(LOGIN_PATH, response_class=HTMLResponse, summary="登录", include_in_schema=False)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    db: Annotated[Engine, Depends(engine)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password, open a session (HttpOnly, SameSite=Lax cookie) and go to `next`."""
    runtime = auth_runtime(request)
    bad = _control_field({"username": username, "password": password, "next": next})
    if bad is not None:
        label = {"username": "用户名", "password": "密码", "next": "跳转地址"}[bad[0]]
        body = render_login(
            TITLE, session_hours=runtime.session_hours, error=f"{label}含有不允许的控制字符（{bad[1]}），请重新输入"
        )
        return HTMLResponse(body, status_code=422, headers={"Cache-Control": "no-store"})
    address = client_address(request, runtime.trusted_proxies)
    work = functools.partial(
        sign_in.attempt,
        db,
        username,
        password,
        address,
        secret_key=runtime.secret_key,
        session_hours=runtime.session_hours,
    )
    try:
        result = await runtime.login_gate.run(work)
    except sign_in.LoginBusy:
        result = sign_in.LoginResult(None, wait_s=sign_in.BUSY_RETRY_AFTER_S)
    token = result.session_token
    if token is None:
        error, status, headers = BAD_LOGIN_ZH, 401, {"Cache-Control": "no-store"}
        if result.wait_s > 0:
            wait = retry_after_header(result.wait_s)
            error, status = f"登录尝试过多，请 {wait} 秒后再试", 429
            headers["Retry-After"] = wait
        body = render_login(TITLE, session_hours=runtime.session_hours, error=error, username=username, next_path=next)
        return HTMLResponse(body, status_code=status, headers=headers)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(runtime.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@pages_router.post("/logout", summary="退出登录", include_in_schema=False)
def logout(request: Request, db: Annotated[Engine, Depends(engine)]) -> Response:
    """Revoke the browser's session and go back to the login page."""
    runtime = auth_runtime(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with db.begin() as conn:
            service.revoke_session(conn, runtime.secret_key, token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
