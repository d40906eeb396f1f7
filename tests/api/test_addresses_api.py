"""The command centre keeps the standard address library over HTTP; the running geocoder follows within seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import text

from address_library.parse import parse
from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids.placement import GridPlacement
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_another_town
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

PICKUP_S = 10.0  # the live geocoder must answer with a change within this time
FUZZED_OPERATIONS = {
    ("POST", "/v1/addresses"),
    ("POST", "/v1/addresses/{address_id}/retire"),
    ("POST", "/v1/addresses/{address_id}/move"),
    ("GET", "/v1/addresses/{address_id}"),
}


@pytest.fixture(scope="module")
def site(db: DatabaseSettings) -> dict[str, Any]:
    """A road door well inside its grid (so a few metres' move stays in the town), and a point of another town."""
    engine = make_engine(db)
    with engine.connect() as conn:
        placement = GridPlacement.load(conn)
        rows = conn.execute(
            text(
                "SELECT id, full_text, town_code, road_name, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM address "
                "WHERE level = 'door' AND kind = 'road_door' AND sub_no IS NULL ORDER BY id LIMIT 400"
            )
        ).all()
        placed = placement.place([r.lon for r in rows], [r.lat for r in rows])
        door = next(
            r
            for r, distance_m in zip(rows, placed.boundary_distance_m, strict=True)
            if distance_m > 80
            and r.full_text == f"{parse(r.full_text).town}{r.road_name}{parse(r.full_text).door_no}号"
        )
        spare = next(r for r in rows if r.id != door.id and r.town_code == door.town_code)
        other = a_door_in_another_town(conn, door.town_code)
    engine.dispose()
    return {
        "id": door.id,
        "text": door.full_text,
        "prefix": f"{parse(door.full_text).town}{door.road_name}",
        "town_code": door.town_code,
        "lon": door.lon,
        "lat": door.lat,
        "spare_id": spare.id,
        "spare_text": spare.full_text,
        "other_town": other.town_code,
        "other_lon": other.lon,
        "other_lat": other.lat,
    }


@pytest.fixture(scope="module", autouse=True)
def keys(db: DatabaseSettings, site: dict[str, Any]) -> dict[str, str]:
    """Accounts of every kind that matters here, and an API key (role api_client)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(
            conn,
            {
                "keeper": ("command_centre", None),
                "root": ("admin", None),
                "leader": ("town_leader", site["town_code"]),
                "far_leader": ("town_leader", site["other_town"]),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "client")
    engine.dispose()
    return {"api_key": key}


@pytest.fixture(scope="module")
def keeper(client: TestClient) -> dict[str, str]:
    return bearer(client, "keeper")


@pytest.fixture(scope="module")
def reader(keys: dict[str, str]) -> dict[str, str]:
    return api_key_headers(keys["api_key"])


def until(check: Callable[[], Any], timeout_s: float = PICKUP_S) -> Any:
    """Poll until `check` returns something truthy; fail after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not seen within {timeout_s} s")
        time.sleep(0.2)


def geocode(client: TestClient, reader: dict[str, str], q: str) -> dict[str, Any]:
    response = client.get("/v1/geocode", params={"q": q}, headers=reader)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def new_door(client: TestClient, keeper: dict[str, str], site: dict[str, Any], number: int) -> dict[str, Any]:
    body = {"full_text": f"{site['prefix']}{number}号", "lon": site["lon"], "lat": site["lat"], "level": "door"}
    response = client.post("/v1/addresses", json=body, headers=keeper)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_an_added_address_is_geocoded_within_seconds_without_a_restart(
    client: TestClient, keeper: dict[str, str], reader: dict[str, str], site: dict[str, Any]
) -> None:
    q = f"东莞市{site['prefix']}8001号"
    assert geocode(client, reader, q)["level"] != "door"  # the geocoder is built and does not know it yet
    started = time.monotonic()
    added = new_door(client, keeper, site, 8001)
    assert added["changed_ids"] == [added["address"]["id"]]
    assert added["address"]["status"] == "active" and added["address"]["grid_code"]
    assert [h["action"] for h in added["address"]["history"]] == ["add"]
    assert added["address"]["history"][0]["changed_by"] == "user:keeper"
    answer = until(lambda: (a := geocode(client, reader, q))["address_id"] == added["address"]["id"] and a)
    assert (answer["status"], answer["level"]) == ("matched", "door")
    assert time.monotonic() - started < PICKUP_S


def test_a_moved_address_is_found_at_its_new_point(
    client: TestClient, keeper: dict[str, str], reader: dict[str, str], site: dict[str, Any]
) -> None:
    added = new_door(client, keeper, site, 8002)["address"]
    lon, lat = site["lon"] + 0.0004, site["lat"] - 0.0003
    response = client.post(
        f"/v1/addresses/{added['id']}/move", json={"lon": lon, "lat": lat, "note": "实地核查"}, headers=keeper
    )
    assert response.status_code == 200, response.text
    moved = response.json()["address"]
    assert (moved["lon"], moved["lat"]) == (pytest.approx(lon), pytest.approx(lat))
    move = moved["history"][-1]
    assert (move["action"], move["note"]) == ("move", "实地核查")
    assert (move["old_lon"], move["new_lon"]) == (pytest.approx(site["lon"]), pytest.approx(lon))

    def reversed_to_it() -> bool:
        body = client.get("/v1/reverse", params={"lon": lon, "lat": lat}, headers=reader).json()
        return bool(body["address_id"] == added["id"] and body["distance_m"] < 1.0)

    until(reversed_to_it)
    answer = geocode(client, reader, added["full_text"])
    assert answer["address_id"] == added["id"]
    assert (answer["lon"], answer["lat"]) == (pytest.approx(lon, abs=1e-6), pytest.approx(lat, abs=1e-6))
    assert answer["grid_code"] == moved["grid_code"]


def test_a_retired_address_is_no_longer_answered_at_door_level(
    client: TestClient, keeper: dict[str, str], reader: dict[str, str], site: dict[str, Any]
) -> None:
    before = geocode(client, reader, site["spare_text"])
    assert (before["address_id"], before["level"]) == (site["spare_id"], "door")
    response = client.post(f"/v1/addresses/{site['spare_id']}/retire", json={"note": "拆除"}, headers=keeper)
    assert response.status_code == 200, response.text
    assert response.json()["address"]["status"] == "retired"
    answer = until(lambda: (a := geocode(client, reader, site["spare_text"]))["address_id"] != site["spare_id"] and a)
    assert answer["level"] != "door" or answer["standard_address"] != site["spare_text"]
    # Retired, not deleted: its history can still be read (by staff: a geocoding key reads no address records).
    kept = client.get(f"/v1/addresses/{site['spare_id']}", headers=keeper).json()
    assert kept["status"] == "retired" and [h["action"] for h in kept["history"]] == ["retire"]
    assert kept["history"][0]["changed_by"] == "user:keeper" and kept["history"][0]["note"] == "拆除"
    again = client.post(f"/v1/addresses/{site['spare_id']}/retire", json={}, headers=keeper)
    assert again.status_code == 409 and again.json()["error"] == "address_retired"


def test_only_the_admin_and_the_command_centre_may_change_the_library(
    client: TestClient, db: DatabaseSettings, reader: dict[str, str], site: dict[str, Any]
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), max(updated_at) FROM address")).one()
    leader = bearer(client, "leader")
    add = {"full_text": f"{site['prefix']}8004号", "lon": site["lon"], "lat": site["lat"], "level": "door"}
    for headers in (leader, reader):
        for path, body in (
            ("/v1/addresses", add),
            (f"/v1/addresses/{site['id']}/retire", {}),
            (f"/v1/addresses/{site['id']}/move", {"lon": site["lon"], "lat": site["lat"]}),
        ):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"] == "forbidden"
    assert client.post("/v1/addresses", json=add).status_code == 401
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), max(updated_at) FROM address")).one() == before
    engine.dispose()
    root = bearer(client, "root")
    assert client.post("/v1/addresses", json=add, headers=root).status_code == 201


