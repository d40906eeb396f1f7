"""A town leader opens the heatmap page in headless Chromium: heat, hexagons and hotspots with a true legend."""

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

PASSWORD = "e2e-heat-password-1234"


@pytest.fixture(scope="module")
def town(db: DatabaseSettings) -> str:
    engine = make_engine(db)
    with engine.begin() as conn:
        busy = conn.execute(
            text("SELECT town_code FROM clue GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        auth_service.create_user(conn, username="leader", role="town_leader", scope=busy, password=PASSWORD)
    engine.dispose()
    return str(busy)


def test_the_town_leader_sees_heat_hexagons_and_hotspots_with_a_true_legend(
    base_url: str, town: str, browser: Any, artifacts_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base_url}/towns/{town}/heatmap")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", "leader")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == f"/towns/{town}/heatmap"
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)

    # The heat layer draws on its own canvas; the hexagons and hotspots are vector layers.
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    # What is drawn is read through the page's test hook (lib/testhook.js), never Leaflet's private fields.
    drawn = page.evaluate("window.gridgov.page.counts()")
    hexagons = drawn["hexagons"]
    assert drawn["points"] > 0 and hexagons > 0 and drawn["hotspots"] > 0

    # The legend says how many hexagons each class holds: it must add up to the hexagons drawn, and its bounds
    # must contain every hexagon's count.
    legend = page.evaluate(
        "Array.from(document.querySelectorAll('#legend .legend-row')).map(r => "
        "[Number(r.dataset.lower), Number(r.dataset.upper), Number(r.dataset.count)])"
    )
    assert legend and len(legend) == drawn["legend"] and sum(row[2] for row in legend) == hexagons
    counts = page.evaluate("window.gridgov.page.hexagonCounts()")
    assert min(counts) >= legend[0][0] and max(counts) <= legend[-1][1]

    # The industry filter and the time slider reload the layers.
    with page.expect_response(lambda r: "/v1/heatmap" in r.url and "industry=" in r.url, timeout=15_000):
        page.select_option("#industry", "餐饮服务")
    page.wait_for_function("document.querySelector('#comparison-text').textContent.includes('本期')")
    assert page.locator("#top10 li").count() >= 1

    # The page opens on the configuration the detection benchmark scores: rate hotspots on H3 res 9 cells.
    assert "method=rate" in page.evaluate("window.gridgov.page.query")
    assert "unit=h3%3A9" in page.evaluate("window.gridgov.page.query")
    page.select_option("#industry", "")
    page.select_option("#window-days", "365")
    page.select_option("#kind", "clue")
    page.wait_for_function(
        "window.gridgov.page.query.includes('kind=clue') && !window.gridgov.page.query.includes('industry=') && "
        "document.getElementById('status').textContent !== '加载中…'",
        timeout=60_000,
    )
    units = page.evaluate("window.gridgov.page.hotspots()")
    assert units and all(unit["code"].startswith("89") for unit in units)
    # Each hotspot links to its clues (the popup and the top-10 list build the same link): the same cell,
    # window and kind, every source. Following it lists exactly the clues the cell counts.
    busiest = max(units, key=lambda unit: unit["count"])
    link = page.evaluate("(code) => window.gridgov.page.clueLink(code)", busiest["code"])
    assert link.startswith("/clues?") and "h3=89" in link and "source=all" in link
    assert busiest["count"] >= 1
    # Before leaving the map, keep its picture as the test artifact.
    page.screenshot(path=str(artifacts_dir / "heatmap_page_town.png"), animations="disabled")
    page.goto(base_url + link)
    page.wait_for_selector("body[data-total]", timeout=30_000)
    assert int(page.get_attribute("body", "data-total") or -1) == busiest["count"]
    assert page.locator("#clues tbody tr").count() == min(busiest["count"], 500)
    # Kinds, states and sources are shown by their Chinese names (GET /v1/vocabulary), never as codes.
    sources = set(page.locator("#clues tbody tr td:nth-child(8)").all_inner_texts())
    assert sources and sources <= {"现场上报", "热线"}
    states = page.locator("#clues tbody tr td:nth-child(7)").all_inner_texts()
    assert states and all(re.search(r"[\u4e00-\u9fff]", state) for state in states)
    page.screenshot(path=str(artifacts_dir / "heatmap_clue_list.png"), animations="disabled")

    assert errors == []
    outside = [u for u in requested if urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert outside == [], "the page must not leave the intranet"
