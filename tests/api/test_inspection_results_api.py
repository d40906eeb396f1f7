"""Inspection results over the API: an inspector's department records its items' results, the plan's readers see the
visit with its team, results go public early on request — each role in its own place only."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.inspection_results import PublishOut, ResultOut, VisitOut
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.inspection_fixtures import DrawnPlan, drawn_plan
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

MARKET, LICENSED, HEALTH = "market_supervision-97", "market_supervision-98", "health-99"
PEOPLE = ("admin", "centre", "market", "health", "tobacco", "leader", "away-leader", "dispatcher", "worker")


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A drawn joint plan (market supervision + health) in one town, a plan not drawn yet, and every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        plan = drawn_plan(conn, skip=0)
        undrawn = drawn_plan(conn, skip=1, status="committed")
        away = conn.execute(text("SELECT code FROM town WHERE code <> :t ORDER BY code LIMIT 1"), {"t": plan.town_code})
        worker = conn.execute(text("SELECT id FROM worker WHERE active ORDER BY id LIMIT 1")).scalar_one()
        community = conn.execute(
            text("SELECT community_code FROM grid WHERE code = :g"), {"g": plan.grid_code}
        ).scalar_one()
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "market": ("department_officer", "market_supervision"),
                "health": ("department_officer", "health"),
                "tobacco": ("department_officer", "tobacco"),
                "leader": ("town_leader", plan.town_code),
                "away-leader": ("town_leader", away.scalar_one()),
                "dispatcher": ("dispatcher", community),
                "worker": ("grid_worker", str(worker)),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "results-api")
    engine.dispose()
    return {"plan": plan, "undrawn": undrawn, "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Everyone's credentials."""
    out = {name: bearer(client, name) for name in PEOPLE}
    out["api"] = api_key_headers(world["api_key"])
    return out


def visit_ids(plan: DrawnPlan) -> list[int]:
    """The plan's visits in credit-code order."""
    return [plan.visits[u] for u in sorted(plan.visits)]


def post_result(client: TestClient, who: dict[str, str], visit_id: int, item: str, outcome: str, note: str = "") -> Any:
    """POST one result."""
    return client.post(
        f"/v1/inspection-visits/{visit_id}/results",
        json={"item_code": item, "outcome": outcome, "note": note},
        headers=who,
    )


@pytest.mark.parametrize(
    ("person", "status"),
    [
        ("centre", 200),
        ("admin", 200),
        ("market", 200),
        ("health", 200),
        ("leader", 200),
        ("tobacco", 403),
        ("away-leader", 403),
        ("dispatcher", 403),
        ("worker", 403),
        ("api", 403),
    ],
)
def test_who_reads_a_visit(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str, status: int
) -> None:
    """The plan's departments, its town's leader and the centre read a visit; nobody else does."""
    visit_id = visit_ids(world["plan"])[0]
    answer = client.get(f"/v1/inspection-visits/{visit_id}", headers=headers[person])
    assert answer.status_code == status, answer.text
    if status == 200:
        visit = VisitOut.model_validate(answer.json())
        assert visit.team is not None and len(visit.team.inspectors) == 4
        assert {i.code for i in visit.items} == {MARKET, LICENSED, HEALTH}


@pytest.mark.parametrize(
    ("person", "item", "status"),
    [
        ("tobacco", MARKET, 403),
        ("health", MARKET, 403),
        ("leader", MARKET, 403),
        ("away-leader", MARKET, 403),
        ("dispatcher", MARKET, 403),
        ("worker", MARKET, 403),
        ("api", MARKET, 403),
        ("market", MARKET, 201),
        ("health", HEALTH, 201),
        ("centre", LICENSED, 201),
    ],
)
def test_who_records_which_item(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str, item: str, status: int
) -> None:
    """An officer records their own department's items only; the centre any; roles without the capability none."""
    visit_id = visit_ids(world["plan"])[1]
    answer = post_result(client, headers[person], visit_id, item, "ok")
    assert answer.status_code == status, answer.text
    if status == 201:
        result = ResultOut.model_validate(answer.json())
        assert (result.item_code, result.outcome_zh, result.recorded_by) == (item, "未发现问题", f"user:{person}")


