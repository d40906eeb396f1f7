"""api.auth.page: the login page (maps/templates/login.html over the pages' base) and where its stylesheet lives."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from maps.page import render_page

PACKAGE_DIR = Path(__file__).resolve().parent
AUTH_STATIC_DIR = PACKAGE_DIR / "static"
LOGIN_PATH = "/login"
BAD_LOGIN_ZH = "用户名或密码错误"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host), "/" otherwise."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render_login(title: str, *, session_hours: float, error: str = "", username: str = "", next_path: str = "/") -> str:
    """The login page; the template escapes every value."""
    return render_page(
        "login.html",
        title=title,
        error=error,
        username=username,
        next_path=safe_next(next_path),
        session_hours=f"{session_hours:g}",
    )
