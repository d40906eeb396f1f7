"""synthetic.communities: community polygons for the real towns, from a population density surface."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from grids.reference import short_community_name

PartitionFn = Callable[[BaseGeometry, np.ndarray, np.ndarray, int], Sequence[BaseGeometry]]

# Sampled population points per community: enough to balance the partition, few enough to stay fast.
POINTS_PER_COMMUNITY = 120


def density_points(town: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sample n points (metric x, y) from a town's synthetic population density surface.

    The surface is a dense centre, two to four secondary centres and a thin rural background,
    which is how Dongguan towns look: a built-up core, industrial villages, farmland and hills.
    """
    minx, miny, maxx, maxy = town.bounds
    extent = max(maxx - minx, maxy - miny)
    centre = town.point_on_surface()
    seeds = [(centre.x, centre.y, 0.12 * extent, 0.45)]
    for _ in range(int(rng.integers(2, 5))):
        p = _random_points_inside(town, 1, rng)[0]
        seeds.append((p[0], p[1], rng.uniform(0.06, 0.12) * extent, rng.uniform(0.1, 0.2)))
    weights = np.array([s[3] for s in seeds])
    background_share = 0.2
    weights = weights / weights.sum() * (1 - background_share)
    counts = rng.multinomial(n, [*weights, background_share])
    chunks: list[np.ndarray] = []
    for (cx, cy, sigma, _), count in zip(seeds, counts[:-1], strict=True):
        chunks.append(_gaussian_points_inside(town, cx, cy, sigma, int(count), rng))
    chunks.append(_random_points_inside(town, int(counts[-1]), rng))
    return np.vstack(chunks)


def _random_points_inside(poly: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = poly.bounds
    out = np.empty((0, 2))
    shapely.prepare(poly)
    while len(out) < n:
        batch = rng.uniform([minx, miny], [maxx, maxy], size=(max(64, 3 * (n - len(out))), 2))
        inside = shapely.contains_xy(poly, batch[:, 0], batch[:, 1])
        out = np.vstack([out, batch[inside]])
    return out[:n]


def _gaussian_points_inside(
    poly: BaseGeometry, cx: float, cy: float, sigma: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    out = np.empty((0, 2))
    attempts = 0
    while len(out) < n and attempts < 50:
        batch = rng.normal([cx, cy], sigma, size=(max(64, 3 * (n - len(out))), 2))
        inside = shapely.contains_xy(poly, batch[:, 0], batch[:, 1])
        out = np.vstack([out, batch[inside]])
        attempts += 1
    if len(out) < n:
        out = np.vstack([out, _random_points_inside(poly, n - len(out), rng)])
    return out[:n]


def allocate(total: int, shares: np.ndarray) -> np.ndarray:
    """Split an integer total by shares with the largest-remainder rule (sums exactly to total)."""
    shares = np.asarray(shares, dtype=float)
    if shares.sum() <= 0:
        shares = np.ones_like(shares)
    exact = shares / shares.sum() * total
    base = np.floor(exact).astype(np.int64)
    remainder = int(total - base.sum())
    if remainder:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:remainder]] += 1
    return base


def synthesize_communities(
    towns_m: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    partition: PartitionFn,
    seed: int,
) -> gpd.GeoDataFrame:
    """Partition each town (metric CRS) into its real communities; returns their polygons and populations.

    Each town is cut into as many parts as it has communities, balanced on sampled population, so that
    parts in the dense core come out small and parts in the countryside large. The densest parts become
    the residents' committees, the smallest remaining ones the special units (生活区), the rest villages.
    """
    rows: list[dict[str, object]] = []
    for town_idx, town in enumerate(towns_m.itertuples(index=False)):
        members = communities[communities["town_code"] == town.code].sort_values("code")
        if members.empty:
            continue
        rng = np.random.default_rng([seed, town_idx])
        geom: BaseGeometry = town.geometry
        k = len(members)
        points = density_points(geom, POINTS_PER_COMMUNITY * k, rng)
        parts = list(partition(geom, points, np.ones(len(points)), k)) if k > 1 else [geom]
        part_geoms = gpd.GeoSeries(parts, crs=towns_m.crs)
        counts = np.array([int(shapely.contains_xy(p, points[:, 0], points[:, 1]).sum()) for p in parts], dtype=float)
        areas = part_geoms.area.to_numpy()
        density = counts / np.maximum(areas, 1.0)
        order = _kind_order(members["kind"].tolist(), density, areas)
        populations = allocate(int(town.population), counts + 1.0)
        for member, part_idx in zip(members.itertuples(index=False), order, strict=True):
            part = parts[part_idx]
            rows.append(
                {
                    "code": member.code,
                    "town_code": town.code,
                    "town_name": town.name,
                    "name": member.name,
                    "short_name": short_community_name(member.name),
                    "kind": member.kind,
                    "population": int(populations[part_idx]),
                    "geometry": part
                    if isinstance(part, MultiPolygon)
                    else MultiPolygon([part])
                    if isinstance(part, Polygon)
                    else part,
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=towns_m.crs)


def _kind_order(kinds: list[str], density: np.ndarray, areas: np.ndarray) -> list[int]:
    """For each community (in code order), the index of the part it takes."""
    free = set(range(len(kinds)))
    take: dict[int, int] = {}
    by_density = [int(i) for i in np.argsort(-density, kind="stable")]
    by_area = [int(i) for i in np.argsort(areas, kind="stable")]
    for want, ranking in (("residents_committee", by_density), ("special", by_area), ("virtual", by_density)):
        for idx, kind in enumerate(kinds):
            if kind == want:
                part = next(p for p in ranking if p in free)
                free.remove(part)
                take[idx] = part
    rest = sorted(free)
    for idx in range(len(kinds)):
        if idx not in take:
            take[idx] = rest.pop(0)
    return [take[i] for i in range(len(kinds))]
