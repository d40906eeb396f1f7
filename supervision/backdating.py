"""supervision.backdating: the limits on a time a user supplies with a write (a clue's report time, a task move's).

A worker may be late to report what they saw, and a phone's clock may run a little fast, but a time far in the past
would rewrite figures already published (a clue "reported" in 2019 counts in 2019's statistics), and a time in the
future would dodge deadlines. Every user-supplied time of a write is checked here against the platform clock
(`gis.clock`, so tests at a fake instant hold): not before `now - floor`, not after `now + FUTURE_SKEW`; otherwise
InvalidInput (422) naming the field. Reads (`from`/`to` filters) are not writes and are not checked here.

The floor is a setting: `GRIDGOV_BACKDATE_DAYS` (days, default 7) read at each check.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from gis import clock
from supervision.errors import InvalidInput

BACKDATE_VARIABLE = "GRIDGOV_BACKDATE_DAYS"
DEFAULT_BACKDATE = timedelta(days=7)
# A client clock this far ahead of ours is a slightly fast phone; further is an error.
FUTURE_SKEW = timedelta(minutes=5)


def backdate_floor() -> timedelta:
    """How far back a user-supplied time may lie: GRIDGOV_BACKDATE_DAYS days (default 7; malformed → default)."""
    raw = os.environ.get(BACKDATE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_BACKDATE
    try:
        days = float(raw)
    except ValueError:
        return DEFAULT_BACKDATE
    if not 0 < days <= 3660:
        return DEFAULT_BACKDATE
    return timedelta(days=days)


def check_supplied_time(value: datetime, field: str, *, now: datetime | None = None) -> datetime:
    """`value` itself when it lies within [now - floor, now + FUTURE_SKEW]; InvalidInput (422) naming `field`."""
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone", field=field)
    now = now or clock.now()
    if value > now + FUTURE_SKEW:
        raise InvalidInput(f"{field} ({value.isoformat()}) is in the future", field=field)
    floor = backdate_floor()
    if value < now - floor:
        raise InvalidInput(
            f"{field} ({value.isoformat()}) is more than {floor.days or floor} days in the past; "
            "a late report carries the time it is sent",
            field=field,
        )
    return value
