"""The permission matrix: every object endpoint, every role, inside and outside its scope, answers the expected status.

The places: `home` (a door of one community, in a grid with a worker), `neighbour` (another community of the same
town), `away` (another town), and `routed` (an away object routed to the tobacco department). The people: an admin,
the command centre, the home town's leader, the home community's dispatcher, a worker of the home grid, a tobacco
department officer, and a registration system's API key. The expected statuses are written out by hand below, not
derived from the permission table, so a change of the table that opens a door fails here.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import Door, a_door_in_a_neighbour_community, a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

START = clock.now().replace(microsecond=0) - timedelta(hours=1)
PEOPLE = ("admin", "centre", "leader", "dispatcher", "worker", "officer", "api")
PLACES = ("home", "neighbour", "away")


def credit_code(serial: int) -> str:
    first17 = f"91441900MA{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


def _place(door: Door) -> dict[str, Any]:
    return {**asdict(door), "worker_id": door.worker_id}


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """Three doors (home, neighbour community of the same town, another town) and an account of every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn)
        neighbour = a_door_in_a_neighbour_community(conn, home)
        away = a_door_in_another_town(conn, home.town_code)
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
    engine.dispose()
    return {"home": _place(home), "neighbour": _place(neighbour), "away": _place(away), "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE[:-1]:
        out[name] = bearer(client, name)
    return out


def _register(client: TestClient, world: dict[str, Any], serial: int, address: str) -> dict[str, Any]:
    body = {
        "event_id": f"perm-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": "东莞市权限测试商行",
        "address": address,
        "business_scope": "烟草制品零售",
        "occurred_at": (START - timedelta(minutes=serial)).isoformat(),
    }
    response = client.post("/v1/registrations", json=body, headers={"X-API-Key": world["api_key"]})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _review_item(db: DatabaseSettings, serial: int, door: dict[str, Any]) -> int:
    """A registration waiting in the review queue whose community is known and whose door is not (as the geocoder
    leaves a text naming the community but no place in it); written directly, so that the matrix does not depend on
    how well the geocoder reads one vague text."""
    payload = {"event_id": f"perm-review-{serial}", "community_code": door["community_code"], "address": "某某铺位"}
    engine = make_engine(db)
    with engine.begin() as conn:
        item = conn.execute(
            text(
                "INSERT INTO review_queue (kind, reason, payload, town_code, created_at) "
                "VALUES ('registration', 'matched only at community level', CAST(:p AS jsonb), :t, :now) RETURNING id"
            ),
            {"p": json.dumps(payload), "t": door["town_code"], "now": clock.now()},
        ).scalar_one()
    engine.dispose()
    return int(item)


@pytest.fixture(scope="module")
def objects(
    db: DatabaseSettings, client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """At each place: a registration and its tasks, a clue, a review item, the door's grid, address and worker."""
    centre = headers["centre"]
    found: dict[str, Any] = {}
    for serial, place in enumerate(PLACES, start=1):
        door = world[place]
        placed = _register(client, world, serial, door["full_text"])
        assert placed["outcome"] == "placed", placed
        tasks = client.get("/v1/tasks", params={"uscc": credit_code(serial)}, headers=centre).json()["items"]
        clue = client.post(
            "/v1/clues",
            json={"lon": door["lon"], "lat": door["lat"], "industry": "餐饮服务", "description": "无证经营"},
            headers=centre,
        )
        assert clue.status_code == 201, clue.text
        found[place] = {
            "event": placed["event_id"],
            "task": next(t for t in tasks if t["duty"] == "address_check"),
            "licence": next(t for t in tasks if t["duty"] == "licence_check"),
            "review": _review_item(db, serial, door),
            "clue": clue.json()["id"],
            "grid": door["grid_code"],
            "address": door["id"],
            "worker": door["worker_id"],
            "town": door["town_code"],
        }
    routed = client.post(
        "/v1/clues",
        json={"lon": world["away"]["lon"], "lat": world["away"]["lat"], "industry": "烟草制品零售"},
        headers=centre,
    )
    assert routed.status_code == 201 and routed.json()["department_code"] == "tobacco", routed.text
    found["routed"] = {"task": found["away"]["licence"], "clue": routed.json()["id"]}
    return found


# Expected statuses, place by place (home, neighbour, away[, routed]). Reading a task, its history, a clue:
# the command centre and admins everywhere; a town leader in their town; a dispatcher in their community; a worker in
# their grid; a department officer only what is routed to it; a registration system's key none (no task.read).
TASKS = {
    "admin": (200, 200, 200, 200),
    "centre": (200, 200, 200, 200),
    "leader": (200, 200, 403, 403),
    "dispatcher": (200, 403, 403, 403),
    "worker": (200, 403, 403, 403),
    "officer": (403, 403, 403, 200),
    "api": (403, 403, 403, 403),
}
# Moving a task (with a stale version, so nothing changes): 409 where the caller may move it, 403 elsewhere; a town
# leader reads but never moves.
MOVES = {**TASKS, "leader": (403, 403, 403, 403)}
MOVES = {person: tuple(409 if s == 200 else s for s in row) for person, row in MOVES.items()}
# The map, the address library and registrations: a territorial role sees its whole town; the rest the whole city.
TERRITORY = {
    "admin": (200, 200, 200),
    "centre": (200, 200, 200),
    "leader": (200, 200, 403),
    "dispatcher": (200, 200, 403),
    "worker": (200, 200, 403),
    "officer": (200, 200, 200),
    "api": (200, 200, 200),
}
# A grid's and an address's details (issue 17, finding 9): staff as the map; an API client (a key, or a user of role
# api_client) reads the outlines only, never the register behind them.
DETAILS = {**TERRITORY, "api": (403, 403, 403)}
# Resolving a review item (with an empty answer, so nothing changes: 422 where the caller may resolve it): the
# command centre and admins anywhere, a dispatcher only their own community's (never the neighbour's).
REVIEW = {
    "admin": (422, 422, 422),
    "centre": (422, 422, 422),
    "leader": (403, 403, 403),
    "dispatcher": (422, 403, 403),
    "worker": (403, 403, 403),
    "officer": (403, 403, 403),
    "api": (403, 403, 403),
}
# Reading a review item's proposal for the library: whoever may resolve the item.
REVIEW_READ = {person: tuple(200 if s == 422 else s for s in row) for person, row in REVIEW.items()}
# Moving a worker (without a target grid, so nothing changes: 422 where the caller may manage the worker).
WORKERS = REVIEW
# A grid's figures: the centre anywhere, a leader in their town, a dispatcher in their community, a worker their grid.
STATS = {
    "admin": (200, 200, 200),
    "centre": (200, 200, 200),
    "leader": (200, 200, 403),
    "dispatcher": (200, 403, 403),
    "worker": (200, 403, 403),
    "officer": (403, 403, 403),
    "api": (403, 403, 403),
}
# A town's heatmap (home town, away town): the centre, the town's leader and its dispatchers.
HEATMAP = {
    "admin": (200, 200),
    "centre": (200, 200),
    "leader": (200, 403),
    "dispatcher": (200, 403),
    "worker": (403, 403),
    "officer": (403, 403),
    "api": (403, 403),
}


def _statuses(client: TestClient, headers: dict[str, str], requests: list[tuple[str, str, Any]]) -> tuple[int, ...]:
    out = []
    for method, url, body in requests:
        response = client.get(url, headers=headers) if method == "GET" else client.post(url, json=body, headers=headers)
        out.append(response.status_code)
    return tuple(out)


def _check(client: TestClient, headers: dict[str, dict[str, str]], table: dict[str, tuple[int, ...]], requests: Any):
    wrong = {}
    for person, expected in table.items():
        got = _statuses(client, headers[person], requests)
        if got != expected:
            wrong[person] = {"expected": expected, "got": got}
    assert not wrong, wrong


@pytest.mark.parametrize("path", ["/v1/tasks/{id}", "/v1/tasks/{id}/history"])
def test_reading_a_task_matrix(client: TestClient, headers: Any, objects: dict[str, Any], path: str) -> None:
    places = (*PLACES, "routed")
    _check(client, headers, TASKS, [("GET", path.format(id=objects[p]["task"]["id"]), None) for p in places])


def test_moving_a_task_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    places = (*PLACES, "routed")
    stale = {"to": "escalated_community", "version": 999}
    requests = [("POST", f"/v1/tasks/{objects[p]['task']['id']}/transitions", stale) for p in places]
    _check(client, headers, MOVES, requests)


def test_reading_a_clue_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    places = (*PLACES, "routed")
    _check(client, headers, TASKS, [("GET", f"/v1/clues/{objects[p]['clue']}", None) for p in places])


# A registration's status (issue 17, finding 9): a community's dispatcher and a grid worker read the events whose
# tasks are theirs, a town leader their town's, a department officer those routed to the department (here every
# event: tobacco retail), a key only what it sent (here every event).
REGISTRATIONS = {**TERRITORY, "dispatcher": (200, 403, 403), "worker": (200, 403, 403)}


@pytest.mark.parametrize(("path", "key"), [("/v1/registrations/{}", "event")])
def test_reading_territory_matrix(
    client: TestClient, headers: Any, objects: dict[str, Any], path: str, key: str
) -> None:
    _check(client, headers, REGISTRATIONS, [("GET", path.format(objects[p][key]), None) for p in PLACES])


@pytest.mark.parametrize(("path", "key"), [("/v1/grids/{}", "grid"), ("/v1/addresses/{}", "address")])
def test_reading_details_matrix(client: TestClient, headers: Any, objects: dict[str, Any], path: str, key: str) -> None:
    _check(client, headers, DETAILS, [("GET", path.format(objects[p][key]), None) for p in PLACES])


def test_resolving_a_review_item_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("POST", f"/v1/review/{objects[p]['review']}/resolve", {}) for p in PLACES]
    _check(client, headers, REVIEW, requests)


def test_adding_a_review_items_address_matrix(
    client: TestClient, headers: Any, objects: dict[str, Any], world: dict[str, Any]
) -> None:
    """Adding the item's address (components that make none, at the item's own door: 422 where the caller may)."""
    requests = [
        (
            "POST",
            f"/v1/review/{objects[p]['review']}/resolve",
            {"add_address": {"lon": world[p]["lon"], "lat": world[p]["lat"], "components": {}}},
        )
        for p in PLACES
    ]
    _check(client, headers, REVIEW, requests)


def test_reading_a_review_items_proposal_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("GET", f"/v1/review/{objects[p]['review']}/proposal", None) for p in PLACES]
    _check(client, headers, REVIEW_READ, requests)


