"""A geocoder reads an address as people type it into town, community, road, door, building and room."""

from __future__ import annotations

import random

import geopandas as gpd
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from address_library.errors import AddressInputError
from address_library.gazetteer import default_gazetteer
from address_library.normalize import normalize
from address_library.parse import ParsedAddress, parse
from grids.codes import town_of
from grids.reference import read_divisions, short_community_name
from synthetic.addresses import generate_library
from synthetic.noise import render_raw_address

TANGXIA_DAPINGZHANG, ZHONGTANG_YICUN = "441900116500", "441900128209"


def fields(parsed: ParsedAddress) -> dict[str, object]:
    keep = ("town", "community", "natural_village", "road", "lane", "door_no", "sub_no", "park", "compound")
    keep += ("phase", "building", "unit", "floor", "room", "stall", "intersection", "remainder")
    return {k: getattr(parsed, k) for k in keep if getattr(parsed, k) is not None}


@pytest.mark.parametrize(
    ("raw", "expected", "level"),
    [
        (
            "塘厦镇大屏障生活区康海豪庭一期10栋1单元1102房",
            {"town": "塘厦镇", "community": "大屏障生活区", "compound": "康海豪庭", "phase": "1期", "building": "10栋"}
            | {"unit": "1单元", "room": "1102房"},
            "room",
        ),
        (
            "大岭山镇连平村连平工业城2栋202房",
            {"town": "大岭山镇", "community": "连平村", "park": "连平工业城", "building": "2栋", "room": "202房"},
            "room",
        ),
        (
            "中堂镇一村一村西工业区A1栋1楼",
            {"town": "中堂镇", "community": "一村", "park": "一村西工业区", "building": "A1栋", "floor": "1楼"},
            "room",
        ),
        (  # a village chain with no road
            "大朗镇水口村新塘坊一巷5号",
            {"town": "大朗镇", "community": "水口村", "natural_village": "新塘坊", "lane": "1巷", "door_no": "5"},
            "door",
        ),
        (  # 号 after a building is a room
            "东莞市长安镇新安社区锦华花园3期5栋1203号",
            {"town": "长安镇", "community": "新安社区", "compound": "锦华花园", "phase": "3期", "building": "5栋"}
            | {"room": "1203号"},
            "room",
        ),
        (
            "东莞市东莞市长安镇长青路一百二十三号之一",
            {"town": "长安镇", "road": "长青路", "door_no": "123", "sub_no": "1"},
            "door",
        ),
        ("大老镇富华路5号", {"town": "大朗镇", "road": "富华路", "door_no": "5"}, "door"),  # typo in the town
        ("塘下镇莲湖路3号", {"town": "塘厦镇", "road": "莲湖路", "door_no": "3"}, "door"),
        ("东城区富华路12号", {"town": "东城街道", "road": "富华路", "door_no": "12"}, "door"),  # old district form
        ("长安富华路12号", {"town": "长安镇", "road": "富华路", "door_no": "12"}, "door"),  # town without 镇
        ("长安镇新安三路12号", {"town": "长安镇", "road": "新安三路", "door_no": "12"}, "door"),  # 新安 is a road here
        (
            "长安镇新安管理区富华路12号",
            {"town": "长安镇", "community": "新安社区", "road": "富华路", "door_no": "12"},
            "door",
        ),
        (
            "长安镇富华路12号新安社区",  # community after the door
            {"town": "长安镇", "community": "新安社区", "road": "富华路", "door_no": "12"},
            "door",
        ),
        ("长安镇富华路与振安路交叉口", {"town": "长安镇", "road": "富华路", "intersection": "振安路"}, "road"),
        ("长安镇富华路和振安路交汇处", {"town": "长安镇", "road": "富华路", "intersection": "振安路"}, "road"),
        (
            "长安镇富华路12号锦华花园B座3单元2楼",
            {"town": "长安镇", "road": "富华路", "door_no": "12", "compound": "锦华花园", "building": "B座"}
            | {"unit": "3单元", "floor": "2楼"},
            "room",
        ),
        (
            "长安镇富华路12号兴旺便利店",  # a shop name stays as the remainder
            {"town": "长安镇", "road": "富华路", "door_no": "12", "remainder": "兴旺便利店"},
            "door",
        ),
    ],
)
def test_real_world_forms_parse_into_their_components(raw: str, expected: dict[str, object], level: str) -> None:
    parsed = parse(raw)
    assert fields(parsed) == expected
    assert parsed.level == level
    assert not parsed.outside_dongguan


