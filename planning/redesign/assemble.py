"""planning.redesign.assemble: turn groups of units into coded grid polygons with the least change of codes.

Each new group inherits the code of the current grid it shares most addresses with (area breaks ties), by a
one-to-one matching (scipy's linear_sum_assignment, maximising the overlap); locked grids keep their code; groups that
overlap no free current grid take the caller's new codes in order. A group made of exactly the units of the grid whose
code it takes is that grid: the `current` object itself is returned, untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from shapely.geometry import MultiPolygon, Polygon

from planning.errors import Infeasible
from planning.redesign.units import GRID_SIZE_M, Units

IntArray = NDArray[np.int64]


def group_codes(
    units: Units,
    addresses: IntArray,
    label: IntArray,
    locked_code: Sequence[str | None],
    codes: Sequence[str],
    new_codes: Sequence[str],
) -> list[str]:
    """Code of each group: its locked code, the best-overlapping free current code, or the next new code."""
    g_count = len(locked_code)
    orig = np.asarray([codes.index(c) for c in units.grid], dtype=np.int64) if len(units.grid) else np.zeros(0, int)
    taken = {c for c in locked_code if c is not None}
    free_groups = [g for g in range(g_count) if locked_code[g] is None]
    free_codes = [i for i, c in enumerate(codes) if c not in taken]
    result: list[str | None] = list(locked_code)
    if free_groups and free_codes:
        total_area = float(units.area_m2.sum()) or 1.0
        score = np.zeros((len(free_groups), len(free_codes)))
        row = {g: r for r, g in enumerate(free_groups)}
        col = {c: k for k, c in enumerate(free_codes)}
        for u in range(len(label)):
            g, c = int(label[u]), int(orig[u])
            if g in row and c in col:
                # Addresses decide; area (less than one address in total) breaks ties between empty parts.
                score[row[g], col[c]] += float(addresses[u]) + 0.5 * float(units.area_m2[u]) / total_area
        rows, cols = linear_sum_assignment(score, maximize=True)
        for r, k in zip(rows.tolist(), cols.tolist(), strict=True):
            if score[r, k] > 0:
                result[free_groups[r]] = codes[free_codes[k]]
    pending = [g for g in range(g_count) if result[g] is None]
    if len(pending) > len(new_codes):
        raise Infeasible(
            f"需要 {len(pending)} 个新网格编码，但只提供了 {len(new_codes)} 个", reason="new_codes_missing"
        )
    # New groups take the new codes in reading order of their first unit (deterministic).
    for g, code in zip(sorted(pending, key=lambda g: int(np.flatnonzero(label == g)[0])), new_codes, strict=False):
        result[g] = code
    return [str(c) for c in result]


def group_geometries(
    units: Units, label: IntArray, group_code: Sequence[str], current: Mapping[str, Polygon | MultiPolygon]
) -> dict[str, Polygon | MultiPolygon]:
    """Polygon of each group: the current object when the group is exactly that grid's units, else their union."""
    geoms = np.asarray(units.geoms, dtype=object)
    result: dict[str, Polygon | MultiPolygon] = {}
    for g, code in enumerate(group_code):
        members = label == g
        if code in current and np.array_equal(members, units.grid == code):
            result[code] = current[code]
            continue
        merged = shapely.union_all(geoms[members], grid_size=GRID_SIZE_M)
        result[code] = _as_polygon(merged)
    return result


def _as_polygon(geom: shapely.Geometry) -> Polygon | MultiPolygon:
    """The union of edge-connected units as one Polygon, without the noding's zero-area crumbs."""
    if isinstance(geom, Polygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > 1e-6]
    if len(parts) == 1:
        return parts[0]
    return MultiPolygon(parts)
