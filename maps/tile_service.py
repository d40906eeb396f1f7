"""maps.tile_service: one vector tile for one caller, from the cache when its data has not changed since.

The data version of a tile is read before the tile is built, so a tile is never kept under a version newer than
its content: a change that lands in between only makes the next request build it again.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import Connection

from gis import clock
from gis.coords import CoordSystem
from maps import tile_repository as repository
from maps.tile_cache import CachedTile, EntityPoints, TileCache, TownIndexCache
from maps.tiles import (
    ENTITY_POINT_ZOOM,
    MAX_TILE_BYTES,
    DataGroup,
    LayerSpec,
    Tile,
    TileLayer,
    buffered_bounds_lon_lat,
    cluster_points,
    tile_shift,
)
from supervision.scope import NOWHERE, Scope

# Towns a shifted (GCJ-02, BD-09) tile may reach beyond its own box: those offsets stay under about 1 km.
_SHIFT_MARGIN_DEG = 0.02
# Tiles are gzipped once, when built: level 5 is within 3 % of level 9's size at a third of its time.
GZIP_LEVEL = 5


@dataclass(frozen=True)
class Caller:
    """Whose tile: their scope, and whether their role may read tasks and clues at all (else no work is shown)."""

    scope: Scope
    reads_tasks: bool
    reads_clues: bool

    @property
    def key(self) -> tuple[object, ...]:
        """What of the caller a tile depends on (two callers of the same key see the same tiles)."""
        return (self.scope.kind, self.scope.code, self.scope.town, self.reads_tasks, self.reads_clues)


@dataclass(frozen=True)
class TileAnswer:
    """A tile as served, and whether the cache had it."""

    tile: CachedTile
    cache: Literal["hit", "miss"]


class TileStore:
    """The tiles of one application: its cache and its index of town outlines."""

    def __init__(self, cache: TileCache | None = None, *, max_tile_bytes: int = MAX_TILE_BYTES) -> None:
        self.cache = cache or TileCache()
        self.max_tile_bytes = max_tile_bytes
        self._towns = TownIndexCache()
        self._points = EntityPoints()

    def tile(self, conn: Connection, spec: LayerSpec, tile: Tile, caller: Caller, coords: CoordSystem) -> TileAnswer:
        """The tile from the cache when its key (data version included) is there and still valid, else built."""
        versions = repository.data_versions(conn)
        database = versions.get(repository.DATABASE_KEY, 0)
        territory = (database, *sorted((k, v) for k, v in versions.items() if k[0] == DataGroup.TERRITORY))
        index = self._towns.index(territory, lambda: repository.town_outlines(conn))
        margin = 0.0 if coords == "wgs84" else _SHIFT_MARGIN_DEG
        towns = index.touching(buffered_bounds_lon_lat(tile, margin))
        data_version = (database, *(versions.get((group, town), 0) for group in spec.groups for town in (*towns, "")))
        key = (spec.layer.value, tile.z, tile.x, tile.y, coords, caller.key, data_version)
        now = clock.now()
        cached = self.cache.get(key, now=now)
        if cached is not None:
            return TileAnswer(cached, "hit")
        if spec.layer is TileLayer.ENTITIES and tile.z < ENTITY_POINT_ZOOM:
            rendered = self._clusters(conn, tile, caller, coords, towns, versions)
        else:
            request = repository.TileRequest(
                spec=spec,
                tile=tile,
                shift=tile_shift(tile, coords),
                map_towns=caller.scope.towns,
                task_scope=caller.scope if caller.reads_tasks else NOWHERE,
                clue_scope=caller.scope if caller.reads_clues else NOWHERE,
                tile_towns=towns,
                now=now,
            )
            rendered = repository.render_tile(conn, request)
            if len(rendered.body) > self.max_tile_bytes:
                # Denser than a tile may weigh (a full-scale city's busiest streets, an annual-report campaign's
                # tasks at city zoom): the points come as clusters, like the entities below zoom 14.
                rendered = self._dense(conn, request, caller, coords, towns, versions) or rendered
        built = _tagged(key, rendered)
        self.cache.put(key, built)
        return TileAnswer(built, "miss")

    def _clusters(
        self,
        conn: Connection,
        tile: Tile,
        caller: Caller,
        coords: CoordSystem,
        towns: tuple[str, ...],
        versions: dict[tuple[str, str], int],
    ) -> repository.RenderedTile:
        """The entity clusters of a tile, from the points of the towns it touches within the caller's map."""
        allowed = caller.scope.towns
        wanted = [t for t in (*towns, "") if (t in allowed if allowed is not None else True)]
        entity_versions = {t: versions.get((DataGroup.ENTITIES, t), 0) for t in wanted}
        x_m, y_m = self._points.points(wanted, entity_versions, lambda stale: repository.entity_points(conn, stale))
        clusters = cluster_points(x_m, y_m, tile, tile_shift(tile, coords))
        return repository.RenderedTile(body=repository.render_clusters(conn, tile, clusters), valid_until=None)

    def _dense(
        self,
        conn: Connection,
        request: repository.TileRequest,
        caller: Caller,
        coords: CoordSystem,
        towns: tuple[str, ...],
        versions: dict[tuple[str, str], int],
    ) -> repository.RenderedTile | None:
        """The clustered form of an over-weight tile of points (None for the polygon layers: none to cluster)."""
        layer = request.spec.layer
        if layer is TileLayer.ENTITIES:
            return self._clusters(conn, request.tile, caller, coords, towns, versions)
        if layer in (TileLayer.TASKS, TileLayer.CLUES):
            return repository.render_tile(conn, replace(request, clustered=True))
        return None

    def clear(self) -> None:
        """Forget every tile and every town's entity points (a cold start)."""
        self.cache.clear()
        self._points.clear()


def _tagged(key: tuple[object, ...], rendered: repository.RenderedTile) -> CachedTile:
    """The tile as served, its ETag a digest of its key and of the instant time ends it."""
    tag = hashlib.sha256(repr((key, rendered.valid_until)).encode()).hexdigest()[:24]
    gzipped = gzip.compress(rendered.body, GZIP_LEVEL) if rendered.body else b""
    return CachedTile(body=rendered.body, gzipped=gzipped, etag=f'"{tag}"', valid_until=rendered.valid_until)