def test_relative_locations_and_notes_lower_the_answer_to_what_is_certain() -> None:
    parsed = parse("长安镇富华路12号对面（电联）")
    assert (parsed.road, parsed.door_no, parsed.relative, parsed.notes) == ("富华路", "12", "对面", ("电联",))
    crossing = parse("长安镇富华路与振安路交叉口东侧")
    assert (crossing.road, crossing.intersection, crossing.relative, crossing.level) == (
        "富华路",
        "振安路",
        "东侧",
        "road",
    )


@pytest.mark.parametrize("raw", ["青岛东莞路12号", "深圳市东莞街5号", "广州东莞庄路3号", "山东省青岛市市北区东莞路8号"])
def test_dongguan_named_roads_in_other_cities_are_not_ours(raw: str) -> None:
    parsed = parse(raw)
    assert parsed.outside_dongguan and parsed.town_code is None and parsed.level is None


def test_only_noise_gives_an_empty_answer_and_empty_input_an_error() -> None:
    assert parse("null").level is None
    with pytest.raises(AddressInputError):
        parse("   ")


def test_every_real_town_and_community_is_in_the_gazetteer() -> None:
    divisions = read_divisions()
    gazetteer = default_gazetteer()
    assert len(gazetteer.town_names) == 33
    for code, name, level in zip(divisions["code"], divisions["name"], divisions["level"], strict=True):
        if level == "town" and code in gazetteer.town_names:
            assert parse(f"{name}富华路1号").town_code == code
    assert parse("望牛墩富华路1号").town == "望牛墩镇"
    assert parse("松山湖高新区富华路1号").town == "松山湖"


# --- the synthetic city ---------------------------------------------------------------------------------------------

X0, Y0 = 500_000.0, 2_520_000.0
PICKED = (
    "441900119007",  # 长安镇 新安社区
    "441900119011",  # 长安镇 上沙社区
    TANGXIA_DAPINGZHANG,
    ZHONGTANG_YICUN,
    "441900121023",  # 虎门镇 南栅社区
    "441900003001",  # 东城街道, for the old 东城区 form
    "441900113209",  # 大朗镇 水口村
    "441900118208",  # 大岭山镇 连平村
)
COMPONENTS = {
    "road_name": "road",
    "village": "natural_village",
    "lane": "lane",
    "park": "park",
    "compound": "compound",
    "phase": "phase",
    "building": "building",
    "unit": "unit",
    "floor": "floor",
    "room": "room",
    "stall": "stall",
}


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    divisions = read_divisions()
    return dict(zip(divisions["code"], divisions["name"], strict=True))


