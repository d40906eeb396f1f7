"""Sampling ratios: the request beats the city, the city beats the file; no class is exempt, key items are uncapped."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text

from planning.errors import InvalidPlan
from planning.ratios import (
    CLASSES,
    ItemRef,
    check_ratio,
    clear_ratio,
    effective_ratios,
    load_rules,
    ratio_settings,
    resolve_ratios,
    set_ratio,
)

GENERAL = ItemRef("test-general-01", key=False)
KEY = ItemRef("test-key-01", key=True)
RULES = load_rules()


# ------------------------------------------------------------------------------------------------------ pure rules


def test_the_files_defaults_sample_poor_credit_more_and_never_exempt_anyone() -> None:
    defaults = [RULES.default[c] for c in CLASSES]
    assert defaults == sorted(defaults) and defaults[0] < defaults[-1]
    assert all(RULES.floor[c] > 0 for c in CLASSES)
    assert RULES.version


def test_without_request_or_settings_every_item_gets_the_files_default() -> None:
    ratios = resolve_ratios([GENERAL, KEY], RULES, {})
    assert ratios == {(i.code, c): RULES.default[c] for i in (GENERAL, KEY) for c in CLASSES}


def test_precedence_request_item_then_request_class_then_city_item_then_city_all_then_file() -> None:
    settings = {("*", "A"): Decimal("0.02"), ("*", "B"): Decimal("0.04"), (GENERAL.code, "B"): Decimal("0.06")}
    ratios = resolve_ratios(
        [GENERAL, KEY],
        RULES,
        settings,
        by_class={"C": Decimal("0.2")},
        by_item={GENERAL.code: {"C": Decimal("0.25")}},
    )
    assert ratios[(GENERAL.code, "C")] == Decimal("0.25")  # the request for the item
    assert ratios[(KEY.code, "C")] == Decimal("0.2")  # the request for the class
    assert ratios[(GENERAL.code, "B")] == Decimal("0.06")  # the city for the item
    assert ratios[(KEY.code, "B")] == Decimal("0.04")  # the city for every item
    assert ratios[(KEY.code, "A")] == Decimal("0.02")
    assert ratios[(KEY.code, "D")] == RULES.default["D"]  # the file


@pytest.mark.parametrize(
    ("ratio", "reason"),
    [
        (Decimal("0"), "ratio_out_of_range"),
        (Decimal("-0.1"), "ratio_out_of_range"),
        (Decimal("1.01"), "ratio_out_of_range"),
        (Decimal("0.123456"), "ratio_out_of_range"),
        (Decimal("NaN"), "ratio_out_of_range"),
        ("abc", "ratio_out_of_range"),
        (Decimal("0.001"), "ratio_below_floor"),
        (Decimal("0.9"), "ratio_above_cap"),
    ],
)
def test_a_bad_ratio_for_class_a_of_a_general_item_is_refused_naming_item_and_class(ratio: object, reason: str) -> None:
    with pytest.raises(InvalidPlan) as refused:
        resolve_ratios([GENERAL], RULES, {}, by_item={GENERAL.code: {"A": ratio}})  # type: ignore[dict-item]
    assert refused.value.reason == reason
    assert GENERAL.code in str(refused.value) and "A 类" in str(refused.value)


def test_a_key_item_may_be_sampled_fully_but_never_below_the_floor() -> None:
    assert resolve_ratios([KEY], RULES, {}, by_class={"A": Decimal("1")})[(KEY.code, "A")] == Decimal("1")
    with pytest.raises(InvalidPlan) as refused:
        resolve_ratios([KEY], RULES, {}, by_class={"A": Decimal("0.005")})
    assert refused.value.reason == "ratio_below_floor"


def test_trailing_zeros_do_not_count_as_decimal_places_and_floats_are_taken_at_their_face_value() -> None:
    ratios = resolve_ratios([KEY], RULES, {}, by_class={"A": Decimal("0.0700000"), "B": 0.07})  # type: ignore[dict-item]
    assert ratios[(KEY.code, "A")] == Decimal("0.07") and ratios[(KEY.code, "B")] == Decimal("0.07")
    assert str(ratios[(KEY.code, "B")]) == "0.07"


def test_an_unknown_class_or_an_item_outside_the_plan_is_refused() -> None:
    with pytest.raises(InvalidPlan) as refused:
        resolve_ratios([KEY], RULES, {}, by_class={"E": Decimal("0.1")})
    assert refused.value.reason == "unknown_credit_class"
    with pytest.raises(InvalidPlan) as refused:
        resolve_ratios([KEY], RULES, {}, by_item={"other": {"A": Decimal("0.1")}})
    assert refused.value.reason == "unknown_item"


@given(
    st.sampled_from(CLASSES),
    st.decimals(min_value=Decimal("-2"), max_value=Decimal("2"), allow_nan=False, places=6),
    st.booleans(),
)
def test_every_ratio_accepted_is_inside_floor_and_cap_with_at_most_five_places(
    cls: str, ratio: Decimal, key: bool
) -> None:
    try:
        checked = check_ratio(ratio, item_code="x", credit_class=cls, key=key, rules=RULES)
    except InvalidPlan:
        return
    assert RULES.floor[cls] <= checked <= (Decimal(1) if key else RULES.general_cap[cls])
    assert checked == ratio and checked * 10**5 == int(checked * 10**5)


# ------------------------------------------------------------------------------------------------- city settings


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction per story, rolled back; two items of our own (a general one and a key one)."""
    with engine.connect() as connection, connection.begin() as tx:
        for item in (GENERAL, KEY):
            connection.execute(
                text(
                    "INSERT INTO inspection_item (code, department_code, name, basis, key, source) "
                    "VALUES (:code, 'market_supervision', '测试事项', '测试依据', :key, 'assumption: test') "
                    "ON CONFLICT (code) DO NOTHING"
                ),
                {"code": item.code, "key": item.key},
            )
        yield connection
        tx.rollback()


