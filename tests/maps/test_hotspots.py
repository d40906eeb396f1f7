"""Hotspot statistics: a town leader sees real clusters as hot, random noise as nothing, and trends named right."""

from __future__ import annotations

import h3
import numpy as np
import pytest
import shapely
from esda.smoothing import Empirical_Bayes
from hypothesis import given, settings
from hypothesis import strategies as st
from libpysal.weights import W, lat2W

from maps.errors import HotspotError
from maps.heat.emerging import classify_emerging, emerging
from maps.heat.hotspots import CLASS_ORDER, eb_rates, fdr_adjust, find_hotspots, gi_star
from maps.heat.weights import weights_for_grids, weights_for_h3

SIDE = 24


def lattice(side: int = SIDE) -> W:
    """Queen weights on a side × side lattice; unit r * side + c is row r, column c."""
    return lat2W(side, side, rook=False)


def block(row: int, col: int, side: int = SIDE, size: int = 3) -> list[int]:
    """Unit ids of a size × size block whose top-left unit is (row, col)."""
    return [(row + r) * side + col + c for r in range(size) for c in range(size)]


def test_a_planted_cluster_on_a_lattice_is_found_as_hot_99() -> None:
    w = lattice()
    counts = np.random.default_rng(1).poisson(0.5, w.n).astype(float)
    cluster = block(10, 10)
    counts[cluster] += 4
    result = gi_star(counts, w)
    centre = 11 * SIDE + 11
    assert result.classes[centre] == "hot_99"
    # Nothing far from the cluster lights up: every hot unit touches it.
    near = set(block(9, 9, size=5))
    assert set(np.flatnonzero(result.hot())) <= near
    assert result.p_sim[centre] == pytest.approx(0.001)  # the permutation floor with 999 permutations


@pytest.mark.parametrize("mean_count", [0.2, 1.0, 4.0])
def test_uniform_random_counts_are_significant_no_more_often_than_the_fdr_rate(mean_count: float) -> None:
    w = lattice(30)
    shares = []
    for seed in range(6):
        counts = np.random.default_rng(seed).poisson(mean_count, w.n).astype(float)
        shares.append(gi_star(counts, w, permutations=0).significant().mean())
    assert max(shares) <= 0.10
    assert np.mean(shares) <= 0.01


def test_the_normal_approximation_is_the_noisy_one_on_sparse_counts() -> None:
    # Why "exact" is the default: on sparse counts the normal tail of Gi* flags noise the exact tail does not.
    w = lattice(30)
    exact = analytic = 0
    for seed in range(6):
        counts = np.random.default_rng(seed).poisson(0.2, w.n).astype(float)
        exact += int(gi_star(counts, w, permutations=0).significant().sum())
        analytic += int(gi_star(counts, w, permutations=0, inference="analytic").significant().sum())
    assert exact < analytic


def test_all_zero_counts_are_not_significant_anywhere_and_never_nan() -> None:
    w = lattice(5)
    result = gi_star(np.zeros(w.n), w)
    assert set(result.classes) == {"not_significant"}
    assert not np.isnan(result.z).any() and not np.isnan(result.p).any() and not np.isnan(result.q).any()


def test_repeated_runs_with_the_same_seed_agree() -> None:
    w = lattice(10)
    counts = np.random.default_rng(3).poisson(2.0, w.n).astype(float)
    first, second = gi_star(counts, w, seed=7), gi_star(counts, w, seed=7)
    assert np.array_equal(first.p_sim, second.p_sim)
    assert list(first.classes) == list(second.classes)


def test_empirical_bayes_shrinks_one_clue_among_two_entities_below_thirty_among_a_hundred() -> None:
    events = np.array([1.0, 30.0, *np.round(np.linspace(2, 20, 50))])
    entities = np.array([2.0, 100.0] + [100.0] * 50)
    smoothed = eb_rates(events, entities)
    assert events[0] / entities[0] > events[1] / entities[1]
    assert smoothed[0] < smoothed[1]
    overall = events.sum() / entities.sum()
    assert smoothed[0] - overall < 0.2 * (0.5 - overall)  # pulled most of the way to the city's rate
    reference = np.asarray(Empirical_Bayes(events, entities).r).ravel()
    assert np.allclose(smoothed, reference)


