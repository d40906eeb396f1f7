"""address_library.match_paths: the matcher's pure helpers — a query's components and number path, the paths
above it, a door's point between its neighbours on a road, and how a corrected name relates to the typed one."""

from __future__ import annotations

from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from address_library.match_result import MatchResult
from address_library.parse import ParsedAddress

# A door number beyond the road's known range is placed at most this far past its end door.
MAX_EXTRAPOLATION_M = 30.0
METRES_PER_DEGREE = 111_320.0


def changed(variant: str, typed: str) -> int:
    """How many characters a repair changed (edit distance)."""
    return int(Levenshtein.distance(variant, typed))


def overlaps(probe: str, target: str) -> bool:
    """One name is the other with one to three characters more at its start (村横沥西工业区 / 横沥西工业区)."""
    short, long = sorted((probe, target), key=len)
    return len(short) >= 3 and 1 <= len(long) - len(short) <= 3 and long.endswith(short)


def unknown_part(parsed: ParsedAddress, result: MatchResult) -> str | None:
    """The named part of a query that the answer's level does not cover (the compound, park or road not found)."""
    parts = [parsed.compound, parsed.park, parsed.road, parsed.natural_village, parsed.remainder]
    named = [p for p in parts if p]
    return "、".join(named) if named else None


def components_of(parsed: ParsedAddress) -> dict[str, Any]:
    return {
        "road": parsed.road,
        "natural_village": parsed.natural_village,
        "lane": parsed.lane,
        "park": parsed.park,
        "compound": parsed.compound,
        "door_no": parsed.door_no,
        "sub_no": parsed.sub_no,
        "phase": parsed.phase,
        "building": parsed.building,
        "unit": parsed.unit,
        "floor": parsed.floor,
        "room": parsed.room,
        "stall": parsed.stall,
    }


def compound_path(numbers: tuple[str, ...]) -> tuple[str, ...]:
    return ("", "", *numbers[2:]) if len(numbers) > 2 else ()


def parents(path: tuple[str, ...], kind: str) -> list[tuple[str, ...]]:
    """The path, then its ancestors: drop the finest number each time (keep the door for roads and villages)."""
    out = [path]
    current = list(path)
    floor_keep = 1 if kind in ("road", "village") else 3
    while len(current) > floor_keep:
        current.pop()
        while current and not current[-1]:
            current.pop()
        if len(current) < floor_keep:
            break
        out.append(tuple(current))
    if kind in ("compound", "park") and path:
        out.append(())
    seen: list[tuple[str, ...]] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def interpolate(door: int, numbers: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """The point of door number `door` between its nearest neighbours on the same side (odd/even) of a road."""
    same_side = (numbers % 2) == (door % 2)
    if same_side.sum() >= 2:
        numbers, lon, lat = numbers[same_side], lon[same_side], lat[same_side]
    if len(numbers) == 1:
        return float(lon[0]), float(lat[0])
    k = int(np.searchsorted(numbers, door))
    k = min(max(k, 1), len(numbers) - 1)
    n0, n1 = numbers[k - 1], numbers[k]
    t = 0.0 if n1 == n0 else float(np.clip((door - n0) / (n1 - n0), -0.5, 1.5))
    if 0.0 <= t <= 1.0:
        return float(lon[k - 1] + t * (lon[k] - lon[k - 1])), float(lat[k - 1] + t * (lat[k] - lat[k - 1]))
    # Beyond the last known number: a short step past the end door, never far along a sparse road (where the
    # next building may already stand in another town).
    end, other = (k, k - 1) if t > 1.0 else (k - 1, k)
    d_lon = (lon[end] - lon[other]) * np.cos(np.radians(lat[end]))
    d_lat = lat[end] - lat[other]
    segment_m = float(np.hypot(d_lon, d_lat)) * METRES_PER_DEGREE
    overshoot = (t - 1.0) if t > 1.0 else -t
    step = min(overshoot, MAX_EXTRAPOLATION_M / segment_m) if segment_m > 0 else 0.0
    return float(lon[end] + step * (lon[end] - lon[other])), float(lat[end] + step * (lat[end] - lat[other]))
