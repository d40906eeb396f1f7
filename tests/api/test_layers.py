"""A map client draws towns, communities and grids from /v1/layers, and opens one grid's details."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import box, shape
from sqlalchemy import text

from gis.coords import gcj02_to_wgs84, wgs84_to_gcj02
from gis.database import make_engine
from gis.settings import DatabaseSettings
from maps.layers import degrees_per_pixel
from maps.page import page_config
from maps.settings import MapSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

LIMIT_BYTES = 1_000_000
TOWN_PROPERTIES = {"code", "name", "population", "area_km2"}
COMMUNITY_PROPERTIES = {"code", "name", "town_code", "kind", "population"}
GRID_PROPERTIES = {"code", "workload", "worker_count"}


@pytest.fixture(scope="module")
def api_key(db: DatabaseSettings) -> dict[str, str]:
    """The X-API-Key header of a map client's key (exempt from the rate limit: the tests pan a lot)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        key = make_api_key(conn, SECRET_KEY, "map tests", permissions=["gis"])
    engine.dispose()
    return api_key_headers(key)


@pytest.fixture(scope="module")
def client(
    db: DatabaseSettings, api_key: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    app = make_app(db, tmp_path_factory.mktemp("state"))
    with TestClient(app, headers=api_key) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def city(db: DatabaseSettings) -> dict[str, Any]:
    """What the database holds, to compare the layers with."""
    engine = make_engine(db)
    with engine.connect() as conn:
        facts = {
            "towns": conn.execute(text("SELECT count(*) FROM town")).scalar_one(),
            "communities": conn.execute(text("SELECT count(*) FROM community")).scalar_one(),
            "grid_codes": set(
                conn.execute(
                    text(
                        "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id WHERE v.status = 'active'"
                    )
                ).scalars()
            ),
            "extent": conn.execute(
                text(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM town) s"
                )
            ).one(),
            "busiest_grid": conn.execute(
                text(
                    "SELECT g.code, c.name, t.name, g.address_count, g.entity_count, g.worker_count, g.population "
                    "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                    "JOIN community c ON c.code = g.community_code JOIN town t ON t.code = g.town_code "
                    "ORDER BY g.address_count DESC, g.code LIMIT 1"
                )
            ).one(),
        }
    engine.dispose()
    return facts


def _feature_collection(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/geo+json")
    assert len(response.content) < LIMIT_BYTES
    collection: dict[str, Any] = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        geometry = shape(feature["geometry"])
        assert geometry.geom_type in ("Polygon", "MultiPolygon") and not geometry.is_empty
    return collection


def _bbox_text(west: float, south: float, east: float, north: float) -> str:
    return f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}"


def test_the_service_says_it_is_healthy(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_towns_layer_holds_every_town_with_its_figures(client: TestClient, city: dict[str, Any]) -> None:
    towns = _feature_collection(client.get("/v1/towns", params={"zoom": 10}))
    assert len(towns["features"]) == city["towns"] == 33
    for feature in towns["features"]:
        props = feature["properties"]
        assert set(props) == TOWN_PROPERTIES
        assert props["population"] > 0 and props["area_km2"] > 0
    assert "东城街道" in {f["properties"]["name"] for f in towns["features"]}


def test_the_communities_layer_holds_every_community(client: TestClient, city: dict[str, Any]) -> None:
    communities = _feature_collection(client.get("/v1/communities", params={"zoom": 11}))
    assert len(communities["features"]) == city["communities"]
    for feature in communities["features"]:
        assert set(feature["properties"]) == COMMUNITY_PROPERTIES
        assert feature["properties"]["code"].startswith(feature["properties"]["town_code"][:9])


def test_panning_over_the_city_at_street_zoom_shows_exactly_the_active_grids(
    client: TestClient, city: dict[str, Any]
) -> None:
    west, south, east, north = city["extent"]
    steps = 4
    seen: set[str] = set()
    for i in range(steps):
        for j in range(steps):
            tile = _bbox_text(
                west + (east - west) * i / steps,
                south + (north - south) * j / steps,
                west + (east - west) * (i + 1) / steps,
                south + (north - south) * (j + 1) / steps,
            )
            grids = _feature_collection(client.get("/v1/grids", params={"bbox": tile, "zoom": 14}))
            for feature in grids["features"]:
                props = feature["properties"]
                assert set(props) == GRID_PROPERTIES
                assert len(props["code"]) == 15 and props["code"].isdigit()
                assert props["workload"] >= 0 and props["worker_count"] >= 1
                seen.add(props["code"])
    assert seen == city["grid_codes"]
    assert len(seen) > 2_000


def test_a_bbox_narrows_every_layer_to_what_it_touches(client: TestClient, city: dict[str, Any]) -> None:
    # About two km square around the centre of 东城街道's grids.
    lon, lat = 113.77, 23.02
    area = box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)
    bbox = _bbox_text(*area.bounds)
    towns = _feature_collection(client.get("/v1/towns", params={"bbox": bbox, "zoom": 15}))
    grids = _feature_collection(client.get("/v1/grids", params={"bbox": bbox, "zoom": 15}))
    assert 1 <= len(towns["features"]) < city["towns"]
    assert 1 <= len(grids["features"]) < len(city["grid_codes"]) / 10
    # Simplification moves vertices by under a pixel, so allow a pixel of slack around the box.
    slack = area.buffer(degrees_per_pixel(15))
    for feature in grids["features"] + towns["features"]:
        assert shape(feature["geometry"]).intersects(slack)


