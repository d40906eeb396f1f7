"""Kill -9 of the server and of PostgreSQL (issue 17 §4): nothing acknowledged is lost, an unfinished step leaves
the previous state whole, and doing it again completes it.

This module starts a PostgreSQL cluster of its own (gis.cluster.LocalCluster, durable as the served one: fsync and
synchronous_commit on) in a temporary directory, loads the test city into it with `gridgov demo load`, and runs
`gridgov serve` as a subprocess: the shared test cluster is never killed. The kill points are drawn from a fixed
seed, so every run kills at the same places:

- the server, SIGKILL, while a client posts registration events one by one (twice);
- PostgreSQL (the postmaster and every backend, SIGKILL) during the same stream (twice);
- PostgreSQL while `gridgov grids apply` moves a community to a new grid version;
- PostgreSQL while `gridgov demo load` loads a city into an empty database.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from api.auth.service import create_api_key
from gis.cluster import LocalCluster, free_port
from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning import grid_versions
from supervision.uscc import uscc_check_char
from tests.support.city import a_door_with_workers
from tests.support.grid_areas import a_community_to_redesign
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

GRIDGOV = str(Path(sys.executable).with_name("gridgov"))
CITY = "faults_city"
SEED = 17
KILLS = random.Random(SEED)  # the fixed set of kill points: same draws, same order, every run
WAIT_S = 120.0  # how long a step may take before the test gives up (not a timing assertion: a hang guard)


@dataclass
class Faults:
    """The module's own cluster, its city database and the environment the gridgov commands run with."""

    base: Path
    cluster: LocalCluster
    url: str
    env: dict[str, str]
    intake_key: str = ""
    door: str = ""
    server: subprocess.Popen[bytes] | None = None
    port: int = 0
    kills: list[str] = field(default_factory=list)
    clean: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def database_env(self, database: str) -> dict[str, str]:
        return {**self.env, "GRIDGOV_DATABASE_URL": self.cluster.url(database)}


