"""In headless Chromium on the test city, the command centre plans a joint inspection of market supervision and
health in one town on the map, sees the strata, publishes the commitment (the public page shows it, never a class),
draws with the public value, sees the teams and their coloured routes, moves a stop by hand and sees the day
re-optimised around it, and opens the route sheets; an officer plans only for their department, a town leader reads
the plan without the buttons, a dispatcher gets the forbidden page."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import make_users

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-inspections-password-1234"
ITEMS = ("market_supervision-10", "health-02")
READY = "window.gridgov && window.gridgov.page && window.gridgov.page.ready"


@pytest.fixture(scope="module")
def scene(db: DatabaseSettings) -> dict[str, str]:
    """The town with most open entities of the items' industries; the command centre, an officer, its leader and a
    dispatcher."""
    engine = make_engine(db)
    with engine.begin() as conn:
        town = conn.execute(
            text(
                "SELECT town_code FROM entity WHERE status = 'open' AND industry IN ('美容美发', '批发零售') "
                "GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1"
            )
        ).scalar_one()
        community = conn.execute(text("SELECT min(code) FROM community WHERE town_code = :t"), {"t": town}).scalar_one()
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "officer": ("department_officer", "market_supervision"),
                "leader": ("town_leader", town),
                "dispatcher": ("dispatcher", community),
            },
            password=PASSWORD,
        )
    engine.dispose()
    return {"town": town}


def sign_in(browser: Any, base_url: str, username: str, path: str) -> Any:
    """A new page signed in through the login page and brought back to `path`."""
    page = browser.new_page(viewport={"width": 1500, "height": 950}, locale="zh-CN")
    page.goto(f"{base_url}{path}")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == urlsplit(path).path
    return page


BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_local(seconds_ahead: float) -> str:
    """The platform's now plus `seconds_ahead`, as a datetime-local input holds it in Beijing time."""
    at = clock.now() + timedelta(seconds=seconds_ahead)
    return at.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S")


def cookie(page: Any) -> str:
    """The browser's session cookie, for a request of the test's own."""
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())


def hook(page: Any) -> Any:
    """The page's test hook."""
    return page.evaluate("window.gridgov.page")


