"""The credit rules: every class has a reason, an adverse fact more never improves a class, new entities start at B."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from planning.credit import (
    EntityFacts,
    classify,
    load_credit_rules,
    months_before,
    owes_annual_report,
    reasons_json,
)
from planning.ratios import CLASSES

RULES = load_credit_rules()
AS_OF = date(2026, 12, 1)
OLD = date(2019, 5, 6)


def facts(**kw: object) -> EntityFacts:
    return replace(EntityFacts(uscc="91441900MA4W000000", as_of=AS_OF, registered_on=OLD), **kw)  # type: ignore[arg-type]


fact_sets = st.builds(
    EntityFacts,
    uscc=st.just("91441900MA4W000000"),
    as_of=st.just(AS_OF),
    registered_on=st.dates(min_value=date(1990, 1, 1), max_value=AS_OF),
    abnormal_list=st.booleans(),
    unresolved_findings=st.integers(0, 5),
    penalties=st.integers(0, 5),
    substantiated_clues=st.integers(0, 5),
    hotline_reports=st.integers(0, 5),
    missing_licence=st.booleans(),
)
ADVERSE = st.sampled_from(
    ["abnormal_list", "missing_licence", "unresolved_findings", "penalties", "substantiated_clues", "hotline_reports"]
)


def worse(f: EntityFacts, what: str) -> EntityFacts:
    """The same entity with one adverse fact more."""
    value = getattr(f, what)
    return replace(f, **{what: True if isinstance(value, bool) else value + 1})


def test_an_established_entity_without_adverse_facts_is_a_and_says_why() -> None:
    cls, reasons = classify(facts(), RULES)
    assert cls == "A" and [r.code for r in reasons] == ["no_adverse_records"] and reasons[0].points == 0


def test_a_new_entity_without_adverse_facts_is_b_because_it_has_no_record_yet() -> None:
    cls, reasons = classify(facts(registered_on=date(2026, 6, 1)), RULES)
    assert cls == "B" and [r.code for r in reasons] == ["new_entity"]
    assert "2026-06-01" in reasons[0].detail_zh
    # twelve months on it reaches A
    assert classify(facts(registered_on=date(2025, 12, 1)), RULES)[0] == "A"


def test_each_serious_fact_alone_is_c_and_two_of_them_are_d() -> None:
    assert classify(facts(abnormal_list=True), RULES)[0] == "C"
    assert classify(facts(missing_licence=True), RULES)[0] == "C"
    assert classify(facts(penalties=1), RULES)[0] == "C"
    cls, reasons = classify(facts(abnormal_list=True, missing_licence=True), RULES)
    assert cls == "D" and [r.code for r in reasons] == ["abnormal_list", "missing_licence"]


def test_light_facts_leave_a_but_accumulate() -> None:
    assert classify(facts(hotline_reports=1), RULES)[0] == "B"
    assert classify(facts(substantiated_clues=3), RULES)[0] == "C"
    cls, reasons = classify(facts(unresolved_findings=2, substantiated_clues=1), RULES)
    assert cls == "C" and sum(r.points for r in reasons) == 60
    assert "2 项检查发现的问题" in reasons[0].detail_zh


@given(fact_sets)
def test_every_class_has_at_least_one_reason_and_is_deterministic(f: EntityFacts) -> None:
    cls, reasons = classify(f, RULES)
    assert cls in CLASSES and reasons
    assert classify(f, RULES) == (cls, reasons)
    assert all(set(r) == {"code", "label_zh", "detail_zh", "points"} for r in reasons_json(reasons))


@given(fact_sets, ADVERSE)
def test_an_adverse_fact_more_never_improves_the_class(f: EntityFacts, what: str) -> None:
    before, _ = classify(f, RULES)
    after, reasons = classify(worse(f, what), RULES)
    assert CLASSES.index(after) >= CLASSES.index(before)
    assert after != "A" and all(r.points > 0 for r in reasons)


def test_the_abnormal_list_follows_the_30_june_deadline() -> None:
    registered = date(2024, 3, 1)
    # the 2025 report is due by 30 June 2026
    # the 2024 report, filed in 2025, is the last due until 30 June 2026; then the 2025 one is
    assert not owes_annual_report(registered, date(2025, 5, 1), date(2026, 6, 30))
    assert owes_annual_report(registered, date(2025, 5, 1), date(2026, 7, 1))
    assert owes_annual_report(registered, None, date(2026, 6, 30))
    assert not owes_annual_report(registered, date(2026, 4, 2), date(2026, 7, 1))
    assert not owes_annual_report(registered, date(2026, 9, 9), date(2026, 12, 1))  # filed late: off the list
    # an entity registered in 2026 owes nothing until 30 June 2027
    assert not owes_annual_report(date(2026, 2, 1), None, date(2027, 6, 30))
    assert owes_annual_report(date(2026, 2, 1), None, date(2027, 7, 1))


def test_months_before_clamps_to_the_last_day_of_the_month() -> None:
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2026, 12, 1), 12) == date(2025, 12, 1)
    assert months_before(date(2024, 3, 30), 1) == date(2024, 2, 29)
