"""gis.clock: the one "now" of the platform's rules (deadlines, overdue, day windows, load dates), settable.

Business time comes from here, never from `datetime.now()` or SQL `now()` inside a rule: tests set it to the
test city's day, a demo can be pinned with `GRIDGOV_CLOCK_START=2026-11-02T09:00+08:00` (the clock then runs on
from that instant), and a libfaketime run moves it together with PostgreSQL. Security times (token and session
expiry, rate limits) stay on the system clock: nobody should be able to extend a credential by moving this one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

CLOCK_START_VARIABLE = "GRIDGOV_CLOCK_START"


class Clock(Protocol):
    """Anything that tells the time as an aware datetime."""

    def now(self) -> datetime:
        """The current instant (timezone-aware)."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The machine's current instant, in UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class StartedClock:
    """A clock that read `start` when it was made and runs on at the machine's pace."""

    start: datetime
    _origin_s: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a clock's start needs a time zone (e.g. 2026-11-02T09:00+08:00)")

    def now(self) -> datetime:
        """`start` plus the time elapsed since the clock was made, in UTC."""
        return (self.start + timedelta(seconds=time.monotonic() - self._origin_s)).astimezone(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock that always says `at`."""

    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a fixed clock's instant needs a time zone")

    def now(self) -> datetime:
        """Always `at`, in UTC."""
        return self.at.astimezone(UTC)


def clock_from_environment() -> Clock:
    """`GRIDGOV_CLOCK_START` (ISO 8601 with an offset) when set, else the system clock."""
    value = os.environ.get(CLOCK_START_VARIABLE, "").strip()
    if not value:
        return SystemClock()
    try:
        return StartedClock(datetime.fromisoformat(value))
    except ValueError as exc:
        raise ValueError(f"{CLOCK_START_VARIABLE}={value!r}: {exc}") from exc


_current: Clock = clock_from_environment()


def now() -> datetime:
    """The platform's current instant (UTC) from the clock in use."""
    return _current.now()


def current() -> Clock:
    """The clock in use."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Use `clock` from now on; returns the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Use `clock` inside the block, then the previous clock again."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
