"""grids.partition: split a community polygon into k contiguous, compact, workload-balanced grid polygons.

Method: recursive bisection. A region that must become k parts is cut by one straight line into a side of
k_low = k // 2 (or k - k // 2) parts and a side of the rest. Fourteen cut directions are tried (every 15 degrees plus the
principal axis of the workload and its normal); for each, the line sits where the weighted quantile of the points
projected on the direction equals the side's share. The winner has the smallest balance error plus a small
compactness penalty (Polsby-Popper of the two sides). When a cut of a concave region leaves a side in several pieces,
stray pieces move to the neighbouring side so both sides stay connected, and the move is charged to the candidate's
balance error, so cleaner directions win when they exist.

Workload is the point weights plus a faint area background (``_AREA_BACKGROUND_SHARE`` of the total weight spread
evenly over the area): with no points, or in a sub-region without any, it is the area that gets balanced, so empty
land is split into sensible, compact parts instead of arbitrary ones.

Contract of the result (all coordinates in the input's metric CRS, metres):

* the parts tile the input: their union equals the input up to floating-point noise and they overlap with zero area;
  a MultiPolygon input is first dissolved, so touching or overlapping components become one region;
* when the (dissolved) input is connected, every part is a single ``Polygon`` (it may keep holes of the input);
* when the input has disconnected islands, the islands are linked by their shortest bridges (a minimum spanning tree
  of the gaps) and each part is connected through its shared edges and those bridges; a part that takes in an island
  is then a ``MultiPolygon``. Small islands therefore attach to the part that covers the nearest point of their
  neighbour. Hence the return type ``list[Polygon | MultiPolygon]``;
* points outside the polygon (or not finite) are ignored; points on a shared edge count for one side only;
* the result is deterministic: the same input gives the same parts in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import minimum_spanning_tree
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from grids.errors import PartitionError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Share of the total point weight spread over the area as a background, so point-free land is split by area.
_AREA_BACKGROUND_SHARE = 0.005
# Weight of the compactness penalty (1 - min Polsby-Popper of both sides) against the relative balance error.
_COMPACTNESS_WEIGHT = 0.2
# Projections closer than this (metres) count as one location: a cut never passes between them.
_SAME_LOCATION_M = 1e-6
# Pieces smaller than this (m²) are floating-point crumbs of an overlay and are dropped.
_CRUMB_AREA_M2 = 1e-7
_DIRECTIONS = 12


class BalanceReport(TypedDict):
    """Workload per part and how far the parts are from their mean."""

    part_weights: list[float]
    total_weight: float
    unassigned_weight: float
    mean_weight: float
    max_relative_deviation: float
    share_within_25pct: float
    share_within_50pct: float


@dataclass(frozen=True)
class _Workload:
    """All points of one partition run: data points first, then the area-background lattice."""

    xy: FloatArray
    weight: FloatArray
    n_data: int
    background_per_m2: float
    bridges: FloatArray  # (b, 4): x1, y1, x2, y2 of the shortest gaps between islands
    min_area_share: float


@dataclass(frozen=True)
class _Region:
    """A region still to be cut into k parts, with the indices of the workload points it holds."""

    geom: Polygon | MultiPolygon
    idx: IntArray
    k: int


@dataclass(frozen=True)
class _Cut:
    """One candidate bisection and its score (lower is better)."""

    score: float
    low: _Region
    high: _Region
    clean: bool
    direction: tuple[float, float]
    offset_m: float


def partition(
    polygon: Polygon | MultiPolygon,
    points_xy: FloatArray,
    weights: FloatArray,
    k: int,
    *,
    min_area_share: float = 0.05,
) -> list[Polygon | MultiPolygon]:
    """Split a metric polygon into k contiguous, compact parts of about equal point weight (area when weightless).

    ``min_area_share`` keeps parts from shrinking onto a dense spot: a cut is avoided (when any other direction
    allows it) if a side would get less than this fraction of its fair area (region area x its share of parts).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise PartitionError(f"k must be an integer >= 1, got {k!r}")
    if not 0.0 <= min_area_share < 1.0:
        raise PartitionError(f"min_area_share must be in [0, 1), got {min_area_share!r}")
    region = _clean_input(polygon)
    xy, w = _clean_points(points_xy, weights)
    if k == 1:
        return [polygon if isinstance(polygon, Polygon) else region]

    inside = shapely.intersects_xy(region, xy[:, 0], xy[:, 1]) if len(xy) else np.zeros(0, dtype=bool)
    xy, w = xy[inside], w[inside]
    area_m2 = float(region.area)
    total_w = float(w.sum())
    lattice = _lattice(region, 200 + 60 * int(k))
    background_per_m2 = (_AREA_BACKGROUND_SHARE * total_w if total_w > 0 else 1.0) / area_m2
    lattice_w = np.full(len(lattice), background_per_m2 * area_m2 / max(len(lattice), 1))
    work = _Workload(
        xy=np.vstack([xy, lattice]) if len(lattice) else xy,
        weight=np.concatenate([w, lattice_w]),
        n_data=len(xy),
        background_per_m2=background_per_m2,
        bridges=_island_bridges(region),
        min_area_share=float(min_area_share),
    )
    start = _Region(region, np.arange(len(work.xy), dtype=np.int64), int(k))
    return [_tidy(part) for part in _split(start, work)]