@pytest.mark.parametrize("zoom", range(8, 19))
def test_no_layer_answer_exceeds_one_megabyte_at_any_zoom(client: TestClient, city: dict[str, Any], zoom: int) -> None:
    whole_city = _bbox_text(*city["extent"])
    for layer in ("towns", "communities"):
        response = client.get(f"/v1/{layer}", params={"bbox": whole_city, "zoom": zoom})
        _feature_collection(response)
    # ~2,900 grids' properties alone are about 1 MB: the whole city either fits or is refused, never sent.
    response = client.get("/v1/grids", params={"bbox": whole_city, "zoom": zoom})
    assert len(response.content) < LIMIT_BYTES
    if response.status_code == 413:
        body = response.json()
        assert body["error"] == "layer_too_large" and "narrow the bbox or zoom in" in body["detail"]
    else:
        _feature_collection(response)
    # A 1280x800 screen at this zoom, in the middle of the city, always gets its grids.
    if zoom >= 12:
        lon, lat = 113.77, 23.02
        half_w, half_h = 640 * degrees_per_pixel(zoom), 400 * degrees_per_pixel(zoom)
        screen = _bbox_text(lon - half_w, lat - half_h, lon + half_w, lat + half_h)
        grids = _feature_collection(client.get("/v1/grids", params={"bbox": screen, "zoom": zoom}))
        assert grids["features"]


def _overlap_share(collection: dict[str, Any]) -> float:
    polygons = [shapely.make_valid(shape(f["geometry"])) for f in collection["features"]]
    total = sum(p.area for p in polygons)
    return float((total - shapely.union_all(polygons).area) / total)