@pytest.fixture(scope="module")
def library(names: dict[str, str]) -> pd.DataFrame:
    kinds = read_divisions().set_index("code")["kind"]
    rows = []
    for i, code in enumerate(PICKED):
        town_code = town_of(code)
        x, y = X0 + (i % 4) * 1000, Y0 + (i // 4) * 1000
        rows.append(
            {
                "code": code,
                "name": names[code],
                "kind": kinds[code],
                "town_code": town_code,
                "town_name": names[town_code],
                "population": 10_000 + 3_000 * i,
                "geometry": box(x, y, x + 1000, y + 1000),
            }
        )
    communities = gpd.GeoDataFrame(rows, geometry="geometry", crs=4547)
    return generate_library(communities, 11, 3_000).addresses


def _value(row: dict[str, object], key: str) -> str | None:
    value = row[key]
    return None if value is None or (isinstance(value, float)) else normalize(str(value))


def test_the_synthetic_library_parses_back_into_its_components(library: pd.DataFrame) -> None:
    wrong: list[str] = []
    for row in library.to_dict("records"):
        parsed = parse(str(row["full_text"]))
        ok = parsed.town_code == row["town_code"]
        # The standard text names the community only when no road locates the address.
        if row["road_name"] is None:
            ok = ok and parsed.community_code == row["community_code"]
        ok = ok and parsed.door_no == row["door_no"] and parsed.sub_no == row["sub_no"]
        ok = ok and all(getattr(parsed, attr) == _value(row, key) for key, attr in COMPONENTS.items())
        if not ok:
            wrong.append(str(row["full_text"]))
    assert len(wrong) <= 0.01 * len(library), wrong[:20]
    assert set(library["kind"]) == {"road_door", "village", "industrial", "compound", "market"}


def test_noisy_renderings_keep_their_town_and_community(library: pd.DataFrame, names: dict[str, str]) -> None:
    rng = random.Random(5)
    wrong: list[str] = []
    noisy = 0
    for row in library.to_dict("records"):
        raw, noise = render_raw_address(
            row, names[row["town_code"]], short_community_name(names[row["community_code"]]), rng
        )
        if not noise:
            continue
        noisy += 1
        parsed = parse(raw)
        named = (row["road_name"] is None and "missing_community" not in noise) or bool(
            {"community_added", "reordered"} & set(noise)
        )
        # Where the text names the community it must be found; where it does not, it must not be invented.
        community_ok = (
            parsed.community_code == row["community_code"]
            if named
            else parsed.community_code in (None, row["community_code"])
        )
        if parsed.town_code != row["town_code"] or not community_ok:
            wrong.append(f"{raw} {noise}")
    assert noisy > 1000
    assert len(wrong) <= 0.02 * noisy, wrong[:20]


# --- properties -----------------------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("长安镇新安社区上沙村东城区大老塘下路街巷号栋座楼层室房单元期区组队档铺坊围花园工业区市场与和交叉口")
    + list("0123456789ABC-一二三十")
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(_ALPHABET, min_size=1, max_size=40), st.text(min_size=1, max_size=80)))
def test_parse_never_raises_on_normalized_text(raw: str) -> None:
    try:
        text = normalize(raw)
    except AddressInputError:
        return
    parsed = parse(text) if text else ParsedAddress()
    assert parsed.level in (None, "room", "building", "door", "road", "community", "town")
    if parsed.town_code is not None:
        assert parsed.town is not None and parsed.town_code.startswith("4419")