def test_a_dispatcher_never_resolves_the_neighbouring_communitys_item(
    client: TestClient, headers: Any, objects: dict[str, Any], world: dict[str, Any]
) -> None:
    item = objects["neighbour"]["review"]
    for target in (world["neighbour"]["id"], world["home"]["id"]):
        answer = client.post(f"/v1/review/{item}/resolve", json={"address_id": target}, headers=headers["dispatcher"])
        assert answer.status_code in (403, 404), answer.text
    still_open = client.get("/v1/review", headers=headers["centre"]).json()["items"]
    assert item in {i["id"] for i in still_open}


def test_changing_a_worker_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("POST", f"/v1/workers/{objects[p]['worker']}/changes", {"action": "move"}) for p in PLACES]
    _check(client, headers, WORKERS, requests)


def test_a_worker_is_never_moved_into_a_grid_outside_the_movers_scope(
    client: TestClient, headers: Any, objects: dict[str, Any]
) -> None:
    worker = objects["home"]["worker"]
    for place in ("neighbour", "away"):
        body = {"action": "move", "grid_code": objects[place]["grid"]}
        answer = client.post(f"/v1/workers/{worker}/changes", json=body, headers=headers["dispatcher"])
        assert answer.status_code == 403, (place, answer.text)
    mine = client.get(f"/v1/stats?level=grid&code={objects['home']['grid']}", headers=headers["worker"])
    assert mine.status_code == 200  # still the home grid's worker


