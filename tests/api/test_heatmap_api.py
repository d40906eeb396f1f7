"""A town leader sees heat, hexagons and hotspots of their own town, and nothing of any other."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from maps.heat.schemas import AggregateTable, HeatLayers, HotspotCollection
from tests.support.accounts import bearer, make_users
from tests.support.city import a_worker, another_town, busiest_town

pytestmark = pytest.mark.db

CLASSES = {"hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"}


@pytest.fixture(scope="module", autouse=True)
def towns(db: DatabaseSettings) -> dict[str, Any]:
    """The town with the most synthetic clues, another town, and the window the clues cover."""
    engine = make_engine(db)
    with engine.begin() as conn:
        busy = busiest_town(conn).code
        other = another_town(conn, busy).code
        last = conn.execute(text("SELECT max(reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM clue")).scalar_one()
        worker = a_worker(conn, town_code=busy)
        make_users(
            conn,
            {
                "leader": ("town_leader", busy),
                "centre": ("command_centre", None),
                "worker": ("grid_worker", str(worker.id)),
            },
        )
    engine.dispose()
    return {"busy": busy, "other": other, "to": last.isoformat(), "from": last.replace(day=1).isoformat()}


login = bearer


def test_hotspots_of_the_own_town_as_geojson(client: TestClient, towns: dict[str, Any]) -> None:
    leader = login(client, "leader")
    params = {"town": towns["busy"], "from": towns["from"], "to": towns["to"], "unit": "grid"}
    response = client.get("/v1/hotspots", params=params, headers=leader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection" and body["features"]
    for feature in body["features"]:
        props = feature["properties"]
        assert set(props) >= {"code", "count", "rate", "z", "p", "class", "emerging"}
        assert props["class"] in CLASSES and props["code"].startswith(towns["busy"][:9])
    assert sum(f["properties"]["count"] for f in body["features"]) > 0
    rate = client.get("/v1/hotspots", params={**params, "method": "rate"}, headers=leader)
    assert rate.status_code == 200 and rate.json()["per"] == "residents"
    per_entity = client.get("/v1/hotspots", params={**params, "method": "rate", "per": "entities"}, headers=leader)
    assert per_entity.status_code == 200 and per_entity.json()["per"] == "entities"
    counts = {f["properties"]["code"]: f["properties"]["count"] for f in per_entity.json()["features"]}
    rates = {f["properties"]["code"]: f["properties"]["rate"] for f in per_entity.json()["features"]}
    # Rates are EB-smoothed: each grid's rate is pulled from its raw rate towards the town's, so a grid without a
    # clue does not show zero, and no grid shows more than the highest raw rate.
    raw = client.get("/v1/aggregates", params={**params, "unit": "grid"}, headers=leader).json()["rows"]
    highest_raw = max(r["per_entity"] for r in raw if r["per_entity"] is not None)
    assert all(rate > 0 for rate in rates.values() if rate is not None)
    assert max(r for r in rates.values() if r is not None) <= highest_raw + 1e-9
    assert any(n == 0 for n in counts.values())  # the quiet grids are in the answer too
    hexes = client.get("/v1/hotspots", params={**params, "unit": "h3:9"}, headers=leader)
    assert hexes.status_code == 200 and hexes.json()["features"][0]["properties"]["code"].startswith("89")


def test_the_leader_is_refused_any_other_town(client: TestClient, towns: dict[str, Any]) -> None:
    leader = login(client, "leader")
    assert client.get("/v1/hotspots", params={"town": towns["other"]}, headers=leader).status_code == 403
    assert client.get("/v1/heatmap", params={"town": towns["other"]}, headers=leader).status_code == 403
    assert client.get(f"/towns/{towns['other']}/heatmap", headers=leader).status_code == 403
    assert client.get("/towns/city/heatmap", headers=leader).status_code == 200  # city → their own town
    assert client.get(f"/towns/{towns['busy']}/heatmap", headers=leader).status_code == 200
    centre = login(client, "centre")
    assert client.get(f"/towns/{towns['other']}/heatmap", headers=centre).status_code == 200
    assert client.get("/towns/city/heatmap", headers=centre).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-01", "to": "2026-02-01"},
        {"town": "441900999000"},
        {"industry": "卖火箭"},
        {"unit": "h3:12"},
        {"method": "kde"},
        {"method": "rate", "per": "households"},
    ],
)
def test_bad_requests_get_a_reason(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/v1/hotspots", params=params, headers=login(client, "centre"))
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request" and response.json()["detail"]


def test_a_window_without_data_is_an_empty_answer(client: TestClient, towns: dict[str, Any]) -> None:
    centre = login(client, "centre")
    params = {"town": towns["busy"], "from": "2001-01-01", "to": "2001-01-31"}
    spots = client.get("/v1/hotspots", params=params, headers=centre)
    layers = client.get("/v1/heatmap", params=params, headers=centre)
    assert spots.status_code == 200 and spots.json()["empty"] is True
    assert layers.status_code == 200 and layers.json()["empty"] is True and layers.json()["message"]
    assert client.get("/v1/heatmap", params={"res": 11}, headers=centre).status_code == 422


def test_heat_layers_with_a_legend_that_matches_the_hexagons(client: TestClient, towns: dict[str, Any]) -> None:
    leader = login(client, "leader")
    body = client.get("/v1/heatmap", params={"from": towns["from"], "to": towns["to"]}, headers=leader).json()
    assert body["town"] == towns["busy"] and body["total"] > 0
    assert len(body["heat"]["points"]) <= 50_000
    hexagons = body["hexagons"]["features"]
    assert sum(row["count"] for row in body["legend"]) == len(hexagons)
    assert sum(f["properties"]["count"] for f in hexagons) == body["total"]
    assert {"current", "previous", "change"} <= set(body["comparison"])


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.remote += [v for k, v in attrs if k in ("src", "href") and v and ("http://" in v or "https://" in v)]


def test_exports_open_offline(client: TestClient, towns: dict[str, Any]) -> None:
    leader = login(client, "leader")
    params = {"from": towns["from"], "to": towns["to"]}
    html = client.get(f"/towns/{towns['busy']}/heatmap/export.html", params=params, headers=leader)
    assert html.status_code == 200 and "attachment" in html.headers["content-disposition"]
    links = Links()
    links.feed(html.text)
    assert links.remote == []
    csv_body = client.get(f"/towns/{towns['busy']}/heatmap/export.csv", params=params, headers=leader)
    assert csv_body.text.lstrip("\ufeff").startswith("code,count,rate,z,p,class,emerging")
    geojson = client.get(f"/towns/{towns['busy']}/heatmap/export.geojson", params=params, headers=leader)
    assert geojson.json()["type"] == "FeatureCollection"
    # The page's filters carry into the export: the hotline clues of H3 cells are what the API answers.
    chosen = {**params, "unit": "h3:9", "source": "hotline", "method": "rate"}
    exported = client.get(f"/towns/{towns['busy']}/heatmap/export.geojson", params=chosen, headers=leader).json()
    answered = client.get("/v1/hotspots", params=chosen, headers=leader).json()
    assert exported["features"] == answered["features"] and exported["unit"] == "h3:9"
    assert (
        0
        < sum(f["properties"]["count"] for f in exported["features"])
        < sum(f["properties"]["count"] for f in geojson.json()["features"])
    )
    assert client.get(f"/towns/{towns['other']}/heatmap/export.csv", headers=leader).status_code == 403


def test_a_hotspot_links_to_the_clues_inside_its_cell(client: TestClient, towns: dict[str, Any]) -> None:
    leader = login(client, "leader")
    params = {"town": towns["busy"], "from": towns["from"], "to": towns["to"], "unit": "h3:9"}
    features = client.get("/v1/hotspots", params=params, headers=leader).json()["features"]
    busiest = max(features, key=lambda f: f["properties"]["count"])["properties"]
    window = {"from": towns["from"], "to": towns["to"], "source": "all", "limit": 500}
    listed = client.get("/v1/clues", params={**window, "h3": busiest["code"], "kind": "clue"}, headers=leader)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert listed.json()["total"] == busiest["count"] and items
    assert all(h3.latlng_to_cell(i["lat"], i["lon"], 9) == busiest["code"] for i in items)
    bad = client.get("/v1/clues", params={"h3": "890000000000000"}, headers=leader)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


@pytest.mark.parametrize("unit", ["town", "community", "grid", "h3:7", "h3:10"])
def test_aggregates_count_the_window_per_unit_with_rates(
    client: TestClient, towns: dict[str, Any], db: DatabaseSettings, unit: str
) -> None:
    leader = login(client, "leader")
    params = {"from": towns["from"], "to": towns["to"], "unit": unit}
    body = client.get("/v1/aggregates", params=params, headers=leader).json()
    assert body["town"] == towns["busy"] and body["rows"]
    assert sum(r["count"] for r in body["rows"]) + body["unplaced"] == body["total"]
    engine = make_engine(db)
    with engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM clue WHERE town_code = :town AND kind = 'clue' "
                "AND (reported_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN :since AND :until"
            ),
            {
                "town": towns["busy"],
                "since": date.fromisoformat(towns["from"]),
                "until": date.fromisoformat(towns["to"]),
            },
        ).scalar_one()
    engine.dispose()
    assert body["total"] == expected
    counts = [r["count"] for r in body["rows"]]
    assert counts == sorted(counts, reverse=True)
    for row in body["rows"]:
        if row["entities"]:
            assert row["per_entity"] == pytest.approx(row["count"] / row["entities"], rel=1e-3, abs=1e-4)
        if unit in ("grid", "community", "town"):
            assert row["code"].startswith(towns["busy"][:9])


def test_status_and_source_filters_split_the_window(client: TestClient, towns: dict[str, Any]) -> None:
    centre = login(client, "centre")
    params = {"town": towns["busy"], "from": towns["from"], "to": towns["to"], "unit": "town"}
    everything = client.get("/v1/aggregates", params=params, headers=centre).json()["total"]
    by_source = [
        client.get("/v1/aggregates", params={**params, "source": s}, headers=centre).json()["total"]
        for s in ("field", "hotline", "inspection")
    ]
    assert sum(by_source) == everything and by_source[0] > 0 and by_source[1] > 0
    closed = client.get("/v1/aggregates", params={**params, "status": "closed"}, headers=centre).json()["total"]
    assert 0 < closed <= everything
    heat = client.get("/v1/heatmap", params={**params, "source": "hotline"}, headers=centre).json()
    assert heat["total"] == by_source[1]
    assert client.get("/v1/aggregates", params={**params, "status": "lost"}, headers=centre).status_code == 422
    assert client.get("/v1/aggregates", params={**params, "unit": "street"}, headers=centre).status_code == 422
    other = client.get("/v1/aggregates", params={"town": towns["other"]}, headers=login(client, "leader"))
    assert other.status_code == 403


def test_heatmaps_are_for_leaders_and_the_command_centre(client: TestClient, towns: dict[str, Any]) -> None:
    worker = login(client, "worker")
    for path in ("/v1/heatmap", "/v1/hotspots", "/v1/aggregates", f"/towns/{towns['busy']}/heatmap"):
        response = client.get(path, headers=worker)
        assert response.status_code == 403, path


def test_all_clues_are_clues_of_both_kinds(client: TestClient, towns: dict[str, Any]) -> None:
    centre = login(client, "centre")
    params = {"town": towns["busy"], "from": towns["from"], "to": towns["to"], "unit": "town"}
    totals = {
        kind: client.get("/v1/aggregates", params={**params, "kind": kind}, headers=centre).json()["total"]
        for kind in ("all", "clue", "unlicensed")
    }
    assert totals["all"] == totals["clue"] + totals["unlicensed"] and totals["clue"] > 0


def test_the_clue_list_page_is_behind_the_sign_in(client: TestClient, towns: dict[str, Any]) -> None:
    anonymous = client.get("/clues?h3=89411c22ddbffff", headers={"Accept": "text/html"}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=/clues")
    page = client.get("/clues", headers=login(client, "leader"))
    assert page.status_code == 200 and "线索列表" in page.text and "/static/clues.js" in page.text


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema of the OpenAPI document with its $ref followed."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize(
    ("path", "model", "params"),
    [
        ("/v1/heatmap", HeatLayers, {}),
        ("/v1/aggregates", AggregateTable, {"unit": "grid"}),
        ("/v1/hotspots", HotspotCollection, {"unit": "grid"}),
        ("/v1/hotspots", HotspotCollection, {"unit": "h3:9", "method": "rate"}),
    ],
)
def test_the_openapi_document_describes_each_answer(
    client: TestClient, towns: dict[str, Any], path: str, model: type[BaseModel], params: dict[str, str]
) -> None:
    document = client.get("/openapi.json").json()
    response = document["paths"][path]["get"]["responses"]["200"]
    schema = _schema(document, response["content"]["application/json"]["schema"])
    assert schema["type"] == "object" and schema["properties"], schema  # named properties, not a bare object
    leader = login(client, "leader")
    answer = client.get(path, params={"from": towns["from"], "to": towns["to"], **params}, headers=leader)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) <= set(schema["properties"]) and set(schema.get("required", ())) <= set(body)
    # The answer validates against the documented model and serializes back to the very same JSON.
    parsed = TypeAdapter(model).validate_python(body)
    assert parsed.model_dump(mode="json") == body


def test_the_empty_hotspot_answer_keeps_its_keys(client: TestClient, towns: dict[str, Any]) -> None:
    centre = login(client, "centre")
    params = {"town": towns["busy"], "from": "2001-01-01", "to": "2001-01-31"}
    body = client.get("/v1/hotspots", params=params, headers=centre).json()
    assert list(body) == ["type", "features", "empty", "message", "method", "unit", "per", "window"]
    assert body["window"] == {"from": "2001-01-01T00:00:00+08:00", "to": "2001-02-01T00:00:00+08:00"}
    properties = body["features"][0]["properties"]
    assert list(properties) == ["code", "count", "rate", "z", "p", "q", "class", "emerging"]
    assert (properties["z"], properties["p"], properties["class"]) == (0.0, 1.0, "not_significant")
    assert HotspotCollection(features=[], empty=True, message="x").model_dump(mode="json") == {
        "type": "FeatureCollection", "features": [], "empty": True, "message": "x",
    }  # fmt: skip


def test_the_territory_layers_document_a_feature_collection(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/v1/towns", "/v1/communities", "/v1/grids"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        schema = _schema(document, content["application/geo+json"]["schema"])
        assert set(schema["properties"]) == {"type", "features"}, path
        feature = _schema(document, schema["properties"]["features"]["items"])
        assert _schema(document, feature["properties"]["properties"])["properties"]["code"]["type"] == "string"
