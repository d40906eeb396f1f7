"""planning.redesign.units: the small building blocks a redesign moves between grids, and the work each holds.

Units are the faces cut out of the area by the current grid boundaries, a square lattice of ``cell_m`` cells and,
when given, the roads; all lines are noded together on a 1 mm grid (as grids.topology does), so neighbouring units
share exactly the same vertices and the union of any set of edge-adjacent units is one clean Polygon.

Squares rather than H3 cells: the metric CRS is the only frame the algorithm sees, square edges are straight lines
that node exactly, and a lattice aligned to the axes keeps grid boundaries made of units readable (H3 cells would have
to be projected, and their six-sided staircase is no more compact after a union).

Contract (metric EPSG:4547, metres): every unit is a single Polygon inside exactly one current grid; the units of a
grid together equal the grid up to the 1 mm noding; faces smaller than ``crumb_share`` of a cell are merged into the
neighbour of the same grid with which they share the longest edge. The result is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# All boundaries are noded on this grid (metres), like grids.topology.
GRID_SIZE_M = 1e-6
# A shared boundary shorter than this (metres) is a corner contact, not an edge.
MIN_EDGE_M = 0.01
# Faces smaller than this share of a lattice cell are crumbs of the overlay and join a neighbour of their grid.
CRUMB_SHARE = 0.02
# Rings of units parallel to each grid's boundary: a boundary that moves by whole rows keeps its direction, so the
# moved grid stays as compact as it was instead of turning into a lattice staircase.
RINGS = 2
# Lattice spacing chosen for about this many lattice cells per grid (rings and roads add more units).
UNITS_PER_GRID = 40
MIN_CELL_M = 25.0
MAX_CELL_M = 250.0


@dataclass(frozen=True)
class Units:
    """Small building blocks that tile the area; each lies inside exactly one current grid."""

    geoms: list[Polygon]
    grid: NDArray[np.object_]  # current grid code of each unit
    area_m2: FloatArray
    edges: IntArray  # (e, 2) adjacent unit pairs i < j (shared boundary of positive length)
    edge_length_m: FloatArray  # (e,)

    @property
    def perimeter_m(self) -> FloatArray:
        """Boundary length of each unit (holes included), for Polsby-Popper of unions without building them."""
        return np.asarray(shapely.length(np.asarray(self.geoms, dtype=object)), dtype=np.float64)

    @property
    def centroid_xy(self) -> FloatArray:
        """(n, 2) centroid of each unit."""
        return np.asarray(
            shapely.get_coordinates(shapely.centroid(np.asarray(self.geoms, dtype=object))), dtype=np.float64
        )


def build_units(
    area: Polygon | MultiPolygon,
    current: Mapping[str, Polygon | MultiPolygon],
    *,
    roads: Sequence[LineString] = (),
    cell_m: float | None = None,
    rings: int = RINGS,
) -> Units:
    """Cut the current grids by a lattice of ~cell_m squares (and by roads when given) into single-Polygon units.

    cell_m None: sized for about UNITS_PER_GRID units per grid (within [MIN_CELL_M, MAX_CELL_M]), so a small
    community gets fine units and a large one is not cut into thousands.
    """
    codes = sorted(current)
    if not codes:
        raise ValueError("no current grids to build units from")
    grids = np.asarray([current[c] for c in codes], dtype=object)
    if cell_m is None:
        cell_m = auto_cell_m(float(shapely.area(grids).sum()), len(codes))
    if cell_m <= 0:
        raise ValueError(f"cell_m must be positive, got {cell_m!r}")
    extent = shapely.union_all([area, *grids]) if not area.is_empty else shapely.union_all(grids)
    lines = [
        shapely.boundary(grids),
        shapely.boundary(np.asarray([area], dtype=object)),
        _lattice(extent, cell_m),
        _rings(grids, cell_m, rings),
    ]
    if roads:
        road_lines = np.asarray(list(roads), dtype=object)
        lines.append(shapely.intersection(road_lines, extent.buffer(1.0)))
    noded = shapely.union_all(
        np.concatenate([np.asarray(x, dtype=object).ravel() for x in lines]), grid_size=GRID_SIZE_M
    )
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > GRID_SIZE_M**2]
    owner = _owner(faces, grids, area)
    faces, owner = faces[owner >= 0], owner[owner >= 0]
    edges, lengths = _adjacency(faces)
    group = _merge_crumbs(shapely.area(faces), owner, edges, lengths, CRUMB_SHARE * cell_m * cell_m)
    return _grouped(faces, owner, group, edges, lengths, codes)


def auto_cell_m(area_m2: float, grids: int) -> float:
    """Lattice spacing that gives about UNITS_PER_GRID units per grid, clamped to [MIN_CELL_M, MAX_CELL_M]."""
    return float(np.clip(math.sqrt(area_m2 / max(grids * UNITS_PER_GRID, 1)), MIN_CELL_M, MAX_CELL_M))


def _lattice(extent: BaseGeometry, cell_m: float) -> BaseGeometry:
    """Horizontal and vertical lines every cell_m across the extent, anchored on the extent's lower-left corner."""
    minx, miny, maxx, maxy = extent.bounds
    nx = max(1, math.ceil((maxx - minx) / cell_m))
    ny = max(1, math.ceil((maxy - miny) / cell_m))
    # Cells are stretched a little so the lattice ends exactly on the extent: no sliver row at the far edge.
    xs = np.linspace(minx, maxx, nx + 1)[1:-1]
    ys = np.linspace(miny, maxy, ny + 1)[1:-1]
    verticals = [LineString([(x, miny - 1.0), (x, maxy + 1.0)]) for x in xs]
    horizontals = [LineString([(minx - 1.0, y), (maxx + 1.0, y)]) for y in ys]
    return (
        shapely.intersection(shapely.multilinestrings(verticals + horizontals), extent)
        if xs.size + ys.size
        else (shapely.GeometryCollection())
    )


