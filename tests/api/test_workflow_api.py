"""A registration posted over HTTP becomes grid tasks; people move them within their own scope, and nowhere else."""

from __future__ import annotations

import io
import threading
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.uscc import uscc_check_char
from tests.support.accounts import bearer, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_with_workers, a_worker
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

START = clock.now().replace(microsecond=0) - timedelta(hours=1)


def credit_code(serial: int, kind: str = "91") -> str:
    first17 = f"{kind}441900MA{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module", autouse=True)
def city(db: DatabaseSettings) -> dict[str, Any]:
    """A door in a grid with two workers, and people of every role around it (and elsewhere)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn, min_workers=2)
        workers = list(door.worker_ids)
        far = a_worker(conn, not_town=door.town_code)
        neighbour = a_door_in_a_neighbour_community(conn, door)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "neighbour_dispatcher": ("dispatcher", neighbour.community_code),
                "worker": ("grid_worker", str(workers[0])),
                "mate": ("grid_worker", str(workers[1])),
                "far_worker": ("grid_worker", str(far.id)),
                "dispatcher": ("dispatcher", door.community_code),
                "far_dispatcher": ("dispatcher", far.community_code),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", far.town_code),
                "tobacco": ("department_officer", "tobacco"),
                "health": ("department_officer", "health"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake", "geocode"])
    engine.dispose()
    return {
        "door": asdict(door),
        "workers": workers,
        "far": asdict(far),
        "neighbour": {"code": neighbour.community_code, "door_id": neighbour.id},
        "names": {"town": door.town_name, "community": door.community_name},
        "api_key": key,
    }


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, dict[str, str]]:
    headers: dict[str, dict[str, str]] = {}
    for name in ("centre", "worker", "mate", "far_worker", "dispatcher", "neighbour_dispatcher", "far_dispatcher",
                 "leader", "far_leader", "tobacco", "health"):  # fmt: skip
        headers[name] = bearer(client, name)
    return headers


def register(
    client: TestClient, city: dict[str, Any], serial: int, *, address: str | None = None, scope: str = "烟草制品零售"
) -> Any:
    body = {
        "event_id": f"api-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": "东莞市测试商行",
        "address": address or city["door"]["full_text"],
        "business_scope": scope,
        "occurred_at": (START - timedelta(minutes=serial)).isoformat(),
    }
    return client.post("/v1/registrations", json=body, headers={"X-API-Key": city["api_key"]})


def test_a_registration_is_a_task_for_a_worker_of_its_grid_at_once(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    response = register(client, city, 1)
    assert response.status_code == 201, response.text
    status = response.json()
    assert status["outcome"] == "placed" and len(status["task_ids"]) == 3
    assert status["pushed_at"] is not None and status["received_at"] <= status["pushed_at"]
    tasks = client.get("/v1/tasks", params={"uscc": credit_code(1)}, headers=auth["centre"]).json()
    assert tasks["total"] == 3
    assert {t["duty"] for t in tasks["items"]} == {"address_check", "opening_check", "licence_check"}
    for task in tasks["items"]:
        assert task["grid_code"] == city["door"]["grid_code"]
        assert task["worker_id"] in city["workers"] and task["status"] == "assigned"
    licence = next(t for t in tasks["items"] if t["duty"] == "licence_check")
    assert licence["department_codes"] == ["tobacco"]
    # The tasks are spread: the least-loaded worker gets the next one.
    assert len({t["worker_id"] for t in tasks["items"]}) == min(3, len(city["workers"]))


def test_replaying_an_event_creates_nothing_and_a_changed_replay_is_refused(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    first = register(client, city, 2)
    again = register(client, city, 2)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["task_ids"] == first.json()["task_ids"]
    changed = register(client, city, 2, scope="餐饮服务")
    assert changed.status_code == 409 and changed.json()["error"] == "event_conflict"
    assert client.get("/v1/tasks", params={"uscc": credit_code(2)}, headers=auth["centre"]).json()["total"] == 3


def test_a_bad_credit_code_is_refused_with_the_field_named(client: TestClient, city: dict[str, Any]) -> None:
    body = {
        "event_id": "api-bad",
        "kind": "new",
        "uscc": credit_code(3)[:-1] + ("0" if credit_code(3)[-1] != "0" else "1"),
        "name": "东莞市测试商行",
        "address": city["door"]["full_text"],
        "business_scope": "",
        "occurred_at": clock.now().isoformat(),
    }
    response = client.post("/v1/registrations", json=body, headers={"X-API-Key": city["api_key"]})
    assert response.status_code == 422
    assert response.json()["field"] == "uscc"
    assert client.post("/v1/registrations", json=body).status_code == 401


def test_a_task_walked_through_every_state_ends_closed_with_its_full_audit_trail(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 4)
    task = next(
        t
        for t in client.get("/v1/tasks", params={"uscc": credit_code(4)}, headers=auth["centre"]).json()["items"]
        if t["duty"] == "licence_check"
    )
    holder = "worker" if task["worker_id"] == city["workers"][0] else "mate"
    at_door = {"lon": city["door"]["lon"], "lat": city["door"]["lat"]}
    walk = [
        (holder, "inspected_problem", at_door),
        (holder, "notice_issued", {}),
        (holder, "reinspected", at_door),
        (holder, "escalated_community", {}),
        ("dispatcher", "escalated_department", {}),
        ("tobacco", "department_feedback", {}),
        ("tobacco", "closed", {}),
    ]
    version = task["version"]
    for person, to, extra in walk:
        response = client.post(
            f"/v1/tasks/{task['id']}/transitions",
            json={"to": to, "version": version, "note": f"步骤 {to}", **extra},
            headers=auth[person],
        )
        assert response.status_code == 200, (to, response.text)
        version = response.json()["version"]
        assert response.json()["status"] == to
    trail = client.get(f"/v1/tasks/{task['id']}/history", headers=auth["centre"]).json()["items"]
    assert [(e["from_status"], e["to_status"]) for e in trail] == [
        (None, "pushed"),
        ("pushed", "assigned"),
        ("assigned", "inspected_problem"),
        ("inspected_problem", "notice_issued"),
        ("notice_issued", "reinspected"),
        ("reinspected", "escalated_community"),
        ("escalated_community", "escalated_department"),
        ("escalated_department", "department_feedback"),
        ("department_feedback", "closed"),
    ]
    assert trail[-1]["actor"] == "user:tobacco" and trail[2]["distance_m"] is not None
    assert all(e["at"] for e in trail)
    by_entity = client.get(f"/v1/entities/{credit_code(4)}/history", headers=auth["centre"]).json()["items"]
    assert {e["task_id"] for e in by_entity} >= {task["id"]}


def test_an_invalid_or_stale_transition_answers_409_with_the_allowed_moves(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 5)
    task = client.get("/v1/tasks", params={"uscc": credit_code(5)}, headers=auth["centre"]).json()["items"][0]
    wrong = client.post(
        f"/v1/tasks/{task['id']}/transitions", json={"to": "closed", "version": task["version"]}, headers=auth["centre"]
    )
    assert wrong.status_code == 409 and wrong.json()["error"] == "invalid_transition"
    assert wrong.json()["current"] == "assigned"
    assert set(wrong.json()["allowed"]) == {
        "inspected_ok",
        "inspected_problem",
        "escalated_community",
        "assigned",
        "cancelled",
    }
    stale = client.post(
        f"/v1/tasks/{task['id']}/transitions", json={"to": "cancelled", "version": task["version"] + 7},
        headers=auth["centre"],
    )  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"] == "stale_version"


def test_a_dispatcher_reassigns_a_held_task_to_a_grid_mate_and_the_deadline_keeps_running(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 71)
    task = client.get("/v1/tasks", params={"uscc": credit_code(71)}, headers=auth["centre"]).json()["items"][0]
    other = next(w for w in city["workers"] if w != task["worker_id"])
    holder = "worker" if task["worker_id"] == city["workers"][0] else "mate"

    def move(person: str, worker_id: int, version: int) -> Any:
        body = {"to": "assigned", "version": version, "worker_id": worker_id, "note": "改派"}
        return client.post(f"/v1/tasks/{task['id']}/transitions", json=body, headers=auth[person])

    # A worker cannot hand their task on, nor take a colleague's; the same worker is no reassignment.
    assert move(holder, other, task["version"]).status_code == 403
    same = move("dispatcher", task["worker_id"], task["version"])
    assert same.status_code == 422 and same.json()["field"] == "worker_id"
    # Another community's dispatcher cannot touch it.
    assert move("neighbour_dispatcher", other, task["version"]).status_code == 403
    moved = move("dispatcher", other, task["version"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "assigned" and moved.json()["worker_id"] == other
    assert moved.json()["due_at"] == task["due_at"]
    trail = client.get(f"/v1/tasks/{task['id']}/history", headers=auth["centre"]).json()["items"]
    assert (trail[-1]["from_status"], trail[-1]["to_status"], trail[-1]["worker_id"]) == ("assigned", "assigned", other)
    assert trail[-1]["actor"] == "user:dispatcher"


def test_two_concurrent_updates_of_one_task_one_wins_the_other_gets_409(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 6)
    task = client.get("/v1/tasks", params={"uscc": credit_code(6)}, headers=auth["centre"]).json()["items"][0]
    answers: list[int] = []
    start = threading.Barrier(2)

    def move(to: str) -> None:
        start.wait()
        response = client.post(
            f"/v1/tasks/{task['id']}/transitions", json={"to": to, "version": task["version"]}, headers=auth["centre"]
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=move, args=(to,)) for to in ("cancelled", "escalated_community")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409]


def test_each_role_is_refused_outside_its_scope(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 7)
    tasks = client.get("/v1/tasks", params={"uscc": credit_code(7)}, headers=auth["centre"]).json()["items"]
    licence = next(t for t in tasks if t["duty"] == "licence_check")
    address = next(t for t in tasks if t["duty"] == "address_check")
    body = {"to": "escalated_community", "version": address["version"]}
    for person in ("far_worker", "far_dispatcher", "far_leader", "health"):
        assert client.get(f"/v1/tasks/{address['id']}", headers=auth[person]).status_code == 403, person
        assert client.post(f"/v1/tasks/{address['id']}/transitions", json=body, headers=auth[person]).status_code == 403
        listed = client.get("/v1/tasks", params={"uscc": credit_code(7)}, headers=auth[person]).json()
        assert listed["total"] == 0, person
    # Inside the scope: the grid's workers, the community's dispatcher, the town's leader (read only), the department.
    for person in ("worker", "mate", "dispatcher", "leader", "centre"):
        assert client.get(f"/v1/tasks/{address['id']}", headers=auth[person]).status_code == 200, person
    assert client.get(f"/v1/tasks/{licence['id']}", headers=auth["tobacco"]).status_code == 200
    assert client.get(f"/v1/tasks/{address['id']}", headers=auth["tobacco"]).status_code == 403
    leader_move = client.post(f"/v1/tasks/{address['id']}/transitions", json=body, headers=auth["leader"])
    assert leader_move.status_code == 403
    # A worker does the field work but cannot answer for a department.
    dept = client.post(
        f"/v1/tasks/{licence['id']}/transitions", json={"to": "cancelled", "version": licence["version"]},
        headers=auth["worker"],
    )  # fmt: skip
    assert dept.status_code == 403 and dept.json()["error"] == "not_permitted"
    mine = client.get("/v1/tasks", headers=auth["worker"]).json()
    assert mine["total"] > 0 and {t["grid_code"] for t in mine["items"]} == {city["door"]["grid_code"]}


def test_task_lists_page_newest_first(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 8)
    seen: list[int] = []
    cursor = None
    first = client.get("/v1/tasks", params={"limit": 2}, headers=auth["dispatcher"]).json()
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/tasks", params=params, headers=auth["dispatcher"]).json()
        seen.extend(t["id"] for t in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == first["total"] == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert client.get("/v1/tasks", params={"cursor": "garbage"}, headers=auth["centre"]).status_code == 422


def test_an_unplaceable_registration_waits_for_a_dispatcher_and_teaches_the_geocoder(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    typed = "东莞市某某工业区后面铺位"
    response = register(client, city, 9, address=typed)
    assert response.status_code == 201
    status = response.json()
    assert status["outcome"] == "review" and status["task_ids"] == [] and status["review_id"]
    queue = client.get("/v1/review", headers=auth["centre"]).json()["items"]
    assert any(item["id"] == status["review_id"] for item in queue)
    assert client.get("/v1/review", headers=auth["worker"]).status_code == 403
    resolved = client.post(
        f"/v1/review/{status['review_id']}/resolve", json={"address_id": city["door"]["id"]}, headers=auth["centre"]
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["outcome"] == "placed" and len(resolved.json()["task_ids"]) == 3
    again = client.post(
        f"/v1/review/{status['review_id']}/resolve", json={"address_id": city["door"]["id"]}, headers=auth["centre"]
    )
    assert again.status_code == 409
    # The command centre's resolution teaches the whole city's geocoder at once (a dispatcher's only their community).
    answer = client.get("/v1/geocode", params={"q": typed}, headers={"X-API-Key": city["api_key"]}).json()
    assert answer["address_id"] == city["door"]["id"] and answer["confidence"] >= 0.99


def test_a_dispatcher_resolves_only_their_own_communitys_items_and_only_into_it(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    # The community is known from the typed text, the place is not: the item is the community's to resolve.
    typed = f"{city['names']['town']}{city['names']['community']}某某工业区后面二号铺位"
    status = register(client, city, 10, address=typed).json()
    assert status["outcome"] == "review", status
    item = status["review_id"]
    neighbours = client.get("/v1/review", headers=auth["neighbour_dispatcher"]).json()["items"]
    assert item not in {i["id"] for i in neighbours}
    for intruder in ("neighbour_dispatcher", "far_dispatcher"):
        taken = client.post(
            f"/v1/review/{item}/resolve", json={"address_id": city["neighbour"]["door_id"]}, headers=auth[intruder]
        )
        assert taken.status_code in (403, 404), taken.text
        assert taken.json()["error"] in ("forbidden", "not_found")
    # A program's key has no permission to resolve anything.
    keyed = client.post(
        f"/v1/review/{item}/resolve", json={"address_id": city["door"]["id"]}, headers={"X-API-Key": city["api_key"]}
    )
    assert keyed.status_code == 403, keyed.text
    # Its own dispatcher cannot send it into the neighbouring community either…
    elsewhere = client.post(
        f"/v1/review/{item}/resolve", json={"address_id": city["neighbour"]["door_id"]}, headers=auth["dispatcher"]
    )
    assert elsewhere.status_code == 403 and "community" in elsewhere.text
    # … and places it at home.
    placed = client.post(
        f"/v1/review/{item}/resolve", json={"address_id": city["door"]["id"]}, headers=auth["dispatcher"]
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["outcome"] == "placed"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_clues_are_routed_photographed_and_listed(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    ordinary = client.post(
        "/v1/clues",
        json={"lon": door["lon"], "lat": door["lat"], "industry": "烟草制品零售", "description": "无证卖烟"},
        headers=auth["worker"],
    )
    assert ordinary.status_code == 201, ordinary.text
    assert ordinary.json()["department_code"] == "tobacco" and ordinary.json()["grid_code"] == door["grid_code"]
    severe = client.post(
        "/v1/clues",
        json={"lon": door["lon"], "lat": door["lat"], "industry": "烟草制品零售", "severity": "severe"},
        headers=auth["worker"],
    )
    assert severe.json()["department_code"] == "command_centre"
    assert severe.json()["duplicate_candidates"][0]["clue_id"] == ordinary.json()["id"]
    far = city["far"]
    outside = client.post(
        "/v1/clues", json={"lon": door["lon"], "lat": door["lat"], "industry": "餐饮服务"}, headers=auth["far_worker"]
    )
    assert outside.status_code == 403, far
    unknown = client.post(
        "/v1/clues", json={"lon": door["lon"], "lat": door["lat"], "industry": "卖火箭"}, headers=auth["worker"]
    )
    assert unknown.status_code == 422 and "餐饮服务" in unknown.json()["detail"]
    clue_id = ordinary.json()["id"]
    photo = client.post(
        f"/v1/clues/{clue_id}/photos", files={"file": ("a.png", png_bytes(), "image/png")}, headers=auth["worker"]
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["size_bytes"] == len(png_bytes())
    lying = client.post(
        f"/v1/clues/{clue_id}/photos", files={"file": ("a.jpg", png_bytes(), "image/jpeg")}, headers=auth["worker"]
    )
    assert lying.status_code == 422
    not_image = client.post(
        f"/v1/clues/{clue_id}/photos", files={"file": ("a.jpg", b"hello", "image/jpeg")}, headers=auth["worker"]
    )
    assert not_image.status_code == 422
    download = client.get(f"/v1/photos/{photo.json()['id']}", headers=auth["worker"])
    assert download.status_code == 200 and download.content == png_bytes()
    assert client.get(f"/v1/photos/{photo.json()['id']}", headers=auth["far_worker"]).status_code == 403
    listed = client.get("/v1/clues", params={"grid": door["grid_code"]}, headers=auth["centre"]).json()
    assert {c["id"] for c in listed["items"]} >= {clue_id, severe.json()["id"]}
    assert client.get("/v1/clues", params={"grid": door["grid_code"]}, headers=auth["tobacco"]).json()["total"] == 1
    reversed_window = client.get("/v1/clues", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=auth["centre"])
    assert reversed_window.status_code == 422


def test_statistics_per_town_and_department_within_scope(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    register(client, city, 10)
    town = city["door"]["town_code"]
    stats = client.get("/v1/stats", params={"level": "town", "code": town}, headers=auth["leader"])
    assert stats.status_code == 200, stats.text
    unit = stats.json()["units"][0]
    assert unit["code"] == town and unit["tasks_pushed"] >= 3
    assert 0 <= unit["licensing_rate"] <= 1 and "completion_rate" in unit and "on_time_rate" in unit
    assert set(stats.json()["headline"]) >= {"completion_rate", "clue_handling_rate", "licensing_rate"}
    everyone = client.get("/v1/stats", params={"level": "town"}, headers=auth["centre"]).json()
    assert len(everyone["units"]) > 1
    assert (
        client.get("/v1/stats", params={"level": "town", "code": town}, headers=auth["far_leader"]).status_code == 403
    )
    own = client.get("/v1/stats", params={"level": "department", "code": "tobacco"}, headers=auth["tobacco"])
    assert own.status_code == 200 and own.json()["units"][0]["tasks_pushed"] >= 1
    other = client.get("/v1/stats", params={"level": "department", "code": "health"}, headers=auth["tobacco"])
    assert other.status_code == 403
    community = city["door"]["community_code"]
    assert (
        client.get(
            "/v1/stats", params={"level": "community", "code": community}, headers=auth["dispatcher"]
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/v1/stats", params={"level": "community", "code": community}, headers=auth["far_dispatcher"]
        ).status_code
        == 403
    )
    bad = client.get(
        "/v1/stats", params={"level": "town", "from": "2026-03-01", "to": "2026-02-01"}, headers=auth["centre"]
    )
    assert bad.status_code == 422
