"""supervision.jobs: the background work `gridgov serve` runs in-process — outbox relay, warnings, the campaign.

One daemon thread: it builds the address index at start, then relays the outbox every `relay_interval_s` (and at once when woken after an intake),
raises deadline warnings every `warning_interval_s`, and once a day in March–June runs the annual-report
campaign. Each run of a periodic job is logged in `job_run`. Failures are logged and retried on the next tick;
they never stop the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from supervision.assignment import assign_waiting
from supervision.calendar import SHANGHAI
from supervision.campaign import in_campaign_window, run_annual_report_campaign
from supervision.deadlines import raise_warnings, recompute_provisional
from supervision.outbox import relay_pending

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


def run_periodic(engine: Engine, *, now: datetime | None = None) -> dict[str, object]:
    """One pass of the periodic jobs: provisional deadlines, warnings and the grids' waiting queues always; the
    campaign once a day inside its window."""
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
    if in_campaign_window(local.date()):
        with engine.begin() as conn:
            if not campaign_ran_today(conn, moment):
                report = run_annual_report_campaign(conn, year=local.year, at=moment)
                out["campaign"] = {"year": report.year, "unfiled": report.unfiled, "added": report.added}
                log_job(conn, "annual_report_campaign", moment, out["campaign"])  # type: ignore[arg-type]
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
    ) -> None:
        self._engine = engine
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

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        # Build the address index now, so that the first registration after a start is not the one that waits.
        try:
            self._geocoder()
        except Exception:
            log.exception("address index build failed; the relay builds it when an event arrives")
        next_periodic = 0.0
        while not self._stop.is_set():
            try:
                self.relayed += relay_pending(self._engine, self._geocoder)
            except Exception:
                log.exception("outbox relay failed; retrying")
            if time.monotonic() >= next_periodic:
                next_periodic = time.monotonic() + self._warning_interval_s
                try:
                    run_periodic(self._engine)
                except Exception:
                    log.exception("periodic jobs failed; retrying")
            self._wake.wait(self._relay_interval_s)
            self._wake.clear()
