"""Story: an official copies points between GPS, Amap (GCJ-02) and Baidu (BD-09) maps and they land where expected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping, shape

from gis.coords import (
    COORD_SYSTEMS,
    CoordSystem,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    convert_geojson_geometry,
    convert_geometry,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gis.crs import METRIC_EPSG, STORAGE_EPSG, lonlat_to_metric, metric_to_lonlat, to_lonlat, to_metric
from gis.errors import GisError, UnknownCoordSystem

TOWNS_GEOJSON = Path(__file__).resolve().parents[2] / "grids" / "data" / "dongguan_towns.geojson"
GEOD = Geod(ellps="WGS84")

# The Dongguan box: every town and community lies inside it.
dg_lon = st.floats(min_value=113.5, max_value=114.3, allow_nan=False)
dg_lat = st.floats(min_value=22.6, max_value=23.2, allow_nan=False)
dg_points = st.lists(st.tuples(dg_lon, dg_lat), min_size=1, max_size=50)
systems = st.sampled_from(COORD_SYSTEMS)
FAST = settings(max_examples=150, deadline=None)


def metres_apart(lon_a: float, lat_a: float, lon_b: float, lat_b: float) -> float:
    """Geodesic distance in metres between two WGS84-ish positions."""
    return float(GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2])


# ---------------------------------------------------------------- round trips


@FAST
@given(dg_lon, dg_lat)
def test_gps_point_shown_on_amap_and_read_back_is_the_same_spot(lon: float, lat: float) -> None:
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres_apart(lon, lat, back_lon, back_lat) < 0.5
    assert abs(back_lon - lon) < 1e-8 and abs(back_lat - lat) < 1e-8  # in fact far tighter than 0.5 m


@FAST
@given(dg_lon, dg_lat)
def test_gps_point_shown_on_baidu_and_read_back_is_the_same_spot(lon: float, lat: float) -> None:
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres_apart(lon, lat, back_lon, back_lat) < 0.5
    assert abs(back_lon - lon) < 1e-8 and abs(back_lat - lat) < 1e-8


@FAST
@given(dg_lon, dg_lat)
def test_amap_point_moved_to_baidu_and_back_is_the_same_spot(lon: float, lat: float) -> None:
    back_lon, back_lat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert metres_apart(lon, lat, back_lon, back_lat) < 0.5
    assert abs(back_lon - lon) < 1e-8 and abs(back_lat - lat) < 1e-8


@FAST
@given(dg_lon, dg_lat)
def test_reading_an_amap_click_as_gps_inverts_the_forward_offset(lon: float, lat: float) -> None:
    # Start from a GCJ-02 position (what a user clicks on Amap) rather than from WGS84.
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    again_lon, again_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert abs(again_lon - lon) < 1e-8 and abs(again_lat - lat) < 1e-8


# ---------------------------------------------------------------- the offsets themselves


@FAST
@given(dg_lon, dg_lat)
def test_amap_shifts_dongguan_about_half_a_kilometre_north_west_of_east(lon: float, lat: float) -> None:
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    # Around Dongguan GCJ-02 moves points roughly +0.005 deg east and -0.0025 deg south.
    assert 0.003 < gcj_lon - lon < 0.007
    assert -0.004 < gcj_lat - lat < -0.001
    assert 300.0 < metres_apart(lon, lat, gcj_lon, gcj_lat) < 800.0


@FAST
@given(dg_lon, dg_lat)
def test_baidu_is_a_further_shift_of_several_hundred_metres_on_top_of_amap(lon: float, lat: float) -> None:
    bd_lon, bd_lat = gcj02_to_bd09(lon, lat)
    assert 0.005 < bd_lon - lon < 0.008
    assert 0.004 < bd_lat - lat < 0.008
    assert 500.0 < metres_apart(lon, lat, bd_lon, bd_lat) < 1100.0


def test_published_reference_point_in_beijing() -> None:
    # Widely published values for (116.404, 39.915) from the public GCJ-02/BD-09 formulas.
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-10)
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-10)
    assert gcj02_to_bd09(123.0, 45.0) == pytest.approx((123.00636499, 45.00636899), abs=1e-8)


def test_fixed_point_at_dongguan_keeps_its_value() -> None:
    # 东莞 city centre area; pins the implementation so a formula edit cannot slip through unnoticed.
    gcj = wgs84_to_gcj02(113.75, 23.02)
    assert gcj == pytest.approx((113.75519411308146, 23.017277170151782), abs=1e-11)
    assert gcj02_to_wgs84(*gcj) == pytest.approx((113.75, 23.02), abs=1e-10)


@pytest.mark.parametrize(
    ("lon", "lat", "place"),
    [(-0.1276, 51.5072, "London"), (139.6917, 35.6895, "Tokyo"), (151.2093, -33.8688, "Sydney")],
)
def test_outside_china_gcj02_equals_gps_but_baidu_still_shifts(lon: float, lat: float, place: str) -> None:
    assert wgs84_to_gcj02(lon, lat) == (lon, lat), place
    assert gcj02_to_wgs84(lon, lat) == (lon, lat), place
    bd_lon, bd_lat = wgs84_to_bd09(lon, lat)
    assert (bd_lon, bd_lat) != (lon, lat)
    assert bd09_to_wgs84(bd_lon, bd_lat) == pytest.approx((lon, lat), abs=1e-9)


def test_inverse_near_the_china_edge_returns_finite_values() -> None:
    lon = np.linspace(72.0, 72.01, 101)
    lat = np.full_like(lon, 40.0)
    back_lon, back_lat = gcj02_to_wgs84(lon, lat)
    assert np.isfinite(back_lon).all() and np.isfinite(back_lat).all()
    assert np.all(np.abs(back_lon - lon) < 0.01)


# ---------------------------------------------------------------- arrays and scalars


@FAST
@given(dg_points)
def test_converting_a_whole_array_matches_converting_points_one_by_one(points: list[tuple[float, float]]) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    for src in COORD_SYSTEMS:
        for dst in COORD_SYSTEMS:
            arr_lon, arr_lat = convert(lon, lat, src, dst)
            one_by_one = [convert(x, y, src, dst) for x, y in points]
            np.testing.assert_allclose(arr_lon, [p[0] for p in one_by_one], rtol=0, atol=1e-12)
            np.testing.assert_allclose(arr_lat, [p[1] for p in one_by_one], rtol=0, atol=1e-12)


def test_floats_give_floats_and_arrays_keep_their_shape() -> None:
    lon, lat = wgs84_to_bd09(113.75, 23.02)
    assert type(lon) is float and type(lat) is float
    grid_lon, grid_lat = np.meshgrid(np.linspace(113.5, 114.3, 4), np.linspace(22.6, 23.2, 3))
    out_lon, out_lat = bd09_to_wgs84(grid_lon, grid_lat)
    assert isinstance(out_lon, np.ndarray) and out_lon.shape == (3, 4) and out_lat.shape == (3, 4)
    assert out_lon.dtype == np.float64
    assert not np.shares_memory(out_lon, grid_lon)


@given(dg_lon, dg_lat, systems)
@settings(max_examples=50, deadline=None)
def test_converting_to_the_same_system_changes_nothing(lon: float, lat: float, system: CoordSystem) -> None:
    assert convert(lon, lat, system, system) == (lon, lat)


@pytest.mark.parametrize(
    ("src", "dst", "named"),
    [
        ("wgs84", "gcj02", wgs84_to_gcj02),
        ("gcj02", "wgs84", gcj02_to_wgs84),
        ("gcj02", "bd09", gcj02_to_bd09),
        ("bd09", "gcj02", bd09_to_gcj02),
        ("wgs84", "bd09", wgs84_to_bd09),
        ("bd09", "wgs84", bd09_to_wgs84),
    ],
)
def test_convert_agrees_with_the_named_functions(src: CoordSystem, dst: CoordSystem, named: object) -> None:
    assert callable(named)
    assert convert(113.9, 22.9, src, dst) == named(113.9, 22.9)


def test_an_unknown_coordinate_system_is_refused_by_name() -> None:
    with pytest.raises(UnknownCoordSystem, match="mercator"):
        convert(113.9, 22.9, "wgs84", "mercator")  # type: ignore[arg-type]
    with pytest.raises(GisError):
        convert_geometry(Point(113.9, 22.9), "baidu", "wgs84")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        convert_geojson_geometry({"type": "Point", "coordinates": [113.9, 22.9]}, "wgs84", "WGS84")  # type: ignore[arg-type]


# ---------------------------------------------------------------- geometries and GeoJSON


@FAST
@given(dg_points, systems, systems)
def test_converted_line_keeps_every_vertex_each_moved_like_a_point(
    points: list[tuple[float, float]], src: CoordSystem, dst: CoordSystem
) -> None:
    line = LineString(points * 2 if len(points) == 1 else points)
    moved = convert_geometry(line, src, dst)
    assert isinstance(moved, LineString)
    assert shapely.get_num_coordinates(moved) == shapely.get_num_coordinates(line)
    coords = shapely.get_coordinates(line)
    expected_lon, expected_lat = convert(coords[:, 0], coords[:, 1], src, dst)
    np.testing.assert_allclose(
        shapely.get_coordinates(moved), np.column_stack([expected_lon, expected_lat]), atol=1e-12
    )


def test_polygon_with_hole_and_height_keeps_its_structure() -> None:
    outer = box(113.70, 22.95, 113.80, 23.05)
    hole = box(113.74, 22.99, 113.76, 23.01)
    poly = shapely.force_3d(Polygon(outer.exterior.coords, [hole.exterior.coords]), 12.5)
    multi = MultiPolygon([poly, box(113.9, 22.7, 114.0, 22.8)])
    moved = convert_geometry(multi, "wgs84", "gcj02")
    assert isinstance(moved, MultiPolygon) and len(moved.geoms) == 2
    assert len(moved.geoms[0].interiors) == 1
    assert moved.geoms[0].has_z and set(shapely.get_coordinates(moved.geoms[0], include_z=True)[:, 2]) == {12.5}
    assert shapely.get_num_coordinates(moved) == shapely.get_num_coordinates(multi)
    assert moved.is_valid
    back = convert_geometry(moved, "gcj02", "wgs84")
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(multi), atol=1e-9)


def test_every_dongguan_town_survives_a_trip_to_baidu_and_back() -> None:
    features = json.loads(TOWNS_GEOJSON.read_text(encoding="utf-8"))["features"]
    towns = [shape(f["geometry"]) for f in features]
    assert len(towns) == 33
    for town in towns:
        on_baidu = convert_geometry(town, "wgs84", "bd09")
        back = convert_geometry(on_baidu, "bd09", "wgs84")
        assert shapely.get_num_coordinates(on_baidu) == shapely.get_num_coordinates(town)
        assert shapely.hausdorff_distance(to_metric(back), to_metric(town)) < 0.01  # metres
        # The offset is not a rigid shift: it stretches towns by up to ~0.4 %, which is why areas
        # must be measured on the WGS84 geometry, never on a basemap-offset copy.
        assert to_metric(on_baidu).area == pytest.approx(to_metric(town).area, rel=1e-2)


def test_geojson_geometry_converts_like_the_shapely_geometry() -> None:
    poly = Polygon(
        box(113.70, 22.95, 113.80, 23.05).exterior.coords, [box(113.74, 22.99, 113.76, 23.01).exterior.coords]
    )
    doc = dict(mapping(poly))
    doc["bbox"] = list(poly.bounds)
    out = convert_geojson_geometry(doc, "wgs84", "bd09")
    assert out["type"] == "Polygon" and "bbox" not in out  # a stale bbox is dropped, not carried along
    assert len(out["coordinates"]) == 2 and len(out["coordinates"][0]) == 5
    json.dumps(out)  # plain lists and floats only
    np.testing.assert_allclose(
        shapely.get_coordinates(shape(out)),
        shapely.get_coordinates(convert_geometry(poly, "wgs84", "bd09")),
        atol=1e-12,
    )
    assert doc["coordinates"][0][0] == (113.8, 22.95)  # the input is left untouched


def test_geojson_collections_points_and_heights() -> None:
    doc = {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [113.75, 23.02, 30]},
            {
                "type": "MultiLineString",
                "coordinates": [[[113.7, 22.9], [113.8, 23.0]], [[114.0, 22.7], [114.1, 22.8]]],
            },
            {"type": "Point", "coordinates": []},
        ],
    }
    out = convert_geojson_geometry(doc, "wgs84", "gcj02")
    point, lines, empty = out["geometries"]
    assert point["coordinates"][:2] == pytest.approx(list(wgs84_to_gcj02(113.75, 23.02)))
    assert point["coordinates"][2] == 30
    assert [len(part) for part in lines["coordinates"]] == [2, 2]
    assert lines["coordinates"][1][0] == pytest.approx(list(wgs84_to_gcj02(114.0, 22.7)))
    assert empty["coordinates"] == []


# ---------------------------------------------------------------- metric projection


def test_metric_and_storage_crs_are_the_project_ones() -> None:
    assert (METRIC_EPSG, STORAGE_EPSG) == (4547, 4326)
    x_m, y_m = lonlat_to_metric(np.array([114.0]), np.array([23.0]))
    # 114E is the central meridian of EPSG:4547, so it maps to the 500 km false easting.
    assert x_m[0] == pytest.approx(500_000.0, abs=1e-6)
    assert 2_540_000 < y_m[0] < 2_550_000


@FAST
@given(dg_points)
def test_metric_round_trip_is_below_a_millimetre(points: list[tuple[float, float]]) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    x_m, y_m = lonlat_to_metric(lon, lat)
    assert np.all((x_m > 440_000) & (x_m < 540_000)) and np.all((y_m > 2_490_000) & (y_m < 2_570_000))
    back_lon, back_lat = metric_to_lonlat(x_m, y_m)
    again_x, again_y = lonlat_to_metric(back_lon, back_lat)
    assert np.max(np.hypot(again_x - x_m, again_y - y_m)) < 1e-3
    _, _, dist_m = GEOD.inv(lon, lat, back_lon, back_lat)
    assert np.max(dist_m) < 1e-3


def test_metric_distances_match_the_ellipsoid_in_dongguan() -> None:
    # Dongguan straddles the projection's central meridian, so projected metres are true metres to ~1e-4.
    x_m, y_m = lonlat_to_metric([113.6, 114.2], [22.7, 23.1])
    projected = float(np.hypot(x_m[1] - x_m[0], y_m[1] - y_m[0]))
    assert projected == pytest.approx(metres_apart(113.6, 22.7, 114.2, 23.1), rel=2e-4)


def test_geometry_to_metric_and_back() -> None:
    square = box(113.75, 23.00, 113.76, 23.01)
    in_metres = to_metric(square)
    # 0.01 deg is ~1,024 m east-west at this latitude and ~1,107 m north-south.
    assert in_metres.area == pytest.approx(1024 * 1107, rel=0.01)
    assert shapely.get_num_coordinates(in_metres) == 5
    back = to_lonlat(in_metres)
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(square), atol=1e-10)
    assert to_metric(Point(114.0, 23.0, 7.0)).z == 7.0
