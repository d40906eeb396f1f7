"""An API client geocodes typed addresses, reverse-geocodes points and autocompletes, with its key, over /v1."""

from __future__ import annotations

import math
from typing import Any

import opencc
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.coords import gcj02_to_wgs84
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, make_api_key
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

QINGDAO = {"lon": 120.3826, "lat": 36.0671}
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
GEOCODE_FIELDS = {
    "query",
    "status",
    "level",
    "confidence",
    "address_id",
    "standard_address",
    "lon",
    "lat",
    "crs",
    "grid_code",
    "community_code",
    "town_code",
    "near_boundary",
    "reason",
    "candidates",
}


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for a few metres or a few hundred)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def keys(db: DatabaseSettings) -> dict[str, str]:
    """An exempt key for the stories and a key allowed 5 requests a minute for the throttling one."""
    engine = make_engine(db)
    with engine.begin() as conn:
        free = make_api_key(conn, SECRET_KEY, "geocode tests")
        slow = make_api_key(conn, SECRET_KEY, "slow client", rate_limited=True, rate_per_minute=5)
    engine.dispose()
    return {"free": free, "slow": slow}


@pytest.fixture(scope="module")
def auth(keys: dict[str, str]) -> dict[str, str]:
    return api_key_headers(keys["free"])


@pytest.fixture(scope="module")
def door(db: DatabaseSettings) -> dict[str, Any]:
    """A road door whose name changes in traditional characters and with no other door or building on its point."""
    to_traditional = opencc.OpenCC("s2t").convert
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.id, a.full_text, a.grid_code, a.town_code, t.name AS town, "
                "ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat FROM address a JOIN town t ON t.code = a.town_code "
                "WHERE a.kind = 'road_door' AND a.level = 'door' AND a.sub_no IS NULL AND a.status = 'active' "
                "AND NOT EXISTS (SELECT 1 FROM address b WHERE b.id <> a.id AND b.level <> 'room' "
                "AND ST_DWithin(b.geom, a.geom, 0.00005)) "
                "ORDER BY a.id LIMIT 200"
            )
        ).mappings()
        for row in rows:
            if to_traditional(row["full_text"]) != row["full_text"] and any(c.isdigit() for c in row["full_text"]):
                found = dict(row)
                break
        else:
            pytest.fail("the test city has no road door with a traditional form")
    engine.dispose()
    found["traditional"] = to_traditional(found["full_text"])
    return found


