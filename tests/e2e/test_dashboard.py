"""The command centre's dashboard at / in a real (headless) Chromium: drill-down, figures, live feed, role views."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from api.auth.service import create_api_key
from api.main import create_app
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from maps.settings import MapSettings
from supervision.uscc import uscc_check_char
from tests.support.accounts import PASSWORD, make_api_key, make_users
from tests.support.city import a_worker, busiest_town
from tests.support.server import SECRET_KEY, served, server_settings

pytestmark = [pytest.mark.db, pytest.mark.browser]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CENTRE, LEADER = "zhihui", "zhenjie"
DISPATCHER, WORKER, OFFICER = "diaodu", "wanggeyuan", "bumen"
READY = "window.gridgov && window.gridgov.page && window.gridgov.page.isReady()"


@pytest.fixture(scope="module")
def city(db: DatabaseSettings) -> dict[str, Any]:
    """A command-centre account, a town leader of one town, a registry's API key, and places to look at."""
    engine = make_engine(db)
    with engine.begin() as conn:
        other = busiest_town(conn)
        own = conn.execute(
            text("SELECT code, name FROM town WHERE code <> :t ORDER BY code LIMIT 1"), {"t": other.code}
        ).one()
        worker = a_worker(conn)
        make_users(
            conn,
            {
                CENTRE: ("command_centre", None),
                LEADER: ("town_leader", own.code),
                DISPATCHER: ("dispatcher", worker.community_code),
                WORKER: ("grid_worker", str(worker.id)),
                OFFICER: ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, name="e2e-registry", permissions=["intake"])
        # A GIS client's key (the map, the outlines and the search box); the registry's key may not open the map.
        map_key = make_api_key(conn, SECRET_KEY, name="e2e-gis", permissions=["gis", "geocode"])
        hotline = create_api_key(conn, SECRET_KEY, name="e2e-hotline", rate_limited=False, role="hotline").key
        # The grid with the most clues in the busy town: entities and clues a city-wide account sees there.
        busy = conn.execute(
            text(
                "SELECT g.code, g.name, g.community_code, c.name AS community_name, t.name AS town_name, g.town_code, "
                "ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
                "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "JOIN community c ON c.code = g.community_code JOIN town t ON t.code = g.town_code "
                "WHERE g.town_code = :town ORDER BY (SELECT count(*) FROM clue k WHERE k.grid_code = g.code) DESC, "
                "(SELECT count(*) FROM entity e WHERE e.grid_code = g.code) DESC, g.code LIMIT 1"
            ),
            {"town": other.code},
        ).one()
        door = conn.execute(
            text(
                # Of the first doors with a worker, the one deepest inside its grid: a click there is in no doubt.
                "SELECT d.* FROM (SELECT a.full_text, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, a.grid_code, "
                "ST_Distance(CAST(a.geom AS geography), CAST(ST_Boundary(g.geom) AS geography)) AS inside_m "
                "FROM address a JOIN grid g ON g.code = a.grid_code "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE a.level = 'door' AND a.kind = 'road_door' AND a.status = 'active' "
                "AND EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = a.grid_code AND w.active) "
                "ORDER BY a.id LIMIT 500) d ORDER BY d.inside_m DESC LIMIT 1"
            )
        ).one()
    engine.dispose()
    return {
        "own_town": {"code": own.code, "name": own.name},
        "busy": dict(busy._mapping),
        "door": dict(door._mapping),
        "api_key": key,
        "map_key": map_key,
        "hotline_key": hotline,
    }


@pytest.fixture(scope="module")
def live_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app as `gridgov serve` runs it (the outbox relay and jobs in-process), on a free loopback port."""
    app = create_app(db_settings=db, server_settings=server_settings(tmp_path_factory.mktemp("state")), run_jobs=True)
    with served(app, name="uvicorn-dashboard") as url:
        yield url


@pytest.fixture(scope="module")
def amap_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with the Amap basemap (GCJ-02), its tiles from an intranet path of this server."""
    maps = MapSettings(basemap="amap", tile_url="/static/favicon.svg?z={z}&x={x}&y={y}")
    app = create_app(
        db_settings=db, server_settings=server_settings(tmp_path_factory.mktemp("state")), map_settings=maps
    )
    with served(app, name="uvicorn-dashboard") as url:
        yield url


def _sign_in(browser: Any, base_url: str, username: str, path: str = "/") -> tuple[Any, Any, list[str]]:
    """A fresh browser context signed in through the login page, at `path`; returns (context, page, page errors)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base_url + path)
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_function(READY, timeout=30_000)
    return context, page, errors


def _idle(page: Any) -> None:
    page.evaluate("window.gridgov.page.idle()")


def _click_at(page: Any, lon: float, lat: float) -> None:
    """Click the map where the WGS84 point is drawn, as a person would."""
    _idle(page)
    at = page.evaluate("([lon, lat]) => window.gridgov.page.pixel(lon, lat)", [lon, lat])
    page.mouse.click(at["x"], at["y"])


def _outlines_only(page: Any) -> None:
    """Switch off the point layers in the layer switcher, so that a click reaches the outlines under them."""
    page.click("#layer-panel summary")
    for name in ("entities", "tasks", "clues", "registrations"):
        page.uncheck(f"#layer-panel input[name={name}]")
    page.click("#layer-panel summary")


def _wait_view(page: Any, level: str, code: str | None) -> dict[str, Any]:
    try:
        page.wait_for_function(
            "([level, code]) => { const v = window.gridgov.page.view(); return v.level === level && v.code === code; }",
            arg=[level, code],
            timeout=15_000,
        )
    except Exception as error:  # say where the page is instead of only that it timed out
        now = page.evaluate("[window.gridgov.page.view(), document.querySelector('#status').textContent]")
        pytest.fail(f"the view did not become {level} {code}: it is {now} ({error})")
    _idle(page)
    view: dict[str, Any] = page.evaluate("window.gridgov.page.view()")
    return view


def _crumbs(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#breadcrumb a, #breadcrumb .here").all_inner_texts()]


def _query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_the_command_centre_drills_from_the_city_to_a_grid_and_a_link_reopens_the_view(
    live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    busy = city["busy"]
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    assert page.title() == "东莞市网格化治理平台"
    # The city: every town outline and the grids drawn from the vector tiles, the city's figures beside the seed's.
    assert page.evaluate("window.gridgov.page.view()")["level"] == "city"
    drawn = page.evaluate("window.gridgov.page.counts()")
    assert drawn["towns"] == 33 and drawn["grids"] > 100, drawn
    assert page.evaluate("window.gridgov.page.firstPaintMs") > 0
    kpi = page.locator("#kpi").inner_text()
    assert "东莞市" in kpi
    for label in ("推送任务", "已完成", "完成率", "按时率", "在办", "逾期", "线索办结率", "持证率"):
        assert label in kpi
    for seed in ("99.16%", "97.1%", "75.69%"):
        assert seed in kpi, f"the seed's {seed} beside our figure"
    assert page.locator("#kpi-children tbody tr").count() == 33
    page.wait_for_function("document.querySelector('#trend canvas') !== null", timeout=10_000)
    assert _crumbs(page) == ["东莞市"]
    page.screenshot(path=str(artifacts_dir / "dashboard_city.png"))

    # A click on the map drills into the town under it, then the community, then the grid (a click on a point
    # opens the point's card instead, so the points are switched off).
    _outlines_only(page)
    _click_at(page, busy["lon"], busy["lat"])
    _wait_view(page, "town", busy["town_code"])
    assert _crumbs(page) == ["东莞市", busy["town_name"]]
    assert _query(page) == {"level": "town", "code": busy["town_code"]}
    assert busy["town_name"] in page.locator("#kpi h2").inner_text()
    _click_at(page, busy["lon"], busy["lat"])
    _wait_view(page, "community", busy["community_code"])
    assert _crumbs(page) == ["东莞市", busy["town_name"], busy["community_name"]]
    page.screenshot(path=str(artifacts_dir / "dashboard_community.png"))
    _click_at(page, busy["lon"], busy["lat"])
    view = _wait_view(page, "grid", busy["code"])
    assert _crumbs(page) == ["东莞市", busy["town_name"], busy["community_name"], view["name"]]
    assert _query(page) == {"level": "grid", "code": busy["code"]}
    # The grid in view is the one outlined as selected, and the map shows it.
    assert busy["code"] in {f["code"] for f in page.evaluate("window.gridgov.page.renderedFeatures('grids')")}
    page.screenshot(path=str(artifacts_dir / "dashboard_grid.png"))

    # The browser's back button goes one step up; the breadcrumb goes anywhere up; a row of the table goes down.
    page.go_back()
    _wait_view(page, "community", busy["community_code"])
    page.locator("#breadcrumb a", has_text=busy["town_name"]).click()
    _wait_view(page, "town", busy["town_code"])
    row = page.locator("#kpi-children tbody tr", has_text=busy["community_name"]).first
    row.click()
    _wait_view(page, "community", busy["community_code"])

    # The URL of a view is a link: opened afresh, it shows the same view.
    link = f"{live_url}/?level=grid&code={busy['code']}"
    page.goto(link)
    page.wait_for_function(READY, timeout=30_000)
    again = _wait_view(page, "grid", busy["code"])
    assert again["name"] == view["name"]
    assert _crumbs(page) == ["东莞市", busy["town_name"], busy["community_name"], view["name"]]
    assert not errors, errors
    context.close()


def test_a_registration_posted_through_the_api_appears_on_the_open_dashboard(
    live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    door = city["door"]
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    page.wait_for_function("document.querySelector('#live-state').dataset.state === 'open'", timeout=15_000)
    first17 = "91441900QD0000001"
    body = {
        "event_id": "e2e-dashboard-live-1",
        "kind": "new",
        "uscc": first17 + uscc_check_char(first17),
        "name": "东莞市实时看板商行",
        "address": door["full_text"],
        "business_scope": "日用百货销售",
        "occurred_at": (clock.now() - timedelta(minutes=5)).isoformat(),
    }
    answer = httpx.post(f"{live_url}/v1/registrations", json=body, headers={"X-API-Key": city["api_key"]}, timeout=30)
    assert answer.status_code in (201, 202), answer.text

    # It comes in on the live feed, in Chinese, and is drawn on the map where the door is.
    item = page.locator("#live-feed li[data-kind=registration]").first
    item.wait_for(timeout=20_000)
    assert item.locator(".tag").inner_text() == "新登记"
    assert re.search(r"[\u4e00-\u9fff]", item.locator(".label").inner_text())
    page.wait_for_function("window.gridgov.page.counts().registrations >= 1", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "dashboard_live_registration.png"))
    assert not errors, errors
    context.close()


def test_a_town_leader_sees_outlines_but_no_work_in_another_town_and_cannot_drill_into_it(
    live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    busy, own = city["busy"], city["own_town"]
    layers = ("entities", "tasks", "clues")

    # At street level over the busy town's grid, the command centre sees entities and clues.
    context, page, _ = _sign_in(browser, live_url, CENTRE)
    page.evaluate("([lon, lat]) => window.gridgov.page.setView(lon, lat, 14.5)", [busy["lon"], busy["lat"]])
    _idle(page)
    centre_sees = page.evaluate("window.gridgov.page.counts()")
    assert centre_sees["entities"] > 0 and centre_sees["clues"] > 0, centre_sees
    context.close()

    # The leader starts at their own town: the breadcrumb starts there, the figures are the town's.
    context, page, errors = _sign_in(browser, live_url, LEADER)
    assert page.evaluate("window.gridgov.page.view()")["code"] == own["code"]
    assert _crumbs(page) == [own["name"]]
    assert own["name"] in page.locator("#kpi h2").inner_text()
    # At home the leader's map shows their town's grids and its work.
    drawn = page.evaluate("window.gridgov.page.renderedFeatures('grids')")
    assert drawn and {g["town_code"] for g in drawn} == {own["code"]}
    # Panned into the busy town: no entity, task or clue of it is drawn, nor any grid of it with its figures.
    page.evaluate("([lon, lat]) => window.gridgov.page.setView(lon, lat, 14.5)", [busy["lon"], busy["lat"]])
    _idle(page)
    leader_sees = page.evaluate("window.gridgov.page.counts()")
    for name in layers:
        assert leader_sees[name] == 0, (name, leader_sees)
    elsewhere = page.evaluate("window.gridgov.page.renderedFeatures('grids')")
    assert all(g["town_code"] == own["code"] or "open_tasks" not in g for g in elsewhere), elsewhere
    # A click there does not leave the leader's town.
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("document.querySelector('#status').textContent.includes('超出您的管辖范围')", timeout=10_000)
    assert page.evaluate("window.gridgov.page.view()")["code"] == own["code"]
    page.screenshot(path=str(artifacts_dir / "dashboard_town_leader_elsewhere.png"))
    # Nor does a link to another town's view.
    page.goto(f"{live_url}/?level=town&code={busy['town_code']}")
    page.wait_for_function(READY, timeout=30_000)
    assert page.evaluate("window.gridgov.page.view()")["code"] == own["code"]
    assert not errors, errors
    context.close()


def test_the_map_is_exported_as_a_png_of_the_view(
    live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    _idle(page)
    with page.expect_download(timeout=15_000) as download_info:
        page.click("#export-png")
    download = download_info.value
    assert download.suggested_filename == "网格地图-东莞市.png"
    target = artifacts_dir / "dashboard_export.png"
    download.save_as(str(target))
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not errors, errors
    context.close()


def test_a_searched_address_is_shown_with_its_grid_and_the_view_drills_into_it(
    live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    door = city["door"]
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    page.fill("#search input[name=q]", door["full_text"])
    page.click("#search button[type=submit]")
    card = page.locator(".search-result .search-card")
    card.wait_for(timeout=15_000)
    # The standard address and the answer's confidence, a marker where it is, its grid outlined.
    assert door["full_text"] in card.inner_text() and "置信度" in card.inner_text()
    assert page.locator(".maplibregl-marker").count() == 1
    assert page.evaluate("window.gridgov.page.searchedGrid()") == door["grid_code"]
    _idle(page)
    page.screenshot(path=str(artifacts_dir / "dashboard_search.png"))
    card.locator("button.drill-grid").click()
    _wait_view(page, "grid", door["grid_code"])
    assert _query(page) == {"level": "grid", "code": door["grid_code"]}
    assert not errors, errors
    context.close()


def test_on_a_gcj02_basemap_the_outlines_and_a_searched_address_are_shifted_alike(
    amap_url: str, browser: Any, city: dict[str, Any]
) -> None:
    door = city["door"]
    context, page, errors = _sign_in(browser, amap_url, CENTRE)
    tiles: list[str] = []
    page.on("request", lambda request: tiles.append(request.url) if "/tiles/" in request.url else None)
    page.fill("#search input[name=q]", door["full_text"])
    page.click("#search button[type=submit]")
    page.locator(".search-result .search-card").wait_for(timeout=15_000)
    _idle(page)
    # The vector tiles are asked in GCJ-02, the basemap's system.
    assert tiles and all("coords=gcj02" in u for u in tiles), tiles[:3]
    # The marker stands where the page draws the door's WGS84 point shifted to GCJ-02 (about 500 m off unshifted).
    marker = page.locator(".maplibregl-marker").bounding_box()
    assert marker is not None
    at = page.evaluate("([lon, lat]) => window.gridgov.page.pixel(lon, lat)", [door["lon"], door["lat"]])
    assert abs(marker["x"] + marker["width"] / 2 - at["x"]) < 4 and abs(marker["y"] + marker["height"] - at["y"]) < 8
    # Clicks there (through the marker and its card) drill down to the door's own grid: outlines and points agree.
    page.add_style_tag(content=".maplibregl-marker, .maplibregl-popup { pointer-events: none !important; }")
    _outlines_only(page)
    grid = door["grid_code"]
    for level, code in (("town", f"{grid[:9]}000"), ("community", grid[:12]), ("grid", grid)):
        _click_at(page, door["lon"], door["lat"])
        _wait_view(page, level, code)
    assert not errors, errors
    context.close()


class _Scripts(HTMLParser):
    """The <script> tags of a page: (attributes, text inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None and data.strip():
            self.scripts[-1] = (self._open, self.scripts[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


def test_the_dashboard_has_no_inline_script_and_reaches_nothing_beyond_this_server(
    live_url: str, browser: Any, city: dict[str, Any]
) -> None:
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.reload()
    page.wait_for_function(READY, timeout=30_000)
    _idle(page)
    parser = _Scripts()
    parser.feed(context.request.get(f"{live_url}/", headers={"Accept": "text/html"}).text())
    assert parser.scripts, "the page loads its module"
    for attrs, body in parser.scripts:
        # A strict Content-Security-Policy can hold: code comes from files, configuration is a JSON data block.
        assert attrs.get("src") or attrs.get("type") == "application/json", (attrs, body[:80])
    web = [u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any("/tiles/grids/" in u for u in web), "the grids come from the vector tiles"
    foreign = sorted({urlsplit(u).hostname or "" for u in web} - LOCAL_HOSTS)
    assert not foreign, f"the page reached beyond this server: {foreign}"
    assert not errors, errors
    context.close()


def _open_as(browser: Any, base_url: str, who: str, path: str = "/") -> tuple[Any, Any, list[str]]:
    """The dashboard signed in as account `who`, or, for "api_key:<key>", with an API key on every request."""
    if not who.startswith("api_key:"):
        return _sign_in(browser, base_url, who, path)
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="zh-CN", extra_http_headers={"X-API-Key": who[8:]}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base_url + path)
    page.wait_for_function(READY, timeout=30_000)
    return context, page, errors


def _lists_settled(page: Any) -> None:
    page.wait_for_function("window.gridgov.lists !== undefined", timeout=15_000)
    page.evaluate(
        "window.gridgov.lists.ready.then(() => window.gridgov.lists.settled && window.gridgov.lists.settled())"
    )


def _no_error_shown(page: Any, refused: list[str]) -> None:
    """Nothing on the page reads as a failure: no 403 asked, no warning, no panel or list in error."""
    assert not refused, f"the dashboard asked what the role may not read: {refused}"
    status = page.locator("#status")
    assert "warning" not in (status.get_attribute("class") or ""), status.inner_text()
    kpi = page.locator("#kpi").inner_text()
    assert "暂不可用" not in kpi and "无权" not in kpi, kpi
    assert page.locator("#side .error").count() == 0, page.locator("#side").inner_text()
    assert "失败" not in page.locator("#side").inner_text()


@pytest.mark.parametrize(
    ("role", "start"),
    [
        (CENTRE, "city"),
        (LEADER, "town"),
        (DISPATCHER, "community"),
        (OFFICER, "city"),
        (WORKER, "grid"),
        ("api_client", "city"),
    ],
)
def test_every_role_opens_the_dashboard_on_its_own_area_without_an_error(
    role: str, start: str, live_url: str, browser: Any, city: dict[str, Any], artifacts_dir: Path
) -> None:
    who = f"api_key:{city['map_key']}" if role == "api_client" else role
    refused: list[str] = []
    context, page, errors = _open_as(browser, live_url, who)
    page.on("response", lambda r: refused.append(r.url) if r.status == 403 else None)
    page.reload()
    page.wait_for_function(READY, timeout=30_000)
    me = context.request.get(f"{live_url}/v1/me").json()
    view = page.evaluate("window.gridgov.page.view()")
    assert view["level"] == start, (view, me["area"])
    if start == "city":
        assert view["code"] is None and _crumbs(page) == ["东莞市"]
    else:
        # The view starts at the caller's own unit, which the breadcrumb names (never a raw code).
        assert view["code"] == me["area"]["code"], (view, me["area"])
        assert _crumbs(page) == [me["area"]["label"]]
    page.evaluate("window.gridgov.page.settled()")
    _lists_settled(page)
    _idle(page)
    if "stats.read" in me["capabilities"]:
        # Every panel reads the figures of the caller's unit (a department officer: their department's).
        assert page.locator("#kpi .kpi-cards .kpi").count() == 8
    else:
        assert "不含指标" in page.locator("#kpi").inner_text()
    page.screenshot(path=str(artifacts_dir / f"dashboard_role_{role}.png"))
    _no_error_shown(page, refused)
    assert not errors, errors
    context.close()


def test_the_kpi_period_names_the_last_day_the_window_includes(
    live_url: str, browser: Any, city: dict[str, Any]
) -> None:
    context, page, errors = _sign_in(browser, live_url, CENTRE)
    answers: list[Any] = []
    page.on("response", lambda r: answers.append(r) if urlsplit(r.url).path == "/v1/kpi" else None)
    page.reload()
    page.wait_for_function(READY, timeout=30_000)
    page.evaluate("window.gridgov.page.settled()")
    # The window the page was given is half-open: it ends at midnight after the last day it counts.
    assert len(answers) == 1, [a.url for a in answers]
    window = answers[0].json()["window"]
    first = window["from"][:10]
    last = (date.fromisoformat(window["to"][:10]) - timedelta(days=1)).isoformat()
    assert page.locator("#kpi .kpi-window").inner_text() == f"统计期：{first} 至 {last}"
    assert not errors, errors
    context.close()


@pytest.mark.parametrize(
    ("role", "link", "said"),
    [
        (CENTRE, "level=town&code=999999999999", "未找到该单位"),
        (CENTRE, "level=grid&code=999999999000001", "未找到该单位"),
        (LEADER, "level=town&code={busy_town}", "超出您的管辖范围"),
        (LEADER, "level=community&code={own_town_prefix}999", "未找到该单位"),
        ("api_client", "level=community&code=999999999999", "未找到该单位"),
    ],
)
def test_a_link_to_an_unknown_or_foreign_unit_opens_the_callers_own_view_and_says_why(
    role: str, link: str, said: str, live_url: str, browser: Any, city: dict[str, Any]
) -> None:
    who = f"api_key:{city['map_key']}" if role == "api_client" else role
    query = link.format(busy_town=city["busy"]["town_code"], own_town_prefix=city["own_town"]["code"][:9])
    context, page, errors = _open_as(browser, live_url, who, f"/?{query}")
    page.evaluate("window.gridgov.page.settled()")
    view = page.evaluate("window.gridgov.page.view()")
    status = page.locator("#status").inner_text()
    assert said in status, status
    if role == LEADER:
        assert view["code"] == city["own_town"]["code"]
        assert _crumbs(page) == [city["own_town"]["name"]]
    else:
        assert view["level"] == "city"
        assert _crumbs(page) == ["东莞市"]
    # The URL is the view's, no longer the link's.
    assert _query(page) == ({"level": "town", "code": city["own_town"]["code"]} if role == LEADER else {})
    assert not any(re.search(r"\d{9}", crumb) for crumb in _crumbs(page))
    assert not errors, errors
    context.close()


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("hotline_key", "/"),
        ("hotline_key", "/clues"),
        ("hotline_key", "/review"),
        ("hotline_key", "/field"),
        ("api_key", "/"),
        ("api_key", "/clues"),
        ("api_key", "/field"),
    ],
)
def test_a_page_the_credential_may_not_open_answers_a_browser_in_chinese_and_a_program_in_json(
    key: str, path: str, live_url: str, browser: Any, city: dict[str, Any]
) -> None:
    headers = {"X-API-Key": city[key]}
    context = browser.new_context(locale="zh-CN", extra_http_headers=headers)
    page = context.new_page()
    answer = page.goto(live_url + path)
    assert answer is not None and answer.status == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert page.locator("main").inner_text().count("您的账号无权查看此页面") == 1
    assert page.locator("form[action='/logout'] button").inner_text() == "退出登录"
    # Chinese only, but for the credential's own name.
    words = page.locator("body").inner_text()
    assert not re.search(r"[A-Za-z]{4,}", re.sub(r"e2e-(hotline|registry)", "", words)), words
    context.close()
    # A program asking for JSON keeps the API's answer.
    plain = httpx.get(live_url + path, headers={**headers, "Accept": "application/json"}, timeout=30)
    assert plain.status_code == 403
    assert plain.json()["error"] == "forbidden"


def test_a_step_back_up_to_a_unit_shown_before_moves_the_map_without_waiting_for_its_figures(
    live_url: str, browser: Any, city: dict[str, Any]
) -> None:
    busy = city["busy"]
    context, page, errors = _sign_in(browser, live_url, CENTRE, f"/?level=town&code={busy['town_code']}")
    _wait_view(page, "town", busy["town_code"])
    town_box = context.request.get(f"{live_url}/v1/kpi?level=town&code={busy['town_code']}").json()["bbox"]
    page.evaluate("([level, code]) => window.gridgov.page.drill(level, code)", ["grid", busy["code"]])
    _wait_view(page, "grid", busy["code"])
    page.evaluate("window.gridgov.page.settled()")
    # The figures are held back: the step up via the breadcrumb must not need them to move the map.
    held: list[Any] = []
    page.route("**/v1/kpi?*", lambda route: held.append(route))
    page.locator("#breadcrumb a", has_text=busy["town_name"]).click()
    _idle(page)
    west, south, east, north = page.evaluate("window.gridgov.page.bounds()")
    slack = 1e-4
    assert west <= town_box[0] + slack and south <= town_box[1] + slack, (town_box, [west, south, east, north])
    assert east >= town_box[2] - slack and north >= town_box[3] - slack, (town_box, [west, south, east, north])
    assert held, "the step asked for the town's figures"
    for route in held:
        route.continue_()
    page.unroute("**/v1/kpi?*")
    _wait_view(page, "town", busy["town_code"])
    page.evaluate("window.gridgov.page.settled()")
    assert busy["town_name"] in page.locator("#kpi h2").inner_text()
    assert not errors, errors
    context.close()