def test_reading_an_address_is_confined_to_the_readers_area(
    client: TestClient, reader: dict[str, str], site: dict[str, Any]
) -> None:
    own = client.get(f"/v1/addresses/{site['id']}", headers=bearer(client, "leader"))
    assert own.status_code == 200 and own.json()["full_text"] == site["text"] and own.json()["history"] == []
    far = client.get(f"/v1/addresses/{site['id']}", headers=bearer(client, "far_leader"))
    assert far.status_code == 403 and far.json()["error"] == "forbidden"
    leader = bearer(client, "leader")
    assert client.get("/v1/addresses/999999999", headers=leader).status_code == 404
    assert client.get(f"/v1/addresses/{2**63}", headers=leader).status_code == 422
    # An API client (the geocoding key) reads no address records at all (issue 17, finding 9).
    assert client.get(f"/v1/addresses/{site['id']}", headers=reader).status_code == 403


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"full_text": "火星镇幸福路1号"}, "unknown_town"),
        ({"lon": 116.39, "lat": 39.91}, "outside_city"),
        ({"full_text": "{text}"}, "duplicate_text"),
        ({"level": "building", "full_text": "{prefix}8100号1栋", "parent_id": 999999999}, "unknown_parent"),
        ({"level": "room", "full_text": "{prefix}8100号1栋1室", "parent_id": "{id}"}, "parent_level"),
        ({"lon": "{other_lon}", "lat": "{other_lat}"}, "outside_town"),
        # A NUL or other C0 control character never reaches the library (the input guard refuses the JSON body);
        # a non-character still does, and is the library's bad_text.
        ({"full_text": "{prefix}8100号\ufffe"}, "bad_text"),
    ],
)
def test_bad_new_addresses_are_refused_with_a_clear_reason(
    client: TestClient, keeper: dict[str, str], site: dict[str, Any], change: dict[str, Any], reason: str
) -> None:
    body: dict[str, Any] = {"full_text": "{prefix}8100号", "lon": site["lon"], "lat": site["lat"], "level": "door"}
    body.update(change)
    body = {k: (v.format(**site) if isinstance(v, str) else v) for k, v in body.items()}
    for key in ("parent_id", "lon", "lat"):
        if isinstance(body.get(key), str):
            body[key] = float(body[key]) if key != "parent_id" else int(body[key])
    response = client.post("/v1/addresses", json=body, headers=keeper)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "address_rejected" and reason in answer["detail"], answer


