"""Routes over HTTP: another tool sends a VROOM problem and gets VROOM's answer; the command centre plans a drawn plan's
team days, a town leader reads them, an officer plans only their own department's plan; a hand move that breaks a
day answers 422 with the reason and changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app
from api.routers.routes import PlanRoutesOut, VroomSolutionOut
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.planning.test_route_service_db import insert_drawn_plan, insert_team, insert_visits
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "away-leader", "dispatcher", "worker", "officer", "health")
JOINT = ["market_supervision", "tobacco"]
ALONE = ["market_supervision"]


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A joint plan and a market-supervision plan, drawn, in the town with the most roads; every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        away = conn.execute(
            text("SELECT code FROM town WHERE code <> :t ORDER BY code LIMIT 1"), {"t": town}
        ).scalar_one()
        community = conn.execute(
            text("SELECT code FROM community WHERE town_code = :t ORDER BY code LIMIT 1"), {"t": town}
        ).scalar_one()
        worker = conn.execute(text("SELECT id FROM worker WHERE active ORDER BY id LIMIT 1")).scalar_one()
        entities = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT uscc, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity"
                    " WHERE town_code = :t AND geom IS NOT NULL AND status = 'open' ORDER BY uscc DESC LIMIT 16"
                ),
                {"t": town},
            )
        ]
        office = (entities[0]["lon"], entities[0]["lat"])
        joint = insert_drawn_plan(conn, town, departments=JOINT, visit_date=date(2026, 12, 3))
        team = insert_team(conn, joint, 1, JOINT, office, "999999999999999")
        insert_visits(conn, joint, entities[:6], team, JOINT)
        closed = insert_visits(conn, joint, entities[6:7], team, JOINT, window=(0, 5))[0]
        alone = insert_drawn_plan(conn, town, departments=ALONE, visit_date=date(2026, 12, 3))
        alone_team = insert_team(conn, alone, 1, ALONE, office, "999999999999999")
        alone_visits = insert_visits(conn, alone, entities[8:14], alone_team, ALONE)
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", town),
                "away-leader": ("town_leader", away),
                "dispatcher": ("dispatcher", community),
                "worker": ("grid_worker", str(worker)),
                "officer": ("department_officer", "market_supervision"),
                "health": ("department_officer", "health"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "routing-tool", permissions=["gis"])
    engine.dispose()
    return {
        "town": town,
        "joint": joint,
        "team": team,
        "closed": closed,
        "alone": alone,
        "alone_visits": alone_visits,
        "points": [(e["lon"], e["lat"]) for e in entities],
        "api_key": key,
    }


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {name: bearer(client, name) for name in PEOPLE}
    out["api"] = api_key_headers(world["api_key"])
    return out


def a_day_problem(points: list[tuple[float, float]], **options: Any) -> dict[str, Any]:
    """Five shops and one team in the test city, by coordinates (timed on the roads)."""
    problem: dict[str, Any] = {
        "vehicles": [{"id": 1, "start": list(points[0]), "end": list(points[0]), "time_window": [30600, 63000]}],
        "jobs": [
            {"id": 10 + k, "location": list(p), "service": 1800, "time_windows": [[32400, 63000]]}
            for k, p in enumerate(points[1:6])
        ],
    }
    if options:
        problem["options"] = options
    return problem


# Written out by hand: (who) → status of GET routes of the joint plan, POST routes of the market-supervision plan,
# POST routes of the joint plan, POST /v1/routes/solve.
EXPECTED = {
    "admin": (200, 200, 200, 200),
    "centre": (200, 200, 200, 200),
    "leader": (200, 403, 403, 403),
    "away-leader": (403, 403, 403, 403),
    "dispatcher": (403, 403, 403, 403),
    "worker": (403, 403, 403, 403),
    "officer": (200, 200, 403, 200),
    "health": (403, 403, 403, 200),
    "api": (403, 403, 403, 200),
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_reaches_the_routes_of_its_own_plans_only(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], who: str
) -> None:
    read, plan_alone, plan_joint, solve = EXPECTED[who]
    h = headers[who]
    got = client.get(f"/v1/inspection-plans/{world['joint']}/routes", headers=h)
    assert got.status_code == read, got.text
    posted = client.post(f"/v1/inspection-plans/{world['alone']}/routes", json={"max_seconds": 0.3}, headers=h)
    assert posted.status_code == plan_alone, posted.text
    posted = client.post(f"/v1/inspection-plans/{world['joint']}/routes", json={"max_seconds": 0.3}, headers=h)
    assert posted.status_code == plan_joint, posted.text
    solved = client.post("/v1/routes/solve", json=a_day_problem(world["points"]), headers=h)
    assert solved.status_code == solve, solved.text
    for response in (got, posted, solved):
        if response.status_code == 403:
            assert response.json()["error"] == "forbidden"


def test_an_unknown_plan_is_not_found(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    response = client.get("/v1/inspection-plans/987654/routes", headers=headers["centre"])
    assert response.status_code == 404


def test_a_plans_team_days_come_with_times_windows_and_a_road_path(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    response = client.post(f"/v1/inspection-plans/{world['joint']}/routes", json={}, headers=headers["centre"])
    assert response.status_code == 200, response.text
    answer = PlanRoutesOut.model_validate(response.json())
    day = answer.teams[0].days[0]
    assert day.date >= "2026-12-03" and day.leave >= "08:30" and day.back <= "17:30"
    assert len(day.stops) == 6
    assert all(s.start >= "09:00" for s in day.stops)
    assert day.geometry.type == "LineString" and len(day.geometry.coordinates) > len(day.stops) + 2
    assert [u.visit_id for u in answer.unassigned] == [world["closed"]]
    assert answer.unassigned[0].reason == "window_closed"
    # The town leader reads the same days.
    read = client.get(f"/v1/inspection-plans/{world['joint']}/routes", headers=headers["leader"]).json()
    assert read["teams"][0]["days"][0]["stops"] == response.json()["teams"][0]["days"][0]["stops"]


def test_a_hand_move_is_kept_or_refused_with_its_reason(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    url = f"/v1/inspection-plans/{world['joint']}/routes"
    client.post(url, json={"max_seconds": 0.5}, headers=headers["centre"])
    before = client.get(url, headers=headers["centre"]).json()
    refused = client.post(
        f"{url}/move",
        json={"visit_id": world["closed"], "team_id": world["team"], "day": 1, "position": 0},
        headers=headers["centre"],
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "route_infeasible"
    assert body["unassigned"] == [
        {"id": world["closed"], "reason": "window_closed", "detail": body["unassigned"][0]["detail"]}
    ]
    assert "营业时间" in body["detail"]
    assert client.get(url, headers=headers["centre"]).json()["teams"] == before["teams"]
    last = before["teams"][0]["days"][0]["stops"][-1]["visit_id"]
    moved = client.post(
        f"{url}/move",
        json={"visit_id": last, "team_id": world["team"], "day": 1, "position": 0},
        headers=headers["centre"],
    )
    assert moved.status_code == 200, moved.text
    day = moved.json()["teams"][0]["days"][0]
    assert day["stops"][0]["visit_id"] == last and day["manual"] is True
    # An officer of the department cannot re-plan a joint plan by hand.
    denied = client.post(
        f"{url}/move",
        json={"visit_id": last, "team_id": world["team"], "day": 1, "position": 1},
        headers=headers["officer"],
    )
    assert denied.status_code == 403


def test_another_tool_gets_vrooms_answer_on_the_citys_roads(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    response = client.post("/v1/routes/solve", json=a_day_problem(world["points"]), headers=headers["api"])
    assert response.status_code == 200, response.text
    answer = response.json()
    VroomSolutionOut.model_validate(answer)
    assert answer["code"] == 0 and answer["summary"]["unassigned"] == 0
    steps = answer["routes"][0]["steps"]
    assert [s["type"] for s in steps] == ["start", "job", "job", "job", "job", "job", "end"]
    assert sorted(s["id"] for s in steps if s["type"] == "job") == [10, 11, 12, 13, 14]
    assert all(s["arrival"] + s["waiting_time"] >= 32400 for s in steps if s["type"] == "job")
    assert answer["summary"]["distance"] > 0 and answer["summary"]["computing_times"]["routing"] >= 0


def test_an_infeasible_day_answers_422_unless_a_partial_answer_is_asked_for(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    problem = a_day_problem(world["points"])
    problem["jobs"][0]["time_windows"] = [[0, 60]]  # closes at 00:01
    refused = client.post("/v1/routes/solve", json=problem, headers=headers["centre"])
    assert refused.status_code == 422
    assert refused.json()["error"] == "route_infeasible"
    assert refused.json()["unassigned"][0]["id"] == 10
    assert refused.json()["unassigned"][0]["reason"] == "window_closed"
    partial = client.post(
        "/v1/routes/solve", json={**problem, "options": {"allow_unassigned": True}}, headers=headers["centre"]
    )
    assert partial.status_code == 200
    assert partial.json()["unassigned"][0]["id"] == 10
    assert partial.json()["unassigned"][0]["description"]


def test_what_cannot_be_taken_is_refused_plainly(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    h = headers["centre"]
    outside = a_day_problem(world["points"])
    outside["jobs"][0]["location"] = [2.35, 48.85]  # Paris
    response = client.post("/v1/routes/solve", json=outside, headers=h)
    assert response.status_code == 422 and response.json()["reason"] == "outside_city"
    shipments = {**a_day_problem(world["points"]), "shipments": []}
    response = client.post("/v1/routes/solve", json=shipments, headers=h)
    assert response.status_code == 422 and "shipments" in response.json()["detail"]
    response = client.post("/v1/routes/solve", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert response.status_code == 422
    huge = b'{"jobs": [' + b" " * (10 * 1024 * 1024) + b"]}"
    response = client.post("/v1/routes/solve", content=huge, headers={**h, "content-type": "application/json"})
    assert response.status_code == 413
    response = client.post(
        "/v1/routes/solve", json={**a_day_problem(world["points"]), "options": {"max_seconds": 60}}, headers=h
    )
    assert response.status_code == 422 and "max_seconds" in response.json()["detail"]


def test_the_command_line_solves_a_vroom_file_and_prints_a_plans_days(
    db: DatabaseSettings, world: dict[str, Any], tmp_path: Path
) -> None:
    env = {"GRIDGOV_DATABASE_URL": db.database_url}
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(a_day_problem(world["points"])), encoding="utf-8")
    solution = tmp_path / "solution.json"
    solved = CliRunner().invoke(
        app, ["routes", "solve", str(problem), "--out", str(solution), "--max-seconds", "0.5"], env=env
    )
    assert solved.exit_code == 0, solved.output
    assert "1 条路线" in solved.output
    answer = json.loads(solution.read_text(encoding="utf-8"))
    assert answer["code"] == 0 and answer["summary"]["unassigned"] == 0
    bad = a_day_problem(world["points"])
    bad["jobs"][0]["time_windows"] = [[0, 60]]
    problem.write_text(json.dumps(bad), encoding="utf-8")
    refused = CliRunner().invoke(app, ["routes", "solve", str(problem)], env=env)
    assert refused.exit_code == 1
    assert "window_closed" in refused.output
    printed = CliRunner().invoke(app, ["routes", "plan", str(world["alone"]), "--max-seconds", "0.5"], env=env)
    assert printed.exit_code == 0, printed.output
    assert "检查组" in printed.output and "第1组" in printed.output and "出发" in printed.output
    unknown = CliRunner().invoke(app, ["routes", "plan", "987654"], env=env)
    assert unknown.exit_code == 2


def test_a_problem_whose_road_matrix_cannot_fit_the_time_limit_is_refused_up_front(
    client: TestClient, headers: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    """The outside test: 1,000 located jobs spent 11 s on the road matrix, outside the guard. Now the matrix counts
    against the limit: a problem it cannot route in time is refused before any search (422 too_large), and an
    answer's loading time includes its matrix."""
    engine = make_engine(db)
    with engine.connect() as conn:
        spread = [
            (r[0], r[1])
            for r in conn.execute(
                text("SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE geom IS NOT NULL ORDER BY md5(uscc) LIMIT 301")
            )
        ]
    engine.dispose()
    problem = a_day_problem(spread, max_seconds=0.5)
    problem["jobs"] = [{"id": k, "location": list(p), "service": 60} for k, p in enumerate(spread[1:])]
    refused = client.post("/v1/routes/solve", json=problem, headers=headers["api"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "too_large"
    assert "max_seconds" in refused.json()["detail"]
    answered = client.post("/v1/routes/solve", json=a_day_problem(spread[:6]), headers=headers["api"])
    assert answered.status_code == 200, answered.text
    times = answered.json()["summary"]["computing_times"]
    assert times["loading"] >= times["routing"] > 0


def test_vrooms_documentation_example_with_loads_is_answered_with_its_loads(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    from tests.planning.test_vrp import example_1_with_loads

    problem = example_1_with_loads()
    response = client.post("/v1/routes/solve", json=problem, headers=headers["api"])
    assert response.status_code == 200, response.text
    answer = response.json()
    VroomSolutionOut.model_validate(answer)
    assert answer["summary"]["delivery"] == [4] and answer["summary"]["unassigned"] == 0
    for route in answer["routes"]:
        assert route["steps"][0]["load"] == route["delivery"]
        assert route["steps"][-1]["load"] == [0]