def test_a_standard_address_comes_back_at_door_level_in_its_grid(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    response = client.get("/v1/geocode", params={"q": door["full_text"]}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == GEOCODE_FIELDS
    assert body["query"] == door["full_text"] and body["crs"] == "wgs84"
    assert body["status"] == "matched"
    assert body["level"] in ("door", "room")
    assert body["confidence"] >= 0.95
    assert body["address_id"] == door["id"]
    assert body["standard_address"] == door["full_text"]
    assert body["grid_code"] == door["grid_code"]
    assert body["town_code"] == door["town_code"]
    assert body["community_code"] == door["grid_code"][:12]
    assert distance_m(body["lon"], body["lat"], door["lon"], door["lat"]) < 1.0
    # A dispatcher sees whether the point is close to a grid boundary.
    assert isinstance(body["near_boundary"], bool)


def test_traditional_full_width_text_with_the_city_prefix_finds_the_same_door(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    typed = "東莞市" + door["traditional"].translate(FULL_WIDTH_DIGITS)
    assert typed != door["full_text"]
    body = client.get("/v1/geocode", params={"q": typed}, headers=auth).json()
    assert body["query"] == typed
    assert (body["status"], body["address_id"], body["grid_code"]) == ("matched", door["id"], door["grid_code"])
    assert body["confidence"] >= 0.9


def test_gcj02_output_is_shifted_a_few_hundred_metres_and_converts_back_exactly(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    wgs = client.get("/v1/geocode", params={"q": door["full_text"]}, headers=auth).json()
    gcj = client.get("/v1/geocode", params={"q": door["full_text"], "crs": "gcj02"}, headers=auth).json()
    assert gcj["crs"] == "gcj02" and gcj["address_id"] == wgs["address_id"]
    assert 100 < distance_m(gcj["lon"], gcj["lat"], wgs["lon"], wgs["lat"]) < 1000
    lon, lat = gcj02_to_wgs84(gcj["lon"], gcj["lat"])
    assert distance_m(lon, lat, door["lon"], door["lat"]) < 1.0


def test_an_address_in_another_city_is_not_found(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/v1/geocode", params={"q": "青岛市东莞路1号"}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "not_found"
    assert body["address_id"] is None and body["lon"] is None and body["grid_code"] is None


def test_near_boundary_follows_the_distance_the_client_asks_for(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    here = client.get("/v1/reverse", params={"lon": door["lon"], "lat": door["lat"]}, headers=auth).json()
    to_boundary_m = here["boundary_distance_m"]
    assert to_boundary_m is not None and to_boundary_m >= 0
    wide = min(500.0, math.ceil(to_boundary_m) + 1.0)
    flagged = client.get("/v1/geocode", params={"q": door["full_text"], "near_boundary_m": wide}, headers=auth).json()
    assert flagged["near_boundary"] is (to_boundary_m <= wide)
    if to_boundary_m > 2:
        narrow = client.get(
            "/v1/geocode", params={"q": door["full_text"], "near_boundary_m": to_boundary_m - 2}, headers=auth
        ).json()
        assert narrow["near_boundary"] is False


def test_reverse_on_an_address_point_returns_that_address_and_its_grid(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    response = client.get("/v1/reverse", params={"lon": door["lon"], "lat": door["lat"]}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address_id"] == door["id"]
    assert body["standard_address"] == door["full_text"]
    assert body["distance_m"] < 1.0
    assert body["grid_code"] == door["grid_code"]
    assert body["town_code"] == door["town_code"]
    assert isinstance(body["near_boundary"], bool)


def test_reverse_takes_a_gcj02_point(client: TestClient, auth: dict[str, str], door: dict[str, Any]) -> None:
    gcj = client.get("/v1/geocode", params={"q": door["full_text"], "crs": "gcj02"}, headers=auth).json()
    body = client.get("/v1/reverse", params={"lon": gcj["lon"], "lat": gcj["lat"], "crs": "gcj02"}, headers=auth).json()
    assert body["address_id"] == door["id"] and body["distance_m"] < 1.0
    assert body["grid_code"] == door["grid_code"]


def test_reverse_outside_the_city_or_without_numbers_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    outside = client.get("/v1/reverse", params=QINGDAO, headers=auth)
    assert outside.status_code == 422
    assert outside.json()["error"] == "outside_city"
    for bad in (
        {"lon": "东经113度", "lat": 23.02},
        {"lon": "nan", "lat": 23.02},
        {"lon": 113.75},
        {"lon": 200, "lat": 23},
    ):
        response = client.get("/v1/reverse", params=bad, headers=auth)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"] in ("invalid_request", "outside_city")


def test_autocomplete_offers_at_most_ten_addresses_starting_as_typed(
    client: TestClient, auth: dict[str, str], door: dict[str, Any]
) -> None:
    prefix = door["full_text"].removesuffix("号")
    body_prefix = prefix[len(door["town"]) :]
    for typed in (prefix, body_prefix):
        response = client.get("/v1/autocomplete", params={"q": typed}, headers=auth)
        assert response.status_code == 200, response.text
        suggestions = response.json()
        assert 1 <= len(suggestions) <= 10
        for s in suggestions:
            after_town = s["standard_address"][len(door["town"]) :]
            assert s["standard_address"].startswith(typed) or after_town.startswith(typed), (typed, s)
        assert door["id"] in [s["address_id"] for s in suggestions], (typed, suggestions)
    short = client.get("/v1/autocomplete", params={"q": door["town"], "limit": 3}, headers=auth).json()
    assert len(short) == 3


def test_every_endpoint_refuses_a_request_without_a_credential(client: TestClient, door: dict[str, Any]) -> None:
    point = {"lon": door["lon"], "lat": door["lat"]}
    for path, params in (
        ("/v1/geocode", {"q": door["full_text"]}),
        ("/v1/reverse", point),
        ("/v1/autocomplete", {"q": door["town"]}),
        ("/search", {"q": door["full_text"], "format": "json"}),
        ("/reverse", {**point, "format": "json"}),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "unauthorized"
        assert client.get(path, params=params, headers={"X-API-Key": "gg_" + "0" * 32}).status_code == 401


def test_a_rate_limited_key_is_eventually_throttled(
    client: TestClient, keys: dict[str, str], door: dict[str, Any]
) -> None:
    slow = {"X-API-Key": keys["slow"]}
    statuses = [client.get("/v1/geocode", params={"q": door["full_text"]}, headers=slow).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses, statuses
    throttled = client.get("/v1/autocomplete", params={"q": door["town"]}, headers=slow)
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "too_many_requests"
    assert int(throttled.headers["retry-after"]) >= 1


# ---------------------------------------------------------------- bad input


def test_empty_and_over_long_queries_are_refused(client: TestClient, auth: dict[str, str]) -> None:
    for q in ("", "长" * 501):
        response = client.get("/v1/geocode", params={"q": q}, headers=auth)
        assert response.status_code == 422, (len(q), response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_address")
    blank = client.get("/v1/geocode", params={"q": "   "}, headers=auth)
    assert blank.status_code == 422 and blank.json()["error"] in ("invalid_request", "invalid_address")
    assert client.get("/v1/geocode", headers=auth).status_code == 422
    # 500 characters is still an address (of sorts), answered, not refused.
    assert client.get("/v1/geocode", params={"q": "长" * 500}, headers=auth).status_code == 200


@pytest.mark.parametrize(
    "q", ["长安镇\x00振隆路1号", "长安镇振隆路\x071号", "\x07", "长安镇\x1b[31m振隆路", "\ufffd\ufffd号"]
)
def test_control_and_binary_characters_are_refused(client: TestClient, auth: dict[str, str], q: str) -> None:
    for path in ("/v1/geocode", "/search"):
        response = client.get(path, params={"q": q}, headers=auth)
        assert response.status_code == 422, (path, q, response.text)
        assert response.json()["error"] in ("invalid_address", "invalid_request")


@pytest.mark.parametrize(
    "q",
    [
        "1' OR '1'='1; DROP TABLE address;--",
        "<script>alert(1)</script>",
        "'; SELECT pg_sleep(5); --",
        "{{7*7}}${7*7}",
        "../../../../etc/passwd",
    ],
)
def test_sql_and_script_looking_text_is_simply_not_found(client: TestClient, auth: dict[str, str], q: str) -> None:
    response = client.get("/v1/geocode", params={"q": q}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "not_found"
    assert body["level"] not in ("room", "building", "door") and body["address_id"] is None
    assert client.get("/search", params={"q": q}, headers=auth).json() == []
    assert client.get("/v1/autocomplete", params={"q": q}, headers=auth).status_code == 200
