"""The public notice pages (公示), no credential: a citizen opens the index of plans, reads a plan's commitment before
its draw and the seeds and selected credit codes after it, learns how to check it, and sees the published results —
never a credit class, an inspector's name or an inspector's note; no script and no inline style on any page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning import inspection_plans
from planning.inspection_plans import PlanRequest
from planning.inspection_results import publish_plan, record_result
from supervision.scope import CITY
from tests.support.inspection_world import JOINT_ITEMS, make_inspection_world
from tests.support.server import SECRET_KEY, make_app, served

pytestmark = pytest.mark.db

NOTE = "现场备注：经营者王某称证照在装修时遗失"


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A joint plan drawn and partly inspected (one problem with a note, the rest fine, published), one plan waiting
    for its public value, one cancelled."""
    engine = make_engine(db)
    with engine.begin() as conn:
        place = make_inspection_world(conn)
    request = PlanRequest(
        departments=("market_supervision", "health"),
        items=JOINT_ITEMS,
        towns=(place.town_code,),
        public_value_source="中国福利彩票3D 第2026335期开奖号码",
        public_value_at=clock.now(),
        title="东城街道餐饮服务联合抽查",
    )
    with engine.begin() as conn:
        drawn = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
        waiting = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
        cancelled = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
    with engine.begin() as conn:
        inspection_plans.draw(conn, drawn, "8 3 5", actor="centre", scope=CITY, secret_key=SECRET_KEY)
        inspection_plans.cancel(conn, cancelled, "公开随机数来源停开，改期重抽", actor="centre", scope=CITY)
        visits = conn.execute(
            text(
                "SELECT id, uscc, item_codes FROM inspection_visit WHERE plan_id = :p AND team_id IS NOT NULL "
                "ORDER BY uscc LIMIT 2"
            ),
            {"p": drawn},
        ).all()
        assert len(visits) == 2, "the draw should send teams to at least two entities"
        for n, visit in enumerate(visits):
            for item in visit.item_codes:
                outcome = "problem" if n == 0 and item == visit.item_codes[0] else "ok"
                record_result(conn, visit.id, item_code=item, outcome=outcome, note=NOTE, actor="centre", scope=CITY)
        publish_plan(conn, drawn, actor="centre", scope=CITY)
        inspectors = list(
            conn.execute(
                text(
                    "SELECT i.name, i.code FROM inspector i JOIN inspection_team t ON i.id = ANY(t.inspector_ids) "
                    "WHERE t.plan_id = :p"
                ),
                {"p": drawn},
            ).all()
        )
        secret = conn.execute(
            text("SELECT server_seed FROM inspection_plan WHERE id = :p"), {"p": waiting}
        ).scalar_one()
        classes = conn.execute(
            text("SELECT DISTINCT credit_class FROM inspection_stratum WHERE plan_id = :p"), {"p": drawn}
        ).scalars()
        class_set = set(classes)
        names = conn.execute(
            text("SELECT e.name, e.kind FROM entity e JOIN inspection_visit v ON v.uscc = e.uscc WHERE v.plan_id = :p"),
            {"p": drawn},
        ).all()
    engine.dispose()
    return {
        "drawn": drawn,
        "waiting": waiting,
        "cancelled": cancelled,
        "inspected": [v.uscc for v in visits],
        "inspectors": inspectors,
        "waiting_seed": bytes(secret).hex(),
        "classes": class_set,
        "entity_names": names,
    }


def page(client: TestClient, path: str, status: int = 200) -> str:
    """GET a public page with no credential; the HTML, after checking it carries no script and no inline style."""
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    # The strictest policy holds: no script at all, only our own stylesheet and icon.
    assert answer.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    html = answer.text
    assert "<script" not in html and "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers either
    return html


def cells(html: str) -> list[str]:
    """The text of every table cell."""
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)]


def test_the_index_lists_every_plan_with_its_status(client: TestClient, world: dict[str, Any]) -> None:
    """公示目录: each plan links to its notice, in Chinese status words; the stylesheet it names is served."""
    html = page(client, "/public/inspections/page")
    for plan_id in (world["drawn"], world["waiting"], world["cancelled"]):
        assert f'href="/public/inspections/{plan_id}/page"' in html
    assert {"已抽取", "已公布承诺，待抽取", "已撤销"} <= set(cells(html))
    assert "东莞市卫生健康局、东莞市市场监督管理局" in cells(html)  # departments by code, named
    assert client.get("/static/public_inspection.css").status_code == 200


