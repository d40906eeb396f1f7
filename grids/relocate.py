"""grids.relocate: the grid of many points after a grid change, on this machine or on a Dask cluster (same answer).

Single-machine path: one `GridLocator` over every grid of the version. Cluster path: the points are partitioned by
their town code; each task locates one town's points against a locator of the grids whose bounding boxes meet the
bounding box of those points (points with no town form one partition as well). A grid that covers a point holds
the point in its bounding box, so that box meets the partition's box: every grid that could cover a point is among
the candidates, the lowest-code tie rule sees the same covering grids, and the answer is identical by construction.
A point's town code only chooses its partition, never its answer, so a point lying outside its stated town is
located all the same.

The grids travel to the workers once (scattered to every worker); each worker keeps the locators it built,
keyed by the grids' key (which holds a digest of their codes and shapes) and the selection, for the next job on the
same grids; a grid redrawn in place changes the digest, so its version's old locators are never reused.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from gis.distributed import results
from grids.locate import CodeArray, GridLocator

if TYPE_CHECKING:
    from distributed import Client

# Locators a worker keeps (one per town and version): the raster of a town's box is a few MB.
WORKER_CACHE_SIZE = 64
# The partition of points without a town code.
NO_TOWN = ""

_locators: OrderedDict[tuple[Hashable, str], GridLocator] = OrderedDict()


@dataclass(frozen=True)
class GridSet:
    """The grids of one version: codes, polygons (lon/lat) and their bounding boxes (min lon, min lat, max lon,
    max lat; NaN for an empty polygon). `key` names the grids for the workers' locator cache: it always holds a
    digest of the codes and shapes, so that grids edited in place (a version's grid redrawn) never meet a locator
    a worker built for their former shapes."""

    key: Hashable
    codes: NDArray[np.object_]
    geoms: NDArray[np.object_]
    bounds: NDArray[np.float64]

    @classmethod
    def of(cls, codes: Sequence[str], geoms: Sequence[Polygon | MultiPolygon], *, key: Hashable = None) -> GridSet:
        """A grid set from parallel codes and polygons; its key is `key` (a name, such as the version) with a digest
        of the codes and shapes, or the digest alone."""
        code_array = np.empty(len(codes), dtype=object)
        code_array[:] = list(codes)
        geom_array = np.empty(len(geoms), dtype=object)
        geom_array[:] = list(geoms)
        digest = hashlib.blake2b(digest_size=16)
        for code, wkb in zip(code_array, shapely.to_wkb(geom_array), strict=True):
            digest.update(str(code).encode())
            digest.update(wkb or b"")
        named: Hashable = digest.hexdigest() if key is None else (key, digest.hexdigest())
        return cls(named, code_array, geom_array, shapely.bounds(geom_array))


def candidate_grids(
    bounds: NDArray[np.float64], lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Indices of the grids whose bounding box meets the bounding box of the finite points (none without one).

    Boxes are closed: a grid touching the points' box at an edge or corner is selected, as a grid covering a point
    on its boundary must be.
    """
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.any() or len(bounds) == 0:
        return np.zeros(0, dtype=np.intp)
    min_lon, max_lon = lon[finite].min(), lon[finite].max()
    min_lat, max_lat = lat[finite].min(), lat[finite].max()
    # NaN bounds (empty polygons) fail every comparison: such a grid covers nothing and is never selected.
    meets = (
        (bounds[:, 0] <= max_lon) & (bounds[:, 2] >= min_lon) & (bounds[:, 1] <= max_lat) & (bounds[:, 3] >= min_lat)
    )
    return np.flatnonzero(meets)


def town_partitions(town_codes: Sequence[object]) -> dict[str, NDArray[np.intp]]:
    """Positions of the points of each town code, in input order; missing or blank codes go to NO_TOWN."""
    keys = pd.Series(list(town_codes), dtype=object).map(lambda c: c.strip() if isinstance(c, str) else NO_TOWN)
    return {str(town): np.asarray(at, dtype=np.intp) for town, at in keys.groupby(keys, sort=True).indices.items()}


def locate_points(points: pd.DataFrame, grids: GridSet, *, client: Client | None = None) -> CodeArray:
    """The grid code covering each point (None where no grid does), in the order of `points`.

    `points` has columns town_code, lon, lat (an id column may come along; it is not read). Without `client`,
    one locator over every grid; with one, a task per town on the cluster (see the module docstring): the same
    codes in the same order.
    """
    lon = points["lon"].to_numpy(dtype=np.float64)
    lat = points["lat"].to_numpy(dtype=np.float64)
    if client is None:
        return GridLocator.build(list(grids.codes), list(grids.geoms)).locate_codes(lon, lat)

    result = np.full(len(points), None, dtype=object)
    on_workers = client.scatter(grids, broadcast=True, hash=False)
    jobs = []
    for town, at in town_partitions(points["town_code"].tolist()).items():
        selected = candidate_grids(grids.bounds, lon[at], lat[at])
        job = client.submit(_locate_partition, on_workers, town, selected, lon[at], lat[at], pure=False)
        jobs.append((at, job))
    for (at, _), codes in zip(jobs, results(client, [job for _, job in jobs], job="relocation"), strict=True):
        result[at] = codes
    return result


def _locate_partition(
    grids: GridSet, town: str, selected: NDArray[np.intp], lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> CodeArray:
    """On a worker: the codes of one partition's points, through a locator of the selected grids (cached)."""
    if selected.size == 0:
        return np.full(len(lon), None, dtype=object)
    cache_key = (grids.key, town + ":" + hashlib.blake2b(selected.tobytes(), digest_size=16).hexdigest())
    locator = _locators.get(cache_key)
    if locator is None:
        locator = GridLocator.build(list(grids.codes[selected]), list(grids.geoms[selected]))
        _locators[cache_key] = locator
        while len(_locators) > WORKER_CACHE_SIZE:
            _locators.popitem(last=False)
    else:
        _locators.move_to_end(cache_key)
    return locator.locate_codes(lon, lat)
