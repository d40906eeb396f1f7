"""A registration becomes grid tasks at once; replays change nothing, odd addresses wait for a dispatcher, crashes lose nothing."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from gis.settings import DatabaseSettings
from supervision.audit import SYSTEM, Actor
from supervision.errors import AlreadyResolved, EventConflict, InvalidInput, OutOfScope
from supervision.event_files import import_events, read_event_rows
from supervision.events import EVENT_FIELDS, EventSender, check_recent, parse_event, stored_event_id
from supervision.intake import ProcessResult
from supervision.outbox import accept_events, relay_pending
from supervision.review import resolve_review
from supervision.scope import Scope
from supervision.transitions import Move, transition
from supervision.uscc import organisation_code_check_char, uscc_check_char

pytestmark = pytest.mark.db

GRIDGOV = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gridgov"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_serials = itertools.count(1)


def credit_code(serial: int) -> str:
    """A valid credit code no entity of the test city has (QA… is not a synthetic prefix)."""
    first17 = f"91441900QA{serial:07d}"
    return first17 + uscc_check_char(first17)


def raw_event(
    address: str, *, kind: str = "new", scope: str = "日用百货销售", serial: int | None = None, minutes: int = 0
) -> dict[str, Any]:
    """A registration event as the registration system sends it."""
    serial = next(_serials) if serial is None else serial
    return {
        "event_id": f"ev-{kind}-{serial}-{minutes}",
        "kind": kind,
        "uscc": credit_code(serial),
        "name": f"东莞市测试商行{serial}号",
        "address": address,
        "business_scope": scope,
        "occurred_at": (START + timedelta(minutes=minutes)).isoformat(),
    }


@dataclass(frozen=True)
class Door:
    """A standard door the geocoder places in a grid that has at least two active workers."""

    address_id: int
    full_text: str
    grid_code: str
    community_code: str
    town_code: str
    lon: float
    lat: float


@pytest.fixture(scope="module")
def geocoder(engine: Engine) -> Geocoder:
    with engine.connect() as conn:
        return Geocoder.load(conn)


@pytest.fixture(scope="module")
def doors(engine: Engine, geocoder: Geocoder) -> list[Door]:
    """Doors of distinct grids, each one the geocoder places exactly."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT DISTINCT ON (a.grid_code) a.id, a.full_text, a.grid_code, a.community_code, a.town_code,
                       ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
                FROM address a
                WHERE a.level = 'door' AND a.status = 'active'
                  AND (SELECT count(*) FROM worker w WHERE w.grid_code = a.grid_code AND w.active) >= 2
                ORDER BY a.grid_code, a.id LIMIT 400
                """
            )
        ).all()
    out = []
    for r in rows:
        answer = geocoder.geocode(r.full_text)
        if answer.address_id == r.id and answer.grid_code == r.grid_code and answer.confidence >= 0.8:
            out.append(Door(r.id, r.full_text, r.grid_code, r.community_code, r.town_code, r.lon, r.lat))
    assert len(out) >= 50
    return out


def register(engine: Engine, geocoder: Geocoder, *events: dict[str, Any]) -> None:
    """Accept events (one transaction) and relay the outbox, as the API and `gridgov serve` do."""
    with engine.begin() as conn:
        accept_events(conn, [parse_event(e) for e in events])
    relay_pending(engine, lambda: geocoder)


def tasks_of(conn: Connection, uscc: str) -> list[Any]:
    return list(
        conn.execute(
            text(
                "SELECT id, duty, status, grid_code, worker_id, department_codes, event_id, holder FROM task "
                "WHERE entity_uscc = :u ORDER BY id"
            ),
            {"u": uscc},
        ).all()
    )


def workers_of(conn: Connection, grid_code: str) -> set[int]:
    return {
        int(r[0]) for r in conn.execute(text("SELECT id FROM worker WHERE grid_code = :g AND active"), {"g": grid_code})
    }


def event_row(conn: Connection, event_id: str) -> Any:
    return conn.execute(text("SELECT * FROM registration_event WHERE event_id = :e"), {"e": event_id}).one()


def count(conn: Connection, sql: str, **params: Any) -> int:
    return int(conn.execute(text(sql), params).scalar_one())


# ------------------------------------------------------------------------------------------------ new registrations


def test_a_new_registration_becomes_duty_tasks_for_a_worker_of_its_grid(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    door = doors[0]
    event = raw_event(door.full_text, scope="餐饮服务；烟草制品零售")
    register(engine, geocoder, event)
    with engine.connect() as conn:
        tasks = tasks_of(conn, event["uscc"])
        assert sorted(t.duty for t in tasks) == ["address_check", "licence_check", "opening_check"]
        workers = workers_of(conn, door.grid_code)
        for task in tasks:
            assert task.grid_code == door.grid_code
            assert task.status == "assigned" and task.worker_id in workers
            assert task.holder == f"worker:{task.worker_id}"
        # A scope that needs two licences is one joint case for both departments.
        licence = next(t for t in tasks if t.duty == "licence_check")
        assert licence.department_codes.split(",") == ["market_supervision", "tobacco"]
        stored = event_row(conn, event["event_id"])
        assert stored.outcome == "placed" and stored.town_code == door.town_code
        assert stored.received_at is not None and stored.pushed_at is not None
        assert stored.received_at <= stored.pushed_at
        entity = conn.execute(text("SELECT grid_code, address_id, status FROM entity WHERE uscc = :u"),
                              {"u": event["uscc"]}).one()  # fmt: skip
        assert tuple(entity) == (door.grid_code, door.address_id, "open")


def test_a_scope_that_needs_one_licence_goes_to_its_department_and_one_that_needs_none_has_no_licence_check(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    tobacco = raw_event(doors[1].full_text, scope="烟草制品零售")
    plain = raw_event(doors[2].full_text, scope="日用百货销售；服装零售")
    register(engine, geocoder, tobacco, plain)
    with engine.connect() as conn:
        licence = [t for t in tasks_of(conn, tobacco["uscc"]) if t.duty == "licence_check"]
        assert [t.department_codes for t in licence] == ["tobacco"]
        assert sorted(t.duty for t in tasks_of(conn, plain["uscc"])) == ["address_check", "opening_check"]


def test_replaying_an_event_creates_nothing_new(engine: Engine, geocoder: Geocoder, doors: list[Door]) -> None:
    event = raw_event(doors[3].full_text, scope="烟草制品零售")
    register(engine, geocoder, event)
    with engine.connect() as conn:
        before = (count(conn, "SELECT count(*) FROM task"), count(conn, "SELECT count(*) FROM outbox"))
    with engine.begin() as conn:
        first, twice = accept_events(conn, [parse_event(event), parse_event(event)])
    assert first.duplicate and twice.duplicate
    relay_pending(engine, lambda: geocoder)
    with engine.connect() as conn:
        after = (count(conn, "SELECT count(*) FROM task"), count(conn, "SELECT count(*) FROM outbox"))
    assert after == before


def test_the_same_event_id_with_different_content_is_a_conflict(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    event = raw_event(doors[4].full_text)
    register(engine, geocoder, event)
    with pytest.raises(EventConflict), engine.begin() as conn:
        accept_events(conn, [parse_event({**event, "name": "另一家公司"})])
    with pytest.raises(EventConflict), engine.begin() as conn:
        fresh = raw_event(doors[4].full_text)
        accept_events(conn, [parse_event(fresh), parse_event({**fresh, "business_scope": "餐饮服务"})])


def test_event_ids_are_unique_per_sender_and_the_relay_acts_in_the_senders_name(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    registry, other = EventSender("key#901", "key:登记系统"), EventSender("key#902", "key:另一系统")
    mine = raw_event(doors[5].full_text)
    theirs = {**raw_event(doors[6].full_text), "event_id": mine["event_id"]}
    with engine.begin() as conn:
        (first,) = accept_events(conn, [parse_event(mine)], sender=registry)
        (second,) = accept_events(conn, [parse_event(theirs)], sender=other)
        # Per sender, a replay is still a replay and a changed replay still a conflict.
        (again,) = accept_events(conn, [parse_event(mine)], sender=registry)
    assert not first.duplicate and not second.duplicate and again.duplicate
    assert first.event_id == f"key#901/{mine['event_id']}" and second.event_id != first.event_id
    with pytest.raises(EventConflict), engine.begin() as conn:
        accept_events(conn, [parse_event({**mine, "name": "另一家公司"})], sender=registry)
    relay_pending(engine, lambda: geocoder)  # later, as `gridgov serve`'s background relay does
    with engine.connect() as conn:
        for event, sender in ((mine, registry), (theirs, other)):
            row = conn.execute(
                text("SELECT sender, sender_name, outcome FROM registration_event WHERE event_id = :e"),
                {"e": stored_event_id(sender.owner, event["event_id"])},
            ).one()
            assert (row.sender, row.sender_name, row.outcome) == (sender.owner, sender.name, "placed")
            actors = conn.execute(
                text(
                    "SELECT DISTINCT actor FROM task_event e JOIN task t ON t.id = e.task_id WHERE t.entity_uscc = :u"
                ),
                {"u": event["uscc"]},
            ).scalars()
            assert set(actors) == {sender.name}
    # A platform load cannot take an id shaped like another sender's stored id.
    with pytest.raises(InvalidInput), engine.begin() as conn:
        accept_events(conn, [parse_event({**raw_event(doors[7].full_text), "event_id": "key#901/x"})])


def test_an_event_dated_beyond_the_backdating_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    now = clock.now()
    recent = parse_event({**raw_event("东城街道岗贝五路1号"), "occurred_at": (now - timedelta(days=29)).isoformat()})
    assert check_recent(recent) is recent
    old = parse_event({**raw_event("东城街道岗贝五路1号"), "occurred_at": (now - timedelta(days=31)).isoformat()})
    with pytest.raises(InvalidInput) as refused:
        check_recent(old)
    assert refused.value.field == "occurred_at"
    monkeypatch.setenv("GRIDGOV_REGISTRATION_MAX_AGE_DAYS", "40")
    assert check_recent(old) is old


def test_the_credit_code_is_checked_by_its_gb_32100_character_not_the_organisation_code() -> None:
    event = raw_event("东城街道岗贝五路1号")
    good = event["uscc"]
    wrong = good[:17] + next(c for c in "0123456789" if c != good[17])
    with pytest.raises(InvalidInput) as refused:
        parse_event({**event, "uscc": wrong})
    assert refused.value.field == "uscc"
    # An organisation code body whose own GB 11714 check is wrong, inside a code whose GB 32100 check is right.
    body8 = "MA4W1234"
    bad_org_check = next(c for c in "0123456789" if c != organisation_code_check_char(body8))
    first17 = "92441900" + body8 + bad_org_check
    accepted = parse_event({**event, "uscc": first17 + uscc_check_char(first17)})
    assert accepted.uscc == first17 + uscc_check_char(first17)


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "merger"), ("occurred_at", "2026-11-02 09:00"), ("occurred_at", "2099-01-01T00:00:00+08:00"),
     ("name", ""), ("address", "x" * 501)],
)  # fmt: skip
def test_an_event_with_a_bad_field_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_event({**raw_event("东城街道岗贝五路1号"), field: value})
    assert refused.value.field == field


# ------------------------------------------------------------------------------------------------ review queue


def review_item(conn: Connection, event_id: str) -> Any:
    return conn.execute(
        text("SELECT id, reason, payload, resolved_at FROM review_queue WHERE kind = 'registration' "
             "AND payload->>'event_id' = :e"),
        {"e": event_id},
    ).one()  # fmt: skip


@pytest.mark.parametrize(("address", "reason"), [("火星路1号", "no standard address"), ("东城街道", "town level")])
def test_an_address_that_cannot_be_placed_waits_in_the_review_queue_with_its_reason(
    engine: Engine, geocoder: Geocoder, address: str, reason: str
) -> None:
    event = raw_event(address)
    register(engine, geocoder, event)
    with engine.connect() as conn:
        item = review_item(conn, event["event_id"])
        assert reason in item.reason and item.resolved_at is None
        assert item.payload["address"] == address
        stored = event_row(conn, event["event_id"])
        assert stored.outcome == "review" and stored.reason == item.reason and stored.pushed_at is None
        assert tasks_of(conn, event["uscc"]) == []


def test_choosing_the_address_of_a_queued_registration_creates_its_tasks_and_teaches_the_geocoder(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    door = doors[5]
    typed = "金星大道东莞第八十八号"
    assert geocoder.geocode(typed).address_id is None
    event = raw_event(typed, scope="烟草制品零售")
    register(engine, geocoder, event)
    # The text names no town: the item is the command centre's to place, never a community dispatcher's.
    dispatcher = Actor("user:dispatcher", "dispatcher", Scope("community", door.community_code))
    centre = Actor("user:centre", "command_centre")
    with engine.begin() as conn:
        item = review_item(conn, event["event_id"])
        with pytest.raises(OutOfScope):
            resolve_review(conn, item.id, actor=dispatcher, geocoder=geocoder, address_id=door.address_id)
    with engine.begin() as conn:
        result = resolve_review(conn, item.id, actor=centre, geocoder=geocoder, address_id=door.address_id)
    assert isinstance(result, ProcessResult) and result.outcome == "placed" and len(result.task_ids) == 3
    with engine.connect() as conn:
        tasks = tasks_of(conn, event["uscc"])
        assert {t.grid_code for t in tasks} == {door.grid_code}
        assert all(t.worker_id in workers_of(conn, door.grid_code) for t in tasks)
        assert review_item(conn, event["event_id"]).resolved_at is not None
        assert event_row(conn, event["event_id"]).pushed_at is not None
        # The command centre placed it: its resolution teaches the whole city at once (a dispatcher's would teach
        # only the door's community, issue 17 finding 3: tests/security/test_attack_aliases.py), so the bare text is
        # answered too, at once, in this process and in a geocoder loaded afresh.
        town, community = conn.execute(
            text("SELECT t.name, c.name FROM community c JOIN town t ON t.code = c.town_code WHERE c.code = :c"),
            {"c": door.community_code},
        ).one()
        placed_typed = f"{town}{community}{typed}"
        assert geocoder.geocode(typed).address_id == door.address_id
        assert geocoder.geocode(placed_typed).address_id == door.address_id
        fresh = Geocoder.load(conn).geocode(placed_typed)
        assert (fresh.address_id, fresh.grid_code) == (door.address_id, door.grid_code)
        assert fresh.confidence >= 0.9
    with pytest.raises(AlreadyResolved), engine.begin() as conn:
        resolve_review(conn, item.id, actor=dispatcher, geocoder=geocoder, address_id=door.address_id)
    # A new registration typed the same way, with its town and community, is placed without a dispatcher.
    again = raw_event(placed_typed)
    register(engine, geocoder, again)
    with engine.connect() as conn:
        assert event_row(conn, again["event_id"]).outcome == "placed"
        assert {t.grid_code for t in tasks_of(conn, again["uscc"])} == {door.grid_code}


def test_changes_of_an_entity_in_review_wait_for_it_and_follow_in_order(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    # The registration cannot be placed; its scope change and its deregistration arrive before a dispatcher acts.
    serial = next(_serials)
    new = raw_event("土星大道旁边那间铺", serial=serial)
    scope = raw_event("土星大道旁边那间铺", kind="scope_change", scope="烟草制品零售", serial=serial, minutes=10)
    gone = raw_event("土星大道旁边那间铺", kind="deregistration", serial=serial, minutes=20)
    register(engine, geocoder, new)
    register(engine, geocoder, scope, gone)
    with engine.connect() as conn:
        for event in (scope, gone):
            row = event_row(conn, event["event_id"])
            assert row.outcome == "waiting" and "review item" in row.reason  # not ignored: nothing is lost
        item = review_item(conn, new["event_id"])
    dispatcher = Actor("user:centre", "command_centre")
    with engine.begin() as conn:
        result = resolve_review(conn, item.id, actor=dispatcher, geocoder=geocoder, address_id=doors[7].address_id)
    assert [f.outcome for f in result.followed] == ["placed", "placed"]
    with engine.connect() as conn:
        entity = conn.execute(
            text("SELECT status, business_scope, grid_code FROM entity WHERE uscc = :u"), {"u": new["uscc"]}
        ).one()
        assert (entity.status, entity.business_scope, entity.grid_code) == (
            "closed",
            "烟草制品零售",
            doors[7].grid_code,
        )
        tasks = tasks_of(conn, new["uscc"])
        assert "licence_check" in {t.duty for t in tasks}  # the scope change came first ...
        assert {t.status for t in tasks} == {"cancelled"}  # ... then the deregistration cancelled everything
        assert all(event_row(conn, e["event_id"]).outcome == "placed" for e in (scope, gone))


def test_a_waiting_address_change_goes_back_to_the_outbox_when_no_address_index_is_loaded(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    serial = next(_serials)
    new = raw_event("海王星路口第二家", serial=serial)
    moved = raw_event(doors[9].full_text, kind="address_change", serial=serial, minutes=5)
    register(engine, geocoder, new)
    register(engine, geocoder, moved)
    with engine.begin() as conn:
        assert event_row(conn, moved["event_id"]).outcome == "waiting"
        item = review_item(conn, new["event_id"])
        result = resolve_review(
            conn, item.id, actor=Actor("user:centre", "command_centre"), geocoder=None, address_id=doors[8].address_id
        )
        assert result.followed == []
        row = event_row(conn, moved["event_id"])
        assert row.outcome == "accepted" and row.processed_at is None
    relay_pending(engine, lambda: geocoder)  # as `gridgov serve`'s background relay does
    with engine.connect() as conn:
        assert event_row(conn, moved["event_id"]).outcome == "placed"
        grid = conn.execute(text("SELECT grid_code FROM entity WHERE uscc = :u"), {"u": new["uscc"]}).scalar_one()
        assert grid == doors[9].grid_code
        open_tasks = [t for t in tasks_of(conn, new["uscc"]) if t.status not in ("closed", "cancelled")]
        assert open_tasks and {t.grid_code for t in open_tasks} == {doors[9].grid_code}


def test_a_dispatcher_choosing_a_point_places_it_in_the_grid_covering_the_point(
    engine: Engine, geocoder: Geocoder
) -> None:
    with engine.connect() as conn:
        grid = conn.execute(
            text(
                "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
                "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE (SELECT count(*) FROM worker w WHERE w.grid_code = g.code AND w.active) >= 1 "
                "ORDER BY g.code DESC LIMIT 1"
            )
        ).one()
    event = raw_event("木星路边第三个摊位")
    register(engine, geocoder, event)
    centre = Actor("user:centre", "command_centre")
    with engine.begin() as conn:
        item = review_item(conn, event["event_id"])
        with pytest.raises(InvalidInput):
            resolve_review(conn, item.id, actor=centre, geocoder=geocoder)
        result = resolve_review(conn, item.id, actor=centre, geocoder=geocoder, lon=grid.lon, lat=grid.lat)
    assert result.outcome == "placed"
    with engine.connect() as conn:
        assert {t.grid_code for t in tasks_of(conn, event["uscc"])} == {grid.code}
        point = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE uscc = :u"), {"u": event["uscc"]}
        ).one()
        assert point == pytest.approx((grid.lon, grid.lat))


# ------------------------------------------------------------------------------------------------ changes


def test_an_address_change_moves_open_tasks_to_the_new_grid_and_a_deregistration_cancels_them(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    old, new = doors[6], next(d for d in doors[7:] if d.town_code != doors[6].town_code)
    serial = next(_serials)
    register(engine, geocoder, raw_event(old.full_text, scope="烟草制品零售", serial=serial))
    uscc = credit_code(serial)
    # The licence check waits for the community: after the move it waits for the new grid's community.
    with engine.begin() as conn:
        licence = next(t for t in tasks_of(conn, uscc) if t.duty == "licence_check")
        version = conn.execute(text("SELECT version FROM task WHERE id = :t"), {"t": licence.id}).scalar_one()
        transition(conn, licence.id, Move(to="escalated_community", version=version), actor=SYSTEM)
    change = raw_event(new.full_text, kind="address_change", scope="", serial=serial, minutes=10)
    register(engine, geocoder, change)
    with engine.connect() as conn:
        tasks = tasks_of(conn, uscc)
        assert len(tasks) == 4  # the three duties, plus a check of the new address
        assert {t.grid_code for t in tasks} == {new.grid_code}
        assert all(t.worker_id in workers_of(conn, new.grid_code) for t in tasks)
        assert {t.id: t.holder for t in tasks if t.status != "assigned"} == {
            licence.id: f"community:{new.community_code}"
        }
        assert all(t.holder == f"worker:{t.worker_id}" for t in tasks if t.status == "assigned")
        moved = conn.execute(
            text("SELECT te.task_id, te.actor, te.note FROM task_event te JOIN task t ON t.id = te.task_id "
                 "WHERE t.entity_uscc = :u AND te.note LIKE 'moved to grid%'"),
            {"u": uscc},
        ).all()  # fmt: skip
        assert len(moved) == 3 and all(new.grid_code in m.note and change["event_id"] in m.note for m in moved)
        # The entity keeps its scope: an address change says nothing about it.
        assert conn.execute(text("SELECT business_scope, grid_code FROM entity WHERE uscc = :u"), {"u": uscc}).one() \
            == ("烟草制品零售", new.grid_code)  # fmt: skip
    closing = raw_event(new.full_text, kind="deregistration", scope="", serial=serial, minutes=20)
    register(engine, geocoder, closing)
    with engine.connect() as conn:
        assert {t.status for t in tasks_of(conn, uscc)} == {"cancelled"}
        cancelled = conn.execute(
            text("SELECT te.from_status, te.note FROM task_event te JOIN task t ON t.id = te.task_id "
                 "WHERE t.entity_uscc = :u AND te.to_status = 'cancelled'"),
            {"u": uscc},
        ).all()  # fmt: skip
        assert len(cancelled) == 4 and all(closing["event_id"] in c.note and c.from_status for c in cancelled)
        assert conn.execute(text("SELECT status FROM entity WHERE uscc = :u"), {"u": uscc}).scalar() == "closed"


def test_a_scope_change_that_adds_tobacco_adds_a_licence_check(
    engine: Engine, geocoder: Geocoder, doors: list[Door]
) -> None:
    serial = next(_serials)
    register(engine, geocoder, raw_event(doors[8].full_text, scope="日用百货销售", serial=serial))
    uscc = credit_code(serial)
    with engine.connect() as conn:
        assert [t.duty for t in tasks_of(conn, uscc) if t.duty == "licence_check"] == []
    change = raw_event(doors[8].full_text, kind="scope_change", scope="日用百货销售；烟草制品零售", serial=serial,
                       minutes=5)  # fmt: skip
    register(engine, geocoder, change)
    register(engine, geocoder, change)  # a replay adds nothing
    with engine.connect() as conn:
        licence = [t for t in tasks_of(conn, uscc) if t.duty == "licence_check"]
        assert [(t.department_codes, t.grid_code, t.event_id) for t in licence] == [
            ("tobacco", doors[8].grid_code, change["event_id"])
        ]
        assert conn.execute(text("SELECT needs_licence FROM entity WHERE uscc = :u"), {"u": uscc}).scalar() is True


# ------------------------------------------------------------------------------------------------ files


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(EVENT_FIELDS))
        writer.writeheader()
        writer.writerows(rows)


def test_importing_files_reports_rejected_rows_and_a_replay_creates_no_duplicates(
    engine: Engine, geocoder: Geocoder, doors: list[Door], tmp_path: Path
) -> None:
    good = [raw_event(d.full_text) for d in doors[10:14]]
    broken_code = {**raw_event(doors[14].full_text), "uscc": "91441900QA00000OO"}
    no_name = {**raw_event(doors[15].full_text), "name": ""}
    csv_path = tmp_path / "events.csv"
    # Line 1 is the header: the data rows are lines 2..7.
    write_csv(csv_path, [good[0], broken_code, good[1], no_name, good[2], {**good[0], "kind": "merger"}])
    jsonl_path = tmp_path / "events.jsonl"
    conflicting = {**good[1], "name": "冒名顶替的公司"}
    lines = [
        json.dumps(good[3], ensure_ascii=False),
        "{not json",
        "[1, 2]",
        json.dumps(conflicting, ensure_ascii=False),
    ]
    jsonl_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with engine.connect() as conn:
        queued_before = count(conn, "SELECT count(*) FROM review_queue WHERE kind = 'registration_rejected'")
    from_csv = import_events(engine, read_event_rows(csv_path), source=csv_path.name)
    from_jsonl = import_events(engine, read_event_rows(jsonl_path), source=jsonl_path.name)
    assert (from_csv.accepted, from_csv.duplicates) == (3, 0)
    assert [(r.line, r.field) for r in from_csv.rejected] == [(3, "uscc"), (5, "name"), (7, "kind")]
    assert (from_jsonl.accepted, from_jsonl.duplicates) == (1, 0)
    rejected = {r.line: r for r in from_jsonl.rejected}
    assert sorted(rejected) == [2, 3, 4]
    assert "JSON" in rejected[2].reason and "object" in rejected[3].reason
    assert rejected[4].field == "event_id" and "different content" in rejected[4].reason
    relay_pending(engine, lambda: geocoder)
    with engine.connect() as conn:
        queued = conn.execute(
            text("SELECT reason, payload FROM review_queue WHERE kind = 'registration_rejected' ORDER BY id")
        ).all()[queued_before:]
        assert len(queued) == 6
        assert {(q.payload["source"], q.payload["line"]) for q in queued} == {
            ("events.csv", 3), ("events.csv", 5), ("events.csv", 7),
            ("events.jsonl", 2), ("events.jsonl", 3), ("events.jsonl", 4),
        }  # fmt: skip
        assert all(q.reason for q in queued)
        snapshot = (
            count(conn, "SELECT count(*) FROM registration_event"),
            count(conn, "SELECT count(*) FROM task"),
            count(conn, "SELECT count(*) FROM outbox"),
        )
        assert all(len(tasks_of(conn, e["uscc"])) == 2 for e in good)

    replay = import_events(engine, read_event_rows(csv_path), source=csv_path.name)
    assert (replay.accepted, replay.duplicates, len(replay.rejected)) == (0, 3, 3)
    assert relay_pending(engine, lambda: geocoder) == 0
    with engine.connect() as conn:
        assert snapshot == (
            count(conn, "SELECT count(*) FROM registration_event"),
            count(conn, "SELECT count(*) FROM task"),
            count(conn, "SELECT count(*) FROM outbox"),
        )


def test_a_csv_without_the_required_columns_is_refused_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("event_id,kind\n1,new\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        list(read_event_rows(path))
    assert refused.value.field == "header"


# ------------------------------------------------------------------------------------------------ crash


def test_an_import_killed_midway_loses_no_accepted_event_and_a_rerun_finishes_the_job(
    engine: Engine, geocoder: Geocoder, db: DatabaseSettings, doors: list[Door], tmp_path: Path
) -> None:
    events = [
        raw_event(doors[i % len(doors)].full_text, scope=("烟草制品零售", "日用百货销售", "餐饮服务")[i % 3],
                  serial=1_000_000 + i)
        for i in range(3000)
    ]  # fmt: skip
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    ids = [e["event_id"] for e in events]
    # The command runs on the tests' clock, from this instant on.
    env = {**os.environ, "GRIDGOV_DATABASE_URL": str(db.database_url), "GRIDGOV_CLOCK_START": clock.now().isoformat()}

    def stored() -> int:
        with engine.connect() as conn:
            return count(conn, "SELECT count(*) FROM registration_event WHERE event_id = ANY(:ids)", ids=ids)

    process = subprocess.Popen([str(GRIDGOV), "registrations", "import", str(path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while stored() == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err.decode()
    killed_with = stored()
    assert 0 < killed_with <= len(events)

    with engine.connect() as conn:
        # Every accepted event has exactly one outbox row: acceptance and the outbox share one transaction.
        unpaired = conn.execute(
            text(
                "SELECT r.event_id, count(o.id) FROM registration_event r "
                "LEFT JOIN outbox o ON o.topic = 'registration' AND o.payload->>'event_id' = r.event_id "
                "GROUP BY r.event_id HAVING count(o.id) <> 1"
            )
        ).all()
        assert unpaired == []
        unprocessed = count(
            conn, "SELECT count(*) FROM registration_event WHERE event_id = ANY(:ids) AND processed_at IS NULL", ids=ids
        )
    assert unprocessed > 0, "the import was not killed before it finished"

    relay_pending(engine, lambda: geocoder)
    rerun = subprocess.run([str(GRIDGOV), "registrations", "import", str(path)], env=env, capture_output=True,
                           timeout=120, check=False)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert f"{len(events) - killed_with:,} events accepted, {killed_with:,} already received" in rerun.stdout.decode()
    relay_pending(engine, lambda: geocoder)

    with engine.connect() as conn:
        assert stored() == len(events)
        assert count(conn, "SELECT count(*) FROM outbox WHERE relayed_at IS NULL") == 0
        outcomes: dict[str, int] = dict(
            conn.execute(
                text("SELECT outcome, count(*) FROM registration_event WHERE event_id = ANY(:ids) GROUP BY 1"),
                {"ids": ids},
            ).all()
        )
        assert outcomes == {"placed": len(events)}
        assert count(conn, "SELECT count(*) FROM task WHERE event_id IS NOT NULL GROUP BY event_id, duty "
                           "ORDER BY count(*) DESC LIMIT 1") == 1  # fmt: skip
        duties = count(conn, "SELECT count(*) FROM task WHERE event_id = ANY(:ids)", ids=ids)
        # address and opening checks for all, a licence check for the two scopes out of three that need one
        assert duties == 2 * len(events) + 2 * len(events) // 3
