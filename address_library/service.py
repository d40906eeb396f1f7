"""address_library.service: geocode, reverse and autocomplete over the in-memory library, with grid placement."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from address_library.errors import AddressInputError, AddressLibraryError
from address_library.index import AddressIndex, OutsideShard
from address_library.match import Matcher
from address_library.match_result import MATCHED, NOT_FOUND, MatchResult, Place, Territory
from address_library.normalize import normalize
from address_library.repository import (
    COMPONENT_COLUMNS,
    AliasEntry,
    alias_rows,
    alias_version,
    index_rows,
    library_version,
)
from gis.coords import CoordSystem, convert
from gis.crs import lonlat_to_metric
from grids.placement import DEFAULT_NEAR_BOUNDARY_M, GridPlacement

# Output columns of a geocode answer, in the order the batch CSV writes them.
ANSWER_FIELDS = (
    "status",
    "level",
    "confidence",
    "address_id",
    "standard_address",
    "lon",
    "lat",
    "grid_code",
    "community_code",
    "town_code",
    "near_boundary",
    "reason",
)
AUTOCOMPLETE_LIMIT = 10
# The status of an answer to input that cannot be an address at all (empty, binary, over-long).
INVALID = "invalid"


@dataclass(frozen=True)
class GeocodeAnswer:
    """One geocode answer as API clients and the batch CSV see it."""

    status: str
    level: str | None
    confidence: float
    address_id: int | None
    standard_address: str | None
    lon: float | None
    lat: float | None
    grid_code: str | None
    community_code: str | None
    town_code: str | None
    near_boundary: bool | None
    reason: str | None
    candidates: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        out = asdict(self)
        out["candidates"] = list(self.candidates)
        return out

    def in_coords(self, coords: CoordSystem) -> GeocodeAnswer:
        """The same answer with its point in `coords` (wgs84 is stored)."""
        if coords == "wgs84" or self.lon is None or self.lat is None:
            return self
        lon, lat = convert(self.lon, self.lat, "wgs84", coords)
        return GeocodeAnswer(**{**asdict(self), "lon": round(float(lon), 7), "lat": round(float(lat), 7)})


@dataclass(frozen=True)
class SearchOrders:
    """What reverse and autocomplete search through, beside the match index (saved with it in a store)."""

    reverse_positions: np.ndarray  # rows a reverse answers with: doors and buildings (rooms share their point)
    town_offset: np.ndarray  # int16: length of the town name a row's normalized text opens with (0 if none)
    by_text: np.ndarray  # positions sorted by normalized text
    by_body: np.ndarray  # positions sorted by normalized text without its town


def search_orders(index: AddressIndex, territory: Territory) -> SearchOrders:
    """The reverse rows and autocomplete orders of an index built in memory (seconds per million addresses)."""
    texts = list(cast(Iterable[str], index.normalized_texts))
    town_names = {code: place.name for code, place in territory.towns.items()}
    town_offset = np.array(
        [len(town_names.get(c, "")) if t.startswith(town_names.get(c, "\0")) else 0
         for t, c in zip(texts, np.asarray(index.towns).tolist(), strict=True)],
        dtype=np.int16,
    )  # fmt: skip
    # The same str objects are compared through offsets, so no second copy of the library's text is kept.
    by_text = np.argsort(np.array(texts, dtype=object), kind="stable").astype(np.int64)
    bodies = [t[o:] for t, o in zip(texts, town_offset.tolist(), strict=True)]
    by_body = np.array(sorted(range(len(bodies)), key=bodies.__getitem__), dtype=np.int64)
    return SearchOrders(np.flatnonzero(np.asarray(index.levels) != "room"), town_offset, by_text, by_body)


class Geocoder:
    """The standard address library in memory: match index, territory points, grid placement, reverse tree.

    Built from the database (`load`), or opened from an index store (address_library.index_store), whole or as
    a shard that holds some towns' rows (`towns_held`).
    """

    def __init__(
        self,
        index: AddressIndex,
        territory: Territory,
        placement: GridPlacement,
        fingerprint: object,
        *,
        orders: SearchOrders | None = None,
        towns_held: frozenset[str] | None = None,
    ) -> None:
        self.index = index
        self.matcher = Matcher(index, territory)
        self.territory = territory
        self.placement = placement
        self.fingerprint = fingerprint
        self.alias_fingerprint: object = None
        self._aliases: dict[int, AliasEntry] = {}
        self.built_at = time.time()
        self._towns_held = towns_held
        # Addresses added after the build (learn_addresses): a small index of their own, until the next build.
        self._added: list[dict[str, Any]] = []
        self._recent: Matcher | None = None
        orders = orders if orders is not None else search_orders(index, territory)
        self._reverse_positions = orders.reverse_positions
        self._town_offset = orders.town_offset
        self._by_text = orders.by_text
        self._by_body = orders.by_body
        self._texts = index.normalized_texts
        # The reverse tree is built on the first reverse answer (about a second per million addresses), so that
        # opening a store stays in milliseconds.
        self._tree_lock = threading.Lock()
        self._tree_built: cKDTree | None = None

    @property
    def orders(self) -> SearchOrders:
        """The reverse rows and autocomplete orders (what an index store saves beside the index)."""
        return SearchOrders(self._reverse_positions, self._town_offset, self._by_text, self._by_body)

    @property
    def towns_held(self) -> frozenset[str] | None:
        """The towns whose rows this geocoder holds (a shard), or None for everything its index holds."""
        return self._towns_held

    @property
    def _tree(self) -> cKDTree:
        tree = self._tree_built
        if tree is None:
            with self._tree_lock:
                if self._tree_built is None:
                    positions = self._reverse_positions
                    x_m, y_m = lonlat_to_metric(
                        np.asarray(self.index.lons[positions], dtype=float),
                        np.asarray(self.index.lats[positions], dtype=float),
                    )
                    self._tree_built = cKDTree(np.column_stack([x_m, y_m]))
                tree = self._tree_built
        return tree

    @classmethod
    def load(cls, conn: Connection, *, near_boundary_m: float = DEFAULT_NEAR_BOUNDARY_M, workers: int = 2) -> Geocoder:
        """Build everything from the database (a few seconds per 100,000 addresses; `workers` forked processes)."""
        fingerprint = library_version(conn)
        index = AddressIndex.build(index_rows(conn), workers=workers)
        geocoder = cls(
            index, load_territory(conn), GridPlacement.load(conn, near_boundary_m=near_boundary_m), fingerprint
        )
        geocoder.reload_aliases(conn)
        _release_freed_memory()
        return geocoder

    def reload_aliases(self, conn: Connection) -> None:
        """Read the active aliases again (cheap: the table holds what dispatchers resolved)."""
        self.alias_fingerprint = alias_version(conn)
        self.set_aliases(alias_rows(conn))

    def set_aliases(self, aliases: Iterable[AliasEntry]) -> None:
        """Use exactly these aliases (the active rows of address_alias) in every matcher of this geocoder."""
        self._aliases = {entry.id: entry for entry in aliases}
        self.matcher.set_aliases(self._aliases.values())
        if self._recent is not None:
            self._recent.set_aliases(self._aliases.values())

    def learn_alias(self, entry: AliasEntry) -> None:
        """Use a new or changed alias in this process at once (other processes notice it through the fingerprint)."""
        # Each matcher answers an alias only with an address it holds, so both may know every alias.
        self._aliases[entry.id] = entry
        self.matcher.learn_alias(entry)
        if self._recent is not None:
            self._recent.learn_alias(entry)

    def forget_alias(self, alias_id: int) -> None:
        """Stop using an alias (withdrawn or suspended) in this process at once."""
        self._aliases.pop(alias_id, None)
        self.matcher.forget_alias(alias_id)
        if self._recent is not None:
            self._recent.forget_alias(alias_id)

    def learn_addresses(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Find standard addresses added after this geocoder was built at once (rows as repository.address_by_id).

        The main index is immutable arrays that take seconds per 100,000 addresses to build; the few addresses a
        process adds between two builds get an index of their own (rebuilt on each addition: it holds a handful),
        asked whenever the main index has no certain door-level answer. The next build holds them all.
        """
        known = {int(r["id"]) for r in self._added}
        fresh = [dict(r) for r in rows if int(r["id"]) not in known]
        if not fresh:
            return
        added = [*self._added, *fresh]
        recent = Matcher(AddressIndex.build(_index_frame(added), workers=1), self.territory)
        recent.set_aliases(self._aliases.values())
        self._added, self._recent = added, recent

    def _match(self, query: str) -> MatchResult:
        """The main index's answer, or the added addresses' when it is door-level and more certain."""
        result = self.matcher.match(query)
        recent = self._recent
        certain = result.status == MATCHED and result.is_door_level
        if recent is None or (certain and result.confidence >= 1.0):
            return result
        added = recent.match(query)
        if added.status == MATCHED and added.is_door_level and (not certain or added.confidence > result.confidence):
            return added
        return result

    # ------------------------------------------------------------------ geocode

    def geocode(self, query: str, *, near_boundary_m: float | None = None) -> GeocodeAnswer:
        """One typed address → answer (AddressInputError for unusable input)."""
        return self.answers([self._match(query)], near_boundary_m=near_boundary_m)[0]

    def geocode_many(self, queries: Sequence[str]) -> list[GeocodeAnswer]:
        """Many typed addresses → answers in order; unusable input answers status 'invalid' with its reason."""
        return self.answers([self._result(query) for query in queries])

    def _result(self, query: str) -> MatchResult:
        """The match of one query; unusable input is an 'invalid' result and a library refusal a 'not found'."""
        try:
            return self._match(query)
        except AddressInputError as exc:
            return MatchResult(INVALID, reason=f"invalid input: {exc}")
        except AddressLibraryError as exc:
            return MatchResult(NOT_FOUND, reason=str(exc))

    def try_geocode_many(self, queries: Sequence[str]) -> list[GeocodeAnswer | None]:
        """Like geocode_many, but None for a query whose answer needs a row of a town this geocoder does not hold.

        A shard reads only its towns' rows; any other read raises OutsideShard, so every answer it gives is the
        whole index's answer, and the None rows go to a geocoder that holds more.
        """
        results: list[MatchResult | None] = []
        for query in queries:
            try:
                results.append(self._result(query))
            except OutsideShard:
                results.append(None)
        answered = self.answers([r for r in results if r is not None])
        it = iter(answered)
        return [None if r is None else next(it) for r in results]

    def answers(self, results: list[MatchResult], *, near_boundary_m: float | None = None) -> list[GeocodeAnswer]:
        """Place match results in grids (vectorized) and shape them as answers."""
        lon = np.array([r.lon if r.lon is not None else np.nan for r in results], dtype=float)
        lat = np.array([r.lat if r.lat is not None else np.nan for r in results], dtype=float)
        placed = self.placement.place(lon, lat, near_boundary_m=near_boundary_m)
        out: list[GeocodeAnswer] = []
        for i, r in enumerate(results):
            grid_level = r.status == MATCHED and r.level in ("room", "building", "door", "road")
            grid = placed.grid_code[i] if grid_level else None
            out.append(
                GeocodeAnswer(
                    status=r.status,
                    level=r.level,
                    confidence=r.confidence,
                    address_id=r.address_id,
                    standard_address=r.standard_address,
                    lon=None if r.lon is None else round(r.lon, 7),
                    lat=None if r.lat is None else round(r.lat, 7),
                    grid_code=grid,
                    community_code=(placed.community_code[i] if grid else None) or r.community_code,
                    town_code=(placed.town_code[i] if grid else None) or r.town_code,
                    near_boundary=bool(placed.near_boundary[i]) if grid else None,
                    reason=r.reason,
                    candidates=tuple(
                        {
                            "address_id": c.address_id,
                            "standard_address": c.standard_address,
                            "level": c.level,
                            "town_code": c.town_code,
                        }
                        for c in r.candidates
                    ),
                )
            )
        return out

    # ------------------------------------------------------------------ reverse

    def reverse(self, lon: float, lat: float, *, near_boundary_m: float | None = None) -> dict[str, Any]:
        """A point → the nearest standard address (door or building), its distance, and the point's own grid."""
        x_m, y_m = lonlat_to_metric(np.array([lon]), np.array([lat]))
        distance, k = self._tree.query([x_m[0], y_m[0]])
        position = int(self._reverse_positions[int(k)])
        m = self.matcher
        placed = self.placement.place([lon], [lat], near_boundary_m=near_boundary_m)
        return {
            "address_id": int(m.ids[position]),
            "standard_address": str(m.texts[position]),
            "level": str(m.levels[position]),
            "address_lon": float(m.lons[position]),
            "address_lat": float(m.lats[position]),
            "distance_m": round(float(distance), 2),
            "grid_code": placed.grid_code[0],
            "community_code": placed.community_code[0],
            "town_code": placed.town_code[0],
            "near_boundary": bool(placed.near_boundary[0]) if placed.grid_code[0] else None,
            "boundary_distance_m": None
            if np.isnan(placed.boundary_distance_m[0])
            else round(float(placed.boundary_distance_m[0]), 2),
        }

    # ------------------------------------------------------------------ autocomplete

    def _lower_bound(self, order: np.ndarray, key: str, offset: bool) -> int:
        """First position in `order` whose (town-less, if `offset`) text is ≥ key: a plain binary search."""
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            p = int(order[mid])
            text_ = self._texts[p][self._town_offset[p] :] if offset else self._texts[p]
            if text_ < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def autocomplete(self, prefix: str, *, limit: int = AUTOCOMPLETE_LIMIT) -> list[dict[str, Any]]:
        """Standard addresses starting with the (normalized) prefix, with or without the town; doors first."""
        key = normalize(prefix)
        if not key:
            return []
        seen: list[int] = []
        for order, offset in ((self._by_text, False), (self._by_body, True)):
            start = self._lower_bound(order, key, offset)
            for k in range(start, min(start + 200, len(order))):
                position = int(order[k])
                text_ = self._texts[position]
                if not (text_[self._town_offset[position] :] if offset else text_).startswith(key):
                    break
                if position not in seen:
                    seen.append(position)
        rank = {"door": 0, "building": 1, "room": 2}
        m = self.matcher
        seen.sort(key=lambda p: (rank.get(str(m.levels[p]), 3), len(str(m.texts[p])), p))
        return [
            {
                "address_id": int(m.ids[p]),
                "standard_address": str(m.texts[p]),
                "level": str(m.levels[p]),
                "lon": float(m.lons[p]),
                "lat": float(m.lats[p]),
                "grid_code": str(m.grids[p]) or None,
            }
            for p in seen[:limit]
        ]


