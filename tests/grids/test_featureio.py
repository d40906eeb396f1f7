"""Story: an official hands in a boundary file; broken files and bad features are refused with clear reasons."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

import grids.topology
from grids.codes import grid_code
from grids.errors import FeatureFileError, GridsError, Rejection, format_rejections
from grids.featureio import read_features, validate_features
from grids.topology import repair_towns

METRIC = 4547
ORIGIN_X, ORIGIN_Y = 420_000.0, 2_540_000.0  # a spot in Dongguan, EPSG:4547 metres

TOWN_A, TOWN_B = "441900101000", "441900102000"
COMM_A1, COMM_A2 = "441900101001", "441900101002"


def lonlat(geom: BaseGeometry) -> BaseGeometry:
    """A geometry drawn in metres around ORIGIN, in WGS84."""
    moved = shapely.affinity.translate(geom, ORIGIN_X, ORIGIN_Y)
    return gpd.GeoSeries([moved], crs=METRIC).to_crs(4326).iloc[0]


def frame(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    """Features drawn in local metres, stored as WGS84 like a real import file."""
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(
        rows, geometry=[lonlat(g) if isinstance(g, BaseGeometry) else None for g in geoms], crs=4326
    )


@pytest.fixture(scope="module")
def towns() -> dict[str, BaseGeometry]:
    return {TOWN_A: lonlat(box(0, 0, 2000, 2000)), TOWN_B: lonlat(box(2000, 0, 4000, 2000))}


@pytest.fixture(scope="module")
def communities() -> dict[str, BaseGeometry]:
    return {COMM_A1: lonlat(box(0, 0, 1000, 2000)), COMM_A2: lonlat(box(1000, 0, 2000, 2000))}


def two_communities() -> gpd.GeoDataFrame:
    return frame(
        [
            {"code": COMM_A1, "name": "甲村民委员会", "town_code": TOWN_A, "geometry": box(0, 0, 1000, 2000)},
            {"code": COMM_A2, "name": "乙社区居民委员会", "town_code": TOWN_A, "geometry": box(1000, 0, 2000, 2000)},
        ]
    )


def reasons(rejections: list[Rejection]) -> list[tuple[int, str]]:
    return [(r.index, r.reason_code) for r in rejections]


# --- reading files --------------------------------------------------------------------------------------------


def test_a_truncated_geojson_is_refused_with_the_path_and_the_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.geojson"
    pyogrio.write_dataframe(two_communities(), good, driver="GeoJSON")
    broken = tmp_path / "社区边界.geojson"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FeatureFileError) as info:
        read_features(broken)
    message = str(info.value)
    assert str(broken) in message
    assert "cannot read features" in message
    assert "GeoJSON" in message or "Unterminated" in message  # GDAL's own words
    assert isinstance(info.value, GridsError)


def test_missing_empty_and_non_spatial_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FeatureFileError, match="no such file"):
        read_features(tmp_path / "nothing.geojson")
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(FeatureFileError, match="no features"):
        read_features(empty)
    junk = tmp_path / "notes.geojson"
    junk.write_text("这不是地理数据", encoding="utf-8")
    with pytest.raises(FeatureFileError, match="notes.geojson"):
        read_features(junk)


def test_geopackage_round_trip_keeps_codes_and_shapes(tmp_path: Path, towns: dict[str, BaseGeometry]) -> None:
    original = two_communities()
    path = tmp_path / "communities.gpkg"
    pyogrio.write_dataframe(original, path, driver="GPKG")
    read = read_features(path)
    assert read.crs.to_epsg() == 4326
    assert list(read["code"]) == [COMM_A1, COMM_A2]
    assert list(read["name"]) == ["甲村民委员会", "乙社区居民委员会"]
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(read.geometry, original.geometry, strict=True))
    assert validate_features(read, "community", parent_geoms=towns, existing_sibling_geoms={}) == []


@pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
def test_shapefile_round_trip_restores_the_cut_column_name(
    tmp_path: Path, communities: dict[str, BaseGeometry]
) -> None:
    grids = frame(
        [
            {"code": COMM_A1 + "001", "community_code": COMM_A1, "name": "第1网格", "geometry": box(0, 0, 1000, 1000)},
            {
                "code": COMM_A1 + "002",
                "community_code": COMM_A1,
                "name": "第2网格",
                "geometry": box(0, 1000, 1000, 2000),
            },
        ]
    )
    path = tmp_path / "grids.shp"
    pyogrio.write_dataframe(grids, path, driver="ESRI Shapefile", encoding="UTF-8")
    assert "community_" in pyogrio.read_info(path)["fields"]  # the DBF format cut the name
    read = read_features(path)
    assert list(read["community_code"]) == [COMM_A1, COMM_A1]
    assert list(read["name"]) == ["第1网格", "第2网格"]
    assert validate_features(read, "grid", parent_geoms=communities, existing_sibling_geoms={}) == []


def test_a_file_in_the_metric_crs_is_reprojected_to_wgs84(tmp_path: Path) -> None:
    original = two_communities()
    path = tmp_path / "metric.gpkg"
    pyogrio.write_dataframe(original.to_crs(METRIC), path, driver="GPKG")
    assert pyogrio.read_info(path)["crs"] == "EPSG:4547"
    read = read_features(path)
    assert read.crs.to_epsg() == 4326
    for a, b in zip(read.geometry, original.geometry, strict=True):
        assert shapely.hausdorff_distance(a, b) < 1e-8  # degrees, about a millimetre


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_file_without_crs_is_taken_as_wgs84(tmp_path: Path) -> None:
    original = two_communities()
    path = tmp_path / "no_crs.shp"
    pyogrio.write_dataframe(original.set_crs(None, allow_override=True), path, driver="ESRI Shapefile")
    assert not (tmp_path / "no_crs.prj").exists()
    read = read_features(path)
    assert read.crs.to_epsg() == 4326
    # Shapefiles store outer rings clockwise, so compare the shapes, not the vertex order.
    assert shapely.normalize(read.geometry.iloc[0]).equals_exact(shapely.normalize(original.geometry.iloc[0]), 1e-9)


def test_numeric_codes_are_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "numeric.geojson"
    square = shapely.to_geojson(lonlat(box(0, 0, 100, 100)))
    path.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        f'{{"code": 441900101000, "name": "石碣镇"}}, "geometry": {square}}}]}}',
        encoding="utf-8",
    )
    read = read_features(path)
    assert list(read["code"]) == [TOWN_A]


# --- validating features --------------------------------------------------------------------------------------


def test_good_communities_pass(towns: dict[str, BaseGeometry]) -> None:
    assert validate_features(two_communities(), "community", parent_geoms=towns, existing_sibling_geoms={}) == []


def test_a_bow_tie_polygon_is_refused_with_shapelys_reason(towns: dict[str, BaseGeometry]) -> None:
    features = two_communities()
    features.loc[1, "geometry"] = lonlat(Polygon([(1000, 0), (2000, 2000), (2000, 0), (1000, 2000)]))
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(1, "invalid_geometry")]
    assert "Self-intersection" in rejections[0].detail
    assert rejections[0].code == COMM_A2


def test_missing_and_non_polygonal_geometries_are_refused(towns: dict[str, BaseGeometry]) -> None:
    features = two_communities()
    features.loc[0, "geometry"] = None
    features.loc[1, "geometry"] = lonlat(LineString([(1000, 0), (2000, 2000)]))
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "missing_geometry"), (1, "not_polygonal")]
    assert "LineString" in rejections[1].detail


def test_an_unknown_or_missing_parent_is_refused(towns: dict[str, BaseGeometry]) -> None:
    features = two_communities()
    features.loc[0, "town_code"] = "441900199000"
    features.loc[0, "code"] = "441900199001"
    features.loc[1, "town_code"] = None
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "unknown_parent"), (1, "missing_parent_code")]
    assert "441900199000" in rejections[0].detail


def test_a_feature_reaching_outside_its_parent_is_refused_beyond_the_tolerance(
    towns: dict[str, BaseGeometry],
) -> None:
    features = two_communities()
    features.loc[1, "geometry"] = lonlat(box(1000, 0, 2010, 2000))  # 10 m × 2000 m into the next town
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(1, "outside_parent")]
    assert "20,0" in rejections[0].detail and TOWN_A in rejections[0].detail
    # A sliver under the tolerance (0.0002 m × 2000 m = 0.4 m²) is accepted.
    features.loc[1, "geometry"] = lonlat(box(1000, 0, 2000.0002, 2000))
    assert validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={}) == []


def test_overlapping_siblings_are_both_refused_but_neighbours_that_touch_are_fine(
    towns: dict[str, BaseGeometry],
) -> None:
    features = two_communities()
    features.loc[1, "geometry"] = lonlat(box(990, 0, 2000, 2000))
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "overlaps_sibling"), (1, "overlaps_sibling")]
    assert COMM_A2 in rejections[0].detail and "20,0" in rejections[0].detail
    assert COMM_A1 in rejections[1].detail


def test_overlapping_a_community_that_stays_is_refused(towns: dict[str, BaseGeometry]) -> None:
    staying = {COMM_A1: lonlat(box(0, 0, 1000, 2000))}
    features = two_communities().iloc[[1]].reset_index(drop=True)
    assert validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms=staying) == []
    features.loc[0, "geometry"] = lonlat(box(900, 0, 2000, 2000))
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms=staying)
    assert reasons(rejections) == [(0, "overlaps_existing")]
    assert COMM_A1 in rejections[0].detail
    features.loc[0, "code"] = COMM_A1
    features.loc[0, "geometry"] = lonlat(box(1000, 0, 2000, 2000))
    assert reasons(validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms=staying)) == [
        (0, "code_exists")
    ]


def test_duplicate_and_malformed_codes_are_refused(
    towns: dict[str, BaseGeometry], communities: dict[str, BaseGeometry]
) -> None:
    features = two_communities()
    features.loc[1, "code"] = COMM_A1
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "duplicate_code"), (1, "duplicate_code")]

    features = two_communities()
    features.loc[0, "code"] = "44190010100"  # 11 digits
    features.loc[1, "code"] = "441900102002"  # belongs to another town
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "malformed_code"), (1, "code_parent_mismatch")]

    grids = frame(
        [
            {"code": COMM_A2 + "001", "community_code": COMM_A1, "geometry": box(0, 0, 1000, 1000)},
            {"code": None, "community_code": COMM_A1, "geometry": box(0, 1000, 1000, 2000)},
        ]
    )
    rejections = validate_features(grids, "grid", parent_geoms=communities, existing_sibling_geoms={})
    assert reasons(rejections) == [(0, "code_parent_mismatch"), (1, "missing_code")]


def test_bad_kind_and_population_are_refused(towns: dict[str, BaseGeometry]) -> None:
    features = two_communities()
    features["kind"] = ["village_committee", "村委会"]
    features["population"] = [1200, -5]
    rejections = validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    assert reasons(rejections) == [(1, "bad_kind"), (1, "bad_population")]


def test_a_file_lacking_required_columns_is_refused_as_a_whole(towns: dict[str, BaseGeometry]) -> None:
    features = two_communities().drop(columns="town_code")
    with pytest.raises(FeatureFileError, match="town_code"):
        validate_features(features, "community", parent_geoms=towns, existing_sibling_geoms={})
    with pytest.raises(FeatureFileError, match="unknown level"):
        validate_features(two_communities(), "province", parent_geoms={}, existing_sibling_geoms={})


def test_the_real_towns_overlap_until_repaired() -> None:
    towns_file = Path(grids.topology.__file__).resolve().parent / "data" / "dongguan_towns.geojson"
    source = read_features(towns_file)[["code", "name", "geometry"]]
    raw = validate_features(source, "town", parent_geoms={}, existing_sibling_geoms={})
    pairs = {r.code for r in raw}
    assert {r.reason_code for r in raw} == {"overlaps_sibling"}
    assert pairs == {"441900003000", "441900006000", "441900101000", "441900102000"}  # 东城/莞城, 石碣/石龙
    repaired = repair_towns(source).towns
    assert validate_features(repaired, "town", parent_geoms={}, existing_sibling_geoms={}) == []


def test_three_thousand_grids_are_checked_quickly(communities: dict[str, BaseGeometry]) -> None:
    side = 2000 / 60  # 60 × 50 cells, 3,000 grids inside 甲村
    cells = [box(c * 1000 / 50, r * side, (c + 1) * 1000 / 50, (r + 1) * side) for r in range(60) for c in range(50)]
    geoms = gpd.GeoSeries([shapely.affinity.translate(g, ORIGIN_X, ORIGIN_Y) for g in cells], crs=METRIC).to_crs(4326)
    grids = gpd.GeoDataFrame(
        {"code": [grid_code(COMM_A1, i % 1000) for i in range(3000)], "community_code": COMM_A1}, geometry=geoms
    )
    t0 = time.perf_counter()
    rejections = validate_features(grids, "grid", parent_geoms=communities, existing_sibling_geoms={})
    assert time.perf_counter() - t0 < 10
    # Codes repeat every 1,000 (a grid code has only 3 digits for the sequence); nothing else is wrong.
    assert {r.reason_code for r in rejections} == {"duplicate_code"}
    assert len(rejections) == 3000


def test_the_cli_text_lists_each_rejection_and_sums_them_up() -> None:
    rejections = [
        Rejection(0, COMM_A1, "overlaps_sibling", "overlaps row 1 (441900101002) by 20,000.0 m²"),
        Rejection(1, COMM_A2, "overlaps_sibling", "overlaps row 0 (441900101001) by 20,000.0 m²"),
        Rejection(2, None, "missing_code", "the feature has no code"),
    ]
    text = format_rejections(rejections)
    lines = text.splitlines()
    assert lines[0] == f"row 0  {COMM_A1}  overlaps_sibling: overlaps row 1 (441900101002) by 20,000.0 m²"
    assert lines[2] == "row 2  (no code)  missing_code: the feature has no code"
    assert lines[-1] == "3 problem(s) in 3 feature(s): missing_code 1, overlaps_sibling 2"
    many = format_rejections(rejections * 100, limit=10)
    assert "... and 290 more" in many
    assert format_rejections([]) == ""


# --- property: a tiling passes, one shifted cell is caught --------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    cols=st.integers(2, 6),
    rows=st.integers(1, 5),
    shifted=st.integers(0, 29),
    shift_m=st.floats(2.0, 40.0, allow_nan=False),
)
def test_a_tiling_passes_and_a_cell_pushed_into_its_neighbour_is_caught(
    cols: int, rows: int, shifted: int, shift_m: float
) -> None:
    width, height = 1000 / cols, 2000 / rows
    cells = [box(c * width, r * height, (c + 1) * width, (r + 1) * height) for r in range(rows) for c in range(cols)]
    communities = {COMM_A1: lonlat(box(0, 0, 1000, 2000))}

    def grids(polygons: list[Polygon]) -> gpd.GeoDataFrame:
        return frame(
            [
                {"code": grid_code(COMM_A1, i + 1), "community_code": COMM_A1, "geometry": MultiPolygon([p])}
                for i, p in enumerate(polygons)
            ]
        )

    assert validate_features(grids(cells), "grid", parent_geoms=communities, existing_sibling_geoms={}) == []
    k = shifted % len(cells)
    moved = list(cells)
    # Push cell k sideways, towards a neighbour that exists (west for the last column).
    direction = -1 if k % cols == cols - 1 else 1
    moved[k] = shapely.affinity.translate(cells[k], xoff=direction * shift_m)
    neighbour = k + direction
    rejections = validate_features(grids(moved), "grid", parent_geoms=communities, existing_sibling_geoms={})
    assert {r.index for r in rejections} == {k, neighbour}
    assert {r.reason_code for r in rejections} == {"overlaps_sibling"}
    detail = next(r.detail for r in rejections if r.index == k)
    overlap_m2 = float(detail.split(" by ")[1].removesuffix(" m²").replace(",", ""))
    assert overlap_m2 == pytest.approx(shift_m * height, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(number=st.integers(1, 999), spelling=st.sampled_from(["int", "float", "padded"]))
def test_a_town_code_is_understood_however_the_file_spells_it(number: int, spelling: str) -> None:
    canonical = f"441900{number:03d}000"
    value: object = {"int": int(canonical), "float": float(canonical), "padded": f"  {canonical} "}[spelling]
    towns = gpd.GeoDataFrame(
        {"code": [value, value], "name": ["甲镇", "乙镇"]},
        geometry=[lonlat(box(0, 0, 100, 100)), lonlat(box(100, 0, 200, 100))],
        crs=4326,
    )
    rejections = validate_features(towns, "town", parent_geoms={}, existing_sibling_geoms={})
    # The only problem is the repeated code, reported under its canonical spelling.
    assert [(r.code, r.reason_code) for r in rejections] == [(canonical, "duplicate_code")] * 2
