"""maps.repository: the SQL of the map layers (GeoJSON built inside PostGIS) and of the grid popup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, text

from gis import clock
from maps.layers import BBox, Layer

# (west, south, east, north) in WGS84 degrees.
Bounds = tuple[float, float, float, float]

# Every layer statement returns one row: the feature count, the bytes that do not shrink with
# simplification (properties plus the JSON skeleton: 45 bytes a feature, 41 the collection), and the
# FeatureCollection text itself. Geometry is snapped to a common grid of :snap_deg degrees (shared
# edges stay shared, so neighbours stay tiled); a polygon that collapses entirely falls back to a
# topology-preserving simplification so that no feature disappears. The three statements differ
# only in their FROM and properties; they are spelled out whole so that no SQL is ever assembled. Each keeps only
# the features of :towns (a town's own code, or the town_code of a community or grid); NULL means the whole city.
# Grid features carry only the code (its first 12 digits are the community's) and the two figures the map
# colours by: with names and counts the ~2,900 grids of the city do not fit in 1 MB at city zoom; the popup
# fetches the rest from /v1/grids/{code}.

_TOWNS = text(
    """
WITH features AS (
    SELECT h.code,
           row_to_json(p)::text AS properties,
           ST_AsGeoJSON(
               CASE
                   WHEN CAST(:snap_deg AS float8) <= 0 THEN h.geom
                   WHEN s.snapped IS NULL OR ST_IsEmpty(s.snapped)
                       THEN ST_SimplifyPreserveTopology(h.geom, CAST(:snap_deg AS float8))
                   ELSE s.snapped
               END,
               CAST(:decimals AS integer)) AS geometry
    FROM town h
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, CAST(:snap_deg AS float8)) AS snapped) s
    CROSS JOIN LATERAL (
        SELECT h.code, h.name, h.population, round(CAST(h.area_m2 / 1e6 AS numeric), 2) AS area_km2
    ) p
    WHERE ST_Intersects(h.geom, ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326))
      AND (CAST(:towns AS text[]) IS NULL OR h.code = ANY(:towns))
)
SELECT count(*) AS n_features,
       coalesce(sum(octet_length(f.properties) + 45), 0) + 41 AS fixed_bytes,
       '{"type":"FeatureCollection","features":['
           || coalesce(string_agg(
                  '{"type":"Feature","properties":' || f.properties || ',"geometry":' || f.geometry || '}',
                  ',' ORDER BY f.code),
              '')
           || ']}' AS body
FROM features f
"""
)

_COMMUNITIES = text(
    """
WITH features AS (
    SELECT h.code,
           row_to_json(p)::text AS properties,
           ST_AsGeoJSON(
               CASE
                   WHEN CAST(:snap_deg AS float8) <= 0 THEN h.geom
                   WHEN s.snapped IS NULL OR ST_IsEmpty(s.snapped)
                       THEN ST_SimplifyPreserveTopology(h.geom, CAST(:snap_deg AS float8))
                   ELSE s.snapped
               END,
               CAST(:decimals AS integer)) AS geometry
    FROM community h
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, CAST(:snap_deg AS float8)) AS snapped) s
    CROSS JOIN LATERAL (
        SELECT h.code, h.name, h.town_code, h.kind, h.population
    ) p
    WHERE ST_Intersects(h.geom, ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326))
      AND (CAST(:towns AS text[]) IS NULL OR h.town_code = ANY(:towns))
)
SELECT count(*) AS n_features,
       coalesce(sum(octet_length(f.properties) + 45), 0) + 41 AS fixed_bytes,
       '{"type":"FeatureCollection","features":['
           || coalesce(string_agg(
                  '{"type":"Feature","properties":' || f.properties || ',"geometry":' || f.geometry || '}',
                  ',' ORDER BY f.code),
              '')
           || ']}' AS body
FROM features f
"""
)

_GRIDS = text(
    """
