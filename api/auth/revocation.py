"""api.auth.revocation: the per-process cache of checked API keys, emptied at once by PostgreSQL LISTEN/NOTIFY.

Geocoding is the hot path (a search box's key on every keystroke): a key checked once is kept in memory, so the
request is answered on the event loop without a database round trip. Revoking or changing a key (`gridgov apikey
revoke|grant`) sends `NOTIFY gridgov_auth` in its transaction; a listener thread in every process empties its cache
when the notice arrives (milliseconds after the commit), and on every (re)connection, since notices sent while it
was away are lost.

The cache fails closed: it is trusted only while its listener has polled within `stale_after_s` seconds (it polls
every second). When the listener is down (the database restarting, a network cut), every key is checked against the
database on every request until the listener is back. Accounts are never cached: a bearer token's and a session's
user row is read on every request (a few per second from the dashboards).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from api.auth.service import ApiKeyRecord

log = logging.getLogger(__name__)

CHANNEL = "gridgov_auth"


class KeyCache:
    """Checked keys by digest, for at most `ttl_s` seconds, and only while the listener is live."""

    def __init__(
        self, ttl_s: float = 60.0, stale_after_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ApiKeyRecord, float]] = {}
        self._alive_at = float("-inf")
        # Bumped by every invalidation: a lookup that started before one must not store what it read.
        self.generation = 0

    def live(self) -> bool:
        """Whether the listener polled recently enough for the cache to be trusted."""
        return self._clock() - self._alive_at <= self.stale_after_s

    def get(self, digest: str) -> ApiKeyRecord | None:
        """The cached key, or None (not cached, expired, or the listener is not live: check the database)."""
        if not self.live():
            return None
        with self._lock:
            found = self._entries.get(digest)
        if found is None or self._clock() - found[1] > self.ttl_s:
            return None
        return found[0]

    def put(self, digest: str, record: ApiKeyRecord, generation: int) -> None:
        """Keep a key read while the cache was at `generation` (dropped if an invalidation came meanwhile)."""
        with self._lock:
            if generation == self.generation and self.live():
                self._entries[digest] = (record, self._clock())

    def clear(self) -> None:
        """Forget every key (a key was revoked or changed somewhere, or the listener reconnected)."""
        with self._lock:
            self._entries.clear()
            self.generation += 1

    def mark_alive(self) -> None:
        self._alive_at = self._clock()

    def mark_dead(self) -> None:
        self._alive_at = float("-inf")
        self.clear()


class RevocationListener:
    """A daemon thread that LISTENs on `gridgov_auth` and empties the cache on each notice; reconnects on failure."""

    def __init__(self, conninfo: str, cache: KeyCache, poll_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self._cache = cache
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gridgov-auth-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._cache.mark_dead()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._cache.clear()  # notices sent while we were away are lost: start empty
                    while not self._stop.is_set():
                        self._cache.mark_alive()
                        for _ in conn.notifies(timeout=self._poll_s, stop_after=1):
                            self._cache.clear()
            except Exception as exc:  # any failure: distrust the cache, and retry shortly
                self._cache.mark_dead()
                log.warning("auth revocation listener lost its connection (%s); keys are checked per request", exc)
                self._stop.wait(1.0)
