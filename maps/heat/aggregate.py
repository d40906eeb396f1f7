"""maps.heat.aggregate: counts, rates, class breaks and period comparison of events by H3 cell, grid, community, town."""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import mapclassify
import numpy as np
import pandas as pd
from h3ronpy import vector as h3_vector

from grids.codes import community_of
from maps.errors import AggregateError
from maps.heat.schemas import LegendRow, Period, PeriodComparison, UnitChange

EVENT_KINDS = ("clue", "unlicensed", "problem")
EVENT_KIND_LABELS_ZH = {"clue": "线索", "unlicensed": "无照经营", "problem": "检查发现问题"}
H3_MIN_RESOLUTION = 7  # ~5 km² cells: coarser hides everything inside a town
H3_MAX_RESOLUTION = 10  # ~0.015 km² cells: finer is one shop per cell
AREA_UNITS = ("grid", "community", "town")
UNITS = tuple(f"h3:{r}" for r in range(H3_MIN_RESOLUTION, H3_MAX_RESOLUTION + 1)) + AREA_UNITS
MAX_RAW_POINTS = 50_000  # the most raw points the browser is ever sent

# A rate is shown as shaky when it rests on fewer events, entities or residents than these.
MIN_COUNT = 5
MIN_ENTITIES = 20
MIN_RESIDENTS = 1_000

CLASS_SCHEMES = ("fisher_jenks", "quantiles", "natural_breaks")
# mapclassify's Fisher-Jenks is O(n²) in pure Python (3,000 values take ~8 s without numba); above this many
# values it runs on evenly spaced order statistics of the data, which keep the distribution's shape.
FISHER_JENKS_MAX_VALUES = 400

_H3_CHUNK = 131_072  # h3ronpy releases the GIL: chunks of this size run on parallel threads
_RESOLUTION_SHIFT = np.uint64(52)
_RESOLUTION_MASK = np.uint64(0xF) << _RESOLUTION_SHIFT
# NaturalBreaks seeds k-means from numpy's global generator; a fixed seed keeps a map's legend stable.
_NATURAL_BREAKS_SEED = 20_201_101
_global_rng_lock = threading.Lock()


@dataclass(frozen=True)
class EventFrame:
    """Point events as parallel arrays: position (WGS84 degrees), time (UTC epoch seconds), and categories."""

    lon: np.ndarray
    lat: np.ndarray
    reported_at_s: np.ndarray
    kind: pd.Categorical
    industry: pd.Categorical
    status: pd.Categorical
    source: pd.Categorical
    town_code: pd.Categorical
    grid_code: pd.Categorical

    def __len__(self) -> int:
        return len(self.lon)

    @classmethod
    def empty(cls) -> EventFrame:
        """A frame with no events."""
        none = pd.Categorical([], categories=pd.Index([], dtype=object))
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), none, none, none, none, none, none)

    @classmethod
    def from_columns(
        cls,
        lon: Any,
        lat: Any,
        reported_at_s: Any,
        *,
        kind: Any = "clue",
        industry: Any = "",
        status: Any = "closed",
        source: Any = "field",
        town_code: Any = None,
        grid_code: Any = None,
    ) -> EventFrame:
        """A frame from plain sequences (a scalar category applies to every event); for tests and benchmarks."""
        lon_a = np.asarray(lon, dtype=np.float64)
        n = len(lon_a)

        def category(values: Any) -> pd.Categorical:
            if values is None or isinstance(values, str):
                values = [values] * n
            return pd.Categorical(pd.array(list(values), dtype=object))

        return cls(
            lon=lon_a,
            lat=np.asarray(lat, dtype=np.float64),
            reported_at_s=np.asarray(reported_at_s, dtype=np.int64),
            kind=category(kind),
            industry=category(industry),
            status=category(status),
            source=category(source),
            town_code=category(town_code),
            grid_code=category(grid_code),
        )

    def select(self, mask: np.ndarray) -> EventFrame:
        """The events where mask is true."""
        return EventFrame(
            lon=self.lon[mask],
            lat=self.lat[mask],
            reported_at_s=self.reported_at_s[mask],
            kind=self.kind[mask],
            industry=self.industry[mask],
            status=self.status[mask],
            source=self.source[mask],
            town_code=self.town_code[mask],
            grid_code=self.grid_code[mask],
        )

    def between(self, since: datetime, until: datetime) -> EventFrame:
        """The events reported in [since, until)."""
        lo, hi = _epoch_s(since), _epoch_s(until)
        return self.select((self.reported_at_s >= lo) & (self.reported_at_s < hi))

    def community_code(self) -> pd.Categorical:
        """Each event's community, read from its grid code."""
        prefixes = pd.Index([community_of(str(c)) for c in self.grid_code.categories], dtype=object)
        communities, remap = np.unique(np.asarray(prefixes, dtype=object).astype(str), return_inverse=True)
        lookup = np.append(remap.astype(np.int32), -1)  # code -1 (no grid) stays -1
        return pd.Categorical.from_codes(
            lookup[np.asarray(self.grid_code.codes)], categories=pd.Index(communities, dtype=object)
        )


