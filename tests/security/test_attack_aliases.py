"""Finding 3 replayed over HTTP: a review resolution taught a city-wide alias, so one hostile or wrong resolution
poisoned the geocoder for every client (`火星路999号` then geocoded to a real door at confidence 1.0).

The attack, as the outside tester made it: a dispatcher resolves a review item typed with a road the city does not
have to a real door of their community; then an API key geocodes the bare text. Now the alias stays in the
resolver's community (the bare text and another town's name are not answered by it), a second independent
resolution promotes it, the command centre withdraws it and the geocoder stops using it on the next request, and
the list names who taught it. The review placement is checked at both ends: a door outside the resolver's area is
403 and changes nothing (no alias).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.intake import PLACE_MIN_CONFIDENCE
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_village_door_with_workers
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

START = clock.now().replace(microsecond=0) - timedelta(hours=1)
BODY = "火星路999号"  # a road the test city does not have


def credit_code(serial: int) -> str:
    first17 = f"91441900MB{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_village_door_with_workers(conn)
        neighbour = a_door_in_a_neighbour_community(conn, home)
        away = a_door_in_another_town(conn, home.town_code)
        town, community = conn.execute(
            text("SELECT t.name, c.name FROM community c JOIN town t ON t.code = c.town_code WHERE c.code = :c"),
            {"c": home.community_code},
        ).one()
        second_door = conn.execute(
            text("SELECT id FROM address WHERE community_code = :c AND level = 'door' AND status = 'active' "
                 "AND grid_code IS NOT NULL AND id <> :id ORDER BY id LIMIT 1"),
            {"c": home.community_code, "id": home.id},
        ).scalar_one()  # fmt: skip
        other_town = conn.execute(text("SELECT name FROM town WHERE code = :t"), {"t": away.town_code}).scalar_one()
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "dispatcher": ("dispatcher", home.community_code),
                "colleague": ("dispatcher", home.community_code),
            },
        )
        intake = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
        search = make_api_key(conn, SECRET_KEY, "map-search-box")
    engine.dispose()
    return {
        "home": asdict(home), "neighbour": asdict(neighbour), "away": asdict(away), "town": town,
        "community": community, "second_door": int(second_door), "other_town": other_town, "intake": intake,
        "search": search,
    }  # fmt: skip


@pytest.fixture(scope="module")
def client(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(make_app(db, tmp_path_factory.mktemp("state"))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auth(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    people = ("centre", "dispatcher", "colleague")
    return {**{p: bearer(client, p) for p in people}, "search": api_key_headers(world["search"])}


def waiting_item(client: TestClient, world: dict[str, Any], serial: int, address: str) -> int:
    body = {
        "event_id": f"alias-attack-{serial}", "kind": "new", "uscc": credit_code(serial), "name": "东莞市火星商行",
        "address": address, "business_scope": "烟草制品零售",
        "occurred_at": (START - timedelta(minutes=serial)).isoformat(),
    }  # fmt: skip
    response = client.post("/v1/registrations", json=body, headers=api_key_headers(world["intake"]))
    assert response.status_code == 201, response.text
    status = response.json()
    assert status["outcome"] == "review" and status["review_id"], status
    return int(status["review_id"])


def geocode(client: TestClient, auth: dict[str, dict[str, str]], q: str) -> dict[str, Any]:
    answer = client.get("/v1/geocode", params={"q": q}, headers=auth["search"])
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def confidently_at(answer: dict[str, Any], address_id: int) -> bool:
    return answer["address_id"] == address_id and answer["confidence"] >= PLACE_MIN_CONFIDENCE


def alias_rows(db: DatabaseSettings) -> list[dict[str, Any]]:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("SELECT * FROM address_alias ORDER BY id")).mappings()]
    engine.dispose()
    return rows


def test_finding_3_a_dispatchers_resolution_does_not_poison_the_geocoder_for_the_city(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    home = world["home"]
    typed = f"{world['town']}{world['community']}{BODY}"
    first, second = waiting_item(client, world, 1, typed), waiting_item(client, world, 2, typed)
    assert not confidently_at(geocode(client, auth, BODY), home["id"])

    # The attack: the dispatcher of the item's community resolves it to a real door.
    resolved = client.post(f"/v1/review/{first}/resolve", json={"address_id": home["id"]},
                           headers=auth["dispatcher"])  # fmt: skip
    assert resolved.status_code == 200, resolved.text

    # A map search box's key geocodes the bare text: not that door at a confidence that places anything.
    bare = geocode(client, auth, BODY)
    assert bare["address_id"] != home["id"] and not confidently_at(bare, home["id"]), bare
    assert bare["confidence"] < 1.0
    # Nor with another town's name.
    assert geocode(client, auth, world["other_town"] + BODY)["address_id"] != home["id"]
    # With its own town and community named, the community's alias answers.
    assert confidently_at(geocode(client, auth, typed), home["id"])

    # The list names who taught it, and in which community it applies.
    listed = client.get("/v1/aliases", params={"text": BODY}, headers=auth["dispatcher"])
    assert listed.status_code == 200, listed.text
    (alias,) = listed.json()["items"]
    assert (alias["taught_by"], alias["scope"], alias["state"]) == ("user:dispatcher", "community", "active")
    assert (alias["community_code"], alias["review_item_id"]) == (home["community_code"], first)

    # A second, independent resolution of the same text to the same door promotes it to the city.
    again = client.post(f"/v1/review/{second}/resolve", json={"address_id": home["id"]},
                        headers=auth["colleague"])  # fmt: skip
    assert again.status_code == 200, again.text
    trace = client.get(f"/v1/aliases/{alias['id']}", headers=auth["centre"]).json()
    assert trace["alias"]["scope"] == "city" and trace["promoted_by"] == "user:colleague"
    assert [(t["outcome"], t["taught_by"]) for t in trace["teachings"]] == [
        ("taught", "user:dispatcher"), ("confirmed", "user:colleague")
    ]  # fmt: skip
    assert confidently_at(geocode(client, auth, BODY), home["id"])

    # The command centre withdraws it: the very next geocode no longer uses it; the row and its history stay.
    withdrawn = client.post(f"/v1/aliases/{alias['id']}/withdraw", json={"reason": "火星路不存在"},
                            headers=auth["centre"])  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["withdrawn_by"] == "user:centre" and withdrawn.json()["alias"]["state"] == "withdrawn"
    assert geocode(client, auth, BODY)["address_id"] != home["id"]
    assert geocode(client, auth, typed)["address_id"] != home["id"]
    (row,) = [r for r in alias_rows(db) if r["id"] == alias["id"]]
    assert row["state"] == "withdrawn" and row["withdraw_reason"] == "火星路不存在"


def test_finding_3_a_placement_outside_the_resolvers_area_is_refused_and_teaches_nothing(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    typed = f"{world['town']}{world['community']}水星路88号"
    item = waiting_item(client, world, 3, typed)
    before = alias_rows(db)
    for place in ("away", "neighbour"):
        refused = client.post(f"/v1/review/{item}/resolve", json={"address_id": world[place]["id"]},
                              headers=auth["dispatcher"])  # fmt: skip
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", (place, refused.text)
        point = {"lon": world[place]["lon"], "lat": world[place]["lat"]}
        refused = client.post(f"/v1/review/{item}/resolve", json=point, headers=auth["dispatcher"])
        assert refused.status_code == 403, (place, refused.text)
    assert alias_rows(db) == before
    queue = client.get("/v1/review", headers=auth["dispatcher"]).json()["items"]
    assert item in [i["id"] for i in queue]  # still open
    assert geocode(client, auth, typed)["address_id"] != world["away"]["id"]


def test_finding_3_two_resolutions_to_different_doors_suspend_the_alias_until_the_centre_decides(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    home = world["home"]
    typed = f"{world['town']}{world['community']}木星路77号"
    first, second = waiting_item(client, world, 4, typed), waiting_item(client, world, 5, typed)
    assert client.post(f"/v1/review/{first}/resolve", json={"address_id": home["id"]},
                       headers=auth["dispatcher"]).status_code == 200  # fmt: skip
    assert confidently_at(geocode(client, auth, typed), home["id"])
    assert client.post(f"/v1/review/{second}/resolve", json={"address_id": world["second_door"]},
                       headers=auth["colleague"]).status_code == 200  # fmt: skip
    answer = geocode(client, auth, typed)
    assert answer["address_id"] not in (home["id"], world["second_door"]), answer
    (alias,) = client.get("/v1/aliases", params={"text": "木星路77号", "state": "suspended"},
                          headers=auth["centre"]).json()["items"]  # fmt: skip
    # A dispatcher may not decide; the command centre may, with a reason.
    refused = client.post(f"/v1/aliases/{alias['id']}/promote", json={"reason": "核实"}, headers=auth["dispatcher"])
    assert refused.status_code == 403, refused.text
    decided = client.post(f"/v1/aliases/{alias['id']}/promote", json={"reason": "现场核实为此门牌"},
                          headers=auth["centre"])  # fmt: skip
    assert decided.status_code == 200 and decided.json()["alias"]["state"] == "active", decided.text
    assert [t["outcome"] for t in decided.json()["teachings"]] == ["taught", "conflict"]
    assert confidently_at(geocode(client, auth, typed[len(world["town"]) + len(world["community"]) :]),
                          home["id"])  # fmt: skip
