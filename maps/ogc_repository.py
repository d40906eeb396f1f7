"""maps.ogc_repository: the SQL of the OGC API Features collections (towns, communities, grids), scoped and bound.

Every statement is put together from fixed fragments only: the collection's FROM and its whitelisted columns
(maps.ogc.COLLECTIONS) and conditions whose values are all bound parameters (maps.ogc.SqlFilter). The caller's
towns (`Scope.towns`, None for the whole city) are a bound array.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from maps.ogc import BBox, Collection, SqlFilter

# The FROM of each collection and the column that names the town of a feature.
_SOURCES: dict[str, tuple[str, str]] = {
    "towns": ("town h", "h.code"),
    "communities": ("community h", "h.town_code"),
    "grids": ("grid h JOIN grid_version v ON v.id = h.version_id AND v.status = 'active'", "h.town_code"),
}
COORDINATE_DECIMALS = 7


@dataclass(frozen=True)
class FeatureRow:
    """One feature as read: its properties (by queryable name) and its GeoJSON geometry (None when not asked for)."""

    properties: dict[str, Any]
    geometry: dict[str, Any] | None


def _where(
    collection: Collection, towns: frozenset[str] | None, bbox: BBox | None, filters: Iterable[SqlFilter]
) -> tuple[str, str, dict[str, Any]]:
    """FROM and WHERE of a collection's query with their bound values."""
    source, town_column = _SOURCES[collection.id]
    conditions = [f"(CAST(:towns AS text[]) IS NULL OR {town_column} = ANY(CAST(:towns AS text[])))"]
    params: dict[str, Any] = {"towns": sorted(towns) if towns is not None else None}
    if bbox is not None:
        conditions.append("ST_Intersects(h.geom, ST_MakeEnvelope(:west, :south, :east, :north, 4326))")
        params.update(zip(("west", "south", "east", "north"), bbox, strict=True))
    for condition in filters:
        conditions.append(condition.sql)
        params.update(condition.params)
    return source, " AND ".join(conditions), params


def _select_list(collection: Collection) -> str:
    return ", ".join(f'{p.column} AS "{p.name}"' for p in collection.properties)


def count_features(
    conn: Connection,
    collection: Collection,
    *,
    towns: frozenset[str] | None,
    bbox: BBox | None = None,
    filters: Iterable[SqlFilter] = (),
) -> int:
    """How many features of the collection match (numberMatched)."""
    source, where, params = _where(collection, towns, bbox, filters)
    sql = f"SELECT count(*) FROM {source} WHERE {where}"  # noqa: S608 - fixed fragments; values are bound
    return int(conn.execute(text(sql), params).scalar_one())


def read_features(
    conn: Connection,
    collection: Collection,
    *,
    towns: frozenset[str] | None,
    bbox: BBox | None = None,
    filters: Iterable[SqlFilter] = (),
    limit: int,
    offset: int = 0,
    with_geometry: bool = True,
) -> list[FeatureRow]:
    """One page of the matching features, in code order (properties only when `with_geometry` is False)."""
    source, where, params = _where(collection, towns, bbox, filters)
    geometry = f"ST_AsGeoJSON(h.geom, {COORDINATE_DECIMALS})" if with_geometry else "NULL"
    sql = (
        f"SELECT {_select_list(collection)}, {geometry} AS geometry "  # noqa: S608 - fixed fragments; values are bound
        f"FROM {source} WHERE {where} ORDER BY h.code LIMIT :limit OFFSET :offset"
    )
    rows = conn.execute(text(sql), {**params, "limit": limit, "offset": offset}).mappings()
    return [_feature_row(collection, row) for row in rows]


def read_feature(
    conn: Connection, collection: Collection, code: str, *, towns: frozenset[str] | None
) -> FeatureRow | None:
    """The feature of this code within the towns, or None (absent and outside look the same)."""
    found = read_features(conn, collection, towns=towns, filters=[SqlFilter("h.code = :code", {"code": code})], limit=1)
    return found[0] if found else None


def collection_extent(conn: Connection, collection: Collection, *, towns: frozenset[str] | None) -> BBox | None:
    """The bounding box of the collection's features within the towns (None when there is none)."""
    source, where, params = _where(collection, towns, None, ())
    sql = (
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "  # noqa: S608 - fixed fragments; values are bound
        f"FROM (SELECT ST_Extent(h.geom) AS e FROM {source} WHERE {where}) s"
    )
    row = conn.execute(text(sql), params).first()
    if row is None or row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _feature_row(collection: Collection, row: Any) -> FeatureRow:
    properties = {p.name: row[p.name] for p in collection.properties}
    return FeatureRow(properties, json.loads(row["geometry"]) if row["geometry"] is not None else None)
