"""Working-day deadlines: holidays are skipped, make-up days count, future years are provisional until scheduled."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.calendar import (
    SHANGHAI,
    SHIPPED_SCHEDULE,
    WorkCalendar,
    read_schedule_table,
)
from supervision.errors import CalendarError, CalendarRangeError

CAL = WorkCalendar()


def days(first: date, last: date) -> list[date]:
    """Every calendar date from first to last inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_spring_festival_2026_is_skipped_and_its_make_up_saturdays_count() -> None:
    # 2026 Spring Festival: off 15–23 February; Saturdays 14 and 28 February are make-up working days.
    assert not any(CAL.is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert CAL.is_working_day(date(2026, 2, 14))
    assert CAL.is_working_day(date(2026, 2, 28))
    # A task pushed on Friday 13 February: the make-up Saturday is day 1, then nothing until 24 February.
    assert CAL.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert CAL.add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)


def test_national_day_golden_weeks_are_skipped() -> None:
    assert not any(CAL.is_working_day(d) for d in days(date(2025, 10, 1), date(2025, 10, 8)))
    assert not any(CAL.is_working_day(d) for d in days(date(2026, 10, 1), date(2026, 10, 7)))
    assert CAL.is_working_day(date(2025, 10, 9))
    assert CAL.is_working_day(date(2026, 10, 8))


def test_make_up_weekend_days_are_working_days() -> None:
    # 调休上班: Sunday 28 September and Saturday 11 October 2025; Sunday 20 September and Saturday 10 October 2026.
    for make_up in (date(2025, 9, 28), date(2025, 10, 11), date(2026, 9, 20), date(2026, 10, 10)):
        assert make_up.weekday() >= 5
        assert CAL.is_working_day(make_up)
    assert not CAL.is_working_day(date(2025, 9, 27))  # an ordinary Saturday stays a day off


def test_ten_working_days_before_national_day_land_after_the_golden_week() -> None:
    # Pushed Friday 26 September 2025: 28, 29, 30 September, then 9, 10, 11 (Saturday, make-up), 13, 14, 15, 16 October.
    assert CAL.add_working_days(date(2025, 9, 26), 10) == date(2025, 10, 16)
    assert CAL.working_days_between(date(2025, 9, 26), date(2025, 10, 16)) == 10


def test_deadline_is_due_at_23_59_59_shanghai_time_on_the_last_working_day() -> None:
    # 02:30 UTC on 26 September is 10:30 in Dongguan, the same local day.
    pushed = datetime(2025, 9, 26, 2, 30, tzinfo=UTC)
    deadline = CAL.due_at(pushed, 10)
    assert deadline.due_at == datetime(2025, 10, 16, 23, 59, 59, tzinfo=SHANGHAI)
    assert deadline.due_at.isoformat() == "2025-10-16T23:59:59+08:00"
    assert deadline.provisional is False
    # 80% of 10 working days is 8: the warning comes at the start of working day 9.
    assert deadline.warning_at == datetime(2025, 10, 15, 0, 0, tzinfo=SHANGHAI)


def test_the_start_date_is_the_local_date_in_dongguan() -> None:
    # 17:00 UTC on Friday 26 September 2025 is already Saturday 01:00 in Dongguan; Sunday 28 is a make-up day.
    late_utc = datetime(2025, 9, 26, 17, 0, tzinfo=UTC)
    assert CAL.due_at(late_utc, 1).due_at.date() == date(2025, 9, 28)
    with pytest.raises(CalendarError):
        CAL.due_at(datetime(2025, 9, 26, 10, 0), 1)  # naive: which instant is it?


def test_a_2027_deadline_is_provisional_and_skips_2027_statutory_holidays() -> None:
    assert CAL.is_provisional_year(2027)
    statutory_2027 = holidays.China(years=2027)
    assert len(statutory_2027) == 19
    assert not any(CAL.is_working_day(d) for d in statutory_2027)
    # Tuesday 28 September 2027: 29, 30 September, then (1 Oct Friday, 4–5 Oct off) 6, 7, 8 October.
    deadline = CAL.due_at(datetime(2027, 9, 28, 9, 0, tzinfo=SHANGHAI), 5)
    assert deadline.due_at == datetime(2027, 10, 8, 23, 59, 59, tzinfo=SHANGHAI)
    assert deadline.provisional is True
    # A deadline that starts in 2026 but reaches into 2027 depends on 2027 too.
    assert CAL.due_at(datetime(2026, 12, 28, 9, 0, tzinfo=SHANGHAI), 5).provisional is True
    assert CAL.due_at(datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI), 5).provisional is False


