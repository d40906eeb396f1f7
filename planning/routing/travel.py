"""planning.routing.travel: the city's roads as a routable graph, and travel-time matrices on it or on straight lines.

Assumptions (documented, not measured): a team drives at 40 km/h on a 大道, 30 on a 路, 20 on a 街 and 12 on a 巷, and
covers the leg between a door and its nearest road point at 6 km/h (on foot or at a crawl). The synthetic roads cross
without shared vertices, so the lines are noded first (every crossing becomes a junction) in the metric CRS; node
coordinates are merged on a 0.1 m grid, which also joins the ends of a trunk clipped at a town boundary.

The synthetic city's street lattices are drawn per community and many never touch an arterial, so the graph falls
into islands that real streets would join. Connectors at 巷 speed join them: first each dead end to the nearest node
of another island within 500 m (a street that stops at its community's edge meets the next community's streets), then
the islands still apart by their closest pairs among each node's nearest neighbours (Kruskal), and any island left to
the largest one at its closest node. A pair of stops the roads still do not join takes the straight-line time and
distance instead (the `StraightLine` model), so every matrix is complete; `RoadMatrix.fallback_pairs` counts them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from gis.crs import lonlat_to_metric, metric_to_lonlat

SPEED_KMH: dict[str, float] = {"大道": 40.0, "路": 30.0, "街": 20.0, "巷": 12.0}
ACCESS_KMH = 6.0
# Straight-line model: great-circle distance × a detour factor, at an average urban speed.
DETOUR_FACTOR = 1.35
STRAIGHT_KMH = 25.0
EARTH_RADIUS_M = 6_371_008.8
NODE_GRID_M = 0.1
SOURCE_CHUNK = 32
# What a matrix costs, measured on the demo city (33,925 nodes city-wide, 6,603 in the busiest town; 2 shared cores):
# a search per road end near a point (2 per point) over the graph, then the metres walked back along every pair's
# path. Seconds ≈ points × nodes × MATRIX_S_PER_POINT_NODE + points² × nodes × MATRIX_S_PER_PAIR_NODE: 100 points
# city-wide 2.1 s (estimate 2.4), 1,000 city-wide 54.9 s (54.3), 1,000 in one town 5.3 s (10.6), 300 in one town
# 1.0 s (1.8) — an upper estimate, so a request refused by it would not have fitted its time limit.
MATRIX_S_PER_POINT_NODE = 6.0e-7
MATRIX_S_PER_PAIR_NODE = 1.0e-9
CONNECTOR_KMH = SPEED_KMH["巷"]
CONNECTOR_NEIGHBOURS = 12
DEAD_END_NEIGHBOURS = 32
DEAD_END_REACH_M = 500.0

LonLat = tuple[float, float]
IntMatrix = NDArray[np.int64]


def _mps(kmh: float) -> float:
    """Kilometres per hour in metres per second."""
    return kmh / 3.6


@dataclass(frozen=True)
class RoadMatrix:
    """Travel between every ordered pair of points: seconds and metres (ints), and how many pairs fell back."""

    durations_s: IntMatrix
    distances_m: IntMatrix
    fallback_pairs: int


@dataclass(frozen=True)
class Searched:
    """Shortest-path trees of a road graph: per source node (`row_of`), seconds and predecessors to every node."""

    row_of: dict[int, int]
    dist: NDArray[np.float64]
    pred: NDArray[np.int32]

    def rows(self, nodes: NDArray[np.int64]) -> list[int] | None:
        """The rows of these source nodes, or None when one of them was not searched."""
        try:
            return [self.row_of[int(v)] for v in nodes]
        except KeyError:
            return None


class StraightLine:
    """The baseline: haversine distance × DETOUR_FACTOR at STRAIGHT_KMH."""

    def __init__(self, detour: float = DETOUR_FACTOR, speed_kmh: float = STRAIGHT_KMH) -> None:
        self.detour = detour
        self.speed_mps = _mps(speed_kmh)

    def durations(self, points: Sequence[LonLat]) -> tuple[IntMatrix, IntMatrix]:
        """(seconds, metres) between every ordered pair of (lon, lat) points."""
        metres = self.detour * haversine_m(points)
        return np.rint(metres / self.speed_mps).astype(np.int64), np.rint(metres).astype(np.int64)


def haversine_m(points: Sequence[LonLat]) -> NDArray[np.float64]:
    """Great-circle metres between every pair of (lon, lat) points."""
    arr = np.radians(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    lon, lat = arr[:, 0], arr[:, 1]
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


@dataclass(frozen=True)
class _Snap:
    """Each point's nearest road segment, where on it (0..1 from its first node) and how far off it (m)."""

    segment: NDArray[np.int64]
    along: NDArray[np.float64]
    access_m: NDArray[np.float64]


