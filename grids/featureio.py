"""grids.featureio: read and validate boundary files (GeoJSON, GeoPackage, Shapefile) before an import.

`read_features` reads a file with pyogrio and returns it in EPSG:4326 (a file without a CRS is taken to be
EPSG:4326). `validate_features` checks every feature against the level's rules and returns one `Rejection`
per problem; an import loads all features or none, so the caller refuses the file if the list is not empty.

Checks (reason codes):

- ``missing_geometry``, ``not_polygonal``, ``invalid_geometry`` (detail: shapely's reason);
- ``missing_code``, ``malformed_code`` (12 digits for towns and communities, town codes end in 000;
  15 digits for grids), ``code_parent_mismatch`` (a community code starts with the first 9 digits of its
  town code, a grid code with its community code), ``duplicate_code`` (every feature sharing a code),
  ``code_exists`` (the code belongs to a feature already loaded that stays);
- ``missing_parent_code``, ``unknown_parent``, ``outside_parent`` (more than tolerance_m2 outside);
- ``overlaps_sibling`` (another feature of the file), ``overlaps_existing`` (an already-loaded sibling);
- ``bad_kind``, ``bad_population`` for the optional columns.

Areas are measured in EPSG:4547 metres.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from grids.codes import (
    COMMUNITY_DIGITS,
    GRID_DIGITS,
    TOWN_DIGITS,
    TOWN_SUFFIX,
    child_prefix,
    is_community,
    is_town,
)
from grids.errors import FeatureFileError, Rejection

METRIC_EPSG = 4547
STORAGE_EPSG = 4326
LEVELS = ("town", "community", "grid")


@dataclass(frozen=True)
class LevelSpec:
    """The columns and code format of one level of the territory."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    code_digits: int
    parent_column: str | None
    kinds: frozenset[str]


LEVEL_SPECS: Mapping[str, LevelSpec] = {
    "town": LevelSpec(
        ("code", "name"), ("kind", "population"), TOWN_DIGITS, None, frozenset({"subdistrict", "town", "park"})
    ),
    "community": LevelSpec(
        ("code", "name", "town_code"),
        ("kind", "population"),
        COMMUNITY_DIGITS,
        "town_code",
        frozenset({"village_committee", "residents_committee", "special", "virtual"}),
    ),
    "grid": LevelSpec(("code", "community_code"), ("name",), GRID_DIGITS, "community_code", frozenset()),
}
CODE_COLUMNS = ("code", "town_code", "community_code")
REASON_ORDER = (
    "missing_geometry",
    "not_polygonal",
    "invalid_geometry",
    "missing_code",
    "malformed_code",
    "code_parent_mismatch",
    "duplicate_code",
    "code_exists",
    "missing_parent_code",
    "unknown_parent",
    "outside_parent",
    "overlaps_sibling",
    "overlaps_existing",
    "bad_kind",
    "bad_population",
)
# Records one rejection: (row, reason_code, detail).
Reject = Callable[[int, str, str], None]


