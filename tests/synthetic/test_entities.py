"""Synthetic market entities: valid unique credit codes, plausible names, licences and realistically messy addresses."""

from __future__ import annotations

import random
import re
from datetime import date

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from supervision.uscc import is_valid_uscc
from synthetic.entities import ENTITY_COLUMNS, EntitySet, generate_entities, read_scope_catalogue
from synthetic.noise import NOISE_TYPES, chinese_number, render_raw_address, standard_text

LOAD_DATE = date(2026, 8, 15)
CLUE_INDUSTRIES = {
    "餐饮服务", "食品销售", "食品小作坊", "烟草制品零售", "药品零售", "医疗诊所", "美容美发", "互联网上网服务", "歌舞娱乐",
    "旅馆住宿", "废旧物资回收", "机动车维修", "成品油零售", "危险化学品经营", "校外培训", "出版物零售", "五金塑胶加工作坊",
}  # fmt: skip

TOWNS = {
    "441900003000": "东城街道",
    "441900113000": "大朗镇",
    "441900116000": "塘厦镇",
    "441900119000": "长安镇",
    "441900401000": "松山湖",
}
COMMUNITIES = {
    "441900003001": "主山社区",
    "441900003002": "石井社区",
    "441900113001": "巷头社区",
    "441900113002": "水口村",
    "441900116001": "林村社区",
    "441900116002": "石潭埔社区",
    "441900119001": "新安社区",
    "441900119002": "上沙村",
    "441900401001": "松山湖社区",
}
ROADS = ("富民路", "松园大道", "兴业北路", "塘新路", "湖景东路", "新园二路", "长青南路")