def _rings(grids: NDArray[np.object_], cell_m: float, rings: int) -> NDArray[np.object_]:
    """Lines parallel to each grid's boundary, every cell_m inwards: moving a row of ring units shifts a boundary."""
    out = []
    for d in range(1, rings + 1):
        inner = shapely.buffer(grids, -d * cell_m, join_style="mitre")
        out.append(shapely.boundary(inner[~shapely.is_empty(inner)]))
    return np.concatenate(out) if out else np.zeros(0, dtype=object)


def _owner(faces: NDArray[np.object_], grids: NDArray[np.object_], area: BaseGeometry) -> IntArray:
    """Index of the grid each face lies in (lowest index on ties); faces of the area outside every grid: nearest."""
    points = shapely.point_on_surface(faces)
    owner = np.full(len(faces), len(grids), dtype=np.int64)
    face_idx, grid_idx = shapely.STRtree(grids).query(points, predicate="covered_by")
    np.minimum.at(owner, face_idx, grid_idx.astype(np.int64))
    missing = np.flatnonzero(owner == len(grids))
    if len(missing):
        inside = shapely.covered_by(points[missing], area) if not area.is_empty else np.zeros(len(missing), bool)
        for i, ok in zip(missing, inside, strict=True):
            # A gap of the current plan inside the area goes to the nearest grid, so the units tile the area.
            owner[i] = int(np.argmin(shapely.distance(grids, faces[i]))) if ok else -1
    owner[owner == len(grids)] = -1
    return owner


def _adjacency(faces: NDArray[np.object_]) -> tuple[IntArray, FloatArray]:
    """Edge-adjacent face pairs (i < j) and the length of boundary each pair shares."""
    left, right = shapely.STRtree(faces).query(faces, predicate="intersects")
    keep = left < right
    left, right = left[keep].astype(np.int64), right[keep].astype(np.int64)
    if len(left) == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    shared = shapely.intersection(shapely.boundary(faces[left]), shapely.boundary(faces[right]), grid_size=GRID_SIZE_M)
    lengths = np.asarray(shapely.length(shared), dtype=np.float64)
    edge = lengths > MIN_EDGE_M
    return np.column_stack([left[edge], right[edge]]), lengths[edge]


def _merge_crumbs(
    areas: FloatArray, owner: IntArray, edges: IntArray, lengths: FloatArray, crumb_m2: float
) -> IntArray:
    """Group of each face after crumbs joined the same-grid neighbour sharing their longest edge (union-find)."""
    parent = np.arange(len(areas))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    best: dict[int, tuple[float, int]] = {}
    for (a, b), length in zip(edges.tolist(), lengths.tolist(), strict=True):
        if owner[a] != owner[b]:
            continue
        for small, other in ((a, b), (b, a)):
            if areas[small] < crumb_m2 and (small not in best or (length, -other) > (best[small][0], -best[small][1])):
                best[small] = (length, other)
    # Smallest crumbs first, so a chain of crumbs ends in a real face.
    for small in sorted(best, key=lambda i: (areas[i], i)):
        ra, rb = find(small), find(best[small][1])
        if ra != rb:
            parent[ra] = rb
    return np.asarray([find(i) for i in range(len(areas))], dtype=np.int64)