_INDEX_TEXT_COLUMNS = ("level", "full_text", "kind", "town_code", "community_code", "grid_code", *COMPONENT_COLUMNS)


def _index_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Address rows in the shape of `repository.index_rows` (text columns '' when missing), for AddressIndex.build."""
    frame = pd.DataFrame(
        {
            "id": [int(r["id"]) for r in rows],
            "parent_id": pd.array([r.get("parent_id") for r in rows], dtype="Int64"),
            "road_id": pd.array([r.get("road_id") for r in rows], dtype="Int64"),
            "lon": [float(r["lon"]) for r in rows],
            "lat": [float(r["lat"]) for r in rows],
        }
    )
    for column in _INDEX_TEXT_COLUMNS:
        frame[column] = pd.array([r.get(column) or "" for r in rows], dtype="string")
    return frame


def _release_freed_memory() -> None:
    """Hand the build's temporary frames back to the OS, and keep the index out of the cyclic collector.

    The index is millions of tuples, lists and dicts that live as long as the server: without `gc.freeze`
    every full collection walks them all, a pause of tens of milliseconds in the middle of requests.
    """
    gc.collect()
    gc.freeze()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the memory is reused by the process instead
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def load_territory(conn: Connection) -> Territory:
    """Town and community representative points and road polylines (WGS84)."""
    territory = Territory()
    for code, name, lon, lat in conn.execute(
        text("SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT code, name, ST_PointOnSurface(geom) p FROM town) s")
    ):
        territory.towns[code] = Place(name, float(lon), float(lat), code)
    for code, name, town_code, lon, lat in conn.execute(
        text(
            "SELECT code, short_name, town_code, ST_X(p), ST_Y(p) "
            "FROM (SELECT code, short_name, town_code, ST_PointOnSurface(geom) p FROM community) s"
        )
    ):
        territory.communities[code] = Place(name, float(lon), float(lat), town_code)
    for town_code, name, wkb in conn.execute(text("SELECT town_code, name, ST_AsBinary(geom) FROM road")):
        coords = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)))
        key = (town_code, normalize(name))
        previous = territory.roads.get(key)
        territory.roads[key] = coords if previous is None else np.vstack([previous, coords])
    return territory
