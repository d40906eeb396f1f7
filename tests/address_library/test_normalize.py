"""A clerk pastes addresses as people typed them and gets one canonical text back, whatever the typing habit."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from address_library.errors import AddressInputError, AddressLibraryError
from address_library.normalize import (
    MAX_ADDRESS_CHARS,
    Normalized,
    cn_to_int,
    normalize,
    normalize_with_flags,
    split_notes,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("東莞市長安鎮長青路一百二十三號", "长安镇长青路123号"),  # 繁體, numerals, variant 號
        ("长安镇长青路１２号", "长安镇长青路12号"),  # full-width digits
        ("中国广东省东莞市长安镇 长青路 12号", "长安镇长青路12号"),  # prefixes and spaces
        ("广东东莞长安镇长青路12号", "长安镇长青路12号"),
        ("东莞市东莞市长安镇长青路12号", "长安镇长青路12号"),  # repeated prefix
        ("长安镇锦华花园十栋三楼", "长安镇锦华花园10栋3楼"),
        ("长安镇锦华花园二期5栋二单元1203室", "长安镇锦华花园2期5栋2单元1203室"),
        ("长安镇长青路12号之一", "长安镇长青路12-1号"),  # sub-numbers kept
        ("长安镇长青路12号之2", "长安镇长青路12-2号"),
        ("长安镇长青路12之1号", "长安镇长青路12-1号"),
        ("长安镇长青路12号-1", "长安镇长青路12-1号"),
        ("长安镇长青路12-1号", "长安镇长青路12-1号"),
        ("长安镇某村北坊十一巷5号", "长安镇某村北坊11巷5号"),
        ("虎门镇某某工业区B#3楼", "虎门镇某某工业区B栋3楼"),
        ("虎门镇某某工业区b栋", "虎门镇某某工业区B栋"),
        ("东莞市场路5号", "东莞市场路5号"),  # a market road is not the city
        ("东莞大道12号", "东莞大道12号"),  # nor is 东莞大道
    ],
)
def test_typing_habits_collapse_to_one_canonical_text(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("name", ["三元里", "十里铺", "五星村", "一村", "第二工业区", "四乡村", "三涌村"])
def test_numerals_inside_place_names_are_left_alone(name: str) -> None:
    assert normalize(f"中堂镇{name}5号") == f"中堂镇{name}5号"


def test_noise_words_and_phone_numbers_disappear() -> None:
    assert normalize("长安镇长青路12号 电联 13812345678") == "长安镇长青路12号"
    assert normalize("长安镇长青路12号,null") == "长安镇长青路12号"
    assert normalize("null") == ""
    assert normalize("无") == ""
    assert normalize("长安镇长青路12号 0769-12345678") == "长安镇长青路12号"


def test_bracket_notes_leave_the_text_but_are_kept() -> None:
    result = normalize_with_flags("长安镇长青路12号（上门换新）(后门)")
    assert result == Normalized("长安镇长青路12号", ("上门换新", "后门"), None)
    assert split_notes("长安镇长青路12号【近市场】") == ("长安镇长青路12号 ", ["近市场"])


@pytest.mark.parametrize(
    ("raw", "text", "relative"),
    [
        ("长安镇长青路12号对面", "长安镇长青路12号", "对面"),
        ("长安镇长青路12号附近", "长安镇长青路12号", "附近"),
        ("长安镇长青路旁", "长安镇长青路", "旁"),
        ("长安镇长青路12号东侧", "长安镇长青路12号", "东侧"),
        ("长安镇长青路口进去20米", "长安镇长青路口", "进去20米"),
    ],
)
def test_relative_locations_are_removed_but_reported(raw: str, text: str, relative: str) -> None:
    result = normalize_with_flags(raw)
    assert (result.text, result.relative) == (text, relative)


@pytest.mark.parametrize(
    "bad", ["", "   ", "长安镇\x00长青路", "长安\x07镇", "长安镇\ufffd", "长" * (MAX_ADDRESS_CHARS + 1)]
)
def test_empty_overlong_or_binary_input_is_refused_with_a_domain_error(bad: str) -> None:
    with pytest.raises(AddressInputError):
        normalize(bad)
    assert issubclass(AddressInputError, AddressLibraryError)


def test_chinese_numbers_read_as_people_write_them() -> None:
    assert [cn_to_int(x) for x in ("十", "十二", "一百零五", "一百二十三", "两千零八", "一二零三")] == [
        10,
        12,
        105,
        123,
        2008,
        1203,
    ]
    assert cn_to_int("十十") is None and cn_to_int("") is None


# Text made of the characters that drive the rules (units, numerals, prefixes, noise, brackets) plus anything else.
_ALPHABET = st.sampled_from(
    list("东莞市广东省中国长安镇路街巷号栋座幢楼层室房单元期区组队档铺之一二三四五六七八九十百千零两0123456789")
    + list("附近对面旁侧东南西北进去米电联无NULLnul()（）【】 ,，、-—#＃１２Ａa號棟樓")
)
_TEXT = st.one_of(
    st.text(_ALPHABET, min_size=1, max_size=40),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60),
)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example("0之0旁")  # the 号 a sub-number gains exposed a relative mark only the second pass removed (found by CI)
@example("路3之1旁")
def test_normalize_is_idempotent(raw: str) -> None:
    assume(raw.strip() and "\ufffd" not in raw and "\ufffe" not in raw and "\uffff" not in raw)
    once = normalize(raw)
    assume(once)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_ADDRESS_CHARS))
def test_normalize_never_raises_on_text_within_limits(raw: str) -> None:
    assume(raw.strip() and not set(raw) & {"\ufffd", "\ufffe", "\uffff"})
    assert isinstance(normalize(raw), str)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["三元里", "十里铺", "五星村", "一村", "三涌村", "四乡村", "六坊", "第二工业区"]),
    st.integers(1, 999),
)
def test_numerals_in_names_survive_any_door_number(name: str, door: int) -> None:
    assert normalize(f"长安镇{name}{door}号") == f"长安镇{name}{door}号"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("长安镇锦华花园5栋17F", "长安镇锦华花园5栋17楼"),  # an English floor mark
        ("长安镇锦华花园5栋6F601", "长安镇锦华花园5栋6楼601"),
        ("长安镇锦华花园B2F", "长安镇锦华花园B2F"),  # a code, not a floor
    ],
)
def test_an_english_floor_mark_becomes_a_floor(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert normalize(expected) == expected


def test_a_corner_of_a_crossing_is_a_relative_location() -> None:
    found = normalize_with_flags("长安镇富华路与振安路交叉口东北角锦华花园")
    assert (found.text, found.relative) == ("长安镇富华路与振安路交叉口锦华花园", "东北角")


def test_punctuation_that_joins_a_number_and_its_mark_is_read_at_once() -> None:
    assert normalize("锦华花园5栋6×F") == "锦华花园5栋6楼"
    assert normalize(normalize("0×F")) == normalize("0×F")


def test_a_flat_written_compactly_after_a_compound_is_spelt_out_but_a_road_door_is_not() -> None:
    assert normalize("长安镇嘉湾小区4-1-202") == "长安镇嘉湾小区4栋1单元202室"
    assert normalize("长安镇嘉湾小区4栋1-202房") == "长安镇嘉湾小区4栋1单元202房"
    assert normalize("长安镇第二工业区A3-2-301") == "长安镇第二工业区A3栋2单元301室"
    assert normalize("长安镇长青路12-3-502") == "长安镇长青路12-3-502"  # after a road: door, sub-number, room
