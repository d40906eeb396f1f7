"""planning.redesign.problem: what a redesign is asked (Problem) and what it answers (Solution, Figures).

All geometry is metric (EPSG:4547, metres). A Problem holds the units of the area with their hours and addresses, the
current grids and their workers, the locks and the targets; a Solution holds the new grids, their workers, the grid of
each unit and the figures before and after (JSON-serialisable with dataclasses.asdict).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from planning.redesign.units import Units

Method = Literal["auto", "cpsat", "local"]


@dataclass(frozen=True)
class Problem:
    """One area to redraw: its units and their work, the current plan, the locks and the balance wanted."""

    units: Units
    unit_hours: NDArray[np.float64]
    unit_addresses: NDArray[np.int64]
    current: Mapping[str, Polygon | MultiPolygon]  # the current grids (returned unchanged when locked or untouched)
    workers: Mapping[str, int]  # current workers per grid
    locked: frozenset[str] = frozenset()
    k: int | None = None  # number of grids wanted (None: as now)
    new_codes: Sequence[str] = ()  # codes to give new grids, in order (the caller makes them unique)
    total_workers: int | None = None  # workers the area will have (None: as now); town-wide runs set it
    mean_hours_per_worker: float | None = None  # the mean to balance to (None: area hours / total workers)
    tolerance: float = 0.10  # each grid's hours per worker within ±tolerance of the mean
    min_workers: int = 2
    max_workers: int = 5
    pp_floor: float | None = None  # Polsby-Popper floor (None: the current plan's worst grid)
    method: Method = "auto"
    time_limit_s: float = 5.0
    seed: int = 0


@dataclass(frozen=True)
class Figures:
    """Everything the CLI prints and the compare page shows, before and after."""

    # grids_*: code, hours, workers, hours_per_worker, deviation, polsby_popper, area_m2, addresses, locked
    grids_before: list[dict[str, Any]]
    grids_after: list[dict[str, Any]]
    max_deviation_before: float
    max_deviation_after: float
    worst_pp_before: float
    worst_pp_after: float
    share_addresses_kept: float
    addresses_moved: int
    units_moved: int
    codes_kept: list[str]
    codes_new: list[str]
    codes_retired: list[str]
    balanced: bool
    method: str
    seconds: float
    mean_hours_per_worker: float = 0.0
    tolerance: float = 0.10
    pp_floor: float = 0.0
    notes: list[str] = field(default_factory=list)  # Chinese remarks (e.g. why CP-SAT was not used)


@dataclass(frozen=True)
class Solution:
    """The redrawn area: code → metric Polygon (locked and unchanged grids are the `current` objects themselves).

    Every changed grid is one Polygon, except a grid that already spanned islands of its community: it keeps them.
    A locked grid keeps its outline and code; its head-count stays unless another one is what balances it.
    """

    grids: dict[str, Polygon | MultiPolygon]
    workers: dict[str, int]  # each in [min_workers, max_workers], summing to the total workers
    unit_grid: NDArray[np.object_]  # code of each unit after
    figures: Figures
