"""synthetic.roads: a deterministic road network per town (cross-town trunks, arterials, local streets)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from grids.reference import short_community_name, town_short_name
from synthetic.names import community_stem, local_road_name, road_base, unique_name

ROAD_COLUMNS = ["id", "town_code", "name", "kind", "geometry"]

# Shortest piece worth naming; shorter clips are slivers where a line grazes a boundary.
MIN_TRUNK_M = 500.0
MIN_ARTERIAL_M = 600.0
MIN_LOCAL_M = 80.0
# Arterial spacing at a town density of 1,500 people/km²; denser towns get a tighter lattice.
ARTERIAL_SPACING_M = 2600.0
# Local street spacing at 5,000 people/km² inside a community.
LOCAL_SPACING_M = 300.0
MAX_LOCAL_LINES_PER_AXIS = 8
TRUNK_COUNT = 6


def generate_roads(communities: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Roads of every town (metric CRS of the input): id, town_code, name, kind (大道/路/街/巷), LineString.

    Three layers, all clipped to the town (the union of its communities): a few trunk roads from the city
    centre out to distant towns, which keep one name (莞X路) through every town they cross; a jittered lattice of
    arterials per town, tighter where the town is denser; and a finer lattice of local streets per community,
    tighter where the community is denser. Names never repeat inside a town.
    """
    comms = communities.sort_values("code").reset_index(drop=True)
    towns = _towns(comms)
    used: dict[str, set[str]] = {code: set() for code in towns["town_code"]}
    rows: list[tuple[str, str, str, LineString]] = []

    for name, kind, line in _trunks(towns, seed):
        pieces = _longest_parts(shapely.intersection(line, towns.geometry.to_numpy()))
        for town_code, piece in zip(towns["town_code"], pieces, strict=True):
            if piece is not None and piece.length >= MIN_TRUNK_M and name not in used[town_code]:
                used[town_code].add(name)
                rows.append((town_code, name, kind, piece))

    for town_idx, town in enumerate(towns.itertuples(index=False)):
        rng = np.random.default_rng([seed, 0x40AD, town_idx])
        code = str(town.town_code)
        rows.extend(_arterials(code, str(town.town_name), town.geometry, float(town.density_km2), rng, used[code]))

    angles = {
        code: float(np.random.default_rng([seed, 0xA1, i]).uniform(-0.35, 0.35))
        for i, code in enumerate(towns["town_code"])
    }
    for comm_idx, comm in enumerate(comms.itertuples(index=False)):
        rng = np.random.default_rng([seed, 0x10CA1, comm_idx])
        short = str(getattr(comm, "short_name", "") or short_community_name(str(comm.name)))
        area_km2 = max(comm.geometry.area / 1e6, 0.01)
        density = max(float(comm.population), 1.0) / area_km2
        rows.extend(
            _locals(
                str(comm.town_code),
                community_stem(short),
                comm.geometry,
                density,
                angles[str(comm.town_code)],
                rng,
                used[str(comm.town_code)],
            )
        )

    frame = pd.DataFrame(rows, columns=["town_code", "name", "kind", "geometry"])
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return gpd.GeoDataFrame(frame[ROAD_COLUMNS], geometry="geometry", crs=communities.crs)


