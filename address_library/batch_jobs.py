"""address_library.batch_jobs: the store of batch geocoding jobs — owner, progress, files, retention, cleanup.

A job is a row of `geocode_batch_job` owned by the principal's stable reference (`key#12`, `user#5`) and two files in
the batch folder: `<id>.in.csv` (the upload) and `<id>.out.csv` (the result). Files are created mode 0600 in a
folder of mode 0700. Once `expires_at` has passed (the retention period after the upload), the job answers
"expired" and `purge_expired` — run daily by `gridgov serve` and by `gridgov jobs cleanup` — removes its files and
marks it purged; the row stays, so that the owner learns the result is gone rather than that it never existed.
Files with no job row (from before jobs were stored) are removed once they are older than the retention period.

A running job holds a PostgreSQL advisory lock (`hold_run_lock`) on a connection of its own, taken before its row is
written: when the server process dies, the connection and the lock go with it. A job found `queued` or `running`
whose lock nobody holds was interrupted (the server restarted): `reap_interrupted` records it `failed`, with
`INTERRUPTED` as its error, the moment it is read. Every error stored is `printable` (control characters escaped as
`\\x00` text: PostgreSQL text cannot hold NUL, and a client's screen should not receive the others).
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, text

FILE_MODE = 0o600
DIR_MODE = 0o700
# The first key of the advisory lock a running job holds (the second is made from the job's id).
RUN_LOCK_CLASS = 17_009
INTERRUPTED = "interrupted: the server restarted; upload again"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StoredJob:
    """One batch job as the store holds it."""

    id: str
    owner: str
    address_column: str
    status: str
    rows_done: int
    rows_total: int | None
    error: str | None
    by_status: dict[str, int]
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    purged_at: datetime | None

    def expired(self, now: datetime) -> bool:
        """Whether the job's files are past their retention period (or already removed)."""
        return self.purged_at is not None or self.expires_at <= now


def printable(message: str) -> str:
    """`message` with every control character written as `\\xNN` text (a NUL becomes the four characters \\x00)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", message)


def _lock_key(job_id: str) -> int:
    """The second key of a job's advisory lock (a signed 32-bit number; a collision only delays a reap)."""
    return zlib.crc32(job_id.encode()) - 2**31


def hold_run_lock(libpq_url: str, job_id: str) -> psycopg.Connection:
    """A connection of its own (outside the pool) holding the job's run lock until it is closed."""
    conn = psycopg.connect(libpq_url, autocommit=True)
    try:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_LOCK_CLASS, _lock_key(job_id)))
    except BaseException:
        conn.close()
        raise
    return conn


def reap_interrupted(conn: Connection, job: StoredJob, now: datetime) -> StoredJob:
    """The job as it stands: a queued or running one whose run lock nobody holds is recorded failed (INTERRUPTED)."""
    if job.status not in ("queued", "running"):
        return job
    # A transaction-level try: released at the end of the caller's transaction, never left on a pooled connection.
    free = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:c, :k)"), {"c": RUN_LOCK_CLASS, "k": _lock_key(job.id)}
    ).scalar()
    if not free:
        return job
    conn.execute(
        text(
            "UPDATE geocode_batch_job SET status = 'failed', error = :error, finished_at = :now "
            "WHERE id = :id AND status IN ('queued', 'running')"
        ),
        {"id": job.id, "error": INTERRUPTED, "now": now},
    )
    reaped = get_job(conn, job.id)
    assert reaped is not None
    return reaped


def private_dir(folder: Path) -> Path:
    """The folder, created if missing, readable by the server's user only (0700)."""
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(folder, DIR_MODE)
    return folder


def open_private(path: Path, mode: str = "wb") -> Any:
    """A new file (truncated if it exists) of mode 0600, opened for writing in `mode` ("wb", or "w" for text)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, newline="", encoding="utf-8")


def input_path(folder: Path, job_id: str) -> Path:
    """Where a job's uploaded file lives."""
    return folder / f"{job_id}.in.csv"


