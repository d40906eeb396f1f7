"""The platform's "now" comes from one clock that tests and demos can set, and that always knows its time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

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