def _towns(comms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rows = []
    for code, group in comms.groupby("town_code", sort=True):
        geom = shapely.union_all(shapely.make_valid(group.geometry.to_numpy()))
        area_km2 = max(geom.area / 1e6, 0.01)
        rows.append(
            {
                "town_code": str(code),
                "town_name": str(group["town_name"].iloc[0]),
                "geometry": geom,
                "population": int(group["population"].sum()),
                "density_km2": max(float(group["population"].sum()), 1.0) / area_km2,
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=comms.crs)


def _longest_parts(geoms: np.ndarray) -> list[LineString | None]:
    """For each clip result, its longest LineString part (None when the clip holds no line)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    best: list[LineString | None] = [None] * len(geoms)
    best_len = np.zeros(len(geoms))
    is_line = shapely.get_type_id(parts) == 1
    lengths = shapely.length(parts)
    for part, i, length, ok in zip(parts, owner, lengths, is_line, strict=True):
        if ok and length > best_len[i]:
            best[i] = part
            best_len[i] = length
    return best


def _lattice(
    geom: BaseGeometry, spacing_m: float, angle: float, rng: np.random.Generator, max_per_axis: int
) -> list[LineString]:
    """A jittered, slightly bent lattice of lines over geom's extent, clipped to geom (longest part each)."""
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    reach = 0.5 * float(np.hypot(maxx - minx, maxy - miny)) + spacing_m
    lines: list[LineString] = []
    for axis_angle in (angle, angle + np.pi / 2):
        u = np.array([np.cos(axis_angle), np.sin(axis_angle)])
        n = np.array([-u[1], u[0]])
        count = min(max_per_axis, max(1, int(2 * reach / spacing_m)))
        step = 2 * reach / (count + 1)
        offsets = -reach + step * np.arange(1, count + 1) + rng.uniform(-0.25, 0.25, count) * step
        along = np.array([-reach, -reach / 3, reach / 3, reach])
        for off in offsets:
            bend = rng.normal(0.0, 0.04 * step, size=4)
            bend[[0, 3]] = 0.0
            pts = np.array([cx, cy]) + np.outer(along, u) + np.outer(off + bend, n)
            lines.append(LineString(pts))
    clipped = _longest_parts(shapely.intersection(np.array(lines, dtype=object), geom))
    return [c for c in clipped if c is not None]


def _direction_words(line: LineString, sections: int) -> list[str]:
    """东/中/西 (or 北/中/南) for the sections of a line, in the line's own order."""
    (x0, y0), (x1, y1) = line.coords[0], line.coords[-1]
    if abs(x1 - x0) >= abs(y1 - y0):
        first, last = ("西", "东") if x1 >= x0 else ("东", "西")
    else:
        first, last = ("南", "北") if y1 >= y0 else ("北", "南")
    return [first, last] if sections == 2 else [first, "中", last]


def _arterials(
    town_code: str, town_name: str, geom: BaseGeometry, density_km2: float, rng: np.random.Generator, used: set[str]
) -> list[tuple[str, str, str, LineString]]:
    spacing = float(np.clip(ARTERIAL_SPACING_M / np.sqrt(density_km2 / 1500.0), 900.0, 3500.0))
    angle = float(rng.uniform(-0.35, 0.35))
    lines = [line for line in _lattice(geom, spacing, angle, rng, 12) if line.length >= MIN_ARTERIAL_M]
    lines.sort(key=lambda line: -line.length)
    stem = town_short_name(town_name)
    rows: list[tuple[str, str, str, LineString]] = []
    for rank, line in enumerate(lines):
        kind = "大道" if rank < 2 and rng.random() < 0.7 else "路"
        sections = 1
        if line.length > 3500 and rng.random() < 0.6:
            sections = 3 if line.length > 6000 and rng.random() < 0.5 else 2
        words = _direction_words(line, sections) if sections > 1 else [""]

        names = _section_names(rng, stem, words, kind, used)
        used.update(names)
        cuts = np.linspace(0.0, line.length, len(names) + 1)
        for i, name in enumerate(names):
            piece = substring(line, cuts[i], cuts[i + 1]) if len(names) > 1 else line
            if isinstance(piece, LineString) and piece.length > 0:
                rows.append((town_code, name, kind, piece))
    return rows


def _section_names(rng: np.random.Generator, stem: str, words: list[str], kind: str, used: set[str]) -> list[str]:
    """Names for the sections of one arterial sharing a base (振安东路, 振安西路), none of them used yet."""
    for _ in range(40):
        base = road_base(rng, stem)
        names = [base + word + kind for word in words]
        if not any(name in used for name in names):
            return names
    n = 1
    while any(f"{stem}{n}号{word}{kind}" in used for word in words):
        n += 1
    return [f"{stem}{n}号{word}{kind}" for word in words]


def _locals(
    town_code: str,
    stem: str,
    geom: BaseGeometry,
    density_km2: float,
    angle: float,
    rng: np.random.Generator,
    used: set[str],
) -> list[tuple[str, str, str, LineString]]:
    spacing = float(np.clip(LOCAL_SPACING_M * np.sqrt(5000.0 / density_km2), 120.0, 900.0))
    lines = _lattice(geom, spacing, angle + float(rng.normal(0.0, 0.08)), rng, MAX_LOCAL_LINES_PER_AXIS)
    rows: list[tuple[str, str, str, LineString]] = []
    for line in lines:
        if line.length < MIN_LOCAL_M:
            continue
        if line.length >= 700:
            kind = "路" if rng.random() < 0.8 else "街"
        elif line.length >= 300:
            kind = "街" if rng.random() < 0.6 else "路"
        else:
            kind = "巷"
        name = _local_name(rng, stem, kind, used)
        rows.append((town_code, name, kind, line))
    return rows


def _local_name(rng: np.random.Generator, stem: str, kind: str, used: set[str]) -> str:
    def make(attempt: int) -> str:
        return local_road_name(rng, stem, kind, attempt)

    def fallback(n: int) -> str:
        return f"{stem}{n}{'号' if kind == '巷' else '横'}{kind}"

    return unique_name(used, make, fallback)


def _trunks(towns: gpd.GeoDataFrame, seed: int) -> list[tuple[str, str, LineString]]:
    """Trunk lines from the population centre out to a few distant towns, named 莞 + a character of the far town."""
    if len(towns) < 2:
        return []
    rng = np.random.default_rng([seed, 0x7A0])
    reps = shapely.point_on_surface(towns.geometry.to_numpy())
    xy = shapely.get_coordinates(reps)
    weights = towns["population"].to_numpy(dtype=float) + 1.0
    centre = (xy * weights[:, None]).sum(axis=0) / weights.sum()
    centre_town = int(np.argmin(np.hypot(*(xy - centre).T)))
    centre = xy[centre_town]
    offsets = xy - centre
    distance = np.hypot(offsets[:, 0], offsets[:, 1])
    bearing = np.arctan2(offsets[:, 1], offsets[:, 0])
    picked: list[int] = []
    for i in np.argsort(-distance, kind="stable"):
        if int(i) == centre_town or len(picked) >= TRUNK_COUNT:
            continue
        gaps = [abs((bearing[i] - bearing[j] + np.pi) % (2 * np.pi) - np.pi) for j in picked]
        if all(g > np.radians(35) for g in gaps):
            picked.append(int(i))
    trunks: list[tuple[str, str, LineString]] = []
    chars_used: set[str] = set()
    for rank, i in enumerate(picked):
        short = town_short_name(str(towns["town_name"].iloc[i]))
        char = next((c for c in short if c not in chars_used), None)
        if char is None:
            continue
        chars_used.add(char)
        kind = "大道" if rank == 0 else "路"
        end = centre + offsets[i] * 1.25
        mid = centre + offsets[i] * 0.5 + rng.normal(0.0, 0.05 * distance[i], 2)
        trunks.append(("莞" + char + kind, kind, LineString([centre, mid, end])))
    return trunks
