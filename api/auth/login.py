"""api.auth.login: a sign-in attempt (throttled, verified in a small dedicated pool), for /v1/auth/token and /login.

Password verification (argon2) is deliberately slow, so a flood of sign-ins could take every core and every thread
of the server. Here it runs in at most `threads` dedicated threads (default 2, the cores); an attempt that cannot
get a slot within `wait_s` seconds is answered at once (503 with Retry-After) instead of queueing, and neither the
event loop nor the request thread pool is ever held by a verification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine

from api.auth import service, throttle

T = TypeVar("T")

# How long a sign-in waits for a verification slot before it is told to come back.
BUSY_RETRY_AFTER_S = 2


class LoginBusy(Exception):
    """Every verification slot stayed taken for the whole wait: answer 503 with Retry-After."""


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one attempt: the user (None: refused), or the seconds to wait when throttled."""

    user: service.UserRecord | None
    wait_s: float = 0.0
    session_token: str | None = None


class LoginGate:
    """At most `threads` verifications at once, in threads of their own; a caller waits at most `wait_s` for one."""

    def __init__(self, threads: int = 2, wait_s: float = 2.0) -> None:
        self.threads = threads
        self.wait_s = wait_s
        self._executor: ThreadPoolExecutor | None = None
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        found = self._slots.get(loop)
        if found is None:
            found = self._slots[loop] = asyncio.Semaphore(self.threads)
        return found

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` in a verification thread; LoginBusy when no slot frees within the wait."""
        slots = self._semaphore()
        try:
            await asyncio.wait_for(slots.acquire(), timeout=self.wait_s)
        except TimeoutError:
            raise LoginBusy from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads(), work)
        finally:
            slots.release()

    def _threads(self) -> ThreadPoolExecutor:
        """The verification threads, started on first use (again after `close`: an app's lifespan may run twice)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="gridgov-login")
        return self._executor

    def close(self) -> None:
        """Stop the verification threads (the application's shutdown)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def attempt(
    db: Engine,
    username: str,
    password: str,
    address: str | None,
    *,
    secret_key: str | None = None,
    session_hours: float | None = None,
) -> LoginResult:
    """Check the throttle, then the password; count a failure or reset the account's counter (one transaction).

    With `secret_key` and `session_hours` a browser session is opened for the user on success.
    """
    now = datetime.now(UTC)
    found = throttle.subjects(username, address)
    with db.connect() as conn:
        wait_s = throttle.seconds_blocked(conn, found, now)
    if wait_s > 0:
        return LoginResult(None, wait_s)
    with db.begin() as conn:
        user = service.authenticate(conn, username, password)
        if user is None:
            throttle.record_failure(conn, found, now)
            return LoginResult(None)
        throttle.record_success(conn, username)
        token = None
        if secret_key is not None and session_hours is not None:
            token = service.create_session(conn, secret_key, user, hours=session_hours)
    return LoginResult(user, session_token=token)
