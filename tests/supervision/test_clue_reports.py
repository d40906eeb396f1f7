"""A grid worker reports a clue: it is placed, routed, checked for duplicates, photographed and listed."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from supervision.audit import Actor
from supervision.clues import (
    MAX_PHOTO_BYTES,
    ClueDetail,
    ClueFilters,
    ClueReport,
    add_photo,
    clue_by_id,
    list_clues,
    photo_file,
    photo_path,
    report_clue,
)
from supervision.errors import InvalidInput, OutOfScope
from supervision.routing import default_router
from supervision.scope import CITY, Scope

pytestmark = pytest.mark.db

NOW = clock.now().replace(microsecond=0)
CENTRE = Actor("user:centre", "command_centre")


@dataclass(frozen=True)
class Spot:
    """A point well inside a grid that has workers."""

    grid_code: str
    town_code: str
    lon: float
    lat: float
    worker_id: int


@pytest.fixture(scope="module")
def spots(engine: Engine) -> list[Spot]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT g.code, g.town_code, ST_X(p) AS lon, ST_Y(p) AS lat,
                       (SELECT min(w.id) FROM worker w WHERE w.grid_code = g.code AND w.active) AS worker_id
                FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM grid) g
                JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
                WHERE EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = g.code AND w.active)
                ORDER BY g.code LIMIT 400
                """
            )
        ).all()
    # Spread over the city so that no two spots are within a duplicate's reach of each other.
    return [Spot(r.code, r.town_code, r.lon, r.lat, r.worker_id) for r in rows[::40]]


def worker(spot: Spot) -> Actor:
    return Actor(f"user:worker{spot.worker_id}", "grid_worker", Scope("worker", str(spot.worker_id)))


def moved(conn: Connection, spot: Spot, metres: float, azimuth_deg: float = 90.0) -> tuple[float, float]:
    """A point `metres` from the spot, in the direction `azimuth_deg` (clockwise from north)."""
    row = conn.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
            ":m, radians(:az))::geometry AS p) s"
        ),
        {"lon": spot.lon, "lat": spot.lat, "m": metres, "az": azimuth_deg},
    ).one()
    return float(row[0]), float(row[1])


def report(
    conn: Connection,
    spot: Spot,
    industry: str = "餐饮服务",
    *,
    at: tuple[float, float] | None = None,
    reported_at: datetime | None = None,
    severity: str = "normal",
    actor: Actor | None = None,
) -> ClueDetail:
    lon, lat = at or (spot.lon, spot.lat)
    clue = ClueReport(industry, "无证经营", severity, lon=lon, lat=lat, reported_at=reported_at or NOW)
    return report_clue(conn, clue, actor=actor or worker(spot))


def clue_task(conn: Connection, clue_id: int) -> Any:
    return conn.execute(
        text("SELECT kind, duty, status, grid_code, worker_id, department_codes FROM task WHERE clue_id = :c"),
        {"c": clue_id},
    ).one()


def test_a_normal_clue_goes_to_its_industry_department_and_a_severe_one_to_the_command_centre(
    engine: Engine, spots: list[Spot]
) -> None:
    spot = spots[0]
    with engine.begin() as conn:
        ordinary = report(conn, spot, "烟草制品零售")
        severe = report(conn, spot, "危险化学品经营", severity="severe")
        for clue, department in ((ordinary, "tobacco"), (severe, "command_centre")):
            assert (clue.department_code, clue.grid_code, clue.town_code) == (
                department, spot.grid_code, spot.town_code,
            )  # fmt: skip
            task = clue_task(conn, clue.id)
            assert (task.kind, task.duty, task.department_codes) == ("clue", "unlicensed_patrol", department)
            assert task.status == "assigned" and task.worker_id is not None
            assert clue.status == "assigned" and clue.task_id is not None and clue.due_at is not None
            assert clue.reported_by == worker(spot).name
        # The command centre sees the severe clue; the tobacco bureau sees only its own.
        assert clue_by_id(conn, severe.id, Scope("department", "command_centre")).severity == "severe"
        with pytest.raises(OutOfScope):
            clue_by_id(conn, severe.id, Scope("department", "tobacco"))


