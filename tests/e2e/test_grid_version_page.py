"""In headless Chromium, the command centre draws a draft for a community from the grid versions page, sees it beside
the current grids (two maps moving together, the moved areas hatched with "从 … 调入 …", the figures before → after)
and makes it active from the page; a town leader of another town is refused the page in Chinese."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning import grid_versions
from tests.support.accounts import make_users
from tests.support.grid_areas import a_community_to_redesign

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-grid-versions-password-1234"


@pytest.fixture(scope="module")
def place(db: DatabaseSettings) -> dict[str, Any]:
    """A community to redraw, the command centre, and a town leader of another town."""
    engine = make_engine(db)
    with engine.begin() as conn:
        area = a_community_to_redesign(conn)
        other_town = conn.execute(
            text("SELECT min(code) FROM town WHERE code <> :t"), {"t": area.town_code}
        ).scalar_one()
        elsewhere = conn.execute(
            text(
                "SELECT min(g.code) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE g.community_code <> :c"
            ),
            {"c": area.community_code},
        ).scalar_one()
        make_users(
            conn,
            {"zhihui": ("command_centre", None), "zhenzhang": ("town_leader", other_town)},
            password=PASSWORD,
        )
    engine.dispose()
    return {"area": area, "elsewhere": elsewhere}


def sign_in(browser: Any, base_url: str, path: str, username: str) -> Any:
    page = browser.new_page(viewport={"width": 1500, "height": 900}, locale="zh-CN")
    page.goto(f"{base_url}{path}")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def active_version(db: DatabaseSettings) -> int:
    engine = make_engine(db)
    with engine.connect() as conn:
        version = int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())
    engine.dispose()
    return version


def test_the_command_centre_draws_compares_and_applies_a_draft(
    base_url: str, place: dict[str, Any], browser: Any, artifacts_dir: Path, db: DatabaseSettings
) -> None:
    area = place["area"]
    original = active_version(db)
    page = sign_in(browser, base_url, "/grid-versions", "zhihui")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    assert urlsplit(page.url).path == "/grid-versions"
    assert page.title() == "网格调整"
    page.wait_for_selector("body[data-loaded]", timeout=30_000)
    inline = page.evaluate("Array.from(document.scripts).filter(s => !s.src && s.type !== 'application/json').length")
    assert inline == 0

    # The form: the community, one grid more. A lock outside the community is refused, in Chinese, with its reason.
    page.select_option("select[name=level]", "community")
    page.fill("input[name=code]", area.community_code)
    page.fill("input[name=grids]", str(len(area.grid_codes) + 1))
    page.fill("input[name=lock]", place["elsewhere"])
    page.click("#draw-submit")
    page.wait_for_selector("body[data-refused]", timeout=30_000)
    refusal = page.locator("#draw-message").inner_text()
    assert refusal.startswith("未能绘制：") and place["elsewhere"] in refusal and "lock_outside_area" in refusal
    assert urlsplit(page.url).path == "/grid-versions"
    # Now with the community's own grid nearest the mean locked.
    page.fill("input[name=lock]", area.lock)
    with page.expect_navigation(timeout=120_000):
        page.click("#draw-submit")
    path = urlsplit(page.url).path
    assert path.startswith("/grid-versions/")
    version = int(path.rsplit("/", 1)[1])
    page.wait_for_selector("body[data-loaded]", timeout=60_000)
    assert page.title() == f"网格调整对比（版本 {version}）"
    assert page.locator("#version-status").inner_text() == "草案"
    assert area.community_code in page.locator("#version-area").inner_text()

    # Both maps draw their grids; the draft has one more grid and hatched moved areas; the locked grid is marked.
    hook = "window.gridgov.page"
    counts = page.evaluate(f"{hook}.counts()")
    assert counts["current"] == len(area.grid_codes)
    assert counts["draft"] == len(area.grid_codes) + 1
    assert counts["moved"] > 0 and counts["locked"] == 1
    rendered = page.evaluate(f"{hook}.rendered()")
    assert rendered["current"] > 0 and rendered["draft"] > 0 and rendered["moved"] > 0
    assert "±10%" in page.locator("#balance-key").inner_text()
    views = page.evaluate(f"{hook}.views()")
    assert views[0]["zoom"] == pytest.approx(views[1]["zoom"])
    assert views[0]["center"] == pytest.approx(views[1]["center"])

    # A user hovers a moved area and reads where it comes from and where it goes.
    point = page.evaluate(f"{hook}.movedPoint()")
    assert point is not None
    box = page.locator("#map-draft").bounding_box()
    assert box is not None
    assert page.evaluate(f"{hook}.tooltipAt({point['x']}, {point['y']})").startswith("从 ")
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"], steps=4)
    tooltip = page.locator(".gv-popup").first
    tooltip.wait_for(timeout=10_000)
    said = tooltip.inner_text()
    assert said.startswith("从 ") and " 调入 " in said
    moved_from, moved_to = said.removeprefix("从 ").split(" 调入 ")
    assert moved_from in area.grid_codes and moved_to != moved_from

    # The figures before → after, one row per grid, the locked one flagged; codes kept, new, retired.
    assert page.locator("#summary tbody tr").count() >= 6
    assert "最大偏离平均" in page.locator("#summary").inner_text()
    assert page.locator("#grids tbody tr").count() >= len(area.grid_codes) + 1
    assert page.locator(f"#grids tbody tr.locked[data-code='{area.lock}']").count() == 1
    assert "新增编码（" in page.locator("#codes").inner_text()
    # Dragging one map moves the other.
    page.evaluate(f"{hook}.views()")
    current_box = page.locator("#map-current").bounding_box()
    assert current_box is not None
    page.mouse.move(current_box["x"] + 200, current_box["y"] + 200)
    page.mouse.down()
    page.mouse.move(current_box["x"] + 260, current_box["y"] + 240, steps=5)
    page.mouse.up()
    after_drag = page.evaluate(f"{hook}.views()")
    assert after_drag[0]["center"] == pytest.approx(after_drag[1]["center"])
    assert after_drag[0]["center"] != pytest.approx(views[0]["center"])
    page.screenshot(path=str(artifacts_dir / "grid-version-compare.png"))

    # 生效: a confirmation first; cancelling changes nothing.
    page.click("#apply")
    page.click("#confirm-no")
    assert active_version(db) == original
    page.click("#apply")
    page.click("#confirm-yes")
    page.wait_for_selector("body[data-applied]", timeout=120_000)
    result = page.evaluate(f"{hook}.result()")
    assert result["version_id"] == version
    assert page.locator("#version-status").inner_text() == "生效"
    assert "已生效" in page.locator("#message").inner_text()
    assert page.locator("#apply").is_disabled()
    assert active_version(db) == version

    # Back on the versions page, the command centre rolls the change back: the original version is active again.
    page.goto(f"{base_url}/grid-versions")
    page.wait_for_selector("body[data-loaded]", timeout=30_000)
    listed = {v["id"]: v["status"] for v in page.evaluate(f"{hook}.versions()")}
    assert listed[version] == "active" and listed[original] == "retired"
    assert (
        page.locator(f"#versions tbody tr[data-id='{version}'] a").get_attribute("href") == f"/grid-versions/{version}"
    )
    page.click("#rollback")
    page.click("#rollback-yes")
    page.wait_for_function(f"{hook}.rolledBack() !== null", timeout=120_000)
    assert page.evaluate(f"{hook}.rolledBack()")["version_id"] == original
    assert active_version(db) == original
    assert "已回退" in page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts_dir / "grid-versions-list.png"))
    assert errors == []
    page.close()


def test_a_town_leader_of_another_town_gets_the_chinese_403_page(
    base_url: str, place: dict[str, Any], browser: Any, db: DatabaseSettings
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT max(id) FROM grid_version WHERE area_code = :c"), {"c": place["area"].community_code}
        ).scalar_one()
    engine.dispose()
    assert version is not None, "the first story drew a draft of the community"
    page = sign_in(browser, base_url, f"/grid-versions/{version}", "zhenzhang")
    assert urlsplit(page.url).path == f"/grid-versions/{version}"
    assert "您的账号无权查看此页面" in page.locator("main").inner_text()
    assert page.locator("#map-draft").count() == 0
    # Their own list is open to them, and holds no draft of the other town.
    page.goto(f"{base_url}/grid-versions")
    page.wait_for_selector("body[data-loaded]", timeout=30_000)
    listed = page.evaluate("window.gridgov.page.versions().map(v => v.id)")
    assert version not in listed
    page.close()


def test_a_stale_draft_says_so_and_its_apply_is_refused_in_chinese(
    base_url: str, place: dict[str, Any], browser: Any, db: DatabaseSettings
) -> None:
    area = place["area"]
    original = active_version(db)
    engine = make_engine(db)
    with engine.begin() as conn:
        draft = grid_versions.draw(
            conn,
            community=area.community_code,
            k=len(area.grid_codes) + 1,
            locked=[area.lock],
            actor_name="user:zhihui",
        )
    # An address of the community is retired after the draft was drawn.
    with engine.begin() as conn:
        retired = conn.execute(
            text(
                "UPDATE address SET status = 'retired' WHERE id = (SELECT min(id) FROM address "
                "WHERE grid_code = :g AND status = 'active') RETURNING id"
            ),
            {"g": area.others[0]},
        ).scalar_one()
    try:
        page = sign_in(browser, base_url, f"/grid-versions/{draft.id}", "zhihui")
        page.wait_for_selector("body[data-loaded]", timeout=60_000)
        assert page.locator("#stale").is_visible()
        assert "已过期" in page.locator("#stale").inner_text()
        page.click("#apply")
        page.click("#confirm-yes")
        page.wait_for_selector("body[data-refused]", timeout=60_000)
        said = page.locator("#message").inner_text()
        assert said.startswith("未生效：") and "已过期" in said and "stale_draft" in said
        assert page.evaluate("window.gridgov.page.refusal()")["status"] == 409
        assert page.locator("#version-status").inner_text() == "草案"
        assert active_version(db) == original
        page.close()
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE address SET status = 'active' WHERE id = :id"), {"id": retired})
        engine.dispose()
