"""A department maintains its lists by CSV, and the target directory follows the registered entities by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner, Result

from api.cli import app as cli
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.settings import DatabaseSettings
from planning.directory import DirectoryFileError, parse_inspectors
from planning.directory_service import (
    export_inspectors,
    export_items,
    import_inspectors,
    import_items,
    list_inspectors,
    list_items,
    target_counts,
    targets,
)
from supervision.uscc import uscc_check_char

HEADER = "code,department_code,name,basis,key,entity_kinds,industries,licence_only,service_minutes,source\n"
WATER_ITEMS = (
    HEADER + "water-01,water,城镇污水排入排水管网许可检查,《城镇排水与污水处理条例》第二十一条,一般,company;individual,"
    "餐饮服务;机动车维修;食品制造,否,30,依据条例\n"
    + "water-91,water,雨污分流检查,《城镇排水与污水处理条例》,一般,company,制造业,否,30,本局自定\n"
)
INSPECTOR_HEADER = "code,department_code,name,qualifications,home_grid_code,office_name,office_lon,office_lat,conflicts,load_cap,active\n"


def _rows(conn: Connection, sql: str, **params: object) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(text(sql), params)]


def test_importing_the_same_item_file_twice_changes_nothing_the_second_time(engine: Engine) -> None:
    with engine.begin() as conn:
        first = import_items(conn, WATER_ITEMS.encode(), actor="centre", department=None, replace=False)
        stamp = _rows(conn, "SELECT code, updated_at FROM inspection_item WHERE department_code = 'water' ORDER BY 1")
    assert (first.created, first.updated, first.unchanged) == (1, 1, 0)  # water-01 ships with the city, reworded
    with engine.begin() as conn:
        second = import_items(conn, WATER_ITEMS.encode(), actor="centre", department=None, replace=False)
        assert (second.created, second.updated, second.unchanged, second.deactivated) == (0, 0, 2, 0)
        again = _rows(conn, "SELECT code, updated_at FROM inspection_item WHERE department_code = 'water' ORDER BY 1")
    assert again == stamp


def test_replace_deactivates_the_departments_rows_missing_from_the_file_and_keeps_others(engine: Engine) -> None:
    with engine.begin() as conn:
        before = {i["code"] for i in list_items(conn, "water")}
        summary = import_items(conn, WATER_ITEMS.encode(), actor="officer", department="water", replace=True)
        after = {i["code"]: i["active"] for i in list_items(conn, "water", include_inactive=True)}
        health = [i for i in list_items(conn, "health") if i["active"]]
    assert summary.deactivated == len(before - {"water-01", "water-91"}) > 0
    assert {c for c, active in after.items() if active} == {"water-01", "water-91"}
    assert set(after) >= before  # nothing deleted
    assert len(health) == 6
    with engine.begin() as conn:
        exported = export_items(conn, "water")
    assert exported.decode("utf-8-sig").count("\n") == 3  # header and the two active items


def test_an_officer_cannot_import_another_departments_rows_and_nothing_is_written(engine: Engine) -> None:
    mixed = WATER_ITEMS + "health-99,health,新事项,依据,一般,company,,否,30,自定\n"
    with engine.begin() as conn:
        before = export_items(conn)
        with pytest.raises(DirectoryFileError) as caught:
            import_items(conn, mixed.encode(), actor="officer", department="water", replace=True)
        assert [(p["line"], p["column"]) for p in caught.value.problems] == [(4, "department_code")]
        assert "只能导入本部门" in str(caught.value)
        assert export_items(conn) == before


def test_unknown_departments_and_codes_of_another_department_are_refused_with_their_line(engine: Engine) -> None:
    bad = (
        HEADER
        + "water-50,water,检查,依据,一般,company,,否,30,自定\n"
        + "xx-01,waterworks,检查,依据,一般,company,,否,30,自定\n"
    )
    bad += "health-01,water,检查,依据,一般,company,,否,30,自定\n"
    with engine.begin() as conn, pytest.raises(DirectoryFileError) as caught:
        import_items(conn, bad.encode(), actor="centre", department=None, replace=False)
    assert [(p["line"], p["column"]) for p in caught.value.problems] == [(3, "department_code"), (4, "code")]


def _inspector_line(code: str, **cells: str) -> str:
    row = {
        "code": code,
        "department_code": "health",
        "name": "陈伟",
        "qualifications": "health-01;health-02",
        "home_grid_code": "",
        "office_name": "东莞市卫生健康局莞城分局",
        "office_lon": "113.7518",
        "office_lat": "23.0205",
        "conflicts": "",
        "load_cap": "",
        "active": "是",
    } | cells
    return ",".join(row.values()) + "\n"


def test_inspectors_with_unknown_items_other_departments_items_stale_grids_or_offices_abroad_are_refused(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        grid = conn.execute(
            text(
                "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "WHERE v.status = 'active' ORDER BY g.code LIMIT 1"
            )
        ).scalar_one()
        lines = [
            _inspector_line("44190399001", home_grid_code=grid),
            _inspector_line("44190399002", qualifications="health-77"),
            _inspector_line("44190399003", qualifications="market_supervision-01"),
            _inspector_line("44190399004", home_grid_code="441900999999999"),
            _inspector_line("44190399005", office_lon="114.17", office_lat="22.28"),  # Hong Kong
        ]
        with pytest.raises(DirectoryFileError) as caught:
            import_inspectors(
                conn, (INSPECTOR_HEADER + "".join(lines)).encode(), actor="c", department=None, replace=False
            )
        assert [(p["line"], p["column"]) for p in caught.value.problems] == [
            (3, "qualifications"),
            (4, "qualifications"),
            (5, "home_grid_code"),
            (6, "office_lon"),
        ]
        assert "不在东莞市范围内" in str(caught.value)
        assert not list_inspectors(conn, None) or all(i["code"] != "44190399001" for i in list_inspectors(conn))


def test_an_inspector_directory_exports_and_imports_back_unchanged(engine: Engine) -> None:
    with engine.begin() as conn:
        exported = export_inspectors(conn, "culture")
        summary = import_inspectors(conn, exported, actor="officer", department="culture", replace=True)
        assert summary.created == summary.updated == summary.deactivated == 0
        assert summary.unchanged == len(parse_inspectors(exported)) > 30
        assert export_inspectors(conn, "culture") == exported
        # An inspector who left is marked 否 and stays in the directory, inactive.
        text_csv = exported.decode("utf-8-sig").splitlines()
        first = text_csv[1].rsplit(",", 1)[0] + ",否"
        edited = "\n".join([text_csv[0], first, *text_csv[2:]]).encode()
        changed = import_inspectors(conn, edited, actor="officer", department="culture", replace=True)
        assert changed.updated == 1
        code = first.split(",")[0]
        assert [i["active"] for i in list_inspectors(conn, "culture") if i["code"] == code] == [False]


# ------------------------------------------------------------------------------------------ target directory


def _a_food_shop(conn: Connection) -> dict[str, object]:
    row = conn.execute(
        text(
            "SELECT * FROM entity WHERE status = 'open' AND industry = '餐饮服务' AND kind = 'individual' "
            "ORDER BY uscc LIMIT 1"
        )
    ).one()
    return dict(row._mapping)


def test_a_newly_registered_restaurant_joins_the_directory_and_a_closed_one_leaves(engine: Engine) -> None:
    with engine.begin() as conn:
        shop = _a_food_shop(conn)
        town = str(shop["town_code"])
        before = {t[1] for t in targets(conn, item_codes=["market_supervision-05"], towns=[town])}
        assert shop["uscc"] in before
        body = "92441900MA5XXXXX1"
        newcomer = body + uscc_check_char(body)
        conn.execute(
            text(
                "INSERT INTO entity (uscc, name, kind, business_scope, industry, raw_address, address_id, town_code, "
                "grid_code, status, registered_on, needs_licence, credit_class, geom) "
                "SELECT :new, '东莞市新开张餐饮店', kind, business_scope, industry, raw_address, address_id, town_code, "
                "grid_code, 'open', registered_on, needs_licence, 'C', geom FROM entity WHERE uscc = :old"
            ),
            {"new": newcomer, "old": shop["uscc"]},
        )
        conn.execute(text("UPDATE entity SET status = 'closed' WHERE uscc = :u"), {"u": shop["uscc"]})
        after = {t[1]: t for t in targets(conn, item_codes=["market_supervision-05"], towns=[town])}
        assert after.keys() == (before - {shop["uscc"]}) | {newcomer}
        assert after[newcomer] == ("market_supervision-05", newcomer, "C", town, shop["grid_code"])
        # A change of industry moves it out of the food list and into no other by itself.
        conn.execute(text("UPDATE entity SET industry = '信息技术' WHERE uscc = :u"), {"u": newcomer})
        assert newcomer not in {t[1] for t in targets(conn, item_codes=["market_supervision-05"], towns=[town])}
        conn.rollback()


def test_items_apply_by_kind_industry_and_licence(engine: Engine) -> None:
    with engine.connect() as conn:
        town = conn.execute(
            text("SELECT town_code FROM entity WHERE status = 'open' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
        rows = targets(
            conn,
            item_codes=["market_supervision-01", "market_supervision-02", "market_supervision-07", "no-such-item"],
            towns=[town],
        )
        facts = {
            r.uscc: r
            for r in conn.execute(
                text("SELECT uscc, kind, industry, needs_licence, status FROM entity WHERE town_code = :t"), {"t": town}
            )
        }
    by_item: dict[str, set[str]] = {}
    for item, uscc, credit_class, town_code, _ in rows:
        by_item.setdefault(item, set()).add(uscc)
        assert credit_class in "ABCD" and town_code == town
    open_companies = {u for u, f in facts.items() if f.status == "open" and f.kind == "company"}
    open_individuals = {u for u, f in facts.items() if f.status == "open" and f.kind == "individual"}
    assert by_item["market_supervision-01"] == open_companies
    assert by_item["market_supervision-02"] == open_individuals
    drugs = {
        u
        for u, f in facts.items()
        if f.status == "open" and f.needs_licence and ("药品零售" in f.industry or "医药" in f.industry)
    }
    assert by_item["market_supervision-07"] == drugs and drugs
    assert "no-such-item" not in by_item
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))


def test_town_grid_and_polygon_areas_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        town = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1 OFFSET 5")).scalar_one()
        grids = [
            g
            for (g,) in conn.execute(
                text(
                    "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id "
                    "WHERE v.status = 'active' AND g.town_code = :t ORDER BY g.code"
                ),
                {"t": town},
            )
        ]
        wkt = conn.execute(text("SELECT ST_AsText(geom) FROM town WHERE code = :t"), {"t": town}).scalar_one()
        items = ["market_supervision-01", "market_supervision-05", "health-02"]
        by_town = targets(conn, item_codes=items, towns=[town])
        by_grids = targets(conn, item_codes=items, grids=grids)
        by_polygon = targets(conn, item_codes=items, polygon_wkt=wkt)
        half = targets(conn, item_codes=items, grids=grids[: len(grids) // 2])
        city = targets(conn, item_codes=items)
        counts = target_counts(conn, items, towns=[town])
        nothing = targets(conn, item_codes=items, towns=[])
    assert by_town and by_town == by_grids
    # The polygon is the town's own outline: points on the border with a neighbour may count on both sides.
    assert set(by_town) <= set(by_polygon)
    assert len(set(by_polygon) - set(by_town)) <= len(by_town) // 100
    assert set(half) < set(by_town) and half
    assert set(by_town) < set(city)
    assert sum(counts.values()) == len(by_town)
    assert counts[("market_supervision-05", "B")] == sum(
        1 for r in by_town if r[0] == "market_supervision-05" and r[2] == "B"
    )
    assert nothing == []


# ------------------------------------------------------------------------------------------------ command line


def _cli(db: DatabaseSettings, *args: str) -> Result:
    return CliRunner().invoke(cli, ["inspection-lists", *args], env={"GRIDGOV_DATABASE_URL": db.database_url})


def test_a_department_exports_edits_and_imports_its_list_from_the_command_line(
    db: DatabaseSettings, tmp_path: Path
) -> None:
    out = tmp_path / "tobacco.csv"
    exported = _cli(db, "export-items", "--department", "tobacco", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 5 and all(line.startswith("tobacco-") for line in lines[1:])
    same = _cli(db, "import-items", str(out), "--department", "tobacco")
    assert same.exit_code == 0, same.output
    assert "新增 0，修改 0，未变 4，停用 0" in same.output
    out.write_text("\n".join(lines[:-1]), encoding="gb18030")
    replaced = _cli(db, "import-items", str(out), "--department", "tobacco", "--replace")
    assert "停用 1" in replaced.output


def test_a_bad_file_from_the_command_line_lists_its_lines_in_chinese_and_exits_1(
    db: DatabaseSettings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "culture-91,culture,检查,依据,特别,company,,否,30,自定\n"
        + "culture-92,culture,,依据,一般,company,,否,30,自定\n",
        encoding="utf-8",
    )
    result = _cli(db, "import-items", str(bad), "--department", "culture")
    assert result.exit_code == 1
    assert "第2行“key”列" in result.output and "第3行“name”列：不能为空" in result.output
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "culture-91,culture,检查,依据,重点,company,,否,30,自定\n", encoding="utf-8")
    other = _cli(db, "import-items", str(good), "--department", "health")
    assert other.exit_code == 1 and "只能导入本部门（health）" in other.output


def test_the_command_line_counts_targets_per_credit_class(db: DatabaseSettings, engine: Engine) -> None:
    with engine.connect() as conn:
        town = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1")).scalar_one()
        counts = target_counts(conn, ["market_supervision-01"], towns=[town])
    result = _cli(db, "targets", "--item", "market_supervision-01", "--town", town)
    assert result.exit_code == 0, result.output
    assert f"合计 {sum(counts.values())} 个检查对象（{town}）" in result.output
    unknown = _cli(db, "targets", "--item", "nothing-01")
    assert unknown.exit_code == 1 and "未知的检查事项" in unknown.output


def test_inspectors_export_from_the_command_line_imports_back_unchanged(db: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "water.csv"
    assert _cli(db, "export-inspectors", "--department", "water", "--out", str(out)).exit_code == 0
    again = _cli(db, "import-inspectors", str(out), "--department", "water", "--replace")
    assert again.exit_code == 0 and "新增 0，修改 0" in again.output and "停用 0" in again.output
