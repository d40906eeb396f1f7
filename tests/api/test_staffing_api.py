"""The staffing plan over HTTP: a town leader reads their town's plan, applies it once with the fingerprint they saw,
and the plan is then done; every role sees and applies only within its area (role × place matrix)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.staffing import ApplyOut, BatchList, StaffingPlanOut
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "dispatcher", "worker", "officer", "api")
STALE = "0" * 64


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A home town whose first grid of a community lost all its workers to the next grid; another town; every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn)
        away = a_door_in_another_town(conn, home.town_code)
        emptied = conn.execute(
            text(
                """
                SELECT g.code, g.community_code, n.code AS neighbour
                FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
                CROSS JOIN LATERAL (SELECT min(n.code) AS code FROM grid n WHERE n.version_id = g.version_id
                                      AND n.community_code = g.community_code AND n.code > g.code) n
                WHERE g.town_code = :town AND n.code IS NOT NULL
                  AND EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = g.code AND w.active)
                ORDER BY g.code LIMIT 1
                """
            ),
            {"town": home.town_code},
        ).one()
        conn.execute(
            text("UPDATE worker SET grid_code = :to WHERE grid_code = :from AND active"),
            {"from": emptied.code, "to": emptied.neighbour},
        )
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "dispatcher": ("dispatcher", emptied.community_code),
                "worker": ("grid_worker", str(away.worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
    engine.dispose()
    return {
        "home": home.town_code,
        "away": away.town_code,
        "grid": emptied.code,
        "neighbour": emptied.neighbour,
        "community": emptied.community_code,
        "api_key": key,
    }


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE[:-1]:
        out[name] = bearer(client, name)
    return out


# Hand-written, not derived from the permission table: a change of the table that opens a door fails here.
PLAN_MATRIX = {
    "admin": {"home": 200, "away": 200},
    "centre": {"home": 200, "away": 200},
    "leader": {"home": 200, "away": 403},
    "dispatcher": {"home": 200, "away": 403},
    "worker": {"home": 403, "away": 403},
    "officer": {"home": 403, "away": 403},
    "api": {"home": 403, "away": 403},
}
# A stale fingerprint: in scope the plan is read and refused as changed (409); out of scope or without the right, 403.
APPLY_MATRIX = {
    "admin": {"home": 409, "away": 409},
    "centre": {"home": 409, "away": 409},
    "leader": {"home": 409, "away": 403},
    "dispatcher": {"home": 403, "away": 403},
    "worker": {"home": 403, "away": 403},
    "officer": {"home": 403, "away": 403},
    "api": {"home": 403, "away": 403},
}


@pytest.mark.parametrize("person", PEOPLE)
def test_each_role_reads_the_staffing_plan_of_its_own_area_only(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    for place, expected in PLAN_MATRIX[person].items():
        response = client.get("/v1/staffing/plan", params={"town": world[place]}, headers=headers[person])
        assert response.status_code == expected, (person, place, response.text)
        shapes = client.get("/v1/staffing/grids", params={"town": world[place]}, headers=headers[person])
        assert shapes.status_code == expected, (person, place, shapes.text)
        history = client.get("/v1/staffing/batches", params={"town": world[place]}, headers=headers[person])
        assert history.status_code == expected, (person, place, history.text)
        if expected == 200:
            plan = StaffingPlanOut.model_validate(response.json())
            assert {g.town_code for g in plan.grids} == {world[place]}
            assert {f["properties"]["code"] for f in shapes.json()["features"]} == {g.code for g in plan.grids}
        else:
            assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("person", PEOPLE)
def test_each_role_applies_a_plan_only_where_it_may(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    for place, expected in APPLY_MATRIX[person].items():
        body = {"town": world[place], "within": "town", "fingerprint": STALE}
        response = client.post("/v1/staffing/apply", json=body, headers=headers[person])
        assert response.status_code == expected, (person, place, response.text)
        if expected == 409:
            assert response.json()["reason"] == "stale_plan"
            assert "刷新" in response.json()["detail"]


def test_a_dispatcher_sees_the_plan_of_their_community(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    plan = StaffingPlanOut.model_validate(client.get("/v1/staffing/plan", headers=headers["dispatcher"]).json())
    assert plan.community_code == world["community"]
    assert {g.community_code for g in plan.grids} == {world["community"]}


def test_bad_requests_are_refused_with_the_reason(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    centre = headers["centre"]
    assert client.get("/v1/staffing/plan", params={"town": "441900999000"}, headers=centre).status_code == 404
    assert client.get("/v1/staffing/plan", params={"town": "4419"}, headers=centre).status_code == 422
    assert client.get("/v1/staffing/plan", params={"within": "province"}, headers=centre).status_code == 422
    bad = client.post("/v1/staffing/apply", json={"town": world["home"], "fingerprint": "abc"}, headers=centre)
    assert bad.status_code == 422
    assert client.get("/v1/staffing/plan", params={"town": world["home"]}).status_code == 401


def test_a_town_leader_may_not_move_workers_across_the_city_and_is_told_so_before_anything_is_computed(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """within=city is the command centre's: a town leader's plan or apply across the city is 403, never 409."""
    leader = headers["leader"]
    looked = client.get("/v1/staffing/plan", params={"within": "city"}, headers=leader)
    assert looked.status_code == 403 and "市指挥中心" in looked.json()["detail"]
    applied = client.post("/v1/staffing/apply", json={"within": "city", "fingerprint": STALE}, headers=leader)
    assert applied.status_code == 403 and applied.json()["error"] == "forbidden"
    assert "市指挥中心" in applied.json()["detail"]
    centre = client.post(
        "/v1/staffing/apply",
        json={"town": world["away"], "within": "city", "fingerprint": STALE},
        headers=headers["centre"],
    )
    assert centre.status_code == 409 and centre.json()["error"] == centre.json()["reason"] == "stale_plan"


def test_an_apply_with_fields_of_its_own_is_refused_and_moves_nobody(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    """A body that brings its own moves (or any unknown field) is 422: only the plan the server computes is applied."""
    leader = headers["leader"]
    plan = StaffingPlanOut.model_validate(client.get("/v1/staffing/plan", headers=leader).json())
    assert plan.moves
    for extra in ({"moves": []}, {"moves": [{"worker_id": plan.moves[0].worker_id, "to_grid": world["grid"]}]}):
        refused = client.post("/v1/staffing/apply", json={"fingerprint": plan.fingerprint, **extra}, headers=leader)
        assert refused.status_code == 422, refused.text
    again = StaffingPlanOut.model_validate(client.get("/v1/staffing/plan", headers=leader).json())
    assert again.fingerprint == plan.fingerprint and len(again.moves) == len(plan.moves)
    for malformed in ("abc", "Z" * 64, "0" * 63):
        bad = client.post("/v1/staffing/apply", json={"fingerprint": malformed}, headers=leader)
        assert bad.status_code == 422, malformed


def test_a_town_leader_applies_the_plan_they_saw_and_it_is_then_done(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    leader = headers["leader"]
    plan = StaffingPlanOut.model_validate(client.get("/v1/staffing/plan", headers=leader).json())
    assert plan.town_code == world["home"]
    emptied = next(g for g in plan.grids if g.code == world["grid"])
    assert emptied.workers == 0 and emptied.after == emptied.target >= 2
    arriving = [m for m in plan.moves if m.to_grid == world["grid"]]
    assert len(arriving) == emptied.target
    assert plan.totals.moves == len(plan.moves) and plan.totals.understaffed_after == 0

    response = client.post(
        "/v1/staffing/apply", json={"town": None, "within": "town", "fingerprint": plan.fingerprint}, headers=leader
    )
    assert response.status_code == 200, response.text
    applied = ApplyOut.model_validate(response.json())
    assert [m.worker_id for m in applied.moves] == [m.worker_id for m in plan.moves]

    engine = make_engine(db)
    with engine.connect() as conn:
        now = dict(
            conn.execute(
                text("SELECT id, grid_code FROM worker WHERE id = ANY(:w)"), {"w": [m.worker_id for m in plan.moves]}
            ).all()
        )
        batch = conn.execute(
            text("SELECT kind, actor, area_code FROM planning_batch WHERE id = :b"), {"b": applied.batch_id}
        ).one()
    engine.dispose()
    assert now == {m.worker_id: m.to_grid for m in plan.moves}
    assert batch.kind == "staffing" and batch.area_code == world["home"] and "leader" in batch.actor

    again = StaffingPlanOut.model_validate(client.get("/v1/staffing/plan", headers=leader).json())
    assert again.moves == [] and again.fingerprint != plan.fingerprint
    assert next(g for g in again.grids if g.code == world["grid"]).workers == emptied.target
    # Applying the old plan twice is refused as changed; the plan with nothing to move is refused as such.
    stale = client.post("/v1/staffing/apply", json={"fingerprint": plan.fingerprint}, headers=leader)
    assert stale.status_code == 409 and stale.json()["error"] == stale.json()["reason"] == "stale_plan"
    empty = client.post("/v1/staffing/apply", json={"fingerprint": again.fingerprint}, headers=leader)
    assert empty.status_code == 422 and empty.json()["reason"] == "no_moves"
    assert "无需调动" in empty.json()["detail"]

    # The change is on record: the town's recent plans list it, with every worker moved; another town's leader
    # sees none of it, the command centre sees it under the town.
    history = BatchList.model_validate(client.get("/v1/staffing/batches", headers=leader).json())
    assert [b.id for b in history.items] == [applied.batch_id]
    assert {(m.worker_id, m.from_grid, m.to_grid) for m in history.items[0].moves} == {
        (m.worker_id, m.from_grid, m.to_grid) for m in plan.moves
    }
    assert all(m.worker_name for m in history.items[0].moves)
    centre = client.get("/v1/staffing/batches", params={"town": world["home"]}, headers=headers["centre"])
    assert [b["id"] for b in centre.json()["items"]] == [applied.batch_id]
    away = client.get("/v1/staffing/batches", params={"town": world["away"]}, headers=headers["centre"])
    assert away.json()["items"] == []
    refused = client.get("/v1/staffing/batches", params={"town": world["away"]}, headers=leader)
    assert refused.status_code == 403


def test_the_staffing_page_opens_for_those_who_read_workload_with_the_button_for_those_who_apply(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    html = {"Accept": "text/html"}
    leader = client.get("/staffing", headers={**headers["leader"], **html})
    assert leader.status_code == 200
    assert "网格员配置方案" in leader.text and 'id="apply"' in leader.text
    dispatcher = client.get("/staffing", headers={**headers["dispatcher"], **html})
    assert dispatcher.status_code == 200 and 'id="apply"' not in dispatcher.text
    worker = client.get("/staffing", headers={**headers["worker"], **html})
    assert worker.status_code == 403 and "无权" in worker.text
    anonymous = client.get("/staffing", headers=html, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
