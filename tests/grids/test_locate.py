"""Story: millions of registrations are placed in their grid (and community and town) exactly as PostGIS would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

import grids.locate
from grids.errors import GridsError, LocateError
from grids.locate import DEFAULT_CELL_DEG, GridLocator, TerritoryLocator

# Dongguan's magnitudes (lon 113.5-114.3, lat 22.6-23.2): rounding behaves as it will in production.
LON0, LAT0 = 113.75, 22.95
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def brute_force(
    codes: Sequence[str], geoms: Sequence[Polygon | MultiPolygon], lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """What PostGIS answers: ST_Covers against every polygon, the smallest covering code wins, -1 if none."""
    result = np.full(len(lon), -1, dtype=np.int32)
    finite = np.isfinite(lon) & np.isfinite(lat)
    points = shapely.points(np.where(finite, lon, 0.0), np.where(finite, lat, 0.0))
    for i in sorted(range(len(codes)), key=lambda j: codes[j], reverse=True):  # smallest code written last
        result[finite & shapely.covers(geoms[i], points)] = i
    return result


def boundary_points(geoms: Sequence[Polygon | MultiPolygon], rng: np.random.Generator, n: int) -> np.ndarray:
    """Every vertex (shared corners) plus n points interpolated along the rings (on or a rounding off the edges)."""
    rings = shapely.get_rings(shapely.get_parts(np.asarray(geoms, dtype=object)))
    vertices = shapely.get_coordinates(rings)
    along = shapely.line_interpolate_point(rings[rng.integers(0, len(rings), n)], rng.random(n), normalized=True)
    return np.vstack([vertices, shapely.get_coordinates(along)])


def probe_points(
    geoms: Sequence[Polygon | MultiPolygon], rng: np.random.Generator, cell_deg: float, n: int = 600
) -> tuple[np.ndarray, np.ndarray]:
    """Random points in and around the polygons, on raster cell edges and corners, on the polygons' vertices
    and edges, and NaN/inf."""
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    pad = 0.2 * max(maxx - minx, maxy - miny)
    random_xy = rng.uniform([minx - pad, miny - pad], [maxx + pad, maxy + pad], (n, 2))
    on_cell_corners = np.round(random_xy[: n // 4] / cell_deg) * cell_deg
    on_cell_edges = np.column_stack([on_cell_corners[:, 0], random_xy[n // 4 : n // 2, 1]])
    odd = np.array([[np.nan, LAT0], [LON0, np.nan], [np.inf, LAT0], [-np.inf, -np.inf], [minx, miny], [maxx, maxy]])
    xy = np.vstack([random_xy, on_cell_corners, on_cell_edges, boundary_points(geoms, rng, n), odd])
    return xy[:, 0], xy[:, 1]


def assert_agrees(
    codes: Sequence[str], geoms: Sequence[Polygon | MultiPolygon], cell_deg: float, seed: int
) -> GridLocator:
    """The locator agrees with brute force on probe points, by index and by code."""
    locator = GridLocator.build(codes, geoms, cell_deg=cell_deg)
    lon, lat = probe_points(geoms, np.random.default_rng(seed), cell_deg)
    expected = brute_force(codes, geoms, lon, lat)
    got = locator.locate_index(lon, lat)
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, [(lon[i], lat[i], got[i], expected[i]) for i in mismatch[:5]]
    expected_codes = [codes[i] if i >= 0 else None for i in expected]
    assert locator.locate_codes(lon, lat).tolist() == expected_codes
    return locator


def square_tiling(n_cols: int, n_rows: int, size: float, origin: tuple[float, float]) -> list[Polygon]:
    """n_cols x n_rows squares sharing edges and corners, row by row."""
    x0, y0 = origin
    return [
        box(x0 + c * size, y0 + r * size, x0 + (c + 1) * size, y0 + (r + 1) * size)
        for r in range(n_rows)
        for c in range(n_cols)
    ]


def voronoi_tiling(seed: int, n_cells: int, width: float) -> list[Polygon]:
    """Voronoi cells of random seeds clipped to a box: irregular polygons sharing edges and vertices."""
    rng = np.random.default_rng(seed)
    frame = box(LON0, LAT0, LON0 + width, LAT0 + 0.8 * width)
    seeds = shapely.multipoints(rng.uniform([LON0, LAT0], [LON0 + width, LAT0 + 0.8 * width], (n_cells, 2)))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    return [c for c in cells if isinstance(c, Polygon) and not c.is_empty]


def shuffled_codes(n: int, seed: int) -> list[str]:
    """Unique codes whose order is not the input order, so the tie rule cannot hide behind input order."""
    return [f"4419{k:08d}" for k in np.random.default_rng(seed).permutation(n) * 7 + 11]


@FAST
@given(
    n_cols=st.integers(1, 6),
    n_rows=st.integers(1, 6),
    size_cells=st.sampled_from([1.0, 2.0, 3.0, 0.37, 2.5, 7.13]),
    offset_cells=st.sampled_from([0.0, 0.5, 0.123456]),
    cell_deg=st.sampled_from([DEFAULT_CELL_DEG, 2.0**-10, 1e-3, 3.3e-4]),
    seed=st.integers(0, 10_000),
)
def test_square_grids_agree_with_postgis_on_edges_corners_and_outside(
    n_cols: int, n_rows: int, size_cells: float, offset_cells: float, cell_deg: float, seed: int
) -> None:
    """Squares whose edges may lie exactly on raster cell edges: points on shared edges and corners go to the smaller code."""
    origin = (round(LON0 / cell_deg + offset_cells) * cell_deg, round(LAT0 / cell_deg + offset_cells) * cell_deg)
    squares = square_tiling(n_cols, n_rows, size_cells * cell_deg, origin)
    assert_agrees(shuffled_codes(len(squares), seed), squares, cell_deg, seed)


@FAST
@given(
    n_cells=st.integers(2, 40),
    seed=st.integers(0, 10_000),
    cell_deg=st.sampled_from([DEFAULT_CELL_DEG, 2.0**-10, 7e-4]),
)
def test_voronoi_grids_agree_with_postgis(n_cells: int, seed: int, cell_deg: float) -> None:
    """Irregular grids (a Voronoi tessellation) agree everywhere, also on their shared, slanted edges and vertices."""
    cells = voronoi_tiling(seed, n_cells, width=0.03)
    assert_agrees(shuffled_codes(len(cells), seed), cells, cell_deg, seed)


@FAST
@given(seed=st.integers(0, 10_000), angle=st.floats(0, 90), cell_deg=st.sampled_from([DEFAULT_CELL_DEG, 1e-3]))
def test_grids_with_holes_islands_and_multipolygons_agree(seed: int, angle: float, cell_deg: float) -> None:
    """A rotated grid with a hole, the island grid filling it, a two-part grid, a thin sliver and a spike."""
    centre = (LON0 + 0.01, LAT0 + 0.01)
    ring = box(LON0, LAT0, LON0 + 0.02, LAT0 + 0.02)
    hole = box(LON0 + 0.006, LAT0 + 0.006, LON0 + 0.012, LAT0 + 0.011)
    donut = Polygon(ring.exterior.coords, [hole.exterior.coords])
    island = hole
    two_parts = MultiPolygon(
        [box(LON0 + 0.02, LAT0, LON0 + 0.025, LAT0 + 0.005), box(LON0 + 0.02, LAT0 + 0.01, LON0 + 0.03, LAT0 + 0.02)]
    )
    sliver = Polygon([(LON0 + 0.02, LAT0 + 0.005), (LON0 + 0.03, LAT0 + 0.005), (LON0 + 0.03, LAT0 + 0.005001)])
    spike = Polygon([(LON0 - 0.01, LAT0), (LON0, LAT0), (LON0, LAT0 + 0.02), (LON0 - 0.0001, LAT0 + 0.001)])
    geoms = [shapely.affinity.rotate(g, angle, origin=centre) for g in (donut, island, two_parts, sliver, spike)]
    assert_agrees(shuffled_codes(len(geoms), seed), geoms, cell_deg, seed)


@FAST
@given(seed=st.integers(0, 10_000), order=st.permutations(range(4)))
def test_overlapping_grids_give_the_point_to_the_smallest_code_whatever_the_input_order(
    seed: int, order: list[int]
) -> None:
    """Overlaps (and nested grids) resolve to the smallest code, also deep inside the overlap, far from any edge."""
    shapes = [
        box(LON0, LAT0, LON0 + 0.02, LAT0 + 0.02),
        box(LON0 + 0.005, LAT0 + 0.005, LON0 + 0.03, LAT0 + 0.03),
        shapely.Point(LON0 + 0.01, LAT0 + 0.01).buffer(0.004),
        box(LON0 + 0.001, LAT0 + 0.001, LON0 + 0.019, LAT0 + 0.019),
    ]
    codes = ["B", "A", "D", "C"]
    geoms = [shapes[i] for i in order]
    ordered_codes = [codes[i] for i in order]
    locator = assert_agrees(ordered_codes, geoms, DEFAULT_CELL_DEG, seed)
    assert locator.locate_codes(
        [LON0 + 0.01, LON0 + 0.0015, LON0 + 0.025], [LAT0 + 0.01, LAT0 + 0.0015, LAT0 + 0.025]
    ).tolist() == [
        "A",
        "B",
        "A",
    ]


def test_every_cell_answered_without_geometry_lies_wholly_in_its_grid() -> None:
    """Pure raster cells are really pure: inside their winner entirely, or clear of every grid."""
    cells = voronoi_tiling(7, 25, width=0.02)
    cells.append(
        Polygon(
            box(LON0 + 0.021, LAT0, LON0 + 0.03, LAT0 + 0.01).exterior.coords,
            [box(LON0 + 0.024, LAT0 + 0.003, LON0 + 0.027, LAT0 + 0.006).exterior.coords],
        )
    )
    codes = shuffled_codes(len(cells), 7)
    locator = GridLocator.build(codes, cells)
    lon0, lat0 = locator.origin_lon_lat
    rows, cols = np.indices(locator.raster.shape)
    size = locator.cell_deg
    cell_boxes = shapely.box(
        lon0 + cols * size, lat0 + rows * size, lon0 + (cols + 1) * size, lat0 + (rows + 1) * size
    ).ravel()
    value = locator.raster.ravel()
    geoms = np.asarray(cells, dtype=object)
    inside = value >= 0
    assert inside.sum() > 0.5 * value.size and (value == -1).any() and (value == -2).any()
    assert shapely.covers(geoms[value[inside]], cell_boxes[inside]).all()
    assert not shapely.STRtree(geoms).query(cell_boxes[value == -1], predicate="intersects").size
    pure = value >= -1
    touched = shapely.STRtree(shapely.boundary(geoms)).query(cell_boxes, predicate="intersects")[0]
    assert not pure[touched].any()
    assert (value == -2).mean() < 0.25  # the exact test is the exception, not the rule


def test_real_dongguan_towns_agree_with_postgis_including_their_overlaps() -> None:
    """The 33 real town polygons (detailed coasts, small overlaps between neighbours) as if they were grids."""
    # Read beside the module: under pytest, tests/grids can shadow the grids package for importlib.resources.
    towns = gpd.read_file(Path(grids.locate.__file__).resolve().parent / "data" / "dongguan_towns.geojson")
    codes, geoms = towns["code"].tolist(), list(towns.geometry)
    locator = GridLocator.build(codes, geoms)
    rng = np.random.default_rng(33)
    minx, miny, maxx, maxy = towns.total_bounds
    xy = np.vstack([rng.uniform([minx, miny], [maxx, maxy], (20_000, 2)), boundary_points(geoms, rng, 5_000)])
    expected = brute_force(codes, geoms, xy[:, 0], xy[:, 1])
    assert np.array_equal(locator.locate_index(xy[:, 0], xy[:, 1]), expected)
    assert locator.memory_bytes < 60_000_000


def test_nan_infinite_and_far_away_points_are_in_no_grid() -> None:
    """Missing coordinates (NaN), infinities and points outside the city are -1 / None, never an error."""
    locator = GridLocator.build(["A", "B"], square_tiling(2, 1, 0.01, (LON0, LAT0)))
    lon = np.array([np.nan, LON0 + 0.005, np.inf, -np.inf, 0.0, 1e300, LON0 + 0.015])
    lat = np.array([LAT0 + 0.005, np.nan, LAT0, LAT0, 0.0, LAT0, LAT0 + 0.005])
    assert locator.locate_index(lon, lat).tolist() == [-1, -1, -1, -1, -1, -1, 1]
    assert locator.locate_codes(lon, lat).tolist() == [None, None, None, None, None, None, "B"]


def test_empty_and_multidimensional_inputs_keep_their_shape() -> None:
    """No points give an empty int32 array; a 2-D batch comes back 2-D."""
    locator = GridLocator.build(["A", "B"], square_tiling(2, 1, 0.01, (LON0, LAT0)))
    empty = locator.locate_index(np.array([]), np.array([]))
    assert empty.dtype == np.int32 and empty.shape == (0,)
    assert locator.locate_codes([], []).tolist() == []
    lon = np.array([[LON0 + 0.005, LON0 + 0.015], [LON0 - 1, LON0 + 0.01]])
    lat = np.full((2, 2), LAT0 + 0.005)
    assert locator.locate_index(lon, lat).tolist() == [[0, 1], [-1, 0]]


def test_a_locator_without_polygons_or_with_empty_ones_places_nothing() -> None:
    """An empty grid version, or an empty geometry among real ones, never claims a point."""
    nothing = GridLocator.build([], [])
    assert nothing.locate_index([LON0], [LAT0]).tolist() == [-1]
    only_empty = GridLocator.build(["A"], [Polygon()])
    assert only_empty.locate_codes([LON0], [LAT0]).tolist() == [None]
    mixed = GridLocator.build(["A", "B"], [Polygon(), box(LON0, LAT0, LON0 + 0.01, LAT0 + 0.01)])
    assert mixed.locate_codes([LON0 + 0.005, LON0], [LAT0 + 0.005, LAT0]).tolist() == ["B", "B"]


def test_territory_locator_gives_grid_community_and_town_codes() -> None:
    """One lookup yields the grid and its community and town; outside points have None for all three."""
    squares = square_tiling(3, 1, 0.01, (LON0, LAT0))
    territory = TerritoryLocator.build(
        ["441900003001001", "441900003001002", "441900004001001"],
        ["441900003001", "441900003001", "441900004001"],
        ["441900003000", "441900003000", "441900004000"],
        squares,
    )
    hits = territory.locate([LON0 + 0.005, LON0 + 0.025, LON0 - 0.5, LON0 + 0.02], [LAT0 + 0.005] * 3 + [LAT0])
    assert hits.grid_index.tolist() == [0, 2, -1, 1]
    assert hits.grid_code.tolist() == ["441900003001001", "441900004001001", None, "441900003001002"]
    assert hits.community_code.tolist() == ["441900003001", "441900004001", None, "441900003001"]
    assert hits.town_code.tolist() == ["441900003000", "441900004000", None, "441900003000"]
    frame = hits.to_frame()
    assert list(frame.columns) == ["grid_index", "grid_code", "community_code", "town_code"]
    assert frame["town_code"].tolist() == ["441900003000", "441900004000", None, "441900003000"]
    assert territory.grids.codes.tolist()[0] == "441900003001001"


@pytest.mark.parametrize(
    ("codes", "geoms", "cell_deg", "message"),
    [
        (["A", "A"], square_tiling(2, 1, 0.01, (LON0, LAT0)), DEFAULT_CELL_DEG, "duplicate codes"),
        (["A"], square_tiling(2, 1, 0.01, (LON0, LAT0)), DEFAULT_CELL_DEG, "1 codes but 2 geometries"),
        (["A"], [Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])], DEFAULT_CELL_DEG, "invalid geometries"),
        (["A"], [shapely.Point(0, 0)], DEFAULT_CELL_DEG, "not a (Multi)Polygon"),
        ([1], [box(0, 0, 1, 1)], DEFAULT_CELL_DEG, "codes must be strings"),
        (["A"], [box(0, 0, 1, 1)], 0.0, "positive"),
        (["A"], [box(0, 0, 1, 1)], float("nan"), "positive"),
        (["A"], [box(LON0, LAT0, LON0 + 1, LAT0 + 1)], 1e-5, "choose a larger cell_deg"),
        (["A"], [box(LON0, LAT0, LON0 + 1e-6, LAT0 + 1e-6)], 1e-8, "too small"),
    ],
)
def test_unusable_input_is_refused_with_a_clear_message(
    codes: list[str], geoms: list[Polygon], cell_deg: float, message: str
) -> None:
    """Bad codes, geometries or cell sizes raise a LocateError (a GridsError) saying what is wrong."""
    with pytest.raises(LocateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GridLocator.build(codes, geoms, cell_deg=cell_deg)
    assert issubclass(LocateError, GridsError)


def test_mismatched_point_arrays_are_refused() -> None:
    """lon and lat of different shapes (or not numbers) raise a LocateError; so do unequal parent lists."""
    locator = GridLocator.build(["A"], [box(LON0, LAT0, LON0 + 0.01, LAT0 + 0.01)])
    with pytest.raises(LocateError, match="differ in shape"):
        locator.locate_index(np.zeros(3), np.zeros(2))
    with pytest.raises(LocateError, match="numeric"):
        locator.locate_index(["east"], [LAT0])
    with pytest.raises(LocateError, match="differ in length"):
        TerritoryLocator.build(["A"], ["C1", "C2"], ["T"], [box(0, 0, 1, 1)])