WITH features AS (
    SELECT h.code,
           row_to_json(p)::text AS properties,
           ST_AsGeoJSON(
               CASE
                   WHEN CAST(:snap_deg AS float8) <= 0 THEN h.geom
                   WHEN s.snapped IS NULL OR ST_IsEmpty(s.snapped)
                       THEN ST_SimplifyPreserveTopology(h.geom, CAST(:snap_deg AS float8))
                   ELSE s.snapped
               END,
               CAST(:decimals AS integer)) AS geometry
    FROM grid h
    JOIN grid_version v ON v.id = h.version_id AND v.status = 'active'
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, CAST(:snap_deg AS float8)) AS snapped) s
    CROSS JOIN LATERAL (
        SELECT h.code, h.workload, h.worker_count
    ) p
    WHERE ST_Intersects(h.geom, ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326))
      AND (CAST(:towns AS text[]) IS NULL OR h.town_code = ANY(:towns))
)
SELECT count(*) AS n_features,
       coalesce(sum(octet_length(f.properties) + 45), 0) + 41 AS fixed_bytes,
       '{"type":"FeatureCollection","features":['
           || coalesce(string_agg(
                  '{"type":"Feature","properties":' || f.properties || ',"geometry":' || f.geometry || '}',
                  ',' ORDER BY f.code),
              '')
           || ']}' AS body
FROM features f
"""
)

_LAYER_SQL: dict[Layer, TextClause] = {Layer.TOWNS: _TOWNS, Layer.COMMUNITIES: _COMMUNITIES, Layer.GRIDS: _GRIDS}

_GRID_DETAILS = text(
    """
SELECT h.code, h.name, h.community_code, c.name AS community_name, c.kind AS community_kind,
       h.town_code, t.name AS town_name, h.population, h.address_count, h.entity_count, h.workload,
       h.worker_count, round(CAST(h.area_m2 / 1e6 AS numeric), 3) AS area_km2,
       ST_X(p.point) AS lon, ST_Y(p.point) AS lat,
       ST_XMin(h.geom) AS min_lon, ST_YMin(h.geom) AS min_lat, ST_XMax(h.geom) AS max_lon, ST_YMax(h.geom) AS max_lat,
       v.id AS version_id, v.name AS version_name,
       (SELECT count(*) FROM task k WHERE k.grid_code = h.code AND k.status NOT IN ('closed', 'cancelled'))
           AS open_tasks,
       (SELECT count(*) FROM task k WHERE k.grid_code = h.code AND k.status NOT IN ('closed', 'cancelled')
           AND k.due_at < :now) AS overdue_tasks,
       (SELECT count(*) FROM clue k WHERE k.grid_code = h.code AND k.reported_at > CAST(:now AS timestamptz) - interval '30 days')
           AS clues_30d
FROM grid h
JOIN grid_version v ON v.id = h.version_id AND v.status = 'active'
JOIN community c ON c.code = h.community_code
JOIN town t ON t.code = h.town_code
CROSS JOIN LATERAL (SELECT ST_PointOnSurface(h.geom) AS point) p
WHERE h.code = :code
"""
)


@dataclass(frozen=True)
class LayerPayload:
    """One layer's FeatureCollection as UTF-8 bytes, with what the size guard needs."""

    body: bytes
    n_features: int
    fixed_bytes: int


def layer_feature_collection(
    conn: Connection, layer: Layer, bbox: BBox, *, towns: frozenset[str] | None, snap_deg: float, decimals: int
) -> LayerPayload:
    """The layer's features intersecting `bbox` within `towns` (None: the whole city; empty: none) as a GeoJSON
    FeatureCollection (grids: active version only)."""
    params: dict[str, Any] = {
        **bbox.as_params(),
        "towns": sorted(towns) if towns is not None else None,
        "snap_deg": snap_deg,
        "decimals": decimals,
    }
    row = conn.execute(_LAYER_SQL[layer], params).one()
    return LayerPayload(body=row.body.encode("utf-8"), n_features=int(row.n_features), fixed_bytes=int(row.fixed_bytes))


def grid_details(conn: Connection, code: str) -> dict[str, Any] | None:
    """One grid of the active version with its community, town and counts; None when unknown."""
    row = conn.execute(_GRID_DETAILS, {"code": code, "now": clock.now()}).mappings().one_or_none()
    if row is None:
        return None
    details = dict(row)
    details["area_km2"] = float(details["area_km2"])
    return details


def town_extent(conn: Connection, town: str | None) -> tuple[str, Bounds] | None:
    """(name, (west, south, east, north)) of a town, or of the whole city when `town` is None; None if unknown."""
    if town is None:
        row = conn.execute(
            text(
                "SELECT '东莞市', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM town) s"
            )
        ).first()
    else:
        row = conn.execute(
            text("SELECT name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM town WHERE code = :c"),
            {"c": town},
        ).first()
    if row is None:
        return None
    return str(row[0]), (float(row[1]), float(row[2]), float(row[3]), float(row[4]))
