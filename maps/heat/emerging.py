"""maps.heat.emerging: emerging-hotspot categories from per-slice hotspots and a Mann-Kendall trend (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
from libpysal.weights import W
from scipy import stats

from maps.errors import HotspotError
from maps.heat.hotspots import COLD_CLASSES, DEFAULT_ALPHA_LEVELS, Method, find_hotspots

EmergingClass = Literal[
    "new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic", "oscillating", "historical",
]  # fmt: skip
EMERGING_CLASSES: tuple[EmergingClass, ...] = get_args(EmergingClass)
HOT_SHARE = 0.9  # ESRI's "90 percent of the time-step intervals"
TREND_ALPHA = 0.05


def _trend(z_series: np.ndarray, trend_alpha: float) -> int:
    """Mann-Kendall sign of the z-score series: +1 rising, -1 falling, 0 no significant trend."""
    if len(z_series) < 3 or np.ptp(z_series) == 0:
        return 0
    tau, p_value = stats.kendalltau(np.arange(len(z_series)), z_series)
    if not np.isfinite(p_value) or p_value > trend_alpha:
        return 0
    return 1 if tau > 0 else -1


def classify_emerging(
    hot: np.ndarray, cold: np.ndarray, trend: int, *, hot_share: float = HOT_SHARE
) -> EmergingClass | None:
    """Emerging-hotspot category of one unit from its per-slice hot/cold flags and z-score trend (see emerging)."""
    n_slices = len(hot)
    if n_slices == 0:
        return None
    n_hot = int(hot.sum())
    mostly_hot = n_hot >= hot_share * n_slices
    if not hot[-1]:
        return "historical" if mostly_hot else None
    if mostly_hot:
        by_trend: dict[int, EmergingClass] = {1: "intensifying", -1: "diminishing"}
        return by_trend.get(trend, "persistent")
    if n_hot == 1:
        return "new"
    run = n_slices - int(np.flatnonzero(~hot)[-1]) - 1  # the final uninterrupted hot run (final slice is hot)
    if run == n_hot:  # run >= 2 here: never hot before the run
        return "consecutive"
    return "oscillating" if bool(cold[:-1].any()) else "sporadic"


def emerging(
    counts_by_slice: np.ndarray,
    w: W,
    *,
    method: Method = "gi_star",
    population: np.ndarray | None = None,
    alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS,
    trend_alpha: float = TREND_ALPHA,
    hot_share: float = HOT_SHARE,
) -> list[EmergingClass | None]:
    """Emerging-hotspot category per unit over time slices (rows oldest first), after ESRI's Emerging Hot Spot Analysis.

    Each slice gets its own analysis by `method` (Gi* of counts with exact p, or the rate test against
    `population`; FDR as gi_star); a unit is hot (cold) in a slice when its class is any hot (cold) tier. The trend is a Mann-Kendall test (Kendall's tau against time, scipy) on the unit's Gi* z-scores,
    significant at trend_alpha. With "mostly hot" = hot in at least hot_share (90 %) of the slices:

    - new: hot in the final slice and in no earlier slice;
    - consecutive: a single uninterrupted run of >= 2 hot slices ending at the final slice, never hot before it,
      not mostly hot;
    - intensifying: mostly hot, hot in the final slice, significant rising trend;
    - persistent: mostly hot, hot in the final slice, no significant trend;
    - diminishing: mostly hot, hot in the final slice, significant falling trend;
    - sporadic: hot in the final slice, on and off before, never cold, not mostly hot (and not new/consecutive);
    - oscillating: hot in the final slice, cold in some earlier slice, not mostly hot (and not new/consecutive);
    - historical: not hot in the final slice but mostly hot;
    - None: anything else (ESRI's "no pattern detected"; its cold-spot categories are not reported).
    """
    series = np.asarray(counts_by_slice, dtype=float)
    if series.ndim != 2 or series.shape[1] != w.n:
        raise HotspotError(f"counts_by_slice must be (n_slices, {w.n}), got {series.shape}")
    if not 0 < hot_share <= 1 or not 0 < trend_alpha < 1:
        raise HotspotError("hot_share must be in (0, 1] and trend_alpha in (0, 1)")
    n_slices, n_units = series.shape
    if n_slices == 0:
        return [None] * n_units
    z = np.empty((n_slices, n_units))
    hot = np.empty((n_slices, n_units), dtype=bool)
    cold = np.empty((n_slices, n_units), dtype=bool)
    for t in range(n_slices):
        result = find_hotspots(
            series[t], w, method=method, population=population, permutations=0, alpha_levels=alpha_levels
        )
        z[t], hot[t] = result.z, result.hot()
        cold[t] = np.isin(result.classes, COLD_CLASSES)
    out: list[EmergingClass | None] = []
    for i in range(n_units):
        trend = _trend(z[:, i], trend_alpha) if hot[-1, i] or hot[:, i].any() else 0
        out.append(classify_emerging(hot[:, i], cold[:, i], trend, hot_share=hot_share))
    return out
