"""Issue 17, part D: the outside tester's read and backdating attacks replayed over HTTP against the served app.

Finding 9 (reads): API clients (a key with gis+geocode, a user of role api_client) read grid and address details.
Finding 10: clue duplicate candidates disclosed clues of other towns; a clue could be backdated to 2019.
Must exist §3: workers' names and phones and clue reporters are masked for roles that do not need them, in API
answers, CSV exports, vector tiles, OGC features and the live stream.

Everything runs against the app served by uvicorn (a real HTTP client; the stream needs a real server).
"""

from __future__ import annotations

import csv
import io
import json
import math
import queue
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import mapbox_vector_tile
import pytest
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.live import LiveFeed
from supervision.privacy import mask_account, mask_name
from tests.support.accounts import PASSWORD, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY, make_app, served

pytestmark = pytest.mark.db

WAIT_S = 30.0
USERS = {
    "centre": ("command_centre", None),
    "dispatcher": ("dispatcher", None),  # scope filled in below (the home community)
    "worker": ("grid_worker", None),  # the home grid's worker
    "officer": ("department_officer", "tobacco"),
    "apiuser": ("api_client", None),
}


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A home door (with its worker's name and phone), a door of the neighbour community, one of another town, an
    account of each role concerned and a GIS key (gis + geocode)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn)
        neighbour = a_door_in_a_neighbour_community(conn, home)
        away = a_door_in_another_town(conn, home.town_code)
        users = {
            **USERS,
            "dispatcher": ("dispatcher", home.community_code),
            "worker": ("grid_worker", str(home.worker_id)),
        }
        # The api_client account is a GIS tool's, like the GIS key: its role, not its permissions, keeps it out.
        make_users(conn, users, permissions={"apiuser": ["gis", "geocode"]})
        gis_key = make_api_key(conn, SECRET_KEY, "gis-client", permissions=["gis", "geocode"])
        worker = conn.execute(text("SELECT name, phone FROM worker WHERE id = :id"), {"id": home.worker_id}).one()
    engine.dispose()
    return {
        "home": home,
        "neighbour": neighbour,
        "away": away,
        "gis_key": gis_key,
        "worker_name": worker.name,
        "worker_phone": worker.phone,
    }


@pytest.fixture(scope="module")
def app_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    app = make_app(db, tmp_path_factory.mktemp("state"))
    with served(app, name="uvicorn-attack-reads") as url:
        # A heartbeat every half second, so that a stream's reader wakes often.
        app.state.live_feed = LiveFeed(app.state.engine, heartbeat_s=0.5)
        yield app, url
        app.state.live_feed.stop()


