"""maps.tile_repository: the SQL of the vector tiles (PostGIS ST_AsMVTGeom / ST_AsMVT), the data versions and the
town outlines the tile cache keys on.

Every tile statement returns one row: the tile (`mvt`, empty when no feature) and `valid_until`, the instant its
content would change with time alone (a task falling overdue, a clue leaving the 30-day window), or NULL. Features
are picked with the GiST index (`geom && envelope`), the envelope being the tile and its buffer, moved back by the
tile's basemap shift (GCJ-02) and taken into WGS84; it is written out in the WHERE clause rather than read from the
`env` CTE, so that the planner sees its size and weighs the spatial index against the others. Geometry is moved by
the shift in web mercator. Polygons are snapped in WGS84 to a common grid of about one screen pixel (neighbours keep
their shared edges) and clipped to the envelope before they are projected. The statements are spelled out whole: no
SQL is assembled from values; the scope's fragments (supervision.scope) are fixed SQL with bound values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection, text

from maps.tiles import (
    MVT_BUFFER,
    MVT_EXTENT,
    Clusters,
    LayerSpec,
    Tile,
    TileLayer,
    TileShift,
    mercator_arrays,
    snap_deg,
)
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES

_TOWNS = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
features AS (
    SELECT CAST(h.code AS bigint) AS id, h.code, h.name,
           coalesce(
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(s.snapped, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true),
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(h.geom, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true)
           ) AS geom
    FROM town h
    CROSS JOIN env
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, :snap) AS snapped) s
    WHERE h.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND (CAST(:towns AS text[]) IS NULL OR h.code = ANY(:towns))
)
SELECT ST_AsMVT(f, 'towns', :extent, 'geom', 'id') AS mvt, CAST(NULL AS timestamptz) AS valid_until
FROM features f WHERE f.geom IS NOT NULL
"""

