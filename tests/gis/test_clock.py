"""The platform's "now" comes from one clock that tests and demos can set, and that always knows its time zone."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from gis import clock

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_started_clock_begins_at_its_instant_and_runs_on() -> None:
    start = datetime(2027, 2, 10, 10, 0, tzinfo=SHANGHAI)
    started = clock.StartedClock(start)
    first, second = started.now(), started.now()
    assert first.tzinfo is UTC and start <= first <= second < start + timedelta(seconds=5)


def test_a_fixed_clock_always_says_its_instant_and_using_restores_the_previous_clock() -> None:
    before = clock.current()
    at = datetime(2028, 2, 29, 0, 1, tzinfo=SHANGHAI)
    with clock.using(clock.FixedClock(at)):
        assert clock.now() == at and clock.now().astimezone(SHANGHAI).date().isoformat() == "2028-02-29"
    assert clock.current() is before


def test_a_clock_without_a_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="time zone"):
        clock.StartedClock(datetime(2027, 6, 30, 23, 59))
    monkeypatch.setenv(clock.CLOCK_START_VARIABLE, "2027-06-30T23:59")
    with pytest.raises(ValueError, match="GRIDGOV_CLOCK_START"):
        clock.clock_from_environment()
    monkeypatch.setenv(clock.CLOCK_START_VARIABLE, "2027-06-30T23:59+08:00")
    assert clock.clock_from_environment().now() >= datetime(2027, 6, 30, 15, 59, tzinfo=UTC)
    monkeypatch.delenv(clock.CLOCK_START_VARIABLE)
    assert isinstance(clock.clock_from_environment(), clock.SystemClock)


def test_the_test_suite_runs_on_the_test_citys_day_not_the_machines() -> None:
    today = clock.now().astimezone(SHANGHAI).date()
    assert today.isoformat() == "2026-12-01"


def test_the_database_and_python_read_the_same_machine_clock_even_when_a_run_moves_it(engine: Engine) -> None:
    # Under tools/run-at both are moved to the run's instant; a run whose database kept the real date proves nothing.
    with engine.connect() as conn:
        database_now = conn.execute(text("SELECT now()")).scalar_one()
    python_now = datetime.now(UTC)
    assert abs(database_now - python_now) < timedelta(minutes=1)
    moved_to = os.environ.get("GRIDGOV_TEST_MACHINE_TIME")
    if moved_to:
        assert timedelta(0) <= python_now - datetime.fromisoformat(moved_to) < timedelta(hours=2)
