"""Existing Nominatim clients (geopy here) point at gridgov and geocode and reverse-geocode unchanged."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from geopy.exc import GeocoderAuthenticationFailure
from geopy.geocoders import Nominatim
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import make_api_key
from tests.support.server import SECRET_KEY, make_app, served

pytestmark = pytest.mark.db


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def key(db: DatabaseSettings) -> str:
    engine = make_engine(db)
    with engine.begin() as conn:
        new = make_api_key(conn, SECRET_KEY, "nominatim client")
    engine.dispose()
    return new


@pytest.fixture(scope="module")
def port(db: DatabaseSettings, key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The app served by uvicorn on a free loopback port, in a background thread."""
    with served(make_app(db, tmp_path_factory.mktemp("state")), name="uvicorn-nominatim") as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def http(port: int, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def geolocator(port: int, key: str) -> Nominatim:
    """geopy's Nominatim pointed at gridgov, the key added to the headers it sends."""
    locator = Nominatim(user_agent="gridgov-test", domain=f"127.0.0.1:{port}", scheme="http", timeout=30)
    # geopy 2.5's constructor takes no headers; `headers` is the public attribute every request copies.
    locator.headers["X-API-Key"] = key
    return locator


@pytest.fixture(scope="module")
def door(db: DatabaseSettings) -> dict[str, Any]:
    """A road door with no other door or building on its point."""
    engine = make_engine(db)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT a.id, a.full_text, a.grid_code, a.community_code, a.town_code, "
                    "ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat FROM address a "
                    "WHERE a.kind = 'road_door' AND a.level = 'door' AND a.status = 'active' "
                    "AND NOT EXISTS (SELECT 1 FROM address b WHERE b.id <> a.id AND b.level <> 'room' "
                    "AND ST_DWithin(b.geom, a.geom, 0.00005)) "
                    "ORDER BY a.id DESC LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def test_geopy_geocodes_a_standard_address_to_its_point_and_grid(geolocator: Nominatim, door: dict[str, Any]) -> None:
    location = geolocator.geocode(door["full_text"])
    assert location is not None
    assert location.address == door["full_text"]
    assert distance_m(location.longitude, location.latitude, door["lon"], door["lat"]) < 1.0
    assert location.raw["grid_code"] == door["grid_code"]
    assert location.raw["community_code"] == door["community_code"]
    assert location.raw["town_code"] == door["town_code"]
    assert location.raw["place_id"] == door["id"]
    assert location.raw["match_level"] == "door" and location.raw["confidence"] >= 0.95


def test_geopy_reverse_geocodes_the_point_to_the_same_address(geolocator: Nominatim, door: dict[str, Any]) -> None:
    location = geolocator.reverse((door["lat"], door["lon"]))
    assert location is not None
    assert location.address == door["full_text"]
    assert location.raw["place_id"] == door["id"]
    assert location.raw["grid_code"] == door["grid_code"]
    assert location.raw["distance_m"] < 1.0
    assert distance_m(location.longitude, location.latitude, door["lon"], door["lat"]) < 1.0


def test_geopy_finds_nothing_for_an_address_in_another_city(geolocator: Nominatim) -> None:
    assert geolocator.geocode("青岛市东莞路1号") is None
    assert geolocator.geocode("青岛市东莞路1号", exactly_one=False) is None


def test_geopy_without_the_key_is_told_it_is_not_authenticated(port: int, door: dict[str, Any]) -> None:
    anonymous = Nominatim(user_agent="gridgov-test", domain=f"127.0.0.1:{port}", scheme="http", timeout=30)
    with pytest.raises(GeocoderAuthenticationFailure):
        anonymous.geocode(door["full_text"])


def test_search_json_has_nominatims_shape_with_our_fields(http: httpx.Client, door: dict[str, Any]) -> None:
    response = http.get("/search", params={"q": door["full_text"], "format": "json"})
    assert response.status_code == 200
    places = response.json()
    assert isinstance(places, list) and len(places) == 1
    place = places[0]
    for field in ("lat", "lon", "display_name", "class", "type", "licence"):
        assert isinstance(place[field], str), field
    assert "category" not in place and "place_rank" not in place
    assert place["display_name"] == door["full_text"]
    assert distance_m(float(place["lon"]), float(place["lat"]), door["lon"], door["lat"]) < 1.0
    bbox = place["boundingbox"]
    assert len(bbox) == 4 and all(isinstance(v, str) for v in bbox)
    south, north, west, east = map(float, bbox)
    assert south <= float(place["lat"]) <= north and west <= float(place["lon"]) <= east
    assert isinstance(place["place_id"], int) and isinstance(place["importance"], float)
    assert place["grid_code"] == door["grid_code"] and place["town_code"] == door["town_code"]
    # The default format is json, as in Nominatim.
    assert http.get("/search", params={"q": door["full_text"]}).json() == places


def test_search_jsonv2_names_category_and_place_rank(http: httpx.Client, door: dict[str, Any]) -> None:
    places = http.get("/search", params={"q": door["full_text"], "format": "jsonv2"}).json()
    assert len(places) == 1
    place = places[0]
    assert isinstance(place["category"], str) and "class" not in place
    assert isinstance(place["place_rank"], int) and place["place_rank"] == 30
    assert isinstance(place["lat"], str) and isinstance(place["lon"], str)
    assert place["grid_code"] == door["grid_code"]


def test_search_geojson_is_a_feature_collection(http: httpx.Client, door: dict[str, Any]) -> None:
    collection = http.get("/search", params={"q": door["full_text"], "format": "geojson"}).json()
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "Point"
    lon, lat = feature["geometry"]["coordinates"]
    assert distance_m(lon, lat, door["lon"], door["lat"]) < 1.0
    west, south, east, north = feature["bbox"]
    assert west <= lon <= east and south <= lat <= north
    assert feature["properties"]["display_name"] == door["full_text"]
    assert feature["properties"]["grid_code"] == door["grid_code"]
    empty = http.get("/search", params={"q": "青岛市东莞路1号", "format": "geojson"}).json()
    assert empty["type"] == "FeatureCollection" and empty["features"] == []


def test_reverse_formats(http: httpx.Client, door: dict[str, Any]) -> None:
    point = {"lat": door["lat"], "lon": door["lon"]}
    place = http.get("/reverse", params={**point, "format": "json"}).json()
    assert place["display_name"] == door["full_text"] and place["grid_code"] == door["grid_code"]
    assert isinstance(place["lat"], str) and len(place["boundingbox"]) == 4 and "class" in place
    v2 = http.get("/reverse", params={**point, "format": "jsonv2"}).json()
    assert v2["place_rank"] == 30 and "category" in v2
    collection = http.get("/reverse", params={**point, "format": "geojson"}).json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1
    outside = http.get("/reverse", params={"lat": 36.0671, "lon": 120.3826, "format": "json"})
    assert outside.status_code == 422 and outside.json()["error"] == "outside_city"
    assert http.get("/search", params={"q": door["full_text"], "format": "xml"}).status_code == 422


def test_the_key_also_works_as_a_key_query_parameter(port: int, key: str, door: dict[str, Any]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as anonymous:
        search = anonymous.get("/search", params={"q": door["full_text"], "format": "json", "key": key})
        assert search.status_code == 200 and search.json()[0]["grid_code"] == door["grid_code"]
        reverse = anonymous.get("/reverse", params={"lat": door["lat"], "lon": door["lon"], "key": key})
        assert reverse.status_code == 200 and reverse.json()["place_id"] == door["id"]
        assert anonymous.get("/search", params={"q": door["full_text"]}).status_code == 401
        assert anonymous.get("/search", params={"q": door["full_text"], "key": "gg_" + "0" * 32}).status_code == 401