_COMMUNITIES = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
features AS (
    SELECT CAST(h.code AS bigint) AS id, h.code, h.name, h.town_code,
           coalesce(
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(s.snapped, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true),
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(h.geom, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true)
           ) AS geom
    FROM community h
    CROSS JOIN env
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, :snap) AS snapped) s
    WHERE h.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND (CAST(:towns AS text[]) IS NULL OR h.town_code = ANY(:towns))
)
SELECT ST_AsMVT(f, 'communities', :extent, 'geom', 'id') AS mvt, CAST(NULL AS timestamptz) AS valid_until
FROM features f WHERE f.geom IS NOT NULL
"""

# Grids, with the work counts only where the caller's task (clue) scope covers the grid: the scope's fragment is
# applied to the grid as if it were a task of no department (gs), so a department officer gets no counts. The counts
# are taken once per statement over the towns the tile touches (task and clue town_code are indexed).
_GRIDS = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
task_counts AS (
    SELECT t.grid_code, count(*) AS open_tasks, count(*) FILTER (WHERE t.due_at < :now) AS overdue_tasks,
           min(t.due_at) FILTER (WHERE t.due_at >= :now) AS next_due
    FROM task t WHERE t.status = ANY(:open) AND t.town_code = ANY(:tile_towns)
    GROUP BY t.grid_code
),
clue_counts AS (
    SELECT c.grid_code, count(*) AS clues_30d, min(c.reported_at) + interval '30 days' AS next_expiry
    FROM clue c
    WHERE c.reported_at > CAST(:now AS timestamptz) - interval '30 days' AND c.town_code = ANY(:tile_towns)
    GROUP BY c.grid_code
),
features AS (
    SELECT CAST(h.code AS bigint) AS id, h.code, h.name, h.town_code, h.community_code,
           h.worker_count AS workers, h.workload,
           -- Hours per month per active worker (planning.workload_service, as GET /v1/workload counts them; a
           -- staffing move changes the workers, not worker_count); NULL until the workload is computed.
           CAST(gw.hours / NULLIF((SELECT count(*) FROM worker w WHERE w.version_id = h.version_id
                                    AND w.grid_code = h.code AND w.active), 0) AS real) AS hours_per_worker,
           CASE WHEN {task_covers} THEN coalesce(tc.open_tasks, 0) END AS open_tasks,
           CASE WHEN {task_covers} THEN coalesce(tc.overdue_tasks, 0) END AS overdue_tasks,
           CASE WHEN {clue_covers} THEN coalesce(cc.clues_30d, 0) END AS clues_30d,
           CASE WHEN {task_covers} THEN tc.next_due END AS next_due,
           CASE WHEN {clue_covers} THEN cc.next_expiry END AS next_expiry,
           coalesce(
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(s.snapped, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true),
               ST_AsMVTGeom(
                   ST_Affine(ST_Transform(ST_ClipByBox2D(h.geom, env.sel), 3857), :a, :b, :d, :e, :xoff, :yoff),
                   env.tile, :extent, :buffer, true)
           ) AS geom
    FROM grid h
    JOIN grid_version v ON v.id = h.version_id AND v.status = 'active'
    CROSS JOIN env
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid(h.geom, :snap) AS snapped) s
    CROSS JOIN LATERAL (
        SELECT h.town_code, h.community_code, h.code AS grid_code,
               CAST(NULL AS text) AS department_codes, CAST(NULL AS text) AS department_code
    ) gs
    LEFT JOIN task_counts tc ON tc.grid_code = h.code
    LEFT JOIN clue_counts cc ON cc.grid_code = h.code
    LEFT JOIN grid_workload gw ON gw.version_id = h.version_id AND gw.grid_code = h.code
    WHERE h.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND (CAST(:towns AS text[]) IS NULL OR h.town_code = ANY(:towns))
)
SELECT ST_AsMVT(f, 'grids', :extent, 'geom', 'id') AS mvt,
       (SELECT least(min(next_due), min(next_expiry)) FROM features WHERE geom IS NOT NULL) AS valid_until
FROM (
    SELECT id, code, name, town_code, community_code, workers, workload, hours_per_worker, open_tasks, overdue_tasks,
           clues_30d, geom
    FROM features WHERE geom IS NOT NULL
) f
"""

# Entities one by one (zoom ≥ 14); the id is a hash of the USCC kept within JavaScript's exact integers.
_ENTITY_POINTS = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
features AS (
    SELECT hashtextextended(e.uscc, 0) & 9007199254740991 AS id, e.uscc, e.name, e.grid_code, e.status,
           ST_AsMVTGeom(
               ST_Affine(ST_Transform(e.geom, 3857), :a, :b, :d, :e, :xoff, :yoff),
               env.tile, :extent, :buffer, true) AS geom
    FROM entity e CROSS JOIN env
    WHERE e.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND (CAST(:towns AS text[]) IS NULL OR e.town_code = ANY(:towns))
)
SELECT ST_AsMVT(f, 'entities', :extent, 'geom', 'id') AS mvt, CAST(NULL AS timestamptz) AS valid_until
FROM features f WHERE f.geom IS NOT NULL
"""

# Clusters of entities (zoom < 14), gathered in Python (maps.tiles.cluster_points) from each town's points kept in
# memory (maps.tile_cache.EntityPoints), encoded here.
_CLUSTERS = """
SELECT ST_AsMVT(f, 'entities', :extent, 'geom', 'id') AS mvt
FROM (
    SELECT u.id, true AS cluster, u.point_count,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(u.x, u.y), 3857), ST_TileEnvelope(:z, :x, :y), :extent, :buffer, true)
               AS geom
    FROM unnest(CAST(:ids AS bigint[]), CAST(:xs AS float8[]), CAST(:ys AS float8[]), CAST(:counts AS integer[]))
        AS u(id, x, y, point_count)
) f
WHERE f.geom IS NOT NULL
"""

# The entities of some towns as one multipoint (WKB) per town ('' for entities of no town).
_ENTITY_POINTS_BY_TOWN = """
SELECT coalesce(e.town_code, '') AS town_code, ST_AsBinary(ST_Collect(e.geom)) AS points
FROM entity e
WHERE e.geom IS NOT NULL AND coalesce(e.town_code, '') = ANY(:towns)
GROUP BY 1
"""

# Open tasks at their entity's point (a clue task at its clue's, else the grid's inner point); `overdue` is the
# rule of the statistics and the task list: an open task whose deadline has passed. Candidates come from the towns
# the tile touches (task.town_code is indexed), in the caller's task scope.
_TASKS = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
candidates AS (
    SELECT t.id, t.duty, t.status, t.due_at, t.grid_code, t.worker_id, e.name AS entity_name,
           coalesce(e.geom, c.geom, (
               SELECT ST_PointOnSurface(g.geom) FROM grid g JOIN grid_version v ON v.id = g.version_id
               WHERE v.status = 'active' AND g.code = t.grid_code
           )) AS point
    FROM task t
    LEFT JOIN entity e ON e.uscc = t.entity_uscc
    LEFT JOIN clue c ON c.id = t.clue_id
    WHERE t.status = ANY(:open) AND t.town_code = ANY(:tile_towns) AND {task_where}
),
features AS (
    SELECT k.id AS fid, k.id, k.duty, k.status, (k.due_at IS NOT NULL AND k.due_at < :now) AS overdue,
           to_char(k.due_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"') AS due_at,
           k.grid_code, k.worker_id, k.entity_name, k.due_at AS due,
           ST_AsMVTGeom(
               ST_Affine(ST_Transform(k.point, 3857), :a, :b, :d, :e, :xoff, :yoff),
               env.tile, :extent, :buffer, true) AS geom
    FROM candidates k CROSS JOIN env
    WHERE k.point && env.sel
)
{tail}"""