def assign_points(parts: list[Polygon | MultiPolygon], points_xy: FloatArray) -> IntArray:
    """Index of the part covering each point (lowest index on shared edges, -1 outside every part)."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    result = np.full(len(xy), -1, dtype=np.int64)
    if len(xy) == 0 or not parts:
        return result
    tree = shapely.STRtree(list(parts))
    point_idx, part_idx = tree.query(shapely.points(xy), predicate="covered_by")
    best = np.full(len(xy), len(parts), dtype=np.int64)
    np.minimum.at(best, point_idx, part_idx.astype(np.int64))
    hit = best < len(parts)
    result[hit] = best[hit]
    return result


def balance_report(parts: list[Polygon | MultiPolygon], points_xy: FloatArray, weights: FloatArray) -> BalanceReport:
    """Per-part weight, mean, worst relative deviation and the share of parts within ±25% / ±50% of the mean."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    owner = assign_points(parts, points_xy)
    if len(owner) != len(w):
        raise PartitionError(f"{len(owner)} points but {len(w)} weights")
    inside = owner >= 0
    per_part = np.bincount(owner[inside], weights=w[inside], minlength=len(parts)).astype(np.float64)
    mean = float(per_part.mean()) if len(parts) else 0.0
    deviation = np.abs(per_part / mean - 1.0) if mean > 0 else np.zeros(len(parts))
    return BalanceReport(
        part_weights=[float(v) for v in per_part],
        total_weight=float(w.sum()),
        unassigned_weight=float(w[~inside].sum()),
        mean_weight=mean,
        max_relative_deviation=float(deviation.max()) if len(parts) else 0.0,
        share_within_25pct=float(np.mean(deviation <= 0.25)) if len(parts) else 1.0,
        share_within_50pct=float(np.mean(deviation <= 0.5)) if len(parts) else 1.0,
    )


# --- input checks ---------------------------------------------------------------------------------------------------


