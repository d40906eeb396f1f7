"""An API client sends addresses as people type them and gets the standard address, its level and an honest confidence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from address_library.errors import AddressInputError
from address_library.index import name_token
from address_library.parse import parse
from address_library.repository import index_rows
from address_library.service import Geocoder
from benchmarks.geocode_eval import judge
from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids.repository import place_names
from synthetic.geocode_cases import CaseMaker

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def geocoder(db: DatabaseSettings) -> Iterator[Geocoder]:
    engine = make_engine(db)
    with engine.connect() as conn:
        yield Geocoder.load(conn)
    engine.dispose()


def one(db: DatabaseSettings, sql: str, **params: Any) -> Any:
    engine = make_engine(db)
    with engine.connect() as conn:
        row = conn.execute(text(sql), params).mappings().first()
    engine.dispose()
    assert row is not None, sql
    return row


def test_a_standard_address_typed_exactly_is_matched_with_near_certainty(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(db, "SELECT id, full_text, grid_code FROM address WHERE level = 'room' ORDER BY id LIMIT 1")
    answer = geocoder.geocode(row["full_text"])
    assert (answer.status, answer.level, answer.address_id) == ("matched", "room", row["id"])
    assert answer.confidence >= 0.99  # calibrated: the share of exact-text answers that were right
    assert answer.grid_code == row["grid_code"]


def test_writing_habits_do_not_change_the_answer(db: DatabaseSettings, geocoder: Geocoder) -> None:
    row = one(
        db,
        "SELECT a.id, a.full_text, a.building, t.name AS town FROM address a JOIN town t ON t.code = a.town_code "
        "WHERE a.level = 'building' AND a.building LIKE '%栋' ORDER BY a.id LIMIT 1",
    )
    body = row["full_text"][len(row["town"]) :]
    short_town = row["town"].removesuffix("镇").removesuffix("街道")
    variants = [
        "广东省东莞市" + row["full_text"],
        short_town + body.replace("栋", "座"),
        "東莞市" + row["full_text"].replace("1", "１").replace("2", "２"),
        row["full_text"] + "(近菜市场)",
    ]
    for typed in variants:
        answer = geocoder.geocode(typed)
        assert answer.address_id == row["id"], (typed, answer)
        assert answer.confidence >= 0.9


def test_a_room_missing_from_the_library_resolves_to_its_building_and_says_so(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT b.id, b.full_text FROM address b WHERE b.level = 'building' AND b.building LIKE '%栋' "
        "AND EXISTS (SELECT 1 FROM address r WHERE r.parent_id = b.id) ORDER BY b.id LIMIT 1",
    )
    answer = geocoder.geocode(row["full_text"] + "9单元9999房")
    assert (answer.status, answer.level) == ("matched", "building")
    assert answer.address_id == row["id"]  # the confidence is that of the building, the level it answers at
    assert "not in the library" in (answer.reason or "")


def road_door_ranges(db: DatabaseSettings) -> list[dict[str, Any]]:
    """Every road of the test city with four or more numbered doors: its town, and its highest number (named too)."""
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT a.road_name, a.town_code, t.name AS town, max(substring(a.door_no FROM '^[0-9]+')::int) AS top "
                    "FROM address a JOIN town t ON t.code = a.town_code "
                    "WHERE a.road_name IS NOT NULL AND a.door_no ~ '^[0-9]+' "
                    "GROUP BY a.road_name, a.town_code, t.name HAVING count(*) >= 4 ORDER BY a.town_code, a.road_name"
                )
            )
            .mappings()
            .all()
        )
    engine.dispose()
    return [dict(r) for r in rows]


def test_a_door_number_missing_from_the_library_is_placed_on_its_road_not_invented(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    # Every road of the city, not the first one that sorts: a door two above the road's highest is not in the
    # library, and the geocoder must neither "correct" the road into a neighbour that has that door (三新三路14号 →
    # 三新四路14号) nor take the namesake road of another town.
    roads = road_door_ranges(db)
    assert len(roads) > 100
    read = 0
    for road in roads:
        missing = int(road["top"]) + 2
        typed = f"{road['town']}{road['road_name']}{missing}号"
        answer = geocoder.geocode(typed)
        assert answer.level not in ("room", "building", "door") and answer.address_id is None, (typed, answer)
        if name_token(parse(typed).road) != name_token(road["road_name"]):
            continue  # the parser reads the road differently (a town name inside it): no road answer to check
        read += 1
        assert (answer.status, answer.level) == ("matched", "road"), (typed, answer)
        assert answer.standard_address == typed, (typed, answer)
        # The point lies between the road's nearest doors: in the road's town, unless the road runs on its edge.
        assert answer.town_code == road["town_code"] or answer.near_boundary, (typed, answer)
        assert "is not in the library" in (answer.reason or ""), answer
        assert answer.grid_code is not None
    assert read >= 0.9 * len(roads)


def test_a_door_of_a_namesake_road_in_another_town_is_not_taken_for_the_typed_towns_road(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT t.name AS town, a.town_code, a.road_name, b.door_no FROM address a JOIN address b "
        "ON b.road_name = a.road_name AND b.town_code <> a.town_code AND b.level = 'door' AND b.door_no ~ '^[0-9]+$' "
        "AND b.sub_no IS NULL JOIN town t ON t.code = a.town_code WHERE a.level = 'door' AND a.road_name IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM address c WHERE c.town_code = a.town_code AND c.road_name = a.road_name "
        "AND c.door_no = b.door_no) ORDER BY a.town_code, a.road_name, b.door_no LIMIT 1",
    )
    typed = f"{row['town']}{row['road_name']}{row['door_no']}号"
    answer = geocoder.geocode(typed)
    assert (answer.status, answer.level, answer.town_code) == ("matched", "road", row["town_code"]), answer
    assert answer.address_id is None


def test_the_same_door_in_two_towns_without_a_town_is_ambiguous_with_both(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT a.village, a.lane, a.door_no, count(DISTINCT a.town_code) AS towns FROM address a "
        "WHERE a.kind = 'village' AND a.level = 'door' AND a.sub_no IS NULL GROUP BY a.village, a.lane, a.door_no "
        "HAVING count(DISTINCT a.town_code) >= 2 ORDER BY a.village, a.lane, a.door_no LIMIT 1",
    )
    typed = f"{row['village']}{row['lane'] or ''}{row['door_no']}号"
    answer = geocoder.geocode(typed)
    assert answer.status == "ambiguous", answer
    assert len(answer.candidates) >= 2
    assert answer.address_id is None


def test_relative_locations_and_intersections_answer_at_road_level(db: DatabaseSettings, geocoder: Geocoder) -> None:
    row = one(
        db,
        "SELECT a.full_text FROM address a WHERE a.kind = 'road_door' AND a.level = 'door' ORDER BY a.id LIMIT 1",
    )
    near = geocoder.geocode(row["full_text"] + "对面")
    assert near.status == "matched" and near.level == "road" and near.confidence <= 0.6
    roads = one(
        db,
        "SELECT t.name AS town, a.name AS a, b.name AS b FROM road a JOIN road b ON a.town_code = b.town_code "
        "AND a.id < b.id AND a.name <> b.name AND ST_Intersects(a.geom, b.geom) JOIN town t ON t.code = a.town_code "
        "ORDER BY a.id LIMIT 1",
    )
    crossing = geocoder.geocode(f"{roads['town']}{roads['a']}与{roads['b']}交叉口")
    assert crossing.status == "matched" and crossing.level == "road", crossing
    assert crossing.confidence <= 0.7


def test_an_address_in_another_city_or_nowhere_is_not_found(geocoder: Geocoder) -> None:
    assert geocoder.geocode("青岛市东莞路1号").status == "not_found"
    assert geocoder.geocode("null 电联").status == "not_found"
    sql_like = geocoder.geocode("1' OR '1'='1; DROP TABLE address;--")
    assert sql_like.status == "not_found" and sql_like.address_id is None


def test_unusable_input_is_refused(geocoder: Geocoder) -> None:
    for bad in ("", "长安镇" * 200, "长安镇\x00振隆路"):
        with pytest.raises(AddressInputError):
            geocoder.geocode(bad)


def test_reverse_gives_the_nearest_door_and_the_grid_of_the_point(db: DatabaseSettings, geocoder: Geocoder) -> None:
    row = one(
        db,
        "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code FROM address WHERE level = 'door' ORDER BY id LIMIT 1",
    )
    found = geocoder.reverse(row["lon"], row["lat"])
    assert found["distance_m"] < 1.0
    assert found["grid_code"] == row["grid_code"]
    assert isinstance(found["near_boundary"], bool)


def test_autocomplete_offers_at_most_ten_addresses_that_start_as_typed(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(db, "SELECT full_text FROM address WHERE level = 'door' ORDER BY id LIMIT 1")
    prefix = row["full_text"][:-2]
    suggestions = geocoder.autocomplete(prefix)
    assert 1 <= len(suggestions) <= 10
    assert all(s["standard_address"].startswith(prefix) for s in suggestions)
    assert suggestions[0]["level"] == "door"


def test_noisy_registrations_are_placed_in_the_right_grid_with_an_honest_confidence(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.raw_address, t.address_id, a.grid_code FROM entity e "
                "JOIN synthetic.entity_truth t ON t.uscc = e.uscc JOIN address a ON a.id = t.address_id "
                "ORDER BY e.uscc LIMIT 4000"
            )
        ).all()
    engine.dispose()
    answers = geocoder.answers([geocoder.matcher.match(r[0]) for r in rows])
    right_grid = np.mean([a.grid_code == r[2] for a, r in zip(answers, rows, strict=True)])
    confident = [(a, r) for a, r in zip(answers, rows, strict=True) if a.confidence >= 0.9]
    precision = np.mean([a.address_id == r[1] for a, r in confident])
    assert right_grid >= 0.99
    assert precision >= 0.995
    assert len(confident) / len(rows) >= 0.8


@pytest.fixture(scope="module")
def maker(db: DatabaseSettings) -> CaseMaker:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = index_rows(conn)
        towns, communities = place_names(conn)
    engine.dispose()
    return CaseMaker(rows, towns, communities, seed=7)


def test_addresses_the_library_does_not_hold_never_come_back_as_a_confident_door(
    geocoder: Geocoder, maker: CaseMaker
) -> None:
    absent = maker.absent(600)
    judged = list(judge(geocoder, absent))
    confident_wrong = [j for j in judged if j.result.is_door_level and j.result.confidence >= 0.9 and not j.right]
    assert len(confident_wrong) <= 0.01 * len(absent), [(j.case.text, j.result) for j in confident_wrong[:5]]
    new_compounds = [j for j in judged if j.case.kind == "new_compound"]
    assert new_compounds
    for j in new_compounds:
        # Answered at the finest level that is known, naming what the library does not hold.
        assert j.result.status != "matched" or not j.result.is_door_level or j.result.confidence < 0.9, j
        if j.result.status == "matched" and not j.result.is_door_level:
            assert "not in the library" in (j.result.reason or ""), j.result


def test_input_method_slips_anywhere_still_find_the_address(geocoder: Geocoder, maker: CaseMaker) -> None:
    slips = maker.slips(600)
    judged = list(judge(geocoder, slips))
    answers = geocoder.answers([j.result for j in judged])
    right_grid = sum(a.grid_code == j.case.grid_code for j, a in zip(judged, answers, strict=True))
    assert right_grid >= 0.95 * len(slips)


def test_a_slip_in_the_road_ending_still_finds_the_door(db: DatabaseSettings, geocoder: Geocoder) -> None:
    row = one(
        db,
        "SELECT a.id, t.name AS town, a.road_name, a.door_no FROM address a JOIN town t ON t.code = a.town_code "
        "WHERE a.kind = 'road_door' AND a.level = 'door' AND a.road_name LIKE '%路' AND a.sub_no IS NULL "
        "ORDER BY a.id LIMIT 1",
    )
    typed = f"{row['town']}{row['road_name'][:-1]}璐{row['door_no'].removesuffix('号')}号"
    answer = geocoder.geocode(typed)
    assert (answer.status, answer.address_id) == ("matched", row["id"]), answer
    assert answer.level == "door"


def test_a_compound_name_that_differs_in_sound_and_shape_is_not_corrected(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT a.compound, c.name AS community, t.name AS town FROM address a JOIN town t ON t.code = a.town_code "
        "JOIN community c ON c.code = a.community_code WHERE a.compound LIKE '%花园' AND a.level = 'door' "
        "ORDER BY a.id LIMIT 1",
    )
    changed = "鑫" + row["compound"][1:] if row["compound"][0] != "鑫" else "淼" + row["compound"][1:]
    answer = geocoder.geocode(f"{row['town']}{row['community']}{changed}")
    assert not (answer.status == "matched" and answer.level in ("door", "building", "room")), answer
    assert answer.status == "matched" and answer.level == "community"
    assert changed in (answer.reason or "")


def test_nonsense_foreign_and_empty_addresses_get_a_clear_status_never_a_confident_answer(geocoder: Geocoder) -> None:
    for typed in ("hello world 123", "北京市朝阳区建国路88号", "广州市天河区体育西路1号", "东莞市", "？？？"):
        answer = geocoder.geocode(typed)
        assert answer.status == "not_found" and answer.reason, (typed, answer)
        assert answer.confidence < 0.5
    outside = geocoder.geocode("北京市朝阳区建国路88号")
    assert "outside_dongguan" in (outside.reason or "")


def test_another_citys_address_that_reuses_a_dongguan_name_is_not_placed(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(db, "SELECT road_name FROM address WHERE road_name LIKE '%路' ORDER BY id LIMIT 1")
    for typed in (f"中山市{row['road_name']}9号", f"广东省广州市天河区{row['road_name']}8号"):
        answer = geocoder.geocode(typed)
        assert answer.status == "not_found" and "outside_dongguan" in (answer.reason or ""), (typed, answer)


def test_a_town_written_last_or_a_form_label_in_front_still_finds_the_door(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT a.id, t.name AS town, a.full_text FROM address a JOIN town t ON t.code = a.town_code "
        "WHERE a.kind = 'road_door' AND a.level = 'door' AND a.sub_no IS NULL ORDER BY a.id LIMIT 1",
    )
    body = row["full_text"].removeprefix(row["town"])
    for typed in (f"{body}，广东东莞{row['town']}", f"收货地址：{row['full_text']}", f"住址 {row['full_text']}"):
        answer = geocoder.geocode(typed)
        assert (answer.status, answer.address_id) == ("matched", row["id"]), (typed, answer)


def test_a_building_typed_without_its_phase_is_found_when_one_phase_has_it(
    db: DatabaseSettings, geocoder: Geocoder
) -> None:
    row = one(
        db,
        "SELECT a.id, a.full_text, a.phase FROM address a WHERE a.level = 'building' AND a.phase IS NOT NULL "
        "AND a.compound IS NOT NULL AND NOT EXISTS (SELECT 1 FROM address b WHERE b.compound = a.compound "
        "AND b.town_code = a.town_code AND b.building = a.building AND b.phase IS DISTINCT FROM a.phase) "
        "AND position(a.phase IN a.full_text) > 0 ORDER BY a.id LIMIT 1",
    )
    answer = geocoder.geocode(row["full_text"].replace(row["phase"], "", 1))
    assert (answer.status, answer.level, answer.address_id) == ("matched", "building", row["id"]), answer


def test_a_stairwell_written_for_the_unit_finds_the_flat(db: DatabaseSettings, geocoder: Geocoder) -> None:
    row = one(
        db,
        "SELECT id, full_text FROM address WHERE level = 'room' AND unit LIKE '%单元' AND full_text LIKE '%单元%' "
        "ORDER BY id LIMIT 1",
    )
    answer = geocoder.geocode(row["full_text"].replace("单元", "梯", 1))
    assert (answer.status, answer.address_id) == ("matched", row["id"]), answer
