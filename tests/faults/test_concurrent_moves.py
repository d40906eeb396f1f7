"""Concurrent writers on one task (issue 17 §4): exactly one move wins, every other gets a 409 with the error body.

Sixteen clients, each on its own HTTP connection to a live uvicorn (a real connection pool, real transactions),
send their move at the same instant (a barrier releases them together). The task's row lock and its version
decide: one 2xx, fifteen 409 `stale_version`, and one entry more in the task's history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.audit import Actor
from supervision.creation import NewTask, create_tasks
from supervision.scope import CITY
from supervision.task_queries import task_by_id
from supervision.transitions import Move, transition
from supervision.workflow import Duty
from tests.support.accounts import PASSWORD, make_users
from tests.support.server import make_app, served

pytestmark = pytest.mark.db

WRITERS = 16
CENTRE = Actor("user:racer_centre", "command_centre")


@pytest.fixture(scope="module")
def live(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"racer_centre": ("command_centre", None)})
    engine.dispose()
    with served(make_app(db, tmp_path_factory.mktemp("state")), name="uvicorn-race") as url:
        yield url


@pytest.fixture(scope="module")
def headers(live: str) -> dict[str, str]:
    response = httpx.post(f"{live}/v1/auth/token", data={"username": "racer_centre", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def tasks(db: DatabaseSettings) -> list[dict[str, Any]]:
    """Three new tasks, assigned to a worker of their grid, with their version and their subject's position."""
    engine = make_engine(db)
    with engine.begin() as conn:
        subject = conn.execute(
            text(
                """
                SELECT e.uscc, e.grid_code, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat, w.id AS worker_id
                FROM entity e JOIN worker w ON w.grid_code = e.grid_code AND w.active
                WHERE e.status = 'open' AND e.geom IS NOT NULL ORDER BY e.uscc, w.id LIMIT 1
                """
            )
        ).one()
        ids = create_tasks(
            conn, [NewTask(Duty.OPENING_CHECK, subject.grid_code, clock.now(), subject.uscc) for _ in range(3)]
        )
        found = []
        for task_id in ids:
            view = task_by_id(conn, task_id, CITY)
            if view.status == "pushed":
                view = transition(conn, task_id, Move(to="assigned", version=view.version,
                                  worker_id=subject.worker_id), actor=CENTRE)  # fmt: skip
            assert view.status == "assigned"
            found.append({"id": task_id, "version": view.version, "lon": subject.lon, "lat": subject.lat})
    engine.dispose()
    return found


def history_length(live: str, headers: dict[str, str], task_id: int) -> int:
    response = httpx.get(f"{live}/v1/tasks/{task_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def race(live: str, headers: dict[str, str], task_id: int, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every body as its own client, all released at once; the answers in the bodies' order."""
    barrier = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)
    clients = [httpx.Client(base_url=live, headers=headers, timeout=60) for _ in bodies]
    for client in clients:  # connect first, so the barrier releases requests, not handshakes
        assert client.get("/v1/vocabulary").status_code == 200

    def writer(index: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            answers[index] = clients[index].post(f"/v1/tasks/{task_id}/transitions", json=bodies[index])

        return run

    threads = [threading.Thread(target=writer(i)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def check_one_winner(answers: list[httpx.Response]) -> httpx.Response:
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * (len(answers) - 1), [(a.status_code, a.text[:200]) for a in answers]
    for loser in (answer for answer in answers if answer.status_code == 409):
        body = loser.json()
        assert body["error"] in ("stale_version", "invalid_transition"), body
        assert isinstance(body["detail"], str) and body["allowed"] is not None, body
    return next(answer for answer in answers if answer.status_code == 200)


def test_sixteen_clients_make_the_same_move_and_exactly_one_wins(
    live: str, headers: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    task = tasks[0]
    before = history_length(live, headers, task["id"])
    body = {"to": "escalated_community", "version": task["version"], "note": "并发上报"}
    answers = race(live, headers, task["id"], [body] * WRITERS)
    winner = check_one_winner(answers)
    assert winner.json()["status"] == "escalated_community"
    assert winner.json()["version"] == task["version"] + 1
    assert all(a.json()["error"] == "stale_version" for a in answers if a.status_code == 409)
    assert history_length(live, headers, task["id"]) == before + 1


def test_two_different_moves_at_once_one_wins_and_the_task_holds_its_move(
    live: str, headers: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    task = tasks[1]
    before = history_length(live, headers, task["id"])
    inspect = {"to": "inspected_ok", "version": task["version"], "lon": task["lon"], "lat": task["lat"]}
    escalate = {"to": "escalated_community", "version": task["version"]}
    answers = race(live, headers, task["id"], [inspect, escalate] * (WRITERS // 2))
    winner = check_one_winner(answers)
    after = httpx.get(f"{live}/v1/tasks/{task['id']}", headers=headers).json()
    assert after["status"] == winner.json()["status"] and after["version"] == task["version"] + 1
    assert history_length(live, headers, task["id"]) == before + 1


def test_a_loser_rereads_and_its_retry_is_judged_on_the_new_state(
    live: str, headers: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    task = tasks[2]
    bodies = [{"to": "escalated_community", "version": task["version"]}] * 4
    check_one_winner(race(live, headers, task["id"], bodies))
    now = httpx.get(f"{live}/v1/tasks/{task['id']}", headers=headers).json()
    # The same move again, at the version now read: the state machine refuses it (already there).
    retry = httpx.post(
        f"{live}/v1/tasks/{task['id']}/transitions",
        json={"to": "escalated_community", "version": now["version"]},
        headers=headers,
    )
    assert retry.status_code == 409 and retry.json()["error"] == "invalid_transition", retry.text
    assert retry.json()["current"] == "escalated_community"