def read_features(path: str | Path, *, layer: str | int | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON, GeoPackage or Shapefile into a WGS84 frame; code columns become text.

    A file without a CRS is taken to be WGS84; any other CRS is reprojected. Field names cut to 10
    characters by the Shapefile format (community_) get their full name back.
    """
    path = Path(path)
    if not path.exists():
        raise FeatureFileError(f"{path}: no such file")
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # GDAL reports broken files in many exception types; all mean "cannot read"
        raise FeatureFileError(f"{path}: cannot read features ({type(exc).__name__}: {exc})") from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        raise FeatureFileError(f"{path}: the layer has no geometry column")
    if len(frame) == 0:
        raise FeatureFileError(f"{path}: the file contains no features")
    if frame.crs is None:
        frame = frame.set_crs(STORAGE_EPSG)
    elif frame.crs.to_epsg() != STORAGE_EPSG:
        try:
            frame = frame.to_crs(STORAGE_EPSG)
        except Exception as exc:  # pyproj raises several types for unusable CRSs
            raise FeatureFileError(f"{path}: cannot reproject from {frame.crs} to EPSG:4326 ({exc})") from exc
    # Shapefile (DBF) field names are cut to 10 characters: community_code arrives as community_.
    known = {c for spec in LEVEL_SPECS.values() for c in (*spec.required, *spec.optional)} | set(CODE_COLUMNS)
    truncated = {c[:10]: c for c in known if len(c) > 10 and c not in frame.columns and c[:10] in frame.columns}
    frame = frame.rename(columns=truncated)
    for column in CODE_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.Series([_code_text(v) for v in frame[column]], index=frame.index, dtype=object)
    return frame


def missing_columns(frame: pd.DataFrame, level: str) -> list[str]:
    """The required property columns of the level that the frame lacks."""
    return [c for c in _spec(level).required if c not in frame.columns]


def validate_features(
    frame: gpd.GeoDataFrame,
    level: str,
    *,
    parent_geoms: Mapping[str, BaseGeometry],
    existing_sibling_geoms: Mapping[str, BaseGeometry],
    tolerance_m2: float = 1.0,
) -> list[Rejection]:
    """Every problem of every feature (geometry, code, parent, overlaps), sorted by position in the file."""
    spec = _spec(level)
    missing = missing_columns(frame, level)
    if missing:
        raise FeatureFileError(f"features for level {level!r} lack required column(s): {', '.join(missing)}")
    crs = frame.crs if frame.crs is not None else STORAGE_EPSG
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    codes = [_code_text(v) for v in frame["code"]]
    parents: list[str | None] = (
        [_code_text(v) for v in frame[spec.parent_column]] if spec.parent_column else [None] * len(frame)
    )
    rejections: list[Rejection] = []

    def reject(i: int, reason: str, detail: str) -> None:
        rejections.append(Rejection(index=i, code=codes[i], reason_code=reason, detail=detail))

    usable = _check_geometries(geoms, reject)
    _check_codes(codes, parents, level, spec, existing_sibling_geoms, reject)
    _check_optional_columns(frame, spec, reject)

    metric = _to_metric(geoms, crs)
    if spec.parent_column:
        _check_parents(metric, usable, parents, parent_geoms, tolerance_m2, reject)
    _check_sibling_overlaps(metric, usable, codes, tolerance_m2, reject)
    _check_existing_overlaps(metric, usable, existing_sibling_geoms, tolerance_m2, reject)
    order = {i: n for n, i in enumerate(REASON_ORDER)}
    return sorted(rejections, key=lambda r: (r.index, order.get(r.reason_code, len(order)), r.detail))


def _spec(level: str) -> LevelSpec:
    if level not in LEVEL_SPECS:
        raise FeatureFileError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return LEVEL_SPECS[level]


def _code_text(value: Any) -> str | None:
    """A code as text: numbers lose a trailing .0 (Shapefile numeric fields), blanks become None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, np.floating):
        return _code_text(float(value))
    text = str(value).strip()
    return text or None


def _check_geometries(geoms: np.ndarray, reject: Reject) -> np.ndarray:
    """Reject missing, non-polygonal and invalid geometries; return the mask of usable ones."""
    present = np.array([g is not None for g in geoms], dtype=bool)
    present[present] = ~shapely.is_empty(geoms[present])
    type_ids = np.full(len(geoms), -1)
    type_ids[present] = shapely.get_type_id(geoms[present])
    polygonal = np.isin(type_ids, (3, 6))  # Polygon, MultiPolygon
    valid = np.zeros(len(geoms), dtype=bool)
    valid[polygonal] = shapely.is_valid(geoms[polygonal])
    for i in np.flatnonzero(~present):
        reject(int(i), "missing_geometry", "the feature has no geometry")
    for i in np.flatnonzero(present & ~polygonal):
        reject(int(i), "not_polygonal", f"expected Polygon or MultiPolygon, got {geoms[i].geom_type}")
    for i in np.flatnonzero(polygonal & ~valid):
        reject(int(i), "invalid_geometry", f"invalid polygon: {shapely.is_valid_reason(geoms[i])}")
    return polygonal & valid


def _check_codes(
    codes: list[str | None],
    parents: list[str | None],
    level: str,
    spec: LevelSpec,
    existing: Mapping[str, BaseGeometry],
    reject: Reject,
) -> None:
    pattern = re.compile(rf"\d{{{spec.code_digits}}}")
    counts: dict[str, int] = {}
    for code in codes:
        if code is not None:
            counts[code] = counts.get(code, 0) + 1
    for i, code in enumerate(codes):
        if code is None:
            reject(i, "missing_code", "the feature has no code")
            continue
        if not pattern.fullmatch(code):
            reject(i, "malformed_code", f"{level} codes have {spec.code_digits} digits, got {code!r}")
        elif level == "town" and not is_town(code):
            reject(i, "malformed_code", f"town codes end in {TOWN_SUFFIX}, got {code!r}")
        elif level == "community" and not is_community(code):
            reject(
                i, "malformed_code", f"community codes do not end in {TOWN_SUFFIX} (that is a town code), got {code!r}"
            )
        if counts[code] > 1:
            reject(i, "duplicate_code", f"{counts[code]} features in the file have code {code}")
        if code in existing:
            reject(i, "code_exists", f"code {code} belongs to a feature already loaded that is not being replaced")
        parent = parents[i]
        if spec.parent_column and parent is not None and pattern.fullmatch(code):
            prefix = child_prefix(parent, "community" if level == "community" else "grid")
            if not code.startswith(prefix):
                reject(i, "code_parent_mismatch", f"code {code} does not start with {prefix} ({spec.parent_column})")