@dataclass(frozen=True)
class Denominators:
    """Registered entities and residents of each unit, indexed by unit code (H3 cells as hex strings)."""

    entities: pd.Series
    residents: pd.Series


@dataclass(frozen=True)
class HeatPoints:
    """What a heat layer draws: raw points (weight 1) or, beyond the limit, H3 cell centres weighted by count."""

    mode: Literal["points", "h3"]
    resolution: int | None
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.lon)


@dataclass(frozen=True)
class ClassBreaks:
    """Class upper bounds and the legend rows of a choropleth: class i holds values in (lower, upper]."""

    scheme: str
    bins: list[float]
    legend: list[LegendRow]


def _epoch_s(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise AggregateError("times must be timezone-aware")
    return math.floor(moment.timestamp())


# ---------------------------------------------------------------------------------------------------------- H3


def validate_resolution(resolution: int) -> int:
    """The resolution itself, if it is an integer in 7..10; AggregateError otherwise."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise AggregateError(f"H3 resolution must be an integer, got {resolution!r}")
    if not H3_MIN_RESOLUTION <= int(resolution) <= H3_MAX_RESOLUTION:
        raise AggregateError(f"H3 resolution {resolution} is out of range {H3_MIN_RESOLUTION}..{H3_MAX_RESOLUTION}")
    return int(resolution)


def _cells_any_resolution(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cells (uint64) at any resolution 0..15, computed in parallel chunks."""
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise AggregateError("lon and lat must be one-dimensional arrays of the same length")
    if len(lon) == 0:
        return np.empty(0, dtype=np.uint64)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise AggregateError("coordinates must be finite")
    if np.abs(lat).max() > 90 or np.abs(lon).max() > 180:
        raise AggregateError("coordinates must be WGS84 degrees: |lat| <= 90, |lon| <= 180")

    def chunk(bounds: tuple[int, int]) -> np.ndarray:
        a, b = bounds
        return np.asarray(h3_vector.coordinates_to_cells(lat[a:b], lon[a:b], resolution), dtype=np.uint64)

    n = len(lon)
    workers = min(os.cpu_count() or 1, 4, n // _H3_CHUNK)
    if workers <= 1:
        return chunk((0, n))
    edges = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(chunk, zip(edges[:-1], edges[1:], strict=True)))
    return np.concatenate(parts)


def h3_cells(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """The H3 cell (uint64) of each point (WGS84 degrees) at resolution 7..10, vectorized (h3ronpy)."""
    return _cells_any_resolution(lon, lat, validate_resolution(resolution))


def h3_parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """The parents of H3 cells at a coarser resolution (0..15), by bit arithmetic as H3's cellToParent does."""
    cells = np.asarray(cells, dtype=np.uint64)
    if not 0 <= resolution <= 15:
        raise AggregateError(f"H3 resolution {resolution} is out of range 0..15")
    if len(cells) and int(((cells & _RESOLUTION_MASK) >> _RESOLUTION_SHIFT).min()) < resolution:
        raise AggregateError(f"cannot take parents at resolution {resolution} of coarser cells")
    unused_digits = np.uint64((1 << (3 * (15 - resolution))) - 1)  # digits below the resolution are all 7
    return (cells & ~_RESOLUTION_MASK) | (np.uint64(resolution) << _RESOLUTION_SHIFT) | unused_digits


def h3_strings(cells: np.ndarray) -> np.ndarray:
    """H3 cells as the lowercase hex strings h3 uses (object array)."""
    return np.array([format(int(c), "x") for c in np.asarray(cells, dtype=np.uint64)], dtype=object)


def h3_centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of H3 cell centres, WGS84 degrees."""
    cells = np.asarray(cells, dtype=np.uint64)
    if len(cells) == 0:
        return np.empty(0), np.empty(0)
    batch = h3_vector.cells_to_coordinates(cells)
    return np.asarray(batch.column("lng"), dtype=np.float64), np.asarray(batch.column("lat"), dtype=np.float64)


# ------------------------------------------------------------------------------------------------- counting


def count_by(keys: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and how many times each occurs; missing keys (None, NaN, category -1) are left out."""
    if isinstance(keys, pd.Categorical):
        codes = np.asarray(keys.codes, dtype=np.int64)
        counts = np.bincount(codes[codes >= 0], minlength=len(keys.categories))
        present = np.flatnonzero(counts)
        unique = np.asarray(keys.categories, dtype=object)[present]
        order = np.argsort(unique.astype(str), kind="stable")
        return unique[order], counts[present][order].astype(np.int64)
    array = np.asarray(keys)
    if array.dtype != object:
        unique_n, counts_n = np.unique(array, return_counts=True)
        return unique_n, counts_n.astype(np.int64)
    # Object keys (strings): hash them rather than sort 500,000 Python objects.
    codes, uniques = pd.factorize(pd.Series(array, dtype=object), use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    labels = np.asarray(uniques, dtype=object)
    order = np.argsort(labels.astype(str), kind="stable")
    return labels[order], counts[order].astype(np.int64)


def parse_unit(unit: str) -> tuple[str, int | None]:
    """('h3', resolution) for 'h3:7'..'h3:10', (unit, None) for grid, community and town; AggregateError otherwise."""
    if unit in AREA_UNITS:
        return unit, None
    if unit.startswith("h3:"):
        try:
            resolution = int(unit[3:])
        except ValueError:
            raise AggregateError(f"H3 unit must be h3:<resolution>, got {unit!r}") from None
        return "h3", validate_resolution(resolution)
    raise AggregateError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")


def unit_keys(events: EventFrame, unit: str) -> np.ndarray | pd.Categorical:
    """Each event's unit code: H3 cells as uint64, areas as categories."""
    kind, resolution = parse_unit(unit)
    if kind == "h3":
        assert resolution is not None
        return h3_cells(events.lon, events.lat, resolution)
    if kind == "grid":
        return events.grid_code
    if kind == "community":
        return events.community_code()
    return events.town_code


def _counts_by_unit(events: EventFrame, unit: str) -> pd.Series:
    keys = unit_keys(events, unit)
    unique, counts = count_by(keys)
    codes = h3_strings(unique) if unit.startswith("h3:") else unique.astype(object)
    return pd.Series(counts, index=pd.Index(codes, dtype=object, name="code"), dtype=np.int64)


def aggregate(
    events: EventFrame,
    unit: str,
    *,
    denominators: Denominators | None = None,
    include_empty_units: bool = False,
) -> pd.DataFrame:
    """Count events per unit, with raw rates per registered entity and per 1,000 residents, and small-number flags.

    Columns: code, count, entities, residents, per_entity, per_1000_residents, small_n. A rate is NaN where its
    denominator is unknown or zero (never infinite); ``small_n`` marks a row whose figures rest on fewer than
    5 events, 20 entities or 1,000 residents, so that nobody ranks a 2-shop grid with 1 clue as the city's worst.
    The rates are raw (not smoothed); hotspot ranking by rate uses empirical Bayes (maps.heat.hotspots). With
    ``include_empty_units`` the units of ``denominators`` without events appear with count 0. ``attrs['unplaced']``
    is the number of events without a unit (no grid code, say). Rows: most events first, then by code.
    """
    counts = _counts_by_unit(events, unit)
    unplaced = len(events) - int(counts.sum())
    if denominators is not None and include_empty_units:
        codes = counts.index.union(denominators.entities.index).union(denominators.residents.index)
        counts = counts.reindex(codes, fill_value=0)
    frame = pd.DataFrame({"code": counts.index.astype(object), "count": counts.to_numpy(dtype=np.int64)})
    if denominators is not None:
        entities = denominators.entities.reindex(counts.index).to_numpy(dtype=np.float64)
        residents = denominators.residents.reindex(counts.index).to_numpy(dtype=np.float64)
    else:
        entities = residents = np.full(len(frame), np.nan)
    frame["entities"] = entities
    frame["residents"] = residents
    count = frame["count"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["per_entity"] = np.where(entities > 0, count / entities, np.nan)
        frame["per_1000_residents"] = np.where(residents > 0, count * 1000.0 / residents, np.nan)
    # NaN compares False, so an unknown denominator counts as small.
    frame["small_n"] = (count < MIN_COUNT) | ~(entities >= MIN_ENTITIES) | ~(residents >= MIN_RESIDENTS)
    frame = frame.sort_values(["count", "code"], ascending=[False, True], kind="stable").reset_index(drop=True)
    frame.attrs["unit"] = unit
    frame.attrs["unplaced"] = unplaced
    return frame


# ------------------------------------------------------------------------------------------------ denominators


def entity_h3_counts(lon: np.ndarray, lat: np.ndarray, resolution: int) -> pd.Series:
    """Registered entities per H3 cell (hex string index) from the entities' positions."""
    unique, counts = count_by(h3_cells(lon, lat, resolution))
    return pd.Series(counts.astype(np.float64), index=pd.Index(h3_strings(unique), dtype=object, name="code"))


def apportioned_h3_population(
    address_lon: np.ndarray,
    address_lat: np.ndarray,
    address_grid_code: np.ndarray,
    grid_population: Mapping[str, float] | pd.Series,
    resolution: int,
) -> pd.Series:
    """Residents per H3 cell: each grid's population shared among its cells in proportion to its address points.

    A cell holding 30 of a grid's 120 addresses gets a quarter of that grid's residents; cells straddling grids
    add up their shares. Residents of a grid with no address points cannot be placed and are left out.
    """
    cells = h3_cells(address_lon, address_lat, resolution)
    grid_codes = np.asarray(address_grid_code, dtype=object)
    population = pd.Series(grid_population, dtype=np.float64)
    frame = pd.DataFrame({"grid": grid_codes, "cell": cells})
    frame = frame[frame["grid"].notna()]
    per_pair = frame.groupby(["grid", "cell"], sort=False).size().rename("addresses").reset_index()
    per_grid = per_pair.groupby("grid")["addresses"].transform("sum")
    grid_people = population.reindex(per_pair["grid"].to_numpy()).to_numpy(dtype=np.float64)
    share = np.nan_to_num(grid_people) * per_pair["addresses"].to_numpy() / per_grid.to_numpy()
    by_cell = pd.Series(share).groupby(per_pair["cell"].to_numpy()).sum()
    return pd.Series(
        by_cell.to_numpy(dtype=np.float64),
        index=pd.Index(h3_strings(by_cell.index.to_numpy(dtype=np.uint64)), dtype=object, name="code"),
    )


def h3_denominators(
    entity_lon: np.ndarray,
    entity_lat: np.ndarray,
    address_lon: np.ndarray,
    address_lat: np.ndarray,
    address_grid_code: np.ndarray,
    grid_population: Mapping[str, float] | pd.Series,
    resolution: int,
) -> Denominators:
    """Entities counted by cell and residents apportioned by address points, per H3 cell."""
    return Denominators(
        entities=entity_h3_counts(entity_lon, entity_lat, resolution),
        residents=apportioned_h3_population(address_lon, address_lat, address_grid_code, grid_population, resolution),
    )


# ----------------------------------------------------------------------------------------------- heat layer


def points_or_aggregates(events: EventFrame, limit: int = MAX_RAW_POINTS) -> HeatPoints:
    """The events themselves when there are at most ``limit``; else H3 cell centres weighted by their counts.

    The finest H3 resolution (10 down to 0) whose occupied cells number at most ``limit`` is used, so the
    browser never receives more than ``limit`` points either way.
    """
    if limit < 1:
        raise AggregateError("limit must be at least 1")
    n = len(events)
    if n <= limit:
        return HeatPoints("points", None, events.lon.copy(), events.lat.copy(), np.ones(n, dtype=np.int64))
    # Compute the finest cells once and count; coarser cells are parents of the distinct fine ones.
    cells, counts = count_by(_cells_any_resolution(events.lon, events.lat, H3_MAX_RESOLUTION))
    for resolution in range(H3_MAX_RESOLUTION, -1, -1):
        if resolution < H3_MAX_RESOLUTION:
            parents = h3_parents(cells, resolution)
            unique, inverse = np.unique(parents, return_inverse=True)
            cells, counts = unique, np.bincount(inverse, weights=counts).astype(np.int64)
        if len(cells) <= limit:
            lon, lat = h3_centres(cells)
            return HeatPoints("h3", resolution, lon, lat, counts)
    raise AggregateError(f"cannot fit the events into {limit} points")  # 122 base cells; unreachable for limit ≥ 122


# ------------------------------------------------------------------------------------------------ class breaks


def _order_statistics(values: np.ndarray, n: int) -> np.ndarray:
    ordered = np.sort(values)
    return ordered[np.linspace(0, len(ordered) - 1, n).round().astype(int)]


def class_breaks(values: Any, k: int = 5, scheme: str = "fisher_jenks") -> ClassBreaks:
    """Choropleth classes by mapclassify: upper bounds and a legend [{lower, upper, count}], never failing on ties.

    NaN values are ignored. Fewer distinct values than k gives fewer classes (one per value); all-equal values
    give one class. Classes are (lower, upper], the first one [lower, upper]; empty classes are dropped.
    """
    if scheme not in CLASS_SCHEMES:
        raise AggregateError(f"unknown class scheme {scheme!r}; expected one of {', '.join(CLASS_SCHEMES)}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise AggregateError(f"k must be a positive integer, got {k!r}")
    y = np.asarray(values, dtype=np.float64).ravel()
    y = y[~np.isnan(y)]
    if len(y) == 0:
        return ClassBreaks(scheme, [], [])
    distinct = np.unique(y)
    k_eff = min(int(k), len(distinct))
    if k_eff == len(distinct):
        bins = distinct  # as many classes as values: one class per value, whatever the scheme
    elif scheme == "quantiles":
        bins = np.asarray(mapclassify.Quantiles(y, k=k_eff).bins, dtype=np.float64)
    elif scheme == "natural_breaks":
        with _global_rng_lock:
            state = np.random.get_state()
            np.random.seed(_NATURAL_BREAKS_SEED)
            try:
                bins = np.asarray(mapclassify.NaturalBreaks(y, k=k_eff).bins, dtype=np.float64)
            finally:
                np.random.set_state(state)
    else:
        sample = y if len(y) <= FISHER_JENKS_MAX_VALUES else _order_statistics(y, FISHER_JENKS_MAX_VALUES)
        k_sample = min(k_eff, len(np.unique(sample)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba not installed")  # the sample keeps it fast enough
            bins = np.asarray(mapclassify.FisherJenks(sample, k=k_sample).bins, dtype=np.float64)
    bins = np.unique(np.append(bins[bins < y.max()], y.max()))
    classes = np.searchsorted(bins, y, side="left")  # value v falls in the first class whose upper bound is ≥ v
    counts = np.bincount(classes, minlength=len(bins))
    legend: list[LegendRow] = []
    lower = float(y.min())
    kept: list[float] = []
    for upper, count in zip(bins.tolist(), counts.tolist(), strict=True):
        if count:
            legend.append(LegendRow(lower=lower, upper=float(upper), count=int(count)))
            kept.append(float(upper))
        lower = float(upper)
    return ClassBreaks(scheme, kept, legend)


# ------------------------------------------------------------------------------------------------ trend


def _change(current: int, previous: int) -> dict[str, int | float | None]:
    return {
        "current": current,
        "previous": previous,
        "change": current - previous,
        # From nothing, any rise is infinite: say so with None rather than a made-up percentage.
        "percent_change": None if previous == 0 else round(100.0 * (current - previous) / previous, 1),
    }


def compare_periods(events: EventFrame, since: datetime, until: datetime, *, unit: str = "town") -> PeriodComparison:
    """This period [since, until) against the previous one of equal length, overall and per unit.

    ``events`` must cover both periods (load from ``since - (until - since)``). Units are listed by largest
    rise first; a unit with no events in either period is absent.
    """
    lo, hi = _epoch_s(since), _epoch_s(until)
    if lo >= hi:
        raise AggregateError("the time window is empty or reversed")
    previous_since = since - (until - since)
    times = events.reported_at_s
    current_events = events.select((times >= lo) & (times < hi))
    previous_events = events.select((times >= lo - (hi - lo)) & (times < lo))
    current = _counts_by_unit(current_events, unit)
    previous = _counts_by_unit(previous_events, unit)
    codes = current.index.union(previous.index)
    current, previous = current.reindex(codes, fill_value=0), previous.reindex(codes, fill_value=0)
    units = [
        UnitChange.model_validate({"code": str(code), **_change(int(c), int(p))})
        for code, c, p in zip(codes, current.to_numpy(), previous.to_numpy(), strict=True)
    ]
    units.sort(key=lambda row: (-row.change, -row.current, row.code))
    return PeriodComparison.model_validate(
        {
            "unit": unit,
            "period": Period(since=since.isoformat(), until=until.isoformat()),
            "previous_period": Period(since=previous_since.isoformat(), until=since.isoformat()),
            **_change(len(current_events), len(previous_events)),
            "units": units,
        }
    )
