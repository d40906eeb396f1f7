"""supervision.jobs: the background work `gridgov serve` runs in-process — outbox relay, warnings, the campaign.

One daemon thread: it builds the address index at start, then relays the outbox every `relay_interval_s` (and at once when woken after an intake),
raises deadline warnings every `warning_interval_s`, and once a day in March–June runs the annual-report
campaign. Each run of a periodic job is logged in `job_run`. Failures are logged and retried on the next tick;
they never stop the loop.

Layers above supervision add their own once-a-day jobs (`DailyJob`, e.g. planning's morning assignment of tasks)
through the caller: supervision may not import them. A daily job runs at the first tick at or after its local
time (Asia/Shanghai, on the platform's clock), on working days only unless it says otherwise, once per day.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time

from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from supervision.assignment import assign_waiting
from supervision.calendar import SHANGHAI, default_calendar
from supervision.campaign import in_campaign_window, run_annual_report_campaign
from supervision.deadlines import raise_warnings, recompute_provisional
from supervision.outbox import RELAY_BATCH, relay_pending

log = logging.getLogger(__name__)


def log_job(conn: Connection, job: str, started_at: datetime, result: dict[str, object]) -> None:
    """Record one run of a periodic job."""
    conn.execute(
        text(
            "INSERT INTO job_run (job, started_at, finished_at, result) "
            "VALUES (:job, :started, :finished, CAST(:result AS jsonb))"
        ),
        {"job": job, "started": started_at, "finished": clock.now(), "result": json.dumps(result)},
    )


def campaign_ran_today(conn: Connection, today: datetime) -> bool:
    """Whether the campaign job has already run on this Shanghai day."""
    return (
        conn.execute(
            text(
                "SELECT 1 FROM job_run WHERE job = 'annual_report_campaign' "
                "AND (started_at AT TIME ZONE 'Asia/Shanghai')::date = :day LIMIT 1"
            ),
            {"day": today.astimezone(SHANGHAI).date()},
        ).first()
        is not None
    )


@dataclass(frozen=True)
class DailyJob:
    """A job run once a day from a local time on: its `job_run` name, the time, and what it does (in one transaction).

    `run(conn, day, moment)` gets the local day and the instant of the tick and returns what the log records.
    """

    name: str
    at: clock_time
    run: Callable[[Connection, date, datetime], dict[str, object]]
    working_days_only: bool = True


def job_ran_on(conn: Connection, job: str, day: date) -> bool:
    """Whether a job has already run on this Shanghai day (by its job_run log)."""
    return (
        conn.execute(
            text(
                "SELECT 1 FROM job_run WHERE job = :job "
                "AND (started_at AT TIME ZONE 'Asia/Shanghai')::date = :day LIMIT 1"
            ),
            {"job": job, "day": day},
        ).first()
        is not None
    )


def run_daily_jobs(
    engine: Engine,
    jobs: Sequence[DailyJob],
    *,
    now: datetime | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, object]:
    """Run each daily job that is due at this tick and has not run today; job name → what it did.

    Each job runs in its own transaction, its log row with it; a failing job is logged and tried again next tick,
    and never keeps the others from running.
    """
    moment = now or clock.now()
    local = moment.astimezone(SHANGHAI)
    out: dict[str, object] = {}
    for job in jobs:
        if should_stop():  # between two jobs, never inside one
            break
        if local.time() < job.at or (job.working_days_only and not default_calendar().is_working_day(local.date())):
            continue
        try:
            with engine.begin() as conn:
                # One run per day even with two schedulers: the lock holds until this transaction ends.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:job))"), {"job": job.name})
                if job_ran_on(conn, job.name, local.date()):
                    continue
                result = job.run(conn, local.date(), moment)
                log_job(conn, job.name, moment, result)
                out[job.name] = result
        except Exception:
            log.exception("daily job %s failed; retrying on the next tick", job.name)
    return out


def run_periodic(
    engine: Engine,
    *,
    now: datetime | None = None,
    daily_jobs: Sequence[DailyJob] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, object]:
    """One pass of the periodic jobs: provisional deadlines, warnings and the grids' waiting queues always; the
    campaign once a day inside its window; then the callers' daily jobs that are due."""
    moment = now or clock.now()
    out: dict[str, object] = {}
    with engine.begin() as conn:
        out["recomputed"] = len(recompute_provisional(conn, now=moment))
        out["warnings"] = raise_warnings(conn, now=moment)
        out["assigned_from_queues"] = len(assign_waiting(conn, at=moment))
        log_job(
            conn, "deadline_warnings", moment,
            {**out["warnings"], "recomputed": out["recomputed"], "assigned_from_queues": out["assigned_from_queues"]},  # type: ignore[dict-item]
        )  # fmt: skip
    local = moment.astimezone(SHANGHAI)
    if should_stop():  # a stopping server: the rest waits for the next start (each step is its own transaction)
        return out
    if in_campaign_window(local.date()):
        with engine.begin() as conn:
            if not campaign_ran_today(conn, moment):
                report = run_annual_report_campaign(conn, year=local.year, at=moment)
                out["campaign"] = {"year": report.year, "unfiled": report.unfiled, "added": report.added}
                log_job(conn, "annual_report_campaign", moment, out["campaign"])  # type: ignore[arg-type]
    if daily_jobs and not should_stop():
        out.update(run_daily_jobs(engine, daily_jobs, now=moment, should_stop=should_stop))
    return out


class BackgroundJobs:
    """The in-process scheduler: outbox relay plus the periodic jobs, on one daemon thread."""

    def __init__(
        self,
        engine: Engine,
        geocoder: Callable[[], Geocoder],
        *,
        relay_interval_s: float = 1.0,
        warning_interval_s: float = 300.0,
        daily_jobs: Sequence[DailyJob] = (),
    ) -> None:
        self._engine = engine
        self._daily_jobs = tuple(daily_jobs)
        self._geocoder = geocoder
        self._relay_interval_s = relay_interval_s
        self._warning_interval_s = warning_interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.relayed = 0

    def start(self) -> None:
        """Start the loop (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gridgov-jobs", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Relay now (after an intake committed)."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loop at its next safe point and wait for it.

        Each unit of work (a relay batch, the periodic jobs, one daily job) is one transaction: the loop checks the
        stop between units, so the unit running when the stop comes commits whole. Should it outlast `timeout_s`,
        the process exits with it open and PostgreSQL rolls it back whole.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _relay(self) -> None:
        """Relay the outbox a batch (one transaction) at a time, stopping between two batches when asked to."""
        while not self._stop.is_set():
            count = relay_pending(self._engine, self._geocoder, limit=RELAY_BATCH)
            self.relayed += count
            if count < RELAY_BATCH:
                break

    def _loop(self) -> None:
        # Build the address index now, so that the first registration after a start is not the one that waits.
        try:
            self._geocoder()
        except Exception:
            log.exception("address index build failed; the relay builds it when an event arrives")
        next_periodic = 0.0
        while not self._stop.is_set():
            try:
                self._relay()
            except Exception:
                log.exception("outbox relay failed; retrying")
            if self._stop.is_set():
                break
            if time.monotonic() >= next_periodic:
                next_periodic = time.monotonic() + self._warning_interval_s
                try:
                    run_periodic(self._engine, daily_jobs=self._daily_jobs, should_stop=self._stop.is_set)
                except Exception:
                    log.exception("periodic jobs failed; retrying")
            self._wake.wait(self._relay_interval_s)
            self._wake.clear()
