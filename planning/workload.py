"""planning.workload: a grid's workload in hours per month, explained item by item (pure, no database).

The model: every item is a count per month times standard minutes, from the versioned standards file
`planning/data/workload_standards.toml` (each number with its source). Items of a grid:

* ``tasks:<duty>`` — tasks of that duty pushed in the last ``months_of_history`` months, per month (the expected
  rate of new work from registrations and changes);
* ``open_tasks`` — the open backlog now, each at its duty's minutes, counted once in the month;
* ``patrol`` — routine visits of open entities: visits per year by credit class (more for poor credit), times a
  factor for licensed (high-risk) trades, over 12;
* ``annual_report_campaign`` — in the campaign season (1 March–30 June, `supervision.campaign`), one reminder to each
  entity that has not filed last year's report, spread over the season's months; zero out of season;
* ``clues`` — clues reported in the last months, per month;
* ``travel:area`` and ``travel:roads`` — the grid's land (km²) and the length of road inside it (km).

The model is linear in its counts, so the hours of a grid are the sum of the hours of the points it holds plus its
travel: the redesign sums units and gets the same hours the API shows (`planning.workload_service.area_work`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from supervision.campaign import in_campaign_window
from supervision.workflow import DUTY_LABELS_ZH, Duty

STANDARDS_PATH = Path(__file__).resolve().parent / "data" / "workload_standards.toml"
CREDIT_CLASSES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Standards:
    """The standard minutes and capacities of one version of the standards file."""

    version: str
    field_hours_per_worker_month: float
    min_workers: int
    max_workers: int
    months_of_history: int
    duty_minutes: Mapping[str, float]
    duty_labels_zh: Mapping[str, str]
    patrol_minutes: float
    patrol_visits_per_year: Mapping[str, float]
    licence_factor: float
    campaign_minutes: float
    campaign_season_months: int
    clue_minutes: float
    hours_per_km2: float
    hours_per_road_km: float
    labels_zh: Mapping[str, str] = field(default_factory=dict)

    @property
    def hours_per_m2(self) -> float:
        """Travel hours per month per m² of grid land."""
        return self.hours_per_km2 / 1_000_000.0

    @property
    def hours_per_road_m(self) -> float:
        """Travel hours per month per metre of road inside the grid."""
        return self.hours_per_road_km / 1000.0


@dataclass(frozen=True)
class WorkloadItem:
    """One line of the breakdown: count per month × standard minutes each = hours per month."""

    key: str
    label_zh: str
    count: float
    minutes_each: float
    hours: float


@dataclass(frozen=True)
class Workload:
    """A grid's (or a worker's, or a unit's) hours per month and their breakdown; `hours` is the items' sum."""

    hours: float
    items: tuple[WorkloadItem, ...]

    def item(self, key: str) -> WorkloadItem | None:
        """The item of that key, if the breakdown has it."""
        return next((i for i in self.items if i.key == key), None)


@dataclass(frozen=True)
class GridCounts:
    """What a grid holds, as the model counts it (the database side fills it, one per grid)."""

    tasks_by_duty: Mapping[str, float] = field(default_factory=dict)  # pushed in the history window, in all
    open_by_duty: Mapping[str, float] = field(default_factory=dict)  # open now
    entities_by_class: Mapping[tuple[str, bool], float] = field(default_factory=dict)  # (credit class, licence) → open
    unfiled_entities: float = 0.0  # open entities that have not filed last year's annual report
    clues: float = 0.0  # reported in the history window, in all
    area_m2: float = 0.0
    road_m: float = 0.0


def _number(table: Mapping[str, Any], key: str) -> float:
    """A required positive-or-zero number of the standards file (a clear error names the key)."""
    value = table.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
        raise ValueError(f"workload standards: {key} must be a number ≥ 0, got {value!r}")
    return float(value)


def load_standards(path: Path | None = None) -> Standards:
    """The standards of the packaged toml (or of `path`), checked: every duty has minutes, every class visits."""
    raw = tomllib.loads((path or STANDARDS_PATH).read_text(encoding="utf-8"))
    capacity, patrol, travel = raw["capacity"], raw["patrol"], raw["travel"]
    duties = raw["duties"]
    missing = [d.value for d in Duty if d.value not in duties]
    if missing:
        raise ValueError(f"workload standards: no minutes for duties {missing}")
    visits = patrol["visits_per_year"]
    standards = Standards(
        version=str(raw["version"]),
        field_hours_per_worker_month=_number(capacity, "field_hours_per_worker_month"),
        min_workers=int(capacity["min_workers"]),
        max_workers=int(capacity["max_workers"]),
        months_of_history=int(raw["history"]["months_of_history"]),
        duty_minutes={k: _number(v, "minutes") for k, v in duties.items()},
        duty_labels_zh={k: str(v.get("label_zh") or DUTY_LABELS_ZH.get(Duty(k), k)) for k, v in duties.items()},
        patrol_minutes=_number(patrol, "minutes_per_visit"),
        patrol_visits_per_year={c: _number(visits, c) for c in CREDIT_CLASSES},
        licence_factor=_number(patrol, "licence_factor"),
        campaign_minutes=_number(raw["campaign"], "minutes_per_reminder"),
        campaign_season_months=int(raw["campaign"]["season_months"]),
        clue_minutes=_number(raw["clues"], "minutes"),
        hours_per_km2=_number(travel, "hours_per_km2"),
        hours_per_road_km=_number(travel, "hours_per_road_km"),
        labels_zh={
            "patrol": str(patrol["label_zh"]),
            "annual_report_campaign": str(raw["campaign"]["label_zh"]),
            "clues": str(raw["clues"]["label_zh"]),
            "open_tasks": str(raw["open_tasks"]["label_zh"]),
            "travel:area": str(travel["area_label_zh"]),
            "travel:roads": str(travel["roads_label_zh"]),
        },
    )
    if standards.field_hours_per_worker_month <= 0:
        raise ValueError("workload standards: field_hours_per_worker_month must be > 0")
    if not 1 <= standards.min_workers <= standards.max_workers:
        raise ValueError("workload standards: need 1 ≤ min_workers ≤ max_workers")
    if standards.months_of_history < 1 or standards.campaign_season_months < 1:
        raise ValueError("workload standards: months_of_history and season_months must be ≥ 1")
    return standards


def duty_minutes(duty: str, standards: Standards) -> float:
    """Standard minutes of one task of a duty (an unknown duty: the longest duty's minutes, never zero)."""
    minutes = standards.duty_minutes.get(duty)
    return float(minutes) if minutes is not None else max(standards.duty_minutes.values())


def duty_hours(duty: str, standards: Standards) -> float:
    """Standard hours of ONE task of a duty (for the daily assignment)."""
    return duty_minutes(duty, standards) / 60.0


def recommended_workers(hours_per_month: float, standards: Standards) -> int:
    """Workers a grid needs: its hours over one worker's field capacity, rounded up, kept within [min, max]."""
    needed = math.ceil(max(hours_per_month, 0.0) / standards.field_hours_per_worker_month - 1e-9)
    return min(max(needed, standards.min_workers), standards.max_workers)


def in_season(at: date) -> bool:
    """Whether the annual-report campaign runs on that day."""
    return in_campaign_window(at)


# -------------------------------------------------------------- hours per point: what one located thing carries


def expected_task_hours(duty: str, standards: Standards) -> float:
    """Hours per month one task pushed in the history window adds (its minutes spread over the window's months)."""
    return duty_hours(duty, standards) / standards.months_of_history


def open_task_hours(duty: str, standards: Standards) -> float:
    """Hours one open task adds this month (the backlog is done once)."""
    return duty_hours(duty, standards)


def patrol_visits_per_month(credit_class: str, needs_licence: bool, standards: Standards) -> float:
    """Routine visits per month of one open entity (an unknown class: visited as class B)."""
    visits = standards.patrol_visits_per_year.get(credit_class, standards.patrol_visits_per_year["B"])
    return visits * (standards.licence_factor if needs_licence else 1.0) / 12.0


def patrol_hours(credit_class: str, needs_licence: bool, standards: Standards) -> float:
    """Hours per month of routine visits of one open entity."""
    return patrol_visits_per_month(credit_class, needs_licence, standards) * standards.patrol_minutes / 60.0


def campaign_hours(at: date, standards: Standards) -> float:
    """Hours per month one entity that has not filed adds in the campaign season (zero out of season)."""
    if not in_season(at):
        return 0.0
    return standards.campaign_minutes / 60.0 / standards.campaign_season_months


def clue_hours(standards: Standards) -> float:
    """Hours per month one clue reported in the history window adds."""
    return standards.clue_minutes / 60.0 / standards.months_of_history


# ------------------------------------------------------------------------------------------------- the model


def _item(key: str, label_zh: str, count: float, minutes_each: float) -> WorkloadItem:
    """One item, its hours computed from count and minutes."""
    return WorkloadItem(
        key=key, label_zh=label_zh, count=count, minutes_each=minutes_each, hours=count * minutes_each / 60
    )


def workload(counts: GridCounts, standards: Standards, *, at: date) -> Workload:
    """The hours per month of one grid from what it holds, item by item (`at`: the day, for the campaign season)."""
    months = standards.months_of_history
    items: list[WorkloadItem] = []
    for duty in sorted(standards.duty_minutes):
        pushed = float(counts.tasks_by_duty.get(duty, 0.0))
        items.append(
            _item(f"tasks:{duty}", standards.duty_labels_zh[duty], pushed / months, duty_minutes(duty, standards))
        )
    # Duties the standards do not know (a newer workflow) still count, at the longest duty's minutes.
    for duty in sorted(set(counts.tasks_by_duty) - set(standards.duty_minutes)):
        pushed = float(counts.tasks_by_duty[duty])
        items.append(_item(f"tasks:{duty}", duty, pushed / months, duty_minutes(duty, standards)))
    open_count = float(sum(counts.open_by_duty.values()))
    open_minutes = sum(float(n) * duty_minutes(d, standards) for d, n in counts.open_by_duty.items())
    items.append(
        _item(
            "open_tasks", standards.labels_zh["open_tasks"], open_count, open_minutes / open_count if open_count else 0
        )
    )
    visits = sum(
        float(n) * patrol_visits_per_month(cls, licence, standards)
        for (cls, licence), n in counts.entities_by_class.items()
    )
    items.append(_item("patrol", standards.labels_zh["patrol"], visits, standards.patrol_minutes))
    reminders = float(counts.unfiled_entities) / standards.campaign_season_months if in_season(at) else 0.0
    items.append(
        _item(
            "annual_report_campaign",
            standards.labels_zh["annual_report_campaign"],
            reminders,
            standards.campaign_minutes,
        )
    )
    items.append(_item("clues", standards.labels_zh["clues"], float(counts.clues) / months, standards.clue_minutes))
    items.append(
        _item("travel:area", standards.labels_zh["travel:area"], counts.area_m2 / 1e6, standards.hours_per_km2 * 60)
    )
    items.append(
        _item(
            "travel:roads", standards.labels_zh["travel:roads"], counts.road_m / 1e3, standards.hours_per_road_km * 60
        )
    )
    return Workload(hours=math.fsum(i.hours for i in items), items=tuple(items))


def combine(workloads: list[Workload]) -> Workload:
    """The workload of several grids together: counts and hours add up, minutes are the count-weighted mean."""
    by_key: dict[str, list[WorkloadItem]] = {}
    for w in workloads:
        for item in w.items:
            by_key.setdefault(item.key, []).append(item)
    items = []
    for key, group in by_key.items():
        count = math.fsum(i.count for i in group)
        hours = math.fsum(i.hours for i in group)
        minutes = hours * 60 / count if count else group[0].minutes_each
        items.append(WorkloadItem(key=key, label_zh=group[0].label_zh, count=count, minutes_each=minutes, hours=hours))
    return Workload(hours=math.fsum(i.hours for i in items), items=tuple(items))


def share(whole: Workload, fraction: float, *, keys_excluded: frozenset[str] = frozenset()) -> Workload:
    """A fraction of a workload (a worker's share of the grid), leaving out items of `keys_excluded`."""
    items = tuple(
        WorkloadItem(
            key=i.key,
            label_zh=i.label_zh,
            count=i.count * fraction,
            minutes_each=i.minutes_each,
            hours=i.hours * fraction,
        )
        for i in whole.items
        if i.key not in keys_excluded
    )
    return Workload(hours=math.fsum(i.hours for i in items), items=items)


def workload_from_json(hours: float, items: list[dict[str, Any]]) -> Workload:
    """A workload as stored in grid_workload (hours and the items' JSON)."""
    return Workload(
        hours=float(hours),
        items=tuple(
            WorkloadItem(
                key=str(i["key"]),
                label_zh=str(i["label_zh"]),
                count=float(i["count"]),
                minutes_each=float(i["minutes_each"]),
                hours=float(i["hours"]),
            )
            for i in items
        ),
    )


def workload_to_json(w: Workload) -> list[dict[str, Any]]:
    """The items of a workload as stored in grid_workload."""
    return [
        {"key": i.key, "label_zh": i.label_zh, "count": i.count, "minutes_each": i.minutes_each, "hours": i.hours}
        for i in w.items
    ]
