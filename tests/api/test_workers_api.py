"""The dispatcher's roster of grid workers to assign a task to, and the list filters the dashboard's lists follow a
drill-down view with (town, community, grid): each role sees only its own area's workers and work."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from address_library.service import Geocoder
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.task_states import OPEN_STATUSES
from supervision.worker_roster import RosterWorker
from synthetic.simulate import simulate
from tests.support.accounts import bearer, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_door_with_workers

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A week of simulated work; a door's grid with workers, a neighbour community, another town; every role."""
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    simulate(engine, lambda: geocoder, days=7, end=date(2026, 11, 30), seed=5)
    with engine.begin() as conn:
        home = a_door_with_workers(conn)
        neighbour = a_door_in_a_neighbour_community(conn, home)
        away = a_door_in_another_town(conn, home.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        community_workers = conn.execute(
            text(
                "SELECT w.id, w.grid_code, w.capacity, "
                "(SELECT count(*) FROM task t WHERE t.worker_id = w.id AND t.status = ANY(:open)) AS open_tasks "
                "FROM worker w JOIN grid_version v ON v.id = w.version_id AND v.status = 'active' "
                "WHERE w.active AND w.grid_code LIKE :prefix ORDER BY w.grid_code, w.id"
            ),
            {"prefix": home.community_code + "%", "open": list(OPEN_STATUSES)},
        ).all()
        busy = conn.execute(
            text(
                "SELECT grid_code, community_code, town_code FROM task "
                "GROUP BY grid_code, community_code, town_code ORDER BY count(*) DESC, grid_code LIMIT 1"
            )
        ).one()
        noisy = conn.execute(
            text(
                "SELECT left(grid_code, 12) AS community_code, town_code FROM clue WHERE grid_code IS NOT NULL "
                "GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1"
            )
        ).one()
    engine.dispose()
    return {
        "busy": busy,
        "noisy": noisy,
        "home": home,
        "neighbour": neighbour,
        "away": away,
        "community_workers": community_workers,
    }


@pytest.fixture(scope="module")
def headers(client: TestClient) -> dict[str, dict[str, str]]:
    return {name: bearer(client, name) for name in ("centre", "leader", "dispatcher", "worker", "officer")}


def test_a_dispatcher_sees_the_workers_of_their_community_with_their_open_tasks(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    answer = client.get("/v1/workers", headers=headers["dispatcher"])
    assert answer.status_code == 200, answer.text
    items = [RosterWorker(**item) for item in answer.json()["items"]]
    expected = world["community_workers"]
    assert [w.id for w in items] == [r.id for r in expected]
    assert {w.community_code for w in items} == {world["home"].community_code}
    assert [(w.open_tasks, w.capacity) for w in items] == [(r.open_tasks, r.capacity) for r in expected]
    assert all(w.name for w in items)

    grid = client.get("/v1/workers", params={"grid": world["home"].grid_code}, headers=headers["dispatcher"])
    assert grid.status_code == 200
    assert [w["id"] for w in grid.json()["items"]] == list(world["home"].worker_ids)


def test_a_dispatcher_cannot_list_another_communitys_workers(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    for params in ({"community": world["neighbour"].community_code}, {"grid": world["away"].grid_code}):
        answer = client.get("/v1/workers", params=params, headers=headers["dispatcher"])
        assert answer.status_code == 403, (params, answer.text)
        assert answer.json()["error"] == "forbidden"


def test_the_command_centre_lists_any_grid_and_must_name_one(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    away = client.get("/v1/workers", params={"grid": world["away"].grid_code}, headers=headers["centre"])
    assert away.status_code == 200
    assert [w["id"] for w in away.json()["items"]] == list(world["away"].worker_ids)
    whole_city = client.get("/v1/workers", headers=headers["centre"])
    assert whole_city.status_code == 422
    assert whole_city.json()["error"] == "invalid_request"
    bad = client.get("/v1/workers", params={"community": "44190000300x"}, headers=headers["centre"])
    assert bad.status_code == 422


def test_roles_that_do_not_assign_work_get_no_roster(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    for person in ("leader", "worker", "officer"):
        answer = client.get("/v1/workers", params={"grid": world["home"].grid_code}, headers=headers[person])
        assert answer.status_code == 403, person
    assert client.get("/v1/workers").status_code == 401


def test_task_and_clue_lists_follow_a_town_a_community_and_a_grid(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    busy = world["busy"]
    centre = headers["centre"]
    for key, code, field in (
        ("town", busy.town_code, "town_code"),
        ("community", busy.community_code, "community_code"),
        ("grid", busy.grid_code, "grid_code"),
    ):
        page = client.get("/v1/tasks", params={key: code, "limit": 500}, headers=centre).json()
        assert page["total"] > 0, key
        assert {task[field] for task in page["items"]} == {code}
        # Each task says where its object is, so the dashboard can fly there and show the address.
        missing = [t for t in page["items"] if not (t["lon"] and t["lat"] and (t["address"] or t["kind"] == "clue"))]
        assert not missing, (key, [(t["kind"], t["clue_id"], t["address"], t["lon"]) for t in missing])
    tasks_in_town = client.get("/v1/tasks", params={"town": busy.town_code}, headers=centre).json()["total"]
    tasks_in_community = client.get("/v1/tasks", params={"community": busy.community_code}, headers=centre).json()
    assert tasks_in_community["total"] < tasks_in_town
    # A dispatcher of another community asking for this one's tasks gets none of them: the scope still decides.
    assert busy.community_code != world["home"].community_code
    other = client.get("/v1/tasks", params={"community": busy.community_code}, headers=headers["dispatcher"])
    assert other.status_code == 200 and other.json()["total"] == 0

    noisy = world["noisy"]
    clues = client.get(
        "/v1/clues", params={"community": noisy.community_code, "source": "all", "limit": 500}, headers=centre
    ).json()
    town_clues = client.get(
        "/v1/clues", params={"town": noisy.town_code, "source": "all", "limit": 500}, headers=centre
    )
    in_community = [c for c in town_clues.json()["items"] if (c["grid_code"] or "").startswith(noisy.community_code)]
    city_clues = client.get("/v1/clues", params={"source": "all"}, headers=centre).json()["total"]
    assert 0 < clues["total"] < city_clues
    assert [c["id"] for c in clues["items"]] == [c["id"] for c in in_community]
    assert client.get("/v1/clues", params={"community": "4419"}, headers=centre).status_code == 422