def test_the_command_centre_plans_draws_routes_moves_and_prints_a_joint_inspection(
    base_url: str, scene: dict[str, str], browser: Any, artifacts_dir: Path, db: DatabaseSettings
) -> None:
    errors: list[str] = []
    requested: list[str] = []
    page = sign_in(browser, base_url, "centre", "/inspections")
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    page.wait_for_function(READY, timeout=60_000)
    assert page.locator("#map canvas.maplibregl-canvas").count() == 1
    # The ratios show the city's effective defaults.
    defaults = hook(page)["defaultRatios"]
    assert set(defaults) == {"A", "B", "C", "D"}
    assert page.locator("#ratio-A").get_attribute("placeholder") == defaults["A"]

    # Two departments: their items appear, marked 重点 or 一般; keep one item of each.
    page.check("#departments input[value=market_supervision]")
    page.check("#departments input[value=health]")
    page.wait_for_function(
        "window.gridgov.page.itemsShown.some(c => c.startsWith('health-'))"
        " && window.gridgov.page.itemsShown.some(c => c.startsWith('market_supervision-'))"
    )
    assert page.locator("#items .ip-key.key").count() >= 1 and page.locator("#items .ip-key.general").count() >= 1
    page.click("#items-none")
    for item in ITEMS:
        page.check(f"#items input[value='{item}']")

    # The town, chosen from the list, is outlined on the map with its grids.
    page.select_option("#area-town", scene["town"])
    page.wait_for_function("window.gridgov.page.gridsShown > 0", timeout=30_000)
    pv_at = beijing_local(6)
    page.fill("#pv-at", pv_at)
    page.fill("#plan-title", "浏览器测试：美容美发与批发零售联合抽查")

    # Preview: the strata (item × class) with size, ratio and n; the area lightly shaded on the map.
    with page.expect_response(lambda r: r.url.endswith("/v1/inspection-plans/preview")) as previewed:
        page.click("#preview")
    assert previewed.value.status == 200
    page.wait_for_function("window.gridgov.page.preview !== null")
    preview = previewed.value.json()
    rows = page.locator("#strata tbody tr")
    assert rows.count() == len(preview["strata"]) > 0
    assert {s["item_code"] for s in preview["strata"]} == set(ITEMS)
    assert page.locator("#strata-n").inner_text() == str(sum(s["n"] for s in preview["strata"]))
    assert hook(page)["preview"]["grids"] == hook(page)["gridsShown"]
    page.screenshot(path=str(artifacts_dir / "inspections_preview.png"), animations="disabled")

    # Publish the commitment: the plan opens at /inspections/{id} with its commitment and candidates' digest.
    with page.expect_navigation(timeout=60_000):
        page.click("#create")
    plan_id = int(urlsplit(page.url).path.rsplit("/", 1)[1])
    page.wait_for_function(f"{READY} && window.gridgov.page.plan", timeout=60_000)
    plan = hook(page)["plan"]
    assert plan["status"] == "committed" and sorted(plan["departments"]) == ["health", "market_supervision"]
    assert page.locator("#commitment").inner_text() == plan["commitment"]
    assert page.locator("#candidates-sha256").inner_text() == plan["candidates_sha256"]
    assert page.locator("#public-page").get_attribute("href") == f"/public/inspections/{plan_id}/page"
    assert page.locator("#candidates-csv").get_attribute("href") == f"/public/inspections/{plan_id}/candidates.csv"
    assert page.locator(f"#plans tbody tr[data-plan='{plan_id}']").count() == 1

    # The public side, with no credential: the commitment before the draw, and never a class.
    public = httpx.get(f"{base_url}/public/inspections/{plan_id}", timeout=30).json()
    assert public["commitment"] == plan["commitment"] and public["server_seed"] is None
    assert "credit_class" not in str(public)

    # Draw once the announced instant (Beijing time on the form) has passed.
    due = datetime.fromisoformat(plan["public_value_at"])
    # The answer's instant may carry any offset (the database's session time zone): compare it in Beijing time.
    assert due.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S") == pv_at
    while clock.now() <= due:
        time.sleep(0.2)
    page.fill("#public-value", "3 8 6")
    with page.expect_response(lambda r: r.url.endswith(f"/v1/inspection-plans/{plan_id}/draw")) as drew:
        page.click("#draw")
    assert drew.value.status == 200, drew.value.text()
    page.wait_for_function(f"{READY} && window.gridgov.page.plan.status === 'drawn'", timeout=60_000)
    plan = hook(page)["plan"]
    located = [v for v in plan["visits"] if v["lon"] is not None]
    assert plan["visits"] and plan["teams"]
    assert hook(page)["drawn"]["visits"] == len(located)
    assert page.locator("#teams li").count() == len(plan["teams"])
    assert all(len(t["inspectors"]) >= 2 for t in plan["teams"])
    # Each team in the panel: its number, departments, and every inspector with their department.
    first = plan["teams"][0]
    panel = page.locator(f"#teams li[data-team='{first['id']}']").inner_text()
    assert f"第 {first['team_no']} 组" in panel
    assert all(i["name"] in panel for i in first["inspectors"])
    assert ("东莞市市场监督管理局" in panel) is ("market_supervision" in first["departments"])
    assert {d for t in plan["teams"] for d in t["departments"]} == {"market_supervision", "health"}
    assert "摇号完成" in page.locator("#message").inner_text()

    # Routes: each team-day drawn in its team's colour, listed per team and day.
    with page.expect_response(
        lambda r: r.url.endswith(f"/v1/inspection-plans/{plan_id}/routes") and r.request.method == "POST",
        timeout=120_000,
    ) as solved:
        page.click("#solve-routes")
    assert solved.value.status == 200, solved.value.text()
    page.wait_for_function("window.gridgov.page.ready && window.gridgov.page.routes.length > 0", timeout=120_000)
    routes = hook(page)["routes"]
    assert hook(page)["drawn"]["routes"] == len(routes)
    assert page.locator("#routes .ip-day").count() == len(routes)
    routed = sorted(v for r in routes for v in r["visits"])
    assert len(routed) == len(set(routed))
    page.screenshot(path=str(artifacts_dir / "inspections_routes.png"), animations="disabled")

    # Move a stop by hand: the last stop of the longest day goes to a new day of its team (always feasible: it was
    # reachable alone); it is pinned there, and the day it left is re-optimised without it.
    day = max(routes, key=lambda r: (len(r["visits"]), r["key"]))
    assert len(day["visits"]) >= 2
    moved = day["visits"][-1]
    page.click(f"#routes tr[data-visit='{moved}']")
    assert page.locator("#move-form").is_visible()
    assert page.locator("#move-team").input_value() == str(day["team_id"])
    assert page.locator("#move-day").input_value() == str(day["day"])
    new_day = 1 + max(r["day"] for r in routes if r["team_id"] == day["team_id"])
    page.select_option("#move-day", str(new_day))
    page.fill("#move-position", "1")
    with page.expect_response(lambda r: r.url.endswith("/routes/move")) as answer:
        page.click("#move")
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_function("window.gridgov.page.ready && window.gridgov.page.moved !== null", timeout=60_000)
    now = {r["key"]: r for r in hook(page)["routes"]}
    after = now[f"{day['team_id']}/{new_day}"]
    assert after["visits"] == [moved] and after["manual"] is True
    assert sorted(now[day["key"]]["visits"]) == sorted(v for v in day["visits"] if v != moved)
    assert hook(page)["drawn"]["routes"] == len(now) == len(routes) + 1
    assert "其余站点已重新优化" in page.locator("#message").inner_text()
    page.screenshot(path=str(artifacts_dir / "inspections_moved.png"), animations="disabled")

    # A shop that turns out to open only five minutes after midnight fits no day: the move is refused in Chinese with
    # the reason (422 route_infeasible), and the routes stay as they were.
    before = hook(page)["routes"]
    victim = next(v for r in before for v in r["visits"] if v != moved)
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE inspection_visit SET window_start = 0, window_end = 5 WHERE id = :v"), {"v": victim})
    engine.dispose()
    page.click(f"#routes tr[data-visit='{victim}']")
    page.fill("#move-position", "1")
    with page.expect_response(lambda r: r.url.endswith("/routes/move")) as refused:
        page.click("#move")
    assert refused.value.status == 422 and refused.value.json()["error"] == "route_infeasible"
    page.wait_for_function("window.gridgov.page.moveRefused !== null")
    said = page.locator("#message").inner_text()
    assert "路线未改动" in said and refused.value.json()["unassigned"][0]["detail"] in said
    # Said once: the refusal's sentence already names the reason, the page does not repeat it.
    assert said.count(refused.value.json()["unassigned"][0]["detail"]) == 1
    assert hook(page)["routes"] == before
    stored = httpx.get(f"{base_url}/v1/inspection-plans/{plan_id}/routes", headers={"Cookie": cookie(page)}, timeout=30)
    assert stored.status_code == 200
    stored_days = {
        f"{t['team_id']}/{d['day']}": [s["visit_id"] for s in d["stops"]]
        for t in stored.json()["teams"]
        for d in t["days"]
    }
    assert stored_days == {r["key"]: r["visits"] for r in before}

    # The route sheets: one per team-day, in the order of the routes, ready to print.
    with page.context.expect_page() as opened:
        page.click("#print")
    sheets = opened.value
    sheets.wait_for_load_state()
    assert urlsplit(sheets.url).path == f"/inspections/{plan_id}/print"
    assert sheets.locator("article.ip-sheet").count() == len(hook(page)["routes"])
    sheet = sheets.locator(f"article.ip-sheet[data-team='{day['team_no']}'][data-date='{day['date']}']")
    assert sheet.count() == 1
    assert sheet.locator("tbody tr").count() == len(now[day["key"]]["visits"])
    assert "检查结果" in sheet.inner_text() and "统一社会信用代码" in sheet.inner_text()
    sheets.screenshot(path=str(artifacts_dir / "inspections_print.png"), full_page=True)
    sheets.close()

    # The public notice page the plan links to shows the commitment and the selection, never a class.
    notice = browser.new_page()
    notice.goto(f"{base_url}/public/inspections/{plan_id}/page")
    assert plan["commitment"] in notice.content()
    assert "credit_class" not in notice.content() and "信用类别" not in notice.content()
    notice.close()

    assert errors == []
    outside = [u for u in requested if urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert outside == [], "the page must not leave the intranet"
    page.close()


def click_map(page: Any, lon: float, lat: float, *, double: bool = False) -> None:
    """Click (or double-click) the map where the point (lon, lat) is drawn."""
    x, y = page.evaluate("([lon, lat]) => window.gridgov.page.project(lon, lat)", [lon, lat])
    box = page.locator("#map").bounding_box()
    if double:
        page.mouse.dblclick(box["x"] + x, box["y"] + y)
    else:
        page.mouse.click(box["x"] + x, box["y"] + y)


def test_an_area_of_grids_clicked_or_a_polygon_drawn_on_the_map_is_previewed(
    base_url: str, scene: dict[str, str], browser: Any, artifacts_dir: Path, db: DatabaseSettings
) -> None:
    """Two grids clicked on the map are the area sent (and a third click unselects one); a square drawn by clicking
    its corners and double-clicking the last is the polygon sent; each preview answers with its strata."""
    engine = make_engine(db)
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT g.code, ST_X(p) AS lon, ST_Y(p) AS lat FROM grid g "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "CROSS JOIN LATERAL ST_PointOnSurface(g.geom) p "
                "WHERE g.town_code = :t ORDER BY ST_Area(g.geom) DESC LIMIT 2"
            ),
            {"t": scene["town"]},
        ).all()
    engine.dispose()
    page = sign_in(browser, base_url, "centre", "/inspections")
    page.wait_for_function(READY, timeout=60_000)
    page.check("#departments input[value=market_supervision]")
    page.wait_for_function("window.gridgov.page.itemsShown.length > 0")
    page.select_option("#area-town", scene["town"])
    page.wait_for_function("window.gridgov.page.gridsShown > 0", timeout=30_000)
    page.fill("#pv-at", beijing_local(600))

    page.check("input[name=area][value=grids]")
    for grid in grids:
        click_map(page, grid.lon, grid.lat)
    assert hook(page)["grids"] == sorted(g.code for g in grids)
    assert page.locator("#grid-count").inner_text() == "2"
    with page.expect_request(lambda r: r.url.endswith("/v1/inspection-plans/preview")) as sent:
        page.click("#preview")
    assert sent.value.post_data_json["grids"] == sorted(g.code for g in grids)
    page.wait_for_function("window.gridgov.page.preview !== null")
    by_grids = hook(page)["preview"]
    assert by_grids["size"] > 0 and by_grids["grids"] == 2
    click_map(page, grids[0].lon, grids[0].lat)
    assert hook(page)["grids"] == [grids[1].code] and hook(page)["preview"] is None
    assert page.locator("#create").is_disabled(), "a changed area needs a new preview"

    # A square of about 1 km around the first grid's point, drawn corner by corner, closed by a double click.
    page.check("input[name=area][value=polygon]")
    page.click("#polygon-start")
    lon, lat, d = grids[0].lon, grids[0].lat, 0.005
    corners = [(lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d)]
    for corner in corners[:-1]:
        click_map(page, *corner)
    click_map(page, *corners[-1], double=True)
    polygon = hook(page)["polygon"]
    assert polygon["type"] == "Polygon" and len(polygon["coordinates"][0]) == 5
    assert polygon["coordinates"][0][0] == polygon["coordinates"][0][-1]
    assert "已画（4 个顶点）" in page.locator("#polygon-state").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/v1/inspection-plans/preview")) as answer:
        page.click("#preview")
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.post_data_json["polygon"] == polygon
    page.wait_for_function("window.gridgov.page.preview !== null")
    assert hook(page)["preview"]["size"] == sum(s["size"] for s in answer.value.json()["strata"])
    page.screenshot(path=str(artifacts_dir / "inspections_polygon.png"), animations="disabled")
    page.close()


