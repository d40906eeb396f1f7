"""The one Scope: what each kind sees on the map, which review items it handles, which units' figures it covers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from grids.codes import town_of
from supervision.scope import CITY, NOWHERE, Scope

TOWN = "441900003000"
COMMUNITY = "441900003001"
NEIGHBOUR = "441900003002"
OTHER_TOWN = "441900004000"

towns = st.integers(0, 999).map(lambda n: f"441900{n:03d}000")
communities = st.tuples(st.integers(0, 999), st.integers(1, 999)).map(lambda t: f"441900{t[0]:03d}{t[1]:03d}")


def test_the_map_area_of_each_kind() -> None:
    assert CITY.towns is None and Scope("department", "tobacco").towns is None
    assert Scope("town", TOWN).towns == {TOWN}
    assert Scope("community", COMMUNITY).towns == {TOWN}
    assert Scope("worker", "7", TOWN).towns == {TOWN}
    assert Scope("worker", "7").towns == frozenset() and NOWHERE.towns == frozenset()
    assert Scope("community", COMMUNITY).sees(NEIGHBOUR + "001") and not Scope("town", TOWN).sees(OTHER_TOWN)


def test_a_dispatcher_handles_their_communitys_items_and_their_towns_unplaced_ones_only() -> None:
    mine = Scope("community", COMMUNITY)
    assert mine.handles_review(TOWN, COMMUNITY)
    assert mine.handles_review(TOWN, None)
    assert not mine.handles_review(TOWN, NEIGHBOUR)
    assert not mine.handles_review(OTHER_TOWN, None)
    assert not mine.handles_review(None, None)  # an item of no known town is the command centre's
    assert CITY.handles_review(None, None)
    assert Scope("town", TOWN).handles_review(TOWN, NEIGHBOUR) and not Scope("town", TOWN).handles_review(
        OTHER_TOWN, None
    )
    for nobody in (Scope("worker", "7", TOWN), Scope("department", "tobacco"), NOWHERE):
        assert not nobody.handles_review(TOWN, COMMUNITY)
        assert nobody.review_sql()[0] == "FALSE"


@given(communities, communities, st.booleans())
def test_a_community_scope_handles_exactly_the_items_of_its_town_and_community(
    mine: str, item_community: str, unknown: bool
) -> None:
    scope = Scope("community", mine)
    community = None if unknown else item_community
    expected = town_of(item_community) == town_of(mine) and (community is None or community == mine)
    assert scope.handles_review(town_of(item_community), community) is expected


@given(towns, communities)
def test_a_town_covers_the_units_inside_it_and_no_others(town: str, community: str) -> None:
    scope = Scope("town", town)
    inside = town_of(community) == town
    assert scope.sees(community) is inside
    assert scope.sees(community + "001") is inside