def test_a_unit_without_population_takes_the_overall_rate() -> None:
    smoothed = eb_rates(np.array([3.0, 10.0, 20.0]), np.array([0.0, 100.0, 100.0]))
    assert smoothed[0] == pytest.approx(33.0 / 200.0)


def test_the_rate_method_does_not_crown_a_tiny_grid_with_one_clue() -> None:
    w = lattice(12)
    entities = np.full(w.n, 100.0)
    counts = np.random.default_rng(5).poisson(5.0, w.n).astype(float)
    tiny = 2 * 12 + 2
    entities[tiny], counts[tiny] = 2.0, 1.0
    cluster = block(7, 7, side=12)
    counts[cluster] += 25
    result = find_hotspots(counts, w, method="rate", population=entities, permutations=0)
    assert result.inference == "negative_binomial"
    assert result.values[tiny] < result.values[cluster].min()  # EB-smoothed rates
    assert int(np.argmax(result.z)) in cluster
    assert result.classes[tiny] == "not_significant"
    with pytest.raises(HotspotError):
        find_hotspots(counts, w, method="rate")


def uneven_population(side: int, seed: int) -> np.ndarray:
    """Residents per unit varying a hundredfold, smoothly, like a town centre and its outskirts."""
    rows, cols = np.divmod(np.arange(side * side), side)
    centre = side / 2
    density = np.exp(-((rows - centre) ** 2 + (cols - centre) ** 2) / (2 * (side / 4) ** 2))
    noise = np.random.default_rng(seed).uniform(0.7, 1.3, side * side)
    return np.round(20 + 2000 * density * noise)


@pytest.mark.parametrize("clues", [300, 3000, 30000])
def test_clues_that_follow_the_population_give_no_rate_hotspots_beyond_the_fdr_rate(clues: int) -> None:
    # Constant risk is the rate method's null: busy centres have more clues, and that is not a hotspot.
    side = 30
    w = lattice(side)
    population = uneven_population(side, 0)
    maps_with_any = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        counts = np.bincount(rng.choice(w.n, clues, p=population / population.sum()), minlength=w.n).astype(float)
        result = find_hotspots(counts, w, method="rate", population=population)
        maps_with_any += bool(result.significant().any())
        # Counts alone would call the busy centre hot; the rate method does not.
    assert maps_with_any <= 2  # FDR at 10 % bounds the chance of any false discovery under the full null
    counts_only = gi_star(counts, w, permutations=0)
    assert counts_only.hot().any()


def test_a_rate_hotspot_in_a_quiet_place_is_found_and_its_quiet_neighbours_are_not_painted() -> None:
    side = 30
    w = lattice(side)
    population = uneven_population(side, 1)
    rng = np.random.default_rng(2)
    counts = np.bincount(rng.choice(w.n, 5000, p=population / population.sum()), minlength=w.n).astype(float)
    quiet = 3 * side + 3  # far from the centre: few residents
    own_expected = counts.sum() * population / population.sum()
    assert own_expected[quiet] < 2
    ring = [r * side + c for r in (2, 3, 4) for c in (2, 3, 4) if (r, c) != (3, 3)]
    counts[ring[:4]] = 0  # some neighbours without a single clue of their own
    counts[quiet] += 20
    own_expected = counts.sum() * population / population.sum()
    result = find_hotspots(counts, w, method="rate", population=population)
    assert result.classes[quiet] in ("hot_99", "hot_95")
    hot = set(np.flatnonzero(result.hot()).tolist())
    assert hot <= {quiet, *ring}  # nothing lights up away from it
    # Neighbours share its excess in their Gi* sums; without an excess of their own they are not painted hot.
    assert not hot & set(ring[:4])
    assert all(counts[i] > own_expected[i] for i in hot)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=40), min_size=25, max_size=25),
    people=st.lists(st.integers(min_value=0, max_value=500), min_size=25, max_size=25),
)
def test_rate_results_are_finite_and_classes_agree_with_the_excess(counts: list[int], people: list[int]) -> None:
    w = lattice(5)
    population = np.array(people, dtype=float)
    if population.sum() == 0:
        with pytest.raises(HotspotError, match="population"):
            find_hotspots(np.array(counts, dtype=float), w, method="rate", population=population)
        return
    result = find_hotspots(np.array(counts, dtype=float), w, method="rate", population=population)
    assert np.all(np.isfinite(result.z)) and np.all((result.p >= 0) & (result.p <= 1))
    assert np.all(result.q >= result.p - 1e-12)
    assert np.all(result.z[result.hot()] > 0)
    cold = np.isin(result.classes, ("cold_99", "cold_95", "cold_90"))
    assert np.all(result.z[cold] < 0)


