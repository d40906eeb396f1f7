"""synthetic.address_sites: where the synthetic addresses stand and what each unit holds — door anchors on roads
and their house numbers, points inside a community, and the planned buildings and rooms of compounds, markets and
parks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from synthetic.names import (
    BUILDING_STYLE_WEIGHTS,
    BUILDING_STYLES,
    FACTORY_BUILDING_STYLE_WEIGHTS,
    FACTORY_BUILDING_STYLES,
    building_labels,
    compound_name,
    market_name,
    park_name,
    phase_labels,
    pick,
    unique_name,
)

# Downstream grids are balanced on address rows, so no single building may weigh too much.
MAX_ROOMS_PER_BUILDING = 40
DOOR_OFFSET_M = (8.0, 22.0)
ANCHOR_ROUNDS = 8


@dataclass
class Anchors:
    """Door positions on roads, numbered once every community has placed its own."""

    road: list[int] = field(default_factory=list)
    s: list[float] = field(default_factory=list)
    side: list[int] = field(default_factory=list)

    def add(self, road: np.ndarray, s: np.ndarray, side: np.ndarray) -> list[int]:
        start = len(self.road)
        self.road.extend(road.tolist())
        self.s.extend(s.tolist())
        self.side.extend(side.tolist())
        return list(range(start, len(self.road)))


@dataclass
class Placed:
    """Sampled road anchors of one community: global anchor ids, door points, tangent and outward normal."""

    ids: list[int]
    xy: np.ndarray
    tangent: np.ndarray
    outward: np.ndarray


@dataclass
class Building:
    """One planned building of a unit: its label, its phase, and how many room rows it gets."""

    label: str
    phase: str | None
    rooms: int


@dataclass
class Unit:
    """A compound, market or industrial park: its door plus buildings, each with its planned room rows."""

    kind: str
    name: str
    buildings: list[Building]
    on_road: bool = False

    def size(self) -> int:
        return 1 + len(self.buildings) + sum(b.rooms for b in self.buildings)


@dataclass
class Community:
    """One community while its addresses are generated: its shape, road pieces, random stream and names in use."""

    idx: int
    stem: str
    kind: str
    geom: BaseGeometry
    rng: np.random.Generator
    part_geoms: np.ndarray
    part_roads: np.ndarray
    town_names: set[str]
    park_names: set[str] = field(default_factory=set)
    village_names: set[str] = field(default_factory=set)


# --- geometry -----------------------------------------------------------------------------------------------------


def interior_points(geom: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform points strictly inside geom (rejection sampling, point_on_surface as the last resort)."""
    minx, miny, maxx, maxy = geom.bounds
    out = np.empty((0, 2))
    for _ in range(60):
        if len(out) >= n:
            break
        batch = rng.uniform([minx, miny], [maxx, maxy], size=(max(16, 4 * (n - len(out))), 2))
        out = np.vstack([out, batch[shapely.contains_xy(geom, batch[:, 0], batch[:, 1])]])
    if len(out) < n:
        p = geom.point_on_surface()
        out = np.vstack([out, np.repeat([[p.x, p.y]], n - len(out), axis=0)])
    return out[:n]


def pull_inside(geom: BaseGeometry, xy: np.ndarray, anchor_xy: np.ndarray) -> np.ndarray:
    """Move points outside geom toward their anchor (which is inside) until they are inside."""
    anchors = np.broadcast_to(anchor_xy, xy.shape)
    out = xy.copy()
    bad = ~shapely.contains_xy(geom, out[:, 0], out[:, 1])
    for t in (0.6, 0.3, 0.1, 0.0):
        if not bad.any():
            break
        idx = np.flatnonzero(bad)
        out[idx] = anchors[idx] + t * (xy[idx] - anchors[idx])
        ok = shapely.contains_xy(geom, out[idx, 0], out[idx, 1])
        bad[idx[ok]] = False
    return out


