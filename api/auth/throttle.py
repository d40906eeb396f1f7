"""api.auth.throttle: failed sign-ins per account and per client address, with exponential backoff, in PostgreSQL.

The state lives in the `login_throttle` table so that every worker process sees it. Each subject (`user:<name>`,
`addr:<ip>`) gets a number of free failures per window (15 minutes); past them, each further failure refuses the
subject's attempts for a wait that doubles (30 s, 60 s, … capped at 15 minutes). Attempts refused while waiting are
not verified and do not count, so an attacker cannot lock an account for good: the lock is a delay, and a correct
password after the wait (from any address) signs in and resets the account's counter.

The client address is the socket peer; `X-Forwarded-For` is honoured only when the peer is one of
`GRIDGOV_TRUSTED_PROXIES`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text
from starlette.requests import Request

WINDOW = timedelta(minutes=15)
FIRST_WAIT_S = 30.0
MAX_WAIT_S = 15 * 60.0
# Free failures in a window: an account's owner mistypes a few times; an address may be an office behind one NAT.
ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20


@dataclass(frozen=True)
class Subject:
    """One throttled thing: its key in the table and its free failures per window."""

    key: str
    free_failures: int


def subjects(username: str, address: str | None) -> list[Subject]:
    """The account's subject, and the client address's when known."""
    found = [Subject(f"user:{username.strip().casefold()}", ACCOUNT_FREE_FAILURES)]
    if address:
        found.append(Subject(f"addr:{address}", ADDRESS_FREE_FAILURES))
    return found


def wait_after(failures: int, free_failures: int) -> float:
    """The wait after the `failures`-th failure of a window (0 while free)."""
    over = failures - free_failures
    if over <= 0:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(over - 1, 30))


def seconds_blocked(conn: Connection, found: Iterable[Subject], now: datetime) -> float:
    """How long the longest block of these subjects still lasts (0: the attempt may go on)."""
    keys = [subject.key for subject in found]
    until = conn.execute(
        text("SELECT max(blocked_until) FROM login_throttle WHERE subject = ANY(:keys) AND blocked_until > :now"),
        {"keys": keys, "now": now},
    ).scalar()
    if until is None:
        return 0.0
    return max(1.0, math.ceil((until - now).total_seconds()))


_RECORD_FAILURE = text(
    "INSERT INTO login_throttle AS t (subject, failures, window_start, blocked_until) "
    "VALUES (:subject, 1, :now, NULL) "
    "ON CONFLICT (subject) DO UPDATE SET "
    "failures = CASE WHEN t.window_start <= :window_floor THEN 1 ELSE t.failures + 1 END, "
    "window_start = CASE WHEN t.window_start <= :window_floor THEN :now ELSE t.window_start END "
    "RETURNING failures"
)


def record_failure(conn: Connection, found: Iterable[Subject], now: datetime) -> None:
    """Count one failure for each subject, and block those past their free failures (the wait doubles each time)."""
    for subject in found:
        failures = conn.execute(
            _RECORD_FAILURE, {"subject": subject.key, "now": now, "window_floor": now - WINDOW}
        ).scalar_one()
        wait_s = wait_after(int(failures), subject.free_failures)
        if wait_s > 0:
            conn.execute(
                text("UPDATE login_throttle SET blocked_until = :until WHERE subject = :subject"),
                {"subject": subject.key, "until": now + timedelta(seconds=wait_s)},
            )


def record_success(conn: Connection, username: str) -> None:
    """A correct password resets the account's counter (the address's stays: it may be guessing other accounts)."""
    conn.execute(
        text("DELETE FROM login_throttle WHERE subject = :subject"), {"subject": subjects(username, None)[0].key}
    )


def client_address(request: Request, trusted_proxies: Iterable[str]) -> str | None:
    """The client's address: the socket peer, or the last untrusted hop of X-Forwarded-For when the peer is trusted."""
    peer = request.client.host if request.client else None
    networks = _networks(trusted_proxies)
    if peer is None or not _in(peer, networks):
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if not _in(hop, networks):
            return hop if _is_ip(hop) else peer
    return peer


def _networks(values: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            continue
    return found


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)