def test_an_officer_plans_only_for_their_department(base_url: str, scene: dict[str, str], browser: Any) -> None:
    page = sign_in(browser, base_url, "officer", "/inspections")
    page.wait_for_function(READY, timeout=60_000)
    boxes = page.locator("#departments input[name=department]")
    assert boxes.count() == 1 and boxes.first.is_checked() and boxes.first.is_disabled()
    shown = hook(page)["itemsShown"]
    assert shown and all(code.startswith("market_supervision-") for code in shown)

    # A plan of their own department, made by mistake, is cancelled from its page before the draw, with a reason.
    body = {
        "departments": ["market_supervision"],
        "items": ["market_supervision-10"],
        "towns": [scene["town"]],
        "public_value_source": "中国福利彩票3D 开奖号码",
        "public_value_at": (clock.now() + timedelta(hours=2)).isoformat(),
    }
    made = page.evaluate(
        """async (body) => {
          const r = await fetch("/v1/inspection-plans", {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", Accept: "application/json"}, body: JSON.stringify(body)});
          return [r.status, await r.json()];
        }""",
        body,
    )
    assert made[0] == 201, made
    page.goto(f"{base_url}/inspections/{made[1]['id']}")
    page.wait_for_function(f"{READY} && window.gridgov.page.plan", timeout=60_000)
    assert page.locator("#draw-form").is_visible()
    page.click(".ip-cancel summary")
    page.fill("#cancel-reason", "范围选错，重新建立")
    with page.expect_response(lambda r: r.url.endswith("/cancel")) as cancelled:
        page.click("#cancel-plan")
    assert cancelled.value.status == 200, cancelled.value.text()
    page.wait_for_function("window.gridgov.page.ready && window.gridgov.page.plan.status === 'cancelled'")
    assert page.locator("#draw-form").is_hidden()
    assert page.locator("#cancel-reason-shown").inner_text().startswith("范围选错，重新建立")
    assert "撤销成功" in page.locator("#message").inner_text()
    page.close()


def test_a_town_leader_reads_the_plans_without_buttons_and_a_dispatcher_is_refused(
    base_url: str, scene: dict[str, str], browser: Any
) -> None:
    page = sign_in(browser, base_url, "leader", "/inspections")
    page.wait_for_function(READY, timeout=60_000)
    assert page.locator("#plan-form").count() == 0
    plans = page.locator("#plans tbody tr")
    assert plans.count() == hook(page)["plans"] >= 1
    plan_id = plans.first.get_attribute("data-plan")
    page.goto(f"{base_url}/inspections/{plan_id}")
    page.wait_for_function(f"{READY} && window.gridgov.page.plan", timeout=60_000)
    for button in ("#draw", "#solve-routes", "#move", "#preview", "#create"):
        assert page.locator(button).count() == 0, button
    assert page.locator("#plan-section").is_visible()
    page.close()

    refused = sign_in(browser, base_url, "dispatcher", "/")
    answer = refused.goto(f"{base_url}/inspections")
    assert answer is not None and answer.status == 403
    assert "您的账号无权查看此页面" in refused.content()
    refused.close()
