"""maps.heat.heatmap: the layers of the town leader's heatmap page — heat points, H3 hexagons with a legend, comparison.

Reads events through maps.heat.events, aggregates with maps.heat.aggregate, and shapes GeoJSON for the browser, which
never receives more than 50,000 raw points (beyond that, H3 cell centres weighted by count).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3
import numpy as np
import shapely
import shapely.geometry
from sqlalchemy import Connection

from gis.cache import Cache
from maps.errors import AggregateError, HotspotError
from maps.geojson import Feature, FeatureCollection, MultiPolygon, Polygon
from maps.heat.aggregate import (
    Denominators,
    EventFrame,
    aggregate,
    class_breaks,
    compare_periods,
    h3_cells,
    h3_strings,
    parse_unit,
    points_or_aggregates,
    validate_resolution,
)
from maps.heat.emerging import EmergingClass, emerging
from maps.heat.events import load_denominators, load_events, study_grids
from maps.heat.hotspots import GiStar, eb_rates, find_hotspots
from maps.heat.schemas import (
    AggregateRow,
    AggregateTable,
    ComparisonSummary,
    HeatLayer,
    HeatLayers,
    HexagonProperties,
    HotspotCollection,
    HotspotProperties,
    Window,
)
from maps.heat.weights import weights_for_grids, weights_for_h3
from supervision.routing import default_router

DENOMINATOR_TTL_S = 600.0
# The page's kinds; "all" is every clue (of kind clue or unlicensed) and every unlicensed finding, counted once.
KINDS = {"clue": ("clue",), "unlicensed": ("unlicensed",), "problem": ("problem",), "all": ("clue", "unlicensed")}
_denominators: Cache[tuple[str, str | None], Denominators] = Cache(ttl_s=DENOMINATOR_TTL_S)


def denominators(conn: Connection, unit: str, town: str | None = None) -> Denominators:
    """Entities and residents per unit (H3 ones: of the town's people only), cached for ten minutes."""
    key = (unit, town if unit.startswith("h3:") else None)  # areas are the same whoever looks
    return _denominators.get_or_load(key, lambda: load_denominators(conn, unit, key[1]))


def validate_industry(industry: str | None) -> None:
    """None (all industries) or one of the clue industries; anything else is refused naming them."""
    industries = default_router().clue_industries()
    if industry is not None and industry not in industries:
        raise AggregateError(f"unknown industry {industry!r}; choose one of {'、'.join(industries)}")


def load_window(
    conn: Connection,
    *,
    town: str | None,
    since: datetime,
    until: datetime,
    industry: str | None,
    kind: str,
    with_previous: bool = False,
    status: str | None = None,
    source: str | None = None,
) -> EventFrame:
    """The events of one kind in the window (and the previous window of equal length when asked), filtered by
    industry, status (a clue's or an inspection task's) and source (field, hotline, inspection); None = all."""
    validate_industry(industry)
    start = since - (until - since) if with_previous else since
    return load_events(
        conn,
        town_codes=[town] if town else None,
        since=start,
        until=until,
        industries=[industry] if industry else None,
        statuses=[status] if status else None,
        sources=[source] if source else None,
        kinds=list(KINDS[kind]) if kind in KINDS else [kind],
    )


def aggregate_table(
    conn: Connection,
    *,
    town: str | None,
    since: datetime,
    until: datetime,
    unit: str,
    industry: str | None,
    kind: str,
    status: str | None = None,
    source: str | None = None,
) -> AggregateTable:
    """Counts and raw rates (per entity, per 1,000 residents, with the small-number flag) per unit, busiest first."""
    parse_unit(unit)  # refuse an unknown unit before reading anything
    events = load_window(
        conn, town=town, since=since, until=until, industry=industry, kind=kind, status=status, source=source
    )
    table = aggregate(events, unit, denominators=denominators(conn, unit, town))
    rows = [
        AggregateRow(
            code=str(r["code"]),
            count=int(r["count"]),
            entities=_number(r["entities"]),
            residents=_number(r["residents"]),
            per_entity=_number(r["per_entity"]),
            per_1000_residents=_number(r["per_1000_residents"]),
            small_n=bool(r["small_n"]),
        )
        for r in table.to_dict("records")
    ]
    return AggregateTable(
        window=_window(since, until),
        town=town,
        unit=unit,
        total=len(events),
        unplaced=int(table.attrs.get("unplaced", 0)),
        empty=len(events) == 0,
        message="本时段没有数据" if len(events) == 0 else None,
        rows=rows,
    )


def _window(since: datetime, until: datetime) -> Window:
    return Window.model_validate({"from": since.isoformat(), "to": until.isoformat()})


# What the page calls the hotspot classes (maps.heat.hotspots.CLASS_ORDER; colours: maps.export.HOT_COLOURS)
# and the emerging-hotspot categories (maps.heat.emerging.EMERGING_CLASSES), and the colours of the hexagons' legend
# classes (`bin` 0, 1, …; a class beyond the ramp takes its last colour). Served by GET /v1/vocabulary.
HOT_CLASS_LABELS_ZH = {
    "hot_99": "热点（99%）",
    "hot_95": "热点（95%）",
    "hot_90": "热点（90%）",
    "not_significant": "不显著",
    "cold_90": "冷点（90%）",
    "cold_95": "冷点（95%）",
    "cold_99": "冷点（99%）",
}
EMERGING_LABELS_ZH = {
    "new": "新热点",
    "consecutive": "连续热点",
    "intensifying": "加剧热点",
    "persistent": "持续热点",
    "diminishing": "减弱热点",
    "sporadic": "零星热点",
    "oscillating": "振荡热点",
    "historical": "历史热点",
}
BIN_COLOURS = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704", "#4a1503", "#2d0c02")


def hexagon_features(table: Any, bins: list[float]) -> FeatureCollection[HexagonProperties]:
    """H3 cells as GeoJSON polygons with count, rates and their legend class (`bin`)."""
    features: list[Feature[HexagonProperties]] = []
    counts = table["count"].to_numpy(dtype=float)
    classes = np.searchsorted(np.asarray(bins, dtype=float), counts, side="left") if bins else np.zeros(len(counts))
    for (_, row), bin_index in zip(table.iterrows(), classes.tolist(), strict=True):
        properties = HexagonProperties(
            code=str(row["code"]),
            count=int(row["count"]),
            per_entity=_number(row.get("per_entity")),
            per_1000_residents=_number(row.get("per_1000_residents")),
            small_n=bool(row.get("small_n", False)),
            bin=int(min(bin_index, max(len(bins) - 1, 0))),
        )
        features.append(Feature(geometry=h3_polygon(str(row["code"])), properties=properties))
    return FeatureCollection(features=features)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if np.isnan(number) else round(number, 4)


def heat_layers(
    conn: Connection,
    *,
    town: str | None,
    since: datetime,
    until: datetime,
    industry: str | None,
    kind: str,
    resolution: int,
    status: str | None = None,
    source: str | None = None,
) -> HeatLayers:
    """Heat points (or weighted cell centres), the H3 choropleth with its legend, and this period vs the last."""
    resolution = validate_resolution(resolution)
    both = load_window(
        conn, town=town, since=since, until=until, industry=industry, kind=kind, with_previous=True,
        status=status, source=source,
    )  # fmt: skip
    current = both.between(since, until)
    heat = points_or_aggregates(current)
    unit = f"h3:{resolution}"
    table = aggregate(current, unit, denominators=denominators(conn, unit, town))
    breaks = class_breaks(table["count"].to_numpy(), k=5)
    comparison = compare_periods(both, since, until, unit="grid")
    total = len(current)
    return HeatLayers(
        window=_window(since, until),
        town=town,
        kind=kind,
        industry=industry,
        total=total,
        empty=total == 0,
        message="本时段没有数据" if total == 0 else None,
        heat=HeatLayer(
            mode=heat.mode,
            resolution=heat.resolution,
            points=[
                (round(float(lat), 6), round(float(lon), 6), float(w))
                for lat, lon, w in zip(heat.lat, heat.lon, heat.weight, strict=True)
            ],
        ),
        hexagons=hexagon_features(table, breaks.bins),
        legend=breaks.legend,
        comparison=ComparisonSummary(
            **comparison.model_dump(exclude={"units"}, by_alias=False), top_rises=comparison.units[:10]
        ),
    )


# ------------------------------------------------------------------------------------------------ hotspots

EMERGING_MIN_SLICES = 4
SLICE_DAYS = 7


PER = ("entities", "residents")
RATE_SCALE = {"entities": 1.0, "residents": 1000.0}  # per registered entity; per 1,000 residents


def study_cells(base: Denominators, resolution: int, event_lon: np.ndarray, event_lat: np.ndarray) -> list[str]:
    """The H3 cells of a study area: every cell holding a standard address or an open entity (the cells of its
    cached denominators) or an event.

    Cells with people but no event in the window belong in it: their residents are part of the city rate and of
    their neighbours' exposure, and a quiet cell is information.
    """
    cells = set(base.residents.index) | set(base.entities.index)
    if len(event_lon):
        cells |= set(h3_strings(h3_cells(event_lon, event_lat, resolution)).tolist())
    return sorted(cells)


def _units(
    conn: Connection, unit: str, town: str | None, events: EventFrame, per: str, study_area: list[str] | None = None
) -> tuple[list[str], list[Any], np.ndarray]:
    """The study area's units (the town's or city's grids, or its H3 cells: see study_cells, or `study_area`),
    their shapes (None for H3), and their registered entities or residents."""
    if per not in PER:
        raise HotspotError(f"rates are per {' or '.join(PER)}, not {per!r}")
    kind, resolution = parse_unit(unit)
    base = denominators(conn, unit, town)
    if kind == "grid":
        codes, geoms, _ = study_grids(conn, town)
    elif kind == "h3" and resolution is not None:
        codes = study_area if study_area is not None else study_cells(base, resolution, events.lon, events.lat)
        geoms = [None] * len(codes)
    else:
        raise HotspotError(f"hotspots are computed on grids or H3 cells, not {unit!r}")
    return codes, geoms, getattr(base, per).reindex(codes, fill_value=0).to_numpy(dtype=float)


def _counts(events: EventFrame, unit: str, codes: list[str]) -> np.ndarray:
    """Events per unit, in the order of `codes` (zero where a unit has none)."""
    table = aggregate(events, unit)
    return table.set_index("code")["count"].reindex(codes, fill_value=0).to_numpy(dtype=float)


def h3_polygon(cell: str) -> Polygon:
    """An H3 cell as a GeoJSON polygon (lon, lat order, ring closed)."""
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return Polygon(coordinates=[ring])


def _geometry(code: str, geom: Any) -> Polygon | MultiPolygon:
    if geom is None:
        return h3_polygon(code)
    mapped: dict[str, Any] = shapely.geometry.mapping(geom)  # tuples: validation makes them lists
    if mapped["type"] == "Polygon":
        return Polygon.model_validate(mapped)
    return MultiPolygon.model_validate(mapped)


@dataclass(frozen=True)
class HotspotAnalysis:
    """One hotspot run: the units, their counts and population, the weights, and the result (None with a message)."""

    codes: list[str]
    geoms: list[Any]  # grid shapes, None for H3 cells
    counts: np.ndarray
    population: np.ndarray  # residents or registered entities per unit
    w: Any  # libpysal W
    result: GiStar | None
    message: str | None
    events: EventFrame


def analyse_hotspots(
    conn: Connection,
    *,
    events: EventFrame,
    town: str | None,
    unit: str,
    method: str,
    per: str = "residents",
    study_area: list[str] | None = None,
) -> HotspotAnalysis:
    """Hot and cold units of some events: the study area, counts, weights and the chosen method's classes.

    `study_area` overrides the H3 cells study_cells would pick (a caller analysing many windows of one city).
    """
    _check_method(method)
    codes, geoms, population = _units(conn, unit, town, events, per, study_area)
    return _analyse(events, unit, method, per, codes, geoms, population)


def _check_method(method: str) -> None:
    if method not in ("gi_star", "rate"):
        raise HotspotError(f"method must be gi_star or rate, not {method!r}")


def _analyse(
    events: EventFrame, unit: str, method: str, per: str, codes: list[str], geoms: list[Any], population: np.ndarray
) -> HotspotAnalysis:
    """The statistics of analyse_hotspots, once the units are read (no database)."""
    counts = _counts(events, unit, codes)
    w = (weights_for_grids(geoms, codes) if unit == "grid" else weights_for_h3(codes)) if codes else None
    message = "本时段没有数据" if counts.sum() == 0 else None
    if method == "rate" and population.sum() == 0 and message is None:
        message = "本区域没有常住人口数据" if per == "residents" else "本区域没有登记主体"
    result = None
    if message is None:
        result = find_hotspots(counts, w, method=method, population=population if method == "rate" else None)  # type: ignore[arg-type]
    return HotspotAnalysis(codes, geoms, counts, population, w, result, message, events)


@dataclass(frozen=True)
class HotspotInputs:
    """What a hotspot run reads from the database (the window's events, the study area's units and population),
    and its options: everything hotspots_from_inputs needs, so that it can run where there is no database."""

    events: EventFrame
    codes: list[str]
    geoms: list[Any]  # grid shapes, None for H3 cells
    population: np.ndarray
    since: datetime
    until: datetime
    unit: str
    method: str
    per: str


def hotspot_inputs(
    conn: Connection,
    *,
    town: str | None,
    since: datetime,
    until: datetime,
    unit: str,
    method: str,
    kind: str,
    industry: str | None = None,
    per: str = "residents",
    status: str | None = None,
    source: str | None = None,
) -> HotspotInputs:
    """The database reads of hotspot_collection: the window's events and the study area's units."""
    events = load_window(
        conn, town=town, since=since, until=until, industry=industry, kind=kind, status=status, source=source
    )
    _check_method(method)
    codes, geoms, population = _units(conn, unit, town, events, per)
    return HotspotInputs(events, codes, geoms, population, since, until, unit, method, per)


def hotspot_collection(
    conn: Connection,
    *,
    town: str | None,
    since: datetime,
    until: datetime,
    unit: str,
    method: str,
    kind: str,
    industry: str | None = None,
    per: str = "residents",
    status: str | None = None,
    source: str | None = None,
) -> HotspotCollection:
    """Hotspots with FDR classes and the emerging category, as a GeoJSON FeatureCollection.

    method="gi_star": Getis-Ord Gi* of counts; method="rate": the empirical-Bayes rate test per `per`
    (maps.heat.hotspots.rate_hotspots). `rate` in the properties is always the EB-smoothed rate (per registered
    entity, or per 1,000 residents), so a unit with two entities and one clue does not show a rate of 0.5.
    """
    inputs = hotspot_inputs(
        conn, town=town, since=since, until=until, unit=unit, method=method, kind=kind, industry=industry, per=per,
        status=status, source=source,
    )  # fmt: skip
    return hotspots_from_inputs(inputs)


def hotspots_from_inputs(inputs: HotspotInputs) -> HotspotCollection:
    """The statistics and the FeatureCollection of hotspot_collection from its database reads (no database)."""
    events, since, until, unit, method, per = (
        inputs.events, inputs.since, inputs.until, inputs.unit, inputs.method, inputs.per
    )  # fmt: skip
    run = _analyse(events, unit, method, per, inputs.codes, inputs.geoms, inputs.population)
    codes, geoms, counts, population, w, result, message = (
        run.codes, run.geoms, run.counts, run.population, run.w, run.result, run.message
    )  # fmt: skip
    if not codes:
        return HotspotCollection(features=[], empty=True, message="本时段没有数据")
    categories: list[EmergingClass | None] = [None] * len(codes)
    n_slices = (until - since).days // SLICE_DAYS
    if result is not None and n_slices >= EMERGING_MIN_SLICES:
        by_slice = np.zeros((n_slices, len(codes)))
        start = until - timedelta(days=SLICE_DAYS * n_slices)
        for i in range(n_slices):
            part = events.between(start + timedelta(days=SLICE_DAYS * i), start + timedelta(days=SLICE_DAYS * (i + 1)))
            by_slice[i] = _counts(part, unit, codes)
        categories = emerging(by_slice, w, method=method, population=population if method == "rate" else None)  # type: ignore[arg-type]
    smoothed = eb_rates(counts, population) * RATE_SCALE[per] if population.sum() > 0 else np.full(len(codes), np.nan)
    features: list[Feature[HotspotProperties]] = []
    for i, code in enumerate(codes):
        properties = HotspotProperties.model_validate(
            {
                "code": code,
                "count": int(counts[i]),
                "rate": round(float(smoothed[i]), 4) if np.isfinite(smoothed[i]) else None,
                "z": round(float(result.z[i]), 3) if result is not None else 0.0,
                "p": float(f"{result.p[i]:.3g}") if result is not None else 1.0,
                "q": float(f"{result.q[i]:.3g}") if result is not None else 1.0,
                "class": str(result.classes[i]) if result is not None else "not_significant",
                "emerging": categories[i],
            }
        )
        features.append(Feature(geometry=_geometry(code, geoms[i]), properties=properties))
    return HotspotCollection.model_validate(
        {
            "features": features,
            "empty": bool(counts.sum() == 0),
            "message": message,
            "method": method,
            "unit": unit,
            "per": per,
            "window": _window(since, until),
        }
    )