def _check_optional_columns(frame: gpd.GeoDataFrame, spec: LevelSpec, reject: Reject) -> None:
    if "kind" in spec.optional and "kind" in frame.columns and spec.kinds:
        for i, kind in enumerate(frame["kind"]):
            if _is_blank(kind):
                continue
            if str(kind) not in spec.kinds:
                reject(i, "bad_kind", f"kind {kind!r} is not one of {', '.join(sorted(spec.kinds))}")
    if "population" in spec.optional and "population" in frame.columns:
        for i, population in enumerate(frame["population"]):
            if _is_blank(population):
                continue
            try:
                number = float(population)
            except (TypeError, ValueError):
                number = float("nan")
            if not (number >= 0 and number.is_integer()):
                reject(i, "bad_population", f"population must be a whole number ≥ 0, got {population!r}")


def _is_blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like values are not blank; they fail the type checks instead
        return False


def _to_metric(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Geometries in EPSG:4547 (None stays None)."""
    return np.asarray(gpd.GeoSeries(list(geoms), crs=crs).to_crs(METRIC_EPSG).to_numpy(), dtype=object)


def _mapping_to_metric(geoms: Mapping[str, BaseGeometry]) -> tuple[list[str], np.ndarray]:
    """Codes and their WGS84 geometries in EPSG:4547, made valid (stored data is trusted but not blindly)."""
    codes = list(geoms)
    metric = _to_metric(np.array([geoms[c] for c in codes], dtype=object), STORAGE_EPSG)
    bad = ~shapely.is_valid(metric)
    if bad.any():
        metric[bad] = shapely.make_valid(metric[bad])
    return codes, metric


def _check_parents(
    metric: np.ndarray,
    usable: np.ndarray,
    parents: list[str | None],
    parent_geoms: Mapping[str, BaseGeometry],
    tolerance_m2: float,
    reject: Reject,
) -> None:
    parent_codes, parent_metric = _mapping_to_metric(parent_geoms)
    position = {c: k for k, c in enumerate(parent_codes)}
    rows, parent_rows = [], []
    for i, parent in enumerate(parents):
        if parent is None:
            reject(i, "missing_parent_code", "the feature has no parent code")
        elif parent not in position:
            reject(i, "unknown_parent", f"parent {parent} is not known")
        elif usable[i]:
            rows.append(i)
            parent_rows.append(position[parent])
    if not rows:
        return
    outside = shapely.area(shapely.difference(metric[rows], parent_metric[parent_rows]))
    for i, k, area in zip(rows, parent_rows, outside, strict=True):
        if area > tolerance_m2:
            reject(i, "outside_parent", f"{area:,.1f} m² lies outside parent {parent_codes[k]}")


def _interior_overlaps(left: np.ndarray, right: np.ndarray, tolerance_m2: float) -> tuple[np.ndarray, np.ndarray]:
    """Of candidate pairs, those whose interiors overlap by more than tolerance_m2, with the overlap area."""
    # A cheap DE-9IM test first: neighbours that only share edges are the common case and need no overlay.
    interiors_meet = shapely.relate_pattern(left, right, "2********")
    keep = np.flatnonzero(interiors_meet)
    areas = shapely.area(shapely.intersection(left[keep], right[keep]))
    big = areas > tolerance_m2
    return keep[big], areas[big]


def _check_sibling_overlaps(
    metric: np.ndarray, usable: np.ndarray, codes: list[str | None], tolerance_m2: float, reject: Reject
) -> None:
    rows = np.flatnonzero(usable)
    if len(rows) < 2:
        return
    geoms = metric[rows]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    pair = a < b
    a, b = a[pair], b[pair]
    keep, areas = _interior_overlaps(geoms[a], geoms[b], tolerance_m2)
    for k, area in zip(keep, areas, strict=True):
        i, j = int(rows[a[k]]), int(rows[b[k]])
        reject(i, "overlaps_sibling", f"overlaps row {j} ({codes[j]}) by {area:,.1f} m²")
        reject(j, "overlaps_sibling", f"overlaps row {i} ({codes[i]}) by {area:,.1f} m²")


def _check_existing_overlaps(
    metric: np.ndarray,
    usable: np.ndarray,
    existing: Mapping[str, BaseGeometry],
    tolerance_m2: float,
    reject: Reject,
) -> None:
    rows = np.flatnonzero(usable)
    if not existing or len(rows) == 0:
        return
    existing_codes, existing_metric = _mapping_to_metric(existing)
    tree = shapely.STRtree(existing_metric)
    a, b = tree.query(metric[rows], predicate="intersects")
    keep, areas = _interior_overlaps(metric[rows][a], existing_metric[b], tolerance_m2)
    for k, area in zip(keep, areas, strict=True):
        reject(int(rows[a[k]]), "overlaps_existing", f"overlaps loaded {existing_codes[b[k]]} by {area:,.1f} m²")
