"""A typed address becomes the draft of a new standard address: components, level, standard text, parent's text."""

from __future__ import annotations

from address_library.drafts import (
    COMPONENT_FIELDS,
    COMPONENT_LABELS_ZH,
    draft_from_components,
    draft_from_typed,
    level_of,
    standard_text,
)

CHANGAN = "441900119000"
WUSHA = "441900119008"


def test_every_component_has_a_chinese_label() -> None:
    assert set(COMPONENT_LABELS_ZH) == set(COMPONENT_FIELDS)


def test_the_standard_text_writes_the_community_only_without_a_road() -> None:
    road = {"town": "长安镇", "community": "乌沙社区", "road": "长青路", "door_no": "12", "sub_no": "1"}
    assert standard_text(road) == "长安镇长青路12-1号"
    village = {"town": "长安镇", "community": "乌沙社区", "village": "北坊", "lane": "3巷", "door_no": "12号"}
    assert standard_text(village) == "长安镇乌沙社区北坊3巷12号"
    compound = {"town": "南城街道", "road": "某某路", "door_no": "88", "compound": "某某花园", "phase": "2期",
                "building": "3栋", "unit": "2单元", "room": "302室"}  # fmt: skip
    assert standard_text(compound) == "南城街道某某路88号某某花园2期3栋2单元302室"
    assert standard_text({"road": "长青路", "door_no": "12"}) == ""  # no town, no standard text


def test_the_level_is_the_finest_component_given() -> None:
    assert level_of({"road": "长青路", "door_no": "12"}) == "door"
    assert level_of({"compound": "某某花园", "building": "3栋"}) == "building"
    assert level_of({"park": "第三工业区", "building": "A1栋", "floor": "1楼"}) == "room"
    assert level_of({"town": "长安镇", "road": "长青路"}) is None


def test_a_typed_address_is_drafted_from_its_parse_with_the_coarse_place_filling_the_gaps() -> None:
    typed = draft_from_typed("東莞市長安鎮長青路一百二十三號")
    assert typed.components["town"] == "长安镇" and typed.components["road"] == "长青路"
    assert typed.components["door_no"] == "123" and typed.level == "door"
    assert typed.full_text == "长安镇长青路123号" and typed.town_code == CHANGAN and typed.parent_text is None

    # The text names no town: the geocoder's coarse place gives it (and the community, as the road is missing).
    bare = draft_from_typed("北坊3巷12号", town_code=CHANGAN, community_code=WUSHA)
    assert bare.components["town"] == "长安镇" and bare.components["community"] == "乌沙社区"
    assert bare.full_text == "长安镇乌沙社区北坊3巷12号" and bare.community_code == WUSHA

    # A room's parent is its building, written by the same rule.
    room = draft_from_components({**typed.components, "building": "3栋", "room": "302室"})
    assert room.level == "room" and room.full_text == "长安镇长青路123号3栋302室"
    assert room.parent_text == "长安镇长青路123号3栋"


def test_unusable_text_drafts_nothing() -> None:
    empty = draft_from_typed("   ")
    assert empty.full_text is None and empty.level is None
