"""supervision.calendar: Chinese working days (statutory holidays, make-up days) and working-day deadlines.

Every supervision clock counts working days, the start day not counted, and a deadline falls due at 23:59:59
Asia/Shanghai on its last working day. Whether a date is a working day is decided, per date, by the first of
these sources that knows it:

1. the schedule table: ``supervision/data/workday_schedule.csv`` shipped with the code, plus an optional
   deployment file given to ``WorkCalendar(extra_schedule=...)`` whose rows win over the shipped ones. Columns
   ``date,kind,name,source`` with ``kind`` = ``holiday`` (a day off) or ``workday`` (a make-up working day,
   调休上班). A row always decides its own date. For a year ``chinese_calendar`` does not know, the table is read
   as that year's whole official schedule: any date it does not list is a working day iff it is Monday–Friday;
2. the ``chinese_calendar`` package, for the years it has official schedules for (2004–2026 in 1.11.0); rows of
   the table for those years act as corrections of single dates;
3. otherwise the year is *provisional*: Monday–Friday minus the holidays ``holidays.China`` computes from the
   lunar calendar (including the substitute days it derives), with no make-up working days, because the State
   Council only publishes the make-up days (usually in November) for the next year. Answers that depend on a
   provisional year carry ``provisional=True`` and should be recomputed once the year's schedule is added.

Answers are precomputed over ``first_year``..``last_year`` into a sorted numpy array of working-day ordinals, so
``add_working_days`` and ``working_days_between`` are two ``searchsorted`` calls each. Dates outside that range
raise ``CalendarRangeError``.

Warning time (``warning_at``): let ``total`` be the working days in (start's local date, due's local date].
After ``consumed = floor(0.8 * total)`` of them have fully elapsed, 80% of the allowed time is spent; the warning
falls at 00:00:00 Asia/Shanghai on the next working day, i.e. working day number ``consumed + 1`` after the start,
the morning from which only the last 20% (rounded up) of the working days remain. For a 10-day deadline that is
the start of working day 9; for 15 days, of working day 13. Because ``consumed + 1 <= total`` the warning is never
after the due time, and because it is on a later date than the start it is never before the start. With
``total == 0`` (a same-day deadline) there is no working time to divide and the warning is the start itself.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import numpy as np
import numpy.typing as npt

from gis import clock
from supervision.errors import CalendarError, CalendarRangeError

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today() -> date:
    """Today's date in Asia/Shanghai on the platform's clock (gis.clock), the day every window counts from."""
    return clock.now().astimezone(SHANGHAI).date()


DUE_TIME = time(23, 59, 59)
WARNING_TIME = time(0, 0, 0)
# Warning threshold as an exact fraction (4/5) so integer day counts never suffer float rounding.
WARNING_NUMERATOR = 4
WARNING_DENOMINATOR = 5

SHIPPED_SCHEDULE = Path(__file__).resolve().parent / "data" / "workday_schedule.csv"
SCHEDULE_COLUMNS = ("date", "kind", "name", "source")
DEFAULT_FIRST_YEAR = 2010
DEFAULT_LAST_YEAR = 2040

DayKind = Literal["holiday", "workday"]
ScheduleSource = Literal["table", "chinese_calendar", "provisional"]
_DAY_KINDS: dict[str, DayKind] = {"holiday": "holiday", "workday": "workday"}


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One row of the schedule table: a day off or a make-up working day."""

    day: date
    kind: DayKind
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class DeadlineInfo:
    """A working-day deadline: when it falls due, when to warn, and whether it rests on a provisional year."""

    start: datetime
    working_days: int
    due_at: datetime
    warning_at: datetime
    provisional: bool


def read_schedule_table(path: Path) -> dict[date, ScheduleRow]:
    """Read a schedule CSV (date,kind,name,source) into rows by date; conflicting duplicates are an error."""
    rows: dict[date, ScheduleRow] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        if header[: len(SCHEDULE_COLUMNS)] != SCHEDULE_COLUMNS:
            raise CalendarError(f"{path}: header must start with {','.join(SCHEDULE_COLUMNS)}, got {','.join(header)}")
        for line_no, record in enumerate(reader, start=2):
            raw_date = (record.get("date") or "").strip()
            if not raw_date:
                continue
            try:
                day = date.fromisoformat(raw_date)
            except ValueError as exc:
                raise CalendarError(f"{path}:{line_no}: bad date {raw_date!r} (want YYYY-MM-DD)") from exc
            raw_kind = (record.get("kind") or "").strip()
            kind = _DAY_KINDS.get(raw_kind)
            if kind is None:
                raise CalendarError(f"{path}:{line_no}: kind must be holiday or workday, got {raw_kind!r}")
            row = ScheduleRow(day, kind, (record.get("name") or "").strip(), (record.get("source") or "").strip())
            previous = rows.get(day)
            if previous is not None and previous.kind != row.kind:
                raise CalendarError(f"{path}:{line_no}: {day} is listed both as {previous.kind} and as {row.kind}")
            rows[day] = row
    return rows