def test_before_the_draw_the_commitment_is_public_and_the_server_seed_is_not(
    client: TestClient, world: dict[str, Any]
) -> None:
    """A waiting plan shows its commitment, the candidate list's digest and when the public value comes; not the seed."""
    public = client.get(f"/public/inspections/{world['waiting']}").json()
    html = page(client, f"/public/inspections/{world['waiting']}/page")
    assert public["commitment"] in html and public["candidates_sha256"] in html
    assert "中国福利彩票3D 第2026335期开奖号码" in html
    assert world["waiting_seed"] not in html
    assert "摇号后公布" in html
    assert f'href="/public/inspections/{world["waiting"]}/candidates.csv"' in html


def test_after_the_draw_anyone_reads_the_seeds_and_the_selected_credit_codes(
    client: TestClient, world: dict[str, Any]
) -> None:
    """The page shows what the JSON says: public value, server seed, seed and every stratum's selection."""
    public = client.get(f"/public/inspections/{world['drawn']}").json()
    html = page(client, f"/public/inspections/{world['drawn']}/page")
    for key in ("public_value", "server_seed", "seed", "commitment", "candidates_sha256"):
        assert public[key] in html, key
    table = cells(html)
    for stratum in public["strata"]:
        assert stratum["id"] in table
        assert " ".join(stratum["selected"]) in table
    assert f'href="/public/inspections/{world["drawn"]}"' in html
    assert "如何核验" in html and "HMAC-SHA256" in html and "tools/verify_draw.py" in html


def test_published_results_show_entity_credit_code_item_and_outcome_only(
    client: TestClient, world: dict[str, Any]
) -> None:
    """The inspected entities with their outcomes; no inspector's name or code, no note, no credit class."""
    public = client.get(f"/public/inspections/{world['drawn']}").json()
    html = page(client, f"/public/inspections/{world['drawn']}/page")
    table = cells(html)
    assert [r["uscc"] for r in public["results"]] == world["inspected"]
    for result in public["results"]:
        assert result["name"] in table and result["uscc"] in table
        for item in result["items"]:
            assert item["name"] in table and item["outcome_zh"] in table
    assert "发现问题，已责令整改" in table and "未发现问题" in table
    assert NOTE not in html and "王某" not in html
    for name, kind in world["entity_names"]:  # an operator's full name never appears (张三（个体工商户） → 张某)
        if kind == "individual" and name.endswith("（个体工商户）"):
            assert name not in html
    for name, code in world["inspectors"]:
        assert name not in html and code not in html
    assert "信用类别" not in html and "credit_class" not in html
    assert not any(cell in world["classes"] for cell in table)  # no cell is a bare class letter


def test_a_cancelled_plan_says_so_and_why(client: TestClient, world: dict[str, Any]) -> None:
    """A plan withdrawn before its draw stays public, marked cancelled, with the reason."""
    html = page(client, f"/public/inspections/{world['cancelled']}/page")
    assert "已撤销" in html and "公开随机数来源停开，改期重抽" in html


def test_an_unknown_plan_is_a_chinese_404_page(client: TestClient) -> None:
    """No such plan: 404, in words, with the way back to the index."""
    html = page(client, "/public/inspections/987654321/page", status=404)
    assert "没有编号为 987654321 的抽查计划" in html
    assert 'href="/public/inspections/page"' in html


def test_a_citizens_browser_shows_the_notice_styled_with_nothing_blocked(
    db: DatabaseSettings, world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> None:
    """Headless Chromium opens the index and a drawn plan's notice under the page's own strict policy: the stylesheet
    applies, no request is refused and no console error appears; the results table is there to read."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with (
        served(make_app(db, tmp_path_factory.mktemp("state")), name="uvicorn-public-pages") as url,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            view = browser.new_page()
            view.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            view.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            view.goto(f"{url}/public/inspections/page")
            view.click(f'a[href="/public/inspections/{world["drawn"]}/page"]')
            view.wait_for_selector("table.pi-results")
            border = view.eval_on_selector("header.pi-header", "e => getComputedStyle(e).borderBottomStyle")
            rows = view.locator("table.pi-results tbody tr").count()
            view.screenshot(path=str(artifacts_dir / "public_inspection_page.png"), full_page=True)
        finally:
            browser.close()
    assert border == "solid"  # public_inspection.css applied under the policy
    assert rows >= 2
    assert problems == []