def road_pieces(comms: gpd.GeoDataFrame, roads: gpd.GeoDataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every community, the LineString pieces of its town's roads inside it and their road indices."""
    comm_geoms = comms.geometry.to_numpy()
    road_geoms = roads.geometry.to_numpy()
    tree = shapely.STRtree(road_geoms)
    comm_i, road_j = tree.query(comm_geoms, predicate="intersects")
    same_town = comms["town_code"].to_numpy()[comm_i] == roads["town_code"].to_numpy()[road_j]
    comm_i, road_j = comm_i[same_town], road_j[same_town]
    clipped = shapely.intersection(road_geoms[road_j], comm_geoms[comm_i])
    parts, owner = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) >= 20.0)
    parts, owner = parts[keep], owner[keep]
    part_comm, part_road = comm_i[owner], road_j[owner]
    order = np.argsort(part_comm, kind="stable")
    parts, part_comm, part_road = parts[order], part_comm[order], part_road[order]
    bounds = np.searchsorted(part_comm, np.arange(len(comms) + 1))
    return [(parts[bounds[i] : bounds[i + 1]], part_road[bounds[i] : bounds[i + 1]]) for i in range(len(comms))]


def sample_anchors(ctx: Community, n: int, road_geoms: np.ndarray, anchors: Anchors) -> Placed:
    """Up to n door points beside the community's roads, inside the community, odd side left, even side right."""
    rng = ctx.rng
    empty = Placed([], np.empty((0, 2)), np.empty((0, 2)), np.empty((0, 2)))
    if n <= 0 or len(ctx.part_geoms) == 0:
        return empty
    lengths = shapely.length(ctx.part_geoms)
    weights = lengths / lengths.sum()
    got: list[tuple[np.ndarray, ...]] = []
    need = n
    for _ in range(ANCHOR_ROUNDS):
        if need <= 0:
            break
        m = need + 8
        k = rng.choice(len(lengths), size=m, p=weights)
        at = shapely.line_interpolate_point(ctx.part_geoms[k], rng.random(m) * lengths[k])
        road_idx = ctx.part_roads[k]
        full = road_geoms[road_idx]
        s = shapely.line_locate_point(full, at)
        full_len = shapely.length(full)
        a = shapely.get_coordinates(shapely.line_interpolate_point(full, np.maximum(s - 1.0, 0.0)))
        b = shapely.get_coordinates(shapely.line_interpolate_point(full, np.minimum(s + 1.0, full_len)))
        tangent = b - a
        norm = np.hypot(tangent[:, 0], tangent[:, 1])
        tangent = tangent / np.where(norm > 0, norm, 1.0)[:, None]
        left = np.column_stack([-tangent[:, 1], tangent[:, 0]])
        side = np.where(rng.random(m) < 0.5, 1, -1)
        outward = left * side[:, None]
        xy = shapely.get_coordinates(at) + outward * rng.uniform(*DOOR_OFFSET_M, m)[:, None]
        ok = (norm > 0) & shapely.contains_xy(ctx.geom, xy[:, 0], xy[:, 1])
        sel = np.flatnonzero(ok)[:need]
        got.append((road_idx[sel], s[sel], side[sel], xy[sel], tangent[sel], outward[sel]))
        need -= len(sel)
    road_idx, s, side, xy, tangent, outward = (np.concatenate([g[i] for g in got]) for i in range(6))
    ids = anchors.add(road_idx, s, side)
    return Placed(ids, xy.reshape(-1, 2), tangent.reshape(-1, 2), outward.reshape(-1, 2))