def _chinese_calendar_knows(year: int) -> bool:
    """Whether the chinese_calendar package has the official schedule for this year."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


class WorkCalendar:
    """Chinese working days over a fixed range of years, with working-day arithmetic and deadlines."""

    def __init__(
        self,
        extra_schedule: Path | None = None,
        *,
        first_year: int = DEFAULT_FIRST_YEAR,
        last_year: int = DEFAULT_LAST_YEAR,
        shipped_schedule: Path | None = SHIPPED_SCHEDULE,
    ) -> None:
        """Build the calendar from the shipped table, an optional deployment table, chinese_calendar and holidays."""
        if first_year > last_year:
            raise CalendarError(f"first_year {first_year} is after last_year {last_year}")
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(last_year, 12, 31)
        self._first_ordinal = self.first_day.toordinal()
        self._last_ordinal = self.last_day.toordinal()

        table: dict[date, ScheduleRow] = {}
        for path in (shipped_schedule, extra_schedule):
            if path is not None:
                table.update(read_schedule_table(path))
        self.table_rows: tuple[ScheduleRow, ...] = tuple(
            row for _, row in sorted(table.items()) if first_year <= row.day.year <= last_year
        )

        years = range(first_year, last_year + 1)
        table_years = {row.day.year for row in self.table_rows}
        self._sources: dict[int, ScheduleSource] = {}
        for year in years:
            if _chinese_calendar_knows(year):
                self._sources[year] = "chinese_calendar"
            elif year in table_years:
                self._sources[year] = "table"
            else:
                self._sources[year] = "provisional"
        provisional_years = [year for year in years if self._sources[year] == "provisional"]
        statutory: set[date] = set(holidays.China(years=provisional_years).keys()) if provisional_years else set()

        n_days = self._last_ordinal - self._first_ordinal + 1
        working = np.zeros(n_days, dtype=bool)
        for offset in range(n_days):
            day = self.first_day + timedelta(days=offset)
            source = self._sources[day.year]
            if source == "chinese_calendar":
                working[offset] = chinese_calendar.is_workday(day)
            elif source == "table":
                working[offset] = day.weekday() < 5
            else:
                working[offset] = day.weekday() < 5 and day not in statutory
        for row in self.table_rows:
            working[row.day.toordinal() - self._first_ordinal] = row.kind == "workday"

        self._working = working
        self._working_ordinals: npt.NDArray[np.int64] = np.flatnonzero(working).astype(np.int64) + self._first_ordinal
        self.provisional_years: frozenset[int] = frozenset(provisional_years)

    def _check(self, day: date) -> int:
        """Return the ordinal of a date inside the calendar's range, or raise CalendarRangeError."""
        ordinal = day.toordinal()
        if not self._first_ordinal <= ordinal <= self._last_ordinal:
            raise CalendarRangeError(f"{day} is outside the calendar range {self.first_day}..{self.last_day}")
        return ordinal

    def schedule_source(self, year: int) -> ScheduleSource:
        """Which source decides this year: the table, chinese_calendar, or the provisional Mon–Fri rule."""
        try:
            return self._sources[year]
        except KeyError:
            raise CalendarRangeError(f"year {year} is outside the calendar range") from None

    def is_provisional_year(self, year: int) -> bool:
        """Whether this year has no official schedule yet (answers about it may change)."""
        return self.schedule_source(year) == "provisional"

    def is_working_day(self, d: date) -> bool:
        """Whether d is a working day (make-up Saturdays/Sundays included, statutory holidays excluded)."""
        return bool(self._working[self._check(d) - self._first_ordinal])

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after start (start itself not counted); n == 0 returns start."""
        if n < 0:
            raise CalendarError(f"n must be >= 0, got {n}")
        ordinal = self._check(start)
        if n == 0:
            return start
        index = int(np.searchsorted(self._working_ordinals, ordinal, side="right")) + n - 1
        if index >= len(self._working_ordinals):
            raise CalendarRangeError(f"{n} working days after {start} is beyond {self.last_day}")
        return date.fromordinal(int(self._working_ordinals[index]))

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b] — a not counted, b counted; negative when b is before a."""
        ordinals = np.searchsorted(self._working_ordinals, [self._check(a), self._check(b)], side="right")
        return int(ordinals[1] - ordinals[0])

    def is_provisional_span(self, a: date, b: date) -> bool:
        """Whether any day in (a, b] lies in a provisional year, so a count over it may still change."""
        if b <= a:
            return False
        first = a + timedelta(days=1)
        return any(year in self.provisional_years for year in range(first.year, b.year + 1))

    def due_at(self, start: datetime, n: int) -> DeadlineInfo:
        """Deadline of n working days from start: 23:59:59 Asia/Shanghai on the n-th working day after its date."""
        local_start = _to_shanghai(start)
        due_day = self.add_working_days(local_start.date(), n)
        due = datetime.combine(due_day, DUE_TIME, tzinfo=SHANGHAI)
        return DeadlineInfo(
            start=start,
            working_days=n,
            due_at=due,
            warning_at=self.warning_at(start, due),
            provisional=self.is_provisional_span(local_start.date(), due_day),
        )

    def warning_at(self, start: datetime, due: datetime) -> datetime:
        """When 80% of the working days in (start, due] have elapsed: 00:00 Asia/Shanghai of the next working day."""
        local_start = _to_shanghai(start)
        local_due = _to_shanghai(due)
        if local_due < local_start:
            raise CalendarError(f"due {due.isoformat()} is before start {start.isoformat()}")
        total = self.working_days_between(local_start.date(), local_due.date())
        if total == 0:
            return local_start
        consumed = total * WARNING_NUMERATOR // WARNING_DENOMINATOR
        warning_day = self.add_working_days(local_start.date(), consumed + 1)
        return datetime.combine(warning_day, WARNING_TIME, tzinfo=SHANGHAI)


def _to_shanghai(moment: datetime) -> datetime:
    """The same instant in Asia/Shanghai; naive datetimes are refused because their instant is unknown."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(f"datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(SHANGHAI)


@functools.cache
def default_calendar() -> WorkCalendar:
    """The process-wide calendar from the shipped table (call default_calendar.cache_clear() after editing it)."""
    return WorkCalendar()