def test_a_problem_reaches_the_grid_and_a_second_different_result_is_refused(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """The market officer records a problem: a grid task exists; sending it again is harmless; changing it is 409."""
    visit_id = visit_ids(world["plan"])[2]
    first = post_result(client, headers["market"], visit_id, LICENSED, "problem", "未亮证经营")
    assert first.status_code == 201, first.text
    task_id = first.json()["task_id"]
    assert task_id is not None
    task = client.get(f"/v1/tasks/{task_id}", headers=headers["centre"])
    assert task.status_code == 200, task.text
    assert task.json()["status"] == "notice_issued"
    again = post_result(client, headers["market"], visit_id, LICENSED, "problem", "未亮证经营")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    changed = post_result(client, headers["market"], visit_id, LICENSED, "ok")
    assert changed.status_code == 409, changed.text
    assert changed.json()["reason"] == "already_recorded"


def test_an_entity_found_at_its_address_for_one_item_cannot_be_missing_for_another(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """One joint visit, one door: a problem found there and 查无下落 for another item contradict each other (409)."""
    visit_id = visit_ids(world["plan"])[2]
    found = post_result(client, headers["market"], visit_id, LICENSED, "problem", "未亮证经营")
    assert found.status_code == 201, found.text
    missing = post_result(client, headers["health"], visit_id, HEALTH, "not_found")
    assert missing.status_code == 409, missing.text
    assert missing.json()["reason"] == "visit_found_recorded"
    assert "通过登记的住所无法联系" in missing.json()["detail"]
    visit = client.get(f"/v1/inspection-visits/{visit_id}", headers=headers["centre"]).json()
    assert {i["code"]: i["result"] is None for i in visit["items"]}[HEALTH]  # nothing recorded for health


def test_bad_requests_are_refused_with_a_reason(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """Unknown visit 404; a bad outcome or an item not drawn 422; a plan not drawn yet 409."""
    visit_id = visit_ids(world["plan"])[0]
    assert post_result(client, headers["centre"], 999_999_999, MARKET, "ok").status_code == 404
    bad_outcome = post_result(client, headers["centre"], visit_id, MARKET, "fine")
    assert (bad_outcome.status_code, bad_outcome.json()["reason"]) == (422, "invalid_outcome")
    bad_item = post_result(client, headers["centre"], visit_id, "culture-01", "ok")
    assert (bad_item.status_code, bad_item.json()["reason"]) == (422, "item_not_in_visit")
    undrawn = visit_ids(world["undrawn"])[0]
    early = post_result(client, headers["centre"], undrawn, MARKET, "ok")
    assert (early.status_code, early.json()["reason"]) == (409, "not_drawn")
    assert "尚未抽取" in early.json()["detail"]


@pytest.mark.parametrize(
    ("person", "status"),
    [("tobacco", 403), ("leader", 403), ("dispatcher", 403), ("api", 403), ("health", 200), ("centre", 200)],
)
def test_who_publishes_a_plans_results_early(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str, status: int
) -> None:
    """Publishing early: the plan's departments (their items) and the centre; a plan not drawn is 409, unknown 404."""
    answer = client.post(f"/v1/inspection-plans/{world['plan'].plan_id}/publish", headers=headers[person])
    assert answer.status_code == status, answer.text
    if status == 200:
        assert PublishOut.model_validate(answer.json()).plan_id == world["plan"].plan_id


def test_published_results_reach_the_public_answer_without_notes_or_inspectors(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """Recorded, published early by the centre: the public JSON lists entity, credit code, items and outcomes only."""
    plan = world["plan"]
    recorded = post_result(client, headers["health"], visit_ids(plan)[0], HEALTH, "problem", "内部备注：店主姓李")
    assert recorded.status_code == 201, recorded.text
    answer = client.post(f"/v1/inspection-plans/{plan.plan_id}/publish", headers=headers["centre"])
    assert answer.status_code == 200 and answer.json()["published"] >= 1
    assert (
        client.post(f"/v1/inspection-plans/{world['undrawn'].plan_id}/publish", headers=headers["centre"]).status_code
        == 409
    )
    assert client.post("/v1/inspection-plans/999999999/publish", headers=headers["centre"]).status_code == 404
    public = client.get(f"/public/inspections/{plan.plan_id}")
    assert public.status_code == 200, public.text
    published = public.json()["results"]
    assert published and all(set(r) == {"uscc", "name", "items", "published_at"} for r in published)
    assert all(set(i) == {"code", "name", "outcome", "outcome_zh"} for r in published for i in r["items"])
    assert {
        "code": HEALTH,
        "name": "公共场所卫生检查（测试）",
        "outcome": "problem",
        "outcome_zh": "发现问题，已责令整改",
    } in next(r["items"] for r in published if r["uscc"] == sorted(plan.visits)[0])
    assert "店主" not in public.text  # the note stays internal
    assert "执法员" not in public.text  # so do the inspectors