@pytest.mark.db
def test_the_city_sets_its_own_ratio_for_every_item_and_for_one_item(conn: Connection) -> None:
    set_ratio(conn, item_code="*", credit_class="A", ratio=Decimal("0.02"), source="年度计划（测试）", actor="user:a")
    set_ratio(conn, item_code=KEY.code, credit_class="A", ratio=Decimal("0.5"), source="专项整治", actor="user:a")
    ratios = effective_ratios(conn, [GENERAL, KEY])
    assert ratios[(GENERAL.code, "A")] == Decimal("0.02")
    assert ratios[(KEY.code, "A")] == Decimal("0.5")
    assert effective_ratios(conn, [KEY], by_class={"A": Decimal("0.3")})[(KEY.code, "A")] == Decimal("0.3")
    settings = ratio_settings(conn)
    assert [(s.item_code, s.credit_class, s.ratio) for s in settings] == [
        ("*", "A", Decimal("0.02")),
        (KEY.code, "A", Decimal("0.5")),
    ]
    assert settings[0].set_by == "user:a" and settings[0].source == "年度计划（测试）"


@pytest.mark.db
def test_setting_again_replaces_and_clearing_goes_back_to_the_file(conn: Connection) -> None:
    set_ratio(conn, item_code="*", credit_class="B", ratio=Decimal("0.04"), source="一", actor="user:a")
    set_ratio(conn, item_code="*", credit_class="B", ratio=Decimal("0.06"), source="二", actor="user:b")
    assert [(s.ratio, s.source, s.set_by) for s in ratio_settings(conn)] == [(Decimal("0.06"), "二", "user:b")]
    assert clear_ratio(conn, "*", "B") is True
    assert clear_ratio(conn, "*", "B") is False
    assert effective_ratios(conn, [GENERAL])[(GENERAL.code, "B")] == RULES.default["B"]


@pytest.mark.db
@pytest.mark.parametrize(
    ("item_code", "cls", "ratio", "source", "reason"),
    [
        ("*", "A", Decimal("0"), "x", "ratio_out_of_range"),
        ("*", "A", Decimal("0.005"), "x", "ratio_below_floor"),
        ("*", "A", Decimal("0.6"), "x", "ratio_above_cap"),  # '*' reaches general items: capped
        (GENERAL.code, "B", Decimal("0.9"), "x", "ratio_above_cap"),
        ("no-such-item", "B", Decimal("0.05"), "x", "unknown_item"),
        ("*", "E", Decimal("0.05"), "x", "unknown_credit_class"),
        ("*", "B", Decimal("0.05"), "  ", "source_required"),
    ],
)
def test_a_setting_the_rules_forbid_is_refused_and_nothing_is_stored(
    conn: Connection, item_code: str, cls: str, ratio: Decimal, source: str, reason: str
) -> None:
    with pytest.raises(InvalidPlan) as refused:
        set_ratio(conn, item_code=item_code, credit_class=cls, ratio=ratio, source=source, actor="user:a")
    assert refused.value.reason == reason
    assert ratio_settings(conn) == []