def test_malformed_requests_are_refused_before_reaching_the_library(
    client: TestClient, keeper: dict[str, str], site: dict[str, Any]
) -> None:
    base = {"full_text": f"{site['prefix']}8200号", "lon": site["lon"], "lat": site["lat"], "level": "door"}
    for bad in (
        base | {"lon": "东经113度"},
        base | {"lat": None},
        base | {"level": "city"},
        base | {"full_text": ""},
        base | {"full_text": "号" * 501},
        base | {"note": "a\u0000b"},
        {"full_text": base["full_text"]},
    ):
        response = client.post("/v1/addresses", json=bad, headers=keeper)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"] == "invalid_request"
    nan = client.post(
        "/v1/addresses", content=b'{"full_text": "x", "lon": NaN, "lat": 23, "level": "door"}', headers=keeper
    )
    assert nan.status_code == 422
    far = client.post(f"/v1/addresses/{site['id']}/move", json={"lon": 116.39, "lat": 39.91}, headers=keeper)
    assert far.status_code == 422 and "outside_city" in far.json()["detail"]
    assert client.post("/v1/addresses/999999999/move", json={"lon": 1, "lat": 1}, headers=keeper).status_code == 404


# The fuzzer runs last: it may retire or move addresses of this module's database.


@pytest.fixture(scope="module")
def api_schema(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    app = make_app(db, tmp_path_factory.mktemp("fuzz-state"))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/v1/addresses")


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_the_maintenance_api_never_answers_a_server_error(
    api_schema: schemathesis.BaseSchema, client: TestClient, mode: schemathesis.GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == FUZZED_OPERATIONS
    headers = bearer(client, "keeper")
    for operation in operations:
        assert operation.definition.raw["summary"]

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])
            if 400 <= response.status_code < 500:
                assert set(response.json()) == {"error", "detail"}, (case.path, case.body, response.text)

        fuzz()
