"""A library keeper adds, retires, moves and imports standard addresses; every change is checked and kept in history."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from address_library import address_import, maintenance
from address_library.errors import AddressFileError, AddressNotFound, AddressRejected, AddressStateError
from address_library.parse import parse
from address_library.repository import library_version
from address_library.service import Geocoder
from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.settings import DatabaseSettings
from grids.codes import community_of
from grids.placement import GridPlacement

pytestmark = pytest.mark.db

KEEPER = "user:keeper"
# What a user can see of the library; a refused change must leave all of it as it was.
SNAPSHOT_SQL = (
    "SELECT (SELECT count(*) FROM address_history), count(*), "
    "md5(string_agg(md5(a::text), '' ORDER BY a.id)) FROM address a"
)


@dataclass(frozen=True)
class Site:
    """A road door of the test city well inside its grid, and a point of another town."""

    door_id: int
    door_text: str
    town: str
    town_code: str
    road: str
    lon: float
    lat: float
    other_lon: float
    other_lat: float

    def door(self, number: int) -> str:
        """A new door number on the same road."""
        return f"{self.town}{self.road}{number}号"


@pytest.fixture(scope="module")
def placement(engine: Engine) -> GridPlacement:
    with engine.connect() as conn:
        return GridPlacement.load(conn)


@pytest.fixture(scope="module")
def site(engine: Engine, placement: GridPlacement) -> Site:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, full_text, town_code, road_name, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM address "
                "WHERE level = 'door' AND kind = 'road_door' AND sub_no IS NULL ORDER BY id LIMIT 400"
            )
        ).all()
        placed = placement.place([r.lon for r in rows], [r.lat for r in rows])
        door = next(
            r
            for r, distance_m in zip(rows, placed.boundary_distance_m, strict=True)
            if distance_m > 80
            and r.full_text == f"{parse(r.full_text).town}{r.road_name}{parse(r.full_text).door_no}号"
        )
        other = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM address WHERE town_code <> :town ORDER BY id LIMIT 1"),
            {"town": door.town_code},
        ).one()
    town = str(parse(door.full_text).town)
    return Site(door.id, door.full_text, town, door.town_code, door.road_name, door.lon, door.lat, other[0], other[1])


def snapshot(conn: Connection) -> Any:
    return tuple(conn.execute(text(SNAPSHOT_SQL)).one())


def add(engine: Engine, placement: GridPlacement, **kwargs: Any) -> int:
    with engine.begin() as conn:
        return maintenance.add_address(conn, placement, changed_by=KEEPER, **kwargs)


def reasons(exc: pytest.ExceptionInfo[AddressRejected]) -> set[str]:
    return {r.reason_code for r in exc.value.rejections}


# ------------------------------------------------------------------------------------------------------ add


def test_a_new_door_building_and_room_are_added_with_their_components_grid_and_history(
    engine: Engine, placement: GridPlacement, site: Site
) -> None:
    door_id = add(engine, placement, full_text=site.door(9001), lon=site.lon, lat=site.lat, level="door")
    building_id = add(
        engine, placement, full_text=site.door(9001) + "三栋", lon=site.lon, lat=site.lat, level="building",
        parent_id=door_id,
    )  # fmt: skip
    room_id = add(
        engine, placement, full_text=site.door(9001) + "3栋201室", lon=site.lon, lat=site.lat, level="room",
        parent_id=building_id,
    )  # fmt: skip
    with engine.connect() as conn:
        door = maintenance.address_with_history(conn, door_id)
        building = maintenance.address_with_history(conn, building_id)
        room = maintenance.address_with_history(conn, room_id)
    assert door["full_text"] == site.door(9001) and door["status"] == "active"
    assert (door["town_code"], door["road_name"], door["door_no"]) == (site.town_code, site.road, "9001")
    assert door["road_id"] is not None and door["kind"] == "road_door"
    assert door["grid_code"] == placement.place([site.lon], [site.lat]).grid_code[0]
    assert door["community_code"] == community_of(door["grid_code"])
    # The stored text is the normalized one: 三栋 is written 3栋, as the geocoder reads it.
    assert building["full_text"] == site.door(9001) + "3栋" and building["building"] == "3栋"
    assert room["parent_id"] == building_id and room["room"] == "201室"
    [entry] = door["history"]
    assert (entry["action"], entry["changed_by"], entry["new_status"]) == ("add", KEEPER, "active")
    assert (entry["old_lon"], entry["new_lon"]) == (None, pytest.approx(site.lon))


def test_the_geocoder_finds_an_added_door_once_rebuilt(engine: Engine, placement: GridPlacement, site: Site) -> None:
    new_id = add(engine, placement, full_text=site.door(9002), lon=site.lon, lat=site.lat, level="door")
    with engine.connect() as conn:
        answer = Geocoder.load(conn).geocode("东莞市" + site.door(9002))
    assert (answer.status, answer.level, answer.address_id) == ("matched", "door", new_id)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown_town", "unknown_town"),
        ("other_city", "not_an_address"),
        ("town_only", "not_an_address"),
        ("outside_city", "outside_city"),
        ("other_town", "outside_town"),
        ("duplicate", "duplicate_text"),
        ("duplicate_written_form", "duplicate_text"),
        ("unknown_parent", "unknown_parent"),
        ("parent_not_one_level_up", "parent_level"),
        ("door_with_a_parent", "parent_level"),
        ("wrong_level", "level_mismatch"),
        ("bad_level", "bad_level"),
        ("control_characters", "bad_text"),
        ("empty", "bad_text"),
        ("over_long", "bad_text"),
        ("not_a_number", "bad_coordinates"),
        ("infinite", "bad_coordinates"),
    ],
)
def test_a_bad_new_address_is_refused_with_its_reason_and_nothing_changes(
    engine: Engine, placement: GridPlacement, site: Site, case: str, reason: str
) -> None:
    good: dict[str, Any] = {"full_text": site.door(9100), "lon": site.lon, "lat": site.lat, "level": "door"}
    bad = (
        good
        | {
            "unknown_town": {"full_text": "火星镇幸福路1号"},
            "other_city": {"full_text": "青岛市市南区东莞路1号"},
            "town_only": {"full_text": site.town},
            "outside_city": {"lon": 116.39, "lat": 39.91},
            "other_town": {"lon": site.other_lon, "lat": site.other_lat},
            "duplicate": {"full_text": site.door_text},
            "duplicate_written_form": {"full_text": "東莞市" + site.door_text.replace("号", "號")},
            "unknown_parent": {"full_text": site.door(9100) + "1栋", "level": "building", "parent_id": 10**12},
            "parent_not_one_level_up": {
                "full_text": site.door(9100) + "1栋1室",
                "level": "room",
                "parent_id": site.door_id,
            },
            "door_with_a_parent": {"parent_id": site.door_id},
            "wrong_level": {"level": "building"},
            "bad_level": {"level": "city"},
            "control_characters": {"full_text": site.door(9100) + "\x00\x07"},
            "empty": {"full_text": "   "},
            "over_long": {"full_text": site.door(9100) + "室" * 600},
            "not_a_number": {"lon": "东经113度"},
            "infinite": {"lat": float("inf")},
        }[case]
    )
    with engine.connect() as conn:
        before = snapshot(conn)
    with pytest.raises(AddressRejected) as refused:
        add(engine, placement, **bad)
    assert reason in reasons(refused), refused.value
    assert all(r.detail for r in refused.value.rejections)
    with engine.connect() as conn:
        assert snapshot(conn) == before


@given(junk=st.text(max_size=80))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_text_is_sent_it_is_added_or_refused_with_reasons_never_crashes(
    engine: Engine, placement: GridPlacement, site: Site, junk: str
) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            maintenance.add_address(
                conn, placement, full_text=junk, lon=site.lon, lat=site.lat, level="door", changed_by=KEEPER
            )
        except AddressRejected as exc:
            assert exc.rejections and all(r.reason_code and r.detail for r in exc.rejections)
        finally:
            transaction.rollback()


# ------------------------------------------------------------------------------------------------------ retire


def test_retiring_a_door_retires_its_buildings_and_rooms_keeps_them_and_changes_the_fingerprint(
    engine: Engine, placement: GridPlacement, site: Site
) -> None:
    door_id = add(engine, placement, full_text=site.door(9201), lon=site.lon, lat=site.lat, level="door")
    building_id = add(
        engine, placement, full_text=site.door(9201) + "1栋", lon=site.lon, lat=site.lat, level="building",
        parent_id=door_id,
    )  # fmt: skip
    room_id = add(
        engine, placement, full_text=site.door(9201) + "1栋101房", lon=site.lon, lat=site.lat, level="room",
        parent_id=building_id,
    )  # fmt: skip
    with engine.connect() as conn:
        before = library_version(conn)
    with engine.begin() as conn:
        retired = maintenance.retire_address(conn, door_id, changed_by=KEEPER, note="拆迁")
    assert retired == [door_id, building_id, room_id]
    with engine.connect() as conn:
        after = library_version(conn)
        door = maintenance.address_with_history(conn, door_id)
        room = maintenance.address_with_history(conn, room_id)
    assert after != before  # the newest change time moved: the live geocoder will rebuild
    assert door["status"] == room["status"] == "retired"
    assert [(h["action"], h["old_status"], h["new_status"]) for h in door["history"]] == [
        ("add", None, "active"),
        ("retire", "active", "retired"),
    ]
    assert door["history"][-1]["note"] == "拆迁"
    assert str(door_id) in room["history"][-1]["note"]
    with engine.connect() as conn:
        answer = Geocoder.load(conn).geocode(site.door(9201))
    assert answer.address_id != door_id and answer.level != "door"


def test_a_retired_or_unknown_address_cannot_be_retired_or_moved(
    engine: Engine, placement: GridPlacement, site: Site
) -> None:
    door_id = add(engine, placement, full_text=site.door(9202), lon=site.lon, lat=site.lat, level="door")
    with engine.begin() as conn:
        maintenance.retire_address(conn, door_id, changed_by=KEEPER)
    with pytest.raises(AddressStateError), engine.begin() as conn:
        maintenance.retire_address(conn, door_id, changed_by=KEEPER)
    with pytest.raises(AddressStateError), engine.begin() as conn:
        maintenance.move_address(conn, placement, door_id, lon=site.lon, lat=site.lat, changed_by=KEEPER)
    with pytest.raises(AddressNotFound), engine.begin() as conn:
        maintenance.retire_address(conn, 10**12, changed_by=KEEPER)
    # The retired text stays taken: history must be readable back by it.
    with pytest.raises(AddressRejected) as refused:
        add(engine, placement, full_text=site.door(9202), lon=site.lon, lat=site.lat, level="door")
    assert "retired" in str(refused.value)


# ------------------------------------------------------------------------------------------------------ move


def test_moving_a_building_replaces_it_in_its_grid_takes_its_rooms_along_and_keeps_both_points(
    engine: Engine, placement: GridPlacement, site: Site
) -> None:
    door_id = add(engine, placement, full_text=site.door(9301), lon=site.lon, lat=site.lat, level="door")
    building_id = add(
        engine, placement, full_text=site.door(9301) + "2栋", lon=site.lon, lat=site.lat, level="building",
        parent_id=door_id,
    )  # fmt: skip
    room_id = add(
        engine, placement, full_text=site.door(9301) + "2栋301房", lon=site.lon, lat=site.lat, level="room",
        parent_id=building_id,
    )  # fmt: skip
    lon, lat = site.lon + 0.0003, site.lat + 0.0002
    with engine.connect() as conn:
        before = library_version(conn)
    with engine.begin() as conn:
        moved = maintenance.move_address(
            conn, placement, building_id, lon=lon, lat=lat, changed_by=KEEPER, note="测绘更正"
        )
    assert moved == [building_id, room_id]
    with engine.connect() as conn:
        after = library_version(conn)
        building = maintenance.address_with_history(conn, building_id)
        room = maintenance.address_with_history(conn, room_id)
        door = maintenance.address_with_history(conn, door_id)
    assert after[0] == before[0] and after[1] != before[1]  # no new address, a newer change: the fingerprint moves
    placed = placement.place([lon], [lat])
    assert (building["lon"], building["lat"]) == (pytest.approx(lon), pytest.approx(lat))
    assert (building["grid_code"], building["community_code"]) == (placed.grid_code[0], placed.community_code[0])
    assert (room["lon"], room["lat"]) == (pytest.approx(lon), pytest.approx(lat))
    assert (door["lon"], door["lat"]) == (pytest.approx(site.lon), pytest.approx(site.lat))
    move = building["history"][-1]
    assert move["action"] == "move" and move["note"] == "测绘更正"
    assert (move["old_lon"], move["old_lat"]) == (pytest.approx(site.lon), pytest.approx(site.lat))
    assert (move["new_lon"], move["new_lat"]) == (pytest.approx(lon), pytest.approx(lat))


def test_an_address_cannot_be_moved_out_of_its_town_or_the_city(
    engine: Engine, placement: GridPlacement, site: Site
) -> None:
    with engine.connect() as conn:
        before = snapshot(conn)
    for lon, lat, reason in [
        (site.other_lon, site.other_lat, "outside_town"),
        (116.39, 39.91, "outside_city"),
        (float("nan"), site.lat, "bad_coordinates"),
    ]:
        with pytest.raises(AddressRejected) as refused, engine.begin() as conn:
            maintenance.move_address(conn, placement, site.door_id, lon=lon, lat=lat, changed_by=KEEPER)
        assert reasons(refused) == {reason}
    with engine.connect() as conn:
        assert snapshot(conn) == before


# ------------------------------------------------------------------------------------------------------ import


def write_csv(path: Path, rows: list[list[Any]], header: tuple[str, ...] = address_import.CSV_COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def good_rows(site: Site, first: int) -> list[list[Any]]:
    """Two doors, a building of the first and a room of that building (parents named by text, children first)."""
    d1, d2 = site.door(first), site.door(first + 1)
    return [
        [d1 + "5栋501室", site.lon, site.lat, "room", d1 + "5栋"],
        [d1, site.lon, site.lat, "door", ""],
        [d2, site.lon + 0.0001, site.lat, "door", ""],
        [d1 + "5栋", site.lon, site.lat, "building", d1],
    ]


def import_file(engine: Engine, placement: GridPlacement, path: Path) -> address_import.ImportReport:
    with engine.begin() as conn:
        return address_import.import_file(conn, placement, path, changed_by=KEEPER)


def test_a_csv_import_loads_every_row_with_parents_from_the_file_and_a_second_run_changes_nothing(
    engine: Engine, placement: GridPlacement, site: Site, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "new.csv", good_rows(site, 9401))
    report = import_file(engine, placement, path)
    assert (report.loaded, report.skipped) == (4, 0)
    with engine.connect() as conn:
        rows = {
            r.full_text: r
            for r in conn.execute(
                text("SELECT id, full_text, level, parent_id FROM address WHERE id = ANY(:ids)"),
                {"ids": list(report.ids)},
            )
        }
        actions = conn.execute(
            text("SELECT DISTINCT action FROM address_history WHERE address_id = ANY(:ids)"), {"ids": list(report.ids)}
        ).scalars()
        assert set(actions) == {"import"}
        after_first = snapshot(conn)
    d1 = site.door(9401)
    assert rows[d1 + "5栋501室"].parent_id == rows[d1 + "5栋"].id
    assert rows[d1 + "5栋"].parent_id == rows[d1].id
    again = import_file(engine, placement, path)
    assert (again.loaded, again.skipped) == (0, 4)
    with engine.connect() as conn:
        assert snapshot(conn) == after_first


def test_one_bad_row_refuses_the_whole_file_with_a_report_by_row(
    engine: Engine, placement: GridPlacement, site: Site, tmp_path: Path
) -> None:
    rows = good_rows(site, 9501) + [
        ["火星镇幸福路1号", site.lon, site.lat, "door", ""],
        [site.door(9509), 116.39, 39.91, "door", ""],
        [site.door_text, site.lon + 0.0002, site.lat, "door", ""],  # the library has it at another point
        [site.door(9501), site.lon, site.lat, "door", ""],
        [site.door(9508) + "1栋", site.lon, site.lat, "building", site.door(9999)],
        [site.door(9507), "", site.lat, "door", ""],
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    with engine.connect() as conn:
        before = snapshot(conn)
    with pytest.raises(AddressRejected) as refused:
        import_file(engine, placement, path)
    by_row = {r.row: r.reason_code for r in refused.value.rejections}
    assert by_row == {
        5: "unknown_town",
        6: "outside_city",
        7: "duplicate_text",
        8: "duplicate_in_file",
        9: "unknown_parent",
        10: "bad_coordinates",
    }
    report = str(refused.value)
    assert "6 row(s) rejected, nothing loaded" in report and "row 5  火星镇幸福路1号  unknown_town" in report
    with engine.connect() as conn:
        assert snapshot(conn) == before


def test_a_malformed_csv_is_refused_as_a_whole_or_by_row(
    engine: Engine, placement: GridPlacement, site: Site, tmp_path: Path
) -> None:
    no_lat = write_csv(tmp_path / "no_lat.csv", [[site.door(9601), site.lon, "door"]], ("full_text", "lon", "level"))
    with pytest.raises(AddressFileError, match="missing column"):
        import_file(engine, placement, no_lat)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(f"full_text,lon,lat,level\n{site.door(9601)},{site.lon},{site.lat},door\n".encode("gbk"))
    with pytest.raises(AddressFileError, match="not UTF-8"):
        import_file(engine, placement, gbk)
    header_only = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(AddressFileError, match="no rows"):
        import_file(engine, placement, header_only)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        "full_text,lon,lat,level,parent_full_text\n"
        f"{site.door(9601)},{site.lon},{site.lat},door,,surplus\n"
        f"{site.door(9602)},{site.lon}\n",
        encoding="utf-8",
    )
    with pytest.raises(AddressRejected) as refused:
        import_file(engine, placement, ragged)
    assert [(r.row, r.reason_code) for r in refused.value.rejections] == [(1, "malformed_row"), (2, "malformed_row")]
    with pytest.raises(AddressFileError, match="no such file"):
        import_file(engine, placement, tmp_path / "missing.csv")


def test_a_geopackage_of_points_imports_and_a_truncated_one_is_refused(
    engine: Engine, placement: GridPlacement, site: Site, tmp_path: Path
) -> None:
    d1 = site.door(9701)
    frame = gpd.GeoDataFrame(
        {"full_text": [d1, d1 + "1栋"], "level": ["door", "building"], "parent_full_text": [None, d1]},
        geometry=[Point(site.lon, site.lat), Point(site.lon, site.lat)],
        crs=4326,
    )
    good = tmp_path / "doors.gpkg"
    frame.to_file(good, driver="GPKG")
    assert import_file(engine, placement, good).loaded == 2
    assert import_file(engine, placement, good).skipped == 2

    truncated = tmp_path / "truncated.gpkg"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(AddressFileError, match="cannot read"):
        import_file(engine, placement, truncated)

    lines = gpd.GeoDataFrame(
        {"full_text": [site.door(9702)], "level": ["door"]},
        geometry=[LineString([(site.lon, site.lat), (site.lon + 0.001, site.lat)])],
        crs=4326,
    )
    path = tmp_path / "lines.gpkg"
    lines.to_file(path, driver="GPKG")
    with pytest.raises(AddressRejected) as refused:
        import_file(engine, placement, path)
    assert reasons(refused) == {"bad_coordinates"} and "LineString" in str(refused.value)


def test_the_import_command_reports_rejections_and_exits_non_zero_then_loads_a_good_file(
    db: DatabaseSettings, site: Site, tmp_path: Path
) -> None:
    env = {"GRIDGOV_DATABASE_URL": str(db.database_url)}
    bad = write_csv(tmp_path / "bad.csv", [[site.door(9801), site.other_lon, site.other_lat, "door", ""]])
    result = CliRunner().invoke(app, ["addresses", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert "row 1" in result.output and "outside_town" in result.output and "nothing loaded" in result.output

    good = write_csv(tmp_path / "good.csv", good_rows(site, 9801))
    result = CliRunner().invoke(app, ["addresses", "import", str(good), "--changed-by", "测试员"], env=env)
    assert result.exit_code == 0, result.output
    assert "4 address(es) loaded, 0 unchanged row(s) skipped" in result.output
    result = CliRunner().invoke(app, ["addresses", "import", str(good)], env=env)
    assert result.exit_code == 0 and "0 address(es) loaded, 4 unchanged row(s) skipped" in result.output

    result = CliRunner().invoke(app, ["addresses", "import", str(tmp_path / "nowhere.csv")], env=env)
    assert result.exit_code == 2 and "no such file" in result.output