def test_a_grids_figures_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("GET", f"/v1/stats?level=grid&code={objects[p]['grid']}", None) for p in PLACES]
    _check(client, headers, STATS, requests)


def test_a_towns_heatmap_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("GET", f"/v1/heatmap?town={objects[p]['town']}&res=7", None) for p in ("home", "away")]
    _check(client, headers, HEATMAP, requests)


def test_lists_hold_only_what_the_caller_may_read_by_id(
    client: TestClient, headers: Any, objects: dict[str, Any], world: dict[str, Any]
) -> None:
    """Every task, clue and review item a list shows can also be read by id (the filter and the check agree)."""
    for person in ("leader", "dispatcher", "worker", "officer"):
        tasks = client.get("/v1/tasks", params={"limit": 500}, headers=headers[person]).json()["items"]
        clues = client.get("/v1/clues", params={"limit": 500, "source": "all"}, headers=headers[person]).json()
        assert tasks, person
        for task in tasks[:40]:
            assert client.get(f"/v1/tasks/{task['id']}", headers=headers[person]).status_code == 200, (person, task)
        for clue in clues["items"][:40]:
            assert client.get(f"/v1/clues/{clue['id']}", headers=headers[person]).status_code == 200, (person, clue)
    home, neighbour = world["home"], world["neighbour"]
    mine = client.get("/v1/review", headers=headers["dispatcher"]).json()["items"]
    assert objects["home"]["review"] in {i["id"] for i in mine}
    assert objects["neighbour"]["review"] not in {i["id"] for i in mine}
    assert all(i["town_code"] == home["town_code"] for i in mine)
    assert neighbour["community_code"] != home["community_code"]
    for person in ("api",):
        assert client.get("/v1/tasks", headers=headers[person]).status_code == 403
        assert client.get("/v1/clues", headers=headers[person]).status_code == 403