@pytest.fixture(scope="module")
def http(app_url: tuple[Any, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_url[1], timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def auth(http: httpx.Client, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {"gis_key": {"X-API-Key": world["gis_key"]}}
    for user in USERS:
        answer = http.post("/v1/auth/token", data={"username": user, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        out[user] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return out


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ tile (z, x, y) holding a WGS84 point (Web Mercator)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def _clue(http: httpx.Client, who: dict[str, str], door: Any, industry: str = "餐饮服务", **extra: Any) -> Any:
    body = {"lon": door.lon, "lat": door.lat, "industry": industry, "description": "无证经营", **extra}
    return http.post("/v1/clues", json=body, headers=who)


# ------------------------------------------------------------------------------------------ finding 9: details


@pytest.mark.parametrize("who", ["gis_key", "apiuser"])
def test_finding_9_an_api_client_cannot_read_grid_or_address_details(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any], who: str
) -> None:
    home = world["home"]
    for path in (f"/v1/grids/{home.grid_code}", f"/v1/addresses/{home.id}"):
        answer = http.get(path, headers=auth[who])
        assert answer.status_code == 403, (who, path, answer.text)
        assert answer.json()["error"] == "forbidden"
    z, x, y = _tile(home.lon, home.lat, 15)
    entities = http.get(f"/tiles/entities/{z}/{x}/{y}.mvt", headers=auth[who])
    assert entities.status_code == 403, entities.text
    # The staff still read them (the same requests, the command centre's credential).
    assert http.get(f"/v1/grids/{home.grid_code}", headers=auth["centre"]).status_code == 200
    assert http.get(f"/v1/addresses/{home.id}", headers=auth["centre"]).status_code == 200


def test_finding_9_a_grids_work_figures_stay_within_the_readers_task_scope(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """The dispatcher reads the neighbour community's grid on the map, but not its open tasks or clues."""
    neighbour = http.get(f"/v1/grids/{world['neighbour'].grid_code}", headers=auth["dispatcher"])
    assert neighbour.status_code == 200, neighbour.text
    assert neighbour.json()["open_tasks"] is None and neighbour.json()["clues_30d"] is None
    own = http.get(f"/v1/grids/{world['home'].grid_code}", headers=auth["dispatcher"]).json()
    assert isinstance(own["open_tasks"], int) and isinstance(own["clues_30d"], int)
    officer = http.get(f"/v1/grids/{world['home'].grid_code}", headers=auth["officer"]).json()
    assert officer["open_tasks"] is None and officer["overdue_tasks"] is None


# ------------------------------------------------------------------------ finding 10: duplicate candidates


def test_finding_10_duplicate_candidates_never_disclose_clues_of_another_town_or_area(
    db: DatabaseSettings, http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    home, neighbour, away = world["home"], world["neighbour"], world["away"]
    # Clues a few metres from the home door, of the same industry: one of the home grid (a true candidate), one
    # filed under another town and one under the neighbour community (as a border case leaves them).
    engine = make_engine(db)
    now = clock.now()
    planted: dict[str, int] = {}
    with engine.begin() as conn:
        for name, town, grid in (
            ("own", home.town_code, home.grid_code),
            ("other_town", away.town_code, away.grid_code),
            ("neighbour", neighbour.town_code, neighbour.grid_code),
        ):
            planted[name] = conn.execute(
                text(
                    "INSERT INTO clue (kind, industry, description, severity, status, source, reported_at, town_code, "
                    "grid_code, geom, reported_by, department_code) VALUES ('clue', '食品销售', 'x', 'normal', "
                    "'pushed', 'field', :at, :town, :grid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'user:x', "
                    "'market') RETURNING id"
                ),
                {"at": now - timedelta(days=1), "town": town, "grid": grid, "lon": home.lon + 1e-5, "lat": home.lat},
            ).scalar_one()
    engine.dispose()
    reported = _clue(http, auth["dispatcher"], home, "食品销售")
    assert reported.status_code == 201, reported.text
    shown = {c["clue_id"] for c in reported.json()["duplicate_candidates"]}
    assert planted["own"] in shown
    assert planted["other_town"] not in shown and planted["neighbour"] not in shown
    # Read back by anyone, the candidates stay within what the reader may read themselves.
    for who in ("dispatcher", "centre", "worker"):
        read = http.get(f"/v1/clues/{reported.json()['id']}", headers=auth[who])
        assert read.status_code == 200, (who, read.text)
        ids = {c["clue_id"] for c in read.json()["duplicate_candidates"]}
        assert planted["other_town"] not in ids and planted["neighbour"] not in ids, who


def test_finding_10_candidates_stored_before_the_fix_are_narrowed_when_read(
    db: DatabaseSettings, http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """A clue whose stored candidates name another town's clue (an old row): the reader never sees that id."""
    home, away = world["home"], world["away"]
    foreign = _clue(http, auth["centre"], away, "美容美发")
    assert foreign.status_code == 201, foreign.text
    mine = _clue(http, auth["dispatcher"], home, "美容美发")
    assert mine.status_code == 201, mine.text
    engine = make_engine(db)
    with engine.begin() as conn:
        stale = [{"clue_id": foreign.json()["id"], "distance_m": 12.0, "reported_at": clock.now().isoformat(),
                  "status": "pushed"}]  # fmt: skip
        conn.execute(
            text("UPDATE clue SET duplicate_candidates = CAST(:d AS jsonb) WHERE id = :id"),
            {"d": json.dumps(stale), "id": mine.json()["id"]},
        )
    engine.dispose()
    read = http.get(f"/v1/clues/{mine.json()['id']}", headers=auth["dispatcher"]).json()
    assert read["duplicate_candidates"] == []
    listed = http.get("/v1/clues", params={"industry": "美容美发"}, headers=auth["dispatcher"]).json()["items"]
    assert all(c["duplicate_candidates"] in ([], None) for c in listed)


# ------------------------------------------------------------------------------------- finding 10: backdating


def _grid_figures(http: httpx.Client, auth: dict[str, dict[str, str]], grid: str) -> Any:
    year_2019 = {"level": "grid", "code": grid, "from": "2019-01-01", "to": "2019-12-31"}
    answer = http.get("/v1/stats", params=year_2019, headers=auth["centre"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_finding_10_a_clue_backdated_to_2019_is_refused_and_the_statistics_stay(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    home = world["home"]
    before = _grid_figures(http, auth, home.grid_code)
    clues_before = http.get("/v1/clues", params={"grid": home.grid_code, "from": "2019-01-01"}, headers=auth["centre"])
    for who in ("worker", "dispatcher", "centre"):
        answer = _clue(http, auth[who], home, reported_at="2019-03-01T10:00:00+08:00")
        assert answer.status_code == 422, (who, answer.text)
        assert answer.json()["field"] == "reported_at"
    eight_days = (clock.now() - timedelta(days=8)).isoformat()
    assert _clue(http, auth["worker"], home, reported_at=eight_days).status_code == 422
    ahead = (clock.now() + timedelta(hours=1)).isoformat()
    assert _clue(http, auth["worker"], home, reported_at=ahead).status_code == 422
    assert _grid_figures(http, auth, home.grid_code) == before
    clues_after = http.get("/v1/clues", params={"grid": home.grid_code, "from": "2019-01-01"}, headers=auth["centre"])
    assert clues_after.json()["total"] == clues_before.json()["total"]
    # A worker late by three days still reports, with the time they saw it.
    late = _clue(http, auth["worker"], home, reported_at=(clock.now() - timedelta(days=3)).isoformat())
    assert late.status_code == 201, late.text


def test_finding_10_a_task_move_backdated_to_2019_is_refused(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    clue = _clue(http, auth["centre"], world["home"])
    assert clue.status_code == 201, clue.text
    task = http.get(f"/v1/tasks/{clue.json()['task_id']}", headers=auth["dispatcher"]).json()
    body = {"to": "escalated_community", "version": task["version"], "at": "2019-03-01T10:00:00+08:00"}
    answer = http.post(f"/v1/tasks/{task['id']}/transitions", json=body, headers=auth["dispatcher"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "at"
    after = http.get(f"/v1/tasks/{task['id']}", headers=auth["dispatcher"]).json()
    assert after["version"] == task["version"] and after["status"] == task["status"]


# ------------------------------------------------------------------------------------ personal data masked


@pytest.fixture(scope="module")
def routed(http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]) -> dict[str, Any]:
    """A tobacco clue at the home door reported by the dispatcher: routed to the tobacco officers, its task held by
    the home grid's worker."""
    clue = _clue(http, auth["dispatcher"], world["home"], "烟草制品零售")
    assert clue.status_code == 201, clue.text
    assert clue.json()["department_code"] == "tobacco"
    task = http.get(f"/v1/tasks/{clue.json()['task_id']}", headers=auth["centre"]).json()
    assert task["worker_name"] == world["worker_name"], task
    return {"clue": clue.json(), "task": task}


def test_masked_a_department_officer_sees_no_workers_name_nor_reporter_in_api_answers(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any], routed: dict[str, Any]
) -> None:
    name = world["worker_name"]
    task = http.get(f"/v1/tasks/{routed['task']['id']}", headers=auth["officer"])
    assert task.status_code == 200, task.text
    assert task.json()["worker_name"] == mask_name(name) != name
    listed = http.get("/v1/tasks", params={"limit": 500}, headers=auth["officer"]).json()["items"]
    assert routed["task"]["id"] in {t["id"] for t in listed}
    assert all(t["worker_name"] is None or "*" in t["worker_name"] for t in listed)
    clue = http.get(f"/v1/clues/{routed['clue']['id']}", headers=auth["officer"]).json()
    assert clue["reported_by"] == mask_account("user:dispatcher") != "user:dispatcher"
    history = http.get(f"/v1/tasks/{routed['task']['id']}/history", headers=auth["officer"]).json()["items"]
    actors = {e["actor"] for e in history}
    assert "user:dispatcher" not in actors and mask_account("user:dispatcher") in actors
    centre_history = http.get(f"/v1/tasks/{routed['task']['id']}/history", headers=auth["centre"]).json()["items"]
    assert "user:dispatcher" in {e["actor"] for e in centre_history}
    # Those who need them see them: the centre, the area's dispatcher, the worker their own name.
    for who in ("centre", "dispatcher", "worker"):
        clear = http.get(f"/v1/tasks/{routed['task']['id']}", headers=auth[who]).json()
        assert clear["worker_name"] == name, who
    assert http.get(f"/v1/clues/{routed['clue']['id']}", headers=auth["centre"]).json()["reported_by"] == (
        "user:dispatcher"
    )


def test_masked_a_department_officer_sees_no_workers_name_nor_reporter_in_csv_exports(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any], routed: dict[str, Any]
) -> None:
    name = world["worker_name"]
    tasks = http.get("/v1/tasks.csv", headers=auth["officer"])
    assert tasks.status_code == 200, tasks.text
    rows = list(csv.DictReader(io.StringIO(tasks.content.decode("utf-8-sig"))))
    assert rows and name not in tasks.content.decode("utf-8-sig")
    assert mask_name(name) in {r["网格员"] for r in rows}
    clues = http.get("/v1/clues.csv", headers=auth["officer"]).content.decode("utf-8-sig")
    assert "user:dispatcher" not in clues and mask_account("user:dispatcher") in clues
    centre = http.get("/v1/tasks.csv", params={"grid": world["home"].grid_code}, headers=auth["centre"])
    assert name in centre.content.decode("utf-8-sig")


def _personal(world: dict[str, Any]) -> tuple[str, str]:
    return world["worker_name"], world["worker_phone"]


def test_masked_tiles_carry_no_workers_name_or_phone(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any], routed: dict[str, Any]
) -> None:
    home = world["home"]
    z, x, y = _tile(home.lon, home.lat, 15)
    seen_features = 0
    for who, layer in (("officer", "tasks"), ("officer", "grids"), ("gis_key", "grids"), ("officer", "clues")):
        answer = http.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=auth[who])
        assert answer.status_code in (200, 204), (who, layer, answer.text)
        if answer.status_code == 204:
            continue
        decoded = mapbox_vector_tile.decode(answer.content)
        for features in decoded.values():
            for feature in features["features"]:
                seen_features += 1
                values = {str(v) for v in feature["properties"].values()}
                assert not values & set(_personal(world)), (who, layer, feature["properties"])
                assert "user:dispatcher" not in values
    assert seen_features > 0


def test_masked_ogc_features_carry_no_workers_name_or_phone(
    http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    home = world["home"]
    answer = http.get(
        "/ogc/collections/grids/items", params={"code": home.grid_code, "f": "json"}, headers=auth["gis_key"]
    )
    assert answer.status_code == 200, answer.text
    body = answer.text
    assert answer.json()["numberReturned"] == 1
    for personal in _personal(world):
        assert personal not in body


def test_masked_the_live_stream_carries_no_workers_name_phone_or_reporter(
    app_url: tuple[Any, str], http: httpx.Client, auth: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """The tobacco officer's stream, opened before a tobacco clue is reported and its task assigned to the worker."""
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    opened = threading.Event()
    closing = threading.Event()

    def read() -> None:
        client = httpx.Client(base_url=app_url[1], timeout=httpx.Timeout(30, read=None))
        with client, client.stream("GET", "/v1/live", headers=auth["officer"]) as response:
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                opened.set()
                if closing.is_set():
                    return
                if line == "":
                    if "data" in fields:
                        events.put((fields.get("event", ""), json.loads(fields["data"])))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(WAIT_S), "the officer's stream did not open"
    clue = _clue(http, auth["dispatcher"], world["home"], "烟草制品零售")
    assert clue.status_code == 201, clue.text
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while not any(e.get("kind") == "clue" and e.get("id") == clue.json()["id"] for e in got):
        if time.monotonic() > deadline:
            pytest.fail(f"the clue never reached the officer's stream; got {got}")
        try:
            got.append(events.get(timeout=1)[1])
        except queue.Empty:
            continue
    closing.set()
    raw = json.dumps(got, ensure_ascii=False)
    for personal in (*_personal(world), "user:dispatcher"):
        assert personal not in raw


# ------------------------------------------------ the outside re-test (fix round B): a hotline caller's contact

CALLER_PHONE = "13812345678"


def test_retest_4_a_hotline_callers_contact_is_masked_but_for_the_handling_department(
    db: DatabaseSettings, http: httpx.Client, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    """The attack: the town leader read `电话：13812345678` in a 12345 clue's description (and its CSV export)."""
    from api.auth import service

    home = world["home"]
    engine = make_engine(db)
    with engine.begin() as conn:
        hotline = service.create_api_key(conn, SECRET_KEY, name="12345-retest", rate_limited=False, role="hotline").key
        make_users(
            conn,
            {
                "hl_leader": ("town_leader", home.town_code),
                "hl_market": ("department_officer", "market_supervision"),
            },
        )
    engine.dispose()
    posted = http.post(
        "/open311/v2/requests.json",
        data={
            "api_key": hotline, "service_code": "catering", "lat": str(home.lat), "long": str(home.lon),
            "description": "群众反映该处有无证餐饮", "first_name": "小明", "last_name": "王", "phone": CALLER_PHONE,
            "email": "caller@example.cn",
        },
    )  # fmt: skip
    assert posted.status_code == 201, posted.text
    clue_id = int(posted.json()[0]["service_request_id"])
    tokens = {
        user: {"Authorization": "Bearer " + http.post("/v1/auth/token", data={"username": user, "password": PASSWORD}).json()["access_token"]}
        for user in ("hl_leader", "hl_market")
    }  # fmt: skip

    def description(who: dict[str, str]) -> str:
        answer = http.get(f"/v1/clues/{clue_id}", headers=who)
        assert answer.status_code == 200, answer.text
        text_: str = answer.json()["description"]
        return text_

    for who in (tokens["hl_leader"], auth["dispatcher"]):
        seen = description(who)
        assert seen.startswith("群众反映该处有无证餐饮") and "【来电人信息（不公开）】" in seen
        assert CALLER_PHONE not in seen and "王小明" not in seen and "caller@" not in seen, seen
        assert "138****5678" in seen and "王**" in seen and "c*****@example.cn" in seen
        export = http.get("/v1/clues.csv", params={"source": "hotline"}, headers=who)
        assert export.status_code == 200 and CALLER_PHONE not in export.text and "138****5678" in export.text
        listed = http.get("/v1/clues", params={"source": "hotline"}, headers=who).text
        assert CALLER_PHONE not in listed
    # Those who call the caller back (the handling department), and the managers, read it in clear.
    for who in (tokens["hl_market"], auth["centre"]):
        assert f"电话：{CALLER_PHONE}" in description(who) and "姓名：王小明" in description(who)
    # Another department's officer does not read the clue at all; the tobacco officer sees no caller either.
    other = http.get(f"/v1/clues/{clue_id}", headers=auth["officer"])
    assert other.status_code in (403, 404) or CALLER_PHONE not in other.text


def test_retest_5_an_address_historys_changed_by_is_masked_as_task_histories_are(
    db: DatabaseSettings, http: httpx.Client, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    """The attack: any reader of an address saw the account that changed it (a person's) in clear."""
    home = world["home"]
    engine = make_engine(db)
    with engine.begin() as conn:  # a change made by a person, as the maintenance routes record it
        conn.execute(
            text(
                "INSERT INTO address_history (address_id, action, changed_by, note) "
                "VALUES (:id, 'move', 'user:zhangsan', 'retest')"
            ),
            {"id": home.id},
        )
    engine.dispose()

    def changed_by(who: dict[str, str]) -> list[str]:
        answer = http.get(f"/v1/addresses/{home.id}", headers=who)
        assert answer.status_code == 200, answer.text
        return [entry["changed_by"] for entry in answer.json()["history"] if entry["note"] == "retest"]

    assert changed_by(auth["officer"]) == ["user:z*******"]
    assert changed_by(auth["worker"]) == ["user:z*******"]
    assert changed_by(auth["centre"]) == ["user:zhangsan"]
