"""Live events on a served app: a registration posted, a task moved, a clue reported reach the dashboards whose
scope sees them, and only those; a reconnecting client resumes; the last hour's registrations are a map layer."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text

from api.auth import service
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.live import LiveEvent, LiveFeed, sees_clue, sees_task
from supervision.permissions import scope_for
from supervision.scope import Scope
from supervision.uscc import uscc_check_char
from tests.support.accounts import make_api_key, make_users
from tests.support.city import a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY, make_app
from tests.support.server import served as served_app

pytestmark = pytest.mark.db

USERS = ("centre", "leader", "far_leader", "dispatcher", "worker", "tobacco", "far_worker")
WAIT_S = 15.0


def credit_code(serial: int) -> str:
    first17 = f"91441900MC{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def city(db: DatabaseSettings) -> dict[str, Any]:
    """A door with workers, a door in another town, and the people of both."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        far = a_door_in_another_town(conn, door.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", far.town_code),
                "dispatcher": ("dispatcher", door.community_code),
                "worker": ("grid_worker", str(door.worker_id)),
                "far_worker": ("grid_worker", str(far.worker_id)),
                "tobacco": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
        hotline = service.create_api_key(conn, SECRET_KEY, name="hotline-12345", rate_limited=False, role="hotline")
    engine.dispose()
    return {"door": asdict(door), "far": asdict(far), "api_key": key, "hotline": hotline.key}


@dataclass
class Served:
    """The app served by uvicorn on a loopback port, and a client of it."""

    app: FastAPI
    url: str
    http: httpx.Client
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def feed(self) -> LiveFeed:
        feed: LiveFeed = self.app.state.live_feed
        return feed