def output_path(folder: Path, job_id: str) -> Path:
    """Where a job's result file lives."""
    return folder / f"{job_id}.out.csv"


def create_job(
    conn: Connection, *, job_id: str, owner: str, address_column: str, now: datetime, retention: timedelta
) -> StoredJob:
    """Record a new queued job; its files expire `retention` after `now`."""
    conn.execute(
        text(
            "INSERT INTO geocode_batch_job (id, owner, address_column, created_at, expires_at) "
            "VALUES (:id, :owner, :column, :now, :expires)"
        ),
        {"id": job_id, "owner": owner, "column": address_column, "now": now, "expires": now + retention},
    )
    job = get_job(conn, job_id)
    assert job is not None
    return job


def get_job(conn: Connection, job_id: str) -> StoredJob | None:
    """One job by its id, or None."""
    row = conn.execute(
        text(
            "SELECT id, owner, address_column, status, rows_done, rows_total, error, by_status, created_at, "
            "finished_at, expires_at, purged_at FROM geocode_batch_job WHERE id = :id"
        ),
        {"id": job_id},
    ).first()
    if row is None:
        return None
    values = row._asdict()
    values["by_status"] = {str(k): int(v) for k, v in (values["by_status"] or {}).items()}
    return StoredJob(**values)


def mark_running(conn: Connection, job_id: str, rows_total: int) -> None:
    """The job started, with this many data rows."""
    conn.execute(
        text("UPDATE geocode_batch_job SET status = 'running', rows_total = :n WHERE id = :id"),
        {"id": job_id, "n": rows_total},
    )


def add_progress(conn: Connection, job_id: str, rows: int) -> None:
    """`rows` more rows are written."""
    conn.execute(
        text("UPDATE geocode_batch_job SET rows_done = rows_done + :n WHERE id = :id"), {"id": job_id, "n": rows}
    )


def finish_job(
    conn: Connection,
    job_id: str,
    *,
    status: str,
    now: datetime,
    error: str | None = None,
    by_status: dict[str, int] | None = None,
) -> None:
    """The job ended: done (with its counts by status) or failed (with an error that names no server path)."""
    assert status in ("done", "failed")
    conn.execute(
        text(
            "UPDATE geocode_batch_job SET status = :status, error = :error, "
            "by_status = CAST(:by_status AS jsonb), finished_at = :now WHERE id = :id"
        ),
        {
            "id": job_id,
            "status": status,
            "error": None if error is None else printable(error),
            "by_status": json.dumps(by_status or {}),
            "now": now,
        },
    )


def purge_expired(conn: Connection, folder: Path, *, now: datetime, retention: timedelta) -> dict[str, object]:
    """Remove the files of every expired job and mark it purged; remove job-less files older than the retention.

    Returns what was done (for the job log): jobs purged, files removed.
    """
    rows = conn.execute(
        text(
            "SELECT id FROM geocode_batch_job WHERE purged_at IS NULL AND expires_at <= :now "
            "ORDER BY id FOR UPDATE SKIP LOCKED"
        ),
        {"now": now},
    ).all()
    removed = 0
    for (job_id,) in rows:
        for path in (input_path(folder, job_id), output_path(folder, job_id)):
            removed += _remove(path)
    if rows:
        conn.execute(
            text("UPDATE geocode_batch_job SET purged_at = :now WHERE id = ANY(:ids)"),
            {"now": now, "ids": [r[0] for r in rows]},
        )
    orphans = 0
    if folder.is_dir():
        known = {r[0] for r in conn.execute(text("SELECT id FROM geocode_batch_job WHERE purged_at IS NULL"))}
        # Files of jobs from before the store (no row): their age on disk is all that is known of them.
        oldest = time.time() - retention.total_seconds()
        for path in folder.glob("*.csv"):
            job_id = path.name.split(".", 1)[0]
            if job_id not in known and path.stat().st_mtime < oldest:
                orphans += _remove(path)
    return {"jobs_purged": len(rows), "files_removed": removed + orphans}


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