def test_bad_input_is_refused_with_a_reason() -> None:
    w = lattice(4)
    with pytest.raises(HotspotError, match="16 values"):
        gi_star(np.zeros(5), w)
    with pytest.raises(HotspotError, match="non-negative"):
        gi_star(-np.ones(16), w)
    with pytest.raises(HotspotError, match="alpha_levels"):
        gi_star(np.ones(16), w, alpha_levels=(0.1, 0.05, 0.01))
    with pytest.raises(HotspotError, match="H3"):
        weights_for_h3(["not-a-cell"])


def test_fdr_adjustment_matches_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted 0.01, 0.03, 0.04, 0.20 → 0.04, 0.06, 0.0533, 0.20 → step-up minimum 0.04, 0.0533, 0.0533, 0.20
    assert np.allclose(fdr_adjust(p), [0.04, 0.05333333, 0.05333333, 0.20])


def test_h3_neighbours_are_the_first_ring_among_present_cells_and_islands_get_one() -> None:
    centre = h3.latlng_to_cell(23.02, 113.75, 9)
    far = h3.latlng_to_cell(23.10, 113.90, 9)
    cells = sorted(h3.grid_disk(centre, 2)) + [far]
    w = weights_for_h3(cells)
    assert len(w.neighbors[centre]) == 6
    assert len(w.neighbors[far]) == 1  # linked to its nearest present cell
    assert weights_for_h3(cells) is w  # cached on the codes


def test_grid_weights_are_queen_contiguity_with_islands_linked() -> None:
    squares = [shapely.box(c, r, c + 1, r + 1) for r in range(3) for c in range(3)]
    codes = [f"g{i}" for i in range(9)] + ["island"]
    w = weights_for_grids([*squares, shapely.box(10, 10, 11, 11)], codes)
    assert len(w.neighbors["g4"]) == 8  # corners count: queen, not rook
    assert len(w.neighbors["g0"]) == 3
    assert len(w.neighbors["island"]) == 1
    assert weights_for_grids([*squares, shapely.box(10, 10, 11, 11)], codes) is w


EMERGING_SIDE = 24
SLICES = 12