def _clean_input(polygon: object) -> Polygon | MultiPolygon:
    """The region to split: a valid Polygon, or the dissolved components of a MultiPolygon."""
    if not isinstance(polygon, Polygon | MultiPolygon):
        raise PartitionError(f"expected a Polygon or MultiPolygon, got {type(polygon).__name__}")
    if polygon.is_empty:
        raise PartitionError("the polygon is empty")
    if not np.all(np.isfinite(shapely.get_coordinates(polygon))):
        raise PartitionError("the polygon has non-finite coordinates")
    components = list(polygon.geoms) if isinstance(polygon, MultiPolygon) else [polygon]
    for component in components:
        if not component.is_valid:
            raise PartitionError(f"invalid polygon: {shapely.is_valid_reason(component)}")
    if polygon.area <= 0:
        raise PartitionError("the polygon is empty or has no area")
    if isinstance(polygon, Polygon):
        return polygon
    # Components of a MultiPolygon may share edges (two touching squares): dissolve them into one region.
    dissolved = shapely.union_all([c for c in components if c.area > 0])
    polygons = [g for g in shapely.get_parts(dissolved) if isinstance(g, Polygon) and g.area > 0]
    if not polygons:
        raise PartitionError("the polygon is empty or has no area")
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _clean_points(points_xy: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Finite points with their weights; negative or non-finite weights are an error."""
    xy = np.asarray(points_xy, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if xy.size == 0:
        xy = xy.reshape(0, 2)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise PartitionError(f"points_xy must have shape (n, 2), got {xy.shape}")
    if len(xy) != len(w):
        raise PartitionError(f"{len(xy)} points but {len(w)} weights")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise PartitionError("weights must be finite and >= 0")
    keep = np.all(np.isfinite(xy), axis=1) & (w > 0)
    return xy[keep], w[keep]


def _lattice(region: BaseGeometry, n_target: int) -> FloatArray:
    """About n_target evenly spaced points inside the region, standing in for its area."""
    minx, miny, maxx, maxy = region.bounds
    spacing = math.sqrt(region.area / n_target)
    # A thin diagonal region has a huge bounding box: cap the number of candidate cells.
    spacing = max(spacing, math.sqrt((maxx - minx) * (maxy - miny) / 200_000))
    # Irrational offsets keep lattice midpoints off the round coordinates of hand-drawn or test polygons.
    xs = minx + (np.arange(int((maxx - minx) / spacing) + 1) + 0.381966) * spacing
    ys = miny + (np.arange(int((maxy - miny) / spacing) + 1) + 0.618034) * spacing
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(region, gx, gy)
    return np.column_stack([gx[inside], gy[inside]]).astype(np.float64)


def _island_bridges(region: Polygon | MultiPolygon) -> FloatArray:
    """Shortest links between the islands of a disconnected region (a minimum spanning tree of the gaps)."""
    if isinstance(region, Polygon) or len(region.geoms) < 2:
        return np.zeros((0, 4))
    islands = list(region.geoms)
    n = len(islands)
    gaps = np.zeros((n, n))
    for i in range(n):
        gaps[i, i + 1 :] = shapely.distance(islands[i], islands[i + 1 :])
    # The spanning tree ignores zero entries, so islands touching at a point get a tiny positive gap.
    tree = minimum_spanning_tree(np.triu(gaps, 1) + np.triu(np.full((n, n), 1e-12), 1)).tocoo()
    links = []
    for i, j in sorted(zip(tree.row.tolist(), tree.col.tolist(), strict=True)):
        line = shapely.shortest_line(islands[i], islands[j])
        (x1, y1), (x2, y2) = shapely.get_coordinates(line)
        links.append((x1, y1, x2, y2))
    return np.asarray(links, dtype=np.float64)


# --- recursive bisection --------------------------------------------------------------------------------------------


def _split(region: _Region, work: _Workload) -> list[Polygon | MultiPolygon]:
    """Parts of a region, low side of each cut first."""
    if region.k == 1:
        return [region.geom]
    cut = _best_cut(region, work)
    return _split(cut.low, work) + _split(cut.high, work)


def _best_cut(region: _Region, work: _Workload) -> _Cut:
    """The best-scoring straight cut of a region into k // 2 and k - k // 2 parts."""
    k_small = region.k // 2
    shares = [k_small] if 2 * k_small == region.k else [k_small, region.k - k_small]
    xy = work.xy[region.idx]
    w = work.weight[region.idx]
    point_weight = float(work.weight[region.idx[region.idx < work.n_data]].sum())
    area_only = point_weight <= 0
    best: _Cut | None = None
    for ux, uy in _directions(xy, w):
        proj = xy[:, 0] * ux + xy[:, 1] * uy
        for k_low in shares:
            offset = _quantile_offset(proj, w, k_low / region.k)
            if offset is None:
                offset = _area_offset(region.geom, (ux, uy), k_low / region.k)
            cut = _evaluate(region, work, (ux, uy), offset, k_low, proj)
            if cut is not None and (best is None or cut.score < best.score):
                best = cut
    if best is None:
        raise PartitionError("no straight cut splits the region (degenerate geometry)")
    if area_only and best.clean:
        best = _refine_by_area(region, work, best)
    return best


def _directions(xy: FloatArray, w: FloatArray) -> list[tuple[float, float]]:
    """Unit normals of the cut lines to try: every 15 degrees, plus the workload's principal axis and its normal."""
    angles = [math.pi * i / _DIRECTIONS for i in range(_DIRECTIONS)]
    if len(xy) >= 2 and w.sum() > 0:
        centre = np.average(xy, axis=0, weights=w)
        d = xy - centre
        cov = (d * w[:, None]).T @ d / w.sum()
        _, vectors = np.linalg.eigh(cov)
        major = math.atan2(float(vectors[1, 1]), float(vectors[0, 1])) % math.pi
        angles += [major, (major + math.pi / 2) % math.pi]
    return [(math.cos(a), math.sin(a)) for a in angles]


def _quantile_offset(proj: FloatArray, w: FloatArray, share: float) -> float | None:
    """Offset along the direction between two distinct locations whose lower side weighs closest to share."""
    if len(proj) < 2:
        return None
    order = np.argsort(proj, kind="stable")
    p = proj[order]
    cumulative = np.cumsum(w[order])
    ends = np.flatnonzero(np.diff(p) > _SAME_LOCATION_M)
    if ends.size == 0 or cumulative[-1] <= 0:
        return None
    j = int(ends[int(np.argmin(np.abs(cumulative[ends] - share * cumulative[-1])))])
    return float(0.5 * (p[j] + p[j + 1]))


def _area_offset(geom: BaseGeometry, direction: tuple[float, float], share: float) -> float:
    """Offset whose lower side holds share of the area, by bisection (for regions without workload points)."""
    coords = shapely.get_coordinates(geom)
    proj = coords[:, 0] * direction[0] + coords[:, 1] * direction[1]
    lo, hi = float(proj.min()), float(proj.max())
    target = share * geom.area
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        low, _high = _half_planes(geom, direction, mid)
        if geom.intersection(low).area < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _half_planes(geom: BaseGeometry, direction: tuple[float, float], offset_m: float) -> tuple[Polygon, Polygon]:
    """Two boxes sharing the exact same cut-line edge, covering the region below and above offset_m."""
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = 0.5 * (minx + maxx), 0.5 * (miny + maxy)
    reach = 2.0 * math.hypot(maxx - minx, maxy - miny) + 1.0
    ux, uy = direction
    shift = offset_m - (cx * ux + cy * uy)
    fx, fy = cx + ux * shift, cy + uy * shift
    a = (fx + uy * reach, fy - ux * reach)
    b = (fx - uy * reach, fy + ux * reach)
    low = Polygon([a, b, (b[0] - ux * reach, b[1] - uy * reach), (a[0] - ux * reach, a[1] - uy * reach)])
    high = Polygon([a, b, (b[0] + ux * reach, b[1] + uy * reach), (a[0] + ux * reach, a[1] + uy * reach)])
    return low, high


def _pieces(geom: BaseGeometry) -> list[Polygon]:
    """Polygon pieces of an overlay result, without floating-point crumbs."""
    return [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and g.area > _CRUMB_AREA_M2]


def _evaluate(
    region: _Region,
    work: _Workload,
    direction: tuple[float, float],
    offset_m: float,
    k_low: int,
    proj: FloatArray,
) -> _Cut | None:
    """Cut the region at offset_m, repair the sides into connected groups and score the result."""
    low_box, high_box = _half_planes(region.geom, direction, offset_m)
    low_pieces = _pieces(region.geom.intersection(low_box))
    high_pieces = _pieces(region.geom.intersection(high_box))
    if not low_pieces or not high_pieces:
        return None
    on_low = proj < offset_m
    if isinstance(region.geom, Polygon) and len(low_pieces) == 1 and len(high_pieces) == 1:
        low_geom: Polygon | MultiPolygon = low_pieces[0]
        high_geom: Polygon | MultiPolygon = high_pieces[0]
        low_idx, high_idx = region.idx[on_low], region.idx[~on_low]
        clean = True
    else:
        pieces = low_pieces + high_pieces
        sides = [True] * len(low_pieces) + [False] * len(high_pieces)
        members = _members(pieces, sides, work.xy[region.idx], on_low)
        piece_weight = [_effective_weight(work, region.idx[m], p.area) for p, m in zip(pieces, members, strict=True)]
        total = sum(piece_weight)
        in_low = _connected_sides(pieces, sides, piece_weight, total * k_low / region.k, work.bridges)
        low_geom = _union([p for p, s in zip(pieces, in_low, strict=True) if s])
        high_geom = _union([p for p, s in zip(pieces, in_low, strict=True) if not s])
        low_idx = np.sort(np.concatenate([region.idx[m] for m, s in zip(members, in_low, strict=True) if s]))
        high_idx = np.sort(np.concatenate([region.idx[m] for m, s in zip(members, in_low, strict=True) if not s]))
        clean = False
        if low_geom.is_empty or high_geom.is_empty:
            return None
    low_w = _effective_weight(work, low_idx, low_geom.area)
    high_w = _effective_weight(work, high_idx, high_geom.area)
    k_high = region.k - k_low
    mean = (low_w + high_w) / region.k
    error = abs(low_w - mean * k_low) / (min(k_low, k_high) * mean) if mean > 0 else 0.0
    compactness = min(_polsby_popper(low_geom), _polsby_popper(high_geom))
    fair_area = region.geom.area / region.k
    too_small = low_geom.area < work.min_area_share * fair_area * k_low or (
        high_geom.area < work.min_area_share * fair_area * k_high
    )
    score = error + _COMPACTNESS_WEIGHT * (1.0 - compactness) + (1.0 if too_small else 0.0)
    return _Cut(
        score=score,
        low=_Region(low_geom, low_idx.astype(np.int64), k_low),
        high=_Region(high_geom, high_idx.astype(np.int64), k_high),
        clean=clean,
        direction=direction,
        offset_m=offset_m,
    )


def _effective_weight(work: _Workload, idx: IntArray, area_m2: float) -> float:
    """Point weight held by idx plus the exact area background."""
    return float(work.weight[idx[idx < work.n_data]].sum()) + work.background_per_m2 * area_m2


def _members(pieces: list[Polygon], sides: list[bool], xy: FloatArray, on_low: NDArray[np.bool_]) -> list[IntArray]:
    """Positions (into xy) of the points each piece holds; points keep the side their projection gave them."""
    owner = np.full(len(xy), -1, dtype=np.int64)
    for side in (True, False):
        candidates = [i for i, s in enumerate(sides) if s == side]
        pending = np.flatnonzero(on_low == side)
        for i in candidates:
            if len(pending) == 0:
                break
            hit = shapely.intersects_xy(pieces[i], xy[pending, 0], xy[pending, 1])
            owner[pending[hit]] = i
            pending = pending[~hit]
        if len(pending):
            # Points a hair off every piece of their side (floating point at the cut): the nearest piece takes them.
            dist = np.stack([shapely.distance(pieces[i], shapely.points(xy[pending])) for i in candidates])
            owner[pending] = np.asarray(candidates)[np.argmin(dist, axis=0)]
    return [np.flatnonzero(owner == i) for i in range(len(pieces))]


def _connected_sides(  # noqa: C901 - one geometric case analysis of how two parts touch
    pieces: list[Polygon],
    sides: list[bool],
    piece_weight: list[float],
    low_target: float,
    bridges: FloatArray,
) -> list[bool]:
    """Regroup cut pieces into a connected low group and a connected high group, staying close to the target."""
    n = len(pieces)
    adjacent = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if sides[i] != sides[j] and pieces[i].intersects(pieces[j]):
                # Pieces are neighbours when their boundaries share a stretch of the cut line, not just a point.
                adjacent[i][j] = adjacent[j][i] = shapely.relate(pieces[i], pieces[j])[4] == "1"
    for x1, y1, x2, y2 in bridges:
        ends_a = [i for i in range(n) if shapely.intersects_xy(pieces[i], x1, y1)]
        ends_b = [i for i in range(n) if shapely.intersects_xy(pieces[i], x2, y2)]
        for i in ends_a:
            for j in ends_b:
                if i != j:
                    adjacent[i][j] = adjacent[j][i] = True

    def heaviest(side: bool) -> int:
        members = [i for i in range(n) if sides[i] == side]
        return max(members, key=lambda i: (piece_weight[i], pieces[i].area, -i))

    group: dict[int, bool] = {}
    for side in (True, False):
        # The heaviest piece of each side seeds its group, with whatever of its own side it reaches.
        stack = [heaviest(side)]
        while stack:
            i = stack.pop()
            if i in group:
                continue
            group[i] = side
            stack += [j for j in range(n) if adjacent[i][j] and sides[j] == side and j not in group]
    low_weight = sum(piece_weight[i] for i, g in group.items() if g)
    while len(group) < n:
        progress = False
        for i in range(n):
            if i in group:
                continue
            touches = {group[j] for j in range(n) if adjacent[i][j] and j in group}
            if not touches:
                continue
            if len(touches) == 2:
                to_low = abs(low_weight + piece_weight[i] - low_target) < abs(low_weight - low_target)
            else:
                to_low = touches.pop()
            group[i] = to_low
            low_weight += piece_weight[i] if to_low else 0.0
            progress = True
        if not progress:
            # Only pieces touching nothing along an edge remain (a corner contact): the nearest group takes each.
            for i in range(n):
                if i not in group:
                    nearest = min(group, key=lambda j: (pieces[i].distance(pieces[j]), j))
                    group[i] = group[nearest]
    return [group[i] for i in range(n)]


def _refine_by_area(region: _Region, work: _Workload, cut: _Cut) -> _Cut:
    """Move a clean cut of a weightless region so the sides hold their exact area shares (secant steps)."""
    target = region.geom.area * cut.low.k / region.k
    xy = work.xy[region.idx]
    proj = xy[:, 0] * cut.direction[0] + xy[:, 1] * cut.direction[1]
    best = cut
    t0, f0 = cut.offset_m, cut.low.geom.area - target
    low_box, _ = _half_planes(region.geom, cut.direction, t0 + 1.0)
    t1 = t0 + 1.0
    f1 = region.geom.intersection(low_box).area - target
    for _ in range(6):
        if abs(f1 - f0) < 1e-12 or abs(f0) < 1e-9 * region.geom.area:
            break
        t2 = t1 - f1 * (t1 - t0) / (f1 - f0)
        candidate = _evaluate(region, work, cut.direction, t2, cut.low.k, proj)
        if candidate is None or not candidate.clean:
            break
        if candidate.score <= best.score:
            best = candidate
        t0, f0, t1, f1 = t1, f1, t2, candidate.low.geom.area - target
    return best


def _union(pieces: list[Polygon]) -> Polygon | MultiPolygon:
    """Union of adjacent pieces as one Polygon (or a MultiPolygon across island bridges)."""
    merged = pieces[0] if len(pieces) == 1 else shapely.union_all(pieces)
    return _tidy(merged)


def _tidy(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """Drop crumbs from an overlay result and return it as a Polygon when it is one piece."""
    if isinstance(geom, Polygon):
        return geom
    polygons = _pieces(geom)
    if len(polygons) == 1:
        return polygons[0]
    return MultiPolygon(polygons)


def _polsby_popper(geom: BaseGeometry) -> float:
    """Compactness 4πA/P² (1 for a disc, near 0 for a sliver)."""
    return 4.0 * math.pi * geom.area / geom.length**2 if geom.length > 0 else 0.0
