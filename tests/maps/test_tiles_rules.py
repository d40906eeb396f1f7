"""The tile math a map relies on: a point lies in the tile named for it, tiles cover the world edge to edge, and a
Chinese basemap's shift of a tile is true to well under a pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.coords import CoordSystem, wgs84_to_gcj02
from maps.errors import InvalidLayerRequest, UnknownLayer
from maps.page import DONGGUAN_BOUNDS_LON_LAT
from maps.tiles import (
    HALF_WORLD_M,
    LAYERS,
    MAX_LATITUDE,
    MVT_EXTENT,
    TILE_SIZE_PX,
    Tile,
    TileLayer,
    check_tile,
    cluster_cell_m,
    cluster_points,
    layer_spec,
    lon_lat_to_mercator,
    mercator_arrays,
    mercator_to_lon_lat,
    tile_bounds_lon_lat,
    tile_bounds_m,
    tile_of_lon_lat,
    tile_shift,
    tile_width_m,
    tilejson,
)

zooms = st.integers(min_value=0, max_value=22)
lons = st.floats(min_value=-180.0, max_value=179.999999, allow_nan=False)
lats = st.floats(min_value=-MAX_LATITUDE + 1e-6, max_value=MAX_LATITUDE - 1e-6, allow_nan=False)
west, south, east, north = DONGGUAN_BOUNDS_LON_LAT
dongguan_lons = st.floats(min_value=west, max_value=east)
dongguan_lats = st.floats(min_value=south, max_value=north)


@st.composite
def tiles(draw: st.DrawFn) -> Tile:
    """Any valid tile of any zoom."""
    z = draw(zooms)
    return Tile(z, draw(st.integers(0, 2**z - 1)), draw(st.integers(0, 2**z - 1)))


@given(lons, lats, zooms)
def test_a_point_lies_in_the_tile_named_for_it(lon: float, lat: float, z: int) -> None:
    tile = tile_of_lon_lat(lon, lat, z)
    tile_west, tile_south, tile_east, tile_north = tile_bounds_lon_lat(tile)
    slack = 1e-9
    assert tile_west - slack <= lon <= tile_east + slack
    assert tile_south - slack <= lat <= tile_north + slack


@given(tiles())
def test_a_tile_s_centre_names_the_tile_again(tile: Tile) -> None:
    tile_west, tile_south, tile_east, tile_north = tile_bounds_lon_lat(tile)
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    lon, lat = mercator_to_lon_lat((xmin + xmax) / 2, (ymin + ymax) / 2)
    assert tile_of_lon_lat(lon, lat, tile.z) == tile
    assert tile_west < tile_east and tile_south < tile_north


@given(tiles())
def test_tiles_are_square_and_share_their_edges_with_their_neighbours(tile: Tile) -> None:
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    assert math.isclose(xmax - xmin, tile_width_m(tile.z)) and math.isclose(ymax - ymin, tile_width_m(tile.z))
    assert -HALF_WORLD_M - 1e-6 <= xmin < xmax <= HALF_WORLD_M + 1e-6
    if tile.x + 1 < 2**tile.z:
        assert math.isclose(tile_bounds_m(Tile(tile.z, tile.x + 1, tile.y))[0], xmax, abs_tol=1e-6)
    if tile.y + 1 < 2**tile.z:
        assert math.isclose(tile_bounds_m(Tile(tile.z, tile.x, tile.y + 1))[3], ymin, abs_tol=1e-6)


@given(tiles())
def test_the_four_children_of_a_tile_cover_it_exactly(tile: Tile) -> None:
    if tile.z == 22:
        return
    parent = tile_bounds_m(tile)
    children = [tile_bounds_m(Tile(tile.z + 1, 2 * tile.x + dx, 2 * tile.y + dy)) for dx in (0, 1) for dy in (0, 1)]
    assert math.isclose(min(c[0] for c in children), parent[0], abs_tol=1e-6)
    assert math.isclose(min(c[1] for c in children), parent[1], abs_tol=1e-6)
    assert math.isclose(max(c[2] for c in children), parent[2], abs_tol=1e-6)
    assert math.isclose(max(c[3] for c in children), parent[3], abs_tol=1e-6)


@given(lons, lats)
def test_mercator_round_trips(lon: float, lat: float) -> None:
    back_lon, back_lat = mercator_to_lon_lat(*lon_lat_to_mercator(lon, lat))
    assert math.isclose(back_lon, lon, abs_tol=1e-9) and math.isclose(back_lat, lat, abs_tol=1e-9)


@given(st.integers(0, 22))
def test_cluster_cells_divide_a_tile_so_no_entity_counts_twice(z: int) -> None:
    cells = tile_width_m(z) / cluster_cell_m(z)
    assert cells == round(cells) and cells >= 1


@given(dongguan_lons, dongguan_lats, st.integers(8, 20))
def test_a_tile_s_shift_puts_dongguan_on_a_gcj02_basemap_well_within_a_pixel(lon: float, lat: float, z: int) -> None:
    tile = tile_of_lon_lat(lon, lat, z)
    shift = tile_shift(tile, "gcj02")
    exact = lon_lat_to_mercator(*(float(v) for v in wgs84_to_gcj02(lon, lat)))
    moved = shift.apply(*lon_lat_to_mercator(lon, lat))
    pixel_m = tile_width_m(z) / TILE_SIZE_PX
    error_px = math.hypot(moved[0] - exact[0], moved[1] - exact[1]) / pixel_m
    assert error_px < (0.05 if z >= 14 else 0.5)
    assert 500 < math.hypot(shift.dx, shift.dy) < 800, "GCJ-02 moves Dongguan by some 600 to 700 metres"
    assert tile_shift(tile, "wgs84").apply(*lon_lat_to_mercator(lon, lat)) == lon_lat_to_mercator(lon, lat)


@pytest.mark.parametrize(
    ("layer", "z", "x", "y", "reason"),
    [
        ("towns", 23, 0, 0, "0..22"),
        ("towns", -1, 0, 0, "0..22"),
        ("towns", 2, 4, 0, "0..3"),
        ("towns", 2, 0, -1, "0..3"),
        ("grids", 8, 0, 0, "starts at zoom 9"),
    ],
)
def test_a_tile_outside_its_layer_s_range_is_refused_with_the_range(
    layer: str, z: int, x: int, y: int, reason: str
) -> None:
    with pytest.raises(InvalidLayerRequest, match=reason.replace(".", r"\.")):
        check_tile(layer_spec(layer), z, x, y)


def test_an_unknown_layer_names_the_layers_there_are() -> None:
    with pytest.raises(UnknownLayer, match="towns, communities, grids, entities, tasks, clues"):
        layer_spec("roads")


def test_the_tilejson_of_every_layer_points_at_its_tiles_over_dongguan() -> None:
    for layer in TileLayer:
        spec = LAYERS[layer]
        document = tilejson(spec)
        assert document["tiles"] == [f"/tiles/{layer.value}/{{z}}/{{x}}/{{y}}.mvt"]
        assert document["bounds"] == list(DONGGUAN_BOUNDS_LON_LAT)
        assert document["vector_layers"][0]["fields"] == spec.fields
        assert spec.minzoom <= document["center"][2] <= spec.maxzoom
    assert MVT_EXTENT == 4096


@given(
    st.lists(st.tuples(dongguan_lons, dongguan_lats), min_size=1, max_size=60),
    st.integers(8, 13),
    st.sampled_from(["wgs84", "gcj02"]),
)
def test_clusters_count_every_entity_once_across_tiles(
    points: list[tuple[float, float]], z: int, coords: CoordSystem
) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    x_m, y_m = mercator_arrays(lon, lat)
    first = tile_of_lon_lat(west - 0.02, north + 0.02, z)
    last = tile_of_lon_lat(east + 0.02, south - 0.02, z)
    counted = 0
    for x in range(first.x, last.x + 1):
        for y in range(first.y, last.y + 1):
            tile = Tile(z, x, y)
            clusters = cluster_points(x_m, y_m, tile, tile_shift(tile, coords))
            counted += sum(clusters.counts)
            xmin, ymin, xmax, ymax = tile_bounds_m(tile)
            assert all(xmin <= cx <= xmax for cx in clusters.x_m) and all(ymin <= cy <= ymax for cy in clusters.y_m)
            assert len(set(clusters.ids)) == len(clusters.ids)
    assert counted == len(points)