def wait_for(check: Any, what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except (httpx.HTTPError, psycopg.OperationalError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def kill_postgres(cluster: LocalCluster) -> None:
    """SIGKILL the postmaster and every process it started: a crash of the whole database server."""
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    for pid in [postmaster, *(int(c) for c in children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(postmaster), "the postmaster to die")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def restart_postgres(cluster: LocalCluster) -> None:
    """Start the killed cluster again (crash recovery replays the WAL); retried while the dead backends linger."""

    def started() -> bool:
        try:
            cluster.start()
        except Exception:  # old shared memory still attached: try again
            return False
        return True

    wait_for(started, "PostgreSQL to restart after the kill")


def writing_backend(cluster: LocalCluster, application: str) -> bool:
    """Whether a session of the command named `application` is inside a transaction that has written something."""
    with psycopg.connect(cluster.superuser_url(), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND backend_xid IS NOT NULL",
            (application,),
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="module")
def faults(artifacts_dir: Path) -> Iterator[Faults]:
    """The module's own durable cluster and city; what was killed where is left in test-artifacts/faults-kill9.txt."""
    base = Path(tempfile.mkdtemp(prefix="gridgov-faults-"))
    base.chmod(0o755)  # the postgres OS user must reach it when we run as root
    cluster = LocalCluster(data_dir=base / "pg", port=free_port(), secrets_dir=base / "state")
    cluster.start()
    env = {
        **os.environ,
        "GRIDGOV_SECRET_KEY": SECRET_KEY,
        "GRIDGOV_STATE_DIR": str(base / "state"),
        "GRIDGOV_PG_PORT": str(cluster.port),
    }
    found = Faults(base=base, cluster=cluster, url=cluster.url(CITY), env=env)
    try:
        cluster.create_database(CITY)
        load = subprocess.run(
            [GRIDGOV, "demo", "load", "--scale", "test", "--seed", "7"],
            env=found.database_env(CITY),
            capture_output=True,
            text=True,
        )
        assert load.returncode == 0, load.stderr[-2000:]
        found.clean = table_counts(found.url)
        engine = make_engine(DatabaseSettings(database_url=found.url))
        with engine.begin() as conn:
            found.intake_key = create_api_key(
                conn, SECRET_KEY, name="kill9-registry", rate_limited=False, permissions=["intake"]
            ).key
            found.door = a_door_with_workers(conn, min_workers=2).full_text
        engine.dispose()
        yield found
    finally:
        stop_server(found)
        (artifacts_dir / "faults-kill9.txt").write_text("".join(f"{kill}\n" for kill in found.kills))
        if cluster.running():
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def start_server(faults: Faults) -> None:
    faults.port = free_port()
    faults.server = subprocess.Popen(
        [GRIDGOV, "serve", "--port", str(faults.port)],
        env=faults.database_env(CITY),
        stdout=subprocess.DEVNULL,
        stderr=open(faults.base / "serve.log", "ab"),  # noqa: SIM115 - the child keeps it
    )
    wait_for(lambda: httpx.get(f"{faults.base_url}/health", timeout=5).status_code == 200, "gridgov serve")


def stop_server(faults: Faults) -> None:
    if faults.server is not None and faults.server.poll() is None:
        faults.server.terminate()
        try:
            faults.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            faults.server.kill()
            faults.server.wait()
    faults.server = None


@pytest.fixture(scope="module")
def served(faults: Faults) -> Iterator[Faults]:
    start_server(faults)
    yield faults
    stop_server(faults)


def credit_code(serial: int) -> str:
    first17 = f"91441900MC{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


def event(faults: Faults, serial: int, occurred_at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"kill9-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": f"东莞市断电测试商行{serial}号",
        "address": faults.door,
        "business_scope": "烟草制品零售",
        "occurred_at": occurred_at.isoformat(),
    }


def server_now(faults: Faults) -> datetime:
    """The server's clock (its Date header): the events are an hour old by the server's clock, not the test's."""
    answer = httpx.get(f"{faults.base_url}/health", timeout=10)
    return parsedate_to_datetime(answer.headers["date"])


@dataclass
class Stream:
    """A client posting events one by one until told to stop or refused; what was acknowledged (2xx)."""

    faults: Faults
    serials: range
    occurred_at: datetime
    acked: list[int] = field(default_factory=list)
    attempted: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"X-API-Key": self.faults.intake_key}
        with httpx.Client(base_url=self.faults.base_url, headers=headers, timeout=30) as client:
            for serial in self.serials:
                if self.stop.is_set():
                    return
                self.attempted.append(serial)
                try:
                    answer = client.post("/v1/registrations", json=event(self.faults, serial, self.occurred_at))
                except httpx.HTTPError:
                    continue  # not acknowledged: the server is gone (the client goes on until stopped)
                if 200 <= answer.status_code < 300:
                    self.acked.append(serial)


def stream_until_killed(faults: Faults, serials: range, kill: Any, what: str) -> Stream:
    """Post `serials` one by one; after a seeded number of acknowledgements, `kill`; stop the stream soon after."""
    stream = Stream(faults, serials, server_now(faults) - timedelta(hours=1))
    at = KILLS.randint(3, len(serials) // 2)
    thread = threading.Thread(target=stream.run, name="kill9-stream")
    thread.start()
    wait_for(lambda: len(stream.acked) >= at or not thread.is_alive(), f"{at} acknowledged events")
    kill()
    faults.kills.append(f"{what} after {len(stream.acked)} acknowledged events")
    wait_for(lambda: len(stream.attempted) >= len(stream.acked) + 3 or not thread.is_alive(), "posts after the kill")
    stream.stop.set()
    thread.join()
    return stream


def check_events_whole(faults: Faults, stream: Stream) -> None:
    """Every acknowledged event is stored and processed into tasks (by the request or the relay), none twice;
    sending every event again completes the set, each acknowledged one answered as a duplicate."""
    headers = {"X-API-Key": faults.intake_key}
    with httpx.Client(base_url=faults.base_url, headers=headers, timeout=30) as client:
        for serial in stream.acked:
            status = wait_for(
                lambda serial=serial: _processed(client.get(f"/v1/registrations/kill9-{serial}")),
                f"event kill9-{serial} processed by the relay",
            )
            assert status["task_ids"] or status["review_id"], status
        for serial in stream.serials:
            answer = client.post("/v1/registrations", json=event(faults, serial, stream.occurred_at))
            assert answer.status_code in (200, 201), answer.text
            if serial in stream.acked:
                assert answer.status_code == 200 and answer.json()["duplicate"] is True, answer.text
        for serial in stream.serials:
            status = wait_for(
                lambda serial=serial: _processed(client.get(f"/v1/registrations/kill9-{serial}")),
                f"event kill9-{serial} processed",
            )
            assert status["task_ids"] or status["review_id"], status
    engine = make_engine(DatabaseSettings(database_url=faults.url))
    with engine.connect() as conn:
        codes = [credit_code(serial) for serial in stream.serials]
        events = conn.execute(
            text("SELECT uscc, count(*) FROM registration_event WHERE uscc = ANY(:codes) GROUP BY uscc"),
            {"codes": codes},
        ).all()
        assert sorted(events) == sorted((code, 1) for code in codes)
        # One task per duty and entity: a replayed or relayed event created nothing twice.
        doubled = conn.execute(
            text(
                "SELECT entity_uscc, duty, count(*) FROM task WHERE entity_uscc = ANY(:codes) "
                "GROUP BY entity_uscc, duty HAVING count(*) > 1"
            ),
            {"codes": codes},
        ).all()
        assert doubled == []
        entities = conn.execute(text("SELECT count(*) FROM entity WHERE uscc = ANY(:codes)"), {"codes": codes})
        assert entities.scalar_one() == len(codes)
    engine.dispose()


def _processed(answer: httpx.Response) -> dict[str, Any] | None:
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    return body if body["processed_at"] is not None else None


@pytest.mark.parametrize("round_", [1, 2])
def test_kill_9_of_the_server_during_intake_loses_nothing_acknowledged(served: Faults, round_: int) -> None:
    faults = served
    serials = range(1000 * round_, 1000 * round_ + 30)

    def kill_server() -> None:
        assert faults.server is not None
        faults.server.send_signal(signal.SIGKILL)
        faults.server.wait()

    stream = stream_until_killed(faults, serials, kill_server, f"server SIGKILL (round {round_})")
    assert stream.acked, "nothing was acknowledged before the kill"
    start_server(faults)
    check_events_whole(faults, stream)


@pytest.mark.parametrize("round_", [1, 2])
def test_kill_9_of_postgres_during_intake_loses_nothing_acknowledged(served: Faults, round_: int) -> None:
    faults = served
    serials = range(5000 + 1000 * round_, 5000 + 1000 * round_ + 30)
    stream = stream_until_killed(
        faults, serials, lambda: kill_postgres(faults.cluster), f"PostgreSQL SIGKILL during intake (round {round_})"
    )
    restart_postgres(faults.cluster)
    # The server stayed up: its pool drops the dead connections and reconnects.
    wait_for(lambda: httpx.get(f"{faults.base_url}/v1/registrations/kill9-{serials[0]}",
                               headers={"X-API-Key": faults.intake_key}, timeout=10).status_code
             in (200, 404), "the server to reach the restarted database")  # fmt: skip
    check_events_whole(faults, stream)


def grid_state(conn: Any, community: str) -> dict[str, Any]:
    """What a grid-version apply changes in a community: versions, the grids of tasks, workers and addresses."""
    return {
        "versions": conn.execute(text("SELECT id, status FROM grid_version ORDER BY id")).all(),
        "tasks": conn.execute(
            text("SELECT id, grid_code, worker_id, status FROM task WHERE left(grid_code, 12) = :c ORDER BY id"),
            {"c": community},
        ).all(),
        "workers": conn.execute(
            text("SELECT id, grid_code, active FROM worker WHERE left(grid_code, 12) = :c ORDER BY id"), {"c": community}
        ).all(),
        "addresses": conn.execute(
            text("SELECT grid_code, count(*) FROM address WHERE community_code = :c GROUP BY grid_code ORDER BY 1"),
            {"c": community},
        ).all(),
    }  # fmt: skip


def test_kill_9_of_postgres_during_a_grid_version_apply_leaves_one_whole_version(faults: Faults) -> None:
    if not faults.cluster.running():
        restart_postgres(faults.cluster)
    engine = make_engine(DatabaseSettings(database_url=faults.url))
    with engine.begin() as conn:
        area = a_community_to_redesign(conn)
        draft = grid_versions.draw(conn, community=area.community_code, locked=[area.lock], actor_name="断电测试")
    with engine.connect() as conn:
        before = grid_state(conn, area.community_code)
    engine.dispose()

    apply = subprocess.Popen(
        [GRIDGOV, "grids", "apply", str(draft.id)],
        env={**faults.database_env(CITY), "PGAPPNAME": "kill9-apply"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: writing_backend(faults.cluster, "kill9-apply") or apply.poll() is not None, "the apply to write")
    time.sleep(KILLS.choice([0.0, 0.01, 0.05, 0.2]))
    kill_postgres(faults.cluster)
    apply.communicate(timeout=WAIT_S)
    restart_postgres(faults.cluster)
    faults.kills.append(f"PostgreSQL SIGKILL during grids apply (apply exit {apply.returncode})")

    engine = make_engine(DatabaseSettings(database_url=faults.url))
    with engine.connect() as conn:
        after = grid_state(conn, area.community_code)
        status = conn.execute(text("SELECT status FROM grid_version WHERE id = :v"), {"v": draft.id}).scalar_one()
    engine.dispose()
    if status == "draft":
        assert apply.returncode != 0
        assert after == before  # wholly the old version: nothing of the apply is left
        again = subprocess.run(
            [GRIDGOV, "grids", "apply", str(draft.id)], env=faults.database_env(CITY), capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr[-2000:]
    else:
        assert status == "active"  # the commit came first: wholly the new version
    engine = make_engine(DatabaseSettings(database_url=faults.url))
    with engine.connect() as conn:
        # Every open task and active worker of the community lies in a grid of the version now active.
        stray = conn.execute(
            text(
                """
                SELECT count(*) FROM task t
                WHERE t.status NOT IN ('closed', 'cancelled') AND t.grid_code IN (
                    SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status <> 'active')
                  AND t.grid_code NOT IN (
                    SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active')
                """
            )
        ).scalar_one()
        assert stray == 0
        assert conn.execute(text("SELECT status FROM grid_version WHERE id = :v"), {"v": draft.id}).scalar_one() == (
            "active"
        )
    engine.dispose()


def table_counts(url: str) -> dict[str, int]:
    engine = make_engine(DatabaseSettings(database_url=url))
    with engine.connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 - fixed names
            for table in ("town", "community", "grid", "address", "entity", "worker", "clue", "grid_version")
        }
    engine.dispose()
    return counts


def test_kill_9_of_postgres_during_a_demo_load_keeps_the_previous_state_and_a_rerun_completes(
    faults: Faults,
) -> None:
    if not faults.cluster.running():
        restart_postgres(faults.cluster)
    target = "faults_demo"
    faults.cluster.create_database(target)
    url = faults.cluster.url(target)
    # The previous state: the schema at head and no city.
    migrated = subprocess.run([GRIDGOV, "db", "migrate"], env=faults.database_env(target), capture_output=True)
    empty = table_counts(url) if migrated.returncode == 0 else None

    load = subprocess.Popen(
        [GRIDGOV, "demo", "load", "--scale", "test", "--seed", "7"],
        env={**faults.database_env(target), "PGAPPNAME": "kill9-demo"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: writing_backend(faults.cluster, "kill9-demo") or load.poll() is not None, "the demo load to write")
    time.sleep(KILLS.choice([0.0, 0.5, 1.0, 2.0]))
    kill_postgres(faults.cluster)
    _out, err = load.communicate(timeout=WAIT_S)
    restart_postgres(faults.cluster)
    faults.kills.append(f"PostgreSQL SIGKILL during demo load (load exit {load.returncode})")
    assert load.returncode != 0, "the load finished before the kill"
    assert err.strip(), "the interrupted load says nothing"
    if empty is not None:
        assert table_counts(url) == empty  # the previous state, whole
    rerun = subprocess.run(
        [GRIDGOV, "demo", "load", "--scale", "test", "--seed", "7"],
        env=faults.database_env(target),
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # The same as a clean load of the same city (the module's city, loaded by the same command).
    assert table_counts(url) == faults.clean
