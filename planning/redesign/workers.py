"""planning.redesign.workers: how many workers each grid of a plan should get, given its hours.

Each grid's cost of a head-count w is the hours that would have to move for it to sit inside the middle half of the
tolerance band (max(0, |hours - w·mean| - tolerance/2 · w·mean)) plus a price per worker moved away from the current
head-count. Every term is convex in w, so adding workers one at a time where the marginal cost falls most is optimal
for the sum under the fixed total (the classic greedy for separable convex allocation).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def choose_workers(
    hours: FloatArray,
    current: IntArray,
    total: int,
    mean: float,
    tolerance: float,
    *,
    min_workers: int,
    max_workers: int,
    move_cost_hours: float,
) -> IntArray:
    """Head-count per grid in [min, max] summing to total, trading hours to move against workers moved."""
    h = np.asarray(hours, dtype=np.float64)
    cur = np.asarray(current, dtype=np.int64)
    n = len(h)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not n * min_workers <= total <= n * max_workers:
        raise ValueError(f"{total} workers cannot staff {n} grids within [{min_workers}, {max_workers}]")

    def cost(g: int, w: int) -> float:
        target = w * mean
        return max(0.0, abs(h[g] - target) - 0.5 * tolerance * target) + move_cost_hours * abs(w - int(cur[g]))

    workers = np.full(n, min_workers, dtype=np.int64)
    for _ in range(total - n * min_workers):
        best_g, best_gain = -1, np.inf
        for g in range(n):
            if workers[g] >= max_workers:
                continue
            gain = cost(g, int(workers[g]) + 1) - cost(g, int(workers[g]))
            # Ties go to the grid with more hours per worker, then the lower index: deterministic.
            if gain < best_gain - 1e-12 or (
                abs(gain - best_gain) <= 1e-12 and h[g] / workers[g] > h[best_g] / workers[best_g] + 1e-12
            ):
                best_g, best_gain = g, gain
        workers[best_g] += 1
    return workers
