"""maps.heat.hotspots: Getis-Ord Gi* hotspots with exact p-values and FDR, and the empirical-Bayes rate test (pure)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from esda.getisord import G_Local
from libpysal.weights import W, fill_diagonal
from scipy import signal, sparse, stats

from maps.errors import HotspotError

HOT_CLASSES = ("hot_99", "hot_95", "hot_90")
COLD_CLASSES = ("cold_99", "cold_95", "cold_90")
NOT_SIGNIFICANT = "not_significant"
# Coldest to hottest: the order a legend reads in, and the order the monotonicity property is stated in.
HotClass = Literal["cold_99", "cold_95", "cold_90", "not_significant", "hot_90", "hot_95", "hot_99"]
CLASS_ORDER: tuple[HotClass, ...] = get_args(HotClass)
DEFAULT_ALPHA_LEVELS = (0.01, 0.05, 0.10)  # FDR levels of the 99 %, 95 % and 90 % tiers

Inference = Literal["exact", "analytic", "permutation"]
Test = Literal["exact", "analytic", "permutation", "negative_binomial"]  # what a result's p-values rest on
Method = Literal["gi_star", "rate"]

_PERMUTATION_KEYS_BUDGET = 4_000_000  # random keys drawn at once when sampling neighbour sets (~32 MB)
_GATHER_BUDGET = 2_000_000  # simulated neighbour values held at once in the permutation kernel (~16 MB)
MIN_RATE_HOT_COUNT = 2  # one clue is never a rate hotspot, however few people live around it
_EXACT_MAX_SUPPORT = 200_000  # beyond this many possible neighbourhood sums the normal approximation is fine anyway


@dataclass(frozen=True)
class GiStar:
    """Hotspot statistics per unit, aligned with the weights' id_order; p and q are two-sided, q is BH adjusted.

    Gi* of counts (gi_star) or the empirical-Bayes rate test on Gi* neighbourhoods (rate_hotspots).
    """

    codes: tuple[str, ...]
    values: np.ndarray  # counts (gi_star), or EB-smoothed rates per population unit (rate_hotspots)
    z: np.ndarray
    p: np.ndarray  # the p-values the classes rest on (see `inference`)
    p_sim: np.ndarray  # folded permutation pseudo p-value, as esda's p_sim; NaN when permutations == 0
    q: np.ndarray
    classes: np.ndarray  # object array of CLASS_ORDER labels
    inference: Test
    permutations: int

    def significant(self) -> np.ndarray:
        """Boolean mask of units whose class is a hot or cold tier."""
        return np.asarray(self.classes != NOT_SIGNIFICANT, dtype=bool)

    def hot(self) -> np.ndarray:
        """Boolean mask of units classed hot at any tier."""
        return np.isin(self.classes, HOT_CLASSES)


@dataclass(frozen=True)
class _Prepared:
    star: W  # binary weights with a self-weight of 1, as Gi* wants
    self_weight: np.ndarray
    neighbour_weights: np.ndarray  # (n, max_cardinality), zero-padded, self excluded
    max_cardinality: int
    terms: np.ndarray  # values in each unit's Gi* sum: its neighbours plus itself


# Derived once per weights object and dropped with it (maps.heat.weights keeps the objects in its cache).
_prepared: weakref.WeakKeyDictionary[W, _Prepared] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _prepare(w: W) -> _Prepared:
    """Self-weighted binary weights and a padded neighbour-weight table, computed once per weights object."""
    with _cache_lock:
        hit = _prepared.get(w)
    if hit is not None:
        return hit
    base = W(w.neighbors, w.weights, id_order=w.id_order, silence_warnings=True)  # never mutate the caller's W
    base.transform = "B"
    star = fill_diagonal(base, 1.0)
    star.transform = "B"
    matrix = sparse.csr_matrix(base.sparse)
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    cardinality = np.diff(matrix.indptr)
    max_card = int(cardinality.max()) if len(cardinality) else 0
    padded = np.zeros((w.n, max_card))
    rows = np.repeat(np.arange(w.n), cardinality)
    cols = np.arange(len(matrix.data)) - np.repeat(matrix.indptr[:-1], cardinality)
    padded[rows, cols] = matrix.data
    prepared = _Prepared(
        star=star, self_weight=np.ones(w.n), neighbour_weights=padded, max_cardinality=max_card, terms=cardinality + 1
    )
    with _cache_lock:
        _prepared[w] = prepared
    return prepared


def _permutation_p(values: np.ndarray, prepared: _Prepared, permutations: int, seed: int) -> np.ndarray:
    """Folded pseudo p-values of Gi* under conditional randomisation (numpy; the same scheme as esda's crand)."""
    n, k = len(values), prepared.max_cardinality
    if k == 0 or n < 2:
        return np.ones(n)
    rng = np.random.default_rng(seed)
    # One draw of k distinct ids from the n-1 others per permutation, shared by every unit (esda does the same):
    # ids at or above the unit's own index shift up by one, so a unit never draws itself.
    draws = np.empty((permutations, k), dtype=np.int64)
    rows_per_block = max(1, _PERMUTATION_KEYS_BUDGET // (n - 1))
    for start in range(0, permutations, rows_per_block):
        stop = min(permutations, start + rows_per_block)
        keys = rng.random((stop - start, n - 1))
        draws[start:stop] = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(keys, axis=1)
    weights = prepared.neighbour_weights
    star_sum = np.asarray(prepared.star.sparse @ values).ravel()
    larger = np.empty(n)
    units_per_block = max(1, _GATHER_BUDGET // max(1, permutations * k))
    for start in range(0, n, units_per_block):
        stop = min(n, start + units_per_block)
        own = np.arange(start, stop)[:, None, None]
        ids = draws[None, :, :] + (draws[None, :, :] >= own)
        own_values = (prepared.self_weight[start:stop] * values[start:stop])[:, None]
        simulated = (values[ids] * weights[start:stop, None, :]).sum(axis=2) + own_values
        larger[start:stop] = (simulated >= star_sum[start:stop, None]).sum(axis=1)
    folded = np.minimum(larger, permutations - larger)
    return np.asarray((folded + 1.0) / (permutations + 1.0))


def _exact_p(values: np.ndarray, prepared: _Prepared) -> np.ndarray | None:
    """Two-sided p of each unit's Gi* sum under total randomisation, from the convolved value distribution.

    The sum over a unit and its c-1 neighbours is compared with the sum of c independent draws from the observed
    values (the with-replacement version of the permutation null, which is what the Getis-Ord moments describe).
    Returns None when that distribution cannot be built exactly (non-integer values or weights, huge counts).
    """
    if np.any(values != np.round(values)) or np.any(
        (prepared.neighbour_weights != 0) & (prepared.neighbour_weights != 1)
    ):
        return None
    top = int(values.max())
    terms = prepared.terms
    max_terms = int(terms.max())
    if (top + 1) * max_terms > _EXACT_MAX_SUPPORT:
        return None
    pmf_one = np.bincount(values.astype(np.int64), minlength=top + 1) / len(values)
    star_sum = np.rint(np.asarray(prepared.star.sparse @ values).ravel()).astype(np.int64)
    p = np.ones(len(values))
    pmf = np.ones(1)
    for c in range(1, max_terms + 1):
        pmf = np.clip(signal.fftconvolve(pmf, pmf_one) if len(pmf) > 64 else np.convolve(pmf, pmf_one), 0.0, None)
        pmf /= pmf.sum()
        units = np.flatnonzero(terms == c)
        if len(units) == 0:
            continue
        cdf = np.cumsum(pmf)
        sf = np.cumsum(pmf[::-1])[::-1]  # P(sum >= s), summed from the top so small tails keep their digits
        s_obs = star_sum[units]
        p[units] = np.minimum(1.0, 2.0 * np.minimum(cdf[s_obs], sf[s_obs]))
    return p


def fdr_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q): a unit is significant at FDR level a when q <= a."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def classify(z: np.ndarray, q: np.ndarray, alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS) -> np.ndarray:
    """Hot/cold tier per unit: the strictest of the three FDR levels its q meets, on the side of its z."""
    levels = _check_levels(alpha_levels)
    z = np.asarray(z, dtype=float)
    q = np.asarray(q, dtype=float)
    out = np.full(len(z), NOT_SIGNIFICANT, dtype=object)
    # Loosest level first so stricter tiers overwrite it.
    for level, hot, cold in zip(levels[::-1], HOT_CLASSES[::-1], COLD_CLASSES[::-1], strict=True):
        passed = q <= level
        out[passed & (z > 0)] = hot
        out[passed & (z < 0)] = cold
    return out


def _check_levels(alpha_levels: Sequence[float]) -> tuple[float, float, float]:
    levels = tuple(float(a) for a in alpha_levels)
    if len(levels) != 3 or not all(0 < a < 1 for a in levels) or not levels[0] < levels[1] < levels[2]:
        raise HotspotError(f"alpha_levels must be three increasing levels in (0, 1), got {alpha_levels!r}")
    return levels[0], levels[1], levels[2]


def _check_values(values: np.ndarray, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or len(arr) != n:
        raise HotspotError(f"{what} must be a 1-D array of {n} values (one per unit of the weights), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise HotspotError(f"{what} must be finite and non-negative")
    return arr


def gi_star(
    counts: np.ndarray,
    w: W,
    *,
    permutations: int = 999,
    seed: int = 0,
    alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS,
    inference: Inference = "exact",
) -> GiStar:
    """Getis-Ord Gi* of non-negative values on w's units, classed into hot/cold tiers by BH-adjusted p-values.

    inference="exact" (default) classes on the exact two-sided tail of each unit's neighbourhood sum under total
    randomisation (_exact_p), falling back to "analytic" when values are not small integers. "analytic" uses the
    normal p of esda's Gi* z-score, as ESRI's Hot Spot Analysis does; on sparse counts it flags noise. 999
    permutations cannot give a p below 0.001, and Benjamini–Hochberg over ~2,900 units then needs 29 (90 %) to
    290 (99 %) units tied at that floor before anything passes, so permutation p-values under FDR hide real but
    compact clusters. The permutations still run (conditional randomisation, seeded) and are returned as p_sim;
    inference="permutation" classes on 2 × p_sim instead.
    """
    n = int(w.n)
    values = _check_values(counts, n, "counts")
    if permutations < 0:
        raise HotspotError("permutations must be >= 0")
    if inference not in ("exact", "analytic", "permutation"):
        raise HotspotError(f"unknown inference {inference!r}")
    if inference == "permutation" and permutations == 0:
        raise HotspotError("permutation inference needs permutations > 0")
    levels = _check_levels(alpha_levels)
    codes = tuple(str(c) for c in w.id_order)
    p_sim = np.full(n, np.nan)
    # Constant values (all zero included) carry no spatial pattern; Gi*'s variance is zero and its z undefined.
    if n < 2 or np.ptp(values) == 0:
        ones = np.ones(n)
        return GiStar(
            codes=codes,
            values=values,
            z=np.zeros(n),
            p=ones,
            p_sim=ones.copy() if permutations else p_sim,
            q=ones.copy(),
            classes=np.full(n, NOT_SIGNIFICANT, dtype=object),
            inference=inference,
            permutations=permutations,
        )
    prepared = _prepare(w)
    stat = G_Local(values, prepared.star, transform="B", star=True, permutations=0)
    z = np.nan_to_num(np.asarray(stat.Zs, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    if permutations:
        p_sim = _permutation_p(values, prepared, permutations, seed)
    used: Test = inference
    exact = _exact_p(values, prepared) if inference == "exact" else None
    if exact is not None:
        p = exact
        # Report the z that matches the exact tail, so classes stay monotone in z; it tends to Getis-Ord's z.
        z = np.sign(z) * stats.norm.isf(np.clip(p / 2.0, 1e-300, 0.5))
    elif inference == "permutation":
        p = np.minimum(2.0 * p_sim, 1.0)
    else:
        used = "analytic"
        p = 2.0 * stats.norm.sf(np.abs(z))
    q = fdr_adjust(p)
    return GiStar(
        codes=codes,
        values=values,
        z=z,
        p=p,
        p_sim=p_sim,
        q=q,
        classes=classify(z, q, levels),
        inference=used,
        permutations=permutations,
    )


def eb_rates(events: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Global empirical-Bayes rates (Marshall 1991): each raw rate shrunk to the overall rate by its population.

    A unit's weight on its own rate is A / (A + m / n_i), with m the overall rate and A = max(0, s² - m / mean n)
    the between-unit variance; a unit with no population has no rate of its own and takes m.
    """
    e = np.asarray(events, dtype=float)
    n = np.asarray(population, dtype=float)
    if e.shape != n.shape or e.ndim != 1:
        raise HotspotError(f"events and population must be 1-D arrays of one length, got {e.shape} and {n.shape}")
    for arr, what in ((e, "events"), (n, "population")):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise HotspotError(f"{what} must be finite and non-negative")
    total_n = float(n.sum())
    if total_n == 0:
        raise HotspotError("rates need a population: every unit has zero")
    overall = float(e.sum()) / total_n
    has_n = n > 0
    raw = np.divide(e, n, out=np.full(len(e), overall), where=has_n)
    between = float((n[has_n] * (raw[has_n] - overall) ** 2).sum()) / total_n - overall / float(n.mean())
    between = max(between, 0.0)
    if between == 0.0:
        return np.full(len(e), overall)
    weight = np.zeros(len(e))
    weight[has_n] = between / (between + overall / n[has_n])
    return np.asarray(weight * raw + (1.0 - weight) * overall)


def _overdispersion(observed: np.ndarray, expected: np.ndarray) -> float:
    """Method-of-moments 1/alpha of a Poisson–Gamma (negative binomial) model: Var(O) = E + E² / alpha.

    Zero when the counts are no more variable than Poisson (then the test is the plain Poisson one).
    """
    denominator = float((expected**2).sum())
    if denominator <= 0:
        return 0.0
    return max(0.0, float(((observed - expected) ** 2 - observed).sum()) / denominator)


def rate_hotspots(
    counts: np.ndarray,
    w: W,
    population: np.ndarray,
    *,
    alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS,
) -> GiStar:
    """Hot and cold units by rate: each unit's Gi* neighbourhood against what its population predicts.

    The neighbourhood is Gi*'s (the unit and its neighbours). Its expected count is the city's rate times its
    population. The test is the empirical-Bayes Poisson–Gamma one: relative risks vary between neighbourhoods as a
    gamma law whose spread is estimated from the data (method of moments), so the observed count is compared with
    a negative binomial of that mean and spread. A neighbourhood is only significant when its excess is larger
    than the ordinary variation of rates across the city. Two-sided p-values, Benjamini–Hochberg as gi_star. A
    unit is classed hot (cold) only when its own count is also above (below) its own expectation, so the
    neighbours of a hotspot that have no excess of their own are not painted with it; and hot only with at least
    MIN_RATE_HOT_COUNT events of its own, so that one clue where almost nobody is registered (two entities and
    one clue) never makes a hotspot. A neighbourhood with no population at all has nothing to compare with
    (p = 1); with a little, several clues there are a real anomaly and may well be hot.

    `values` are the EB-smoothed rates per population unit (eb_rates); `z` is the normal score of the p-value,
    signed by the neighbourhood's excess.
    """
    n = int(w.n)
    values = _check_values(counts, n, "counts")
    people = _check_values(population, n, "population")
    levels = _check_levels(alpha_levels)
    codes = tuple(str(c) for c in w.id_order)
    if people.sum() == 0:
        raise HotspotError("rates need a population: every unit has zero")
    smoothed = eb_rates(values, people)
    total = float(values.sum())
    if n < 2 or total == 0:
        ones = np.ones(n)
        return GiStar(
            codes=codes, values=smoothed, z=np.zeros(n), p=ones, p_sim=np.full(n, np.nan), q=ones.copy(),
            classes=np.full(n, NOT_SIGNIFICANT, dtype=object), inference="negative_binomial", permutations=0,
        )  # fmt: skip
    star = _prepare(w).star.sparse
    observed = np.asarray(star @ values).ravel()
    exposure = np.asarray(star @ people).ravel()
    expected = total * exposure / float(people.sum())
    own_expected = total * people / float(people.sum())
    inv_alpha = _overdispersion(observed, expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        if inv_alpha > 0:
            shape = 1.0 / inv_alpha
            success = shape / (shape + expected)
            upper = stats.nbinom.sf(observed - 1, shape, success)
            lower = stats.nbinom.cdf(observed, shape, success)
        else:
            upper = stats.poisson.sf(observed - 1, expected)
            lower = stats.poisson.cdf(observed, expected)
    p = np.minimum(1.0, 2.0 * np.minimum(upper, lower))
    p[expected <= 0] = 1.0  # no population anywhere near: nothing to compare with
    excess = np.sign(observed - expected)
    z = excess * stats.norm.isf(np.clip(p / 2.0, 1e-300, 0.5))
    q = fdr_adjust(p)
    classes = classify(z, q, levels)
    own_side = np.sign(values - own_expected)
    classes[(own_side != excess) & (classes != NOT_SIGNIFICANT)] = NOT_SIGNIFICANT
    classes[np.isin(classes, HOT_CLASSES) & (values < MIN_RATE_HOT_COUNT)] = NOT_SIGNIFICANT
    return GiStar(
        codes=codes, values=smoothed, z=z, p=p, p_sim=np.full(n, np.nan), q=q, classes=classes,
        inference="negative_binomial", permutations=0,
    )  # fmt: skip


def find_hotspots(
    counts: np.ndarray,
    w: W,
    *,
    method: Method = "gi_star",
    population: np.ndarray | None = None,
    permutations: int = 999,
    seed: int = 0,
    alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS,
    inference: Inference = "exact",
) -> GiStar:
    """Gi* on counts (method="gi_star") or the empirical-Bayes rate test per population unit (method="rate")."""
    if method == "gi_star":
        return gi_star(counts, w, permutations=permutations, seed=seed, alpha_levels=alpha_levels, inference=inference)
    if method == "rate":
        if population is None:
            raise HotspotError('method="rate" needs a population (registered entities or residents) per unit')
        if inference != "exact":
            raise HotspotError('method="rate" has its own test; inference applies to method="gi_star" only')
        return rate_hotspots(counts, w, population, alpha_levels=alpha_levels)
    raise HotspotError(f"unknown method {method!r}")
