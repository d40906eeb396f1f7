"""The workload model: explainable hours per month, item by item, from the standards file (pure, no database)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.workload import (
    CREDIT_CLASSES,
    STANDARDS_PATH,
    GridCounts,
    combine,
    duty_hours,
    load_standards,
    recommended_workers,
    share,
    workload,
)
from supervision.workflow import Duty

STANDARDS = load_standards()
IN_SEASON = date(2027, 4, 15)
OUT_OF_SEASON = date(2026, 12, 1)

counts_st = st.builds(
    GridCounts,
    tasks_by_duty=st.dictionaries(st.sampled_from([d.value for d in Duty]), st.integers(0, 500).map(float)),
    open_by_duty=st.dictionaries(st.sampled_from([d.value for d in Duty]), st.integers(0, 200).map(float)),
    entities_by_class=st.dictionaries(
        st.tuples(st.sampled_from(CREDIT_CLASSES), st.booleans()), st.integers(0, 2000).map(float)
    ),
    unfiled_entities=st.integers(0, 1000).map(float),
    clues=st.integers(0, 300).map(float),
    area_m2=st.floats(0, 20e6),
    road_m=st.floats(0, 100e3),
)
days_st = st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31))


def test_the_packaged_standards_cover_every_duty_and_name_a_source_for_each_number() -> None:
    """Every duty of the workflow has standard minutes, and the file says where each number comes from."""
    text = STANDARDS_PATH.read_text(encoding="utf-8")
    assert STANDARDS.version
    assert {d.value for d in Duty} <= set(STANDARDS.duty_minutes)
    assert (STANDARDS.min_workers, STANDARDS.max_workers) == (2, 5)  # 一格两员 至 一格五员
    assert text.count("source") >= len(Duty) + 8
    assert STANDARDS.patrol_visits_per_year["D"] > STANDARDS.patrol_visits_per_year["A"]  # poor credit: more visits


def test_a_broken_standards_file_is_refused_with_the_key_named(tmp_path: Path) -> None:
    """A negative minute count is a typo the loader names, not a silent zero."""
    broken = STANDARDS_PATH.read_text(encoding="utf-8").replace("minutes_per_visit = 15", "minutes_per_visit = -15")
    path = tmp_path / "standards.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ValueError, match="minutes_per_visit"):
        load_standards(path)


def test_one_task_of_a_duty_takes_its_standard_minutes() -> None:
    """The daily assignment reads one task's hours per duty: a licence check is longer than a reminder."""
    assert duty_hours("address_check", STANDARDS) == pytest.approx(STANDARDS.duty_minutes["address_check"] / 60)
    assert duty_hours("licence_check", STANDARDS) > duty_hours("annual_report", STANDARDS)
    assert duty_hours("some_new_duty", STANDARDS) == max(STANDARDS.duty_minutes.values()) / 60


def test_recommended_workers_are_the_hours_over_capacity_kept_between_two_and_five() -> None:
    """Workload over one worker's monthly capacity, rounded up, within 一格两员 … 一格五员."""
    capacity = STANDARDS.field_hours_per_worker_month
    assert recommended_workers(0.0, STANDARDS) == 2
    assert recommended_workers(capacity * 2, STANDARDS) == 2
    assert recommended_workers(capacity * 2 + 0.1, STANDARDS) == 3
    assert recommended_workers(capacity * 4, STANDARDS) == 4
    assert recommended_workers(capacity * 40, STANDARDS) == 5


def test_a_grid_of_200_good_credit_shops_is_explained_line_by_line() -> None:
    """The breakdown names each item with its count per month and minutes, and the hours add up."""
    counts = GridCounts(entities_by_class={("A", False): 120.0}, clues=6.0, area_m2=1_000_000.0, road_m=4000.0)
    w = workload(counts, STANDARDS, at=OUT_OF_SEASON)
    patrol = w.item("patrol")
    assert patrol is not None and patrol.count == pytest.approx(120 * STANDARDS.patrol_visits_per_year["A"] / 12)
    assert patrol.hours == pytest.approx(patrol.count * STANDARDS.patrol_minutes / 60)
    clues = w.item("clues")
    assert clues is not None and clues.count == pytest.approx(6 / STANDARDS.months_of_history)
    area = w.item("travel:area")
    assert area is not None and area.hours == pytest.approx(STANDARDS.hours_per_km2)
    roads = w.item("travel:roads")
    assert roads is not None and roads.hours == pytest.approx(4 * STANDARDS.hours_per_road_km)
    assert all(i.label_zh for i in w.items)
    assert w.hours == pytest.approx(sum(i.hours for i in w.items))


@settings(max_examples=150, deadline=None)
@given(counts=counts_st, day=days_st)
def test_hours_are_never_negative_and_are_the_sum_of_the_items(counts: GridCounts, day: date) -> None:
    """Whatever a grid holds, its hours are ≥ 0 and exactly its items added up."""
    w = workload(counts, STANDARDS, at=day)
    assert w.hours >= 0
    assert all(i.hours >= 0 and i.count >= 0 for i in w.items)
    assert math.isclose(w.hours, math.fsum(i.hours for i in w.items), rel_tol=1e-12, abs_tol=1e-12)
    assert 2 <= recommended_workers(w.hours, STANDARDS) <= 5


