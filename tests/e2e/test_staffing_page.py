"""A town leader opens the staffing page in headless Chromium: the plan's table and map, then applies it in one
step, and the page shows the plan done (no moves); a dispatcher sees the plan without the button."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from api.auth import service as auth_service
from gis.database import make_engine
from gis.settings import DatabaseSettings

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-staffing-password-1234"


@pytest.fixture(scope="module")
def scene(db: DatabaseSettings) -> dict[str, str]:
    """A town whose first grid of a community lost its workers to the next grid; a leader and a dispatcher there."""
    engine = make_engine(db)
    with engine.begin() as conn:
        emptied = conn.execute(
            text(
                """
                SELECT g.code, g.community_code, g.town_code, n.code AS neighbour
                FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
                CROSS JOIN LATERAL (SELECT min(n.code) AS code FROM grid n WHERE n.version_id = g.version_id
                                      AND n.community_code = g.community_code AND n.code > g.code) n
                WHERE n.code IS NOT NULL AND EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = g.code AND w.active)
                ORDER BY g.code LIMIT 1
                """
            )
        ).one()
        conn.execute(
            text("UPDATE worker SET grid_code = :to WHERE grid_code = :from AND active"),
            {"from": emptied.code, "to": emptied.neighbour},
        )
        auth_service.create_user(
            conn, username="leader", role="town_leader", scope=emptied.town_code, password=PASSWORD
        )
        auth_service.create_user(
            conn, username="dispatcher", role="dispatcher", scope=emptied.community_code, password=PASSWORD
        )
        auth_service.create_user(conn, username="centre", role="command_centre", scope=None, password=PASSWORD)
        other = conn.execute(text("SELECT min(code) FROM town WHERE code <> :t"), {"t": emptied.town_code}).scalar_one()
    engine.dispose()
    return {"town": emptied.town_code, "grid": emptied.code, "community": emptied.community_code, "other": other}


def sign_in(page: Any, base_url: str, username: str, path: str) -> None:
    page.goto(f"{base_url}{path}")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == urlsplit(path).path


def test_a_town_leader_sees_the_plan_on_a_table_and_a_map_and_applies_it(
    base_url: str, scene: dict[str, str], browser: Any, artifacts_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, base_url, "leader", f"/staffing?town={scene['town']}")
    page.wait_for_function("window.gridgov && window.gridgov.page.ready && window.gridgov.page.plan", timeout=60_000)
    hook = page.evaluate("window.gridgov.page")
    plan = hook["plan"]
    assert hook["town"] == scene["town"] and hook["error"] is None

    # The table: one row per grid of the town, the emptied grid short of workers, going from 0 to its target.
    rows = page.locator("#grids tbody tr")
    assert rows.count() == len(plan["grids"]) == plan["totals"]["grids"]
    emptied = page.locator(f"#grids tbody tr[data-code='{scene['grid']}']")
    assert "short" in (emptied.get_attribute("class") or "")
    target = next(g["target"] for g in plan["grids"] if g["code"] == scene["grid"])
    assert emptied.locator("td").nth(2).inner_text() == f"0 → {target}"
    # The moves, one row each, and the totals in Chinese.
    assert page.locator("#moves tbody tr").count() == len(plan["moves"]) >= target
    assert "调动人数" in page.locator("#totals").inner_text()
    # The map draws every grid of the plan, coloured by its state, and a line per pair of grids a move joins.
    drawn = hook["drawn"]
    assert drawn["grids"] == len(plan["grids"])
    assert drawn["moves"] == len({(m["from_grid"], m["to_grid"]) for m in plan["moves"]}) >= 1
    assert "short" in drawn["states"]
    assert page.locator("#map canvas.maplibregl-canvas").count() == 1
    page.screenshot(path=str(artifacts_dir / "staffing_page_plan.png"), animations="disabled")

    # Apply: a confirmation, then the plan is applied and read again: no moves left.
    apply = page.locator("#apply")
    assert apply.is_enabled()
    apply.click()
    assert str(len(plan["moves"])) == page.locator("#confirm-count").inner_text()
    with page.expect_response(lambda r: "/v1/staffing/apply" in r.url, timeout=60_000) as answer:
        page.click("#confirm-yes")
    assert answer.value.status == 200
    page.wait_for_function(
        "window.gridgov.page.applied && window.gridgov.page.ready && window.gridgov.page.plan.moves.length === 0",
        timeout=60_000,
    )
    assert "方案已应用" in page.locator("#message").inner_text()
    assert page.locator("#moves tbody tr").count() == 0
    assert page.locator("#no-moves").is_visible()
    assert apply.is_disabled()
    assert page.locator(f"#grids tbody tr[data-code='{scene['grid']}'] td").nth(2).inner_text() == str(target)
    # The recent changes list the plan just applied, first.
    batch = answer.value.json()["batch_id"]
    assert page.locator("#batches li").first.get_attribute("data-batch") == str(batch)
    assert f"调动 {len(plan['moves'])} 人" in page.locator("#batches li").first.inner_text()
    page.screenshot(path=str(artifacts_dir / "staffing_page_applied.png"), animations="disabled")

    assert errors == []
    outside = [u for u in requested if urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert outside == [], "the page must not leave the intranet"
    page.close()


def test_a_dispatcher_sees_their_communitys_plan_without_the_apply_button(
    base_url: str, scene: dict[str, str], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    sign_in(page, base_url, "dispatcher", "/staffing")
    page.wait_for_function("window.gridgov && window.gridgov.page.ready && window.gridgov.page.plan", timeout=60_000)
    plan = page.evaluate("window.gridgov.page.plan")
    assert plan["community_code"] == scene["community"]
    assert {g["community_code"] for g in plan["grids"]} == {scene["community"]}
    assert page.locator("#apply").count() == 0
    page.close()


def test_the_command_centre_picks_a_town_and_a_range_and_the_page_follows(
    base_url: str, scene: dict[str, str], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    sign_in(page, base_url, "centre", "/staffing")
    page.wait_for_function("window.gridgov && window.gridgov.page.ready", timeout=60_000)
    # The whole city is too much for one table: the page asks for a town first.
    assert page.evaluate("window.gridgov.page.plan") is None
    assert page.locator("#status").inner_text() == "请选择镇街"
    assert page.locator("#town option").count() == 1 + 33
    page.select_option("#town", scene["town"])
    page.wait_for_function(
        f"window.gridgov.page.ready && window.gridgov.page.plan && window.gridgov.page.plan.town_code === '{scene['town']}'",
        timeout=60_000,
    )
    assert page.locator("#apply").count() == 1
    page.select_option("#within", "community")
    page.wait_for_function(
        "window.gridgov.page.ready && window.gridgov.page.plan && window.gridgov.page.plan.within === 'community'",
        timeout=60_000,
    )
    assert f"town={scene['town']}" in page.url and "within=community" in page.url
    page.close()


def test_a_town_leader_following_a_link_to_another_town_sees_their_own_and_is_told_why(
    base_url: str, scene: dict[str, str], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    sign_in(page, base_url, "leader", f"/staffing?town={scene['other']}")
    page.wait_for_function("window.gridgov && window.gridgov.page.ready && window.gridgov.page.plan", timeout=60_000)
    assert page.evaluate("window.gridgov.page.plan.town_code") == scene["town"]
    assert "不在您的管辖范围内" in page.locator("#message").inner_text()
    page.close()


def test_a_plan_that_changed_before_the_click_is_refused_and_drawn_again(
    base_url: str, scene: dict[str, str], browser: Any, db: DatabaseSettings
) -> None:
    """Between seeing the plan and confirming it, a worker it would move leaves: the page says the plan changed
    (409 stale_plan), moves nobody, and shows the plan computed now."""
    engine = make_engine(db)
    with engine.begin() as conn:  # the grid is emptied again, so there is a plan to apply
        neighbour = conn.execute(
            text("SELECT min(code) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                 " WHERE g.community_code = :c AND g.code > :g"),
            {"c": scene["community"], "g": scene["grid"]},
        ).scalar_one()  # fmt: skip
        conn.execute(
            text("UPDATE worker SET grid_code = :to WHERE grid_code = :from AND active"),
            {"from": scene["grid"], "to": neighbour},
        )
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    sign_in(page, base_url, "leader", f"/staffing?town={scene['town']}")
    page.wait_for_function("window.gridgov && window.gridgov.page.ready && window.gridgov.page.plan", timeout=60_000)
    seen = page.evaluate("window.gridgov.page.plan")
    assert seen["moves"]
    leaving = seen["moves"][0]["worker_id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE worker SET active = false WHERE id = :w"), {"w": leaving})
    page.click("#apply")
    with page.expect_response(lambda r: "/v1/staffing/apply" in r.url, timeout=60_000) as answer:
        page.click("#confirm-yes")
    assert answer.value.status == 409 and answer.value.json()["error"] == "stale_plan"
    page.wait_for_function(
        f"window.gridgov.page.ready && window.gridgov.page.plan.fingerprint !== '{seen['fingerprint']}'",
        timeout=60_000,
    )
    assert "已重新计算方案" in page.locator("#message").inner_text()
    assert leaving not in [m["worker_id"] for m in page.evaluate("window.gridgov.page.plan.moves")]
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM worker WHERE grid_code = :g AND active"), {"g": scene["grid"]}
            ).scalar_one()
            == 0
        )
    engine.dispose()
    page.close()