def cluster(centre: np.ndarray, count: int, spacing_m: float, angle: float) -> np.ndarray:
    """count points on a small rotated grid centred on centre (buildings of a compound or a park)."""
    cols = int(np.ceil(np.sqrt(count)))
    i = np.arange(count)
    grid = np.column_stack([i % cols, i // cols]).astype(float) * spacing_m
    grid -= grid.mean(axis=0)
    c, s = np.cos(angle), np.sin(angle)
    points: np.ndarray = centre + grid @ np.array([[c, s], [-s, c]])
    return points


# --- planning -----------------------------------------------------------------------------------------------------


def _fit(buildings: list[Building], budget: int) -> list[Building]:
    """Cut a unit's buildings and rooms so that door + buildings + rooms fits the budget."""
    left = budget - 1
    kept: list[Building] = []
    for b in buildings:
        if left <= 0:
            break
        rooms = min(b.rooms, left - 1)
        kept.append(Building(b.label, b.phase, rooms))
        left -= 1 + rooms
    return kept


def _plan_compound(ctx: Community, budget: int) -> Unit:
    rng = ctx.rng
    name = unique_name(ctx.town_names, lambda _a: compound_name(rng, ctx.stem), lambda n: f"{ctx.stem}{n}号花园")
    n_buildings = int(rng.integers(3, 19))
    style = pick(rng, BUILDING_STYLES, BUILDING_STYLE_WEIGHTS)
    n_phases = int(rng.choice([1, 1, 1, 2, 2, 3])) if n_buildings >= 6 else 1
    phases: list[str | None] = list(phase_labels(rng, n_phases)) if n_phases > 1 or rng.random() < 0.15 else [None]
    per_phase = np.array_split(np.arange(n_buildings), len(phases))
    buildings: list[Building] = []
    for phase, members in zip(phases, per_phase, strict=True):
        buildings.extend(
            Building(label, phase, int(rng.integers(8, MAX_ROOMS_PER_BUILDING + 1)))
            for label in building_labels(style, len(members), rng)
        )
    return Unit("compound", name, _fit(buildings, budget))


def _plan_market(ctx: Community, budget: int) -> Unit:
    rng = ctx.rng
    name = unique_name(ctx.town_names, lambda _a: market_name(rng, ctx.stem), lambda n: f"{ctx.stem}第{n}市场")
    halls = int(rng.integers(1, 4))
    labels = building_labels("letter栋" if rng.random() < 0.6 else "num栋", halls, rng, from_one=True)
    buildings = [Building(label, None, int(rng.integers(10, MAX_ROOMS_PER_BUILDING + 1))) for label in labels]
    return Unit("market", name, _fit(buildings, budget))


def _plan_park(ctx: Community, budget: int) -> Unit:
    rng = ctx.rng
    name = unique_name(ctx.park_names, lambda a: park_name(rng, ctx.stem, a), lambda n: f"第{n}工业区")
    count = int(rng.integers(2, 13))
    labels = building_labels(pick(rng, FACTORY_BUILDING_STYLES, FACTORY_BUILDING_STYLE_WEIGHTS), count, rng)
    if rng.random() < 0.25:
        labels.append("厂房")
    buildings = []
    for label in labels:
        # A factory building is let floor by floor (room rows are floors); a dormitory is let room by room.
        rooms = int(rng.integers(2, 7)) if rng.random() < 0.7 else int(rng.integers(10, MAX_ROOMS_PER_BUILDING + 1))
        buildings.append(Building(label, None, rooms))
    return Unit("industrial", name, _fit(buildings, budget))


def plan_units(ctx: Community, budget: int, planner: str) -> list[Unit]:
    make = {"compound": _plan_compound, "market": _plan_market, "industrial": _plan_park}[planner]
    units: list[Unit] = []
    left = budget
    while left > 0:
        unit = make(ctx, left)
        units.append(unit)
        left -= unit.size()
    return units


def door_numbers(anchors: Anchors, seed: int) -> np.ndarray:
    """House numbers per road: odd on the left, even on the right, increasing along the road, with some gaps."""
    n = len(anchors.road)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 0xD00])
    frame = pd.DataFrame({"road": anchors.road, "side": anchors.side, "s": anchors.s, "order": np.arange(n)})
    frame = frame.sort_values(["road", "side", "s", "order"], kind="stable")
    frame["step"] = 1 + (rng.random(n) < 0.15) * rng.integers(1, 4, n)
    rank = frame.groupby(["road", "side"], sort=False)["step"].cumsum().to_numpy()
    numbers = np.where(frame["side"].to_numpy() > 0, 2 * rank - 1, 2 * rank)
    out = np.empty(n, dtype=np.int64)
    out[frame["order"].to_numpy()] = numbers
    return out
