"""grids.locate: exact, vectorized point -> grid lookup (a raster of pure cells plus an exact boundary test).

`GridLocator` answers "which grid polygon covers this (lon, lat)?" for millions of points at once and agrees
with PostGIS ``ST_Covers`` (GEOS ``covers``, the same engine) for every point, including points on edges and
vertices. Rule for a point covered by several polygons (on a shared edge or vertex, or inside an overlap):
the polygon with the smallest code wins (codes compared as Python strings). A point covered by no polygon,
or with a NaN/infinite coordinate, gets -1 (index) or None (code).

Method. The polygons' bounding box is cut into square cells of ``cell_deg`` degrees, addressed by the grid
coordinates ``u = (lon - lon0) / cell_deg`` (column) and ``v = (lat - lat0) / cell_deg`` (row).

1. Every closed cell that any polygon ring touches, or comes within about ``_SLACK / 2`` cell widths of, is
   marked *mixed*. The marking is an exact supercover walk, not a line rasterizer: each ring segment marks
   the cells around its end points and around every crossing with a grid line, with a slack of ``_SLACK``
   cell widths on the free coordinate. (Proof sketch: the part of a segment inside a closed cell begins and
   ends at a segment end point or on a cell edge, i.e. at a crossing; a segment that passes near a cell
   without touching it has a piece end within twice that distance of it.) Crossings are computed from the
   nearer segment end so that nearly axis-parallel segments stay accurate.
2. The unmarked cells are *pure*: no boundary meets them, so every point of a connected group of pure cells
   lies in the same polygons. Each connected group (``scipy.ndimage.label``) is resolved once, exactly, at
   one of its cell centres, and every cell of the group stores that answer.
3. Locating: a point in a pure cell takes the cell's value (numpy fancy indexing). A point in a mixed cell is
   resolved exactly with GEOS: STRtree candidates by bounding box, then ``shapely.covers`` on the prepared
   polygons, then the tie rule. A point outside the raster (which has a two-cell margin around every
   polygon) is outside every polygon.

Rounding: a point's grid coordinates carry a rounding error of about ``max|coord| * 2**-52 / cell_deg`` cell
widths (3e-11 for Dongguan at the default cell); the slack is 1e-5, so a point whose computed cell is pure
lies, wherever rounding really put it, in the same polygons as that cell. ``build`` refuses cell sizes for
which this margin would not hold.

Memory: the raster holds one int16 per cell (int32 beyond 32,767 polygons); nothing else grows with the
raster. At the default cell (2**-13 degree, about 12.5 m east-west by 13.6 m north-south at 23°N) the box of
Dongguan's towns (0.74° by 0.49°) takes 6,068 x 4,012 cells = 49 MB, kept for the locator's lifetime, plus the geometries and their STRtree. Building needs more for a moment: the mask and the labels (5 bytes per cell)
and the grid-line crossings of every ring (about 100 bytes per crossing, one crossing per cell width of
boundary): a peak of a few hundred MB for 2,900 grids over that box. Halving ``cell_deg`` halves the
share of points that need the exact test and quadruples the raster.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon

from grids.errors import LocateError

# 2**-13 degree (about 12 m): a power of two so that cell edges are exact binary fractions of a degree. On the demo
# city's 2,900 grids and address-like points, 2**-12 leaves so many points in mixed cells that throughput is
# 2.3 M points/s; 2**-13 gives 4.5 M/s for a 48 MB raster and a 1 s build (benchmarks/RESULTS.md).
DEFAULT_CELL_DEG = 2.0**-13
# Cells further than this from any boundary (in cell widths, Chebyshev) can be pure; see the module docstring.
_SLACK = 1e-5
# Guard of the rounding argument: coordinates in cell units must stay far below 2**52 * _SLACK.
_MAX_COORD_IN_CELLS = 1e9
# A raster above this many cells would take more than a few hundred MB to build.
MAX_RASTER_CELLS = 100_000_000
# Empty margin around the polygons, in cells: every crossing mark then falls inside the raster.
_MARGIN_CELLS = 2
_MIXED = -2
_OUTSIDE = -1

IndexArray = NDArray[np.int32]
CodeArray = NDArray[np.object_]


class GridLocator:
    """Exact point-in-polygon locator over a fixed set of grid polygons (lon/lat, WGS84)."""

    def __init__(
        self,
        codes: CodeArray,
        geoms_by_rank: NDArray[np.object_],
        input_index_by_rank: IndexArray,
        raster: NDArray[np.signedinteger],
        origin_lon_lat: tuple[float, float],
        cell_deg: float,
    ) -> None:
        """Assemble a locator; use `GridLocator.build`."""
        self._codes = codes
        self._geoms_by_rank = geoms_by_rank
        self._input_index_by_rank = input_index_by_rank
        self._tree = shapely.STRtree(geoms_by_rank)
        self._raster = raster
        self._raster.flags.writeable = False
        self._lon0, self._lat0 = origin_lon_lat
        self._cell_deg = cell_deg
        self._inv_cell = 1.0 / cell_deg
        self._codes_or_none = _with_trailing_none(codes)

    @classmethod
    def build(
        cls,
        codes: Sequence[str],
        geoms: Sequence[Polygon | MultiPolygon],
        *,
        cell_deg: float = DEFAULT_CELL_DEG,
    ) -> GridLocator:
        """Index polygons (lon/lat) by their codes; codes must be unique, geometries valid (or empty) polygons."""
        code_array, geom_array = _checked_input(codes, geoms)
        if not (math.isfinite(cell_deg) and cell_deg > 0):
            raise LocateError(f"cell_deg must be a positive number of degrees, got {cell_deg!r}")
        # Ties go to the smallest code: rank the polygons by code once, and prefer the lowest rank.
        input_index_by_rank = np.array(sorted(range(len(code_array)), key=code_array.__getitem__), dtype=np.int32)
        geoms_by_rank = geom_array[input_index_by_rank]
        shapely.prepare(geoms_by_rank)

        present = ~shapely.is_empty(geoms_by_rank)
        if not present.any():
            empty = np.zeros((0, 0), dtype=np.int16)
            return cls(code_array, geoms_by_rank, input_index_by_rank, empty, (0.0, 0.0), cell_deg)
        min_lon, min_lat, max_lon, max_lat = (float(b) for b in shapely.total_bounds(geoms_by_rank[present]))
        if max(abs(min_lon), abs(max_lon), abs(min_lat), abs(max_lat)) / cell_deg > _MAX_COORD_IN_CELLS:
            raise LocateError(f"cell_deg {cell_deg!r} is too small for coordinates of this magnitude")
        lon0 = (math.floor(min_lon / cell_deg) - _MARGIN_CELLS) * cell_deg
        lat0 = (math.floor(min_lat / cell_deg) - _MARGIN_CELLS) * cell_deg
        n_cols = math.ceil((max_lon - lon0) / cell_deg) + _MARGIN_CELLS + 1
        n_rows = math.ceil((max_lat - lat0) / cell_deg) + _MARGIN_CELLS + 1
        if n_cols * n_rows > MAX_RASTER_CELLS:
            raise LocateError(
                f"a {n_rows} x {n_cols} raster exceeds {MAX_RASTER_CELLS:,} cells; choose a larger cell_deg"
            )

        locator = cls(
            code_array,
            geoms_by_rank,
            input_index_by_rank,
            np.zeros((0, 0), dtype=np.int16),
            (lon0, lat0),
            cell_deg,
        )
        locator._raster = locator._pure_cell_raster(n_rows, n_cols)
        locator._raster.flags.writeable = False
        return locator

    @property
    def codes(self) -> CodeArray:
        """The grid codes, in the order given to `build` (what `locate_index` indexes)."""
        return self._codes

    @property
    def cell_deg(self) -> float:
        """Cell size of the raster, in degrees of longitude and of latitude."""
        return self._cell_deg

    @property
    def origin_lon_lat(self) -> tuple[float, float]:
        """(lon, lat) of the south-west corner of cell (row 0, column 0)."""
        return self._lon0, self._lat0

    @property
    def raster(self) -> NDArray[np.signedinteger]:
        """Read-only cell values, rows south to north: input index of the winner, -1 outside all, -2 mixed."""
        return self._raster

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the raster (the geometries and their STRtree come on top)."""
        return int(self._raster.nbytes)

    def locate_index(self, lon: ArrayLike, lat: ArrayLike) -> IndexArray:
        """Index (into the `build` input) of the polygon covering each point; -1 if none covers it."""
        lon_arr, lat_arr = _checked_points(lon, lat)
        shape = lon_arr.shape
        lon_flat, lat_flat = lon_arr.ravel(), lat_arr.ravel()
        result = np.full(lon_flat.shape, _OUTSIDE, dtype=np.int32)
        n_rows, n_cols = self._raster.shape
        if lon_flat.size == 0 or self._raster.size == 0:
            return result.reshape(shape)

        u = lon_flat - self._lon0
        u *= self._inv_cell
        v = lat_flat - self._lat0
        v *= self._inv_cell
        # NaN fails every comparison, so NaN coordinates count as outside.
        inside = (u >= 0.0) & (u < n_cols) & (v >= 0.0) & (v < n_rows)
        where_inside = np.flatnonzero(inside)
        if where_inside.size == lon_flat.size:
            cell = v.astype(np.intp)
            cell *= n_cols
            cell += u.astype(np.intp)
        else:
            cell = v[where_inside].astype(np.intp)
            cell *= n_cols
            cell += u[where_inside].astype(np.intp)
        value = self._raster.ravel()[cell].astype(np.int32)
        mixed = np.flatnonzero(value == _MIXED)
        if mixed.size:
            at = where_inside[mixed]
            value[mixed] = self._locate_exact(lon_flat[at], lat_flat[at])
        result[where_inside] = value
        return result.reshape(shape)

    def locate_codes(self, lon: ArrayLike, lat: ArrayLike) -> CodeArray:
        """Code of the polygon covering each point (object array); None if none covers it."""
        return self.codes_of(self.locate_index(lon, lat))

    def codes_of(self, index: IndexArray) -> CodeArray:
        """Codes for indices from `locate_index` (object array); None for -1."""
        return self._codes_or_none[index]

    def _locate_exact(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> IndexArray:
        """GEOS answer with the tie rule, for finite points: input index of the lowest-ranked covering polygon."""
        points = shapely.points(lon, lat)
        point_at, rank = self._tree.query(points)
        covered = shapely.covers(self._geoms_by_rank[rank], points[point_at])
        n_polygons = len(self._geoms_by_rank)
        best_rank = np.full(len(points), n_polygons, dtype=np.int64)
        np.minimum.at(best_rank, point_at[covered], rank[covered])
        by_rank_or_outside = np.append(self._input_index_by_rank, np.int32(_OUTSIDE))
        return by_rank_or_outside[best_rank]

    def _pure_cell_raster(self, n_rows: int, n_cols: int) -> NDArray[np.signedinteger]:
        """The raster: each pure cell resolved through its connected group, mixed cells -2."""
        u, v, same_ring = self._ring_vertices_in_cells()
        mixed = _supercover(u, v, same_ring, n_rows, n_cols)
        labels, n_groups = ndimage.label(~mixed)
        del mixed
        flat_labels = labels.ravel()
        # Any one cell per group will do, so duplicate-index assignment (some write wins) is fine here.
        pure_cells = np.flatnonzero(flat_labels)
        representative = np.zeros(n_groups + 1, dtype=np.intp)
        representative[flat_labels[pure_cells]] = pure_cells
        del pure_cells
        rows, cols = np.divmod(representative[1:], n_cols)
        centre_lon = self._lon0 + (cols + 0.5) * self._cell_deg
        centre_lat = self._lat0 + (rows + 0.5) * self._cell_deg
        value_of_group = np.empty(n_groups + 1, dtype=np.int32)
        value_of_group[0] = _MIXED
        value_of_group[1:] = self._locate_exact(centre_lon, centre_lat)
        dtype = np.int16 if len(self._codes) <= np.iinfo(np.int16).max else np.int32
        raster: NDArray[np.signedinteger] = value_of_group.astype(dtype)[labels]
        return raster

    def _ring_vertices_in_cells(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Grid coordinates (u, v) of every ring vertex, and which consecutive vertices form a segment."""
        parts = shapely.get_parts(self._geoms_by_rank)
        rings = shapely.get_rings(parts[~shapely.is_empty(parts)])
        coords, ring_of_vertex = shapely.get_coordinates(rings, return_index=True)
        # The same formula as in locate_index, so points and boundaries share one rounding.
        u = (coords[:, 0] - self._lon0) * self._inv_cell
        v = (coords[:, 1] - self._lat0) * self._inv_cell
        return u, v, ring_of_vertex[:-1] == ring_of_vertex[1:]


@dataclass(frozen=True)
class TerritoryHits:
    """Where points fall: grid index (-1 outside) and the grid, community and town codes (None outside)."""

    grid_index: IndexArray
    grid_code: CodeArray
    community_code: CodeArray
    town_code: CodeArray

    def to_frame(self) -> pd.DataFrame:
        """The hits as a DataFrame, one row per point (codes stay Python objects, None outside)."""
        return pd.DataFrame(
            {
                "grid_index": self.grid_index,
                "grid_code": pd.Series(self.grid_code, dtype=object),
                "community_code": pd.Series(self.community_code, dtype=object),
                "town_code": pd.Series(self.town_code, dtype=object),
            }
        )


class TerritoryLocator:
    """Point -> (grid, community, town) codes, through the grids of one version."""

    def __init__(self, grids: GridLocator, community_codes: CodeArray, town_codes: CodeArray) -> None:
        """Assemble from a grid locator and per-grid parent codes; use `TerritoryLocator.build`."""
        self._grids = grids
        self._community_or_none = _with_trailing_none(community_codes)
        self._town_or_none = _with_trailing_none(town_codes)

    @classmethod
    def build(
        cls,
        grid_codes: Sequence[str],
        community_codes: Sequence[str],
        town_codes: Sequence[str],
        geoms: Sequence[Polygon | MultiPolygon],
        *,
        cell_deg: float = DEFAULT_CELL_DEG,
    ) -> TerritoryLocator:
        """Index grid polygons (lon/lat) with their community and town codes (parallel sequences)."""
        if not (len(grid_codes) == len(community_codes) == len(town_codes)):
            raise LocateError(
                f"parallel sequences differ in length: {len(grid_codes)} grid codes, "
                f"{len(community_codes)} community codes, {len(town_codes)} town codes"
            )
        grids = GridLocator.build(grid_codes, geoms, cell_deg=cell_deg)
        return cls(grids, _object_array(community_codes), _object_array(town_codes))

    @property
    def grids(self) -> GridLocator:
        """The underlying grid locator."""
        return self._grids

    def locate(self, lon: ArrayLike, lat: ArrayLike) -> TerritoryHits:
        """Grid index and grid, community and town codes for each point (None where no grid covers it)."""
        index = self._grids.locate_index(lon, lat)
        return TerritoryHits(
            grid_index=index,
            grid_code=self._grids.codes_of(index),
            community_code=self._community_or_none[index],
            town_code=self._town_or_none[index],
        )


def _object_array(values: Sequence[object]) -> NDArray[np.object_]:
    """A 1-D object array of the values (never a 2-D array, whatever the values look like)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _with_trailing_none(values: CodeArray) -> CodeArray:
    """The values plus one None at the end, so that index -1 reads as "no grid"."""
    return _object_array([*values, None])


def _checked_input(
    codes: Sequence[str], geoms: Sequence[Polygon | MultiPolygon]
) -> tuple[CodeArray, NDArray[np.object_]]:
    """Codes and geometries as object arrays, after checking what the exactness argument relies on."""
    if len(codes) != len(geoms):
        raise LocateError(f"{len(codes)} codes but {len(geoms)} geometries")
    code_array = _object_array(codes)
    bad_codes = [c for c in code_array if not isinstance(c, str)]
    if bad_codes:
        raise LocateError(f"codes must be strings, got {bad_codes[:3]!r}")
    duplicates = sorted(code for code, count in Counter(code_array).items() if count > 1)
    if duplicates:
        raise LocateError(f"duplicate codes: {duplicates[:5]}")
    geom_array = _object_array(geoms)
    not_polygons = [i for i, g in enumerate(geom_array) if not isinstance(g, Polygon | MultiPolygon)]
    if not_polygons:
        i = not_polygons[0]
        raise LocateError(f"geometry of {code_array[i]} is {type(geom_array[i]).__name__}, not a (Multi)Polygon")
    invalid = np.flatnonzero(~shapely.is_valid(geom_array) & ~shapely.is_empty(geom_array))
    if invalid.size:
        i = int(invalid[0])
        reason = shapely.is_valid_reason(geom_array[i])
        raise LocateError(f"{invalid.size} invalid geometries (repair them first), e.g. {code_array[i]}: {reason}")
    coords = shapely.get_coordinates(geom_array)
    if not np.isfinite(coords).all():
        raise LocateError("geometries have non-finite coordinates")
    return code_array, geom_array


def _checked_points(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """lon and lat as float64 arrays of one shape."""
    try:
        lon_arr = np.asarray(lon, dtype=np.float64)
        lat_arr = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LocateError(f"lon and lat must be numeric arrays: {exc}") from exc
    if lon_arr.shape != lat_arr.shape:
        raise LocateError(f"lon and lat differ in shape: {lon_arr.shape} vs {lat_arr.shape}")
    return lon_arr, lat_arr


def _supercover(
    u: NDArray[np.float64], v: NDArray[np.float64], same_ring: NDArray[np.bool_], n_rows: int, n_cols: int
) -> NDArray[np.bool_]:
    """Mask of the cells touched by, or within _SLACK / 2 cell widths of, any ring segment."""
    mixed = np.zeros(n_rows * n_cols, dtype=bool)

    def mark(rows: NDArray[np.intp], cols: NDArray[np.intp]) -> None:
        """Mark cells (rows, cols); the margin keeps them inside, clipping only guards the array."""
        mixed[np.clip(rows, 0, n_rows - 1) * n_cols + np.clip(cols, 0, n_cols - 1)] = True

    def near(x: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """The cell indices within the slack of coordinate x (one or two distinct cells)."""
        return np.floor(x - _SLACK).astype(np.intp), np.floor(x + _SLACK).astype(np.intp)

    for rows in near(v):
        for cols in near(u):
            mark(rows, cols)
    a = np.flatnonzero(same_ring)
    b = a + 1
    # Crossings with the column lines u = k touch columns k - 1 and k; rows around the crossing's v.
    k, v_at_k = _grid_line_crossings(u[a], v[a], u[b], v[b])
    for rows in near(v_at_k):
        mark(rows, k - 1)
        mark(rows, k)
    # Crossings with the row lines v = k touch rows k - 1 and k; columns around the crossing's u.
    k, u_at_k = _grid_line_crossings(v[a], u[a], v[b], u[b])
    for cols in near(u_at_k):
        mark(k - 1, cols)
        mark(k, cols)
    return mixed.reshape(n_rows, n_cols)


def _grid_line_crossings(
    along_a: NDArray[np.float64],
    across_a: NDArray[np.float64],
    along_b: NDArray[np.float64],
    across_b: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For segments a-b: every integer k within the slack of their `along` range, and `across` where along = k."""
    delta_along = along_b - along_a
    moving = np.flatnonzero(delta_along != 0.0)  # segments parallel to the lines are covered by the other pass
    along_a, across_a, along_b, across_b = along_a[moving], across_a[moving], along_b[moving], across_b[moving]
    low, high = np.minimum(along_a, along_b), np.maximum(along_a, along_b)
    first = np.ceil(low - _SLACK).astype(np.intp)
    count = np.maximum(np.floor(high + _SLACK).astype(np.intp) - first + 1, 0)
    segment = np.repeat(np.arange(len(moving)), count)
    starts = np.cumsum(count) - count
    k = first[segment] + (np.arange(len(segment)) - starts[segment])
    # Measure from the nearer end: k - along_end is then exact or tiny, which keeps steep crossings accurate.
    slope = (across_b - across_a) / (along_b - along_a)
    k_float = k.astype(np.float64)
    from_a = np.abs(k_float - along_a[segment]) <= np.abs(k_float - along_b[segment])
    base_along = np.where(from_a, along_a[segment], along_b[segment])
    base_across = np.where(from_a, across_a[segment], across_b[segment])
    across_at_k = base_across + (k_float - base_along) * slope[segment]
    lowest = np.minimum(across_a, across_b)[segment]
    highest = np.maximum(across_a, across_b)[segment]
    return k, np.clip(across_at_k, lowest, highest)
