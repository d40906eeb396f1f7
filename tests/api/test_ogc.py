"""A GIS client (OWSLib) reads towns, communities and grids from /ogc, scoped by its credential."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from owslib import ogcapi
from owslib.ogcapi.features import Features
from sqlalchemy import Engine, text

from api.auth import service
from tests.api.live_server import live_url  # noqa: F401 - the live server fixture
from tests.support.accounts import make_api_key, make_users
from tests.support.city import another_town, busiest_town
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PASSWORD = "ogc tests password"


@pytest.fixture(autouse=True)
def _fresh_owslib_headers() -> Iterator[None]:
    """OWSLib keeps the headers of every client in one module-level dict: each test starts from its defaults."""
    saved = dict(ogcapi.REQUEST_HEADERS)
    yield
    ogcapi.REQUEST_HEADERS.clear()
    ogcapi.REQUEST_HEADERS.update(saved)


@pytest.fixture(scope="module")
def towns(engine: Engine) -> tuple[str, str]:
    """The town of the town leader, and another town."""
    with engine.connect() as conn:
        home = busiest_town(conn).code
        return home, another_town(conn, home).code


@pytest.fixture(scope="module")
def gis_key(engine: Engine, towns: tuple[str, str]) -> str:
    """A GIS tool's API key (city-wide map), and a town leader's account."""
    with engine.begin() as conn:
        make_users(conn, {"ogc-leader": ("town_leader", towns[0])}, password=PASSWORD)
        return make_api_key(conn, SECRET_KEY, "qgis", permissions=["gis"])


@pytest.fixture(scope="module")
def leader_headers(live_url: str, gis_key: str) -> dict[str, str]:  # noqa: F811
    """The town leader's Bearer header, signed in over the live server."""
    answer = httpx.post(f"{live_url}/v1/auth/token", data={"username": "ogc-leader", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _town_bbox(engine: Engine, town: str) -> list[float]:
    """A box in the middle of a town (a quarter of its extent), CRS84."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT geom::box2d e FROM town WHERE code = :t) s"
            ),
            {"t": town},
        ).one()
    west, south, east, north = (float(v) for v in row)
    dx, dy = (east - west) / 4, (north - south) / 4
    return [round(west + dx, 6), round(south + dy, 6), round(east - dx, 6), round(north - dy, 6)]


def test_owslib_lists_the_collections_and_reads_the_grids_of_a_bbox(
    live_url: str,  # noqa: F811
    gis_key: str,
    engine: Engine,
    towns: tuple[str, str],
) -> None:
    """QGIS-like: landing page, conformance, the three collections, then the grids of a box, as many as the DB has."""
    api = Features(f"{live_url}/ogc", headers={"X-API-Key": gis_key})
    assert {link["rel"] for link in api.links} >= {"self", "service-desc", "conformance", "data"}
    conforms = api.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conforms
    assert api.feature_collections() == ["towns", "communities", "grids"]

    grids = api.collection("grids")
    assert grids["title"] == "网格"
    assert len(grids["extent"]["spatial"]["bbox"][0]) == 4

    box = _town_bbox(engine, towns[0])
    page = api.collection_items("grids", bbox=box, limit=1000)
    expected = _count(
        engine,
        "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
        "WHERE ST_Intersects(g.geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))",
        w=box[0],
        s=box[1],
        e=box[2],
        n=box[3],
    )
    assert expected > 0
    assert page["numberMatched"] == page["numberReturned"] == len(page["features"]) == expected
    first = page["features"][0]
    assert first["id"] == first["properties"]["code"]
    assert first["geometry"]["type"] == "MultiPolygon"
    assert set(first["properties"]) >= {"code", "name", "town_code", "community_code", "workload", "worker_count"}

    one = api.collection_item("grids", first["id"])
    assert one["properties"] == first["properties"]


def test_pages_follow_with_next_links_and_do_not_overlap(live_url: str, gis_key: str, engine: Engine) -> None:  # noqa: F811
    """limit and offset page through the towns; the next link reads the following page."""
    api = Features(f"{live_url}/ogc", headers={"X-API-Key": gis_key})
    first = api.collection_items("towns", limit=3)
    second = api.collection_items("towns", limit=3, offset=3)
    total = _count(engine, "SELECT count(*) FROM town")
    assert first["numberMatched"] == total
    assert first["numberReturned"] == 3
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    rels = {link["rel"]: link["href"] for link in first["links"]}
    assert "prev" not in rels
    following = httpx.get(rels["next"], headers={"X-API-Key": gis_key})
    assert following.status_code == 200
    assert following.headers["content-type"].startswith("application/geo+json")
    assert [f["id"] for f in following.json()["features"]] == [f["id"] for f in second["features"]]
    assert "timeStamp" in first


def test_paging_links_keep_the_key_a_client_sent_in_the_url(live_url: str, gis_key: str) -> None:  # noqa: F811
    """A client that authenticates with key= follows next and prev; a header credential is never put in a link."""
    first = httpx.get(f"{live_url}/ogc/collections/towns/items", params={"key": gis_key, "limit": 3, "offset": 3})
    assert first.status_code == 200, first.text
    rels = {link["rel"]: link["href"] for link in first.json()["links"]}
    for rel in ("self", "next", "prev"):
        assert f"key={gis_key}" in rels[rel]
        assert httpx.get(rels[rel]).status_code == 200
    by_header = httpx.get(
        f"{live_url}/ogc/collections/towns/items", params={"limit": 3}, headers={"X-API-Key": gis_key}
    )
    assert all("key=" not in link["href"] for link in by_header.json()["links"])


def test_nul_and_control_characters_are_refused_and_the_connection_stays_usable(
    live_url: str,  # noqa: F811
    gis_key: str,
) -> None:
    """A NUL in a property query, a filter or a feature id answers 422 (not 500) and the next request is served."""
    headers = {"X-API-Key": gis_key}
    with httpx.Client(base_url=live_url, headers=headers) as client:
        for url in (
            "/ogc/collections/grids/items?name=%00",
            "/ogc/collections/grids/items?filter=name%3D%27a%00b%27",
            "/ogc/collections/grids/items/%00",
            "/ogc/collections/grids/items?name=%1B",
        ):
            refused = client.get(url)
            assert refused.status_code == 422, (url, refused.text)
            assert refused.json()["error"] == "invalid_request"
            assert "control character" in refused.json()["detail"]
            served = client.get("/ogc/collections/towns/items", params={"limit": 1})
            assert served.status_code == 200
        assert "NUL" in client.get("/ogc/collections/grids/items?name=%00").json()["detail"]


def test_a_town_leader_sees_only_their_town(
    live_url: str,  # noqa: F811
    leader_headers: dict[str, str],
    engine: Engine,
    towns: tuple[str, str],
) -> None:
    """The town leader's communities and grids are all of their town; another town's feature is not found."""
    home, other = towns
    api = Features(f"{live_url}/ogc", headers=leader_headers)
    communities = api.collection_items("communities", limit=1000)
    assert {f["properties"]["town_code"] for f in communities["features"]} == {home}
    assert communities["numberMatched"] == _count(engine, "SELECT count(*) FROM community WHERE town_code = :t", t=home)
    grids = api.collection_items("grids", limit=1)
    assert grids["numberMatched"] == _count(
        engine,
        "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
        "WHERE g.town_code = :t",
        t=home,
    )
    assert [f["id"] for f in api.collection_items("towns")["features"]] == [home]
    assert api.collection_item("towns", home)["properties"]["code"] == home
    outside = httpx.get(f"{live_url}/ogc/collections/towns/items/{other}", headers=leader_headers)
    assert outside.status_code == 404
    assert outside.json()["error"] == "not_found"


def test_a_town_leaders_api_key_lists_only_their_towns_features(
    live_url: str,  # noqa: F811
    engine: Engine,
    towns: tuple[str, str],
) -> None:
    """A key made for a town leader (role and scope on the key) gives QGIS that town's grids and nothing else."""
    home, other = towns
    with engine.begin() as conn:
        key = service.create_api_key(
            conn, SECRET_KEY, name="镇街 QGIS", rate_limited=False, role="town_leader", scope=home, permissions=["gis"]
        ).key
    api = Features(f"{live_url}/ogc", headers={"X-API-Key": key})
    grids = api.collection_items("grids", limit=1000)
    assert grids["numberMatched"] > 0
    assert {f["properties"]["town_code"] for f in grids["features"]} == {home}
    elsewhere = api.collection_items("grids", town_code=other)
    assert elsewhere["numberMatched"] == 0 and elsewhere["features"] == []


def test_cql2_filters_pick_the_same_features_as_the_database(
    live_url: str,  # noqa: F811
    gis_key: str,
    engine: Engine,
    towns: tuple[str, str],
) -> None:
    """A CQL2 text filter on properties and geometry gives what the same question in SQL gives."""
    home = towns[0]
    headers = {"X-API-Key": gis_key}
    url = f"{live_url}/ogc/collections/grids/items"
    answer = httpx.get(
        url,
        params={"filter": f"town_code = '{home}' AND worker_count >= 1 AND NOT (workload < 0)", "limit": "1"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["numberMatched"] == _count(
        engine,
        "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
        "WHERE g.town_code = :t AND g.worker_count >= 1",
        t=home,
    )
    box = _town_bbox(engine, home)
    by_filter = httpx.get(
        url,
        params={"filter": f"S_INTERSECTS(geometry, BBOX({box[0]}, {box[1]}, {box[2]}, {box[3]}))", "limit": "1000"},
        headers=headers,
    ).json()
    by_bbox = httpx.get(url, params={"bbox": ",".join(map(str, box)), "limit": "1000"}, headers=headers).json()
    assert [f["id"] for f in by_filter["features"]] == [f["id"] for f in by_bbox["features"]]
    by_property = httpx.get(url, params={"town_code": home, "limit": "1"}, headers=headers).json()
    assert by_property["numberMatched"] == _count(
        engine,
        "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
        "WHERE g.town_code = :t",
        t=home,
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"filter": "name = "}, "CQL2"),
        ({"filter": "salary > 3"}, "unknown property"),
        ({"filter": "population LIKE 'a%'"}, "LIKE"),
        ({"filter": "name > 3"}, "string property"),
        ({"filter": "name = 'a'", "filter-lang": "cql2-json"}, "filter-lang"),
        ({"bbox": "1,2,3"}, "4 numbers"),
        ({"bbox": "114,23,113,22"}, "minimum"),
        ({"limit": "0"}, "at least 1"),
        ({"limit": "ten"}, "whole number"),
        ({"offset": "-1"}, "negative"),
        ({"offset": "9223372036854775808"}, "at most 10,000,000"),
        ({"offset": "10000001"}, "at most 10,000,000"),
        ({"colour": "red"}, "unknown query parameter"),
    ],
)
def test_bad_queries_get_a_400_with_the_reason(
    live_url: str,  # noqa: F811
    gis_key: str,
    params: dict[str, str],
    reason: str,
) -> None:
    """A malformed filter, bbox, limit or parameter is refused with 400 and says why."""
    answer = httpx.get(f"{live_url}/ogc/collections/grids/items", params=params, headers={"X-API-Key": gis_key})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "maps_error"
    assert reason in body["detail"]


def test_owslib_reports_a_bad_filter_and_an_unknown_collection(live_url: str, gis_key: str) -> None:  # noqa: F811
    """Through OWSLib: a bad CQL2 filter and a collection that does not exist are errors, not empty pages."""
    api = Features(f"{live_url}/ogc", headers={"X-API-Key": gis_key})
    with pytest.raises(RuntimeError, match="CQL2"):
        api.collection_items("grids", filter="code ==== 'x'")
    unknown = httpx.get(f"{live_url}/ogc/collections/roads", headers={"X-API-Key": gis_key})
    assert unknown.status_code == 404


def test_without_a_credential_nothing_is_served(live_url: str) -> None:  # noqa: F811
    """No credential: 401 on the landing page and on the items."""
    for path in ("/ogc", "/ogc/collections/grids/items"):
        answer = httpx.get(f"{live_url}{path}")
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
