"""Synthetic clues: a year of reports inside the city, following where people live, with planted hotspots that stand out."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from synthetic.clues import CLUE_COLUMNS, CLUE_INDUSTRIES, HOTSPOT_KINDS, ClueSet, generate_clues

LOAD_DATE = date(2026, 8, 15)
X0, Y0 = 400_000.0, 2_530_000.0


def make_grids(cells: int = 12, size_m: float = 1000.0) -> gpd.GeoDataFrame:
    """A square city of cells × cells grids of size_m, minus one corner (so some nearby land is outside)."""
    rows = []
    for i in range(cells):
        for j in range(cells):
            if i >= cells - 3 and j >= cells - 3:
                continue  # a bay: not city land
            community = f"4419001010{(i // 4) * 3 + j // 4:02d}"
            rows.append(
                {
                    "code": f"{community}{i:02d}{j}",
                    "community_code": community,
                    "town_code": "441900101000",
                    "geometry": box(X0 + i * size_m, Y0 + j * size_m, X0 + (i + 1) * size_m, Y0 + (j + 1) * size_m),
                }
            )
    return gpd.GeoDataFrame(rows, crs=4547)


def make_addresses(seed: int = 1, n: int = 8000) -> pd.DataFrame:
    """Address points: three dense town centres, an industrial area and scattered villages."""
    rng = np.random.default_rng(seed)
    centres = [(3000, 3000, 600), (8000, 4000, 800), (4000, 8500, 500)]
    chunks, kinds = [], []
    for cx, cy, sigma in centres:
        pts = rng.normal([X0 + cx, Y0 + cy], sigma, size=(n // 4, 2))
        chunks.append(pts)
        kinds += ["compound"] * len(pts)
    industrial = rng.uniform([X0 + 6000, Y0 + 7000], [X0 + 8500, Y0 + 8800], size=(n // 8, 2))
    chunks.append(industrial)
    kinds += ["industrial"] * len(industrial)
    rest = n - sum(len(c) for c in chunks)
    chunks.append(rng.uniform([X0, Y0], [X0 + 12_000, Y0 + 12_000], size=(rest, 2)))
    kinds += ["village"] * rest
    xy = np.vstack(chunks)
    return pd.DataFrame({"id": np.arange(1, len(xy) + 1), "x": xy[:, 0], "y": xy[:, 1], "kind": kinds})


def _spots(hotspots: pd.DataFrame) -> list[Any]:
    """Hotspot rows as named tuples (attribute access reads better in the assertions)."""
    return list(hotspots.itertuples())


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return make_grids()


@pytest.fixture(scope="module")
def addresses() -> pd.DataFrame:
    return make_addresses()


@pytest.fixture(scope="module")
def clue_set(grids: gpd.GeoDataFrame, addresses: pd.DataFrame) -> ClueSet:
    return generate_clues(grids, addresses, seed=7, n=12_000, load_date=LOAD_DATE, n_hotspots=12)


def test_same_seed_same_clues(grids: gpd.GeoDataFrame, addresses: pd.DataFrame) -> None:
    a = generate_clues(grids, addresses, seed=3, n=1500, load_date=LOAD_DATE, n_hotspots=4)
    b = generate_clues(grids, addresses, seed=3, n=1500, load_date=LOAD_DATE, n_hotspots=4)
    c = generate_clues(grids, addresses, seed=4, n=1500, load_date=LOAD_DATE, n_hotspots=4)
    pd.testing.assert_frame_equal(a.clues, b.clues)
    pd.testing.assert_frame_equal(a.hotspots, b.hotspots)
    assert not np.allclose(a.clues["x"].to_numpy(), c.clues["x"].to_numpy())


def test_exactly_n_clues_with_valid_fields(clue_set: ClueSet) -> None:
    clues = clue_set.clues
    assert list(clues.columns) == list(CLUE_COLUMNS)
    assert len(clues) == 12_000
    assert clues["id"].is_unique
    assert set(clues["industry"]) == set(CLUE_INDUSTRIES)
    assert len(CLUE_INDUSTRIES) == 17
    assert set(clues["severity"]) == {"normal", "severe"}
    assert 0.08 < (clues["severity"] == "severe").mean() < 0.12
    assert set(clues["source"]) == {"field", "hotline"}
    assert set(clues["kind"]) == {"clue", "unlicensed"}
    assert clues["description"].str.len().between(2, 30).all()


def test_clues_fall_in_the_twelve_months_before_the_load_date(clue_set: ClueSet) -> None:
    reported = clue_set.clues["reported_at"]
    assert str(reported.dt.tz) == "Asia/Shanghai"
    end = pd.Timestamp(LOAD_DATE, tz="Asia/Shanghai")
    assert (reported < end).all()
    assert (reported >= end - pd.Timedelta(days=365)).all()
    months = reported.dt.strftime("%Y-%m").nunique()
    assert months >= 12


def test_every_clue_lies_inside_a_grid(clue_set: ClueSet, grids: gpd.GeoDataFrame) -> None:
    clues = clue_set.clues
    points = shapely.points(clues["x"].to_numpy(), clues["y"].to_numpy())
    city = shapely.union_all(grids.geometry.values)
    assert shapely.covers(city, points).all()
    by_code = grids.set_index("code").geometry
    assert shapely.covers(np.asarray(by_code.loc[clues["grid_code"]].values), points).all()


def test_background_follows_address_density(clue_set: ClueSet, addresses: pd.DataFrame) -> None:
    clues = clue_set.clues[clue_set.clues["hotspot_id"].isna()]
    near_centre = np.hypot(clues["x"] - (X0 + 3000), clues["y"] - (Y0 + 3000)) < 600
    near_empty = np.hypot(clues["x"] - (X0 + 11_000), clues["y"] - (Y0 + 1000)) < 600
    assert near_centre.sum() > 10 * max(near_empty.sum(), 1)


def test_hotspots_are_planted_with_exact_truth(clue_set: ClueSet) -> None:
    clues, hotspots = clue_set.clues, clue_set.hotspots
    assert len(hotspots) == 12
    assert set(hotspots["kind"]) == set(HOTSPOT_KINDS)
    assert hotspots["radius_m"].between(150, 400).all()
    assert set(hotspots["industry"]) <= set(CLUE_INDUSTRIES)
    counts = clues["hotspot_id"].value_counts()
    for spot in _spots(hotspots):
        assert counts[spot.id] == spot.n_clues
        assert 4 <= spot.intensity <= 8
        # The planted clues lift the disc to the drawn intensity over its expected background, or to the floor.
        assert abs(spot.n_clues - max(10, round((spot.intensity - 1) * spot.expected_background))) <= 1
        planted = clues[clues["hotspot_id"] == spot.id]
        assert (np.hypot(planted["x"] - spot.x, planted["y"] - spot.y) <= spot.radius_m + 1e-6).all()
        assert (planted["industry"] == spot.industry).all()
        days = planted["reported_at"].dt.date
        assert days.min() >= spot.start_date and days.max() <= spot.end_date


def test_hotspot_kinds_have_their_time_profile(clue_set: ClueSet) -> None:
    clues, hotspots = clue_set.clues, clue_set.hotspots
    for spot in _spots(hotspots):
        days = clues.loc[clues["hotspot_id"] == spot.id, "reported_at"].dt.date
        if spot.kind == "new":
            assert spot.start_date >= LOAD_DATE - timedelta(days=31)
        elif spot.kind == "persistent":
            assert spot.start_date == LOAD_DATE - timedelta(days=365) and spot.end_date == LOAD_DATE - timedelta(days=1)
            assert (days.max() - days.min()).days > 180, "spread over the whole year"
        elif spot.kind == "emerging":
            last_month = (days >= LOAD_DATE - timedelta(days=30)).sum()
            first_month = (days < spot.start_date + timedelta(days=30)).sum()
            assert last_month > first_month
        elif spot.kind == "fading":
            assert spot.end_date < LOAD_DATE - timedelta(days=120)


def test_hotspots_stand_out_against_the_local_background(clue_set: ClueSet) -> None:
    clues, hotspots = clue_set.clues, clue_set.hotspots
    ratios = []
    for spot in _spots(hotspots):
        day = clues["reported_at"].dt.date
        active = clues[(day >= spot.start_date) & (day <= spot.end_date)]
        distance = np.hypot(active["x"] - spot.x, active["y"] - spot.y)
        inside = (distance <= spot.radius_m).sum() / (np.pi * spot.radius_m**2)
        ring_outer = spot.radius_m + 800
        ring = ((distance > spot.radius_m + 200) & (distance <= ring_outer)).sum()
        ring_density = ring / (np.pi * (ring_outer**2 - (spot.radius_m + 200) ** 2))
        ratios.append(inside / max(ring_density, 1e-12))
    # Each disc is far denser than the ring around it while it is active; most by the planted 4–8 times or more.
    assert min(ratios) > 2.0
    assert np.median(ratios) > 4.0


def test_fewer_hotspots_than_asked_is_never_silent(grids: gpd.GeoDataFrame, addresses: pd.DataFrame) -> None:
    out = generate_clues(grids, addresses, seed=1, n=600, load_date=LOAD_DATE, n_hotspots=0)
    assert len(out.clues) == 600 and out.hotspots.empty
    assert out.clues["hotspot_id"].isna().all()