@pytest.mark.parametrize("layer", ["towns", "communities"])
def test_simplified_neighbours_still_tile(client: TestClient, layer: str) -> None:
    # Vertices are snapped to a shared pixel grid, so neighbours keep their common edges; per-polygon
    # Douglas-Peucker would open gaps and overlaps of up to a pixel along every boundary.
    stored = _overlap_share(_feature_collection(client.get(f"/v1/{layer}")))
    simplified = _overlap_share(_feature_collection(client.get(f"/v1/{layer}", params={"zoom": 10})))
    assert simplified < stored + 0.001


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bbox": "113.7,22.9,113.8"}, "bbox"),
        ({"bbox": "east,south,west,north"}, "bbox"),
        ({"bbox": "113.8,22.9,113.7,23.0"}, "bbox"),
        ({"bbox": "113.7,22.9,113.8,95"}, "bbox"),
        ({"zoom": 21}, "zoom"),
        ({"zoom": -1}, "zoom"),
        ({"zoom": "street"}, "zoom"),
    ],
)
def test_malformed_requests_are_refused_with_the_error_body(
    client: TestClient, params: dict[str, Any], needle: str
) -> None:
    response = client.get("/v1/grids", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request" and needle in body["detail"]


def test_a_layer_over_the_configured_limit_is_refused_not_truncated(
    db: DatabaseSettings, api_key: dict[str, str], tmp_path: Path
) -> None:
    app = make_app(db, tmp_path, max_layer_bytes=50_000)
    with TestClient(app, headers=api_key) as small:
        response = small.get("/v1/communities", params={"zoom": 8})
        assert response.status_code == 413
        assert response.json()["error"] == "layer_too_large"
        assert "0.05 MB" in response.json()["detail"]
        assert small.get("/v1/towns", params={"zoom": 8}).status_code == 200


@pytest.fixture(scope="module")
def leader_town(db: DatabaseSettings) -> dict[str, Any]:
    """A town leader's account (`map-leader`) and what their town holds, to compare their layers with."""
    engine = make_engine(db)
    with engine.begin() as conn:
        town = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1")).scalar_one()
        make_users(conn, {"map-leader": ("town_leader", town)})
        facts = {
            "code": town,
            "communities": set(
                conn.execute(text("SELECT code FROM community WHERE town_code = :t"), {"t": town}).scalars()
            ),
            "grids": set(
                conn.execute(
                    text(
                        "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                        "WHERE g.town_code = :t"
                    ),
                    {"t": town},
                ).scalars()
            ),
        }
    engine.dispose()
    return facts


def _codes(collection: dict[str, Any]) -> set[str]:
    return {f["properties"]["code"] for f in collection["features"]}


def test_a_town_leaders_layers_hold_only_their_town(
    client: TestClient, leader_town: dict[str, Any], city: dict[str, Any]
) -> None:
    town = leader_town["code"]
    with TestClient(client.app) as plain:
        leader = bearer(plain, "map-leader")
        towns = _feature_collection(plain.get("/v1/towns", params={"zoom": 10}, headers=leader))
        communities = _feature_collection(plain.get("/v1/communities", params={"zoom": 11}, headers=leader))
        grids = _feature_collection(plain.get("/v1/grids", params={"zoom": 12}, headers=leader))
    assert _codes(towns) == {town}
    assert _codes(communities) == leader_town["communities"] and leader_town["communities"]
    assert {f["properties"]["town_code"] for f in communities["features"]} == {town}
    assert _codes(grids) == leader_town["grids"] and leader_town["grids"]
    assert len(grids["features"]) < len(city["grid_codes"])


@pytest.mark.parametrize("layer", ["towns", "communities", "grids"])
def test_the_size_limit_applies_to_the_leaders_town_not_the_whole_city(
    db: DatabaseSettings, api_key: dict[str, str], leader_town: dict[str, Any], tmp_path: Path, layer: str
) -> None:
    # Full detail (no zoom) is one attempt, with no coarser retry: its size is the answer's size.
    with TestClient(make_app(db, tmp_path / "roomy", max_layer_bytes=100_000_000)) as roomy:
        leader = bearer(roomy, "map-leader")
        whole_city = roomy.get(f"/v1/{layer}", headers=api_key)
        own_town = roomy.get(f"/v1/{layer}", headers=leader)
    assert whole_city.status_code == own_town.status_code == 200
    assert len(own_town.content) < len(whole_city.content)
    limit = (len(own_town.content) + len(whole_city.content)) // 2
    with TestClient(make_app(db, tmp_path / "tight", max_layer_bytes=limit)) as tight:
        leader = bearer(tight, "map-leader")
        refused = tight.get(f"/v1/{layer}", headers=api_key)
        answered = tight.get(f"/v1/{layer}", headers=leader)
    assert refused.status_code == 413 and refused.json()["error"] == "layer_too_large"
    assert answered.status_code == 200 and answered.content == own_town.content
    assert {f["properties"]["code"] for f in json.loads(answered.content)["features"]} <= (
        {leader_town["code"]} | leader_town["communities"] | leader_town["grids"]
    )


@pytest.fixture(scope="module")
def centre(db: DatabaseSettings, client: TestClient) -> dict[str, str]:
    """The command centre's credential: a grid's details are staff's (an API client reads the outlines only)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"map-centre": ("command_centre", None)})
    engine.dispose()
    # The module's client sends its GIS key on every request: blank it so that the centre's token is the credential.
    return {**bearer(client, "map-centre"), "X-API-Key": ""}


def test_a_grid_opens_with_its_community_town_and_counts(
    client: TestClient, city: dict[str, Any], centre: dict[str, str]
) -> None:
    code, community_name, town_name, addresses, entities, workers, population = city["busiest_grid"]
    assert client.get(f"/v1/grids/{code}").status_code == 403  # the module's GIS key: outlines, not details
    response = client.get(f"/v1/grids/{code}", headers=centre)
    assert response.status_code == 200
    details = response.json()
    assert details["code"] == code
    assert details["community_name"] == community_name and details["town_name"] == town_name
    assert (details["address_count"], details["entity_count"], details["worker_count"], details["population"]) == (
        addresses,
        entities,
        workers,
        population,
    )
    assert addresses > 0
    assert details["min_lon"] <= details["lon"] <= details["max_lon"]
    assert details["min_lat"] <= details["lat"] <= details["max_lat"]


def test_an_unknown_grid_is_404_and_a_malformed_code_is_422(client: TestClient, centre: dict[str, str]) -> None:
    missing = client.get("/v1/grids/441900999999999", headers=centre)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found" and "441900999999999" in missing.json()["detail"]
    malformed = client.get("/v1/grids/12ab", headers=centre)
    assert malformed.status_code == 422 and malformed.json()["error"] == "invalid_request"
    assert client.get("/v1/no-such-thing").json() == {"error": "not_found", "detail": "Not Found"}


def test_failures_never_leak_internals(tmp_path: Path) -> None:
    unreachable = DatabaseSettings(database_url="postgresql://mapuser:hunter2secret@127.0.0.1:1/nowhere")
    app: FastAPI = make_app(unreachable, tmp_path)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: /etc/shadow")

    with TestClient(app, raise_server_exceptions=False) as broken:
        # Checking the key needs the database, so even the credential check answers 503, not 500.
        down = broken.get("/v1/towns", headers={"X-API-Key": "gg_" + "k" * 32})
        assert down.status_code == 503
        assert down.json()["error"] == "database_unavailable"
        assert "hunter2secret" not in down.text and "127.0.0.1" not in down.text
        crash = broken.get("/boom")
        assert crash.status_code == 500
        assert crash.json() == {"error": "internal_error", "detail": "internal server error"}


def test_layers_can_be_drawn_on_an_amap_basemap_in_gcj02(client: TestClient, city: dict[str, Any]) -> None:
    west, south, east, north = city["extent"]
    cx, cy = (west + east) / 2, (south + north) / 2
    wgs_box = (cx - 0.02, cy - 0.02, cx + 0.02, cy + 0.02)
    wgs = _feature_collection(client.get("/v1/grids", params={"bbox": _bbox_text(*wgs_box), "zoom": 15}))
    # The same screen as an Amap user sees it: the box itself is given in GCJ-02.
    gcj_lon, gcj_lat = wgs84_to_gcj02(np.array(wgs_box[::2]), np.array(wgs_box[1::2]))
    gcj_box = (gcj_lon[0], gcj_lat[0], gcj_lon[1], gcj_lat[1])
    gcj = _feature_collection(
        client.get("/v1/grids", params={"bbox": _bbox_text(*gcj_box), "zoom": 15, "coords": "gcj02"})
    )
    by_code = {f["properties"]["code"]: shape(f["geometry"]) for f in wgs["features"]}
    assert {f["properties"]["code"] for f in gcj["features"]} >= set(by_code)
    for feature in gcj["features"]:
        code = feature["properties"]["code"]
        if code not in by_code:
            continue
        offset = shape(feature["geometry"]).centroid
        original = by_code[code].centroid
        # GCJ-02 moves 东莞 by a few hundred metres; converting back lands on the stored outline.
        assert 0.002 < abs(offset.x - original.x) + abs(offset.y - original.y) < 0.02
        back_lon, back_lat = gcj02_to_wgs84(offset.x, offset.y)
        assert abs(back_lon - original.x) < 2e-5 and abs(back_lat - original.y) < 2e-5
    bad = client.get("/v1/towns", params={"coords": "mercator"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


def test_the_map_page_asks_for_gcj02_when_the_basemap_is_amap() -> None:
    config = page_config(MapSettings(basemap="amap"))
    assert config["coords"] == "gcj02"
    assert "autonavi" in config["tileUrl"]
    plain = page_config(MapSettings())
    assert plain["coords"] == "wgs84" and plain["tileUrl"] == ""
    intranet = page_config(MapSettings(basemap="osm", tile_url="http://tiles.intranet/{z}/{x}/{y}.png"))
    assert intranet["tileUrl"] == "http://tiles.intranet/{z}/{x}/{y}.png"
