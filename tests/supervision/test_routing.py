"""Who licenses, supervises: a business scope routes to its licensing departments, a clue industry to its department."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.errors import RoutingError
from supervision.routing import (
    DEPARTMENTS_PATH,
    HIGH_FREQUENCY_INDUSTRIES,
    INDUSTRIES_PATH,
    RULES_PATH,
    Router,
    default_router,
)

CATALOGUE_PATH = Path(__file__).resolve().parents[2] / "synthetic" / "data" / "business_scopes.csv"


@pytest.fixture(scope="module")
def router() -> Router:
    return default_router()


def routes(router: Router, scope: str) -> list[tuple[str, str]]:
    return [(r.department_code, r.licence) for r in router.requirements(scope)]


def catalogue(needs_licence: str) -> list[dict[str, str]]:
    with CATALOGUE_PATH.open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["needs_licence"] == needs_licence]


@pytest.mark.parametrize(
    ("scope", "department", "licence"),
    [
        ("烟草制品零售", "tobacco", "烟草专卖零售许可证"),
        ("食品销售", "market_supervision", "食品经营许可证"),
        ("餐饮服务", "market_supervision", "食品经营许可证"),
        ("药品零售", "market_supervision", "药品经营许可证"),
        ("医疗器械", "market_supervision", "医疗器械经营许可证"),
        ("危险化学品经营", "emergency", "危险化学品经营许可证"),
        ("成品油零售", "commerce", "成品油零售经营批准证书"),
        ("出版物零售", "culture", "出版物经营许可证"),
        ("互联网上网服务", "culture", "网络文化经营许可证"),
        ("娱乐场所", "culture", "娱乐经营许可证"),
        ("道路运输", "transport", "道路运输经营许可证"),
        ("人力资源服务", "hrss", "人力资源服务许可证"),
        ("旅馆业", "public_security", "特种行业许可证"),
    ],
)
def test_the_issues_examples_route_to_the_licensing_department(
    router: Router, scope: str, department: str, licence: str
) -> None:
    assert routes(router, scope) == [(department, licence)]
    assert router.departments_for_scope(scope) == [department]
    assert router.needs_licence(scope)


def test_a_shop_selling_cigarettes_food_and_medicine_is_one_joint_case_for_two_departments(router: Router) -> None:
    scope = "烟草制品零售；食品销售；药品零售"
    # Dongguan's market supervision bureau licenses both food and drug retail, so two departments, three licences.
    assert routes(router, scope) == [
        ("tobacco", "烟草专卖零售许可证"),
        ("market_supervision", "食品经营许可证"),
        ("market_supervision", "药品经营许可证"),
    ]
    assert router.departments_for_scope(scope) == ["tobacco", "market_supervision"]
    assert [d.name for d in map(router.department, router.departments_for_scope(scope))] == [
        "东莞市烟草专卖局",
        "东莞市市场监督管理局",
    ]


def test_one_licence_is_asked_for_once_however_many_keywords_need_it(router: Router) -> None:
    assert routes(router, "食品销售、餐饮服务，散装食品销售;食品销售\n餐饮服务") == [
        ("market_supervision", "食品经营许可证")
    ]


@pytest.mark.parametrize(
    "scope",
    [
        "化工产品销售（不含危险化学品）",
        "化工产品销售(不含危险化学品)",
        "化工产品销售（除危险化学品外）",
        "化工产品销售(除危险化学品外)",
        "化工产品销售（危险化学品除外）",
        "化工原料销售，不含危险化学品",
        "五金产品零售（除危险化学品、监控化学品、烟花爆竹、民用爆炸物品、易制毒化学品外）",
        "化工产品销售（不含危险化学品",
    ],
)
def test_what_a_scope_says_it_does_not_include_needs_no_licence(router: Router, scope: str) -> None:
    assert router.requirements(scope) == []
    assert not router.needs_licence(scope)


def test_a_negation_only_covers_its_own_bracket(router: Router) -> None:
    assert routes(router, "化工产品销售（不含危险化学品）；烟草制品零售") == [("tobacco", "烟草专卖零售许可证")]
    assert routes(router, "危险化学品经营（不含烟草制品零售）") == [("emergency", "危险化学品经营许可证")]


def test_the_longest_keyword_wins(router: Router) -> None:
    assert routes(router, "小餐饮服务") == [("market_supervision", "小餐饮经营许可证")]
    assert routes(router, "医疗美容服务") == [("health", "医疗机构执业许可证")]
    # Longer keywords that are exemptions beat the licensed keyword inside them.
    assert routes(router, "预包装食品销售") == []
    assert routes(router, "汽车美容服务") == []
    assert routes(router, "一般项目：食品销售（仅销售预包装食品）；第二类医疗器械销售") == []
    assert routes(router, "印刷电路板制造") == []


def test_full_width_and_half_width_forms_and_stray_spaces_route_alike(router: Router) -> None:
    assert routes(router, "烟草制品零售;食品 销售") == routes(router, "烟草制品零售；食品销售")
    assert routes(router, "卡拉ＯＫ") == [("culture", "娱乐经营许可证")]


def test_every_licensed_scope_of_the_catalogue_gets_its_catalogue_licence_and_department(router: Router) -> None:
    names = {d.code: d.name for d in router.departments()}
    rows = catalogue("1")
    assert rows
    for row in rows:
        found = [(names[r.department_code], r.licence) for r in router.requirements(row["scope"])]
        assert any(name.endswith(row["department"]) and licence == row["licence"] for name, licence in found), (
            row["scope"],
            found,
        )


def test_the_catalogues_general_scopes_need_nothing(router: Router) -> None:
    rows = catalogue("0")
    assert rows
    assert {row["scope"]: routes(router, row["scope"]) for row in rows} == {row["scope"]: [] for row in rows}


def test_the_rule_table_is_large_and_every_rule_says_why(router: Router) -> None:
    rules = router.rules()
    assert len(rules) >= 60
    assert all(r.basis and r.licence for r in rules)
    known = {d.code for d in router.departments()}
    assert {r.department_code for r in rules} <= known


def test_each_of_the_17_clue_industries_goes_to_an_existing_department(router: Router) -> None:
    assert router.clue_industries()[:17] == list(HIGH_FREQUENCY_INDUSTRIES)
    for industry in HIGH_FREQUENCY_INDUSTRIES:
        assert router.department(router.department_for_industry(industry)).name.startswith("东莞市")
    assert router.department_for_industry("烟草制品零售") == "tobacco"
    assert router.department_for_industry("药品零售") == "market_supervision"


def test_an_unknown_industry_is_refused_with_the_valid_ones(router: Router) -> None:
    with pytest.raises(RoutingError) as caught:
        router.department_for_industry("卖烟")
    assert "卖烟" in str(caught.value)
    assert all(industry in str(caught.value) for industry in HIGH_FREQUENCY_INDUSTRIES)


def test_an_unknown_department_is_refused(router: Router) -> None:
    with pytest.raises(RoutingError, match="tabacco"):
        router.department("tabacco")


def test_address_problems_go_to_market_supervision_and_severe_clues_to_the_command_centre(router: Router) -> None:
    assert router.address_problem_department() == "market_supervision"
    assert router.command_centre() == "command_centre"
    assert router.department("command_centre").name == "东莞市网格化服务管理指挥中心"
    assert all(d.code.isascii() for d in router.departments())


def test_a_rules_file_naming_an_unknown_department_is_refused_with_its_file_and_row(tmp_path: Path) -> None:
    rules = tmp_path / "licence_rules.csv"
    shutil.copy(RULES_PATH, rules)
    with rules.open("a", encoding="utf-8") as handle:
        handle.write("卷烟批发,tabacco,烟草专卖批发企业许可证,《烟草专卖法》\n")
    line = len(rules.read_text(encoding="utf-8").splitlines())
    with pytest.raises(RoutingError) as caught:
        Router(DEPARTMENTS_PATH, rules, INDUSTRIES_PATH)
    message = str(caught.value)
    assert "licence_rules.csv" in message and f"line {line}" in message and "tabacco" in message


def test_a_rules_file_listing_a_keyword_twice_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "licence_rules.csv"
    shutil.copy(RULES_PATH, rules)
    with rules.open("a", encoding="utf-8") as handle:
        handle.write("食品销售,market_supervision,食品经营许可证,《食品安全法》第三十五条\n")
    with pytest.raises(RoutingError, match="listed twice"):
        Router(DEPARTMENTS_PATH, rules, INDUSTRIES_PATH)


def test_an_industries_file_missing_a_high_frequency_industry_is_refused(tmp_path: Path) -> None:
    industries = tmp_path / "clue_industries.csv"
    lines = INDUSTRIES_PATH.read_text(encoding="utf-8").splitlines()
    industries.write_text("\n".join(line for line in lines if not line.startswith("校外培训")) + "\n", "utf-8")
    with pytest.raises(RoutingError, match="校外培训"):
        Router(DEPARTMENTS_PATH, RULES_PATH, industries)


_FRAGMENTS = st.sampled_from(
    [
        "烟草制品零售",
        "食品销售",
        "预包装",
        "小餐饮服务",
        "危险化学品",
        "（",
        "）",
        "(",
        ")",
        "不含",
        "除",
        "外",
        "；",
        "，",
        "、",
        "\n",
    ]
)
scopes = st.one_of(st.text(max_size=60), st.lists(st.one_of(_FRAGMENTS, st.text(max_size=3)), max_size=12).map("".join))


@settings(max_examples=300, deadline=None)
@given(scopes)
def test_any_text_routes_without_error_and_repeating_a_scope_changes_nothing(scope: str) -> None:
    router = default_router()
    once = router.requirements(scope)
    assert router.requirements(scope + "；" + scope) == once
    assert router.needs_licence(scope) == bool(once)
