"""A dispatcher opens the review queue in headless Chromium, clicks the point of an address the library lacks and adds
it: the registration is placed, and the next one at that address is placed at once."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, make_api_key, make_users
from tests.support.city import a_village_door_with_workers

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-review-password-1234"
# The e2e server's own key (tests/e2e/conftest.py): API keys are digested with it.
SERVER_SECRET = "x" * 40


def credit_code(serial: int) -> str:
    first17 = f"91441900MA{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def place(db: DatabaseSettings) -> dict[str, Any]:
    """A village door's community dispatcher, a registry's key, the typed address and a point inside the door's grid."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_village_door_with_workers(conn)
        inside = conn.execute(
            text(
                "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(g.geom) AS p FROM grid g "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' WHERE g.code = :code) s"
            ),
            {"code": door.grid_code},
        ).one()
        make_users(conn, {"diaodu": ("dispatcher", door.community_code)}, password=PASSWORD)
        key = make_api_key(conn, SERVER_SECRET, "registry", permissions=["intake"])
    engine.dispose()
    typed = re.sub(r"\d+号$", "906号", door.full_text)
    return {"typed": typed, "lon": inside.lon, "lat": inside.lat, "key": key, "grid_code": door.grid_code}


def register(base_url: str, place: dict[str, Any], serial: int) -> dict[str, Any]:
    body = {
        "event_id": f"e2e-review-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": "东莞市新开商行",
        "address": place["typed"],
        "business_scope": "烟草制品零售",
        "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
    }
    response = httpx.post(f"{base_url}/v1/registrations", json=body, headers=api_key_headers(place["key"]), timeout=60)
    assert response.status_code == 201, response.text
    status: dict[str, Any] = response.json()
    return status


def test_a_dispatcher_adds_the_address_on_the_map_and_the_next_registration_finds_it(
    base_url: str, place: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    waiting = register(base_url, place, 1)
    assert waiting["outcome"] == "review", waiting
    item = waiting["review_id"]

    page = browser.new_page(viewport={"width": 1400, "height": 860}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base_url}/review")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", "diaodu")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == "/review"
    assert page.title() == "待核登记处理"
    page.wait_for_selector("body[data-items]", timeout=30_000)
    inline = page.evaluate("Array.from(document.scripts).filter(s => !s.src && s.type !== 'application/json').length")
    assert inline == 0
    assert item in page.evaluate("window.gridgov.page.items()")

    # One item: the typed address, the parsed components prefilled, the standard text they make.
    page.click(f"#items tbody tr[data-id='{item}']")
    page.wait_for_selector(f"body[data-proposal='{item}']", timeout=30_000)
    assert page.locator("#typed").inner_text() == place["typed"]
    assert page.input_value("#component-door_no") == "906"
    assert page.locator("#full-text").inner_text() == place["typed"]
    assert page.locator("#add").is_disabled()
    assert page.locator("#choose").inner_text() == "选择已有地址"

    # The dispatcher moves the map to the place and clicks the point, as a user would.
    page.evaluate(f"window.gridgov.page.setView({place['lat']}, {place['lon']}, 17)")
    target = page.evaluate(f"window.gridgov.page.containerPoint({place['lat']}, {place['lon']})")
    box = page.locator("#map").bounding_box()
    assert box is not None and 0 < target["x"] < box["width"] and 0 < target["y"] < box["height"]
    page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
    chosen = page.evaluate("window.gridgov.page.selected()")["point"]
    assert abs(chosen["lon"] - place["lon"]) < 1e-4 and abs(chosen["lat"] - place["lat"]) < 1e-4

    page.screenshot(path=str(artifacts_dir / "review-page.png"))
    page.click("#add")
    page.wait_for_selector("#message.done", timeout=30_000)
    result = page.evaluate("window.gridgov.page.result()")
    assert result["outcome"] == "placed" and len(result["task_ids"]) == 3
    assert result["added_address"]["full_text"] == place["typed"]
    assert result["added_address"]["grid_code"] == place["grid_code"]
    assert "已加入标准地址库" in page.locator("#message").inner_text()
    assert item not in page.evaluate("window.gridgov.page.items()")
    assert not errors, errors

    # The next registration at that address is placed at once, on the new address.
    again = register(base_url, place, 2)
    assert again["outcome"] == "placed" and len(again["task_ids"]) == 3, again
