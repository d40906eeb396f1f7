"""api.routers.auth: access tokens (OAuth2 password flow), and the browser's sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from api.auth import service
from api.auth.deps import SESSION_COOKIE, WWW_AUTHENTICATE, AuthRuntime, auth_runtime
from api.auth.page import BAD_LOGIN_ZH, LOGIN_PATH, render_login, safe_next
from api.auth.security import issue_access_token
from api.deps import engine
from maps.page import TITLE

router = APIRouter(tags=["认证"])
pages_router = APIRouter(tags=["认证"])

# The same answer for an unknown user and a wrong password, so that nobody can probe for user names.
BAD_LOGIN = "incorrect username or password"


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
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: Annotated[Engine, Depends(engine)],
    runtime: Annotated[AuthRuntime, Depends(auth_runtime)],
) -> AccessToken:
    """用用户名和密码换取短期有效的 JWT 访问令牌（默认 30 分钟）。"""
    with db.begin() as conn:
        user = service.authenticate(conn, form.username, form.password)
    if user is None:
        raise HTTPException(status_code=401, detail=BAD_LOGIN, headers=WWW_AUTHENTICATE)
    token = issue_access_token(
        runtime.secret_key,
        subject=user.username,
        role=user.role,
        scope=user.scope,
        town_code=user.town_code,
        minutes=runtime.token_minutes,
    )
    return AccessToken(access_token=token, expires_in=int(runtime.token_minutes * 60))


@pages_router.get(LOGIN_PATH, response_class=HTMLResponse, summary="登录页面", include_in_schema=False)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    runtime = auth_runtime(request)
    body = render_login(TITLE, session_hours=runtime.session_hours, next_path=next)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@pages_router.post(LOGIN_PATH, response_class=HTMLResponse, summary="登录", include_in_schema=False)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    db: Annotated[Engine, Depends(engine)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password, open a session (HttpOnly, SameSite=Lax cookie) and go to `next`."""
    runtime = auth_runtime(request)
    with db.begin() as conn:
        user = service.authenticate(conn, username, password)
        token = service.create_session(conn, runtime.secret_key, user, hours=runtime.session_hours) if user else None
    if token is None:
        body = render_login(
            TITLE, session_hours=runtime.session_hours, error=BAD_LOGIN_ZH, username=username, next_path=next
        )
        return HTMLResponse(body, status_code=401, headers={"Cache-Control": "no-store"})
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
