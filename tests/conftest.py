"""Test fixtures: one throwaway PostGIS cluster per session, a template city, a fresh database per module."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from gis import clock
from gis.cluster import LocalCluster, free_port
from gis.database import make_engine
from gis.settings import DatabaseSettings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TEMPLATE = "gridgov_template"
# The test city is generated for this day, and the tests' clock starts on it: no test reads the machine's date,
# time of day or time zone (a faketime run of the whole suite proves it).
TEST_LOAD_DATE = date(2026, 12, 1)
TEST_CLOCK_START = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def pytest_configure(config: pytest.Config) -> None:
    """Set the platform's clock before test modules are imported (some compute their instants at import).

    Under `tools/run-at` (GRIDGOV_TEST_MACHINE_TIME), the machine's clock as Python sees it is moved too, so that
    any code that still read the wall clock would answer differently and fail.
    """
    machine_time = os.environ.get("GRIDGOV_TEST_MACHINE_TIME")
    if machine_time:
        import time_machine

        time_machine.travel(datetime.fromisoformat(machine_time), tick=True).start()
    clock.set_clock(clock.StartedClock(TEST_CLOCK_START))


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A PostGIS cluster of our own for this test session (never the developer's)."""
    external = os.environ.get("GRIDGOV_TEST_DATABASE_ADMIN_URL")
    if external:
        pytest.fail("external test servers are not supported; unset GRIDGOV_TEST_DATABASE_ADMIN_URL")
    base = Path(tempfile.mkdtemp(prefix="gridgov-test-pg-"))
    base.chmod(0o755)  # the postgres OS user must reach it when we run as root
    # Throwaway: this cluster alone runs without fsync, synchronous_commit and full_page_writes (a crash loses
    # nothing that matters); the served cluster keeps PostgreSQL's durable defaults.
    cluster = LocalCluster(data_dir=base / "pg", port=free_port(), durable=False)
    try:
        cluster.start()
    except Exception as exc:
        pytest.fail(f"cannot start the PostGIS test cluster: {exc}")
    print(f"\ntest cluster on port {cluster.port}: durability off (fsync, synchronous_commit, full_page_writes)")
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_city(pg_cluster: LocalCluster) -> str:
    """A template database at schema head holding the small test city (built once per session)."""
    from gis import migrate
    from synthetic.loader import load_demo

    cluster = pg_cluster
    if cluster.create_database(TEMPLATE):
        settings = DatabaseSettings(database_url=cluster.url(TEMPLATE))
        migrate.upgrade(settings)
        load_demo(settings, scale="test", seed=7, force=True, progress=False, load_date=TEST_LOAD_DATE)
    return TEMPLATE


@pytest.fixture(scope="module")
def db(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A fresh database for this test module, cloned from the template city."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    yield settings
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def engine(db: DatabaseSettings) -> Iterator[Engine]:
    """An engine on this module's database."""
    result = make_engine(db)
    yield result
    result.dispose()


@pytest.fixture(scope="module")
def empty_db(pg_cluster: LocalCluster) -> Iterator[DatabaseSettings]:
    """A fresh database at schema head with no data."""
    from gis import migrate

    name = f"e_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    migrate.upgrade(settings)
    yield settings
    pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and reports for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a 2-worker, process-based Dask LocalCluster for this session (processes, not threads: an
    in-process cluster would hide pickling faults). Tests that kill a worker start a cluster of their own."""
    import logging

    from distributed import LocalCluster as DaskCluster

    with DaskCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address