@pytest.fixture(scope="module")
def served(db: DatabaseSettings, city: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app as `gridgov serve` runs it (uvicorn, background jobs), with every user signed in."""
    app = make_app(db, tmp_path_factory.mktemp("state"))
    with served_app(app, name="uvicorn-live") as url:
        # The app's feed, with a heartbeat every half second so that a test's stream wakes often.
        app.state.live_feed = LiveFeed(app.state.engine, heartbeat_s=0.5)
        with httpx.Client(base_url=url, timeout=30) as http:
            out = Served(app, url, http)
            for user in USERS:
                response = http.post(
                    "/v1/auth/token", data={"username": user, "password": "correct horse battery staple"}
                )
                assert response.status_code == 200, response.text
                out.tokens[user] = {"Authorization": f"Bearer {response.json()['access_token']}"}
            out.tokens["key"] = {"X-API-Key": city["api_key"]}
            out.tokens["hotline"] = {"X-API-Key": city["hotline"]}
            yield out
        feed = getattr(app.state, "live_feed", None)
        if feed is not None:
            feed.stop()


@dataclass
class Received:
    """One server-sent event as a client reads it."""

    id: str | None
    event: str | None
    data: dict[str, Any]


class Listener:
    """An open /v1/live stream read on a thread into a queue (as a browser's EventSource would)."""

    def __init__(self, served: Served, user: str, last_event_id: str | None = None, *, in_query: bool = False) -> None:
        self.events: queue.Queue[Received] = queue.Queue()
        self.ready = threading.Event()
        self.retry: int | None = None
        self.status: int | None = None
        self.heartbeats = 0
        self._closing = threading.Event()
        self._client = httpx.Client(base_url=served.url, timeout=httpx.Timeout(30, read=None))
        headers = dict(served.tokens[user])
        path = "/v1/live"
        if last_event_id is not None and in_query:
            path += f"?last_event_id={last_event_id}"
        elif last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self._thread = threading.Thread(target=self._read, args=(path, headers), daemon=True)
        self._thread.start()
        assert self.ready.wait(WAIT_S), f"the stream of {user} did not open"
        assert self.status == 200

    def _read(self, path: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", path, headers=headers) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._closing.is_set():
                        break
                    if line.startswith(":"):
                        self.heartbeats += 1
                    if line == "":
                        if "retry" in fields:
                            self.retry = int(fields["retry"])
                            self.ready.set()
                        if "data" in fields:
                            self.events.put(Received(fields.get("id"), fields.get("event"), json.loads(fields["data"])))
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.ready.set()

    def until(self, matches: Callable[[Received], bool], what: str) -> tuple[Received, list[Received]]:
        """The first event that matches, and every event before it; fails after the deadline."""
        before: list[Received] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {what} within {WAIT_S} s; got {[(e.event, e.data.get('id')) for e in before]}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if matches(event):
                return event, before
            before.append(event)

    def close(self) -> None:
        """Hang up (the next heartbeat at the latest wakes the reader, which then stops)."""
        self._closing.set()
        self._thread.join(timeout=5)
        self._client.close()


@pytest.fixture
def listen(served: Served) -> Iterator[Callable[..., Listener]]:
    opened: list[Listener] = []

    def open_stream(user: str, last_event_id: str | None = None, *, in_query: bool = False) -> Listener:
        listener = Listener(served, user, last_event_id, in_query=in_query)
        opened.append(listener)
        return listener

    yield open_stream
    for listener in opened:
        listener.close()


def register(served: Served, serial: int, address: str, *, placed: bool = True) -> Any:
    body = {
        "event_id": f"live-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": f"东莞市实时测试商行{serial}",
        "address": address,
        "business_scope": "烟草制品零售",
        "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
    }
    response = served.http.post("/v1/registrations", json=body, headers=served.tokens["key"])
    assert response.status_code == 201, response.text
    assert (response.json()["outcome"] == "placed") is placed, response.text
    return response.json()


def registration(event_id: str) -> Callable[[Received], bool]:
    return lambda e: e.event == "registration" and e.data["id"] == event_id


# ------------------------------------------------------------------------------------------------------ stories


def test_a_posted_registration_reaches_the_dashboards_of_its_town_and_not_another_towns(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    door, far = city["door"], city["far"]
    centre, leader, far_leader, worker = listen("centre"), listen("leader"), listen("far_leader"), listen("worker")
    assert centre.retry == 3000 and centre.content_type.startswith("text/event-stream")
    assert served.http.get("/v1/live", headers={"Authorization": "Bearer x"}).status_code == 401
    posted = register(served, 1, door["full_text"])
    assert posted["outcome"] == "placed"
    for listener in (centre, leader):
        event, _ = listener.until(registration("live-1"), "registration live-1")
        assert event.id is not None and event.id.isdigit()
        data = event.data
        assert data["kind"] == "registration" and data["action"] == "placed" and data["status"] == "placed"
        assert data["grid_code"] == door["grid_code"] and data["town_code"] == door["town_code"]
        assert data["community_code"] == door["community_code"]
        assert (
            data["lon"] is not None and abs(data["lon"] - door["lon"]) < 0.01 and abs(data["lat"] - door["lat"]) < 0.01
        )
        assert "东莞市实时测试商行1" in data["label"] and data["at"]
    # Its tasks arrive too, created in the grid; the worker who got one sees it.
    created, _ = centre.until(lambda e: e.event == "task" and e.data["action"] == "created", "a created task")
    assert created.data["grid_code"] == door["grid_code"] and created.data["id"] in posted["task_ids"]
    worker.until(lambda e: e.event == "task" and e.data["id"] in posted["task_ids"], "the worker's task")
    # The other town's leader gets the other town's registration, and nothing of the first before it.
    register(served, 2, far["full_text"])
    _, before = far_leader.until(registration("live-2"), "registration live-2")
    assert all(e.data.get("town_code") == far["town_code"] for e in before)
    assert not [e for e in before if e.data["id"] == "live-1" or e.data["id"] in posted["task_ids"]]


def test_a_task_move_and_a_clue_reach_their_scope_only(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    door, far = city["door"], city["far"]
    posted = register(served, 3, door["full_text"])
    centre, dispatcher, far_leader, tobacco = (
        listen("centre"),
        listen("dispatcher"),
        listen("far_leader"),
        listen("tobacco"),
    )
    tasks = served.http.get("/v1/tasks", params={"uscc": credit_code(3)}, headers=served.tokens["centre"]).json()
    task = next(t for t in tasks["items"] if t["worker_id"] == door["worker_ids"][0])
    moved = served.http.post(
        f"/v1/tasks/{task['id']}/transitions",
        json={"to": "escalated_community", "version": task["version"], "note": "需社区处理"},
        headers=served.tokens["worker"],
    )
    assert moved.status_code == 200, moved.text
    is_move = lambda e: e.event == "task" and e.data["id"] == task["id"] and e.data["action"] == "moved"  # noqa: E731
    for listener in (centre, dispatcher):
        event, _ = listener.until(lambda e: is_move(e) and e.data["status"] == "escalated_community", "the move")
        assert "已上报村（社区）" in event.data["label"] and event.data["community_code"] == door["community_code"]
    # A clue reported in the door's grid.
    clue = served.http.post(
        "/v1/clues",
        json={"lon": door["lon"], "lat": door["lat"], "industry": "烟草制品零售", "description": "疑似无证售烟"},
        headers=served.tokens["worker"],
    )
    assert clue.status_code == 201, clue.text
    clue_id = clue.json()["id"]
    department = clue.json()["department_code"]
    for listener in (centre, dispatcher):
        event, _ = listener.until(lambda e: e.event == "clue" and e.data["id"] == clue_id, "the clue")
        assert event.data["action"] == "reported" and event.data["grid_code"] == door["grid_code"]
        assert event.data["label"].startswith("新线索：烟草制品零售")
    if department == "tobacco":
        tobacco.until(lambda e: e.event == "clue" and e.data["id"] == clue_id, "the tobacco clue")
    # The far town's leader sees the far town's registration, and neither the move nor the clue before it.
    register(served, 4, far["full_text"])
    _, before = far_leader.until(registration("live-4"), "registration live-4")
    assert not [e for e in before if e.data["id"] in (task["id"], clue_id)]
    assert posted["task_ids"]


def test_a_registration_waiting_for_review_and_then_placed_reaches_the_live_feed_twice(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    door = city["door"]
    centre, leader = listen("centre"), listen("leader")
    waiting = register(served, 11, "东莞市某某工业区后面铺位", placed=False)
    assert waiting["outcome"] == "review"
    event, _ = centre.until(registration("live-11"), "the registration sent to review")
    assert event.data["action"] == "review" and event.data["status"] == "review"
    assert event.data["lon"] is None and event.data["lat"] is None and "地址待核" in event.data["label"]
    resolved = served.http.post(
        f"/v1/review/{waiting['review_id']}/resolve", json={"address_id": door["id"]}, headers=served.tokens["centre"]
    )
    assert resolved.status_code == 200 and resolved.json()["outcome"] == "placed", resolved.text
    for listener in (centre, leader):
        placed, _ = listener.until(
            lambda e: registration("live-11")(e) and e.data["action"] == "placed", "the resolved registration"
        )
        assert placed.data["grid_code"] == door["grid_code"] and placed.data["lon"] is not None


def test_a_client_reconnecting_with_last_event_id_gets_what_it_missed(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    door = city["door"]
    centre, leader = listen("centre"), listen("leader")
    register(served, 5, door["full_text"])
    seen, _ = leader.until(registration("live-5"), "registration live-5")
    leader.close()
    # While the leader is away, another registration arrives (the centre's stream keeps the feed running).
    register(served, 6, door["full_text"])
    centre.until(registration("live-6"), "registration live-6")
    back = listen("leader", last_event_id=seen.id)
    event, before = back.until(registration("live-6"), "the missed registration live-6")
    assert int(event.id or 0) > int(seen.id or 0)
    assert not [e for e in before if e.data["id"] == "live-5"]
    # A page that opens a new stream names the last event in the query instead; a far town's leader resuming
    # from the same point gets nothing of this town.
    again = listen("leader", last_event_id=seen.id, in_query=True)
    again.until(registration("live-6"), "the missed registration live-6, by query")
    far = listen("far_leader", last_event_id=seen.id)
    register(served, 10, city["far"]["full_text"])
    _, before = far.until(registration("live-10"), "registration live-10")
    assert not [e for e in before if e.data.get("town_code") != city["far"]["town_code"]]


def test_a_bad_last_event_id_is_refused_and_streams_are_capped(served: Served) -> None:
    response = served.http.get("/v1/live", headers={**served.tokens["centre"], "Last-Event-ID": "abc"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert served.http.get("/v1/live").status_code == 401
    # The hotline reads back its own requests and nothing else: no live events either.
    hotline = served.http.get("/v1/live", headers=served.tokens["hotline"])
    assert hotline.status_code == 403 and hotline.json()["error"] == "forbidden"
    feed = served.feed
    cap = feed.max_subscribers
    feed.max_subscribers = feed.listeners
    try:
        full = served.http.get("/v1/live", headers=served.tokens["centre"])
        assert full.status_code == 429 and full.json()["error"] == "too_many_requests"
        assert "live streams" in full.json()["detail"]
    finally:
        feed.max_subscribers = cap


def test_one_credential_holds_a_few_streams_and_the_command_centre_still_gets_in(
    served: Served, listen: Callable[..., Listener]
) -> None:
    per_credential = served.feed.max_per_owner
    assert per_credential == 4
    for _ in range(per_credential):
        listen("far_leader")
    one_more = served.http.get("/v1/live", headers=served.tokens["far_leader"])
    assert one_more.status_code == 429 and one_more.json()["error"] == "too_many_requests"
    assert "this credential already holds 4 live streams" in one_more.json()["detail"]
    assert one_more.headers["Retry-After"] == "10"
    # Another credential is not held back by it: the command centre opens its dashboard.
    assert listen("centre").status == 200


def test_a_registration_system_key_may_not_hold_a_live_stream(served: Served) -> None:
    # An api_client receives no task, clue or review event: a stream of its would only hold a slot.
    response = served.http.get("/v1/live", headers=served.tokens["key"])
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_a_closed_stream_is_forgotten(served: Served, listen: Callable[..., Listener]) -> None:
    listener = listen("centre")
    assert served.feed.listeners >= 1
    before = served.feed.listeners
    listener.close()
    deadline = time.monotonic() + WAIT_S
    while served.feed.listeners >= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.feed.listeners < before


def test_a_quiet_stream_carries_heartbeat_comments(served: Served, listen: Callable[..., Listener]) -> None:
    listener = listen("far_worker")
    deadline = time.monotonic() + WAIT_S
    while listener.heartbeats < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.heartbeats >= 2


def test_the_last_hours_registrations_are_points_within_scope(served: Served, city: dict[str, Any]) -> None:
    door, far = city["door"], city["far"]
    register(served, 7, door["full_text"])
    register(served, 8, far["full_text"])

    def ids(user: str, **params: Any) -> set[str]:
        response = served.http.get("/v1/registrations/recent", params=params, headers=served.tokens[user])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/geo+json")
        body = response.json()
        assert body["type"] == "FeatureCollection"
        for f in body["features"]:
            assert f["geometry"]["type"] == "Point" and len(f["geometry"]["coordinates"]) == 2
            assert set(f["properties"]) == {"event_id", "kind", "name", "address", "grid_code", "at"}
        return {f["properties"]["event_id"] for f in body["features"]}

    assert {"live-7", "live-8"} <= ids("centre")
    assert "live-7" in ids("leader") and "live-8" not in ids("leader")
    assert "live-8" in ids("far_leader") and "live-7" not in ids("far_leader")
    assert "live-7" in ids("worker", minutes=1440) and "live-8" not in ids("worker")
    # A registration system's key reads no map of everyone's registrations (it has no task.read), nor the hotline.
    for key in ("key", "hotline"):
        refused = served.http.get("/v1/registrations/recent", headers=served.tokens[key])
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", key
    for bad in (0, 1441, "x"):
        response = served.http.get("/v1/registrations/recent", params={"minutes": bad}, headers=served.tokens["centre"])
        assert response.status_code == 422


# ------------------------------------------------------------------------------- the feed's rules are the lists'


def test_the_feeds_scope_rules_agree_with_the_lists_sql_for_every_role(
    db: DatabaseSettings, served: Served, city: dict[str, Any]
) -> None:
    # Work in two towns: tasks routed to departments, and clues reported in each town.
    for serial, door, reporter in ((20, city["door"], "worker"), (21, city["far"], "far_worker")):
        register(served, serial, door["full_text"])
        clue = served.http.post(
            "/v1/clues",
            json={"lon": door["lon"], "lat": door["lat"], "industry": "烟草制品零售", "description": "疑似无证售烟"},
            headers=served.tokens[reporter],
        )
        assert clue.status_code == 201, clue.text
    engine: Engine = make_engine(db)
    try:
        with engine.connect() as conn:
            door = conn.execute(
                text("SELECT w.id, w.grid_code, w.town_code FROM worker w WHERE w.active ORDER BY w.id LIMIT 1")
            ).one()
            community = door.grid_code[:12]
            scopes = [
                scope_for("command_centre", None),
                scope_for("town_leader", door.town_code),
                scope_for("dispatcher", community),
                scope_for("grid_worker", str(door.id), door.town_code),
                scope_for("department_officer", "tobacco"),
                scope_for("department_officer", "health"),
                Scope("none"),
            ]
            tasks = conn.execute(
                text(
                    "SELECT id, town_code, community_code, grid_code, department_codes FROM task ORDER BY id DESC LIMIT 3000"
                )
            ).all()
            clues = conn.execute(
                text("SELECT id, town_code, grid_code, department_code FROM clue ORDER BY id DESC LIMIT 3000")
            ).all()
            assert tasks and clues
            for scope in scopes:
                grids = scope.worker_grids(conn)
                where, params = scope.task_sql("t")
                in_sql = {r[0] for r in conn.execute(text(f"SELECT t.id FROM task t WHERE {where} AND t.id = ANY(:ids)"),  # noqa: S608
                                                      {**params, "ids": [t.id for t in tasks]})}  # fmt: skip
                in_python = {
                    t.id
                    for t in tasks
                    if sees_task(
                        scope, t.town_code, t.community_code, t.grid_code, (t.department_codes or "").split(","), grids
                    )  # fmt: skip
                }
                assert in_python == in_sql, scope
                where, params = scope.clue_sql("c")
                in_sql = {r[0] for r in conn.execute(text(f"SELECT c.id FROM clue c WHERE {where} AND c.id = ANY(:ids)"),  # noqa: S608
                                                      {**params, "ids": [c.id for c in clues]})}  # fmt: skip
                in_python = {
                    c.id for c in clues if sees_clue(scope, c.town_code, c.grid_code, c.department_code, grids)
                }
                assert in_python == in_sql, scope
                if scope.kind not in ("city", "none"):
                    assert in_sql != {c.id for c in clues} or scope.kind == "department"
    finally:
        engine.dispose()


def test_an_event_renders_as_server_sent_event_text() -> None:
    event = LiveEvent(42, "clue", {"id": 1, "label": "新线索：餐饮服务"}, "clue")
    assert event.sse() == 'id: 42\nevent: clue\ndata: {"id": 1, "label": "新线索：餐饮服务"}\n\n'


def test_a_stream_whose_time_is_up_asks_the_browser_to_reconnect_at_once(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    feed = served.feed
    limit = feed.max_stream_s
    feed.max_stream_s = 1.0
    try:
        listener = listen("leader")
        listener._thread.join(WAIT_S)
        assert not listener._thread.is_alive() and listener.retry == 250
    finally:
        feed.max_stream_s = limit


def test_after_a_quiet_spell_the_feed_starts_again_and_misses_nothing(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    feed = served.feed
    idle = feed.idle_stop_s
    feed.idle_stop_s = 0.2
    try:
        deadline = time.monotonic() + WAIT_S
        while (feed.listeners or feed._thread is not None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed._thread is None, "the feed kept polling with nobody listening"
        register(served, 9, city["door"]["full_text"])
        listener = listen("centre")
        listener.until(registration("live-9"), "the registration made while nobody listened")
    finally:
        feed.idle_stop_s = idle


def test_the_feed_misses_no_late_commit_and_tells_only_the_end_of_a_burst(
    db: DatabaseSettings, served: Served, city: dict[str, Any]
) -> None:
    register(served, 22, city["door"]["full_text"])
    engine: Engine = make_engine(db)
    feed = LiveFeed(engine)
    insert = text(
        "INSERT INTO task_event (task_id, from_status, to_status, actor, at) "
        "SELECT :task, t.status, t.status, 'user:test', :at FROM task t, generate_series(1, :n) WHERE t.id = :task"
    )
    try:
        with engine.connect() as conn:
            task = conn.execute(text("SELECT id FROM task ORDER BY id LIMIT 1")).scalar_one()
        feed.poll_once()  # the watermarks start at the newest rows
        params = {"task": task, "at": clock.now()}
        # A transaction that takes its id first but commits after a later one is still told.
        with engine.connect() as slow:
            slow.begin()
            slow.execute(insert, {**params, "n": 1})
            with engine.begin() as fast:
                fast.execute(insert, {**params, "n": 1})
            first = feed.poll_once()
            slow.commit()
        second = feed.poll_once()
        assert len(first) == 1 and len(second) == 1 and first[0].seq < second[0].seq
        assert int(first[0].data["id"]) == task and first[0].name == "task" and second[0].data["action"] == "moved"
        assert feed.poll_once() == []
        # Thousands of rows at once (a campaign): the feed tells the last of them and catches up.
        with engine.begin() as conn:
            conn.execute(insert, {**params, "n": 2500})
        burst = feed.poll_once()
        assert 0 < len(burst) <= 100
        assert feed.poll_once() == []
        with engine.begin() as conn:
            conn.execute(insert, {**params, "n": 1})
        assert len(feed.poll_once()) == 1
    finally:
        feed.stop()
        engine.dispose()


def test_a_registration_posted_as_soon_as_the_first_stream_opens_is_told(
    served: Served, city: dict[str, Any], listen: Callable[..., Listener]
) -> None:
    # A fresh feed, as after a server start: nobody has listened yet.
    served.feed.stop()
    served.app.state.live_feed = LiveFeed(served.app.state.engine, heartbeat_s=0.5)
    first = listen("centre")
    register(served, 23, city["door"]["full_text"])
    first.until(registration("live-23"), "the registration posted right after the stream opened")
