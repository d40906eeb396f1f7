"""A planner builds the synthetic road network and standard address library for a small made-up city."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from synthetic.address_text import standard_full_text
from synthetic.addresses import ADDRESS_COLUMNS, AddressLibrary, generate_library
from synthetic.names import community_stem

SEED = 7
TARGET = 5_000
X0, Y0 = 500_000.0, 2_520_000.0  # somewhere in Dongguan, EPSG:4547 metres

COMMUNITIES = [
    # code, NBS name, kind, town code, town name, population, lower-left corner offset (km)
    ("441900003001", "新安社区居民委员会", "residents_committee", "441900003000", "长安镇", 30_000, (0, 0)),
    ("441900003002", "上沙村民委员会", "village_committee", "441900003000", "长安镇", 12_000, (1, 0)),
    ("441900004001", "南栅社区居民委员会", "residents_committee", "441900004000", "虎门镇", 20_000, (0, 1)),
    ("441900004002", "白沙村民委员会", "village_committee", "441900004000", "虎门镇", 6_000, (1, 1)),
]
SHORT = {"441900003001": "新安社区", "441900003002": "上沙村", "441900004001": "南栅社区", "441900004002": "白沙村"}
COMPONENT_ORDER = (
    "village",
    "park",
    "road_name",
    "lane",
    "door",
    "compound",
    "phase",
    "building",
    "unit",
    "floor",
    "room",
    "stall",
)


def make_communities() -> gpd.GeoDataFrame:
    rows = [
        {
            "code": code,
            "name": name,
            "kind": kind,
            "town_code": town_code,
            "town_name": town_name,
            "population": population,
            "geometry": box(X0 + dx * 1000, Y0 + dy * 1000, X0 + dx * 1000 + 1000, Y0 + dy * 1000 + 1000),
        }
        for code, name, kind, town_code, town_name, population, (dx, dy) in COMMUNITIES
    ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4547)


@pytest.fixture(scope="module")
def communities() -> gpd.GeoDataFrame:
    return make_communities()


@pytest.fixture(scope="module")
def library(communities: gpd.GeoDataFrame) -> AddressLibrary:
    return generate_library(communities, SEED, TARGET)


@pytest.fixture(scope="module")
def addresses(library: AddressLibrary) -> pd.DataFrame:
    return library.addresses


def test_the_same_seed_rebuilds_the_same_city_and_another_seed_a_different_one(
    communities: gpd.GeoDataFrame, library: AddressLibrary
) -> None:
    again = generate_library(communities, SEED, TARGET)
    pd.testing.assert_frame_equal(again.addresses, library.addresses)
    pd.testing.assert_frame_equal(again.roads.drop(columns="geometry"), library.roads.drop(columns="geometry"))
    assert all(a.equals_exact(b, 0.0) for a, b in zip(again.roads.geometry, library.roads.geometry, strict=True))
    other = generate_library(communities, SEED + 1, TARGET)
    assert set(other.addresses["full_text"]) != set(library.addresses["full_text"])


def test_the_library_has_the_agreed_columns_ids_and_size(addresses: pd.DataFrame) -> None:
    assert list(addresses.columns) == ADDRESS_COLUMNS
    assert addresses["id"].dtype == np.int64
    assert addresses["id"].tolist() == list(range(1, len(addresses) + 1))
    assert abs(len(addresses) - TARGET) <= 0.1 * TARGET
    assert addresses["full_text"].is_unique
    assert set(addresses["level"]) == {"door", "building", "room"}
    assert set(addresses["kind"]) == {"road_door", "village", "industrial", "compound", "market"}
    assert not addresses["full_text"].str.contains("东莞市|广东省").any()
    assert addresses["full_text"].str.match(r"^(长安镇|虎门镇)").all()


def test_every_address_point_lies_inside_its_community(communities: gpd.GeoDataFrame, addresses: pd.DataFrame) -> None:
    polygons = dict(zip(communities["code"], communities.geometry, strict=True))
    for code, group in addresses.groupby("community_code"):
        inside = shapely.contains_xy(polygons[code], group["x"].to_numpy(), group["y"].to_numpy())
        assert inside.all(), f"{(~inside).sum()} points outside {code}"


def test_rooms_hang_under_buildings_and_buildings_under_doors(addresses: pd.DataFrame) -> None:
    by_id = addresses.set_index("id")
    doors = addresses[addresses["level"] == "door"]
    assert doors["parent_id"].isna().all()
    for level, parent_level in (("building", "door"), ("room", "building")):
        children = addresses[addresses["level"] == level]
        assert children["parent_id"].notna().all()
        parents = by_id.loc[children["parent_id"].astype(np.int64)]
        assert (parents["level"].to_numpy() == parent_level).all()
        assert (parents["community_code"].to_numpy() == children["community_code"].to_numpy()).all()
        assert (parents["kind"].to_numpy() == children["kind"].to_numpy()).all()
        assert all(c.startswith(p) for c, p in zip(children["full_text"], parents["full_text"], strict=True))
    rooms_per_building = addresses[addresses["level"] == "room"].groupby("parent_id").size()
    assert rooms_per_building.max() <= 40


def test_road_doors_are_odd_on_one_side_even_on_the_other_and_increase_along_the_road(
    library: AddressLibrary, addresses: pd.DataFrame
) -> None:
    doors = addresses[(addresses["kind"] == "road_door") & addresses["sub_no"].isna()]
    roads = library.roads.set_index("id")
    checked = 0
    for road_id, group in doors.groupby("road_id"):
        line = roads.geometry[int(str(road_id))]
        pts = shapely.points(group["x"].to_numpy(), group["y"].to_numpy())
        s = shapely.line_locate_point(line, pts)
        a = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(s - 1, 0)))
        b = shapely.get_coordinates(shapely.line_interpolate_point(line, np.minimum(s + 1, line.length)))
        on = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
        xy = group[["x", "y"]].to_numpy()
        cross = (b - a)[:, 0] * (xy - on)[:, 1] - (b - a)[:, 1] * (xy - on)[:, 0]
        number = group["door_no"].astype(int).to_numpy()
        odd = number % 2 == 1
        assert (cross[odd] > 0).all() and (cross[~odd] < 0).all(), f"road {road_id}: a door on the wrong side"
        for side in (odd, ~odd):
            ordered = number[side][np.argsort(s[side], kind="stable")]
            assert (np.diff(ordered) > 0).all(), f"road {road_id}: numbers do not increase along the road"
        checked += int(odd.any() and (~odd).any())
    assert checked >= 5


def test_road_addresses_read_town_road_number_without_the_community(addresses: pd.DataFrame) -> None:
    road_doors = addresses[addresses["kind"] == "road_door"]
    assert road_doors["road_id"].notna().all()
    town = road_doors["town_code"].map({"441900003000": "长安镇", "441900004000": "虎门镇"})
    plain = road_doors["sub_no"].isna()
    expected = town + road_doors["road_name"] + road_doors["door_no"] + "号"
    assert (road_doors.loc[plain, "full_text"] == expected[plain]).all()
    subs = road_doors[~plain]
    assert len(subs) > 0
    assert (subs["full_text"] == town[~plain] + subs["road_name"] + subs["door_no"] + "-" + subs["sub_no"] + "号").all()
    assert not any(SHORT[c] in t for c, t in zip(road_doors["community_code"], road_doors["full_text"], strict=True))


def test_village_chains_have_no_road_and_name_the_community(addresses: pd.DataFrame) -> None:
    villages = addresses[addresses["kind"] == "village"]
    assert len(villages) > 0
    assert villages["road_id"].isna().all() and villages["road_name"].isna().all()
    assert villages["village"].notna().all() and villages["door_no"].str.fullmatch(r"\d+").all()
    assert villages["lane"].notna().any()
    assert villages["village"].str.contains("坊|组|围|村|队").all()
    for row in villages.to_dict("records"):
        assert row["full_text"].startswith(("长安镇", "虎门镇"))
        assert SHORT[row["community_code"]] + row["village"] in row["full_text"]


def test_industrial_parks_have_lettered_buildings_and_floors(addresses: pd.DataFrame) -> None:
    industrial = addresses[addresses["kind"] == "industrial"]
    assert industrial["park"].str.contains("工业区|工业园|科技园|创业园|产业园|工业城").all()
    buildings = industrial.loc[industrial["level"] == "building", "building"]
    assert buildings.str.fullmatch(r"[A-K]栋").any()
    assert buildings.str.fullmatch(r"[A-K]\d+栋|厂房").any()
    rooms = industrial[industrial["level"] == "room"]
    assert rooms["floor"].dropna().str.fullmatch(r"\d+楼").any()


def test_compounds_have_buildings_units_and_rooms(addresses: pd.DataFrame) -> None:
    compounds = addresses[addresses["kind"] == "compound"]
    rooms = compounds[compounds["level"] == "room"]
    assert rooms["unit"].dropna().str.fullmatch(r"\d+单元").any()
    assert rooms["room"].dropna().str.fullmatch(r"\d{3,4}室").any()
    assert rooms["room"].dropna().str.fullmatch(r"\d{3,4}(室|房|号)").all()
    assert compounds["compound"].str.contains("花园|小区|苑|广场|庭|山庄|家园|公寓|新城|大厦").all()
    assert compounds["phase"].dropna().str.fullmatch(r".+(期|区)").all()
    on_road = compounds[compounds["road_id"].notna()]
    off_road = compounds[compounds["road_id"].isna()]
    assert len(on_road) > 0 and len(off_road) > 0
    example = rooms[rooms["unit"].notna() & rooms["road_id"].notna()].iloc[0]
    assert str(example["full_text"]).endswith(f"{example['building']}{example['unit']}{example['room']}")


def test_markets_and_shops_have_stalls(addresses: pd.DataFrame) -> None:
    stalls = addresses["stall"].dropna()
    assert stalls.str.fullmatch(r"\d+档").any()
    assert stalls.str.fullmatch(r"\d+铺").any()
    market_rooms = addresses[(addresses["kind"] == "market") & (addresses["level"] == "room")]
    assert market_rooms["stall"].notna().all()


def test_full_text_contains_every_component_in_reading_order(addresses: pd.DataFrame) -> None:
    for row in addresses.sample(1500, random_state=0).to_dict("records"):
        text = str(row["full_text"])
        door = row["door_no"]
        row["door"] = None if door is None else (f"{door}-{row['sub_no']}号" if row["sub_no"] else f"{door}号")
        position = 0
        for key in COMPONENT_ORDER:
            value = row[key]
            if value is None:
                continue
            found = text.find(str(value), position)
            assert found >= 0, f"{key}={value!r} missing or out of order in {text}"
            position = found + len(str(value))
        assert position == len(text)


def test_roads_have_unique_names_per_town_stay_inside_it_and_some_names_cross_towns(
    communities: gpd.GeoDataFrame, library: AddressLibrary
) -> None:
    roads = library.roads
    assert list(roads.columns) == ["id", "town_code", "name", "kind", "geometry"]
    assert not roads.duplicated(["town_code", "name"]).any()
    assert set(roads["kind"]) <= {"大道", "路", "街", "巷"}
    assert roads["name"].str.fullmatch(r".+(大道|路|街|巷)").all()
    assert all(name.endswith(kind) for name, kind in zip(roads["name"], roads["kind"], strict=True))
    assert (roads.geometry.geom_type == "LineString").all()
    towns = communities.dissolve("town_code").geometry
    for town_code, group in roads.groupby("town_code"):
        assert group.geometry.within(towns[town_code].buffer(1.0)).all()
    shared = roads.groupby("name")["town_code"].nunique()
    assert (shared > 1).any()


def test_denser_communities_get_more_addresses_and_compounds(addresses: pd.DataFrame) -> None:
    per_community = addresses.groupby("community_code").size()
    populations = {c[0]: c[5] for c in COMMUNITIES}
    ranked = sorted(populations, key=lambda code: populations[code])
    assert per_community[ranked].is_monotonic_increasing
    kinds = pd.crosstab(addresses["community_code"], addresses["kind"])
    compounds = kinds["compound"].to_dict()
    villages = kinds["village"].to_dict()
    assert compounds["441900003001"] > compounds["441900003002"]  # residents' committee vs village next door
    assert villages["441900003002"] > villages["441900003001"]


def test_standard_text_writes_sub_numbers_with_a_dash() -> None:
    assert standard_full_text("长安镇", "新安社区", "长青路", {"door_no": "12", "sub_no": "1"}) == "长安镇长青路12-1号"
    assert (
        standard_full_text("长安镇", "乌沙社区", None, {"village": "北坊", "lane": "三巷", "door_no": "12"})
        == "长安镇乌沙社区北坊三巷12号"
    )
    assert (
        community_stem("唐洪村村") == "唐洪"
        and community_stem("新安社区") == "新安"
        and community_stem("新村") == "新村"
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corners=st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)), min_size=4, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_odd_shaped_communities_still_get_unique_addresses_inside_them(
    corners: list[tuple[float, float]], seed: int
) -> None:
    # A lopsided quadrilateral next to a square, in two towns: points must still land inside their own polygon.
    square = [(0, 0), (1000, 0), (1000, 1000), (0, 1000)]
    jittered = [(x + 300 * dx, y + 300 * dy) for (x, y), (dx, dy) in zip(square, corners, strict=True)]
    odd = shapely.make_valid(Polygon([(X0 + x, Y0 + y) for x, y in jittered]))
    odd = max(shapely.get_parts(odd), key=lambda g: g.area) if odd.geom_type != "Polygon" else odd
    if odd.geom_type != "Polygon" or odd.area < 50_000:
        return
    frame = make_communities().iloc[:2].copy()
    frame.loc[0, "geometry"] = odd
    frame.loc[1, "geometry"] = box(X0 + 2000, Y0, X0 + 3000, Y0 + 1000)
    frame.loc[1, "town_code"], frame.loc[1, "town_name"] = "441900004000", "虎门镇"
    result = generate_library(frame, seed, 600).addresses
    assert result["full_text"].is_unique
    assert abs(len(result) - 600) <= 60
    for code, polygon in zip(frame["code"], frame.geometry, strict=True):
        group = result[result["community_code"] == code]
        assert shapely.contains_xy(polygon, group["x"].to_numpy(), group["y"].to_numpy()).all()
    assert re.compile(r"^(长安镇|虎门镇)").match(result["full_text"].iloc[0])
