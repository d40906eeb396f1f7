"""api.auth.page: the login page (HTML from the package template) and where its stylesheet lives."""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent
LOGIN_TEMPLATE_PATH = PACKAGE_DIR / "templates" / "login.html"
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
    """The login page, every value HTML-escaped."""
    template = Template(LOGIN_TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(title),
        error=html.escape(error),
        error_hidden="" if error else " hidden",
        username=html.escape(username),
        next=html.escape(safe_next(next_path)),
        session_hours=f"{session_hours:g}",
    )
