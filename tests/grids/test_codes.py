"""One place knows how a code is laid out: a town holds its communities, a community its grids, at every level."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from grids.codes import (
    COMMUNITY_DIGITS,
    GRID_DIGITS,
    TOWN_DIGITS,
    TOWN_PREFIX_DIGITS,
    child_prefix,
    community_of,
    community_sql,
    grid_code,
    grid_number,
    is_community,
    is_town,
    level_of,
    town_of,
    within,
)

PREFIXES = st.from_regex(r"\A441900\d{3}\Z")  # Dongguan's towns: 4419 00 and three digits
COMMUNITY_NUMBERS = st.integers(1, 999).map(lambda n: f"{n:03d}")
GRID_NUMBERS = st.integers(1, 999)


@st.composite
def towns(draw: st.DrawFn) -> str:
    return draw(PREFIXES) + "000"


@st.composite
def communities(draw: st.DrawFn) -> str:
    return draw(PREFIXES) + draw(COMMUNITY_NUMBERS)


@st.composite
def grids(draw: st.DrawFn) -> str:
    return grid_code(draw(communities()), draw(GRID_NUMBERS))


def test_the_layout_of_the_real_codes() -> None:
    assert town_of("441900003001002") == town_of("441900003001") == town_of("441900003000") == "441900003000"
    assert community_of("441900003001002") == "441900003001"
    assert grid_code("441900003001", 2) == "441900003001002" and grid_number("441900003001002") == 2
    assert [level_of(c) for c in ("441900003000", "441900003001", "441900003001002", "4419", "city")] == [
        "town",
        "community",
        "grid",
        None,
        None,
    ]
    assert community_sql("c.grid_code") == "left(c.grid_code, 12)"
    assert (TOWN_PREFIX_DIGITS, TOWN_DIGITS, COMMUNITY_DIGITS, GRID_DIGITS) == (9, 12, 12, 15)


@given(community=communities(), number=GRID_NUMBERS)
def test_a_grid_lies_in_its_community_and_both_in_one_town(community: str, number: int) -> None:
    grid = grid_code(community, number)
    assert level_of(grid) == "grid" and len(grid) == GRID_DIGITS
    assert community_of(grid) == community and grid_number(grid) == number
    assert town_of(grid) == town_of(community)
    assert within(grid, community) and within(grid, town_of(grid)) and within(community, town_of(community))
    assert grid.startswith(child_prefix(community, "grid"))
    assert community.startswith(child_prefix(town_of(community), "community"))


@given(code=st.one_of(towns(), communities(), grids()))
def test_every_unit_lies_within_itself_and_its_town_is_a_town(code: str) -> None:
    town = town_of(code)
    assert is_town(town) and not is_community(town) and level_of(town) == "town"
    assert within(code, code) and within(code, town)
    assert town_of(town) == town


@given(code=st.one_of(towns(), communities(), grids()), other=towns())
def test_a_unit_lies_in_exactly_the_town_whose_first_nine_digits_it_shares(code: str, other: str) -> None:
    assert within(code, other) == (code[:TOWN_PREFIX_DIGITS] == other[:TOWN_PREFIX_DIGITS]) == (town_of(code) == other)


@given(grid=grids(), community=communities())
def test_a_grid_lies_in_one_community_only(grid: str, community: str) -> None:
    assert within(grid, community) == (community_of(grid) == community)


@given(community=communities())
def test_a_community_code_is_never_read_as_a_town(community: str) -> None:
    assert is_community(community) != community.endswith("000")
    assert level_of(community) == ("town" if community.endswith("000") else "community")


@given(text=st.text(alphabet="0123456789a ", max_size=16))
def test_only_twelve_or_fifteen_digits_name_a_level(text: str) -> None:
    level = level_of(text)
    assert (level is not None) == bool(re.fullmatch(r"\d{12}|\d{15}", text))
