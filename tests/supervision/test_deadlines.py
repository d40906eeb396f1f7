"""A deadline that runs into a year without an official schedule is provisional, and is put right once it is known."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.audit import history
from supervision.calendar import WorkCalendar
from supervision.creation import NewTask, create_tasks
from supervision.deadlines import recompute_provisional
from supervision.scope import CITY
from supervision.workflow import Duty

pytestmark = pytest.mark.db
SHANGHAI = ZoneInfo("Asia/Shanghai")
# An invented official 2027 schedule for the test: New Year off from Friday 1 to Tuesday 5 January, with
# Saturday 9 January a make-up working day.
SCHEDULE_2027 = """date,kind,name,source
2027-01-01,holiday,元旦,test
2027-01-04,holiday,元旦,test
2027-01-05,holiday,元旦,test
2027-01-09,workday,元旦,test
"""


def test_a_provisional_deadline_is_recomputed_and_audited_when_the_schedule_is_added(
    db: DatabaseSettings, tmp_path: Path
) -> None:
    engine = make_engine(db)
    provisional = WorkCalendar(shipped_schedule=None)
    pushed = datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI)
    with engine.begin() as conn:
        grid = conn.execute(text("SELECT code FROM grid ORDER BY code LIMIT 1")).scalar_one()
        (task_id,) = create_tasks(conn, [NewTask(Duty.ADDRESS_CHECK, grid, pushed)], calendar=provisional)
        before = conn.execute(
            text("SELECT due_at, calendar_provisional FROM task WHERE id = :id"), {"id": task_id}
        ).one()
    # 29, 30, 31 Dec, then 2027 provisional: Mon–Fri without 1 Jan (statutory) → 4, 5, 6, 7, 8, 11, 12 Jan.
    assert before.calendar_provisional is True
    assert before.due_at.astimezone(SHANGHAI).date().isoformat() == "2027-01-12"

    schedule = tmp_path / "schedule.csv"
    schedule.write_text(SCHEDULE_2027, encoding="utf-8")
    official = WorkCalendar(extra_schedule=schedule, shipped_schedule=None)
    with engine.begin() as conn:
        changed = recompute_provisional(conn, calendar=official, now=pushed.replace(day=30))
        after = conn.execute(
            text("SELECT due_at, calendar_provisional FROM task WHERE id = :id"), {"id": task_id}
        ).one()
        trail = history(conn, CITY, task_id=task_id)
        again = recompute_provisional(conn, calendar=official, now=pushed.replace(day=30))
    engine.dispose()
    # With the schedule: 29, 30, 31 Dec, then 6, 7, 8, 9 (make-up Saturday), 11, 12, 13 Jan → 13 January.
    assert [c.task_id for c in changed] == [task_id]
    assert after.calendar_provisional is False
    assert after.due_at.astimezone(SHANGHAI).date().isoformat() == "2027-01-13"
    assert after.due_at.astimezone(SHANGHAI).time().isoformat() == "23:59:59"
    assert trail[-1].actor == "system:calendar" and "recomputed" in trail[-1].note
    assert again == []