class RoadNetwork:
    """The noded road graph (metric CRS): junction nodes, two-way segments weighted by seconds, and their metres."""

    def __init__(self, lines_m: Sequence[shapely.LineString], kinds: Sequence[str]) -> None:
        if not lines_m:
            raise ValueError("no roads")
        # A road clipped by a boundary may be a MultiLineString: its parts keep its kind.
        lines, part_of = shapely.get_parts(np.asarray(lines_m, dtype=object), return_index=True)
        road_speeds = np.array([_mps(SPEED_KMH.get(k, SPEED_KMH["路"])) for k in kinds], dtype=np.float64)
        speeds = road_speeds[part_of]
        pieces = shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))
        # A noded piece keeps the speed of the road it lies on (the one nearest its midpoint).
        mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
        piece_idx, road_idx = shapely.STRtree(lines).query_nearest(mids, all_matches=False)
        piece_speed = np.empty(len(pieces), dtype=np.float64)
        piece_speed[piece_idx] = speeds[road_idx]
        coords, owner = shapely.get_coordinates(pieces, return_index=True)
        same = owner[:-1] == owner[1:]
        starts, ends = coords[:-1][same], coords[1:][same]
        speed = piece_speed[owner[:-1][same]]
        keys = np.rint(np.vstack([starts, ends]) / NODE_GRID_M).astype(np.int64)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        a, b = inverse[: len(starts)], inverse[len(starts) :]
        length = np.hypot(*(ends - starts).T)
        keep = (a != b) & (length > 0)
        self.node_xy = uniq.astype(np.float64) * NODE_GRID_M
        self.seg_a, self.seg_b = a[keep], b[keep]
        self.seg_length = length[keep]
        self.seg_seconds = self.seg_length / speed[keep]
        n = len(self.node_xy)
        link_a, link_b, link_m = _connectors(self.node_xy, self.seg_a, self.seg_b)
        self.connector_count = len(link_a)
        link_s = link_m / _mps(CONNECTOR_KMH)
        rows = np.concatenate([self.seg_a, self.seg_b, link_a, link_b])
        cols = np.concatenate([self.seg_b, self.seg_a, link_b, link_a])
        secs = np.concatenate([self.seg_seconds, self.seg_seconds, link_s, link_s])
        metres = np.concatenate([self.seg_length, self.seg_length, link_m, link_m])
        # Two segments between the same nodes: keep the faster (a CSR would sum them).
        order = np.lexsort((secs, cols, rows))
        rows, cols, secs, metres = rows[order], cols[order], secs[order], metres[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, secs, metres = rows[first], cols[first], secs[first], metres[first]
        self.graph: csr_matrix = coo_matrix((secs, (rows, cols)), shape=(n, n)).tocsr()
        self._edge_keys = rows * n + cols  # sorted, for the metres of a tree edge
        self._edge_metres = metres
        self._segments = shapely.linestrings(np.stack([self.node_xy[self.seg_a], self.node_xy[self.seg_b]], axis=1))
        self._tree = shapely.STRtree(self._segments)
        self.straight = StraightLine()

    @property
    def node_count(self) -> int:
        """How many junctions and shape points the graph has."""
        return len(self.node_xy)

    @classmethod
    def load(cls, conn: Connection, towns: Sequence[str] | None = None) -> RoadNetwork:
        """The roads of `towns` (None: the whole city), built once per process and data state."""
        key_towns = None if towns is None else tuple(sorted(set(towns)))
        state = conn.execute(text("SELECT count(*), coalesce(max(id), 0) FROM road")).one()
        key = (int(state[0]), int(state[1]), key_towns)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        rows = conn.execute(
            text(
                "SELECT kind, ST_AsBinary(geom) FROM road"
                " WHERE CAST(:towns AS text[]) IS NULL OR town_code = ANY(CAST(:towns AS text[])) ORDER BY id"
            ),
            {"towns": None if key_towns is None else list(key_towns)},
        ).all()
        if not rows:
            raise ValueError("no roads in these towns")
        lines = shapely.from_wkb([bytes(r[1]) for r in rows])
        lines_m = shapely.transform(lines, lambda xy: np.column_stack(lonlat_to_metric(xy[:, 0], xy[:, 1])))
        network = cls(list(lines_m), [str(r[0]) for r in rows])
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = network
        return network

    def _snap(self, points: Sequence[LonLat]) -> tuple[_Snap, NDArray[np.float64]]:
        """Each (lon, lat) point's nearest segment and position on it; also the points in metres."""
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x_m, y_m = lonlat_to_metric(arr[:, 0], arr[:, 1])
        pts = shapely.points(x_m, y_m)
        idx, seg = self._tree.query_nearest(pts, all_matches=False)
        segment = np.empty(len(arr), dtype=np.int64)
        segment[idx] = seg
        lines = self._segments[segment]
        along = shapely.line_locate_point(lines, pts, normalized=True)
        access = shapely.distance(lines, pts)
        return _Snap(
            segment, np.asarray(along, dtype=np.float64), np.asarray(access, dtype=np.float64)
        ), np.column_stack([x_m, y_m])

    def _ends(self, snap: _Snap) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Per point, its segment's two nodes (n, 2), the seconds and the metres from the point to each (n, 2)."""
        seg = snap.segment
        nodes = np.column_stack([self.seg_a[seg], self.seg_b[seg]])
        frac = np.column_stack([snap.along, 1.0 - snap.along])
        access_s = snap.access_m / _mps(ACCESS_KMH)
        secs = frac * self.seg_seconds[seg][:, None] + access_s[:, None]
        metres = frac * self.seg_length[seg][:, None] + snap.access_m[:, None]
        return nodes, secs, metres

    def matrix_estimate_s(self, points: int) -> float:
        """The seconds a matrix of this many points is expected to take on this graph (an upper estimate)."""
        nodes = self.node_count
        return points * nodes * MATRIX_S_PER_POINT_NODE + points * points * nodes * MATRIX_S_PER_PAIR_NODE

    def search(self, points: Sequence[LonLat]) -> Searched:
        """The shortest-path trees from the road ends near these points: searched once, then a matrix over the points
        and the paths of any of their legs reuse them (a team's matrix and its days' map lines)."""
        snap, _ = self._snap(points)
        nodes, _, _ = self._ends(snap)
        uniq = np.unique(nodes.reshape(-1))
        dist, pred = dijkstra(self.graph, directed=True, indices=uniq, return_predecessors=True)
        return Searched({int(v): i for i, v in enumerate(uniq)}, dist, pred)

    def matrix(self, points: Sequence[LonLat], searched: Searched | None = None) -> RoadMatrix:
        """Seconds and metres between every ordered pair of points along the roads (straight line where none);
        `searched` (from `search` over these points or more) saves searching again."""
        n = len(points)
        if n == 0:
            empty = np.zeros((0, 0), dtype=np.int64)
            return RoadMatrix(empty, empty.copy(), 0)
        snap, _ = self._snap(points)
        nodes, end_s, end_m = self._ends(snap)
        sources = nodes.reshape(-1)
        uniq, where = np.unique(sources, return_inverse=True)
        dist = np.empty((len(uniq), len(sources)), dtype=np.float64)
        metres = np.empty_like(dist)
        rows = searched.rows(uniq) if searched is not None else None
        if rows is not None and searched is not None:
            d = searched.dist[rows][:, sources]
            dist[:] = d
            metres[:] = self._chain_metres(searched.pred[rows], sources, d)
        # Sources in chunks: a whole-city graph has tens of thousands of nodes, and the trees are rows that long.
        for lo in range(0, len(uniq) if rows is None else 0, SOURCE_CHUNK):
            part = uniq[lo : lo + SOURCE_CHUNK]
            d, pred = dijkstra(self.graph, directed=True, indices=part, return_predecessors=True)
            dist[lo : lo + len(part)] = d[:, sources]
            metres[lo : lo + len(part)] = self._chain_metres(pred, sources, d[:, sources])
        sub_s = dist[where.reshape(-1)].reshape(n, 2, n, 2)
        sub_m = metres[where.reshape(-1)].reshape(n, 2, n, 2)
        total_s = end_s[:, :, None, None] + sub_s + end_s[None, None, :, :]
        total_m = end_m[:, :, None, None] + sub_m + end_m[None, None, :, :]
        flat_s = total_s.transpose(0, 2, 1, 3).reshape(n, n, 4)
        flat_m = total_m.transpose(0, 2, 1, 3).reshape(n, n, 4)
        best = np.argmin(flat_s, axis=2)
        secs = np.take_along_axis(flat_s, best[:, :, None], axis=2)[:, :, 0]
        mets = np.take_along_axis(flat_m, best[:, :, None], axis=2)[:, :, 0]
        # Two points on the same segment: straight along it, not out to a node and back.
        same = snap.segment[:, None] == snap.segment[None, :]
        if same.any():
            seg = snap.segment
            gap = np.abs(snap.along[:, None] - snap.along[None, :])
            access_s = snap.access_m / _mps(ACCESS_KMH)
            along_s = gap * self.seg_seconds[seg][:, None] + access_s[:, None] + access_s[None, :]
            along_m = gap * self.seg_length[seg][:, None] + snap.access_m[:, None] + snap.access_m[None, :]
            shorter = same & (along_s < secs)
            secs = np.where(shorter, along_s, secs)
            mets = np.where(shorter, along_m, mets)
        unreachable = ~np.isfinite(secs)
        if unreachable.any():
            straight_s, straight_m = self.straight.durations(points)
            secs = np.where(unreachable, straight_s, secs)
            mets = np.where(unreachable, straight_m, mets)
        np.fill_diagonal(secs, 0)
        np.fill_diagonal(mets, 0)
        return RoadMatrix(np.rint(secs).astype(np.int64), np.rint(mets).astype(np.int64), int(unreachable.sum()))

    def durations(self, points: Sequence[LonLat]) -> tuple[IntMatrix, IntMatrix]:
        """(seconds, metres) between every ordered pair of (lon, lat) points along the roads."""
        result = self.matrix(points)
        return result.durations_s, result.distances_m

    def _chain_metres(
        self, pred: NDArray[np.int32], targets: NDArray[np.int64], seconds: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Metres along each search's fastest path to each target: every (search, target) chain of predecessors
        walked up at once, one edge per step, so the work grows with the targets and the path lengths only."""
        n = self.graph.shape[0]
        rows = np.repeat(np.arange(len(pred)), len(targets))
        here = np.tile(targets.astype(np.int64), len(pred))
        total = np.zeros(len(here))
        live = np.flatnonzero(pred[rows, here] >= 0)
        while len(live):
            parent = pred[rows[live], here[live]].astype(np.int64)
            pos = np.searchsorted(self._edge_keys, parent * n + here[live])
            total[live] += self._edge_metres[np.clip(pos, 0, len(self._edge_metres) - 1)]
            here[live] = parent
            live = live[pred[rows[live], parent] >= 0]
        out = total.reshape(len(pred), len(targets))
        return np.where(np.isfinite(seconds), out, np.inf)

    def paths(self, points: Sequence[LonLat], searched: Searched | None = None) -> list[list[LonLat]]:
        """The road path (lon, lat vertices) from each point to the next: len(points) - 1 legs, for the map;
        `searched` (from `search` over these points or more) saves searching again."""
        if len(points) < 2:
            return []
        snap, xy = self._snap(points)
        nodes, end_s, _ = self._ends(snap)
        uniq = np.unique(nodes.reshape(-1))
        if searched is not None and searched.rows(uniq) is not None:
            dist, pred, row_of = searched.dist, searched.pred, searched.row_of
        else:
            dist, pred = dijkstra(self.graph, directed=True, indices=uniq, return_predecessors=True)
            row_of = {int(v): i for i, v in enumerate(uniq)}
        legs: list[list[LonLat]] = []
        for i in range(len(points) - 1):
            j = i + 1
            best: tuple[float, int, int] | None = None
            for ka in range(2):
                for kb in range(2):
                    a, b = int(nodes[i, ka]), int(nodes[j, kb])
                    cost = end_s[i, ka] + dist[row_of[a], b] + end_s[j, kb]
                    if np.isfinite(cost) and (best is None or cost < best[0]):
                        best = (float(cost), a, b)
            snapped_i = self._on_segment(snap, i)
            snapped_j = self._on_segment(snap, j)
            chain: list[tuple[float, float]] = [(float(xy[i, 0]), float(xy[i, 1])), snapped_i]
            if snap.segment[i] != snap.segment[j] and best is not None:
                a, b = best[1], best[2]
                walk = [b]
                row = row_of[a]
                while walk[-1] != a:
                    walk.append(int(pred[row, walk[-1]]))
                chain.extend((float(self.node_xy[v, 0]), float(self.node_xy[v, 1])) for v in reversed(walk))
            chain.extend([snapped_j, (float(xy[j, 0]), float(xy[j, 1]))])
            lon, lat = metric_to_lonlat([c[0] for c in chain], [c[1] for c in chain])
            legs.append([(round(float(x), 6), round(float(y), 6)) for x, y in zip(lon, lat, strict=True)])
        return legs

    def _on_segment(self, snap: _Snap, i: int) -> tuple[float, float]:
        """The road point a stop was snapped to (metres)."""
        seg = int(snap.segment[i])
        a, b = self.node_xy[self.seg_a[seg]], self.node_xy[self.seg_b[seg]]
        p = a + (b - a) * snap.along[i]
        return float(p[0]), float(p[1])


def _connectors(
    xy: NDArray[np.float64], seg_a: NDArray[np.int64], seg_b: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Links (a, b, metres) that join the graph's islands, each at its closest pair of nodes (a spanning forest)."""
    n = len(xy)
    graph = coo_matrix((np.ones(len(seg_a)), (seg_a, seg_b)), shape=(n, n))
    count, label = connected_components(graph, directed=False)
    if count <= 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tree = cKDTree(xy)
    links: list[tuple[int, int, float]] = []
    # A street that ends at its community's edge meets the next community's streets there: each dead end joins the
    # nearest node of another island within DEAD_END_REACH_M.
    degree = np.bincount(np.concatenate([seg_a, seg_b]), minlength=n)
    dead = np.flatnonzero(degree == 1)
    if len(dead):
        k = min(DEAD_END_NEIGHBOURS, n)
        gaps, near = tree.query(xy[dead], k=k, distance_upper_bound=DEAD_END_REACH_M)
        other = (near < n) & (label[np.minimum(near, n - 1)] != label[dead][:, None])
        has = other.any(axis=1)
        first = np.argmax(other, axis=1)
        for d, j in zip(dead[has].tolist(), first[has].tolist(), strict=True):
            row = int(np.searchsorted(dead, d))
            links.append((d, int(near[row, j]), float(gaps[row, j])))
    if links:
        la = np.array([x[0] for x in links] + seg_a.tolist())
        lb = np.array([x[1] for x in links] + seg_b.tolist())
        count, label = connected_components(coo_matrix((np.ones(len(la)), (la, lb)), shape=(n, n)), directed=False)
    k = min(CONNECTOR_NEIGHBOURS, n)
    gap, near = tree.query(xy, k=k)
    src = np.repeat(np.arange(n), k)
    dst, gap = near.reshape(-1), gap.reshape(-1)
    cross = label[src] != label[dst]
    order = np.argsort(gap[cross], kind="stable")
    cand_a, cand_b, cand_m = src[cross][order], dst[cross][order], gap[cross][order]
    parent = list(range(count))

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for a, b, m in zip(cand_a.tolist(), cand_b.tolist(), cand_m.tolist(), strict=True):
        ra, rb = root(int(label[a])), root(int(label[b]))
        if ra != rb:
            parent[ra] = rb
            links.append((a, b, m))
    groups = np.array([root(int(c)) for c in range(count)])[label]
    sizes = np.bincount(groups, minlength=count)
    main = int(np.argmax(sizes))
    main_nodes = np.flatnonzero(groups == main)
    main_tree = cKDTree(xy[main_nodes])
    for g in np.unique(groups):
        if g == main:
            continue
        members = np.flatnonzero(groups == g)
        gaps, idx = main_tree.query(xy[members])
        best = int(np.argmin(gaps))
        links.append((int(members[best]), int(main_nodes[idx[best]]), float(gaps[best])))
    arr = np.array(links, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]


_CACHE: dict[tuple[int, int, tuple[str, ...] | None], RoadNetwork] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 16