# --- real address forms (issue 13): invented examples of each rule ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # a community written with its official suffix, or with 花园 in its name
        ("长安镇新安社区居民委员会", {"town": "长安镇", "community": "新安社区"}),
        ("大朗镇水口村村民委员会", {"town": "大朗镇", "community": "水口村"}),
        (
            "东城街道花园新村社区富华路1号",
            {"town": "东城街道", "community": "花园新村社区", "road": "富华路", "door_no": "1"},
        ),
        # a town written with its 镇 is the town, even before a name that starts like a road
        ("大朗镇巷头富华路1号", {"town": "大朗镇", "community": "巷头社区", "road": "富华路", "door_no": "1"}),
        ("虎门镇口路3号", {"town": "虎门镇", "road": "镇口路", "door_no": "3"}),  # but no road has a one-character name
        # 大街 and cross streets
        ("长安镇新安大街横巷3号", {"town": "长安镇", "road": "新安大街", "lane": "横巷", "door_no": "3"}),
        ("长安镇上沙大街横3巷2号", {"town": "长安镇", "road": "上沙大街", "lane": "横3巷", "door_no": "2"}),
        ("长安镇振兴3横街5号", {"town": "长安镇", "road": "振兴3横街", "door_no": "5"}),
        # lanes off a road and in a village keep their direction; a 里 before its door number is a lane
        ("长安镇富华路东1巷5号", {"town": "长安镇", "road": "富华路", "lane": "东1巷", "door_no": "5"}),
        (
            "大朗镇水口村长兴坊西3巷8号",
            {"town": "大朗镇", "community": "水口村", "natural_village": "长兴坊", "lane": "西3巷", "door_no": "8"},
        ),
        ("莞城街道安乐里5号", {"town": "莞城街道", "road": "安乐里", "door_no": "5"}),
        # a numbered street of a market, and a road with its segment and a highway
        ("长安镇锦绣市场二街3号", {"town": "长安镇", "compound": "锦绣市场", "road": "二街", "door_no": "3"}),
        ("长安镇107国道旁", {"town": "长安镇", "road": "107国道"}),
        # a crossing with 和 inside a name, and what follows a crossing
        ("长安镇宏和路与振安路交叉口", {"town": "长安镇", "road": "宏和路", "intersection": "振安路"}),
        (
            "长安镇富华路与振安路交叉口锦华花园3栋502",
            {"town": "长安镇", "road": "富华路", "intersection": "振安路", "compound": "锦华花园", "building": "3栋"}
            | {"room": "502"},
        ),
        # a quarter of the community before the road
        (
            "长安镇新安南区振安路8号",
            {"town": "长安镇", "community": "新安社区", "phase": "南区", "road": "振安路", "door_no": "8"},
        ),
        # floors and rooms
        ("长安镇富华路12号801", {"town": "长安镇", "road": "富华路", "door_no": "12", "room": "801"}),
        ("长安镇锦华花园5栋9B", {"town": "长安镇", "compound": "锦华花园", "building": "5栋", "room": "9B"}),
        ("长安镇锦华花园5栋17F", {"town": "长安镇", "compound": "锦华花园", "building": "5栋", "floor": "17楼"}),
        ("长安镇锦华花园121506", {"town": "长安镇", "compound": "锦华花园", "building": "12", "room": "1506"}),
        ("长安镇锦华花园38702", {"town": "长安镇", "compound": "锦华花园", "building": "38", "room": "702"}),
        ("长安镇明珠豪苑商铺26号", {"town": "长安镇", "compound": "明珠豪苑", "stall": "26号"}),
        # a building complex whose name has no suffix, an unknown town word, digits in a compound's name
        (
            "长安镇翡翠山居2期6栋1501房",
            {"town": "长安镇", "compound": "翡翠山居", "phase": "2期", "building": "6栋", "room": "1501房"},
        ),
        ("乐安镇锦华花园3栋", {"compound": "锦华花园", "building": "3栋", "remainder": "乐安镇"}),
        ("长安镇华润0769家园2栋", {"town": "长安镇", "compound": "华润0769家园", "building": "2栋"}),
        # a village written straight before its road; a road named for what it serves keeps its place; a slip of 村
        ("长安镇上岗头兴业路12号", {"town": "长安镇", "natural_village": "上岗头", "road": "兴业路", "door_no": "12"}),
        ("长安镇上岗头商业街5号", {"town": "长安镇", "road": "上岗头商业街", "door_no": "5"}),
        (
            "长安镇新安社区田心坑长乐街3巷9号",
            {
                "town": "长安镇",
                "community": "新安社区",
                "natural_village": "田心坑",
                "lane": "长乐街3巷",
                "door_no": "9",
            },
        ),
        (
            "长安镇张屋存兴华街3巷5号",
            {"town": "长安镇", "natural_village": "张屋存", "lane": "兴华街3巷", "door_no": "5"},
        ),
        ("横沥镇横沥长安路5号", {"town": "横沥镇", "road": "长安路", "door_no": "5"}),
        # a clan hamlet; an unsuffixed name between the community and a door number
        ("长安镇富华路李屋", {"town": "长安镇", "road": "富华路", "natural_village": "李屋"}),
        (
            "长安镇新安社区石岭下16号",
            {"town": "长安镇", "community": "新安社区", "natural_village": "石岭下", "door_no": "16"},
        ),
        # a relative word inside the body; a road's crossing
        (
            "长安镇新安社区旁锦绣花园2栋",
            {"town": "长安镇", "community": "新安社区", "compound": "锦绣花园"} | {"building": "2栋"},
        ),
        ("长安镇富华路口兴旺百货", {"town": "长安镇", "road": "富华路", "remainder": "兴旺百货"}),
        # stairs and stairwells, a second building word, a short 道 road and a lettered door
        (
            "长安镇富华路3巷12楼梯间",
            {"town": "长安镇", "road": "富华路", "lane": "3巷", "door_no": "12"} | {"remainder": "楼梯间"},
        ),
        (
            "长安镇锦华花园3座2梯501",
            {"town": "长安镇", "compound": "锦华花园", "building": "3座", "unit": "2梯", "room": "501"},
        ),
        (
            "长安镇锦华花园7栋C座1203",
            {"town": "长安镇", "compound": "锦华花园", "building": "7栋", "unit": "C座", "room": "1203"},
        ),
        (
            "长安镇锦华花园松景道26B",
            {"town": "长安镇", "compound": "锦华花园", "road": "松景道", "door_no": "26", "sub_no": "B"},
        ),
        # a town's urban area; compounds called …门第, …小城, …阁
        ("长安镇新城区锦绣苑3栋", {"town": "长安镇", "compound": "锦绣苑", "building": "3栋"}),
        ("长安镇书香门第3栋502", {"town": "长安镇", "compound": "书香门第", "building": "3栋", "room": "502"}),
        ("长安镇锦绣小城2栋", {"town": "长安镇", "compound": "锦绣小城", "building": "2栋"}),
        ("长安镇翠竹阁8楼", {"town": "长安镇", "compound": "翠竹阁", "floor": "8楼"}),
    ],
)
def test_real_address_forms_parse_into_our_components(raw: str, expected: dict[str, object]) -> None:
    assert fields(parse(raw)) == expected


