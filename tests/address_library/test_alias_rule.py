"""A learned alias answers only where the query's own evidence puts it (issue 17, finding 3: no poisoned geocoder).

The rule (address_library.match): an alias is keyed by its body, the typed text without the town and community
names it opens with. A community alias answers only a query that names its town (and no other community): never
the bare body, never with another town's name; with its community named it is confident enough to place a
registration, with only the town it is not. A city alias answers the bare body, unless the query names another
town. Suspended and withdrawn aliases (not in the active set) answer nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from address_library.live import LiveGeocoder
from address_library.match import ALIAS_COMMUNITY_CONFIDENCE, ALIAS_TOWN_CONFIDENCE, alias_body, split_opening
from address_library.repository import AliasEntry, alias_version, promote_alias, teach_alias, withdraw_alias
from address_library.service import Geocoder
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.intake import PLACE_MIN_CONFIDENCE

pytestmark = pytest.mark.db

BODY = "火星路999号"


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> Iterator[dict[str, Any]]:
    """The geocoder of the test city, a door with its town and community names, and the other towns' names."""
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
        door = (
            conn.execute(
                text(
                    "SELECT a.id, a.town_code, a.community_code, t.name AS town, c.name AS community "
                    "FROM address a JOIN town t ON t.code = a.town_code JOIN community c ON c.code = a.community_code "
                    "WHERE a.level = 'door' AND a.status = 'active' ORDER BY a.id LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
        other_community = conn.execute(
            text("SELECT name FROM community WHERE town_code = :t AND code <> :c ORDER BY code LIMIT 1"),
            {"t": door["town_code"], "c": door["community_code"]},
        ).scalar_one()
        others = list(
            conn.execute(
                text("SELECT name FROM town WHERE code <> :t ORDER BY code"), {"t": door["town_code"]}
            ).scalars()
        )
    engine.dispose()
    yield {"geocoder": geocoder, "door": dict(door), "other_community": other_community, "other_towns": others}
    geocoder.set_aliases([])


def community_alias(door: dict[str, Any], typed: str = BODY) -> AliasEntry:
    return AliasEntry(1, typed, int(door["id"]), "community", door["community_code"])


def test_the_body_of_an_alias_drops_only_the_town_and_community_it_opens_with(world: dict[str, Any]) -> None:
    door = world["door"]
    assert alias_body(BODY) == BODY
    assert alias_body(door["town"] + door["community"] + BODY) == BODY
    assert alias_body(door["town"] + BODY) == BODY
    assert split_opening(BODY) == (BODY, None, None)
    assert split_opening(door["town"] + door["community"] + BODY) == (BODY, door["town_code"], door["community_code"])
    assert split_opening(door["community"] + BODY) == (BODY, door["town_code"], door["community_code"])
    assert split_opening(door["town"] + BODY) == (BODY, door["town_code"], None)


def test_a_community_alias_answers_only_with_its_own_town_named(world: dict[str, Any]) -> None:
    geocoder: Geocoder = world["geocoder"]
    door = world["door"]
    geocoder.set_aliases([community_alias(door)])
    try:
        # The bare text names no town: the alias does not answer it (not that door, not confidently anything).
        bare = geocoder.geocode(BODY)
        assert bare.address_id != door["id"]
        assert not (bare.status == "matched" and bare.confidence >= PLACE_MIN_CONFIDENCE and bare.level == "door")
        # Another town's name: never.
        for town in world["other_towns"][:5]:
            assert geocoder.geocode(town + BODY).address_id != door["id"], town
        # Another community of the same town: never.
        assert geocoder.geocode(door["town"] + world["other_community"] + BODY).address_id != door["id"]
        # Its town alone: that door, below the confidence that places a registration without a dispatcher.
        town_only = geocoder.geocode(door["town"] + BODY)
        assert (town_only.address_id, town_only.confidence) == (door["id"], ALIAS_TOWN_CONFIDENCE)
        assert town_only.confidence < PLACE_MIN_CONFIDENCE
        # Its town and community: that door, confidently.
        named = geocoder.geocode(door["town"] + door["community"] + BODY)
        assert (named.address_id, named.confidence) == (door["id"], ALIAS_COMMUNITY_CONFIDENCE)
        assert named.confidence >= PLACE_MIN_CONFIDENCE
    finally:
        geocoder.set_aliases([])


def test_a_city_alias_answers_the_bare_text_but_not_another_towns(world: dict[str, Any]) -> None:
    geocoder: Geocoder = world["geocoder"]
    door = world["door"]
    geocoder.set_aliases([AliasEntry(2, BODY, int(door["id"]), "city", door["community_code"])])
    try:
        bare = geocoder.geocode(BODY)
        assert bare.address_id == door["id"] and bare.confidence >= 0.99
        assert geocoder.geocode(world["other_towns"][0] + BODY).address_id != door["id"]
        assert geocoder.geocode(door["town"] + door["community"] + BODY).address_id == door["id"]
    finally:
        geocoder.set_aliases([])


def test_a_forgotten_alias_answers_nothing_at_once(world: dict[str, Any]) -> None:
    geocoder: Geocoder = world["geocoder"]
    door = world["door"]
    geocoder.set_aliases([community_alias(door)])
    query = door["town"] + door["community"] + BODY
    assert geocoder.geocode(query).address_id == door["id"]
    geocoder.forget_alias(1)
    assert geocoder.geocode(query).address_id != door["id"]


def test_two_aliases_that_fit_with_different_doors_answer_nothing(world: dict[str, Any]) -> None:
    geocoder: Geocoder = world["geocoder"]
    door = world["door"]
    other = int(geocoder.index.ids[0]) if int(geocoder.index.ids[0]) != door["id"] else int(geocoder.index.ids[1])
    geocoder.set_aliases([AliasEntry(3, BODY, int(door["id"]), "city", None),
                          AliasEntry(4, door["town"] + BODY, other, "city", None)])  # fmt: skip
    try:
        assert geocoder.geocode(door["town"] + door["community"] + BODY).address_id not in (door["id"], other)
    finally:
        geocoder.set_aliases([])


def test_another_process_sees_teaching_promotion_and_withdrawal_at_its_next_check(
    db: DatabaseSettings, world: dict[str, Any]
) -> None:
    """The live geocoder of another process reloads aliases when the table's fingerprint changes; every change (a
    new alias, a promotion, a withdrawal) changes it."""
    door = world["door"]
    body = "土星路5号"
    engine = make_engine(db)
    live = LiveGeocoder(engine)
    try:
        live.get()
        with engine.begin() as conn:
            before = alias_version(conn)
            taught = teach_alias(conn, normalized_text=body, address_id=int(door["id"]), raw_text=body,
                                 taught_by="user:elsewhere", community_code=door["community_code"])  # fmt: skip
            assert alias_version(conn) != before
        live._check_and_rebuild()  # what the background check runs
        assert live.get().geocode(door["town"] + door["community"] + body).address_id == door["id"]
        assert live.get().geocode(body).address_id != door["id"]
        with engine.begin() as conn:
            before = alias_version(conn)
            assert promote_alias(conn, taught.alias_id, by="user:centre", reason="核实")
            assert alias_version(conn) != before
        live._check_and_rebuild()
        assert live.get().geocode(body).address_id == door["id"]
        with engine.begin() as conn:
            before = alias_version(conn)
            assert withdraw_alias(conn, taught.alias_id, by="user:centre", reason="撤销")
            assert alias_version(conn) != before
            assert not withdraw_alias(conn, taught.alias_id, by="user:centre", reason="again")
        live._check_and_rebuild()
        assert live.get().geocode(body).address_id != door["id"]
        assert live.get().geocode(door["town"] + door["community"] + body).address_id != door["id"]
    finally:
        engine.dispose()


BODIES = st.text(alphabet="火星木金水土大中新路街巷道号栋座0123456789之-", min_size=2, max_size=14)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, pick=st.integers(min_value=0, max_value=10_000), with_town=st.booleans())
def test_a_community_alias_never_changes_the_answer_for_a_query_naming_another_town(
    world: dict[str, Any], body: str, pick: int, with_town: bool
) -> None:
    geocoder: Geocoder = world["geocoder"]
    door = world["door"]
    town = world["other_towns"][pick % len(world["other_towns"])]
    taught = (door["town"] + door["community"] if with_town else "") + body
    query = town + body
    geocoder.set_aliases([])
    before = geocoder.geocode(query)
    geocoder.set_aliases([community_alias(door, taught)])
    try:
        after = geocoder.geocode(query)
    finally:
        geocoder.set_aliases([])
    assert after == before
