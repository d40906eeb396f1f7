"""The command centre and department officers plan and draw double-random inspections over the API: a plan answers
201 with its commitment and public page, the draw answers the teams and visits, bad input is a clear 4xx with a
reason, and every role reaches only the plans of its department or town (the role × place matrix written out)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.inspections import PlanList, PlanOut, PreviewOut
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.inspection_world import JOINT_ITEMS, MS_ITEMS, InspectionWorld, make_inspection_world
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "leader_away", "dispatcher", "worker", "officer", "officer_health")


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """The tests' items and inspectors, and one account of every role (the officer of market supervision)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        place = make_inspection_world(conn)
        community = conn.execute(
            text("SELECT code FROM community WHERE town_code = :t ORDER BY code LIMIT 1"), {"t": place.town_code}
        ).scalar_one()
        worker_id = conn.execute(
            text("SELECT min(id) FROM worker WHERE town_code = :t AND active"), {"t": place.town_code}
        ).scalar_one()
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", place.town_code),
                "leader_away": ("town_leader", place.other_town),
                "dispatcher": ("dispatcher", community),
                "worker": ("grid_worker", str(worker_id)),
                "officer": ("department_officer", "market_supervision"),
                "officer_health": ("department_officer", "health"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
    engine.dispose()
    return {"place": place, "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE:
        out[name] = bearer(client, name)
    return out


def _body(place: InspectionWorld, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "departments": ["market_supervision"],
        "items": list(MS_ITEMS),
        "towns": [place.town_code],
        "public_value_source": "中国福利彩票3D 第2026335期开奖号码",
        "public_value_at": clock.now().isoformat(),
    }
    body.update(overrides)
    return body


def _plan(client: TestClient, who: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/inspection-plans", json=body, headers=who)
    assert answer.status_code == 201, answer.text
    return PlanOut.model_validate(answer.json()).model_dump(mode="json")


def test_the_command_centre_plans_publishes_the_commitment_and_draws(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    place = world["place"]
    preview = client.post(
        "/v1/inspection-plans/preview",
        json={"departments": ["market_supervision"], "items": list(MS_ITEMS), "towns": [place.town_code]},
        headers=headers["centre"],
    )
    assert preview.status_code == 200, preview.text
    counts = PreviewOut.model_validate(preview.json())
    plan = _plan(client, headers["centre"], _body(place, ratios={"A": 0.03, "B": 0.07, "C": 0.1, "D": 0.2}))
    assert plan["status"] == "committed" and len(plan["commitment"]) == 64 and len(plan["candidates_sha256"]) == 64
    assert plan["public_url"] == f"/public/inspections/{plan['id']}"
    assert plan["candidate_count"] == counts.candidate_count
    assert {s["credit_class"] for s in plan["strata"]} <= set("ABCD")
    # 0.07 is taken as the exact decimal it reads: n = ⌈0.07 × size⌉.
    b_strata = [s for s in plan["strata"] if s["credit_class"] == "B"]
    assert b_strata and all(s["ratio"] == 0.07 for s in b_strata)
    assert plan["visits"] == [] and plan["teams"] == []

    drawn = client.post(
        f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": "835"}, headers=headers["centre"]
    )
    assert drawn.status_code == 200, drawn.text
    body = PlanOut.model_validate(drawn.json())
    assert body.status == "drawn" and body.public_value == "835" and body.seed
    assert body.visits and body.teams
    selected = {u for s in body.strata for u in s.selected}
    assert {v.uscc for v in body.visits} == selected
    for visit in body.visits:
        if visit.team_id is not None:
            assert len(visit.inspectors) >= 2
            assert all(
                p.department == "market_supervision" and p.home_grid != visit.grid_code for p in visit.inspectors
            )
            assert visit.grid_code and visit.departments == ["market_supervision"]

    again = client.post(
        f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": "836"}, headers=headers["centre"]
    )
    assert again.status_code == 409
    assert again.json()["reason"] == "already_drawn" and again.json()["detail"]


def test_a_joint_plan_of_two_departments_is_for_the_command_centre(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    joint = _body(
        world["place"],
        departments=["market_supervision", "health"],
        items=list(JOINT_ITEMS),
        item_ratios={item: {c: 0.5 for c in "ABCD"} for item in JOINT_ITEMS},
    )
    refused = client.post("/v1/inspection-plans", json=joint, headers=headers["officer"])
    assert refused.status_code == 403
    plan = _plan(client, headers["centre"], joint)
    assert (
        client.post(
            f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": "1"}, headers=headers["officer"]
        ).status_code
        == 403
    )
    drawn = client.post(
        f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": "1"}, headers=headers["centre"]
    )
    assert drawn.status_code == 200, drawn.text
    visits = drawn.json()["visits"]
    both = [v for v in visits if v["departments"] == ["health", "market_supervision"]]
    assert both, "one visit carries both departments' items"
    matched = [v for v in both if v["team_id"] is not None]
    assert matched
    assert {p["department"] for p in matched[0]["inspectors"]} == {"health", "market_supervision"}
    # Both departments' officers read the joint plan; neither may draw or cancel it.
    for who in ("officer", "officer_health"):
        assert client.get(f"/v1/inspection-plans/{plan['id']}", headers=headers[who]).status_code == 200


def test_bad_input_is_a_clear_4xx_with_a_reason(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    place = world["place"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        (_body(place, ratios={"A": 1.5}), 422, "ratio_out_of_range"),
        (_body(place, ratios={"C": -0.2}), 422, "ratio_out_of_range"),
        (_body(place, public_value_at=(clock.now() - timedelta(days=1)).isoformat()), 422, "public_value_in_past"),
        (
            _body(
                place,
                towns=None,
                polygon={"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            ),
            422,
            "invalid_polygon",
        ),
        (_body(place, towns=None), 422, "invalid_area"),
    ]
    for body, status, reason in cases:
        answer = client.post("/v1/inspection-plans", json=body, headers=headers["centre"])
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["reason"] == reason, answer.json()
        assert any("\u4e00" <= c <= "\u9fff" for c in answer.json()["detail"]), "the detail is Chinese"
    missing = client.post("/v1/inspection-plans/987654321/draw", json={"public_value": "1"}, headers=headers["centre"])
    assert missing.status_code == 404
    later = _plan(
        client, headers["centre"], _body(place, public_value_at=(clock.now() + timedelta(days=2)).isoformat())
    )
    early = client.post(
        f"/v1/inspection-plans/{later['id']}/draw", json={"public_value": "1"}, headers=headers["centre"]
    )
    assert early.status_code == 409 and early.json()["reason"] == "public_value_not_due"
    for value in ("", "8\u00005", "1\n"):
        bad = client.post(
            f"/v1/inspection-plans/{later['id']}/draw", json={"public_value": value}, headers=headers["centre"]
        )
        assert bad.status_code in (409, 422), bad.text
    still = client.get(f"/v1/inspection-plans/{later['id']}", headers=headers["centre"]).json()
    assert still["status"] == "committed" and still["visits"] == [] and still["seed"] is None
    cancelled = client.post(
        f"/v1/inspection-plans/{later['id']}/cancel", json={"reason": "开奖推迟"}, headers=headers["centre"]
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (
        client.post(
            f"/v1/inspection-plans/{later['id']}/cancel", json={"reason": "再撤一次"}, headers=headers["centre"]
        ).status_code
        == 409
    )


def test_role_by_place_matrix(client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]) -> None:
    place = world["place"]
    mine = _plan(client, headers["officer"], _body(place))
    plan_id = mine["id"]
    # Who may create a plan of market supervision alone in the town.
    create = {
        "admin": 201,
        "centre": 201,
        "officer": 201,
        "officer_health": 403,
        "leader": 403,
        "leader_away": 403,
        "dispatcher": 403,
        "worker": 403,
        "api": 403,
    }
    for who, status in create.items():
        answer = client.post("/v1/inspection-plans", json=_body(place), headers=headers[who])
        assert answer.status_code == status, (who, answer.text)
    preview = {"centre": 200, "officer": 200, "officer_health": 403, "leader": 403, "worker": 403, "api": 403}
    body = {"departments": ["market_supervision"], "items": list(MS_ITEMS), "towns": [place.town_code]}
    for who, status in preview.items():
        answer = client.post("/v1/inspection-plans/preview", json=body, headers=headers[who])
        assert answer.status_code == status, (who, answer.text)
    # Who may read it: the city, its department, the leader of its town.
    read = {
        "admin": 200,
        "centre": 200,
        "officer": 200,
        "officer_health": 403,
        "leader": 200,
        "leader_away": 403,
        "dispatcher": 403,
        "worker": 403,
        "api": 403,
    }
    for who, status in read.items():
        answer = client.get(f"/v1/inspection-plans/{plan_id}", headers=headers[who])
        assert answer.status_code == status, (who, answer.text)
        listed = client.get("/v1/inspection-plans", headers=headers[who])
        if status == 200:
            ids = {p.id for p in PlanList.model_validate(listed.json()).items}
            assert plan_id in ids, who
        elif listed.status_code == 200:
            assert plan_id not in {p["id"] for p in listed.json()["items"]}, who
    assert client.get("/v1/inspection-plans/987654321", headers=headers["centre"]).status_code == 404
    # Who may draw it: the city and its own department; nobody else, and no one without a credential.
    for who in ("officer_health", "leader", "dispatcher", "worker", "api"):
        answer = client.post(f"/v1/inspection-plans/{plan_id}/draw", json={"public_value": "9"}, headers=headers[who])
        assert answer.status_code == 403, (who, answer.text)
    assert client.post(f"/v1/inspection-plans/{plan_id}/draw", json={"public_value": "9"}).status_code == 401
    drawn = client.post(f"/v1/inspection-plans/{plan_id}/draw", json={"public_value": "9"}, headers=headers["officer"])
    assert drawn.status_code == 200, drawn.text
    for who in ("officer_health", "leader"):
        answer = client.post(f"/v1/inspection-plans/{plan_id}/cancel", json={"reason": "x"}, headers=headers[who])
        assert answer.status_code == 403, who


def test_far_dates_invisible_values_and_bow_ties_are_422_with_a_chinese_detail(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    place = world["place"]
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[113.7, 23.0], [113.8, 23.1], [113.8, 23.0], [113.7, 23.1], [113.7, 23.0]]],
    }
    cases: list[tuple[dict[str, Any], str]] = [
        (_body(place, public_value_at="9999-12-31T23:59:59Z"), "public_value_too_far"),
        (_body(place, visit_date="9999-12-31"), "invalid_visit_date"),
        (_body(place, visit_date=(clock.now() - timedelta(days=2)).date().isoformat()), "invalid_visit_date"),
        (_body(place, towns=None, polygon=bow_tie), "invalid_polygon"),
    ]
    for body, reason in cases:
        answer = client.post("/v1/inspection-plans", json=body, headers=headers["centre"])
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["reason"] == reason, answer.json()
    assert "多边形自相交" in answer.json()["detail"]
    plan = _plan(client, headers["centre"], _body(place))
    assert plan["public_value_announced"] is False
    for value in (" ", "\u00a0835", "835\u3000", "8\u00a03\u00a05"):
        bad = client.post(
            f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": value}, headers=headers["centre"]
        )
        assert bad.status_code == 422 and bad.json()["reason"] == "invalid_public_value", (value, bad.text)
    assert client.get(f"/v1/inspection-plans/{plan['id']}", headers=headers["centre"]).json()["status"] == "committed"


def test_a_town_leader_reads_only_their_towns_part_of_a_plan_across_two_towns(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    place = world["place"]
    plan = _plan(client, headers["centre"], _body(place, towns=[place.town_code, place.other_town]))
    drawn = client.post(
        f"/v1/inspection-plans/{plan['id']}/draw", json={"public_value": "7"}, headers=headers["centre"]
    )
    assert drawn.status_code == 200, drawn.text
    whole = PlanOut.model_validate(drawn.json())
    assert {v.town_code for v in whole.visits} == {place.town_code, place.other_town}
    for who, town in (("leader", place.town_code), ("leader_away", place.other_town)):
        answer = client.get(f"/v1/inspection-plans/{plan['id']}", headers=headers[who])
        assert answer.status_code == 200, (who, answer.text)
        seen = PlanOut.model_validate(answer.json())
        assert seen.visits and {v.town_code for v in seen.visits} == {town}, who
        assert {u for s in seen.strata for u in s.selected} == {v.uscc for v in seen.visits}, who
        assert all(s.credit_class is None for s in seen.strata), who
        assert {t.id for t in seen.teams} <= {v.team_id for v in seen.visits}, who
    # The command centre still sees it whole, classes included.
    full = client.get(f"/v1/inspection-plans/{plan['id']}", headers=headers["centre"]).json()
    assert all(s["credit_class"] in {"A", "B", "C", "D"} for s in full["strata"])
