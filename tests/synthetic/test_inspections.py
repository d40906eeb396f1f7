"""The demo city's 一单两库: every department has its items and inspectors qualified for them, reproducibly."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, text

from planning.directory import parse_items
from planning.directory_service import department_codes, export_inspectors, list_inspectors, list_items, targets
from synthetic.inspections import ITEMS_PATH, generate_inspectors, load_inspection_lists


def test_the_shipped_item_list_covers_every_department_with_sources() -> None:
    rows = parse_items(ITEMS_PATH.read_bytes())
    per_department = Counter(r.department_code for r in rows)
    assert set(per_department) == department_codes()
    assert all(4 <= n <= 10 for n in per_department.values()), per_department
    assert 60 <= len(rows) <= 120
    assert all(r.source and r.basis for r in rows)
    assert all(r.code.startswith(f"{r.department_code}-") for r in rows)
    # Market supervision has general items for every company and every individual business: no draw is empty.
    general = [r for r in rows if r.department_code == "market_supervision" and not r.industries and not r.licence_only]
    assert {k for r in general for k in r.entity_kinds} == {"company", "individual"}


def test_the_test_city_has_every_department_with_inspectors_qualified_for_each_item(engine: Engine) -> None:
    with engine.connect() as conn:
        items = list_items(conn)
        inspectors = [i for i in list_inspectors(conn) if i["active"]]
    assert {i["department_code"] for i in items} == department_codes()
    qualified = Counter(q for i in inspectors for q in i["qualifications"])
    for item in items:
        assert qualified[item["code"]] >= 20, item["code"]
    # Every inspector is qualified only for items of their own department, and works from an office in a town.
    item_department = {i["code"]: i["department_code"] for i in items}
    assert all(item_department[q] == i["department_code"] for i in inspectors for q in i["qualifications"])
    assert 1_100 <= len(inspectors) <= 1_400
    per_department = Counter(i["department_code"] for i in inspectors)
    assert per_department.most_common(1)[0][0] == "market_supervision"


def test_the_busiest_town_can_staff_a_joint_visit_of_market_supervision_and_health(engine: Engine) -> None:
    with engine.connect() as conn:
        busiest = conn.execute(
            text("SELECT town_code FROM entity WHERE status = 'open' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
        offices = conn.execute(
            text(
                "SELECT i.department_code, count(*) FROM inspector i JOIN town t "
                "ON ST_Covers(t.geom, i.office_geom) WHERE t.code = :town AND i.active GROUP BY 1"
            ),
            {"town": busiest},
        )
        here = {department: count for department, count in offices}
        # Entities of the town that need both a food and a health inspector exist.
        food = {t[1] for t in targets(conn, item_codes=["market_supervision-05"], towns=[busiest])}
    assert here["market_supervision"] >= 10
    assert here["health"] >= 3 and here["culture"] >= 2
    assert len(food) > 50


def test_the_lists_are_deterministic_and_loading_twice_changes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        before = export_inspectors(conn)
        again = load_inspection_lists(conn, 7)
        assert again["items_created"] == 0 and again["inspectors_created"] == 0
        assert export_inspectors(conn) == before
        assert generate_inspectors(conn, 7) == generate_inspectors(conn, 7)
        assert generate_inspectors(conn, 8) != generate_inspectors(conn, 7)


def test_conflicts_are_real_entities_and_home_grids_are_grids_of_the_city(engine: Engine) -> None:
    with engine.connect() as conn:
        missing = conn.execute(
            text(
                "SELECT count(*) FROM inspector i, unnest(i.conflicts) AS c(uscc) "
                "WHERE NOT EXISTS (SELECT 1 FROM entity e WHERE e.uscc = c.uscc)"
            )
        ).scalar_one()
        homeless = conn.execute(
            text(
                "SELECT count(*) FROM inspector i WHERE NOT EXISTS (SELECT 1 FROM grid g WHERE g.code = i.home_grid_code)"
            )
        ).scalar_one()
        declared = conn.execute(text("SELECT count(*) FROM inspector WHERE cardinality(conflicts) > 0")).scalar_one()
    assert missing == 0 and homeless == 0
    assert declared > 50
