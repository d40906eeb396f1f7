"""Graceful shutdown of `gridgov serve` (issue 17 §4): a request in flight finishes, the background relay stops at a
safe point (between two batches, never inside one), the process exits 0, and its log is JSON lines.

The server is a real `gridgov serve` subprocess on this module's database (a clone of the test city) with a few
thousand registration events waiting in the outbox, so the relay is busy when the SIGTERM arrives. A sign-in whose
body trickles in is in flight at that moment: it must be answered 200, with its request id, before the server
exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from gis import clock
from gis.cluster import free_port
from gis.settings import DatabaseSettings
from supervision.events import parse_event
from supervision.outbox import accept_events
from supervision.uscc import uscc_check_char
from tests.support.accounts import PASSWORD, make_users
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

GRIDGOV = str(Path(sys.executable).with_name("gridgov"))
EVENTS = 3000
GRACE_SECONDS = 20


def wait_for(check: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen")
        time.sleep(0.2)


def relayed_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox WHERE relayed_at IS NOT NULL")).scalar_one())


@pytest.fixture(scope="module")
def waiting_events(engine: Engine) -> int:
    """A few thousand registration events accepted (outbox rows written) and not yet relayed."""
    with engine.begin() as conn:
        doors = conn.execute(text("SELECT full_text FROM address WHERE level = 'door' ORDER BY id LIMIT 200")).scalars()
        addresses = list(doors)
        make_users(conn, {"centre": ("command_centre", None)})
        occurred = (clock.now() - timedelta(minutes=5)).isoformat()
        events = []
        for n in range(EVENTS):
            first17 = f"92441900MA{n:07d}"
            events.append(
                parse_event(
                    {
                        "event_id": f"shutdown-{n}",
                        "kind": "new",
                        "uscc": first17 + uscc_check_char(first17),
                        "name": f"东莞市停机测试商店{n}",
                        "address": addresses[n % len(addresses)],
                        "business_scope": "小餐饮服务",
                        "occurred_at": occurred,
                    }
                )
            )
        accept_events(conn, events)
        waiting = conn.execute(text("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")).scalar_one()
    return int(waiting)


@pytest.fixture(scope="module")
def server(db: DatabaseSettings, waiting_events: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state = tmp_path_factory.mktemp("serve-state")
    port = free_port()
    env = {
        **os.environ,
        "GRIDGOV_DATABASE_URL": db.database_url or "",
        "GRIDGOV_SECRET_KEY": SECRET_KEY,
        "GRIDGOV_STATE_DIR": str(state),
        "GRIDGOV_GRACEFUL_SHUTDOWN_SECONDS": str(GRACE_SECONDS),
    }
    log_path = state / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [GRIDGOV, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, "gridgov serve")
        yield process, url, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_lets_the_request_in_flight_finish_and_stops_the_relay_between_batches(
    server: Any, engine: Engine, waiting_events: int
) -> None:
    process, url, log_path = server
    assert waiting_events >= EVENTS
    # The relay is at work on the waiting events (at least one batch committed) before the stop comes.
    wait_for(lambda: relayed_count(engine) > 0, "the relay's first batch")
    body = f"username=centre&password={PASSWORD.replace(' ', '+')}".encode()
    half = len(body) // 2
    headers_sent = threading.Event()
    stop_sent = threading.Event()
    answer: dict[str, Any] = {}

    def trickle() -> Iterator[bytes]:
        yield body[:half]
        headers_sent.set()
        stop_sent.wait(30)
        time.sleep(0.5)  # the server is shutting down when the rest of the body arrives
        yield body[half:]

    def sign_in() -> None:
        try:
            answer["response"] = httpx.post(
                f"{url}/v1/auth/token",
                content=trickle(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Length": str(len(body)),
                    "X-Request-ID": "in-flight-1",
                },
                timeout=60,
            )
        except httpx.HTTPError as exc:  # recorded, so that the assertion below names it
            answer["error"] = exc

    client = threading.Thread(target=sign_in)
    client.start()
    assert headers_sent.wait(30)
    # The request's head has reached the server (it parses it at once; the wait is generous for a loaded machine).
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    stop_sent.set()
    client.join(60)
    exit_code = process.wait(timeout=GRACE_SECONDS + 40)

    assert "error" not in answer, answer.get("error")
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    assert response.headers["X-Request-ID"] == "in-flight-1"
    assert exit_code == 0

    # The relay stopped at a safe point: each outbox row is relayed exactly when its event was processed (a batch
    # is one transaction: relayed and marked, or neither).
    with engine.connect() as conn:
        torn = conn.execute(
            text(
                "SELECT count(*) FROM outbox o JOIN registration_event e ON e.event_id = o.payload->>'event_id' "
                "WHERE (o.relayed_at IS NULL) <> (e.processed_at IS NULL)"
            )
        ).scalar_one()
        relayed = conn.execute(text("SELECT count(*) FROM outbox WHERE relayed_at IS NOT NULL")).scalar_one()
    assert torn == 0
    assert relayed > 0

    # The server's log is JSON lines; the sign-in's access line carries its request id and no password.
    log_text = log_path.read_text(encoding="utf-8")
    lines = [orjson.loads(line) for line in log_text.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    access = [line for line in lines if line.get("request_id") == "in-flight-1" and line["logger"] == "gridgov.access"]
    assert access and access[0]["status"] == 200 and access[0]["route"] == "/v1/auth/token"
    assert PASSWORD not in log_text and PASSWORD.replace(" ", "+") not in log_text
    assert response.json()["access_token"] not in log_text