def _emerging_series() -> tuple[np.ndarray, dict[str, int]]:
    """12 slices of Poisson(3) background with one 3×3 block per pattern; returns counts and each block's centre."""
    rng = np.random.default_rng(11)
    counts = rng.poisson(3.0, (SLICES, EMERGING_SIDE * EMERGING_SIDE)).astype(float)
    t = np.arange(SLICES)
    lift = {
        "new": np.where(t == SLICES - 1, 10.0, 0.0),
        "consecutive": np.where(t >= SLICES - 3, 10.0, 0.0),
        "persistent": np.full(SLICES, 10.0),
        "intensifying": 8.0 + 2.0 * t,
        "diminishing": 32.0 - 2.0 * t,
        "sporadic": np.where(np.isin(t, [2, 5, 8, 11]), 10.0, 0.0),
        "oscillating": np.where(np.isin(t, [3, 11]), 10.0, 0.0),
        "historical": np.where(t < SLICES - 1, 10.0, 0.0),
    }
    centres: dict[str, int] = {}
    for k, (name, series) in enumerate(lift.items()):
        row, col = 1 + 6 * (k // 4), 1 + 6 * (k % 4)
        units = block(row, col, side=EMERGING_SIDE)
        counts[:, units] += series[:, None]
        if name == "oscillating":
            counts[6, units] = 0.0  # a cold spell: nothing reported in the block that slice
        centres[name] = (row + 1) * EMERGING_SIDE + col + 1
    return counts, centres


def test_emerging_hotspots_are_named_after_their_history() -> None:
    counts, centres = _emerging_series()
    categories = emerging(counts, lattice(EMERGING_SIDE))
    assert {name: categories[unit] for name, unit in centres.items()} == {name: name for name in centres}
    # The background far from every block has no pattern.
    assert categories[23 * EMERGING_SIDE + 23] is None


def test_emerging_rules_on_flags_directly() -> None:
    hot = np.array([True] * 9 + [False, True, True])
    assert classify_emerging(hot, np.zeros(12, bool), 0) == "persistent"  # 11 of 12 hot is over 90 %
    assert classify_emerging(np.array([False] * 11 + [True]), np.ones(12, bool), 0) == "new"
    assert classify_emerging(np.zeros(12, bool), np.zeros(12, bool), 0) is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=30), min_size=36, max_size=36),
    st.sampled_from(["exact", "analytic"]),
)
def test_a_higher_z_never_gets_a_colder_class(counts: list[int], inference: str) -> None:
    result = gi_star(np.array(counts, dtype=float), lattice(6), permutations=0, inference=inference)  # type: ignore[arg-type]
    assert not np.isnan(result.z).any() and not np.isnan(result.p).any()
    rank = np.array([CLASS_ORDER.index(c) for c in result.classes])
    rank_by_z = rank[np.argsort(result.z, kind="stable")]
    # Non-decreasing along z covers every pair; equal z share a p and hence a class, so ties cannot break it.
    assert np.all(np.diff(rank_by_z) >= 0)


def test_one_clue_where_nobody_lives_is_never_a_rate_hotspot() -> None:
    w = lattice(20)
    population = np.full(w.n, 500.0)
    counts = np.random.default_rng(4).poisson(3.0, w.n).astype(float)
    lonely = 5 * 20 + 5
    population[
        [lonely - 21, lonely - 20, lonely - 19, lonely - 1, lonely, lonely + 1, lonely + 19, lonely + 20, lonely + 21]
    ] = 0.001
    counts[[lonely - 21, lonely - 20, lonely - 19, lonely - 1, lonely + 1, lonely + 19, lonely + 20, lonely + 21]] = 0
    counts[lonely] = 1
    result = find_hotspots(counts, w, method="rate", population=population)
    assert result.p[lonely] < 1e-3  # one clue is improbable there ...
    assert result.classes[lonely] == "not_significant"  # ... but one clue is one clue
    counts[lonely] = 6
    assert find_hotspots(counts, w, method="rate", population=population).classes[lonely].startswith("hot")


def test_emerging_categories_follow_the_chosen_method() -> None:
    side = 20
    w = lattice(side)
    population = uneven_population(side, 3)
    rng = np.random.default_rng(6)
    weeks = 8
    series = np.stack(
        [np.bincount(rng.choice(w.n, 400, p=population / population.sum()), minlength=w.n) for _ in range(weeks)]
    ).astype(float)
    quiet = 2 * side + 2
    series[-2:, quiet] += 8  # a rate hotspot in the last two weeks, in a place with few residents
    by_rate = emerging(series, w, method="rate", population=population)
    assert by_rate[quiet] in ("new", "consecutive")
    busy_centre = (side // 2) * side + side // 2
    assert by_rate[busy_centre] is None  # many clues where many people live: no rate trend
    with pytest.raises(HotspotError):
        emerging(series, w, method="rate")
