"""planning.redesign.figures: the before/after figures of a redesign (balance, compactness, what moved)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from planning.redesign.problem import Figures

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def polsby_popper(geom: BaseGeometry) -> float:
    """Compactness 4πA/P² of a polygon (1 for a disc, near 0 for a sliver)."""
    return 4.0 * math.pi * geom.area / geom.length**2 if geom.length > 0 else 0.0


def grid_rows(
    codes: Sequence[str],
    unit_code: NDArray[np.object_],
    unit_hours: FloatArray,
    unit_addresses: IntArray,
    geoms: Mapping[str, Polygon | MultiPolygon],
    workers: Mapping[str, int],
    mean: float,
    locked: frozenset[str],
) -> list[dict[str, Any]]:
    """One row per grid: code, hours, workers, hours_per_worker, deviation, polsby_popper, area_m2, addresses."""
    rows = []
    for code in codes:
        members = unit_code == code
        hours = float(unit_hours[members].sum())
        w = int(workers[code])
        hpw = hours / w if w > 0 else math.inf
        rows.append(
            {
                "code": code,
                "hours": round(hours, 3),
                "workers": w,
                "hours_per_worker": round(hpw, 3),
                "deviation": round(hpw / mean - 1.0, 5) if mean > 0 else 0.0,
                "polsby_popper": round(polsby_popper(geoms[code]), 5),
                "area_m2": round(float(geoms[code].area), 1),
                "addresses": int(unit_addresses[members].sum()),
                "locked": code in locked,
            }
        )
    return rows


def figures(
    *,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    unit_before: NDArray[np.object_],
    unit_after: NDArray[np.object_],
    unit_addresses: IntArray,
    tolerance: float,
    mean: float,
    pp_floor: float,
    method: str,
    seconds: float,
    notes: Sequence[str] = (),
) -> Figures:
    """The figures of a redesign from its rows before and after and the grid of each unit."""
    stayed = unit_before == unit_after
    total = int(unit_addresses.sum())
    kept = int(unit_addresses[stayed].sum())
    codes_before = {r["code"] for r in before}
    codes_after = {r["code"] for r in after}
    max_after = max((abs(r["deviation"]) for r in after), default=0.0)
    return Figures(
        grids_before=before,
        grids_after=after,
        max_deviation_before=max((abs(r["deviation"]) for r in before), default=0.0),
        max_deviation_after=max_after,
        worst_pp_before=min((r["polsby_popper"] for r in before), default=0.0),
        worst_pp_after=min((r["polsby_popper"] for r in after), default=0.0),
        share_addresses_kept=kept / total if total else 1.0,
        addresses_moved=total - kept,
        units_moved=int((~stayed).sum()),
        codes_kept=sorted(codes_before & codes_after),
        codes_new=sorted(codes_after - codes_before),
        codes_retired=sorted(codes_before - codes_after),
        balanced=bool(max_after <= tolerance + 1e-9),
        method=method,
        seconds=round(seconds, 3),
        mean_hours_per_worker=round(mean, 4),
        tolerance=tolerance,
        pp_floor=round(pp_floor, 5),
        notes=list(notes),
    )