def test_a_worker_cannot_report_a_clue_outside_their_grid(engine: Engine, spots: list[Spot]) -> None:
    here, there = spots[1], spots[2]
    with engine.begin() as conn, pytest.raises(OutOfScope):
        report_clue(conn, ClueReport("餐饮服务", "x", lon=there.lon, lat=there.lat), actor=worker(here))


def test_an_unknown_industry_is_refused_naming_the_valid_ones(engine: Engine, spots: list[Spot]) -> None:
    with engine.begin() as conn, pytest.raises(InvalidInput) as refused:
        report(conn, spots[1], "卫星发射")
    assert refused.value.field == "industry"
    assert all(industry in str(refused.value) for industry in default_router().clue_industries())


def test_duplicates_are_suggested_within_50_m_and_30_days_of_the_same_industry_only(
    engine: Engine, spots: list[Spot]
) -> None:
    spot = spots[3]
    first_seen = NOW - timedelta(days=45)
    with engine.begin() as conn:
        base = report(conn, spot, reported_at=first_seen).id

        def candidates(clue: ClueDetail) -> dict[int, float]:
            return {c.clue_id: c.distance_m for c in clue.duplicate_candidates or []}

        # The command centre reports these: a point 60 m away may lie in the next grid.
        near = report(conn, spot, at=moved(conn, spot, 40), reported_at=first_seen + timedelta(days=10), actor=CENTRE)
        assert candidates(near)[base] == pytest.approx(40, abs=0.5)
        far = report(
            conn, spot, at=moved(conn, spot, 60, 270), reported_at=first_seen + timedelta(days=10), actor=CENTRE
        )
        assert base not in candidates(far)
        late = report(conn, spot, reported_at=first_seen + timedelta(days=31))
        assert base not in candidates(late)
        just_in_time = report(conn, spot, reported_at=first_seen + timedelta(days=29, hours=23))
        assert base in candidates(just_in_time)
        other = report(conn, spot, "食品销售", reported_at=first_seen + timedelta(days=1))
        assert base not in candidates(other)


# ------------------------------------------------------------------------------------------------ photos


