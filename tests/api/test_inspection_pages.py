"""Who may open the inspection planning pages (/inspections, /inspections/{id}, /inspections/{id}/print), what each
role is offered there, and that the pages hold no inline script or style (a strict CSP will hold)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis import clock
from tests.support.accounts import bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

HTML = {"Accept": "text/html"}
PAGES = ("/inspections", "/inspections/{plan}", "/inspections/{plan}/print")


class _Markup(HTMLParser):
    """The scripts, style elements and style attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.style_elements = 0
        self.style_attributes = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.style_elements += 1
        if any(name == "style" for name, _ in attrs):
            self.style_attributes += 1


def page_config(html: str) -> dict[str, Any]:
    """The page's JSON configuration block."""
    found = re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its configuration"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


@pytest.fixture(scope="module")
def scene(engine: Engine) -> dict[str, Any]:
    """Accounts of every role around the busiest town, and the ids of a real worker and another town."""
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM entity WHERE status = 'open' GROUP BY town_code ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
        other = conn.execute(text("SELECT min(code) FROM town WHERE code <> :t"), {"t": town}).scalar_one()
        community = conn.execute(text("SELECT min(code) FROM community WHERE town_code = :t"), {"t": town}).scalar_one()
        worker = conn.execute(text("SELECT min(id) FROM worker WHERE active")).scalar_one()
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "officer": ("department_officer", "market_supervision"),
                "culture": ("department_officer", "culture"),
                "leader": ("town_leader", town),
                "away": ("town_leader", other),
                "dispatcher": ("dispatcher", community),
                "worker": ("grid_worker", str(worker)),
                "hotline": ("hotline", None),
            },
        )
        key = make_api_key(conn, SECRET_KEY, name="inspection-pages-key")
    return {"town": town, "other": other, "key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, scene: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each account's bearer header."""
    names = ("centre", "officer", "culture", "leader", "away", "dispatcher", "worker", "hotline")
    return {name: bearer(client, name) for name in names}


@pytest.fixture(scope="module")
def plan(client: TestClient, scene: dict[str, Any], headers: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A joint plan of market supervision and health in the busiest town, made by the command centre and drawn."""
    due = clock.now() + timedelta(seconds=1)
    body = {
        "departments": ["market_supervision", "health"],
        "items": ["market_supervision-10", "health-02"],
        "towns": [scene["town"]],
        "public_value_source": "中国福利彩票3D 开奖号码",
        "public_value_at": due.isoformat(),
        "title": "页面测试联合抽查",
    }
    made = client.post("/v1/inspection-plans", json=body, headers=headers["centre"])
    assert made.status_code == 201, made.text
    while clock.now() <= due:
        time.sleep(0.2)
    drawn = client.post(
        f"/v1/inspection-plans/{made.json()['id']}/draw", json={"public_value": "386"}, headers=headers["centre"]
    )
    assert drawn.status_code == 200, drawn.text
    return dict(drawn.json())


def test_the_planning_page_offers_the_form_to_those_who_plan_and_the_plans_to_those_who_read(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    centre = client.get("/inspections", headers={**headers["centre"], **HTML})
    assert centre.status_code == 200 and "双随机抽查规划" in centre.text
    assert 'id="plan-form"' in centre.text and 'id="preview"' in centre.text and "建立并公布承诺" in centre.text
    config = page_config(centre.text)
    assert config["canPlan"] is True and config["ownDepartment"] is None
    codes = {d["code"] for d in config["departments"]}
    assert {"market_supervision", "health", "culture"} <= codes and "command_centre" not in codes
    assert len(config["towns"]) == 33

    # An officer plans for their own department only: it is the one choice, checked and fixed.
    officer = client.get("/inspections", headers={**headers["officer"], **HTML})
    assert officer.status_code == 200
    config = page_config(officer.text)
    assert [d["code"] for d in config["departments"]] == ["market_supervision"]
    assert config["ownDepartment"] == "market_supervision"
    assert re.search(r'value="market_supervision" checked disabled', officer.text)

    # A town leader reads plans: no form, no draw, no routes button, and only their town to look at.
    leader = client.get("/inspections", headers={**headers["leader"], **HTML})
    assert leader.status_code == 200
    assert 'id="plan-form"' not in leader.text and 'id="draw"' not in leader.text
    assert 'id="solve-routes"' not in leader.text and 'id="move"' not in leader.text
    assert page_config(leader.text)["canPlan"] is False
    assert len(page_config(leader.text)["towns"]) == 1


@pytest.mark.parametrize("person", ["dispatcher", "worker", "hotline"])
def test_roles_without_inspection_read_get_the_forbidden_page(
    client: TestClient, headers: dict[str, dict[str, str]], plan: dict[str, Any], person: str
) -> None:
    for path in PAGES:
        answer = client.get(path.format(plan=plan["id"]), headers={**headers[person], **HTML})
        assert answer.status_code == 403, path
        assert "您的账号无权查看此页面" in answer.text


def test_strangers_sign_in_first_and_programs_get_json(
    client: TestClient, scene: dict[str, Any], plan: dict[str, Any]
) -> None:
    for path in PAGES:
        url = path.format(plan=plan["id"])
        anonymous = client.get(url, headers=HTML, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
        assert client.get(url, follow_redirects=False).status_code == 401
        # An API key (api_client) may solve routes but not read plans: the JSON 403, no page.
        program = client.get(url, headers={"X-API-Key": scene["key"]})
        assert program.status_code == 403 and program.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("person", "status"),
    [("centre", 200), ("officer", 200), ("leader", 200), ("culture", 403), ("away", 403)],
)
def test_a_plan_page_opens_for_those_who_may_read_the_plan(
    client: TestClient, headers: dict[str, dict[str, str]], plan: dict[str, Any], person: str, status: int
) -> None:
    """The command centre, an officer of a department the plan carries, the leader of its town: 200; an officer of
    another department or the leader of another town: the 403 page."""
    for path in ("/inspections/{plan}", "/inspections/{plan}/print"):
        answer = client.get(path.format(plan=plan["id"]), headers={**headers[person], **HTML})
        assert answer.status_code == status, (path, answer.text[:200])
        if status == 403:
            assert "您的账号无权查看此页面" in answer.text
    if status == 200:
        page = client.get(f"/inspections/{plan['id']}", headers={**headers[person], **HTML})
        assert page_config(page.text)["planId"] == plan["id"]
        # Only the command centre may draw, route and move a joint plan: an officer of one of its departments reads it.
        assert ('id="solve-routes"' in page.text) is (person == "centre")
        assert ('id="draw"' in page.text) is (person == "centre")


def test_an_officer_gets_the_buttons_on_a_plan_of_their_own_department_alone(
    client: TestClient, scene: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    body = {
        "departments": ["market_supervision"],
        "items": ["market_supervision-10"],
        "towns": [scene["town"]],
        "public_value_source": "中国福利彩票3D 开奖号码",
        "public_value_at": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    made = client.post("/v1/inspection-plans", json=body, headers=headers["officer"])
    assert made.status_code == 201, made.text
    page = client.get(f"/inspections/{made.json()['id']}", headers={**headers["officer"], **HTML})
    assert page.status_code == 200 and page_config(page.text)["canPlan"] is True
    assert 'id="draw"' in page.text and 'id="solve-routes"' in page.text and 'id="move"' in page.text


def test_an_unknown_plan_is_a_404_page_that_still_lists_the_plans(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    answer = client.get("/inspections/999999", headers={**headers["centre"], **HTML})
    assert answer.status_code == 404 and 'id="plans"' in answer.text
    assert client.get("/inspections/999999/print", headers={**headers["centre"], **HTML}).status_code == 404
    assert client.get("/inspections/999999", headers=headers["centre"]).json()["error"] == "not_found"


def test_the_pages_hold_no_inline_script_and_no_inline_style(
    client: TestClient, headers: dict[str, dict[str, str]], plan: dict[str, Any]
) -> None:
    for path in PAGES:
        answer = client.get(path.format(plan=plan["id"]), headers={**headers["centre"], **HTML})
        assert answer.status_code == 200, path
        markup = _Markup()
        markup.feed(answer.text)
        inline = [s for s in markup.scripts if not s.get("src") and s.get("type") != "application/json"]
        assert inline == [], path
        assert all(s.get("type") == "module" for s in markup.scripts if s.get("src")), path
        assert markup.style_elements == 0 and markup.style_attributes == 0, path
