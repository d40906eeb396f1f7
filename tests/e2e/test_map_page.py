"""A person opens the map page in a real (headless) Chromium, sees the outlines and clicks a grid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from api.auth import service as auth_service
from gis.database import make_engine
from gis.settings import DatabaseSettings

pytestmark = [pytest.mark.db, pytest.mark.browser]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
USERNAME = "zhihui"
PASSWORD = "e2e-password-1234"


@pytest.fixture(scope="module")
def account(db: DatabaseSettings) -> str:
    """A command-centre account to sign in with."""
    engine = make_engine(db)
    with engine.begin() as conn:
        auth_service.create_user(conn, username=USERNAME, role="command_centre", scope=None, password=PASSWORD)
    engine.dispose()
    return USERNAME


@pytest.fixture(scope="module")
def busy_grid(db: DatabaseSettings) -> dict[str, Any]:
    """The active grid with the most addresses, and a point inside it."""
    engine = make_engine(db)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT g.code, c.name AS community_name, t.name AS town_name, g.address_count, "
                "ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
                "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "JOIN community c ON c.code = g.community_code JOIN town t ON t.code = g.town_code "
                "ORDER BY g.address_count DESC, g.code LIMIT 1"
            )
        ).one()
    engine.dispose()
    return dict(row._mapping)


def _count(page: Any, selector: str) -> int:
    return int(page.evaluate("(s) => document.querySelectorAll(s).length", selector))


@pytest.mark.usefixtures("account")
def test_the_map_shows_outlines_and_a_grid_popup_without_leaving_the_intranet(
    base_url: str, busy_grid: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    requested: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    # The map sits behind the sign-in: the browser is sent to the login page and back after signing in.
    page.goto(base_url + "/")
    assert urlsplit(page.url).path == "/login"
    assert page.locator("button[type=submit]").inner_text() == "登录"
    page.fill("#username", USERNAME)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "用户名或密码错误"
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == "/"
    assert page.title() == "东莞市网格化治理平台"
    # No inline script (a strict Content-Security-Policy can hold): the page's configuration is a JSON data block.
    inline = page.evaluate("Array.from(document.scripts).filter(s => !s.src && s.type !== 'application/json').length")
    assert inline == 0

    # On load the whole city is in view with all 33 town outlines and the community outlines.
    page.wait_for_function("document.querySelectorAll('.leaflet-towns-pane path').length >= 33", timeout=15_000)
    assert _count(page, ".leaflet-towns-pane path") == 33
    page.wait_for_function("document.querySelectorAll('.leaflet-communities-pane path').length > 100", timeout=15_000)
    # Every grid of the city is drawn from the first view: command-centre staff see the whole layout at once.
    # The page's test hook (lib/testhook.js) counts what each layer has drawn (the canvas has no DOM node per grid).
    page.wait_for_function("window.gridgov && window.gridgov.page.counts().grids >= 2800", timeout=20_000)
    drawn = page.evaluate("window.gridgov.page.counts()")
    assert drawn["towns"] == 33
    assert page.locator("#status").inner_text().endswith(f"网格 {drawn['grids']}")
    # The top bar names who is signed in, beside the sign-out button.
    assert page.locator(".topbar .user").inner_text() == USERNAME
    assert page.locator(".topbar .signout button").inner_text() == "退出登录"
    page.screenshot(path=str(artifacts_dir / "map_page_city.png"), animations="disabled")
    west, _, east, _ = page.evaluate("window.gridgov.page.bounds()")
    assert west < 113.6 and east > 114.2, "the page should open on all of Dongguan"

    # Zoom to street level over a busy grid: grids load for the view.
    with page.expect_response(lambda r: "/v1/grids" in r.url and r.status == 200, timeout=15_000):
        page.evaluate("([lat, lon]) => window.gridgov.page.setView(lat, lon, 15)", [busy_grid["lat"], busy_grid["lon"]])
    page.wait_for_function("window.gridgov.page.counts().grids > 0", timeout=15_000)
    assert page.locator(".leaflet-grids-pane canvas").count() == 1

    # The grid is under the centre of the map: click it.
    box = page.locator("#map").bounding_box()
    assert box is not None
    with page.expect_response(lambda r: "/v1/grids/" in r.url, timeout=15_000):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.locator(".leaflet-popup-content .grid-popup")
    popup.wait_for(timeout=10_000)
    page.wait_for_function(
        "document.querySelector('.grid-popup') && document.querySelector('.grid-popup').textContent.includes('km²')",
        timeout=10_000,
    )
    content = popup.inner_text()
    code = page.locator(".grid-popup .grid-code").inner_text().strip()
    assert re.fullmatch(r"\d{15}", code)
    assert code == busy_grid["code"]
    assert busy_grid["community_name"] in content and busy_grid["town_name"] in content
    assert str(busy_grid["address_count"]) in content
    for label in ("标准地址", "市场主体", "网格员", "人口", "在办任务", "逾期任务", "近30天线索"):
        assert label in content

    page.screenshot(path=str(artifacts_dir / "map_page.png"), animations="disabled")

    web = [u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert web, "the page made no requests at all"
    foreign = sorted({urlsplit(u).hostname or "" for u in web} - LOCAL_HOSTS)
    assert not foreign, f"the page reached beyond this server: {foreign}"
    assert not page_errors, page_errors
    page.close()
