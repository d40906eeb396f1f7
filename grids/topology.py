"""grids.topology: repair the real town polygons into a clean tiling of the city (gaps filled, overlaps resolved).

The source polygons (poi86, see grids/data/README.md) leave gaps between towns and let a few towns overlap.
`repair_towns` turns them into a tiling: no two towns overlap and the towns together cover the city outline,
i.e. the union of the source towns with every enclosed hole filled. The outer boundary (coast, city border) is
kept as it is; notches open to the outside are not holes and are not filled.

Method, all in EPSG:4547 metres:

1. Every town is made valid and snapped to a 1 mm grid (``shapely.set_precision``).
2. The town boundaries are noded together on the same grid and polygonized into faces: the smallest pieces
   cut out by all the boundaries. A face is *owned* by one town, *claimed* by several (an overlap) or
   by none (a gap: a hole of the union). Each town is finally rebuilt as the union of the faces it owns,
   so neighbouring towns share exactly the same edges and vertices.

Rules (deterministic; ties go to the lower town code):

- Overlap: each overlap face goes to the claiming town whose already-owned territory shares the longest
  boundary with the face. A piece that one town pushes into another is thereby returned to the town it
  sits in; an island of one town lying inside another joins the surrounding town. Faces that touch no
  owned territory yet wait for the next pass; if a pass decides nothing, the largest waiting face goes to
  the lowest claiming code.
- Gap: connected gap faces form one gap, and each gap goes whole to the neighbouring town (after overlaps
  are settled) with which it shares the longest boundary. Slivers (gaps under 1 ha) follow the same rule.
  A gap touching towns only at points goes to the nearest town.

The report per town balances: area_after ≈ area_before + gap_area_added − overlap_area_removed, up to the
millimetre snapping (a few m² per town on the real data, bounded by 1 mm × the town's perimeter).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from grids.errors import TopologyError

# Vertices closer than this to a neighbour's edge (metres) are inserted into it by `node_coverage`.
NODE_TOLERANCE_M = 1e-4

METRIC_EPSG = 4547
STORAGE_EPSG = 4326
GRID_SIZE_M = 1e-3
# Gaps below this area are called slivers in the report; the assignment rule is the same.
SLIVER_MAX_AREA_M2 = 10_000.0
# A face belongs to a town when at least this share of its area lies inside the (snapped) town.
_COVER_SHARE = 0.5

RULE_LONGEST = "longest shared boundary"
RULE_TIE = "tie on shared boundary: lower code"
RULE_NO_BOUNDARY_OVERLAP = "no shared boundary: lower code"
RULE_NO_BOUNDARY_GAP = "no shared boundary: nearest town"

REPORT_COLUMNS = [
    "town_code",
    "town_name",
    "area_before_m2",
    "area_after_m2",
    "gap_area_added_m2",
    "overlap_area_removed_m2",
    "note",
]


@dataclass(frozen=True)
class GapAssignment:
    """One gap (enclosed hole between towns) and the town it was given to."""

    gap_id: int
    area_m2: float
    kind: str  # "gap" or "sliver" (< SLIVER_MAX_AREA_M2)
    town_code: str
    town_name: str
    rule: str
    shared_boundary_m: Mapping[str, float]  # town code -> boundary length shared with the gap
    lon: float  # a point inside the gap, WGS84
    lat: float
    geometry: BaseGeometry  # the gap itself, WGS84


@dataclass(frozen=True)
class OverlapAssignment:
    """One piece claimed by several towns and the town that keeps it."""

    overlap_id: int
    area_m2: float
    claimed_by: tuple[str, ...]  # town codes, sorted
    town_code: str
    town_name: str
    rule: str
    shared_boundary_m: Mapping[str, float]
    lon: float  # a point inside the piece, WGS84
    lat: float
    geometry: BaseGeometry  # the piece itself, WGS84


@dataclass(frozen=True)
class RepairResult:
    """Repaired towns (MultiPolygon, EPSG:4326), the per-town report and the gap/overlap decisions."""

    towns: gpd.GeoDataFrame
    report: pd.DataFrame
    gaps: list[GapAssignment]
    overlaps: list[OverlapAssignment]


def repair_towns(towns: gpd.GeoDataFrame, *, grid_size_m: float = GRID_SIZE_M) -> RepairResult:
    """Fill the gaps and resolve the overlaps between town polygons so that they tile the city."""
    _check_input(towns)
    source = towns if towns.crs is not None else towns.set_crs(STORAGE_EPSG)
    codes = [str(c) for c in source["code"]]
    names = [str(n) for n in source["name"]]
    metric = np.asarray(source.geometry.to_crs(METRIC_EPSG).to_numpy(), dtype=object)
    area_before = shapely.area(metric)
    snapped = np.array(
        [_polygonal(shapely.set_precision(shapely.make_valid(g), grid_size_m)) for g in metric], dtype=object
    )

    faces = _faces(snapped, grid_size_m)
    claims = _claims(faces, snapped)
    adjacency = _adjacency(faces, grid_size_m)
    face_area = shapely.area(faces)
    owner = np.array([c[0] if len(c) == 1 else -1 for c in claims], dtype=np.int64)

    overlaps = _settle_overlaps(faces, face_area, claims, adjacency, owner, codes, names)
    gap_faces = [f for f in range(len(faces)) if not claims[f]]
    gaps = _fill_gaps(faces, face_area, gap_faces, adjacency, owner, snapped, codes, names, grid_size_m)

    repaired_m = []
    for t, code in enumerate(codes):
        owned = faces[owner == t]
        if len(owned) == 0:
            raise TopologyError(f"town {code} ({names[t]}) lies entirely inside other towns and would vanish")
        repaired_m.append(_as_multipolygon(shapely.union_all(owned, grid_size=grid_size_m)))
    repaired_m_arr = np.array(repaired_m, dtype=object)

    report = _report(codes, names, area_before, shapely.area(repaired_m_arr), gaps, face_area, claims, owner)
    repaired_ll = gpd.GeoSeries(repaired_m_arr, crs=METRIC_EPSG).to_crs(STORAGE_EPSG)
    repaired_ll = repaired_ll.apply(lambda g: g if g.is_valid else _as_multipolygon(_polygonal(shapely.make_valid(g))))
    out = source.copy()
    out = out.set_geometry(gpd.GeoSeries(repaired_ll.to_numpy(), index=source.index, crs=STORAGE_EPSG))
    return RepairResult(towns=out, report=report, gaps=gaps, overlaps=overlaps)


def format_report(report: pd.DataFrame, gaps: Sequence[GapAssignment] = ()) -> str:
    """The repair report as a printable table (areas in km² and m²), optionally followed by the gap list."""
    header = ["code", "town", "before km²", "after km²", "gap added m²", "overlap removed m²"]
    rows = [
        [
            str(r["town_code"]),
            str(r["town_name"]),
            f"{float(r['area_before_m2']) / 1e6:,.3f}",
            f"{float(r['area_after_m2']) / 1e6:,.3f}",
            f"{float(r['gap_area_added_m2']):,.0f}",
            f"{float(r['overlap_area_removed_m2']):,.0f}",
        ]
        for r in _rows(report)
    ]
    rows.append(
        [
            "total",
            f"{len(report)} towns",
            f"{report['area_before_m2'].sum() / 1e6:,.3f}",
            f"{report['area_after_m2'].sum() / 1e6:,.3f}",
            f"{report['gap_area_added_m2'].sum():,.0f}",
            f"{report['overlap_area_removed_m2'].sum():,.0f}",
        ]
    )
    text = _table(header, rows, right_aligned={2, 3, 4, 5})
    if gaps:
        gap_rows = [
            [str(g.gap_id), g.kind, f"{g.area_m2:,.0f}", g.town_name, g.rule, f"{g.lon:.5f},{g.lat:.5f}"] for g in gaps
        ]
        text += "\n\n" + _table(
            ["gap", "kind", "area m²", "given to", "rule", "lon,lat"], gap_rows, right_aligned={0, 2}
        )
    return text


def repair_records(report: pd.DataFrame) -> list[dict[str, str | float | None]]:
    """The report as rows for storage (town_repair: town_code, areas in m², note)."""
    records: list[dict[str, str | float | None]] = []
    for r in _rows(report):
        note = r.get("note")
        records.append(
            {
                "town_code": str(r["town_code"]),
                "area_before_m2": float(r["area_before_m2"]),
                "area_after_m2": float(r["area_after_m2"]),
                "gap_area_added_m2": float(r["gap_area_added_m2"]),
                "overlap_area_removed_m2": float(r["overlap_area_removed_m2"]),
                "note": note if isinstance(note, str) and note else None,
            }
        )
    return records


def _rows(report: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in report.to_dict(orient="records")]


def _check_input(towns: gpd.GeoDataFrame) -> None:
    missing = [c for c in ("code", "name") if c not in towns.columns]
    if missing:
        raise TopologyError(f"towns lack column(s): {', '.join(missing)}")
    if len(towns) == 0:
        raise TopologyError("no towns to repair")
    duplicated = sorted(set(towns["code"][towns["code"].duplicated()].astype(str)))
    if duplicated:
        raise TopologyError(f"duplicate town code(s): {', '.join(duplicated)}")
    geoms = towns.geometry.to_numpy()
    bad = [str(c) for c, g in zip(towns["code"], geoms, strict=True) if g is None or g.is_empty]
    if bad:
        raise TopologyError(f"town(s) without geometry: {', '.join(bad)}")
    not_polygonal = [
        str(c) for c, g in zip(towns["code"], geoms, strict=True) if g.geom_type not in ("Polygon", "MultiPolygon")
    ]
    if not_polygonal:
        raise TopologyError(f"town(s) with non-polygonal geometry: {', '.join(not_polygonal)}")


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygon parts of a geometry (make_valid and snapping may leave lines or points behind)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    if not parts:
        return MultiPolygon()
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    polygons = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(polygons)


def _faces(snapped: np.ndarray, grid_size_m: float) -> np.ndarray:
    """The pieces cut out by all town boundaries together (noded on the snapping grid)."""
    lines = shapely.union_all(shapely.boundary(snapped), grid_size=grid_size_m)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    return np.asarray(faces[shapely.area(faces) > 0], dtype=object)


def _claims(faces: np.ndarray, snapped: np.ndarray) -> list[tuple[int, ...]]:
    """For each face, the indices of the towns that cover it."""
    tree = shapely.STRtree(snapped)
    face_idx, town_idx = tree.query(faces, predicate="intersects")
    share = shapely.area(shapely.intersection(faces[face_idx], snapped[town_idx])) / shapely.area(faces[face_idx])
    claims: list[list[int]] = [[] for _ in range(len(faces))]
    for f, t in zip(face_idx[share >= _COVER_SHARE], town_idx[share >= _COVER_SHARE], strict=True):
        claims[int(f)].append(int(t))
    return [tuple(sorted(c)) for c in claims]


def _adjacency(faces: np.ndarray, grid_size_m: float) -> list[dict[int, float]]:
    """For each face, the length of boundary it shares with each neighbouring face."""
    tree = shapely.STRtree(faces)
    left, right = tree.query(faces, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    lengths = shapely.length(
        shapely.intersection(shapely.boundary(faces[left]), shapely.boundary(faces[right]), grid_size=grid_size_m)
    )
    adjacency: list[dict[int, float]] = [{} for _ in range(len(faces))]
    for a, b, length in zip(left, right, lengths, strict=True):
        if length > 0:
            adjacency[int(a)][int(b)] = float(length)
            adjacency[int(b)][int(a)] = float(length)
    return adjacency


def _pick(weights: Mapping[int, float], codes: Sequence[str]) -> tuple[int, str]:
    """The town with the longest shared boundary; ties (to the micrometre) go to the lower code."""
    best = max(round(w, 6) for w in weights.values())
    winners = sorted((t for t, w in weights.items() if round(w, 6) == best), key=lambda t: codes[t])
    return winners[0], (RULE_LONGEST if len(winners) == 1 else RULE_TIE)


def _to_lon_lat(geom: BaseGeometry) -> tuple[BaseGeometry, float, float]:
    """A metric geometry in WGS84, with a point inside it (lon, lat)."""
    both = gpd.GeoSeries([geom, shapely.point_on_surface(geom)], crs=METRIC_EPSG).to_crs(STORAGE_EPSG)
    return both.iloc[0], float(both.iloc[1].x), float(both.iloc[1].y)


def _settle_overlaps(
    faces: np.ndarray,
    face_area: np.ndarray,
    claims: list[tuple[int, ...]],
    adjacency: list[dict[int, float]],
    owner: np.ndarray,
    codes: Sequence[str],
    names: Sequence[str],
) -> list[OverlapAssignment]:
    """Give every face claimed by several towns to one of them (updates owner in place)."""
    pending = sorted((f for f in range(len(faces)) if len(claims[f]) >= 2), key=lambda f: (-face_area[f], f))
    decided: dict[int, tuple[int, str, dict[int, float]]] = {}
    while pending:
        # Decide a whole pass against the same ownership so that the order inside a pass does not matter.
        this_pass: dict[int, tuple[int, str, dict[int, float]]] = {}
        for f in pending:
            weights = {t: 0.0 for t in claims[f]}
            for g, length in adjacency[f].items():
                if owner[g] in weights:
                    weights[int(owner[g])] += length
            if max(weights.values()) > 0:
                town, rule = _pick(weights, codes)
                this_pass[f] = (town, rule, weights)
        if not this_pass:
            f = pending[0]
            this_pass[f] = (
                min(claims[f], key=lambda t: codes[t]),
                RULE_NO_BOUNDARY_OVERLAP,
                {t: 0.0 for t in claims[f]},
            )
        for f, (town, _, _) in this_pass.items():
            owner[f] = town
        decided.update(this_pass)
        pending = [f for f in pending if f not in this_pass]

    ordered = sorted(decided, key=lambda f: (-face_area[f], f))
    records = []
    for overlap_id, f in enumerate(ordered, start=1):
        town, rule, weights = decided[f]
        geom, lon, lat = _to_lon_lat(faces[f])
        records.append(
            OverlapAssignment(
                overlap_id=overlap_id,
                area_m2=float(face_area[f]),
                claimed_by=tuple(sorted(codes[t] for t in claims[f])),
                town_code=codes[town],
                town_name=names[town],
                rule=rule,
                shared_boundary_m={codes[t]: round(w, 3) for t, w in sorted(weights.items())},
                lon=lon,
                lat=lat,
                geometry=geom,
            )
        )
    return records


def _fill_gaps(
    faces: np.ndarray,
    face_area: np.ndarray,
    gap_faces: list[int],
    adjacency: list[dict[int, float]],
    owner: np.ndarray,
    snapped: np.ndarray,
    codes: Sequence[str],
    names: Sequence[str],
    grid_size_m: float,
) -> list[GapAssignment]:
    """Group unclaimed faces into gaps and give each gap whole to one neighbour (updates owner in place)."""
    components = _components(gap_faces, adjacency)
    components.sort(key=lambda comp: (-float(face_area[comp].sum()), min(comp)))
    records = []
    for gap_id, comp in enumerate(components, start=1):
        members = set(comp)
        weights: dict[int, float] = {}
        for f in comp:
            for g, length in adjacency[f].items():
                if g not in members and owner[g] >= 0:
                    weights[int(owner[g])] = weights.get(int(owner[g]), 0.0) + length
        geom = shapely.union_all(faces[comp], grid_size=grid_size_m)
        if weights and max(weights.values()) > 0:
            town, rule = _pick(weights, codes)
        else:
            distances = shapely.distance(geom, snapped)
            town = min(range(len(codes)), key=lambda t: (distances[t], codes[t]))
            rule = RULE_NO_BOUNDARY_GAP
        owner[comp] = town
        area = float(face_area[comp].sum())
        geom_ll, lon, lat = _to_lon_lat(geom)
        records.append(
            GapAssignment(
                gap_id=gap_id,
                area_m2=area,
                kind="sliver" if area < SLIVER_MAX_AREA_M2 else "gap",
                town_code=codes[town],
                town_name=names[town],
                rule=rule,
                shared_boundary_m={
                    codes[t]: round(w, 3) for t, w in sorted(weights.items(), key=lambda i: codes[i[0]])
                },
                lon=lon,
                lat=lat,
                geometry=geom_ll,
            )
        )
    return records


def _components(nodes: list[int], adjacency: list[dict[int, float]]) -> list[list[int]]:
    """Connected groups of the given faces (neighbours = sharing a boundary of positive length)."""
    wanted = set(nodes)
    seen: set[int] = set()
    groups = []
    for start in sorted(wanted):
        if start in seen:
            continue
        stack, group = [start], []
        seen.add(start)
        while stack:
            f = stack.pop()
            group.append(f)
            for g in adjacency[f]:
                if g in wanted and g not in seen:
                    seen.add(g)
                    stack.append(g)
        groups.append(sorted(group))
    return groups


def _report(
    codes: Sequence[str],
    names: Sequence[str],
    area_before: np.ndarray,
    area_after: np.ndarray,
    gaps: Sequence[GapAssignment],
    face_area: np.ndarray,
    claims: list[tuple[int, ...]],
    owner: np.ndarray,
) -> pd.DataFrame:
    index = {code: t for t, code in enumerate(codes)}
    gap_added = np.zeros(len(codes))
    notes: list[list[str]] = [[] for _ in codes]
    for gap in gaps:
        t = index[gap.town_code]
        gap_added[t] += gap.area_m2
        if gap.kind == "gap":
            notes[t].append(f"+{gap.kind} {gap.gap_id} {gap.area_m2:,.0f} m²")
    slivers = [g for g in gaps if g.kind == "sliver"]
    for t in range(len(codes)):
        mine = [g for g in slivers if g.town_code == codes[t]]
        if mine:
            notes[t].append(f"+{len(mine)} sliver(s) {sum(g.area_m2 for g in mine):,.0f} m²")

    removed = np.zeros(len(codes))
    lost_to: list[dict[str, float]] = [{} for _ in codes]
    for f, claim in enumerate(claims):
        if len(claim) < 2:
            continue
        for t in claim:
            if t != owner[f]:
                removed[t] += face_area[f]
                winner = names[int(owner[f])]
                lost_to[t][winner] = lost_to[t].get(winner, 0.0) + float(face_area[f])
    for t in range(len(codes)):
        for winner, area in sorted(lost_to[t].items()):
            notes[t].append(f"-overlap {area:,.0f} m² to {winner}")

    return pd.DataFrame(
        {
            "town_code": list(codes),
            "town_name": list(names),
            "area_before_m2": area_before.astype(float),
            "area_after_m2": area_after.astype(float),
            "gap_area_added_m2": gap_added,
            "overlap_area_removed_m2": removed,
            "note": ["; ".join(n) if n else None for n in notes],
        },
        columns=REPORT_COLUMNS,
    )


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _table(header: list[str], rows: list[list[str]], *, right_aligned: set[int]) -> str:
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            out.append(pad + cell if i in right_aligned else cell + pad)
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def node_coverage(
    geoms: Sequence[BaseGeometry], *, references: Sequence[BaseGeometry] = (), tolerance_m: float = NODE_TOLERANCE_M
) -> list[BaseGeometry]:
    """Give every polygon of a metric coverage the vertices its neighbours have on its boundary.

    Recursive cuts leave T-junctions: a vertex of one part lying on a straight edge of its neighbour. Any
    change of CRS moves a vertex along a curve, so after reprojection that vertex is no longer on the
    neighbour's (still straight) edge, and slivers of gap and overlap open up: up to 0.5 m wide along the
    kilometre-long cuts of a community. With the vertex inserted into both polygons, both ends of every shared
    edge are the same points and the tiling survives reprojection exactly.

    `references` are further polygons whose vertices are inserted too (e.g. the grids of a community when
    noding the communities themselves). The geometries must be in a metric CRS.
    """
    polys = np.asarray(list(geoms), dtype=object)
    pool = np.asarray([*polys, *references], dtype=object)
    tree = shapely.STRtree(pool)
    out: list[BaseGeometry] = []
    for i, geom in enumerate(polys):
        near = [j for j in tree.query(geom, predicate="dwithin", distance=tolerance_m) if j != i]
        if not near:
            out.append(geom)
            continue
        vertices = shapely.get_coordinates(pool[near])
        candidates = shapely.points(vertices)
        on_edge = shapely.dwithin(candidates, geom.boundary, tolerance_m)
        if not on_edge.any():
            out.append(geom)
            continue
        snapped = shapely.snap(geom, shapely.multipoints(candidates[on_edge]), tolerance_m)
        out.append(snapped if snapped.is_valid else shapely.make_valid(snapped))
    return out