def _grouped(
    faces: NDArray[np.object_],
    owner: IntArray,
    group: IntArray,
    edges: IntArray,
    lengths: FloatArray,
    codes: list[str],
) -> Units:
    """Units from face groups, ordered by grid code then position (deterministic), with their summed edges."""
    roots = np.unique(group)
    rep = shapely.get_coordinates(shapely.point_on_surface(faces[roots]))
    # Order: grid code, then row (y descending), then x — a stable reading order.
    order = np.lexsort((np.round(rep[:, 0], 3), -np.round(rep[:, 1], 3), owner[roots]))
    roots = roots[order]
    index_of_root = {int(r): i for i, r in enumerate(roots)}
    unit_of_face = np.asarray([index_of_root[int(g)] for g in group], dtype=np.int64)
    geoms: list[Polygon] = []
    for r in roots:
        members = faces[group == r]
        merged = members[0] if len(members) == 1 else shapely.union_all(members, grid_size=GRID_SIZE_M)
        geoms.append(_single_polygon(merged))
    pair_length: dict[tuple[int, int], float] = {}
    for (a, b), length in zip(edges.tolist(), lengths.tolist(), strict=True):
        ua, ub = int(unit_of_face[a]), int(unit_of_face[b])
        if ua == ub:
            continue
        key = (min(ua, ub), max(ua, ub))
        pair_length[key] = pair_length.get(key, 0.0) + float(length)
    keys = sorted(pair_length)
    return Units(
        geoms=geoms,
        grid=np.asarray([codes[int(owner[r])] for r in roots], dtype=object),
        area_m2=np.asarray(shapely.area(np.asarray(geoms, dtype=object)), dtype=np.float64),
        edges=np.asarray(keys, dtype=np.int64).reshape(-1, 2),
        edge_length_m=np.asarray([pair_length[k] for k in keys], dtype=np.float64),
    )


def _single_polygon(geom: BaseGeometry) -> Polygon:
    """The one polygon of an edge-connected union (the largest piece if noding left a crumb apart)."""
    if isinstance(geom, Polygon):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon)]
    return max(parts, key=lambda g: g.area)


def unit_work(
    units: Units,
    points_xy: FloatArray,
    points_hours: FloatArray,
    address_xy: FloatArray,
    hours_per_m2: float,
    hours_per_road_m: float,
    roads: Sequence[LineString],
) -> tuple[FloatArray, IntArray]:
    """Hours per month and standard addresses of each unit (points go to the lowest-index unit covering them).

    Hours = the points' hours + area x hours_per_m2 + road length inside x hours_per_road_m, so the sum over a grid's
    units is the grid's hours under the workload model's rule. A road running exactly along a unit edge counts half
    for each side (inside the grid the halves add up to the whole).
    """
    geoms = np.asarray(units.geoms, dtype=object)
    n = len(geoms)
    tree = shapely.STRtree(geoms)
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    hours = np.asarray(points_hours, dtype=np.float64).reshape(-1)
    owner = _point_owner(tree, geoms, xy)
    point_hours = np.bincount(owner[owner >= 0], weights=hours[owner >= 0], minlength=n)
    a_xy = np.asarray(address_xy, dtype=np.float64).reshape(-1, 2)
    a_owner = _point_owner(tree, geoms, a_xy)
    addresses = np.bincount(a_owner[a_owner >= 0], minlength=n).astype(np.int64)
    road_m = np.zeros(n)
    if len(roads) and hours_per_road_m:
        road_arr = np.asarray(list(roads), dtype=object)
        unit_idx, road_idx = tree.query(road_arr, predicate="intersects")[::-1]
        inside = shapely.length(shapely.intersection(geoms[unit_idx], road_arr[road_idx]))
        on_edge = shapely.length(shapely.intersection(shapely.boundary(geoms[unit_idx]), road_arr[road_idx]))
        road_m = np.asarray(np.bincount(unit_idx, weights=inside - 0.5 * on_edge, minlength=n), dtype=np.float64)
    total = point_hours + units.area_m2 * hours_per_m2 + road_m * hours_per_road_m
    return np.asarray(total, dtype=np.float64), addresses


def _point_owner(tree: shapely.STRtree, geoms: NDArray[np.object_], xy: FloatArray) -> IntArray:
    """Lowest index of the unit covering each point; points a hair outside (noding) go to the nearest unit."""
    owner = np.full(len(xy), -1, dtype=np.int64)
    if len(xy) == 0:
        return owner
    points = shapely.points(xy)
    best = np.full(len(xy), len(geoms), dtype=np.int64)
    p_idx, u_idx = tree.query(points, predicate="covered_by")
    np.minimum.at(best, p_idx, u_idx.astype(np.int64))
    hit = best < len(geoms)
    owner[hit] = best[hit]
    missing = np.flatnonzero(~hit)
    if len(missing):
        # The 1 mm noding can leave a point on a grid edge just outside every unit: the nearest within 1 m takes it.
        p_near, u_near = tree.query_nearest(points[missing], max_distance=1.0, all_matches=False)
        owner[missing[p_near]] = u_near.astype(np.int64)
    return owner
