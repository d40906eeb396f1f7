"""maps.heat.schemas: the typed answers of the heat services — heat layers, aggregate tables, period comparisons
and hotspot collections — exactly as the dashboard, the exports and the OpenAPI document see them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from maps.geojson import FeatureCollection, Model
from maps.heat.emerging import EmergingClass
from maps.heat.hotspots import HotClass


class Window(Model):
    """The days asked for, as ISO timestamps: [from, to) in Asia/Shanghai."""

    from_: str = Field(alias="from")
    to: str


class Period(Model):
    """A period [since, until), ISO timestamps."""

    since: str
    until: str


class LegendRow(Model):
    """One class of a choropleth legend: values in (lower, upper] (the first class: [lower, upper]) and how many."""

    lower: float
    upper: float
    count: int


# ------------------------------------------------------------------------------------------------ comparison


class Change(Model):
    """Events now and in the previous period; percent_change is None from zero (any rise is infinite)."""

    current: int
    previous: int
    change: int
    percent_change: float | None


class _Coded(Model):
    code: str


class UnitChange(Change, _Coded):
    """The change of one unit (its code first)."""


class _Periods(Model):
    unit: str
    period: Period
    previous_period: Period


class PeriodTotals(Change, _Periods):
    """This period against the previous one of equal length, overall."""


class PeriodComparison(PeriodTotals):
    """This period against the previous one, overall and per unit (largest rise first)."""

    units: list[UnitChange]


class ComparisonSummary(PeriodTotals):
    """The heat layers' comparison: the totals and the ten largest rises."""

    top_rises: list[UnitChange]


# ------------------------------------------------------------------------------------------------ heat layers


class HeatLayer(Model):
    """The heat layer's points [lat, lon, weight]: the events themselves (mode points, weight 1) or H3 cell
    centres weighted by count (mode h3, at `resolution`)."""

    mode: Literal["points", "h3"]
    resolution: int | None
    points: list[tuple[float, float, float]]


class HexagonProperties(Model):
    """One H3 cell of the choropleth: its count, raw rates, small-number flag and legend class (`bin`)."""

    code: str
    count: int
    per_entity: float | None
    per_1000_residents: float | None
    small_n: bool
    bin: int


class HeatLayers(Model):
    """GET /v1/heatmap: heat points, H3 hexagons with their legend, and this period against the previous one."""

    window: Window
    town: str | None
    kind: str
    industry: str | None
    total: int
    empty: bool
    message: str | None
    heat: HeatLayer
    hexagons: FeatureCollection[HexagonProperties]
    legend: list[LegendRow]
    comparison: ComparisonSummary


# ------------------------------------------------------------------------------------------------ aggregates


class AggregateRow(Model):
    """One unit's count and raw rates (None where the denominator is unknown or zero) and the small-number flag."""

    code: str
    count: int
    entities: float | None
    residents: float | None
    per_entity: float | None
    per_1000_residents: float | None
    small_n: bool


class AggregateTable(Model):
    """GET /v1/aggregates: the window's events per unit, busiest first, with the events placed in no unit."""

    window: Window
    town: str | None
    unit: str
    total: int
    unplaced: int
    empty: bool
    message: str | None
    rows: list[AggregateRow]


# ------------------------------------------------------------------------------------------------ hotspots


class HotspotProperties(Model):
    """One unit's hotspot figures: count, EB-smoothed rate, z, p, FDR q, class and emerging category."""

    code: str
    count: int
    rate: float | None
    z: float
    p: float
    q: float
    class_: HotClass = Field(alias="class")
    emerging: EmergingClass | None


def _absent(value: object) -> bool:
    return value is None


class HotspotCollection(FeatureCollection[HotspotProperties]):
    """GET /v1/hotspots: a GeoJSON FeatureCollection of units with their hotspot figures, and how it was computed.

    An area without units answers only type, features, empty and message (method, unit, per and window absent).
    """

    empty: bool
    message: str | None
    method: Literal["gi_star", "rate"] | None = Field(default=None, exclude_if=_absent)
    unit: str | None = Field(default=None, exclude_if=_absent)
    per: Literal["residents", "entities"] | None = Field(default=None, exclude_if=_absent)
    window: Window | None = Field(default=None, exclude_if=_absent)