def make_addresses(n_doors: int = 400, seed: int = 3) -> pd.DataFrame:
    """A small address library in the schema of synthetic.addresses: doors, buildings, rooms of five kinds."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    next_id = 1

    def add(parent: int | None, level: str, kind: str, comm: str, **parts: object) -> int:
        nonlocal next_id
        base: dict[str, object] = {c: None for c in (
            "road_id", "road_name", "door_no", "sub_no", "village", "lane", "park", "compound", "phase",
            "building", "unit", "floor", "room", "stall")}  # fmt: skip
        if parent is not None:
            base.update({k: v for k, v in rows[parent - 1].items() if k in base and v is not None})
        base.update(parts)
        row: dict[str, object] = {
            "id": next_id, "level": level, "parent_id": parent, "kind": kind,
            "town_code": comm[:9] + "000", "community_code": comm, **base,
            "x": 400_000.0 + rng.uniform(0, 20_000), "y": 2_530_000.0 + rng.uniform(0, 20_000),
        }  # fmt: skip
        row["full_text"] = standard_text(row, TOWNS[str(row["town_code"])], COMMUNITIES[comm])
        rows.append(row)
        next_id += 1
        return next_id - 1

    comms = list(COMMUNITIES)
    for i in range(n_doors):
        comm = comms[i % len(comms)]
        road = ROADS[i % len(ROADS)]
        kind = ("road_door", "village", "industrial", "compound", "market")[i % 5]
        number = str(1 + i // 5)
        # Compounds, markets and parks sit on a road door half of the time, else only the community names them.
        on_road = {"road_id": i % 7, "road_name": road, "door_no": number} if i % 2 == 0 else {}
        if kind == "road_door":
            sub = "1" if i % 3 == 0 else None
            door = add(None, "door", kind, comm, road_id=i % 7, road_name=road, door_no=number, sub_no=sub)
            for floor in ("2楼", "3楼"):
                add(door, "room", kind, comm, floor=floor, room=f"{floor[0]}0{rng.randint(1, 4)}室")
        elif kind == "village":
            sub = "2" if i % 7 == 0 else None
            add(None, "door", kind, comm, village="围仔坊", lane=f"{1 + i % 9}巷", door_no=number, sub_no=sub)
        elif kind == "industrial":
            door = add(None, "door", kind, comm, park="第二工业区", **on_road)
            building = add(door, "building", kind, comm, building="ABCDE"[i % 5] + "栋")
            add(building, "room", kind, comm, floor=f"{1 + i % 5}楼")
        elif kind == "compound":
            door = add(None, "door", kind, comm, compound="翠湖花园", phase="二期", **on_road)
            building = add(door, "building", kind, comm, building=f"{1 + i % 20}{('栋', '座', '号楼')[i % 3]}")
            for room in ("1502室", "803房"):
                add(building, "room", kind, comm, unit="2单元", room=room)
        else:
            door = add(None, "door", kind, comm, compound="综合市场", **on_road)
            for stall in ("12档", "3档"):
                add(door, "room", kind, comm, floor="1楼", stall=stall)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def addresses() -> pd.DataFrame:
    return make_addresses()


@pytest.fixture(scope="module")
def entity_set(addresses: pd.DataFrame) -> EntitySet:
    return generate_entities(addresses, TOWNS, COMMUNITIES, seed=11, n=6000, load_date=LOAD_DATE)


def test_same_seed_gives_the_same_city_and_another_seed_does_not(addresses: pd.DataFrame) -> None:
    a = generate_entities(addresses, TOWNS, COMMUNITIES, seed=5, n=300, load_date=LOAD_DATE)
    b = generate_entities(addresses, TOWNS, COMMUNITIES, seed=5, n=300, load_date=LOAD_DATE)
    c = generate_entities(addresses, TOWNS, COMMUNITIES, seed=6, n=300, load_date=LOAD_DATE)
    pd.testing.assert_frame_equal(a.entities, b.entities)
    pd.testing.assert_frame_equal(a.licences, b.licences)
    assert not a.entities["uscc"].equals(c.entities["uscc"])


def test_every_entity_has_a_unique_valid_credit_code(entity_set: EntitySet) -> None:
    entities = entity_set.entities
    assert list(entities.columns) == list(ENTITY_COLUMNS)
    assert entities["uscc"].is_unique
    assert all(is_valid_uscc(code) for code in entities["uscc"])
    # Companies register as 91…, individual businesses as 92…, in Dongguan (4419xx).
    prefixes = entities["uscc"].str[:2].where(entities["kind"] == "company", entities["uscc"].str[:2])
    assert set(prefixes[entities["kind"] == "company"]) == {"91"}
    assert set(prefixes[entities["kind"] == "individual"]) == {"92"}
    assert entities["uscc"].str[2:6].eq("4419").all()


def test_names_look_like_dongguan_enterprises(entity_set: EntitySet) -> None:
    entities = entity_set.entities
    companies = entities[entities["kind"] == "company"]["name"]
    individuals = entities[entities["kind"] == "individual"]["name"]
    assert companies.str.match(r"^东莞市.{3,}有限公司$").all()
    assert companies.is_unique
    assert individuals.str.contains("镇|街道|松山湖|个体工商户").mean() > 0.95
    assert 0.45 < (entities["kind"] == "individual").mean() < 0.65


def test_scopes_industries_and_statuses_come_from_the_catalogue(entity_set: EntitySet) -> None:
    entities = entity_set.entities
    catalogue = read_scope_catalogue()
    assert len(catalogue) >= 80
    known = set(catalogue["scope"])
    items = entities["business_scope"].str.split("；")
    assert items.map(len).between(1, 4).all()
    assert all(set(i) <= known for i in items)
    assert set(entities["industry"]) <= set(catalogue["industry"])
    assert set(entities["industry"]) & CLUE_INDUSTRIES, "clue industries appear among entities"
    assert set(entities["status"]) == {"open", "closed"}
    assert 0.05 < (entities["status"] == "closed").mean() < 0.11
    assert set(entities["credit_class"]) <= {"A", "B", "C", "D"}


def test_registrations_skew_to_recent_years_and_reports_are_filed_in_the_first_half(entity_set: EntitySet) -> None:
    entities = entity_set.entities
    registered = pd.to_datetime(entities["registered_on"])
    assert (registered.dt.date <= LOAD_DATE).all()
    recent = (registered.dt.year >= LOAD_DATE.year - 5).mean()
    assert recent > 0.55
    filed = entities["annual_report_filed_on"].dropna()
    assert 0.7 < len(filed) / len(entities) < 0.92
    in_first_half = filed.map(lambda d: d.year == LOAD_DATE.year and d.month <= 6).mean()
    assert in_first_half > 0.9
    young = registered.dt.year == LOAD_DATE.year
    assert entities.loc[young, "annual_report_filed_on"].isna().all(), "nothing to report before the first full year"


def test_about_three_in_four_entities_that_need_a_licence_hold_one(entity_set: EntitySet) -> None:
    entities, licences = entity_set.entities, entity_set.licences
    needing = entities[entities["needs_licence"]]
    assert len(needing) > 500
    rate = needing["uscc"].isin(licences["uscc"]).mean()
    assert 0.70 <= rate <= 0.80
    assert licences["uscc"].isin(needing["uscc"]).all(), "no licence without a scope that needs it"
    assert licences["department"].str.startswith("东莞市").all()
    issued = licences.merge(entities[["uscc", "registered_on"]], on="uscc")
    assert (issued["issued_on"] >= issued["registered_on"]).all()
    assert (issued["issued_on"] <= LOAD_DATE).all()


def test_entities_sit_on_real_addresses_of_the_right_kind(entity_set: EntitySet, addresses: pd.DataFrame) -> None:
    entities = entity_set.entities
    assert entities["address_id"].isin(addresses["id"]).all()
    placed = entities.drop(columns="kind").merge(
        addresses[["id", "kind", "level"]], left_on="address_id", right_on="id"
    )
    assert placed["level"].isin(["door", "room"]).mean() > 0.85
    workshops = placed[placed["industry"] == "五金塑胶加工作坊"]
    assert (workshops["kind"] == "industrial").mean() > 0.9
    catering = placed[(placed["industry"] == "餐饮服务") & (placed["kind"] != "industrial")]
    assert catering["kind"].isin(["road_door", "market", "village"]).mean() > 0.6


def test_raw_addresses_are_messy_but_about_a_third_stay_clean(entity_set: EntitySet, addresses: pd.DataFrame) -> None:
    entities = entity_set.entities
    truth = entities.merge(addresses[["id", "full_text"]], left_on="address_id", right_on="id")
    differs = truth["raw_address"] != truth["full_text"]
    assert differs.mean() >= 0.6
    clean = truth["noise"] == ""
    assert 0.22 < clean.mean() < 0.38
    assert (truth.loc[clean, "raw_address"] == truth.loc[clean, "full_text"]).all()
    assert differs[~clean].all(), "a row that says it has noise does differ from the standard text"
    seen = {t for value in entities["noise"] for t in value.split("|") if t}
    assert seen == set(NOISE_TYPES)


def test_buildings_are_written_another_way(entity_set: EntitySet, addresses: pd.DataFrame) -> None:
    truth = entity_set.entities.merge(addresses[["id", "building"]], left_on="address_id", right_on="id")
    rewritten = truth[truth["noise"].str.contains("building_form")]
    assert len(rewritten) > 50
    for raw, building in zip(rewritten["raw_address"], rewritten["building"], strict=True):
        assert re.search(rf"(?<![第0-9A-Za-z]){re.escape(building)}", raw) is None, (raw, building)


def test_each_noise_type_looks_like_what_people_type(entity_set: EntitySet) -> None:
    entities = entity_set.entities

    def raw_with(noise: str) -> pd.Series:
        # Rows with this noise, leaving out the ones a character-level noise has rewritten on top.
        overwrite = {"traditional", "typo", "extra_spaces", "fullwidth_digits", "chinese_numerals"} - {noise}
        chosen = entities["noise"].str.split("|").map(lambda t: noise in t and not overwrite & set(t))
        assert chosen.sum() > 0
        return entities.loc[chosen, "raw_address"]

    assert raw_with("prefix_added").str.contains("广东|东莞").all()
    assert raw_with("community_added").str.contains("|".join(name[:2] for name in COMMUNITIES.values())).all()
    assert raw_with("town_old_form").str.contains("东城区").all()
    assert raw_with("traditional").str.contains("[東鎮號區廣長頭綜場電園業樓棟門灣]").all()
    assert raw_with("fullwidth_digits").str.contains("[０-９]").all()
    assert raw_with("chinese_numerals").str.contains("[一二三四五六七八九十]").all()
    assert raw_with("extra_spaces").str.contains(" ").all()
    assert raw_with("bracket_note").str.contains(r"[(（].+[)）]").all()
    assert raw_with("sub_number_form").str.contains(r"\d之\d|号之|号-\d").all()
    assert raw_with("building_form").str.contains("栋|座|号楼|幢|#").all()
    assert raw_with("typo").map(lambda s: s != "").all()


def test_road_door_and_community_are_never_both_missing(entity_set: EntitySet, addresses: pd.DataFrame) -> None:
    truth = entity_set.entities.drop(columns="kind").merge(addresses, left_on="address_id", right_on="id")
    plain = truth[~truth["noise"].str.contains("traditional|typo|fullwidth|numerals")]
    for row in plain.to_dict("records"):
        raw = row["raw_address"]
        has_door = isinstance(row["door_no"], str) and f"{row['door_no']}" in raw
        has_road = isinstance(row["road_name"], str) and row["road_name"] in raw
        has_community = COMMUNITIES[row["community_code"]][:2] in raw
        assert (has_road and has_door) or has_community or (has_door and "missing_town" not in row["noise"]), raw


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (3, "三"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (99, "九十九"),
        (105, "一百零五"),
        (115, "一百一十五"),
        (2008, "二千零八"),
    ],
)
def test_numbers_are_spelled_the_way_people_write_them(value: int, words: str) -> None:
    assert chinese_number(value) == words


def test_noise_never_drops_the_door_number() -> None:
    row = {"road_name": "富民路", "door_no": "12", "sub_no": "1", "building": "3", "floor": "2", "room": "201"}
    for seed in range(2000):
        raw, noise = render_raw_address(row, "大朗镇", "巷头社区", random.Random(seed))
        digits = raw.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        assert re.search(r"12|十二", digits), (raw, noise)


def test_clean_rendering_is_exactly_the_library_standard_text() -> None:
    """Against the real address generator: a row without noise reads exactly as the library's full_text."""
    from synthetic.addresses import generate_library

    towns = {"441900119000": "长安镇", "441900003000": "东城街道"}
    names = {
        "441900119001": "新安社区",
        "441900119002": "上沙村",
        "441900003001": "主山社区",
        "441900003002": "石井社区",
    }
    kinds = ("residents_committee", "village_committee", "residents_committee", "residents_committee")
    communities = gpd.GeoDataFrame(
        {
            "code": list(names),
            "name": [n.replace("社区", "社区居民委员会").replace("上沙村", "上沙村民委员会") for n in names.values()],
            "kind": kinds,
            "town_code": [code[:9] + "000" for code in names],
            "town_name": [towns[code[:9] + "000"] for code in names],
            "population": [30_000, 12_000, 20_000, 8_000],
            "geometry": [box(500_000 + i * 1000, 2_520_000, 501_000 + i * 1000, 2_521_000) for i in range(4)],
        },
        crs=4547,
    )
    library = generate_library(communities, 5, 3000).addresses
    rendered = [
        standard_text(row, towns[row["town_code"]], names[row["community_code"]]) for row in library.to_dict("records")
    ]
    assert rendered == library["full_text"].tolist()
    out = generate_entities(library, towns, names, seed=2, n=3000, load_date=LOAD_DATE).entities
    truth = out.merge(library[["id", "full_text"]], left_on="address_id", right_on="id")
    assert (truth["raw_address"] != truth["full_text"]).mean() >= 0.6
    assert (truth.loc[truth["noise"] == "", "raw_address"] == truth.loc[truth["noise"] == "", "full_text"]).all()


def test_a_demo_sized_batch_of_entities_is_generated_whole() -> None:
    """30,000 entities over 4,000 doors come out whole (how fast is the demo load's benchmark, not a test's)."""
    big = make_addresses(n_doors=4000)
    out = generate_entities(big, TOWNS, COMMUNITIES, seed=1, n=30_000, load_date=LOAD_DATE)
    assert len(out.entities) == 30_000
    assert out.entities["uscc"].is_unique