def image_bytes(kind: str, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def pixel_bomb() -> bytes:
    """A tiny PNG whose header claims 40,000 × 40,000 pixels."""
    data = bytearray(image_bytes("PNG", (4, 4)))
    data[16:24] = struct.pack(">II", 40_000, 40_000)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_photos_are_stored_by_checksum_after_their_content_is_verified(
    engine: Engine, spots: list[Spot], tmp_path: Path
) -> None:
    spot = spots[4]
    photos = tmp_path / "photos"
    actor = worker(spot)
    with engine.begin() as conn:
        clue_id = report(conn, spot).id
        for kind, content_type in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
            data = image_bytes(kind)
            stored = add_photo(conn, clue_id, data, declared_type=content_type, filename=f"现场.{kind.lower()}",
                               actor=actor, photo_dir=photos)  # fmt: skip
            checksum = hashlib.sha256(data).hexdigest()
            assert (stored.sha256, stored.size_bytes, stored.content_type) == (
                checksum,
                len(data),
                content_type,
            )
            on_disk = photo_path(photos, checksum, content_type)
            assert on_disk.read_bytes() == data
            assert photo_file(conn, stored.id, CITY, photos) == (on_disk, content_type)
        # The same photo twice is one file on disk.
        add_photo(conn, clue_id, image_bytes("PNG"), declared_type="image/png", filename="again.png", actor=actor,
                  photo_dir=photos)  # fmt: skip
        assert len([p for p in photos.rglob("*") if p.is_file()]) == 2
        assert len(clue_by_id(conn, clue_id, CITY).photos) == 3

        refused = [
            (b"this is not a photo at all\n" * 10, "image/jpeg", "fake.jpg"),
            (image_bytes("PNG"), "image/jpeg", "lying.jpg"),
            (image_bytes("PNG") + b"\0" * MAX_PHOTO_BYTES, "image/png", "huge.png"),
            (image_bytes("GIF"), None, "moving.gif"),
            (image_bytes("PNG")[:40], "image/png", "cut.png"),
            (pixel_bomb(), "image/png", "bomb.png"),
        ]
        for data, declared, name in refused:
            with pytest.raises(InvalidInput) as error:
                add_photo(conn, clue_id, data, declared_type=declared, filename=name, actor=actor, photo_dir=photos)
            assert error.value.field == "file", name
        assert len(clue_by_id(conn, clue_id, CITY).photos) == 3
        assert len([p for p in photos.rglob("*") if p.is_file()]) == 2


# ------------------------------------------------------------------------------------------------ listing


def test_clues_are_listed_by_town_grid_status_and_date_newest_first_in_pages(engine: Engine, spots: list[Spot]) -> None:
    spot = spots[5]
    with engine.begin() as conn:
        mine = [report(conn, spot, "美容美发", reported_at=NOW - timedelta(hours=i)).id for i in range(1, 6)]
    window = ClueFilters(grid=spot.grid_code, since=NOW - timedelta(hours=5, minutes=30), until=NOW)
    with engine.connect() as conn:
        seen: list[int] = []
        cursor = None
        while True:
            page = list_clues(conn, CITY, window, limit=2, cursor=cursor)
            assert page.total == 5 and len(page.items) <= 2
            seen += [c.id for c in page.items]
            cursor = page.next
            if cursor is None:
                break
        assert seen == mine  # newest first: the clue an hour old, then two hours, ...
        narrow = ClueFilters(grid=spot.grid_code, since=NOW - timedelta(hours=2, minutes=30), until=NOW)
        assert [c.id for c in list_clues(conn, CITY, narrow).items] == mine[:2]
        by_status = list_clues(conn, CITY, ClueFilters(grid=spot.grid_code, status="assigned"), limit=500)
        assert set(mine) <= {c.id for c in by_status.items}
        assert all(c.status == "assigned" for c in by_status.items)
        assert list_clues(conn, CITY, ClueFilters(grid=spot.grid_code, status="closed", since=window.since)).total == 0
        by_town = list_clues(conn, CITY, ClueFilters(town=spot.town_code, since=window.since), limit=500)
        assert set(mine) <= {c.id for c in by_town.items}
        assert {c.town_code for c in by_town.items} == {spot.town_code}
        other_town = next(s for s in spots if s.town_code != spot.town_code)
        assert not set(mine) & {
            c.id for c in list_clues(conn, CITY, ClueFilters(town=other_town.town_code), limit=500).items
        }
        # A worker of the grid sees them; a department sees only what was routed to it.
        assert list_clues(conn, worker(spot).scope, window).total == 5
        assert list_clues(conn, Scope("department", "health"), window).total == 5
        assert list_clues(conn, Scope("department", "tobacco"), window).total == 0


def test_a_clue_given_by_address_is_placed_at_the_standard_address(engine: Engine) -> None:
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
        door = conn.execute(
            text("SELECT id, full_text, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM address "
                 "WHERE level = 'door' AND status = 'active' AND grid_code IS NOT NULL ORDER BY id DESC LIMIT 1")
        ).one()  # fmt: skip
    with engine.begin() as conn:
        clue = report_clue(conn, ClueReport("歌舞娱乐", "深夜扰民", address=door.full_text), actor=CENTRE,
                           geocoder=geocoder)  # fmt: skip
        assert (clue.grid_code, clue.address, clue.department_code) == (
            door.grid_code,
            door.full_text,
            "culture",
        )
        assert (clue.lon, clue.lat) == pytest.approx((door.lon, door.lat))
        for address, helper in (("火星路1号", geocoder), (door.full_text, None)):
            with pytest.raises(InvalidInput) as refused:
                report_clue(conn, ClueReport("歌舞娱乐", "x", address=address), actor=CENTRE, geocoder=helper)
            assert refused.value.field == "address"
