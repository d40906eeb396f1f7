"""A town leader's heatmap counts clues by H3 cell, grid, community and town, with honest rates and legends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import h3
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from maps.errors import AggregateError, MapsError
from maps.heat.aggregate import (
    Denominators,
    EventFrame,
    aggregate,
    class_breaks,
    compare_periods,
    count_by,
    h3_cells,
    h3_parents,
    h3_strings,
    parse_unit,
    points_or_aggregates,
)
from maps.heat.events import load_denominators, load_events
from maps.heat.schemas import LegendRow

# Dongguan's box, and a little beyond, so that cells on the city's edge are covered too.
dongguan_lons = st.floats(min_value=113.4, max_value=114.4, allow_nan=False)
dongguan_lats = st.floats(min_value=22.5, max_value=23.3, allow_nan=False)
resolutions = st.integers(min_value=7, max_value=10)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(113.5, 114.3, n), rng.uniform(22.6, 23.2, n)


# ------------------------------------------------------------------------------------------------ H3 counting


@settings(max_examples=60, deadline=None)
@given(coords=st.lists(st.tuples(dongguan_lons, dongguan_lats), min_size=1, max_size=200), resolution=resolutions)
def test_h3_cells_are_the_cells_h3_itself_gives_and_counts_add_up(
    coords: list[tuple[float, float]], resolution: int
) -> None:
    lon = np.array([c[0] for c in coords])
    lat = np.array([c[1] for c in coords])
    cells = h3_cells(lon, lat, resolution)
    expected = [h3.latlng_to_cell(la, lo, resolution) for lo, la in coords]
    assert list(h3_strings(cells)) == expected

    keys, counts = count_by(cells)
    assert counts.sum() == len(coords)
    assert dict(zip(h3_strings(keys), counts.tolist(), strict=True)) == dict(Counter(expected))


@settings(max_examples=30, deadline=None)
@given(coords=st.lists(st.tuples(dongguan_lons, dongguan_lats), min_size=1, max_size=100), resolution=resolutions)
def test_an_h3_aggregate_counts_every_clue_once_per_cell(coords: list[tuple[float, float]], resolution: int) -> None:
    events = EventFrame.from_columns([c[0] for c in coords], [c[1] for c in coords], [0] * len(coords))
    table = aggregate(events, f"h3:{resolution}")
    assert table["count"].sum() == len(coords)
    loop = Counter(h3.latlng_to_cell(la, lo, resolution) for lo, la in coords)
    assert dict(zip(table["code"], table["count"].tolist(), strict=True)) == dict(loop)


def test_parents_by_bit_arithmetic_match_h3() -> None:
    lon, lat = points(300)
    cells = h3_cells(lon, lat, 10)
    for resolution in range(11):
        ours = h3_strings(h3_parents(cells, resolution))
        assert list(ours) == [h3.cell_to_parent(c, resolution) for c in h3_strings(cells)]


@pytest.mark.parametrize("resolution", [6, 11, -1, 15])
def test_an_h3_resolution_out_of_range_is_refused(resolution: int) -> None:
    lon, lat = points(10)
    with pytest.raises(AggregateError, match="out of range"):
        h3_cells(lon, lat, resolution)


@pytest.mark.parametrize("unit", ["h3:6", "h3:11", "h3:", "h3:nine", "hex", "street"])
def test_an_unknown_unit_is_refused_with_the_reason(unit: str) -> None:
    with pytest.raises(AggregateError) as refused:
        parse_unit(unit)
    assert isinstance(refused.value, MapsError)
    assert str(refused.value)


def test_coordinates_that_are_not_degrees_are_refused() -> None:
    with pytest.raises(AggregateError, match="finite"):
        h3_cells(np.array([113.7, np.nan]), np.array([23.0, 23.0]), 9)
    with pytest.raises(AggregateError, match="degrees"):
        h3_cells(np.array([12_650_000.0]), np.array([2_630_000.0]), 9)  # metres, not degrees


# ------------------------------------------------------------------------------------------------ rates


def test_rates_per_entity_and_per_1000_residents_on_a_hand_example() -> None:
    grids = ["441900003001001"] * 6 + ["441900003001002"] * 2 + ["441900004001001"] * 1 + [None]
    events = EventFrame.from_columns(np.full(10, 113.7), np.full(10, 23.0), np.zeros(10), grid_code=grids)
    denominators = Denominators(
        entities=pd.Series({"441900003001001": 120.0, "441900003001002": 2.0, "441900004001001": 0.0}),
        residents=pd.Series({"441900003001001": 4_000.0, "441900003001002": 500.0, "441900004001001": 2_000.0}),
    )
    table = aggregate(events, "grid", denominators=denominators).set_index("code")

    busy = table.loc["441900003001001"]
    assert busy["count"] == 6
    assert busy["per_entity"] == pytest.approx(0.05)  # 6 clues among 120 shops
    assert busy["per_1000_residents"] == pytest.approx(1.5)  # 6 clues for 4,000 people
    assert not busy["small_n"]

    tiny = table.loc["441900003001002"]  # 2 shops, 2 clues: a rate of 1 that means little
    assert tiny["per_entity"] == pytest.approx(1.0)
    assert tiny["small_n"]

    empty = table.loc["441900004001001"]  # no registered entities: no rate rather than infinity
    assert np.isnan(empty["per_entity"])
    assert empty["per_1000_residents"] == pytest.approx(0.5)
    assert empty["small_n"]
    assert table.attrs["unplaced"] == 1  # the clue without a grid is not silently dropped from the record


def test_communities_and_towns_add_up_the_grids_beneath_them() -> None:
    grids = ["441900003001001", "441900003001002", "441900003002001", "441900004001001"]
    towns = ["441900003000", "441900003000", "441900003000", "441900004000"]
    events = EventFrame.from_columns(np.full(4, 113.7), np.full(4, 23.0), np.zeros(4), grid_code=grids, town_code=towns)
    communities = aggregate(events, "community")
    assert dict(zip(communities["code"], communities["count"], strict=True)) == {
        "441900003001": 2,
        "441900003002": 1,
        "441900004001": 1,
    }
    by_town = aggregate(events, "town")
    assert dict(zip(by_town["code"], by_town["count"], strict=True)) == {"441900003000": 3, "441900004000": 1}


def test_units_without_clues_can_be_listed_with_zero() -> None:
    events = EventFrame.from_columns([113.7], [23.0], [0], grid_code="441900003001001")
    denominators = Denominators(
        entities=pd.Series({"441900003001001": 50.0, "441900003001002": 40.0}),
        residents=pd.Series({"441900003001001": 3_000.0, "441900003001002": 2_000.0}),
    )
    table = aggregate(events, "grid", denominators=denominators, include_empty_units=True).set_index("code")
    assert table.loc["441900003001002", "count"] == 0
    assert table.loc["441900003001002", "per_entity"] == 0.0


# ------------------------------------------------------------------------------------------------ heat layer


def test_the_browser_never_gets_more_than_the_limit_of_points() -> None:
    lon, lat = points(60_000)
    events = EventFrame.from_columns(lon, lat, np.zeros(len(lon)))
    heat = points_or_aggregates(events)
    assert heat.mode == "h3"
    assert len(heat) <= 50_000
    assert heat.weight.sum() == 60_000  # every clue still weighs in

    small = points_or_aggregates(events.select(np.arange(len(lon)) < 50_000))
    assert small.mode == "points" and len(small) == 50_000


@settings(max_examples=20, deadline=None)
@given(n=st.integers(min_value=0, max_value=3_000), limit=st.integers(min_value=122, max_value=2_000))
def test_the_point_limit_holds_for_any_count(n: int, limit: int) -> None:
    lon, lat = points(n, seed=n)
    heat = points_or_aggregates(EventFrame.from_columns(lon, lat, np.zeros(n)), limit=limit)
    assert len(heat) <= limit
    assert heat.weight.sum() == n


# ------------------------------------------------------------------------------------------------ legend


@pytest.mark.parametrize("scheme", ["fisher_jenks", "quantiles", "natural_breaks"])
def test_all_zero_counts_make_one_class(scheme: str) -> None:
    breaks = class_breaks(np.zeros(40), k=5, scheme=scheme)
    assert breaks.legend == [LegendRow(lower=0.0, upper=0.0, count=40)]


@pytest.mark.parametrize("scheme", ["fisher_jenks", "quantiles", "natural_breaks"])
def test_a_single_value_makes_one_class(scheme: str) -> None:
    assert class_breaks([7], k=5, scheme=scheme).legend == [LegendRow(lower=7.0, upper=7.0, count=1)]
    assert class_breaks([], k=5, scheme=scheme).legend == []


@pytest.mark.parametrize("scheme", ["fisher_jenks", "quantiles", "natural_breaks"])
def test_fewer_distinct_values_than_classes_give_one_class_per_value(scheme: str) -> None:
    breaks = class_breaks([1, 1, 1, 2, 2, 9], k=5, scheme=scheme)
    assert breaks.bins == [1.0, 2.0, 9.0]
    assert [row.count for row in breaks.legend] == [3, 2, 1]


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=1_500),
    k=st.integers(min_value=1, max_value=7),
    scheme=st.sampled_from(["fisher_jenks", "quantiles", "natural_breaks"]),
)
def test_the_legend_accounts_for_every_value(values: list[int], k: int, scheme: str) -> None:
    breaks = class_breaks(values, k=k, scheme=scheme)
    assert sum(row.count for row in breaks.legend) == len(values)
    assert len(breaks.legend) <= k
    assert breaks.legend[0].lower == min(values) and breaks.legend[-1].upper == max(values)
    uppers = [row.upper for row in breaks.legend]
    assert uppers == sorted(set(uppers)) == breaks.bins
    # Each value lies in its class: the first class is closed, the others open below.
    y = np.array(values, dtype=float)
    for i, row in enumerate(breaks.legend):
        inside = (y <= row.upper) & ((y > row.lower) if i else (y >= row.lower))
        assert inside.sum() == row.count


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(AggregateError, match="scheme"):
        class_breaks([1, 2, 3], scheme="equal_interval")


# ------------------------------------------------------------------------------------------------ trend


def test_this_month_against_last_month_per_town() -> None:
    day = 86_400
    since, until = T0, T0 + timedelta(days=30)
    start = int(since.timestamp())
    times = [start + day, start + 2 * day, start + 3 * day, start - day, start - 40 * day, start + 31 * day]
    towns = ["441900003000", "441900003000", "441900004000", "441900003000", "441900004000", "441900004000"]
    events = EventFrame.from_columns(np.full(6, 113.7), np.full(6, 23.0), times, town_code=towns)
    result = compare_periods(events, since, until)
    assert (result.current, result.previous, result.change) == (3, 1, 2)
    assert result.percent_change == 200.0
    units = {row.code: row for row in result.units}
    assert units["441900003000"].current == 2 and units["441900003000"].previous == 1
    assert units["441900004000"].percent_change is None  # from none to one: no made-up percentage
    assert result.units[0].code == "441900003000"  # the largest rise first (+1, then by current count)


# ------------------------------------------------------------------------------------------------ database


def test_events_load_with_their_filters_and_grid_counts_match_sql(engine: Engine) -> None:
    with engine.connect() as conn:
        lo, hi = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM clue")).one()
        everything = dict(since=lo, until=hi + timedelta(seconds=1), statuses=None, sources=None)
        events = load_events(conn, town_codes=None, industries=None, kinds=["clue", "unlicensed"], **everything)
        assert len(events) == conn.execute(text("SELECT count(*) FROM clue")).scalar_one() >= 8_000
        assert set(events.kind.categories) == {"clue", "unlicensed"}

        # Per grid: the same as a GROUP BY in the database.
        sql_counts: dict[str, int] = dict(
            conn.execute(
                text("SELECT grid_code, count(*) FROM clue WHERE grid_code IS NOT NULL GROUP BY grid_code")
            ).all()
        )
        table = aggregate(events, "grid", denominators=load_denominators(conn, "grid"))
        assert dict(zip(table["code"], table["count"].tolist(), strict=True)) == sql_counts
        assert table["entities"].notna().all()

        # Industry, window and town filters, against the same filters in SQL.
        town, industry = conn.execute(
            text("SELECT town_code, industry FROM clue GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")
        ).one()
        since, until = lo + (hi - lo) / 2, hi
        filtered = load_events(
            conn,
            town_codes=[town],
            since=since,
            until=until,
            industries=[industry],
            statuses=None,
            sources=["hotline"],
            kinds=["clue"],
        )
        expected = conn.execute(
            text(
                "SELECT count(*) FROM clue WHERE town_code = :t AND industry = :i AND kind = 'clue' "
                "AND source = 'hotline' AND reported_at >= :s AND reported_at < :u"
            ),
            {"t": town, "i": industry, "s": since, "u": until},
        ).scalar_one()
        assert len(filtered) == expected > 0
        assert set(filtered.town_code) == {town} and set(filtered.industry) == {industry}
        assert filtered.reported_at_s.min() >= since.timestamp() and filtered.reported_at_s.max() < until.timestamp()

        # Problem inspections come from the task trail, wherever a position is known.
        problems = load_events(conn, town_codes=None, industries=None, kinds=["problem"], **everything)
        assert set(problems.source) <= {"inspection"}

        # A filter value that is SQL stays a value.
        hostile = load_events(conn, town_codes=["' OR 1=1 --"], industries=None, kinds=["clue"], **everything)
        assert len(hostile) == 0


def test_a_reversed_window_or_an_unknown_kind_is_refused(engine: Engine) -> None:
    with engine.connect() as conn:
        common = dict(town_codes=None, industries=None, statuses=None, sources=None)
        with pytest.raises(AggregateError, match="reversed"):
            load_events(conn, since=T0, until=T0 - timedelta(days=1), kinds=["clue"], **common)
        with pytest.raises(AggregateError, match="kinds"):
            load_events(conn, since=T0, until=T0 + timedelta(days=1), kinds=["rumour"], **common)
        empty = load_events(
            conn, since=T0 - timedelta(days=9_000), until=T0 - timedelta(days=8_999), kinds=["clue"], **common
        )
        assert len(empty) == 0 and aggregate(empty, "h3:9").empty


def test_a_towns_h3_cells_count_only_its_own_people(engine: Engine) -> None:
    # A cell on a town's edge holds people of two towns; the town's view must measure it by its own. Every town is
    # checked, and which towns have such cells is read from the addresses, not assumed of the busiest town.
    with engine.connect() as conn:
        towns = conn.execute(text("SELECT DISTINCT town_code FROM entity ORDER BY 1")).scalars().all()
        city = load_denominators(conn, "h3:9")
        peopled = conn.execute(
            text(
                "SELECT a.town_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat FROM address a "
                "JOIN grid g ON g.code = a.grid_code JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE a.status = 'active' AND g.population > 0"
            )
        ).all()
        towns_of_cell: dict[str, set[str]] = {}
        for row in peopled:
            towns_of_cell.setdefault(h3.latlng_to_cell(row.lat, row.lon, 9), set()).add(row.town_code)
        edge_towns = {t for held in towns_of_cell.values() if len(held) > 1 for t in held}
        assert edge_towns, "the test city has no H3 cell shared by two towns' residents"
        for town in towns:
            own = load_denominators(conn, "h3:9", town)
            entities = conn.execute(
                text("SELECT count(*) FROM entity WHERE status = 'open' AND geom IS NOT NULL AND town_code = :t"),
                {"t": town},
            ).scalar_one()
            population = conn.execute(
                text(
                    "SELECT coalesce(sum(g.population), 0) FROM grid g "
                    "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                    "WHERE g.town_code = :t AND EXISTS (SELECT 1 FROM address a WHERE a.grid_code = g.code "
                    "AND a.status = 'active')"
                ),
                {"t": town},
            ).scalar_one()
            assert own.entities.sum() == entities, town
            assert own.residents.sum() == pytest.approx(float(population), rel=1e-9), town
            shared = own.residents.index.intersection(city.residents.index)
            assert (own.residents.reindex(shared) <= city.residents.reindex(shared) + 1e-9).all(), town
            diluted = (own.residents.reindex(shared) < city.residents.reindex(shared) - 1e-9).any()
            assert diluted == (town in edge_towns), town
