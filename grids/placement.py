"""grids.placement: points → (grid, community, town) of the active version, and how close they sit to a grid edge.

A dispatcher confirms by hand what lies within a few metres of a grid boundary: a door drawn 10 m inside one
grid may well belong to the next. `GridPlacement.place` answers both questions at once, vectorized: the
grid by `grids.locate` (exact, lowest code on shared edges) and the distance to that grid's boundary in
metres (EPSG:4547), with `near_boundary` when it is under the configured distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import Connection, text

from gis.cache import Cache
from gis.crs import lonlat_to_metric
from grids.locate import GridLocator

DEFAULT_NEAR_BOUNDARY_M = 30.0


@dataclass(frozen=True)
class Placement:
    """Per point: grid, community and town codes (None outside every grid) and the boundary distance."""

    grid_code: NDArray[np.object_]
    community_code: NDArray[np.object_]
    town_code: NDArray[np.object_]
    boundary_distance_m: NDArray[np.float64]
    near_boundary: NDArray[np.bool_]


class GridPlacement:
    """The active grid version held in memory for placing points."""

    def __init__(
        self,
        codes: list[str],
        geoms_lonlat: list[object],
        community_codes: list[str],
        town_codes: list[str],
        *,
        version_id: int | None = None,
        near_boundary_m: float = DEFAULT_NEAR_BOUNDARY_M,
    ) -> None:
        self.version_id = version_id
        self.near_boundary_m = near_boundary_m
        self.locator = GridLocator.build(codes, geoms_lonlat)
        self._community = np.array([*community_codes, None], dtype=object)
        self._town = np.array([*town_codes, None], dtype=object)
        metric = [shapely.transform(g, _to_metric) for g in geoms_lonlat]
        self._boundaries_m = np.array([shapely.boundary(g) for g in metric] + [None], dtype=object)
        shapely.prepare(self._boundaries_m[:-1])

    @classmethod
    def load(cls, conn: Connection, *, near_boundary_m: float = DEFAULT_NEAR_BOUNDARY_M) -> GridPlacement:
        """The active version's grids from the database."""
        rows = conn.execute(
            text(
                "SELECT g.code, g.community_code, g.town_code, ST_AsBinary(g.geom), g.version_id FROM grid g "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' ORDER BY g.code"
            )
        ).all()
        return cls(
            [r[0] for r in rows],
            [shapely.from_wkb(bytes(r[3])) for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            version_id=rows[0][4] if rows else None,
            near_boundary_m=near_boundary_m,
        )

    def place(self, lon: ArrayLike, lat: ArrayLike, *, near_boundary_m: float | None = None) -> Placement:
        """Grid, community, town and boundary distance of each (lon, lat); NaN distance outside every grid."""
        lon_a = np.atleast_1d(np.asarray(lon, dtype=float))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=float))
        index = self.locator.locate_index(lon_a, lat_a)
        inside = index >= 0
        distance = np.full(len(index), np.nan)
        if inside.any():
            x_m, y_m = lonlat_to_metric(lon_a[inside], lat_a[inside])
            points = shapely.points(x_m, y_m)
            distance[inside] = shapely.distance(points, self._boundaries_m[index[inside]])
        limit = self.near_boundary_m if near_boundary_m is None else near_boundary_m
        return Placement(
            grid_code=self.locator.codes_of(index),
            community_code=self._community[index],
            town_code=self._town[index],
            boundary_distance_m=distance,
            near_boundary=np.where(inside, distance < limit, False),
        )


def _to_metric(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    x_m, y_m = lonlat_to_metric(coords[:, 0], coords[:, 1])
    return np.column_stack([x_m, y_m])


class PlacementCache:
    """The active grids held in memory, reloaded only when the active version changed (a load takes about a second)."""

    def __init__(self) -> None:
        self._cache: Cache[str, GridPlacement] = Cache(max_entries=1)

    def get(self, conn: Connection) -> GridPlacement:
        """The placement of the active version, from memory unless the version's fingerprint changed."""
        fingerprint = tuple(conn.execute(_ACTIVE_FINGERPRINT).one_or_none() or ())
        return self._cache.get_or_load("active", lambda: GridPlacement.load(conn), version=fingerprint)


_ACTIVE_FINGERPRINT = text(
    "SELECT v.id, count(g.code), sum(g.area_m2) FROM grid_version v "
    "LEFT JOIN grid g ON g.version_id = v.id WHERE v.status = 'active' GROUP BY v.id"
)
