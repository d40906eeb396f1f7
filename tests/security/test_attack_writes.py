"""Issue 17, part B: the outside tester's write attacks replayed over HTTP against the app, each refused.

Finding 1: an API key changed supervision (a deregistration cancelled another's tasks, audited as `system`, and
event ids were one namespace for every client). Finding 2: a dispatcher moved their worker into a grid of another
town. Finding 5: a department officer closed a task the community holds. Finding 9 (registrations): officers and
every API client read registration status city-wide. And a registration could be dated years back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.permissions import Role, may_move_to
from supervision.uscc import uscc_check_char
from supervision.workflow import Status, allowed_moves
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import Door, a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

# Every test posts events dated from the platform clock when the module runs (a fake instant in CI is fine).
NOW = clock.now().replace(microsecond=0)


def credit_code(serial: int) -> str:
    first17 = f"91441900MB{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def engine(db: DatabaseSettings) -> Iterator[Engine]:
    made = make_engine(db)
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def world(engine: Engine) -> dict[str, Any]:
    """A home door with a worker, a door of another town, people of each role concerned, and four API keys."""
    with engine.begin() as conn:
        home = a_door_with_workers(conn, min_workers=2)
        away = a_door_in_another_town(conn, home.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
                "officer": ("department_officer", "tobacco"),
                "leader": ("town_leader", home.town_code),
                "far_leader": ("town_leader", away.town_code),
                "apiuser": ("api_client", None),
            },
            # A registration system's account: it sends registrations (and may read back only its own).
            permissions={"apiuser": ["intake"]},
        )
        keys = {
            "registry": make_api_key(conn, SECRET_KEY, "登记系统", permissions=["intake"]),
            "other": make_api_key(conn, SECRET_KEY, "另一登记系统", permissions=["intake"]),
            "new_only": make_api_key(conn, SECRET_KEY, "新设专用", permissions=["intake"], event_kinds=["new"]),
            "search": make_api_key(conn, SECRET_KEY, "搜索框"),
        }
        ids = {
            name: int(conn.execute(text("SELECT id FROM api_key WHERE name = :n"), {"n": label}).scalar_one())
            for name, label in (("registry", "登记系统"), ("other", "另一登记系统"))
        }
    return {"home": home, "away": away, "keys": keys, "key_ids": ids}


@pytest.fixture(scope="module")
def client(
    db: DatabaseSettings, world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    with TestClient(make_app(db, tmp_path_factory.mktemp("state"))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auth(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    headers = {name: bearer(client, name) for name in ("centre", "dispatcher", "worker", "officer", "leader",
                                                        "far_leader", "apiuser")}  # fmt: skip
    headers.update({name: api_key_headers(key) for name, key in world["keys"].items()})
    return headers


def event(
    door: Door, serial: int, *, event_id: str | None = None, kind: str = "new", scope: str = "烟草制品零售",
    occurred_at: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": event_id or f"w-{serial}",
        "kind": kind,
        "uscc": credit_code(serial),
        "name": "东莞市攻击测试商行",
        "address": door.full_text,
        "business_scope": scope,
        "occurred_at": (occurred_at or NOW - timedelta(minutes=serial)).isoformat(),
    }


def tasks_of(client: TestClient, auth: dict[str, dict[str, str]], serial: int) -> list[dict[str, Any]]:
    answer = client.get("/v1/tasks", params={"uscc": credit_code(serial)}, headers=auth["centre"])
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# ------------------------------------------------------------------------------------------------- finding 1


def test_finding_1_a_keys_deregistration_is_recorded_with_its_sender_and_audited_as_the_key(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], engine: Engine
) -> None:
    home = world["home"]
    placed = client.post("/v1/registrations", json=event(home, 1), headers=auth["registry"])
    assert placed.status_code == 201, placed.text
    assert placed.json()["event_id"] == "w-1" and placed.json()["sender"] == f"key#{world['key_ids']['registry']}"
    gone = event(home, 1, event_id="w-1-gone", kind="deregistration", occurred_at=NOW)
    answer = client.post("/v1/registrations", json=gone, headers=auth["registry"])
    assert answer.status_code == 201, answer.text
    tasks = tasks_of(client, auth, 1)
    assert tasks and all(t["status"] == "cancelled" for t in tasks)
    for task in tasks:
        trail = client.get(f"/v1/tasks/{task['id']}/history", headers=auth["centre"]).json()["items"]
        assert trail[0]["actor"] == "key:登记系统" and trail[-1]["actor"] == "key:登记系统"
        assert "system" not in {e["actor"] for e in trail}
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT sender, sender_name FROM registration_event WHERE source_event_id = 'w-1-gone'")
        ).one()
    assert row.sender == f"key#{world['key_ids']['registry']}" and row.sender_name == "key:登记系统"


def test_finding_1_a_second_key_reusing_the_first_keys_event_id_makes_its_own_event(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    home = world["home"]
    first = client.post("/v1/registrations", json=event(home, 2, event_id="shared-1"), headers=auth["registry"])
    assert first.status_code == 201, first.text
    # The other key "pre-claims" nothing: the same id is its own, new event (201, not a 200 replay nor a 409).
    second = client.post("/v1/registrations", json=event(home, 3, event_id="shared-1"), headers=auth["other"])
    assert second.status_code == 201, second.text
    assert second.json()["event_id"] == "shared-1" and second.json()["uscc"] == credit_code(3)
    assert set(second.json()["task_ids"]).isdisjoint(first.json()["task_ids"])
    # Each reads back its own event under the id, never the other's.
    mine = client.get("/v1/registrations/shared-1", headers=auth["registry"]).json()
    theirs = client.get("/v1/registrations/shared-1", headers=auth["other"]).json()
    assert mine["uscc"] == credit_code(2) and theirs["uscc"] == credit_code(3)
    only_first = client.post("/v1/registrations", json=event(home, 4, event_id="mine-only"), headers=auth["registry"])
    assert only_first.status_code == 201
    assert client.get("/v1/registrations/mine-only", headers=auth["other"]).status_code == 404
    # Idempotency per sender holds: the same body again is a replay, a different body under the id a conflict.
    again = client.post("/v1/registrations", json=event(home, 2, event_id="shared-1"), headers=auth["registry"])
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["task_ids"] == first.json()["task_ids"]
    changed = client.post(
        "/v1/registrations", json=event(home, 2, event_id="shared-1", scope="餐饮服务"), headers=auth["registry"]
    )
    assert changed.status_code == 409 and changed.json()["error"] == "event_conflict"
    # The command centre names the sender when two used the id.
    assert client.get("/v1/registrations/shared-1", headers=auth["centre"]).status_code == 422
    named = client.get(
        "/v1/registrations/shared-1",
        params={"sender": f"key#{world['key_ids']['other']}"},
        headers=auth["centre"],
    )
    assert named.status_code == 200 and named.json()["uscc"] == credit_code(3)


def test_finding_1_a_kind_limited_key_posting_another_kind_is_refused_and_nothing_is_stored(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], engine: Engine
) -> None:
    home = world["home"]
    refused = client.post(
        "/v1/registrations", json=event(home, 5, event_id="limited-1", kind="deregistration"), headers=auth["new_only"]
    )
    assert refused.status_code == 403 and "deregistration" in refused.json()["detail"]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM registration_event WHERE source_event_id = 'limited-1'"))
        assert stored.scalar_one() == 0
    allowed = client.post("/v1/registrations", json=event(home, 5, event_id="limited-2"), headers=auth["new_only"])
    assert allowed.status_code == 201, allowed.text


def test_finding_1_a_default_key_cannot_post_a_registration(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    refused = client.post("/v1/registrations", json=event(world["home"], 6), headers=auth["search"])
    assert refused.status_code == 403


def test_a_registration_dated_years_back_or_in_the_future_is_refused_naming_the_field(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], engine: Engine
) -> None:
    home = world["home"]
    old = event(home, 7, event_id="old-1", occurred_at=datetime.fromisoformat("2019-03-01T09:00:00+08:00"))
    refused = client.post("/v1/registrations", json=old, headers=auth["registry"])
    assert refused.status_code == 422 and refused.json()["field"] == "occurred_at"
    ahead = event(home, 7, event_id="ahead-1", occurred_at=NOW + timedelta(hours=1))
    refused = client.post("/v1/registrations", json=ahead, headers=auth["registry"])
    assert refused.status_code == 422 and refused.json()["field"] == "occurred_at"
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM registration_event WHERE source_event_id IN ('old-1', 'ahead-1')")
        )
        assert found.scalar_one() == 0
    # A registration system's outage of a few days is fine.
    late = event(home, 7, event_id="late-1", occurred_at=NOW - timedelta(days=3))
    assert client.post("/v1/registrations", json=late, headers=auth["registry"]).status_code == 201


# ------------------------------------------------------------------------------------------------- finding 9


def test_finding_9_officers_keys_and_other_towns_cannot_read_registration_status(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    home = world["home"]
    # No licensing department involved: the officer has nothing to do with this registration.
    plain = client.post(
        "/v1/registrations", json=event(home, 8, event_id="plain-1", scope=""), headers=auth["registry"]
    )
    assert plain.status_code == 201, plain.text
    assert client.get("/v1/registrations/plain-1", headers=auth["registry"]).status_code == 200
    assert client.get("/v1/registrations/plain-1", headers=auth["officer"]).status_code == 403
    assert client.get("/v1/registrations/plain-1", headers=auth["far_leader"]).status_code == 403
    assert client.get("/v1/registrations/plain-1", headers=auth["other"]).status_code == 404
    assert client.get("/v1/registrations/plain-1", headers=auth["apiuser"]).status_code == 404
    assert client.get("/v1/registrations/plain-1", headers=auth["search"]).status_code == 403
    for reader in ("centre", "leader", "dispatcher"):
        assert client.get("/v1/registrations/plain-1", headers=auth[reader]).status_code == 200, reader
    # A tobacco licence check goes to the tobacco department: its officer reads that registration.
    routed = client.post("/v1/registrations", json=event(home, 9, event_id="routed-1"), headers=auth["registry"])
    assert routed.status_code == 201, routed.text
    assert client.get("/v1/registrations/routed-1", headers=auth["officer"]).status_code == 200


# ------------------------------------------------------------------------------------------------- finding 2


def test_finding_2_a_dispatcher_cannot_move_their_worker_into_another_towns_grid(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], engine: Engine
) -> None:
    home, away = world["home"], world["away"]
    refused = client.post(
        f"/v1/workers/{home.worker_id}/changes",
        json={"action": "move", "grid_code": away.grid_code, "reason": "调往外镇"},
        headers=auth["dispatcher"],
    )
    assert refused.status_code == 403, refused.text
    with engine.connect() as conn:
        grid = conn.execute(text("SELECT grid_code FROM worker WHERE id = :w"), {"w": home.worker_id}).scalar_one()
    assert grid == home.grid_code
    # The worker's account still reads nothing of the other town's grid.
    seen = client.get("/v1/tasks", params={"grid": away.grid_code}, headers=auth["worker"])
    assert seen.status_code == 403 or seen.json()["items"] == []
    # Nor may the dispatcher move the other town's worker (the object) into their own grid (the target).
    pulled = client.post(
        f"/v1/workers/{away.worker_id}/changes",
        json={"action": "move", "grid_code": home.grid_code},
        headers=auth["dispatcher"],
    )
    assert pulled.status_code == 403
    with engine.connect() as conn:
        grid = conn.execute(text("SELECT grid_code FROM worker WHERE id = :w"), {"w": away.worker_id}).scalar_one()
    assert grid == away.grid_code


# ------------------------------------------------------------------------------------------------- finding 5


def licence_task(client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], serial: int) -> Any:
    placed = client.post("/v1/registrations", json=event(world["home"], serial), headers=auth["registry"])
    assert placed.status_code == 201, placed.text
    return next(t for t in tasks_of(client, auth, serial) if t["duty"] == "licence_check")


def move(client: TestClient, headers: dict[str, str], task: dict[str, Any], to: str, **extra: Any) -> Any:
    return client.post(f"/v1/tasks/{task['id']}/transitions", json={"to": to, "version": task["version"], **extra},
                       headers=headers)  # fmt: skip


def test_finding_5_an_officer_cannot_close_a_task_the_community_holds(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task = licence_task(client, world, auth, 10)
    raised = move(client, auth["centre"], task, "escalated_community")
    assert raised.status_code == 200, raised.text
    task = raised.json()
    assert "tobacco" in task["department_codes"]  # the officer sees it: the refusal is the move, not the scope
    for person in ("officer", "worker"):
        refused = move(client, auth[person], task, "closed", note="越权办结")
        assert refused.status_code == 403 and refused.json()["error"] == "not_permitted", (person, refused.text)
    now = client.get(f"/v1/tasks/{task['id']}", headers=auth["centre"]).json()
    assert now["status"] == "escalated_community" and now["version"] == task["version"]
    # The pages offer the officer no move from there either (GET /v1/me: the holder's rule by current state).
    rules = client.get("/v1/me", headers=auth["officer"]).json()["task_move_rules"]
    assert "escalated_community" not in rules and rules["escalated_department"] == ["department_feedback"]
    # Once the department holds it, the officer answers and closes.
    handed = move(client, auth["dispatcher"], task, "escalated_department").json()
    answered = move(client, auth["officer"], handed, "department_feedback", note="已处理")
    assert answered.status_code == 200, answered.text
    assert move(client, auth["officer"], answered.json(), "closed").status_code == 200


def test_finding_2_a_grid_worker_takes_a_task_for_themselves_never_for_a_colleague(
    client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]], engine: Engine
) -> None:
    home = world["home"]
    task = licence_task(client, world, auth, 12)
    with engine.begin() as conn:
        version = conn.execute(
            text("UPDATE task SET status = 'pushed', worker_id = NULL WHERE id = :id RETURNING version"),
            {"id": task["id"]},
        ).scalar_one()
    task = {**task, "version": version}
    colleague = home.worker_ids[1]
    refused = move(client, auth["worker"], task, "assigned", worker_id=colleague)
    assert refused.status_code == 403 and refused.json()["error"] == "not_permitted", refused.text
    taken = move(client, auth["worker"], task, "assigned")
    assert taken.status_code == 200 and taken.json()["worker_id"] == home.worker_id, taken.text


MOVERS = (Role.GRID_WORKER, Role.DEPARTMENT_OFFICER, Role.DISPATCHER, Role.COMMAND_CENTRE, Role.TOWN_LEADER)
PERSON = {
    Role.GRID_WORKER: "worker",
    Role.DEPARTMENT_OFFICER: "officer",
    Role.DISPATCHER: "dispatcher",
    Role.COMMAND_CENTRE: "centre",
    Role.TOWN_LEADER: "leader",
}


@pytest.fixture(scope="module")
def probe(client: TestClient, world: dict[str, Any], auth: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A tobacco licence task of the home worker's grid, held by that worker: every mover sees it."""
    task: dict[str, Any] = licence_task(client, world, auth, 11)
    return task


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(MOVERS), current=st.sampled_from(list(Status)), target=st.sampled_from(list(Status)))
def test_finding_5_the_api_answers_every_move_as_the_move_table_says(
    client: TestClient,
    world: dict[str, Any],
    auth: dict[str, dict[str, str]],
    engine: Engine,
    probe: dict[str, Any],
    role: Role,
    current: Status,
    target: Status,
) -> None:
    home = world["home"]
    with engine.begin() as conn:
        version = conn.execute(
            text(
                "UPDATE task SET status = :s, worker_id = :w, closed_at = NULL, updated_at = :at "
                "WHERE id = :id RETURNING version"
            ),
            {"s": current.value, "w": home.worker_id, "id": probe["id"], "at": NOW - timedelta(days=1)},
        ).scalar_one()
    extra = {"lon": home.lon, "lat": home.lat, "note": "性质测试"}
    answer = client.post(
        f"/v1/tasks/{probe['id']}/transitions",
        json={"to": target.value, "version": version, **extra},
        headers=auth[PERSON[role]],
    )
    if role is Role.TOWN_LEADER:  # no task.transition at all
        assert answer.status_code == 403, answer.text
    elif target not in allowed_moves(current):
        assert answer.status_code == 409 and answer.json()["error"] == "invalid_transition", answer.text
    elif not may_move_to(role, current, target):
        assert answer.status_code == 403 and answer.json()["error"] == "not_permitted", answer.text
    else:
        assert answer.status_code not in (403, 409), (role, current, target, answer.text)