# Clues of the last 30 days, and older ones still open, in the caller's clue scope: two disjoint halves, so that
# each can use its index (reported_at; the open tasks of clues) together with the spatial one.
_CLUES = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326) AS sel
),
shown AS (
    SELECT c.id, c.industry, c.severity, c.status, c.source, c.reported_at, c.grid_code, c.geom
    FROM clue c
    WHERE c.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND c.reported_at > CAST(:now AS timestamptz) - interval '30 days' AND {clue_where}
    UNION ALL
    SELECT c.id, c.industry, c.severity, c.status, c.source, c.reported_at, c.grid_code, c.geom
    FROM clue c
    WHERE c.geom && ST_Transform(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), 4326)
      AND c.reported_at <= CAST(:now AS timestamptz) - interval '30 days' AND {clue_where}
      AND c.id IN (SELECT t.clue_id FROM task t WHERE t.status = ANY(:open) AND t.clue_id IS NOT NULL)
),
features AS (
    SELECT c.id AS fid, c.id, c.industry, c.severity, c.status, c.source,
           to_char(c.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"') AS reported_at,
           c.grid_code, c.status = ANY(:open) AS still_open, c.reported_at + interval '30 days' AS expiry,
           ST_AsMVTGeom(
               ST_Affine(ST_Transform(c.geom, 3857), :a, :b, :d, :e, :xoff, :yoff),
               env.tile, :extent, :buffer, true) AS geom
    FROM shown c CROSS JOIN env
)
{tail}"""


# How the features of the tasks and clues statements become the tile: one by one, or (for a tile that would weigh
# more than a tile may) clustered in cells of 16 pixels of the tile, with their count.
_TASK_POINTS = """
SELECT ST_AsMVT(f, 'tasks', :extent, 'geom', 'fid') AS mvt,
       (SELECT min(due) FROM features WHERE due >= :now AND geom IS NOT NULL) AS valid_until
FROM (
    SELECT fid, id, duty, status, overdue, due_at, grid_code, worker_id, entity_name, geom
    FROM features WHERE geom IS NOT NULL
) f
"""

_CLUE_POINTS = """
SELECT ST_AsMVT(f, 'clues', :extent, 'geom', 'fid') AS mvt,
       (SELECT min(expiry) FROM features WHERE NOT still_open AND geom IS NOT NULL) AS valid_until
FROM (
    SELECT fid, id, industry, severity, status, source, reported_at, grid_code, geom
    FROM features WHERE geom IS NOT NULL
) f
"""

_TASK_CLUSTERS = """
SELECT ST_AsMVT(f, 'tasks', :extent, 'geom', 'fid') AS mvt,
       (SELECT min(due) FROM features WHERE due >= :now AND geom IS NOT NULL) AS valid_until
FROM (
    SELECT CAST(floor(ST_X(geom) / 256) * 64 + floor(ST_Y(geom) / 256) AS bigint) AS fid, true AS cluster,
           count(*) AS point_count, count(*) FILTER (WHERE overdue) AS overdue_count,
           ST_Centroid(ST_Collect(geom)) AS geom
    FROM features
    WHERE geom IS NOT NULL AND ST_X(geom) >= 0 AND ST_X(geom) < :extent AND ST_Y(geom) >= 0 AND ST_Y(geom) < :extent
    GROUP BY floor(ST_X(geom) / 256), floor(ST_Y(geom) / 256)
) f
"""

_CLUE_CLUSTERS = """
SELECT ST_AsMVT(f, 'clues', :extent, 'geom', 'fid') AS mvt,
       (SELECT min(expiry) FROM features WHERE NOT still_open AND geom IS NOT NULL) AS valid_until
FROM (
    SELECT CAST(floor(ST_X(geom) / 256) * 64 + floor(ST_Y(geom) / 256) AS bigint) AS fid, true AS cluster,
           count(*) AS point_count, ST_Centroid(ST_Collect(geom)) AS geom
    FROM features
    WHERE geom IS NOT NULL AND ST_X(geom) >= 0 AND ST_X(geom) < :extent AND ST_Y(geom) >= 0 AND ST_Y(geom) < :extent
    GROUP BY floor(ST_X(geom) / 256), floor(ST_Y(geom) / 256)
) f
"""


# For the rest of the request's transaction only (set_config(..., true) is SET LOCAL).
_TILE_PLANNING = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)


@dataclass(frozen=True)
class TileRequest:
    """What one tile statement needs: the tile, its basemap shift, the scopes and the instant of the rules."""

    spec: LayerSpec
    tile: Tile
    shift: TileShift
    map_towns: frozenset[str] | None
    task_scope: Scope
    clue_scope: Scope
    tile_towns: tuple[str, ...]
    now: datetime
    # Tasks and clues clustered rather than one by one (a tile that would weigh more than a tile may).
    clustered: bool = False


@dataclass(frozen=True)
class RenderedTile:
    """A tile's bytes (empty: no feature) and the instant its content changes with time alone (None: never)."""

    body: bytes
    valid_until: datetime | None


def render_tile(conn: Connection, request: TileRequest) -> RenderedTile:
    """The layer's tile, built by PostGIS, within the caller's scopes."""
    tile = request.tile
    params: dict[str, Any] = {
        "z": tile.z,
        "x": tile.x,
        "y": tile.y,
        "margin": MVT_BUFFER / MVT_EXTENT,
        "extent": MVT_EXTENT,
        "buffer": MVT_BUFFER,
        "a": request.shift.a,
        "b": request.shift.b,
        "d": request.shift.d,
        "e": request.shift.e,
        "xoff": request.shift.xoff,
        "yoff": request.shift.yoff,
        "dx": request.shift.dx,
        "dy": request.shift.dy,
        "snap": snap_deg(tile.z),
        "towns": sorted(request.map_towns) if request.map_towns is not None else None,
        "now": request.now,
        "open": list(OPEN_STATUSES),
    }
    sql = _statement(request, params)
    # The driver prepares a statement run often; PostgreSQL's generic plan of it cannot know the tile's size and
    # picks the wrong index (a city-view clue tile three times slower): plan each tile for its own envelope. And no
    # parallel workers: starting them costs more than the few thousand rows of a tile (10 ms of a 30 ms clue tile).
    conn.execute(_TILE_PLANNING)
    row = conn.execute(text(sql), params).one()
    body = bytes(row.mvt) if row.mvt is not None else b""
    return RenderedTile(body=body, valid_until=row.valid_until)


def _statement(request: TileRequest, params: dict[str, Any]) -> str:
    """The layer's statement with the scope's fixed fragments in place; their bound values go into `params`."""
    layer = request.spec.layer
    if layer is TileLayer.TOWNS:
        return _TOWNS
    if layer is TileLayer.COMMUNITIES:
        return _COMMUNITIES
    if layer is TileLayer.ENTITIES:
        return _ENTITY_POINTS
    if layer is TileLayer.GRIDS:
        # Both scopes are the caller's (or nowhere, without the capability): their bound values never differ.
        task_covers, task_params = request.task_scope.task_sql("gs")
        clue_covers, clue_params = request.clue_scope.clue_sql("gs")
        params.update(task_params, **clue_params, tile_towns=list(request.tile_towns))
        return _GRIDS.format(task_covers=task_covers, clue_covers=clue_covers)
    if layer is TileLayer.TASKS:
        where, scope_params = request.task_scope.task_sql("t", held=True)
        params.update(scope_params, tile_towns=list(request.tile_towns))
        return _TASKS.format(task_where=where, tail=_TASK_CLUSTERS if request.clustered else _TASK_POINTS)
    where, scope_params = request.clue_scope.clue_sql("c")
    params.update(scope_params)
    return _CLUES.format(clue_where=where, tail=_CLUE_CLUSTERS if request.clustered else _CLUE_POINTS)


def render_clusters(conn: Connection, tile: Tile, clusters: Clusters) -> bytes:
    """The entities layer's tile of these clusters (empty when there are none)."""
    if not clusters.ids:
        return b""
    params = {
        "z": tile.z,
        "x": tile.x,
        "y": tile.y,
        "extent": MVT_EXTENT,
        "buffer": MVT_BUFFER,
        "ids": clusters.ids,
        "xs": clusters.x_m,
        "ys": clusters.y_m,
        "counts": clusters.counts,
    }
    mvt = conn.execute(text(_CLUSTERS), params).scalar_one()
    return bytes(mvt) if mvt is not None else b""


def entity_points(conn: Connection, towns: Sequence[str]) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """The entities of `towns` ('' for those of no town) as web-mercator (x, y) arrays by town; every town present."""
    empty = np.empty(0, dtype=np.float64)
    by_town = {town: (empty, empty) for town in towns}
    for town, wkb in conn.execute(text(_ENTITY_POINTS_BY_TOWN), {"towns": list(towns)}):
        lon_lat = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)))
        by_town[town] = mercator_arrays(lon_lat[:, 0], lon_lat[:, 1])
    return by_town


# ------------------------------------------------------------------------------------------------ data versions


# The counters, and the database's own identity under DATABASE_KEY: a restored database (swapped in under the same
# name, its counters those of the backup) is another database, so no tile of the one before is taken for its own.
_DATA_VERSIONS = """
SELECT layer_group, town_code, version FROM data_version
UNION ALL
SELECT 'database', '', CAST(oid AS bigint) FROM pg_database WHERE datname = current_database()
"""
DATABASE_KEY = ("database", "")


def data_versions(conn: Connection) -> dict[tuple[str, str], int]:
    """Every (group, town) counter of data_version ('' is the whole city; a missing one is 0), and DATABASE_KEY."""
    rows = conn.execute(text(_DATA_VERSIONS))
    return {(r[0], r[1]): int(r[2]) for r in rows}


def town_outlines(conn: Connection) -> list[tuple[str, bytes]]:
    """(code, WKB in WGS84) of every town, to tell which towns a tile touches."""
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM town ORDER BY code"))
    return [(str(r[0]), bytes(r[1])) for r in rows]