@settings(max_examples=100, deadline=None)
@given(a=counts_st, b=counts_st, day=days_st)
def test_two_grids_merged_hold_the_work_of_both(a: GridCounts, b: GridCounts, day: date) -> None:
    """The model is additive: the counts of two grids together give the sum of their hours (so units can be summed)."""

    def add(x: dict, y: dict) -> dict:  # type: ignore[type-arg]
        return {k: x.get(k, 0.0) + y.get(k, 0.0) for k in {*x, *y}}

    merged = GridCounts(
        tasks_by_duty=add(dict(a.tasks_by_duty), dict(b.tasks_by_duty)),
        open_by_duty=add(dict(a.open_by_duty), dict(b.open_by_duty)),
        entities_by_class=add(dict(a.entities_by_class), dict(b.entities_by_class)),
        unfiled_entities=a.unfiled_entities + b.unfiled_entities,
        clues=a.clues + b.clues,
        area_m2=a.area_m2 + b.area_m2,
        road_m=a.road_m + b.road_m,
    )
    together = workload(merged, STANDARDS, at=day)
    apart = [workload(a, STANDARDS, at=day), workload(b, STANDARDS, at=day)]
    assert together.hours == pytest.approx(sum(w.hours for w in apart), rel=1e-9, abs=1e-9)
    assert combine(apart).hours == pytest.approx(together.hours, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    counts=counts_st,
    day=days_st,
    field=st.sampled_from(["tasks", "open", "entities", "unfiled", "clues", "area", "roads"]),
    extra=st.integers(1, 500),
)
def test_more_of_anything_never_means_fewer_hours(counts: GridCounts, day: date, field: str, extra: int) -> None:
    """Monotone in every count: a grid that gains registrations, backlog, entities, clues or land never gets lighter."""
    more = {
        "tasks": replace(
            counts,
            tasks_by_duty={
                **counts.tasks_by_duty,
                "opening_check": counts.tasks_by_duty.get("opening_check", 0) + extra,
            },
        ),
        "open": replace(
            counts,
            open_by_duty={**counts.open_by_duty, "licence_check": counts.open_by_duty.get("licence_check", 0) + extra},
        ),
        "entities": replace(
            counts,
            entities_by_class={
                **counts.entities_by_class,
                ("C", True): counts.entities_by_class.get(("C", True), 0) + extra,
            },
        ),
        "unfiled": replace(counts, unfiled_entities=counts.unfiled_entities + extra),
        "clues": replace(counts, clues=counts.clues + extra),
        "area": replace(counts, area_m2=counts.area_m2 + extra * 1000.0),
        "roads": replace(counts, road_m=counts.road_m + extra),
    }[field]
    before = workload(counts, STANDARDS, at=day)
    after = workload(more, STANDARDS, at=day)
    assert after.hours >= before.hours - 1e-9
    if field != "unfiled":  # reminders count only in season
        assert after.hours > before.hours
    assert recommended_workers(after.hours, STANDARDS) >= recommended_workers(before.hours, STANDARDS)


@settings(max_examples=80, deadline=None)
@given(counts=counts_st, unfiled=st.integers(1, 1000))
def test_the_annual_report_campaign_counts_from_march_to_june_only(counts: GridCounts, unfiled: int) -> None:
    """Entities that have not filed add reminders in the campaign season, spread over its months, and nothing after."""
    counts = replace(counts, unfiled_entities=float(unfiled))
    in_season = workload(counts, STANDARDS, at=IN_SEASON).item("annual_report_campaign")
    out_of_season = workload(counts, STANDARDS, at=OUT_OF_SEASON).item("annual_report_campaign")
    assert in_season is not None and out_of_season is not None
    assert out_of_season.hours == 0
    expected = unfiled / STANDARDS.campaign_season_months * STANDARDS.campaign_minutes / 60
    assert in_season.hours == pytest.approx(expected)
    assert (
        workload(counts, STANDARDS, at=date(2027, 3, 1)).hours > workload(counts, STANDARDS, at=date(2027, 2, 28)).hours
    )
    assert (
        workload(counts, STANDARDS, at=date(2027, 7, 1)).hours < workload(counts, STANDARDS, at=date(2027, 6, 30)).hours
    )


@settings(max_examples=60, deadline=None)
@given(counts=counts_st, workers=st.integers(1, 5))
def test_workers_of_a_grid_share_its_hours_except_the_backlog(counts: GridCounts, workers: int) -> None:
    """Each of n workers carries 1/n of the grid's non-backlog hours; together they carry all of it."""
    grid = workload(counts, STANDARDS, at=OUT_OF_SEASON)
    each = share(grid, 1 / workers, keys_excluded=frozenset({"open_tasks"}))
    backlog = grid.item("open_tasks")
    assert backlog is not None
    assert each.hours * workers + backlog.hours == pytest.approx(grid.hours, rel=1e-9, abs=1e-9)
    assert each.item("open_tasks") is None
