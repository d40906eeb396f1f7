"""maps.tile_cache: the in-process tile cache, bounded in bytes, and the index of which towns a tile touches.

A tile is kept under (layer, z, x, y, coords, scope, data version), where the data version is the counters of the
towns the tile touches (and of the whole city, '') in the groups of tables the layer reads (maps.models). A change
in one town bumps that town's counters only, so the tiles of other towns stay hits. An entry also ends at its
`valid_until`, the instant its content would change with time alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import STRtree

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# What an entry costs beside its bytes (key, entry, bookkeeping), so that empty tiles are not free.
ENTRY_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class CachedTile:
    """A tile as served: its bytes (empty: no feature), the same gzipped (compressed once, when built, rather than
    by the middleware on every answer), its ETag, and when time alone ends it (None: never)."""

    body: bytes
    gzipped: bytes
    etag: str
    valid_until: datetime | None


class TileCache:
    """A thread-safe LRU map of tiles whose total size stays within `max_bytes`.

    Examples
    --------
    >>> cache = TileCache(max_bytes=1_000_000)
    >>> cache.put(("grids", 12, 3337, 1780), CachedTile(b"...", b"", '"abc"', None))
    >>> cache.get(("grids", 12, 3337, 1780), now=some_instant).etag
    '"abc"'
    """

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, CachedTile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """The bytes the cache holds now (tiles plus their overhead)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable, *, now: datetime) -> CachedTile | None:
        """The tile kept under `key`, unless there is none or its `valid_until` has come."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.valid_until is not None and now >= entry.valid_until:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, tile: CachedTile) -> None:
        """Keep `tile` under `key`, dropping the least recently used tiles beyond `max_bytes`."""
        cost = _cost(tile)
        if cost > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = tile
            self._bytes += cost
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)

    def clear(self) -> None:
        """Drop every tile (the benchmark's cold start)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        tile = self._entries.pop(key)
        self._bytes -= _cost(tile)


def _cost(tile: CachedTile) -> int:
    return len(tile.body) + len(tile.gzipped) + ENTRY_OVERHEAD_BYTES


class TownIndex:
    """Which towns a WGS84 box touches, from the towns' own outlines (not their bounding boxes)."""

    def __init__(self, outlines: Sequence[tuple[str, bytes]]) -> None:
        self._codes = [code for code, _ in outlines]
        geometries = [shapely.from_wkb(wkb) for _, wkb in outlines]
        for geometry in geometries:
            shapely.prepare(geometry)
        self._tree = STRtree(geometries)

    def touching(self, bounds: tuple[float, float, float, float]) -> tuple[str, ...]:
        """The codes, sorted, of the towns whose outline intersects the box (west, south, east, north)."""
        hits = self._tree.query(shapely.box(*bounds), predicate="intersects")
        return tuple(sorted(self._codes[i] for i in hits))


class TownIndexCache:
    """The one TownIndex of the current territory version (rebuilt when the territory's counters change)."""

    def __init__(self) -> None:
        self._version: Hashable = None
        self._index: TownIndex | None = None
        self._lock = threading.Lock()

    def index(self, version: Hashable, load: Callable[[], Sequence[tuple[str, bytes]]]) -> TownIndex:
        """The index for this territory version, built from `load()`'s outlines when the version is new."""
        with self._lock:
            if self._index is None or self._version != version:
                self._index = TownIndex(load())
                self._version = version
            return self._index


Points = tuple[NDArray[np.float64], NDArray[np.float64]]


class EntityPoints:
    """Each town's entities as web-mercator arrays, kept per town and entities version, for the cluster tiles.

    A change of entities in one town reloads that town alone; a town not asked for since is never loaded.
    """

    def __init__(self) -> None:
        self._towns: dict[str, tuple[int, Points]] = {}
        self._lock = threading.Lock()

    def points(
        self, towns: Sequence[str], versions: Mapping[str, int], load: Callable[[Sequence[str]], Mapping[str, Points]]
    ) -> Points:
        """The points of `towns` together, loading (in one call of `load`) the towns missing or of another version."""
        with self._lock:
            stale = [t for t in towns if t not in self._towns or self._towns[t][0] != versions.get(t, 0)]
        if stale:
            loaded = load(stale)
            with self._lock:
                for town in stale:
                    self._towns[town] = (versions.get(town, 0), loaded[town])
        with self._lock:
            parts = [self._towns[t][1] for t in towns if t in self._towns]
        if not parts:
            return np.empty(0), np.empty(0)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def clear(self) -> None:
        """Forget every town's points."""
        with self._lock:
            self._towns.clear()
