"""api.files: where the server keeps uploaded files, how long, and the daily cleanup (issue 17, finding 9).

Batch geocoding inputs and results live in `<state_dir>/batch` for `batch_retention_days` (7 by default) after the
upload; photos live in `<state_dir>/photos` and are kept (they are evidence). Every file is mode 0600 and every
folder 0700. The cleanup — a daily job of `gridgov serve`, and `gridgov jobs cleanup` by hand — removes the expired
batch files (their jobs then answer 410 Gone) and gives photos stored before this rule the private modes.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from sqlalchemy import Connection

from address_library.batch_jobs import DIR_MODE, FILE_MODE, purge_expired
from gis.settings import ServerSettings
from supervision.jobs import DailyJob

CLEANUP_JOB = "files_cleanup"
CLEANUP_AT = clock_time(3, 30)


def batch_folder(settings: ServerSettings) -> Path:
    """The folder of the batch jobs' files."""
    return settings.state_dir / "batch"


def photo_folder(settings: ServerSettings) -> Path:
    """The folder of the clue and task photos."""
    return settings.state_dir / "photos"


def retention(settings: ServerSettings) -> timedelta:
    """How long a batch job's files are kept after the upload."""
    return timedelta(days=settings.batch_retention_days)


def tighten_modes(folder: Path) -> int:
    """Give every folder under `folder` mode 0700 and every file 0600; how many modes were changed."""
    changed = 0
    if not folder.is_dir():
        return 0
    for root, dirs, files in os.walk(folder):
        for name, mode in [(root, DIR_MODE)] + [(os.path.join(root, f), FILE_MODE) for f in files]:
            if os.stat(name).st_mode & 0o777 != mode:
                os.chmod(name, mode)
                changed += 1
        dirs.sort()
    return changed


def cleanup_files(conn: Connection, settings: ServerSettings, now: datetime) -> dict[str, object]:
    """Remove expired batch files (their jobs are marked purged) and tighten the modes of the stored files."""
    result = purge_expired(conn, batch_folder(settings), now=now, retention=retention(settings))
    result["modes_tightened"] = tighten_modes(batch_folder(settings)) + tighten_modes(photo_folder(settings))
    return result


def files_cleanup_job(settings: ServerSettings) -> DailyJob:
    """The cleanup as a daily job of `gridgov serve` (every day, weekends too, from 03:30 Beijing time)."""

    def run(conn: Connection, day: date, moment: datetime) -> dict[str, object]:
        return cleanup_files(conn, settings, moment)

    return DailyJob(name=CLEANUP_JOB, at=CLEANUP_AT, run=run, working_days_only=False)
