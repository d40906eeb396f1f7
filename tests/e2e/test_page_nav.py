"""Every page's top bar links the pages the signed-in caller may open, and only those: a town leader goes from the
dashboard to the staffing plan and to the grid redesign in one click; a dispatcher also sees the review queue; a
stranger on the login page sees no links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from api.auth import service as auth_service
from gis.database import make_engine
from gis.settings import DatabaseSettings

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-nav-password-12345"


@pytest.fixture(scope="module")
def accounts(db: DatabaseSettings) -> Iterator[dict[str, str]]:
    """A town leader and a dispatcher of the same town."""
    engine = make_engine(db)
    with engine.begin() as conn:
        community = conn.execute(text("SELECT min(code) FROM community WHERE kind <> 'virtual'")).scalar_one()
        town = conn.execute(text("SELECT town_code FROM community WHERE code = :c"), {"c": community}).scalar_one()
        auth_service.create_user(conn, username="navleader", role="town_leader", scope=town, password=PASSWORD)
        auth_service.create_user(conn, username="navdispatcher", role="dispatcher", scope=community, password=PASSWORD)
    engine.dispose()
    yield {"town": town, "community": community}


def _sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    assert urlsplit(page.url).path == "/login"
    assert page.locator("#pages-nav a").count() == 0
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _links(page: Any) -> list[str]:
    page.wait_for_selector("#pages-nav a", timeout=30_000)
    return [str(text_) for text_ in page.locator("#pages-nav a").all_inner_texts()]


def test_a_town_leader_goes_from_the_dashboard_to_the_staffing_plan_and_the_grid_redesign(
    base_url: str, browser: Any, accounts: dict[str, str]
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    _sign_in(page, base_url, "navleader")
    assert _links(page) == ["指挥地图", "线索", "热力图", "人员配置", "网格调整", "双随机抽查"]
    assert page.locator('#pages-nav a[aria-current="page"]').inner_text() == "指挥地图"
    with page.expect_navigation():
        page.click("#pages-nav >> text=人员配置")
    assert urlsplit(page.url).path == "/staffing"
    assert page.locator('#pages-nav a[aria-current="page"]').inner_text() == "人员配置"
    with page.expect_navigation():
        page.click("#pages-nav >> text=网格调整")
    assert urlsplit(page.url).path == "/grid-versions"
    assert page.locator('#pages-nav a[aria-current="page"]').inner_text() == "网格调整"
    page.close()


def test_a_dispatcher_also_sees_the_review_queue(base_url: str, browser: Any, accounts: dict[str, str]) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    _sign_in(page, base_url, "navdispatcher")
    assert _links(page) == ["指挥地图", "线索", "待核登记", "热力图", "人员配置", "网格调整"]
    page.close()
