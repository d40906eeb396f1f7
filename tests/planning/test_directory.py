"""A department's item list and inspector directory as CSV: what Excel writes is read, what we write reads back."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.directory import (
    DirectoryFileError,
    InspectorRow,
    ItemRow,
    inspectors_csv,
    items_csv,
    parse_inspectors,
    parse_items,
    targets_csv,
)
from supervision.uscc import uscc_check_char

ITEM_HEADER = "code,department_code,name,basis,key,entity_kinds,industries,licence_only,service_minutes,source\n"
INSPECTOR_HEADER = "code,department_code,name,qualifications,home_grid_code,office_name,office_lon,office_lat,conflicts,load_cap,active\n"
GOOD_ITEM = "health-01,health,住宿场所卫生监督检查,《公共场所卫生管理条例》,一般,company；individual,旅馆住宿,否,40,国家随机监督抽查计划\n"


def _valid_uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


GOOD_INSPECTOR = (
    f"44190300001,health,陈伟,health-01;health-02,441900003001001,东莞市卫生健康局莞城分局,113.75,23.04,"
    f"{_valid_uscc('91441900MA4W00001')},,是\n"
)


def test_an_excel_file_with_bom_and_full_width_separators_is_read() -> None:
    rows = parse_items(b"\xef\xbb\xbf" + (ITEM_HEADER + GOOD_ITEM).encode("utf-8"))
    assert rows == [
        ItemRow(
            code="health-01",
            department_code="health",
            name="住宿场所卫生监督检查",
            basis="《公共场所卫生管理条例》",
            key=False,
            entity_kinds=("company", "individual"),
            industries=("旅馆住宿",),
            licence_only=False,
            service_minutes=40,
            source="国家随机监督抽查计划",
        )
    ]
    assert rows[0].line == 2


def test_a_gb18030_file_from_older_excel_is_read() -> None:
    rows = parse_items((ITEM_HEADER + GOOD_ITEM).encode("gb18030"))
    assert rows[0].name == "住宿场所卫生监督检查"


def test_every_bad_line_is_listed_with_its_line_and_column_in_one_refusal() -> None:
    lines = [
        GOOD_ITEM,
        "health-02,health,,《公共场所卫生管理条例》,一般,company,,否,40,计划\n",  # line 3: no name
        "health-03,health,检查,依据,特别,company,,否,40,计划\n",  # line 4: key neither 重点 nor 一般
        "health-04,health,检查,依据,一般,shop,,否,40,计划\n",  # line 5: unknown entity kind
        "health-05,health,检查,依据,一般,company,,也许,40,计划\n",  # line 6: licence_only neither 是 nor 否
        "health-06,health,检查,依据,一般,company,,否,500,计划\n",  # line 7: service minutes out of range
        "health-07,health,检查,依据,一般,company,,否,半小时,计划\n",  # line 8: not a number
        "health-01,health,检查,依据,一般,company,,否,30,计划\n",  # line 9: duplicate code
        "bad code!,health,检查,依据,一般,company,,否,30,计划\n",  # line 10: code format
        "health-09,Health Dept,检查,依据,一般,company,,否,30,计划\n",  # line 11: department code format
        "health-10,health,检查,依据,一般,company,,否,30,计划,多余\n",  # line 12: too many cells
    ]
    with pytest.raises(DirectoryFileError) as caught:
        parse_items((ITEM_HEADER + "".join(lines)).encode())
    error = caught.value
    assert error.reason == "invalid_directory"
    where = {(p["line"], p["column"]) for p in error.problems}
    assert where == {
        (3, "name"),
        (4, "key"),
        (5, "entity_kinds"),
        (6, "licence_only"),
        (7, "service_minutes"),
        (8, "service_minutes"),
        (9, "code"),
        (10, "code"),
        (11, "department_code"),
        (12, ""),
    }
    assert "第3行“name”列：不能为空" in str(error)
    assert "与第2行重复" in str(error)


def test_a_bad_line_after_a_cell_spanning_lines_is_named_by_the_line_it_starts_on() -> None:
    spanning = 'health-02,health,检查,"依据一\n依据二",一般,company,,否,40,计划\n'
    bad = "health-03,health,,依据,一般,company,,否,40,计划\n"
    with pytest.raises(DirectoryFileError) as caught:
        parse_items((ITEM_HEADER + GOOD_ITEM + spanning + "\n" + bad).encode())
    assert [(p["line"], p["column"]) for p in caught.value.problems] == [(6, "name")]


def test_a_file_without_the_header_columns_is_refused_by_name() -> None:
    with pytest.raises(DirectoryFileError) as caught:
        parse_items("code,name\nhealth-01,检查\n".encode())
    assert {p["column"] for p in caught.value.problems} >= {"department_code", "basis", "service_minutes"}
    with pytest.raises(DirectoryFileError, match="文件为空"):
        parse_items(b"")


def test_a_file_in_neither_encoding_is_refused_in_chinese() -> None:
    with pytest.raises(DirectoryFileError, match="UTF-8"):
        parse_items(ITEM_HEADER.encode() + b"\xff\xfe\xfa\x80\x80\n")


def test_inspector_lines_with_a_bad_credit_code_grid_or_coordinates_are_refused() -> None:
    lines = [
        GOOD_INSPECTOR,
        "44190300002,health,李强,health-01,441900003001001,分局,113.75,23.04,914419000000000000,,是\n",  # bad USCC
        "44190300003,health,李强,health-01,4419,分局,113.75,23.04,,,是\n",  # grid code not 15 digits
        "44190300004,health,李强,health-01,,分局,東經113,23.04,,,是\n",  # lon not a number
        "44190300005,health,李强,,,分局,113.75,23.04,,,是\n",  # no qualifications
        "44190300006,health,李强,health-01,,分局,113.75,123.0,,0,是\n",  # lat out of range, load cap 0
    ]
    with pytest.raises(DirectoryFileError) as caught:
        parse_inspectors((INSPECTOR_HEADER + "".join(lines)).encode())
    where = {(p["line"], p["column"]) for p in caught.value.problems}
    assert where == {
        (3, "conflicts"),
        (4, "home_grid_code"),
        (5, "office_lon"),
        (6, "qualifications"),
        (7, "office_lat"),
        (7, "load_cap"),
    }


def test_an_inspector_without_an_active_cell_is_active() -> None:
    text = INSPECTOR_HEADER + GOOD_INSPECTOR.replace(",是\n", ",\n")
    (row,) = parse_inspectors(text.encode())
    assert row.active and row.load_cap is None and row.qualifications == ("health-01", "health-02")


# ----------------------------------------------------------------------------------------------- round trips

_word = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters=";；,\"'\ufeff"
        ),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
_cell = st.builds(
    str.__add__,
    # cells a spreadsheet would run as a formula, or that start with the apostrophe that defuses one, round-trip too
    st.sampled_from(["", "", "=", "+", "-", "@", "'", "''", "'="]),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufeff"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool),
)
_code = st.from_regex(r"[a-z_]{1,10}-[0-9]{2}", fullmatch=True)
_department = st.from_regex(r"[a-z_]{1,20}", fullmatch=True)


def _unique(words: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


items = st.builds(
    ItemRow,
    code=_code,
    department_code=_department,
    name=_cell,
    basis=_cell,
    key=st.booleans(),
    entity_kinds=st.sampled_from([("company",), ("individual",), ("company", "individual")]),
    industries=st.lists(_word, max_size=4).map(_unique),
    licence_only=st.booleans(),
    service_minutes=st.integers(10, 120),
    source=_cell,
)
_grid = st.from_regex(r"4419[0-9]{11}", fullmatch=True)
_uscc = st.from_regex(r"9[12]441900[0-9A-HJ-NP-RTUW-Y]{9}", fullmatch=True).map(lambda b: b + uscc_check_char(b))
inspectors = st.builds(
    InspectorRow,
    code=st.from_regex(r"4419[0-9]{7}", fullmatch=True),
    department_code=_department,
    name=_cell,
    qualifications=st.lists(_code, min_size=1, max_size=5).map(_unique),
    home_grid_code=st.none() | _grid,
    office_name=_cell,
    office_lon=st.floats(113.0, 114.5, allow_nan=False),
    office_lat=st.floats(22.0, 23.5, allow_nan=False),
    conflicts=st.lists(_uscc, max_size=3).map(_unique),
    load_cap=st.none() | st.integers(1, 1000),
    active=st.booleans(),
)


def _by_code(rows: list[ItemRow] | list[InspectorRow]) -> list[ItemRow] | list[InspectorRow]:
    seen: dict[str, ItemRow | InspectorRow] = {}
    for row in rows:
        seen.setdefault(row.code, row)
    return sorted(seen.values(), key=lambda r: r.code)  # type: ignore[return-value]


@settings(max_examples=150, deadline=None)
@given(st.lists(items, max_size=8).map(_by_code))
def test_an_exported_item_list_imports_back_exactly(rows: list[ItemRow]) -> None:
    data = items_csv(rows)
    assert parse_items(data) == rows
    assert items_csv(parse_items(data)) == data


@settings(max_examples=150, deadline=None)
@given(st.lists(inspectors, max_size=8).map(_by_code))
def test_an_exported_inspector_directory_imports_back_exactly(rows: list[InspectorRow]) -> None:
    data = inspectors_csv(rows)
    assert parse_inspectors(data) == rows
    assert inspectors_csv(parse_inspectors(data)) == data


def test_a_formula_in_an_item_name_is_exported_behind_an_apostrophe_and_imported_back_as_typed() -> None:
    """An item named `=cmd|calc!A1` must not run in the spreadsheet that opens the export."""
    row = ItemRow(
        code="market_supervision-99",
        department_code="market_supervision",
        name="=cmd|calc!A1",
        basis="@SUM(1+1)",
        key=False,
        entity_kinds=("company",),
        industries=(),
        licence_only=False,
        service_minutes=30,
        source="'引号开头的来源",
    )
    data = items_csv([row])
    line = data.decode("utf-8-sig").splitlines()[1]
    assert "'=cmd|calc!A1" in line and "'@SUM(1+1)" in line and "''引号开头的来源" in line
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in next(csv.reader([line])))
    assert parse_items(data) == [row]


def test_a_formula_in_an_entity_name_is_defused_in_the_target_export() -> None:
    data = targets_csv([("market_supervision-01", "91441900MA4W00000X", "-1+1 商行", "441900003", None)])
    assert data.decode("utf-8-sig").splitlines()[1].split(",")[2] == "'-1+1 商行"
