"""A dispatcher adds the address of a registration the library does not hold, and the next one at it finds it.

The typed address is a door of a natural village that the library lacks (the village and the community exist), so
the geocoder knows only the community and the registration waits for the community's dispatcher. Resolving it with
`add_address` adds the standard address at a point of the dispatcher's community, writes its history, places the
registration and learns the address: the next registration at it (the same text, or with 东莞市 and full-width
digits) is placed at door level on the new address at once.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.review import ReviewProposal
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_village_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

START = clock.now().replace(microsecond=0) - timedelta(hours=1)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def credit_code(serial: int) -> str:
    first17 = f"91441900MA{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


def absent_door(full_text: str, number: int) -> str:
    """The same village and lane with another door number (the test city numbers doors far below 900)."""
    return re.sub(r"\d+号$", f"{number}号", full_text)


@pytest.fixture(scope="module", autouse=True)
def city(db: DatabaseSettings) -> dict[str, Any]:
    """A village door with workers, a door of a neighbour community, one of another town, and the people."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_village_door_with_workers(conn)
        neighbour = a_door_in_a_neighbour_community(conn, door)
        away = a_door_in_another_town(conn, door.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "dispatcher": ("dispatcher", door.community_code),
                "neighbour_dispatcher": ("dispatcher", neighbour.community_code),
                "far_dispatcher": ("dispatcher", away.community_code),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", away.town_code),
                "worker": ("grid_worker", str(door.worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["geocode", "intake"])
    engine.dispose()
    return {"door": asdict(door), "neighbour": asdict(neighbour), "away": asdict(away), "api_key": key}


@pytest.fixture(scope="module")
def auth(client: TestClient, city: dict[str, Any]) -> dict[str, dict[str, str]]:
    people = ("centre", "dispatcher", "neighbour_dispatcher", "far_dispatcher", "leader", "far_leader", "worker",
              "officer")  # fmt: skip
    return {**{name: bearer(client, name) for name in people}, "api": api_key_headers(city["api_key"])}


def register(client: TestClient, city: dict[str, Any], serial: int, address: str) -> dict[str, Any]:
    body = {
        "event_id": f"add-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": "东莞市新开商行",
        "address": address,
        "business_scope": "烟草制品零售",
        "occurred_at": (START - timedelta(minutes=serial)).isoformat(),
    }
    response = client.post("/v1/registrations", json=body, headers=api_key_headers(city["api_key"]))
    assert response.status_code == 201, response.text
    status: dict[str, Any] = response.json()
    return status


def waiting_item(client: TestClient, city: dict[str, Any], serial: int, address: str) -> int:
    status = register(client, city, serial, address)
    assert status["outcome"] == "review" and status["review_id"], status
    return int(status["review_id"])


def add_body(city: dict[str, Any], components: dict[str, Any], *, at: str = "door") -> dict[str, Any]:
    """A resolution adding `components` at the point of a door of the city (the new door beside it)."""
    place = city[at]
    return {"add_address": {"lon": place["lon"], "lat": place["lat"], "components": components}}


def test_an_added_address_places_the_registration_and_the_next_one_matches_it_at_door_level(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    typed = absent_door(door["full_text"], 901)
    item = waiting_item(client, city, 1, typed)

    # The form comes prefilled: the parsed components, the standard text they make, a point to start from.
    proposal = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"])
    assert proposal.status_code == 200, proposal.text
    drafted = ReviewProposal(**proposal.json())
    assert drafted.address == typed and drafted.level == "door" and drafted.full_text == typed
    assert drafted.components["door_no"] == "901" and drafted.components["community"]
    assert drafted.community_code == door["community_code"] and drafted.existing is None
    assert drafted.suggested is not None and drafted.suggested["lon"] and drafted.suggested["lat"]

    resolved = client.post(
        f"/v1/review/{item}/resolve", json=add_body(city, drafted.components), headers=auth["dispatcher"]
    )
    assert resolved.status_code == 200, resolved.text
    answer = resolved.json()
    added = answer["added_address"]
    assert answer["outcome"] == "placed" and len(answer["task_ids"]) == 3
    assert added["full_text"] == typed and added["level"] == "door"
    assert added["grid_code"] == door["grid_code"] and added["community_code"] == door["community_code"]

    # Its tasks went to the workers of the new address's grid, like any resolution's.
    tasks = client.get("/v1/tasks", params={"uscc": credit_code(1)}, headers=auth["centre"]).json()["items"]
    assert {t["grid_code"] for t in tasks} == {door["grid_code"]}
    assert {t["worker_id"] for t in tasks} <= set(door["worker_ids"])

    # The library's history names the dispatcher and the review item; the item names the new address.
    history = client.get(f"/v1/addresses/{added['id']}", headers=auth["centre"]).json()["history"]
    assert [(h["action"], h["changed_by"], h["new_status"]) for h in history] == [("add", "user:dispatcher", "active")]
    assert f"review item {item}" in history[0]["note"]
    queue = client.get("/v1/review", params={"include_resolved": True}, headers=auth["centre"]).json()["items"]
    done = next(i for i in queue if i["id"] == item)
    assert done["resolved_by"] == "user:dispatcher" and done["resolution"]["address_id"] == added["id"]

    # The running geocoder knows it at once: the same text and a noisy one are placed at door level on it.
    for serial, again in ((2, typed), (3, "东莞市" + typed.translate(FULL_WIDTH))):
        found = client.get("/v1/geocode", params={"q": again}, headers=auth["api"]).json()
        assert (found["status"], found["level"], found["address_id"]) == ("matched", "door", added["id"]), found
        status = register(client, city, serial, again)
        assert status["outcome"] == "placed" and len(status["task_ids"]) == 3, status
        tasks = client.get("/v1/tasks", params={"uscc": credit_code(serial)}, headers=auth["centre"]).json()["items"]
        assert {t["grid_code"] for t in tasks} == {door["grid_code"]}


def test_an_address_the_library_holds_already_is_a_409_that_names_it(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    item = waiting_item(client, city, 10, absent_door(door["full_text"], 902))
    drafted = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()
    # The dispatcher writes the door number of the door the library holds.
    existing_no = re.search(r"(\d+)号$", door["full_text"])
    assert existing_no is not None
    components = {**drafted["components"], "door_no": existing_no.group(1)}
    taken = client.post(f"/v1/review/{item}/resolve", json=add_body(city, components), headers=auth["dispatcher"])
    assert taken.status_code == 409, taken.text
    body = taken.json()
    assert body["error"] == "duplicate_address"
    assert body["address_id"] == door["id"] and body["standard_address"] == door["full_text"]
    # Nothing changed: the item is still open, and choosing the existing address resolves it.
    chosen = client.post(f"/v1/review/{item}/resolve", json={"address_id": door["id"]}, headers=auth["dispatcher"])
    assert chosen.status_code == 200, chosen.text


def test_a_point_outside_the_callers_area_is_refused_and_nothing_is_added(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    typed = absent_door(door["full_text"], 903)
    item = waiting_item(client, city, 20, typed)
    components = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()["components"]
    for place in ("neighbour", "away"):
        refused = client.post(
            f"/v1/review/{item}/resolve", json=add_body(city, components, at=place), headers=auth["dispatcher"]
        )
        # The target end of the write is checked like the object's: outside the caller's area is 403, not 422.
        assert refused.status_code == 403, (place, refused.text)
        assert refused.json()["error"] == "forbidden"
    outside = {"add_address": {"lon": 113.0, "lat": 22.0, "components": components}}
    nowhere = client.post(f"/v1/review/{item}/resolve", json=outside, headers=auth["dispatcher"])
    assert nowhere.status_code == 422 and nowhere.json()["field"] == "lon", nowhere.text
    # Another community's or town's dispatcher, and any town leader, may not touch the item at all.
    for intruder in ("neighbour_dispatcher", "far_dispatcher", "far_leader", "leader"):
        taken = client.post(f"/v1/review/{item}/resolve", json=add_body(city, components), headers=auth[intruder])
        assert taken.status_code == 403 and taken.json()["error"] == "forbidden", (intruder, taken.text)
    for intruder in ("neighbour_dispatcher", "far_dispatcher"):
        assert client.get(f"/v1/review/{item}/proposal", headers=auth[intruder]).status_code == 403
    # The centre's point in the wrong community of the address is refused by the library's own rule.
    wrong = client.post(f"/v1/review/{item}/resolve", json=add_body(city, components, at="neighbour"),
                        headers=auth["centre"])  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["error"] == "address_rejected", wrong.text
    assert "outside_community" in wrong.json()["detail"]
    still = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()
    assert still["existing"] is None
    assert item in {i["id"] for i in client.get("/v1/review", headers=auth["dispatcher"]).json()["items"]}


def test_a_role_that_may_not_add_to_the_library_gets_403(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    item = waiting_item(client, city, 30, absent_door(city["door"]["full_text"], 904))
    components = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()["components"]
    for person in ("worker", "api", "officer", "leader"):
        refused = client.post(f"/v1/review/{item}/resolve", json=add_body(city, components), headers=auth[person])
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", (person, refused.text)
    for person in ("worker", "api", "officer"):
        assert client.get(f"/v1/review/{item}/proposal", headers=auth[person]).status_code == 403, person
    assert client.get("/v1/review/999999/proposal", headers=auth["centre"]).status_code == 404


@pytest.fixture(scope="module")
def open_item(client: TestClient, city: dict[str, Any]) -> int:
    """One open item shared by the bad-body stories (none of them changes anything)."""
    return waiting_item(client, city, 40, absent_door(city["door"]["full_text"], 905))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda b: {**b, "address_id": 1}, "invalid_request"),  # two kinds of resolution at once
        (lambda b: {"add_address": {**b["add_address"], "lon": 200.0}}, "invalid_request"),
        (
            lambda b: {"add_address": {k: v for k, v in b["add_address"].items() if k != "components"}},
            "invalid_request",
        ),
        (lambda b: {"add_address": {**b["add_address"], "components": {"street": "x"}}}, "invalid_request"),
        (lambda b: {"add_address": {**b["add_address"], "components": {"town": "长安镇\x00"}}}, "invalid_request"),
        (lambda b: {"add_address": {**b["add_address"], "level": "door"}}, "invalid_request"),
        # Components that make no door, building or room: the library's rule refuses them.
        (lambda b: {"add_address": {**b["add_address"], "components": {"town": "东城街道"}}}, "address_rejected"),
        (lambda b: {"add_address": {**b["add_address"], "components": {"door_no": "5"}}}, "address_rejected"),
    ],
)
def test_a_bad_body_is_a_422_that_says_what_is_wrong(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]], open_item: int, change: Any, error: str
) -> None:
    item = open_item
    components = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()["components"]
    answer = client.post(
        f"/v1/review/{item}/resolve", json=change(add_body(city, components)), headers=auth["dispatcher"]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == error and answer.json()["detail"]


def test_a_compound_the_library_lacks_waits_for_review_and_once_added_is_found_at_door_level(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    door = city["door"]
    engine = make_engine(db)
    with engine.connect() as conn:
        town, community = conn.execute(
            text("SELECT t.name, c.name FROM community c JOIN town t ON t.code = c.town_code WHERE c.code = :c"),
            {"c": door["community_code"]},
        ).one()
    engine.dispose()
    typed = f"{town}{community}鑫悦豪庭"  # a new compound: 鑫 and 悦豪 are in no name of the test city
    item = waiting_item(client, city, 60, typed)
    # The geocoder knew only the community, and said which part it did not find.
    queued = client.get("/v1/review", headers=auth["dispatcher"]).json()["items"]
    reason = next(i for i in queued if i["id"] == item)["reason"]
    assert "鑫悦豪庭" in reason, reason

    drafted = client.get(f"/v1/review/{item}/proposal", headers=auth["dispatcher"]).json()
    assert drafted["components"]["compound"] == "鑫悦豪庭" and drafted["level"] == "door"
    resolved = client.post(
        f"/v1/review/{item}/resolve", json=add_body(city, drafted["components"]), headers=auth["dispatcher"]
    )
    assert resolved.status_code == 200, resolved.text
    added = resolved.json()["added_address"]
    # The next registration at that compound, typed another way, is placed at door level on it.
    again = "广东省东莞市" + typed
    found = client.get("/v1/geocode", params={"q": again}, headers=auth["api"]).json()
    assert (found["status"], found["level"], found["address_id"]) == ("matched", "door", added["id"]), found
    assert found["confidence"] >= 0.9
    status = register(client, city, 61, again)
    assert status["outcome"] == "placed", status
