"""Story: the real town polygons have gaps and overlaps; after repair the 33 towns tile Dongguan exactly."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

import grids.topology
from grids.errors import GridsError, TopologyError
from grids.models import town_repair
from grids.topology import (
    RULE_LONGEST,
    RULE_TIE,
    RepairResult,
    format_report,
    repair_records,
    repair_towns,
)

METRIC = 4547
# Located through the module, not through the package, so that tests/grids cannot shadow the data directory.
TOWNS_FILE = Path(grids.topology.__file__).resolve().parent / "data" / "dongguan_towns.geojson"
# Snapping to 1 mm moves each vertex by under 0.71 mm, so an area can shift by at most this much per metre of boundary.
SNAP_M2_PER_M = 1e-3


@pytest.fixture(scope="module")
def source() -> gpd.GeoDataFrame:
    return gpd.read_file(TOWNS_FILE, engine="pyogrio")[["code", "name", "geometry"]]


@pytest.fixture(scope="module")
def timed_repair(source: gpd.GeoDataFrame) -> tuple[RepairResult, float]:
    t0 = time.perf_counter()
    result = repair_towns(source)
    return result, time.perf_counter() - t0


@pytest.fixture(scope="module")
def repaired(timed_repair: tuple[RepairResult, float]) -> RepairResult:
    return timed_repair[0]


def metric(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.geometry.to_crs(METRIC).to_numpy(), dtype=object)


def max_pairwise_overlap_m2(geoms: np.ndarray) -> float:
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    if not pairs.any():
        return 0.0
    return float(shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])).max())


def hole_areas_m2(geom: shapely.Geometry) -> list[float]:
    return [Polygon(ring).area for part in shapely.get_parts(geom) for ring in part.interiors]


def names_of(source: gpd.GeoDataFrame, codes: Sequence[str]) -> set[str]:
    by_code = dict(zip(source["code"], source["name"], strict=True))
    return {by_code[c] for c in codes}


# --- the real data --------------------------------------------------------------------------------------------


def test_the_repair_of_33_towns_takes_a_few_seconds_and_keeps_every_town(
    source: gpd.GeoDataFrame, timed_repair: tuple[RepairResult, float]
) -> None:
    result, seconds = timed_repair
    assert seconds < 5
    towns = result.towns
    assert list(towns["code"]) == list(source["code"])
    assert list(towns["name"]) == list(source["name"])
    assert towns.crs.to_epsg() == 4326
    assert set(towns.geom_type) == {"MultiPolygon"}
    assert towns.geometry.is_valid.all()
    assert not towns.geometry.is_empty.any()


def test_the_source_really_has_the_known_gaps_and_overlaps(source: gpd.GeoDataFrame) -> None:
    geoms = metric(source)
    holes = sorted(hole_areas_m2(shapely.union_all(geoms)), reverse=True)
    assert holes[0] == pytest.approx(11.77e6, rel=0.01)
    assert holes[1] == pytest.approx(10.20e6, rel=0.01)
    assert max_pairwise_overlap_m2(geoms) > 300_000


def test_no_two_repaired_towns_overlap(repaired: RepairResult) -> None:
    assert max_pairwise_overlap_m2(metric(repaired.towns)) < 1.0


def test_the_repaired_towns_cover_the_city_outline_without_holes(
    source: gpd.GeoDataFrame, repaired: RepairResult
) -> None:
    before = shapely.union_all(metric(source))
    after = shapely.union_all(metric(repaired.towns))
    assert after.geom_type == "Polygon"
    assert sum(hole_areas_m2(after)) < 1.0
    outline = Polygon(before.exterior)
    # The coastline and city border stay where they were, to the snapping millimetre.
    assert shapely.hausdorff_distance(outline.exterior, Polygon(after.exterior).exterior) < 0.01
    assert shapely.symmetric_difference(outline, after).area < SNAP_M2_PER_M * outline.length


def test_the_large_gaps_go_to_a_neighbour_that_surrounds_them(source: gpd.GeoDataFrame, repaired: RepairResult) -> None:
    gaps = repaired.gaps
    assert [g.gap_id for g in gaps] == list(range(1, len(gaps) + 1))
    assert [g.area_m2 for g in gaps] == sorted((g.area_m2 for g in gaps), reverse=True)
    expected = [
        (11.77e6, {"东坑镇", "茶山镇", "寮步镇"}),
        (10.20e6, {"茶山镇", "石排镇", "横沥镇"}),
        (4.46e6, {"麻涌镇"}),
        (1.62e6, {"莞城街道", "东城街道"}),
    ]
    for gap, (area_m2, neighbours) in zip(gaps, expected, strict=False):
        assert gap.area_m2 == pytest.approx(area_m2, rel=0.01)
        assert gap.kind == "gap"
        assert names_of(source, list(gap.shared_boundary_m)) >= neighbours
        assert gap.town_name in neighbours
        assert gap.town_code in gap.shared_boundary_m
    assert {g.kind for g in gaps if g.area_m2 < 1_000} == {"sliver"}


def test_each_large_gap_goes_to_the_town_it_shares_the_longest_boundary_with(
    source: gpd.GeoDataFrame, repaired: RepairResult
) -> None:
    # Measured independently of the repair's own bookkeeping: the holes of the source union against the
    # repaired towns with all holes cut out again.
    holes = [Polygon(r) for r in shapely.union_all(metric(source)).interiors if Polygon(r).area > 100_000]
    assert len(holes) == 5
    all_holes = shapely.union_all(holes)
    after = metric(repaired.towns)
    territory = shapely.difference(after, all_holes)
    names = list(repaired.towns["name"])
    for hole in holes:
        shared = shapely.length(shapely.intersection(hole.exterior, shapely.buffer(territory, 0.01)))
        owner = int(np.argmax(shapely.area(shapely.intersection(after, hole))))
        assert shapely.area(shapely.intersection(after[owner], hole)) == pytest.approx(
            hole.area, abs=SNAP_M2_PER_M * hole.length
        )
        assert owner == int(np.argmax(shared)), f"hole of {hole.area:,.0f} m² went to {names[owner]}"


def test_the_overlaps_go_to_the_town_whose_territory_surrounds_them(
    source: gpd.GeoDataFrame, repaired: RepairResult
) -> None:
    overlaps = repaired.overlaps
    assert {o.claimed_by for o in overlaps} == {("441900003000", "441900006000"), ("441900101000", "441900102000")}
    for o in overlaps:
        assert o.town_code in o.claimed_by
        if o.rule == RULE_LONGEST:
            assert o.shared_boundary_m[o.town_code] == max(o.shared_boundary_m.values())
    geoms = metric(source)
    total_overlap = float(shapely.area(geoms).sum() - shapely.union_all(geoms).area)
    assert sum(o.area_m2 for o in overlaps) == pytest.approx(total_overlap, abs=2.0)
    assert repaired.report["overlap_area_removed_m2"].sum() == pytest.approx(total_overlap, abs=2.0)
    after = metric(repaired.towns)
    codes = list(repaired.towns["code"])
    for a, b in (("441900003000", "441900006000"), ("441900101000", "441900102000")):
        assert shapely.intersection(after[codes.index(a)], after[codes.index(b)]).area < 1.0


def test_every_town_keeps_its_own_land_and_gains_only_its_gaps(
    source: gpd.GeoDataFrame, repaired: RepairResult
) -> None:
    before, after = metric(source), metric(repaired.towns)
    report = repaired.report
    band = SNAP_M2_PER_M * shapely.length(shapely.boundary(before))
    lost = shapely.area(shapely.difference(before, after))
    gained = shapely.area(shapely.difference(after, before))
    assert np.all(np.abs(lost - report["overlap_area_removed_m2"].to_numpy()) < band)
    assert np.all(np.abs(gained - report["gap_area_added_m2"].to_numpy()) < band)


def test_the_report_balances(source: gpd.GeoDataFrame, repaired: RepairResult) -> None:
    report = repaired.report
    assert list(report.columns[:6]) == [
        "town_code",
        "town_name",
        "area_before_m2",
        "area_after_m2",
        "gap_area_added_m2",
        "overlap_area_removed_m2",
    ]
    assert list(report["town_code"]) == list(source["code"])
    total_gaps = sum(g.area_m2 for g in repaired.gaps)
    assert report["gap_area_added_m2"].sum() == pytest.approx(total_gaps, rel=1e-12)
    source_holes = sum(hole_areas_m2(shapely.union_all(metric(source))))
    assert total_gaps == pytest.approx(source_holes, abs=10.0)
    band = SNAP_M2_PER_M * shapely.length(shapely.boundary(metric(source)))
    balance = (
        report["area_after_m2"]
        - report["area_before_m2"]
        - report["gap_area_added_m2"]
        + report["overlap_area_removed_m2"]
    )
    assert np.all(np.abs(balance.to_numpy()) < band)
    liaobu = report.set_index("town_name").loc["寮步镇"]
    assert liaobu["gap_area_added_m2"] == pytest.approx(11.77e6, rel=0.01)
    assert "gap 1" in liaobu["note"]


def test_the_printed_report_is_a_table_with_chinese_town_names(repaired: RepairResult) -> None:
    text = format_report(repaired.report, repaired.gaps)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["code", "town"]
    assert any(line.startswith("441900111000  寮步镇") for line in lines)
    assert any(line.startswith("total") and "33 towns" in line for line in lines)
    assert "11,771,0" in text  # the big gap, in m²
    assert "longest shared boundary" in text
    assert len([line for line in lines if line.startswith("441900")]) == 33


def test_the_report_rows_fit_the_town_repair_table(repaired: RepairResult) -> None:
    records = repair_records(repaired.report)
    stored_columns = {c.name for c in town_repair.columns} - {"id", "run_at"}
    assert len(records) == 33
    for record in records:
        assert set(record) == stored_columns
        assert isinstance(record["area_after_m2"], float)
        assert record["note"] is None or isinstance(record["note"], str)
    assert sum(1 for r in records if r["note"]) >= 5


# --- small hand-made cases ------------------------------------------------------------------------------------

ORIGIN_X, ORIGIN_Y = 420_000.0, 2_540_000.0


def towns_frame(polygons: dict[str, shapely.Geometry]) -> gpd.GeoDataFrame:
    shifted = [shapely.affinity.translate(p, ORIGIN_X, ORIGIN_Y) for p in polygons.values()]
    return gpd.GeoDataFrame(
        {"code": list(polygons), "name": [f"{c[-4:]}镇" for c in polygons]}, geometry=shifted, crs=METRIC
    )


def test_a_gap_goes_to_the_neighbour_that_wraps_more_of_it() -> None:
    outer = box(0, 0, 3000, 3000).difference(box(1000, 1000, 2000, 2000))
    inner = box(1000, 1000, 2000, 2000).difference(box(1900, 1300, 2000, 1700))
    result = repair_towns(towns_frame({"441900101000": outer, "441900102000": inner}))
    (gap,) = result.gaps
    assert gap.area_m2 == pytest.approx(100 * 400)
    assert gap.shared_boundary_m == {"441900101000": pytest.approx(400), "441900102000": pytest.approx(600)}
    assert gap.town_code == "441900102000"
    assert gap.rule == RULE_LONGEST


def test_a_tongue_pushed_into_a_neighbour_is_returned_to_it() -> None:
    west = box(0, 0, 1000, 1000)
    east = box(1000, 0, 2000, 1000).union(box(900, 400, 1000, 600))
    result = repair_towns(towns_frame({"441900101000": west, "441900102000": east}))
    (overlap,) = result.overlaps
    assert overlap.town_code == "441900101000"
    assert overlap.area_m2 == pytest.approx(100 * 200)
    areas = result.report.set_index("town_code")["area_after_m2"]
    assert areas["441900101000"] == pytest.approx(1e6, abs=0.5)
    assert areas["441900102000"] == pytest.approx(1e6, abs=0.5)


def test_an_even_overlap_strip_goes_to_the_lower_code() -> None:
    west = box(0, 0, 1000, 1000)
    east = box(990, 0, 2000, 1000)
    result = repair_towns(towns_frame({"441900102000": east, "441900101000": west}))
    (overlap,) = result.overlaps
    assert overlap.rule == RULE_TIE
    assert overlap.town_code == "441900101000"


def test_bad_input_is_refused_with_a_grids_error() -> None:
    square = box(0, 0, 1000, 1000)
    with pytest.raises(TopologyError, match="duplicate"):
        repair_towns(towns_frame({"441900101000": square}).pipe(lambda f: pd.concat([f, f])))
    with pytest.raises(GridsError, match="name"):
        repair_towns(towns_frame({"441900101000": square}).drop(columns="name"))
    with pytest.raises(TopologyError, match="without geometry"):
        repair_towns(towns_frame({"441900101000": square, "441900102000": Polygon()}))
    with pytest.raises(TopologyError, match="vanish"):
        repair_towns(towns_frame({"441900101000": box(0, 0, 3000, 3000), "441900102000": box(1000, 1000, 1100, 1100)}))


# --- property: perturbed tilings come out as tilings ----------------------------------------------------------

CELL_M = 1000.0
MAX_SHIFT_M = 150.0
shifts = st.one_of(st.just(0.0), st.floats(-MAX_SHIFT_M, MAX_SHIFT_M, allow_nan=False, allow_infinity=False))


@st.composite
def perturbed_tilings(draw: st.DrawFn) -> tuple[int, int, list[Polygon]]:
    """A rows × cols grid of squares; each cell moves its own copy of the inner vertices (gaps and overlaps)."""
    cols, rows = draw(st.integers(2, 3)), draw(st.integers(1, 2))
    width, height = cols * CELL_M, rows * CELL_M
    cells = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * CELL_M, r * CELL_M
            corners = [(x0, y0), (x0 + CELL_M, y0), (x0 + CELL_M, y0 + CELL_M), (x0, y0 + CELL_M)]
            ring = []
            for k in range(4):
                (ax, ay), (bx, by) = corners[k], corners[(k + 1) % 4]
                for t in (0.0, 1 / 3, 2 / 3):
                    x, y = ax + (bx - ax) * t, ay + (by - ay) * t
                    on_outline = x in (0.0, width) or y in (0.0, height)
                    if not on_outline:
                        x, y = x + draw(shifts), y + draw(shifts)
                    ring.append((x, y))
            cells.append(Polygon(ring))
    return rows, cols, cells


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed_tilings())
def test_any_perturbed_tiling_is_repaired_into_a_tiling(tiling: tuple[int, int, list[Polygon]]) -> None:
    rows, cols, cells = tiling
    assume(all(cell.is_valid for cell in cells))
    codes = [f"441900{101 + i:03d}000" for i in range(len(cells))]
    frame = towns_frame(dict(zip(codes, cells, strict=True)))
    result = repair_towns(frame)

    before, after = metric(frame), metric(result.towns)
    assert all(isinstance(g, MultiPolygon) and g.is_valid and not g.is_empty for g in after)
    assert max_pairwise_overlap_m2(after) < 1.0
    union = shapely.union_all(after)
    assert sum(hole_areas_m2(union)) < 1.0
    # Every gap was enclosed (the outline vertices never move), so the towns fill the whole rectangle.
    assert union.area == pytest.approx(rows * cols * CELL_M**2, abs=1.0)

    report = result.report
    source_union = shapely.union_all(before)
    assert report["gap_area_added_m2"].sum() == pytest.approx(union.area - source_union.area, abs=1.0)
    assert report["overlap_area_removed_m2"].sum() == pytest.approx(
        float(shapely.area(before).sum()) - source_union.area, abs=1.0
    )
    lost = shapely.area(shapely.difference(before, after))
    assert np.all(np.abs(lost - report["overlap_area_removed_m2"].to_numpy()) < 1.0)
    for gap in result.gaps:
        winner = before[codes.index(gap.town_code)]
        gap_m = gpd.GeoSeries([gap.geometry], crs=4326).to_crs(METRIC).iloc[0]
        assert shapely.distance(winner, gap_m) < 0.01