def test_pages_ask_for_the_capability_of_what_they_show(client: TestClient, headers: Any) -> None:
    assert client.get("/clues", headers=headers["api"]).status_code == 403  # a key reads no clues
    assert client.get("/review", headers=headers["worker"]).status_code == 403  # a worker resolves nothing
    assert client.get("/review", headers=headers["dispatcher"]).status_code == 200
    assert client.get("/clues", headers=headers["worker"]).status_code == 200
    # The map is every account's; a registration system's key (intake only, issue 17) has no map to read.
    assert client.get("/", headers=headers["api"]).status_code == 403
    assert client.get("/towns/city/heatmap", headers=headers["worker"]).status_code == 403


def test_an_outsider_cannot_tell_whether_a_town_exists(client: TestClient, headers: Any, objects: Any) -> None:
    """Outside the scope, a town that exists and one that does not answer alike (403); inside, unknown is 422."""
    for town in ("441900999000", objects["away"]["town"]):
        assert client.get(f"/v1/heatmap?town={town}&res=7", headers=headers["leader"]).status_code == 403
    assert client.get("/v1/heatmap?town=441900999000&res=7", headers=headers["centre"]).status_code == 422


# The command centre's own reads (issue 14). A unit's dashboard figures follow its statistics.
KPI = STATS
# A grid's roster for assigning: whoever manages workers there (the centre; a dispatcher in their community).
ROSTER = {**STATS, "leader": (403, 403, 403), "worker": (403, 403, 403)}
# Uploading an inspection photo (not an image, so nothing is stored: 422 where the caller may add one).
PHOTO_UPLOAD = {person: tuple(422 if s == 409 else s for s in row) for person, row in MOVES.items()}


def test_a_units_dashboard_figures_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    requests = [("GET", f"/v1/kpi?level=grid&code={objects[p]['grid']}", None) for p in PLACES]
    _check(client, headers, KPI, requests)
    trends = [("GET", f"/v1/kpi/trend?level=grid&code={objects[p]['grid']}&days=7", None) for p in PLACES]
    _check(client, headers, KPI, trends)


def test_a_grids_roster_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    _check(client, headers, ROSTER, [("GET", f"/v1/workers?grid={objects[p]['grid']}", None) for p in PLACES])


def test_a_tasks_photos_matrix(client: TestClient, headers: Any, objects: dict[str, Any]) -> None:
    places = ("home", "neighbour", "away", "routed")
    _check(client, headers, TASKS, [("GET", f"/v1/tasks/{objects[p]['task']['id']}/photos", None) for p in places])
    wrong: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for person, expected in PHOTO_UPLOAD.items():
        got = tuple(
            client.post(
                f"/v1/tasks/{objects[p]['task']['id']}/photos",
                files={"file": ("x.jpg", b"not an image", "image/jpeg")},
                headers=headers[person],
            ).status_code
            for p in places
        )
        if got != expected:
            wrong[person] = (expected, got)
    assert not wrong, f"expected vs got: {wrong}"