def write_schedule(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Write a schedule table the way an operator would."""
    lines = ["date,kind,name,source"] + [
        f"{d},{kind},{name},test fixture (not the official schedule)" for d, kind, name in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_adding_a_2027_schedule_makes_deadlines_official_and_counts_its_make_up_day(tmp_path: Path) -> None:
    # A made-up 2027 National Day schedule: 1–7 October off, Sunday 26 September a make-up working day.
    rows = [(f"2027-10-0{i}", "holiday", "国庆节") for i in range(1, 8)] + [("2027-09-26", "workday", "国庆节")]
    calendar = WorkCalendar(write_schedule(tmp_path / "deployment.csv", rows), first_year=2026, last_year=2028)
    assert calendar.schedule_source(2027) == "table"
    assert calendar.is_working_day(date(2027, 9, 26))
    assert not calendar.is_working_day(date(2027, 10, 6))
    # Friday 24 September 2027 + 1 working day: the make-up Sunday.
    deadline = calendar.due_at(datetime(2027, 9, 24, 15, 0, tzinfo=SHANGHAI), 1)
    assert deadline.due_at.date() == date(2027, 9, 26)
    assert deadline.provisional is False
    # The table is the whole official schedule for its year: a weekday it does not list is a working day.
    assert calendar.is_working_day(date(2027, 2, 8))
    assert not CAL.is_working_day(date(2027, 2, 8))


def test_a_table_row_corrects_a_single_date_of_a_known_year(tmp_path: Path) -> None:
    path = write_schedule(tmp_path / "fix.csv", [("2026-03-02", "holiday", "local closure")])
    calendar = WorkCalendar(path, first_year=2026, last_year=2026)
    assert not calendar.is_working_day(date(2026, 3, 2))
    assert calendar.is_working_day(date(2026, 3, 3))
    assert calendar.schedule_source(2026) == "chinese_calendar"


def test_a_broken_schedule_table_is_refused_with_its_line(tmp_path: Path) -> None:
    bad_kind = write_schedule(tmp_path / "bad.csv", [("2027-10-01", "day-off", "国庆节")])
    with pytest.raises(CalendarError, match=r"bad\.csv:2"):
        WorkCalendar(bad_kind, first_year=2027, last_year=2027)
    conflict = write_schedule(
        tmp_path / "conflict.csv", [("2027-10-01", "holiday", "a"), ("2027-10-01", "workday", "b")]
    )
    with pytest.raises(CalendarError, match="both"):
        read_schedule_table(conflict)


def test_the_shipped_table_has_its_header_and_loads() -> None:
    assert SHIPPED_SCHEDULE.read_text(encoding="utf-8").splitlines()[0] == "date,kind,name,source"
    read_schedule_table(SHIPPED_SCHEDULE)


def test_dates_outside_the_calendar_range_are_refused() -> None:
    with pytest.raises(CalendarRangeError):
        CAL.is_working_day(date(1999, 1, 4))
    with pytest.raises(CalendarRangeError):
        CAL.add_working_days(date(2040, 12, 20), 30)


start_dates = st.dates(min_value=date(2015, 1, 1), max_value=date(2034, 12, 31))
day_counts = st.integers(min_value=0, max_value=250)


@given(start_dates, st.integers(min_value=1, max_value=250))
def test_the_deadline_day_is_always_a_working_day(start: date, n: int) -> None:
    assert CAL.is_working_day(CAL.add_working_days(start, n))


@given(start_dates, day_counts)
def test_more_working_days_always_means_a_later_day(start: date, n: int) -> None:
    assert CAL.add_working_days(start, n + 1) > CAL.add_working_days(start, n)


@given(start_dates, day_counts)
def test_counting_back_gives_the_number_of_working_days(start: date, n: int) -> None:
    assert CAL.working_days_between(start, CAL.add_working_days(start, n)) == n


@settings(max_examples=200)
@given(start_dates, st.times(), day_counts)
def test_the_warning_lies_between_start_and_due(start_day: date, clock: time, n: int) -> None:
    start = datetime.combine(start_day, clock, tzinfo=SHANGHAI)
    deadline = CAL.due_at(start, n)
    assert start <= deadline.warning_at <= deadline.due_at
    assert deadline.warning_at == CAL.warning_at(start, deadline.due_at)
    if n >= 1:
        assert CAL.is_working_day(deadline.warning_at.date())
