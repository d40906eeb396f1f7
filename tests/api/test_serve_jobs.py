"""`gridgov serve` runs the outbox relay and the scheduled jobs in-process: accepted events never wait for a person."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings
from supervision.events import parse_event
from supervision.outbox import accept_events
from supervision.uscc import uscc_check_char

pytestmark = pytest.mark.db


def test_an_event_left_in_the_outbox_is_relayed_by_the_running_server(
    db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        door = conn.execute(
            text("SELECT full_text, grid_code FROM address WHERE level = 'door' ORDER BY id LIMIT 1")
        ).one()
        first17 = "92441900MA0000001"
        # Accepted and committed, as by a process that was killed before it could relay.
        accept_events(
            conn,
            [
                parse_event(
                    {
                        "event_id": "orphan-1",
                        "kind": "new",
                        "uscc": first17 + uscc_check_char(first17),
                        "name": "东莞市某某小吃店",
                        "address": door.full_text,
                        "business_scope": "小餐饮服务",
                        "occurred_at": (clock.now() - timedelta(minutes=1)).isoformat(),
                    }
                )
            ],
        )
    settings = ServerSettings(secret_key="j" * 40, state_dir=tmp_path_factory.mktemp("state"))
    with TestClient(create_app(db_settings=db, server_settings=settings, run_jobs=True)):
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                grids = (
                    conn.execute(text("SELECT DISTINCT grid_code FROM task WHERE event_id = 'orphan-1'"))
                    .scalars()
                    .all()
                )
                warnings_job = conn.execute(
                    text("SELECT count(*) FROM job_run WHERE job = 'deadline_warnings'")
                ).scalar()
            if grids and warnings_job:
                break
            assert time.monotonic() < deadline, "the background relay did not process the event"
            time.sleep(0.3)
    with engine.connect() as conn:
        relayed = conn.execute(
            text("SELECT relayed_at IS NOT NULL FROM outbox WHERE payload->>'event_id' = 'orphan-1'")
        ).scalar_one()
    engine.dispose()
    assert grids == [door.grid_code] and relayed


def test_the_served_platform_runs_every_planning_job_in_the_order_of_the_morning() -> None:
    from planning.jobs import PLANNING_JOBS

    names = [job.name for job in PLANNING_JOBS]
    assert names == ["credit_recompute", "inspection_publish", "workload_refresh", "daily_assignment"]
    times = [job.at for job in PLANNING_JOBS]
    assert times == sorted(times)