def test_a_road_segment_is_kept_beside_the_road() -> None:
    parsed = parse("长安镇莞长路长安段88号")
    assert (parsed.road, parsed.road_segment, parsed.door_no) == ("莞长路", "长安段", "88")


@pytest.mark.parametrize(
    ("raw", "pois"),
    [
        ("长安镇富华路12号兴旺五金", ("兴旺五金",)),  # what follows the door names its occupant
        ("长安镇富华路12号宏达电子有限公司", ("宏达电子有限公司",)),
        ("长安镇宏达电子厂", ("宏达电子厂",)),  # a factory by its ending
        ("长安镇富华路12号(华润万家超市旁)", ("华润万家超市",)),  # a landmark in a note
        ("长安镇富华路12号(明珠广场南门对面)", ("明珠广场",)),  # a gate is a detail of its place
        ("长安镇富华路12号(兴旺美发楼上)", ("兴旺美发",)),  # the shop a flat is above
        ("长安镇富华路12号安居之家203房", ("安居之家",)),  # a name between the door and the room
        ("长安镇新安社区华润超市后面兴华街12号", ("华润超市",)),  # the landmark a relative word follows
        ("长安镇富华路12号永辉超市路口", ("永辉超市",)),  # a crossing by a landmark
        ("长安镇富华路12号", ()),
    ],
)
def test_shops_factories_and_landmarks_are_points_of_interest(raw: str, pois: tuple[str, ...]) -> None:
    parsed = parse(raw)
    assert parsed.pois == pois
    assert parsed.poi == (pois[0] if pois else None)
    assert parsed.door_no in (None, "12")


def test_a_bracketed_floor_is_a_remark_not_part_of_the_number_path() -> None:
    parsed = parse("长安镇锦华花园3栋1102房(一楼)")
    assert (parsed.building, parsed.floor, parsed.room) == ("3栋", None, "1102房")


_COMPONENTS = ("natural_village", "road", "road_segment", "lane", "park", "compound", "phase", "floor", "unit")
_COMPONENTS += ("room", "stall", "intersection")


@settings(max_examples=400, deadline=None)
@given(st.text(_ALPHABET, min_size=1, max_size=40))
def test_every_component_is_written_in_the_normalized_text(raw: str) -> None:
    try:
        text = normalize(raw)
    except AddressInputError:
        return
    if not text:
        return
    parsed = parse(text)
    for name in _COMPONENTS:
        value = getattr(parsed, name)
        assert value is None or value in text, (name, value, text)
    if parsed.building is not None:
        assert parsed.building in text or parsed.building.isdigit()
    for poi in parsed.pois:
        assert poi in text or any(poi in note for note in parsed.notes)
