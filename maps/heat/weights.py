"""maps.heat.weights: which units neighbour which — queen contiguity among grids, first rings among H3 cells (cached)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import h3
import numpy as np
import shapely
from libpysal.weights import W
from scipy.spatial import cKDTree

from gis.cache import Cache
from maps.errors import HotspotError

_WEIGHTS_CACHE_SIZE = 16
_EARTH_RADIUS_M = 6_371_008.8

_weights: Cache[Hashable, W] = Cache(max_entries=_WEIGHTS_CACHE_SIZE)


def clear_weights_cache() -> None:
    """Forget every cached weights object (tests, or after a new grid version is activated)."""
    _weights.clear()


def _check_codes(codes: Sequence[str]) -> list[str]:
    out = [str(c) for c in codes]
    if len(set(out)) != len(out):
        raise HotspotError("unit codes must be unique")
    return out


def _link_islands(neighbours: list[set[int]], centres: np.ndarray) -> None:
    """Give every unit without a neighbour its nearest unit (both ways), so no unit sits outside all sums."""
    islands = [i for i, nb in enumerate(neighbours) if not nb]
    if not islands or len(neighbours) < 2:
        return
    tree = cKDTree(centres)
    _, idx = tree.query(centres[islands], k=2)
    for i, pair in zip(islands, idx, strict=True):
        j = int(pair[1]) if int(pair[0]) == i else int(pair[0])
        neighbours[i].add(j)
        neighbours[j].add(i)


def _to_w(codes: list[str], neighbours: list[set[int]]) -> W:
    mapping = {codes[i]: [codes[j] for j in sorted(nb)] for i, nb in enumerate(neighbours)}
    return W(mapping, id_order=codes, silence_warnings=True)


def weights_for_grids(geoms: Sequence[shapely.Geometry], codes: Sequence[str]) -> W:
    """Queen contiguity (any shared point) among grid polygons, islands linked to their nearest grid; cached."""
    code_list = _check_codes(codes)
    geom_array = np.asarray(geoms, dtype=object)
    if len(geom_array) != len(code_list):
        raise HotspotError(f"{len(geom_array)} geometries for {len(code_list)} codes")
    # Codes can survive a redraw of the grid version; the bounds tell a redrawn layer apart cheaply.
    bounds = shapely.bounds(geom_array) if len(geom_array) else np.empty((0, 4))
    key = ("grid", tuple(code_list), hash(np.round(bounds, 7).tobytes()))
    return _weights.get_or_load(key, lambda: _queen(code_list, geom_array))


def _queen(code_list: list[str], geom_array: np.ndarray) -> W:
    neighbours: list[set[int]] = [set() for _ in code_list]
    if len(geom_array):
        # "intersects" rather than libpysal's shared-vertex test: grid edges drawn by different hands meet at
        # T-junctions, which vertex matching misses.
        left, right = shapely.STRtree(geom_array).query(geom_array, predicate="intersects")
        for i, j in zip(left.tolist(), right.tolist(), strict=True):
            if i != j:
                neighbours[i].add(j)
                neighbours[j].add(i)
        centres = shapely.get_coordinates(shapely.point_on_surface(geom_array))
        _link_islands(neighbours, centres)
    return _to_w(code_list, neighbours)


def _h3_centres_m(cells: list[str]) -> np.ndarray:
    """Cell centres on a local equirectangular plane in metres (good enough to rank nearest neighbours)."""
    latlng = np.array([h3.cell_to_latlng(c) for c in cells], dtype=float).reshape(-1, 2)
    lat0 = np.radians(latlng[:, 0].mean()) if len(latlng) else 0.0
    x_m = np.radians(latlng[:, 1]) * np.cos(lat0) * _EARTH_RADIUS_M
    y_m = np.radians(latlng[:, 0]) * _EARTH_RADIUS_M
    return np.column_stack([x_m, y_m])


def weights_for_h3(cells: Sequence[str]) -> W:
    """First-ring H3 neighbours among the given cells (one resolution), islands linked to the nearest cell; cached."""
    cell_list = _check_codes(cells)
    return _weights.get_or_load(("h3", tuple(cell_list)), lambda: _first_rings(cell_list))


def _first_rings(cell_list: list[str]) -> W:
    resolutions = set()
    for cell in cell_list:
        if not h3.is_valid_cell(cell):
            raise HotspotError(f"not an H3 cell: {cell!r}")
        resolutions.add(h3.get_resolution(cell))
    if len(resolutions) > 1:
        raise HotspotError(f"H3 cells of mixed resolutions {sorted(resolutions)}")
    position = {c: i for i, c in enumerate(cell_list)}
    neighbours: list[set[int]] = []
    for cell in cell_list:
        ring = (position.get(c) for c in h3.grid_disk(cell, 1) if c != cell)
        neighbours.append({j for j in ring if j is not None})
    if len(cell_list):
        _link_islands(neighbours, _h3_centres_m(cell_list))
    return _to_w(cell_list, neighbours)
