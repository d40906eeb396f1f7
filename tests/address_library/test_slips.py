"""A clerk types with a pinyin or shape input method: the slips it makes are recognised, other names are not."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from address_library.repair import default_repairer
from address_library.slips import SlipLexicon, is_slip, phonetic_keys, primary_reading, slip_count
from synthetic.geocode_cases import add_slips, slip_character

# Common characters of Dongguan place names (none of them a generic address word).
NAME_CHARS = (
    "东莞长安虎门厚街塘厦凤岗清溪黄江樟木头常平寮步大朗岭山石龙碣排企茶桥谢岗坑横沥望牛墩麻涌洪梅道滘沙田高埗锦华富康"
)


def test_same_sound_and_same_shape_are_slips_other_characters_are_not() -> None:
    assert is_slip("璐", "路") and is_slip("好", "号") and is_slip("心", "新")  # pinyin homophones
    assert is_slip("冻", "栋") and is_slip("搂", "楼")  # look-alikes from the confusion set
    assert is_slip("张", "长")  # 长 reads zhang too
    assert not is_slip("龙", "泰") and not is_slip("路", "路")
    assert not is_slip("湾", "园", strict=True)  # 园's rare reading wan is no slip for a generic word


def test_names_that_differ_in_sound_and_shape_are_different_places() -> None:
    assert slip_count("安福璐", "安福路") == 1
    assert slip_count("龙景花园", "泰景花园") is None
    assert slip_count("堑头路", "堑头五路") is None  # a character more is another road of the series
    assert slip_count("新华路", "新华路") == 0


@given(st.text(alphabet=NAME_CHARS, min_size=2, max_size=8), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_an_input_method_slip_is_always_recognised_as_one(name: str, seed: int) -> None:
    rng = random.Random(seed)
    position = rng.randrange(len(name))
    slip = slip_character(name[position], rng)
    if slip is None or slip == name[position]:
        return
    typed = name[:position] + slip + name[position + 1 :]
    assert slip_count(typed, name) == 1


@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=10))
def test_a_name_is_never_a_slip_of_itself_and_its_sound_key_is_stable(name: str) -> None:
    assert slip_count(name, name) == 0
    keys = phonetic_keys(name)
    assert " ".join(primary_reading(c) for c in name) in keys  # the usual reading is always one of them
    assert all(len(key.split(" ")) == len(name) for key in keys)


def test_a_lexicon_finds_the_word_a_window_is_a_slip_of_and_refuses_to_choose_between_two() -> None:
    towns = SlipLexicon({"虎门镇": "虎门", "湖门镇": "虎门", "长安镇": "长安"})
    assert towns.slip_of("虎门真") == "虎门镇"  # two forms of one town: the closer one
    assert towns.slip_of("长安镇") is None  # a word is not its own slip
    assert towns.slip_of("泰安镇") is None  # 泰 is no slip of 长
    rivals = SlipLexicon(["花园", "花苑"])
    assert rivals.slip_of("花元", short=True) is None  # 园 or 苑: no guess


def test_the_words_a_slip_hid_from_the_parser_are_put_back() -> None:
    repair = default_repairer().repair
    assert repair("东城街道安福璐11号") == "东城街道安福路11号"
    assert repair("长安镇龙景花园3洞2单圆501是") == "长安镇龙景花园3栋2单元501室"
    assert repair("塘厦镇莆心湖七戮1-2号") == "塘厦镇莆心湖七路1-2号"
    assert repair("南城街道元美社区上围村四组伞十二号") == "南城街道元美社区上围村四组三十二号"
    assert repair("松山湖莞凤大道三狮2号") == "松山湖莞凤大道32号"  # normalization had made 二 a 2
    assert repair("东城区扭山社区居民委员会") == "东城区牛山社区居民委员会"


@given(st.sampled_from(["长安镇长青路123号", "东城街道东纵大道8号", "虎门镇南栅社区东坊3巷5号", "石排镇石排村九坊一巷18号",
                        "大朗镇巷头社区巷头工业区4栋203房", "松山湖松山湖虚拟社区第三工业区E栋"]))  # fmt: skip
def test_text_without_slips_is_left_as_it_is(text: str) -> None:
    assert default_repairer().repair(text) == text


@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
@settings(max_examples=100, deadline=None)
def test_the_slip_generator_changes_exactly_the_characters_it_says(seed: int, count: int) -> None:
    text = "长安镇长青路123号锦华花园3栋"
    slipped = add_slips(text, random.Random(seed), count)
    changed = [(a, b) for a, b in zip(text, slipped, strict=True) if a != b]
    assert len(changed) == count
    assert all(is_slip(b, a) for a, b in changed)
