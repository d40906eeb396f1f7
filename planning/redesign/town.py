"""planning.redesign.town: redesign every community of a town at the town's mean hours per worker.

The town's mean is its hours over its workers. Each community then gets a worker total by apportioning its hours at
that mean (largest remainder, each total kept within [min·K, max·K] of the community and above what its locked
grids hold), and is solved alone with that total and the town's mean; grids never cross a community boundary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from planning.errors import Infeasible, NothingToPlan
from planning.redesign.figures import polsby_popper
from planning.redesign.problem import Figures, Problem, Solution
from planning.redesign.solve import redesign

# A town's whole redesign keeps within this (the budget is 60 s); each community gets a share.
TOWN_TIME_LIMIT_S = 45.0
_MIN_SHARE_S = 0.5


def town_redesign(
    problems: Mapping[str, Problem], *, town_workers: int | None = None, time_limit_s: float = TOWN_TIME_LIMIT_S
) -> dict[str, Solution]:
    """One Solution per community, all balanced to the town's mean (community code → Solution).

    The time limit is the town's: each community gets at most its own limit and at most an equal share of what is
    left, so a town of twenty communities stays within it.
    """
    if not problems:
        raise NothingToPlan("该镇街没有可调整的社区", reason="no_addresses")
    names = sorted(problems)
    hours = {c: float(np.sum(problems[c].unit_hours)) for c in names}
    current = {c: sum(int(w) for w in problems[c].workers.values()) for c in names}
    total = town_workers if town_workers is not None else sum(current.values())
    town_hours = sum(hours.values())
    if town_hours <= 0 or sum(int(np.sum(problems[c].unit_addresses)) for c in names) == 0:
        raise NothingToPlan("该镇街没有标准地址或工作量，无需调整网格", reason="no_addresses")
    if total <= 0:
        raise Infeasible("该镇街没有网格员", reason="k_out_of_range")
    mean = town_hours / total
    problems = {c: _with_room(problems[c], hours[c] / mean) for c in names}
    totals = apportion(problems, hours, mean, total)
    # The floor is the town's worst grid now, unless a community was given its own.
    town_floor = min(polsby_popper(g) for c in names for g in problems[c].current.values())
    solutions: dict[str, Solution] = {}
    deadline = time.monotonic() + time_limit_s
    for i, c in enumerate(names):
        p = problems[c]
        floor = p.pp_floor if p.pp_floor is not None else town_floor
        share = max((deadline - time.monotonic()) / (len(names) - i), _MIN_SHARE_S)
        solutions[c] = redesign(
            replace(
                p,
                total_workers=totals[c],
                mean_hours_per_worker=mean,
                pp_floor=floor,
                time_limit_s=min(p.time_limit_s, share),
            )
        )
    return solutions


def _with_room(problem: Problem, quota: float) -> Problem:
    """A community whose work at the town's mean needs more (or fewer) grids than it has gets them (K as now else).

    At the town's mean a community holds `quota` workers' worth of work; K grids staff K·min to K·max workers. A
    community far busier than its grids can be staffed gets one grid more per max_workers of excess (and one fewer
    when it is far quieter), so the town can balance; a K set by the caller is kept.
    """
    if problem.k is not None:
        return problem
    k = len(problem.current)
    need_low = math.ceil(quota / problem.max_workers - 1e-9)
    need_high = max(math.floor(quota / problem.min_workers + 1e-9), len(problem.locked), 1)
    wanted = min(max(k, need_low), need_high) if need_low <= need_high else k
    wanted = min(wanted, len(problem.units.geoms))
    return problem if wanted == k else replace(problem, k=wanted)


def apportion(problems: Mapping[str, Problem], hours: Mapping[str, float], mean: float, total: int) -> dict[str, int]:
    """Worker total of each community: its hours at the mean, largest remainder, within its bounds, summing to total."""
    names = sorted(problems)
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    for c in names:
        p = problems[c]
        k = p.k if p.k is not None else len(p.current)
        locked_workers = sum(int(p.workers[g]) for g in p.locked)
        k_free = k - len(p.locked)
        low[c] = locked_workers + k_free * p.min_workers
        high[c] = locked_workers + k_free * p.max_workers
    if not sum(low.values()) <= total <= sum(high.values()):
        raise Infeasible(
            f"全镇 {total} 名网格员无法配置各社区的网格（需要 {sum(low.values())}–{sum(high.values())} 人）",
            reason="k_out_of_range",
        )
    quota = {c: hours[c] / mean for c in names}
    share = {c: min(max(math.floor(quota[c]), low[c]), high[c]) for c in names}
    remaining = total - sum(share.values())
    # Largest remainder first (ties: lower code); when the floors overshoot, take back from the smallest remainders.
    while remaining != 0:
        step = 1 if remaining > 0 else -1
        movable = [c for c in names if (share[c] < high[c] if step > 0 else share[c] > low[c])]
        pick = max(movable, key=lambda c: (step * (quota[c] - share[c]), -names.index(c)))
        share[pick] += step
        remaining -= step
    return share


def union_figures(solutions: Mapping[str, Solution]) -> Figures:
    """The figures of a town: every community's rows together, the worst deviations and compactness, summed moves."""
    figs = [solutions[c].figures for c in sorted(solutions)]
    if not figs:
        raise NothingToPlan("没有可汇总的社区方案", reason="no_addresses")
    before = [row for f in figs for row in f.grids_before]
    after = [row for f in figs for row in f.grids_after]
    total = sum(int(r["addresses"]) for r in before)
    moved = sum(f.addresses_moved for f in figs)
    methods = sorted({f.method for f in figs})
    return Figures(
        grids_before=before,
        grids_after=after,
        max_deviation_before=max(f.max_deviation_before for f in figs),
        max_deviation_after=max(f.max_deviation_after for f in figs),
        worst_pp_before=min(f.worst_pp_before for f in figs),
        worst_pp_after=min(f.worst_pp_after for f in figs),
        share_addresses_kept=(total - moved) / total if total else 1.0,
        addresses_moved=moved,
        units_moved=sum(f.units_moved for f in figs),
        codes_kept=sorted(c for f in figs for c in f.codes_kept),
        codes_new=sorted(c for f in figs for c in f.codes_new),
        codes_retired=sorted(c for f in figs for c in f.codes_retired),
        balanced=all(f.balanced for f in figs),
        method="+".join(methods),
        seconds=round(sum(f.seconds for f in figs), 3),
        mean_hours_per_worker=figs[0].mean_hours_per_worker,
        tolerance=figs[0].tolerance,
        pp_floor=min(f.pp_floor for f in figs),
        notes=[n for f in figs for n in f.notes],
    )
