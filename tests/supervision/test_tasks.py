"""Tasks go to the least-loaded worker of their grid, move only by the rules, keep a full history and run on working days."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, text

from gis import clock
from supervision.assignment import assign_waiting
from supervision.audit import Actor, history, overdue_attribution
from supervision.calendar import default_calendar
from supervision.creation import NewTask, create_tasks
from supervision.deadlines import raise_warnings
from supervision.errors import InvalidInput, InvalidMove, NotPermitted, OutOfScope, StaleVersion
from supervision.scope import CITY, Scope
from supervision.task_queries import TaskFilters, TaskView, list_tasks, task_by_id
from supervision.transitions import Move, transition
from supervision.workers import deactivate_worker, move_worker
from supervision.workflow import Duty

pytestmark = pytest.mark.db

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENTRE = Actor("user:centre", "command_centre")


@dataclass(frozen=True)
class Site:
    """A grid with three active workers and entities (points) of its own."""

    grid_code: str
    community_code: str
    town_code: str
    workers: tuple[int, ...]
    entities: tuple[str, ...]


@pytest.fixture(scope="module")
def sites(engine: Engine) -> list[Site]:
    """Grids of three or more workers, each with a few open entities, in different communities."""
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                """
                SELECT DISTINCT ON (g.community_code) g.code, g.community_code, g.town_code
                FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
                WHERE (SELECT count(*) FROM worker w WHERE w.grid_code = g.code AND w.active) >= 3
                  AND (SELECT count(*) FROM entity e WHERE e.grid_code = g.code AND e.status = 'open'
                       AND e.geom IS NOT NULL) >= 3
                ORDER BY g.community_code, g.code LIMIT 8
                """
            )
        ).all()
        out = []
        for g in grids:
            workers = conn.execute(
                text("SELECT id FROM worker WHERE grid_code = :g AND active ORDER BY id"), {"g": g.code}
            ).scalars()
            entities = conn.execute(
                text("SELECT uscc FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL "
                     "ORDER BY uscc LIMIT 3"),
                {"g": g.code},
            ).scalars()  # fmt: skip
            out.append(Site(g.code, g.community_code, g.town_code, tuple(workers), tuple(entities)))
    assert len(out) >= 6
    return out


def push(
    conn: Connection,
    site: Site,
    n: int = 1,
    *,
    duty: Duty = Duty.OPENING_CHECK,
    departments: tuple[str, ...] = (),
    pushed_at: datetime | None = None,
) -> list[int]:
    """Push n tasks about the site's first entity."""
    moment = pushed_at or clock.now()
    new = [NewTask(duty, site.grid_code, moment, site.entities[0], department_codes=departments) for _ in range(n)]
    return create_tasks(conn, new)


def worker_actor(worker_id: int) -> Actor:
    return Actor(f"user:worker{worker_id}", "grid_worker", Scope("worker", str(worker_id)))


def task(conn: Connection, task_id: int) -> TaskView:
    return task_by_id(conn, task_id, CITY)


def entity_point(conn: Connection, uscc: str, *, metres: float = 0.0) -> tuple[float, float]:
    """The entity's lon/lat, or a point `metres` due east of it."""
    row = conn.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Project(geom::geography, :m, radians(90))::geometry AS p "
             "FROM entity WHERE uscc = :u) s"),
        {"u": uscc, "m": metres},
    ).one()  # fmt: skip
    return float(row[0]), float(row[1])


def step(
    engine: Engine, task_id: int, to: str, actor: Actor, *, at_entity: bool = False, note: str | None = None
) -> TaskView:
    """One transition in its own transaction, from the version the caller sees now."""
    with engine.begin() as conn:
        current = task(conn, task_id)
        lon = lat = None
        if at_entity:
            lon, lat = entity_point(conn, current.entity_uscc, metres=15)
        return transition(
            conn, task_id, Move(to=to, version=current.version, note=note or f"to {to}", lon=lon, lat=lat),
            actor=actor,
        )  # fmt: skip


# ------------------------------------------------------------------------------------------------ assignment


def test_a_task_goes_to_the_least_loaded_worker_with_room_and_waits_in_the_grid_when_all_are_full(
    engine: Engine, sites: list[Site]
) -> None:
    site = sites[0]
    full, first, second = site.workers[:3]
    with engine.begin() as conn:
        # Any further worker of the grid is full too, so that two workers share the work.
        conn.execute(text("UPDATE worker SET capacity = 0 WHERE id = ANY(:w)"), {"w": [full, *site.workers[3:]]})
        ids = push(conn, site, 3)
        assert [task(conn, i).worker_id for i in ids] == [first, second, first]
        # second holds one open task, first two: the next task goes to second.
        (next_id,) = push(conn, site)
        assert task(conn, next_id).worker_id == second
        conn.execute(text("UPDATE worker SET capacity = 2 WHERE id = ANY(:w)"), {"w": [first, second]})
        (waiting,) = push(conn, site)
        queued = task(conn, waiting)
        assert (queued.status, queued.worker_id, queued.holder) == ("pushed", None, f"grid:{site.grid_code}")
        # Nobody has room yet: the periodic pass leaves it waiting and writes nothing.
        before = len(history(conn, CITY, task_id=waiting))
        assert waiting not in assign_waiting(conn)
        assert len(history(conn, CITY, task_id=waiting)) == before
        # Room frees up: the periodic pass assigns the waiting task by the same rule, audited.
        conn.execute(text("UPDATE worker SET capacity = 10 WHERE id = :w"), {"w": full})
        assert assign_waiting(conn)[waiting] == full
        assert task(conn, waiting).status == "assigned"
        assert task(conn, waiting).holder == f"worker:{full}"
        assert history(conn, CITY, task_id=waiting)[-1].note == "a worker of the grid has room now"


# ------------------------------------------------------------------------------------------------ the state machine


def test_a_task_walked_through_every_state_ends_closed_with_a_full_audit_trail(
    engine: Engine, sites: list[Site]
) -> None:
    site = sites[1]
    with engine.begin() as conn:
        happy, problem, dropped = push(conn, site, 3, duty=Duty.LICENCE_CHECK, departments=("tobacco",))
    dispatcher = Actor("user:dispatcher", "dispatcher", Scope("community", site.community_code))
    officer = Actor("user:tobacco", "department_officer", Scope("department", "tobacco"))
    with engine.connect() as conn:
        workers = {tid: task(conn, tid).worker_id for tid in (happy, problem, dropped)}

    step(engine, happy, "inspected_ok", worker_actor(workers[happy]), at_entity=True)
    closed = step(engine, happy, "closed", worker_actor(workers[happy]))
    assert closed.status == "closed" and closed.closed_at is not None and closed.due_at is None

    walker = worker_actor(workers[problem])
    for to in ("inspected_problem", "notice_issued", "reinspected", "escalated_community"):
        moved = step(engine, problem, to, walker, at_entity=to.startswith(("inspected", "reinspected")))
        assert moved.status == to
    assert moved.holder == f"community:{site.community_code}"
    moved = step(engine, problem, "escalated_department", dispatcher)
    assert moved.holder == "department:tobacco"
    step(engine, problem, "department_feedback", officer, note="已补办许可证")
    final = step(engine, problem, "closed", officer)
    assert (final.status, final.holder, final.due_at, final.allowed) == ("closed", None, None, [])

    step(engine, dropped, "cancelled", dispatcher, note="duplicate of another task")

    with engine.connect() as conn:
        trail = history(conn, CITY, task_id=problem)
        assert [(h.from_status, h.to_status) for h in trail] == [
            (None, "pushed"),
            ("pushed", "assigned"),
            ("assigned", "inspected_problem"),
            ("inspected_problem", "notice_issued"),
            ("notice_issued", "reinspected"),
            ("reinspected", "escalated_community"),
            ("escalated_community", "escalated_department"),
            ("escalated_department", "department_feedback"),
            ("department_feedback", "closed"),
        ]
        assert [h.actor for h in trail] == ["system", "system"] + [walker.name] * 4 + [
            dispatcher.name, officer.name, officer.name,
        ]  # fmt: skip
        assert all(h.at is not None for h in trail)
        assert trail[6].note == "to escalated_department" and trail[7].note == "已补办许可证"
        # Inspections carry the worker's position and its distance from the entity.
        assert trail[2].distance_m == pytest.approx(15, abs=1) and trail[2].lon is not None
        # The department's clock: 15 working days from the escalation.
        escalated = trail[6]
        assert escalated.due_at == default_calendar().due_at(escalated.at, 15).due_at
        assert [(h.from_status, h.to_status) for h in history(conn, CITY, task_id=happy)][2:] == [
            ("assigned", "inspected_ok"),
            ("inspected_ok", "closed"),
        ]
        assert history(conn, CITY, task_id=dropped)[-1].to_status == "cancelled"
        # The worker's history holds both tasks they walked.
        mine = {h.task_id for h in history(conn, CITY, worker_id=workers[problem])}
        assert problem in mine


def test_an_invalid_move_lists_the_moves_allowed_and_a_stale_version_is_refused(
    engine: Engine, sites: list[Site]
) -> None:
    site = sites[2]
    with engine.begin() as conn:
        (task_id,) = push(conn, site)
    with engine.begin() as conn:
        version = task(conn, task_id).version
        with pytest.raises(InvalidMove) as invalid:
            transition(conn, task_id, Move(to="closed", version=version), actor=CENTRE)
        assert invalid.value.current == "assigned"
        assert invalid.value.allowed == [
            "inspected_ok",
            "inspected_problem",
            "escalated_community",
            "assigned",
            "cancelled",
        ]
        with pytest.raises(InvalidMove):  # an inspection without the worker's position
            transition(conn, task_id, Move(to="inspected_ok", version=version), actor=CENTRE)
        with pytest.raises(StaleVersion) as stale:
            transition(conn, task_id, Move(to="cancelled", version=version - 1), actor=CENTRE)
        assert (stale.value.expected, stale.value.current) == (version - 1, version)
        assert task(conn, task_id).status == "assigned"


def test_of_two_concurrent_moves_from_the_same_version_exactly_one_wins(engine: Engine, sites: list[Site]) -> None:
    site = sites[2]
    with engine.begin() as conn:
        (task_id,) = push(conn, site)
        version = task(conn, task_id).version
        lon, lat = entity_point(conn, site.entities[0])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def move(to: str) -> None:
        barrier.wait()
        try:
            with engine.begin() as conn:
                transition(conn, task_id, Move(to=to, version=version, lon=lon, lat=lat), actor=CENTRE)
            outcomes.append(to)
        except StaleVersion:
            outcomes.append("stale")

    threads = [threading.Thread(target=move, args=(to,)) for to in ("inspected_ok", "inspected_problem")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes)[-1] == "stale" and len(outcomes) == 2
    winner = next(o for o in outcomes if o != "stale")
    with engine.connect() as conn:
        current = task(conn, task_id)
        assert (current.status, current.version) == (winner, version + 1)
        assert [h.to_status for h in history(conn, CITY, task_id=task_id)].count(winner) == 1


def test_an_inspection_far_from_the_entity_is_flagged_and_a_near_one_is_not(engine: Engine, sites: list[Site]) -> None:
    site = sites[3]
    with engine.begin() as conn:
        far, near = push(conn, site, 2)
        for task_id, metres in ((far, 500.0), (near, 20.0)):
            lon, lat = entity_point(conn, site.entities[0], metres=metres)
            current = task(conn, task_id)
            actor = worker_actor(current.worker_id)
            transition(conn, task_id, Move(to="inspected_ok", version=current.version, lon=lon, lat=lat),
                       actor=actor)  # fmt: skip
    with engine.connect() as conn:
        for task_id, metres, flagged in ((far, 500.0, True), (near, 20.0, False)):
            assert task(conn, task_id).flagged is flagged
            inspection = history(conn, CITY, task_id=task_id)[-1]
            assert inspection.flagged is flagged
            assert inspection.distance_m == pytest.approx(metres, abs=1.0)


# ------------------------------------------------------------------------------------------------ roles and scope


def test_roles_make_only_their_moves_and_nobody_reaches_outside_their_scope(engine: Engine, sites: list[Site]) -> None:
    site, elsewhere = sites[4], sites[5]
    with engine.begin() as conn:
        escalated, assigned = push(conn, site, 2, duty=Duty.LICENCE_CHECK, departments=("tobacco",))
        (foreign,) = push(conn, elsewhere)
        workers = [task(conn, i).worker_id for i in (escalated, assigned)]
    mine = worker_actor(workers[0])
    step(engine, escalated, "escalated_community", mine)

    with engine.begin() as conn:
        current = task(conn, escalated)
        with pytest.raises(InvalidInput) as unknown:
            upstairs = Move(to="escalated_department", version=current.version, department_codes=("mint",))
            transition(conn, escalated, upstairs, actor=CENTRE)
        assert unknown.value.field == "department_codes"
        with pytest.raises(NotPermitted):
            transition(conn, escalated, Move(to="escalated_department", version=current.version), actor=mine)
        inspect = Move(to="inspected_ok", version=task(conn, assigned).version, lon=113.7, lat=23.0)
        tobacco = Actor("user:tobacco", "department_officer", Scope("department", "tobacco"))
        with pytest.raises(NotPermitted):
            transition(conn, assigned, inspect, actor=tobacco)
        strangers = [
            worker_actor(next(w for w in elsewhere.workers)),
            Actor("user:far", "dispatcher", Scope("community", elsewhere.community_code)),
            Actor("user:health", "department_officer", Scope("department", "health")),
        ]
        for stranger in strangers:
            with pytest.raises(OutOfScope):
                transition(conn, assigned, Move(to="cancelled", version=inspect.version), actor=stranger)
            with pytest.raises(OutOfScope):
                task_by_id(conn, assigned, stranger.scope)
        # Listing shows each caller their own tasks only.
        seen = list_tasks(conn, mine.scope, TaskFilters(), limit=500).items
        assert {t.grid_code for t in seen} == {site.grid_code} and foreign not in {t.id for t in seen}
        assert list_tasks(conn, Scope("department", "health"), TaskFilters(uscc=site.entities[0])).total == 0
        assert task(conn, assigned).status == "assigned"


def test_a_worker_who_leaves_or_moves_hands_open_tasks_to_the_others_of_the_grid(
    engine: Engine, sites: list[Site]
) -> None:
    site = sites[6]
    target = sites[7].grid_code
    with engine.begin() as conn:
        # Enough tasks that the least-loaded rule hands some to each of the grid's workers, however many it has.
        ids = push(conn, site, 2 * len(site.workers))
        held = {i: task(conn, i).worker_id for i in ids}
    assert set(held.values()) <= set(site.workers) and len(set(held.values())) >= 3
    leaver, mover = sorted(set(held.values()))[:2]
    staying = set(site.workers) - {leaver, mover}
    # One of the leaver's tasks waits for the market supervision bureau: it stays with the bureau.
    upstairs = next(i for i, w in held.items() if w == leaver)
    step(engine, upstairs, "escalated_community", worker_actor(leaver))
    step(engine, upstairs, "escalated_department", CENTRE)
    with engine.begin() as conn:
        admin = Actor("user:admin", "admin")
        moved = deactivate_worker(conn, leaver, actor=admin)
        assert moved == sum(1 for w in held.values() if w == leaver)
        after = {i: task(conn, i) for i in ids}
        assert all(t.worker_id in staying | {mover} and t.grid_code == site.grid_code for t in after.values())
        assert (after[upstairs].status, after[upstairs].holder) == (
            "escalated_department", "department:market_supervision",
        )  # fmt: skip
        ids.remove(upstairs)
        assert move_worker(conn, mover, target, actor=admin) > 0
        after = {i: task(conn, i) for i in ids}
        assert {t.worker_id for t in after.values()} <= staying
        assert all(t.holder == f"worker:{t.worker_id}" for t in after.values())
        assert {t.grid_code for t in after.values()} == {site.grid_code}
        notes = [h.note for i in ids for h in history(conn, CITY, task_id=i) if h.actor == admin.name]
        assert any(f"reassigned from worker {leaver}: worker left" == n for n in notes)
        assert any(n.startswith(f"reassigned from worker {mover}: worker moved to grid {target}") for n in notes)


# ------------------------------------------------------------------------------------------------ deadlines


def test_the_first_inspection_is_due_on_the_tenth_working_day_after_the_push_across_national_day(
    engine: Engine, sites: list[Site]
) -> None:
    pushed = datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
    with engine.begin() as conn:
        (task_id,) = push(conn, sites[0], pushed_at=pushed)
        current = task(conn, task_id)
    expected = default_calendar().due_at(pushed, 10)
    assert current.due_at == expected.due_at
    # By hand: 9-30 is day 1; 10-1..10-7 are the holiday; 10-8, 10-9, 10-10 (a make-up Saturday), 10-12..10-16
    # are days 2..9; Monday 10-19 is day 10.
    assert current.due_at == datetime(2026, 10, 19, 23, 59, 59, tzinfo=SHANGHAI)
    assert current.warn_at == expected.warning_at and current.calendar_provisional is False


def test_warnings_come_once_due_soon_then_overdue_and_overdue_time_is_split_between_holders(
    engine: Engine, sites: list[Site]
) -> None:
    site = sites[3]
    pushed = clock.now() - timedelta(days=40)
    with engine.begin() as conn:
        (task_id,) = push(conn, site, pushed_at=pushed)
        current = task(conn, task_id)
    warn_at, due_at = current.warn_at, current.due_at
    assert pushed < warn_at < due_at < clock.now()

    def warnings() -> list[tuple[str, datetime]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT level, due_at FROM task_warning WHERE task_id = :t ORDER BY id"), {"t": task_id}
            )
            return [(str(r.level), r.due_at) for r in rows]

    for _ in range(2):
        with engine.begin() as conn:
            raise_warnings(conn, now=warn_at + timedelta(minutes=1))
    assert warnings() == [("due_soon", due_at)]
    for _ in range(2):
        with engine.begin() as conn:
            raise_warnings(conn, now=due_at + timedelta(minutes=1))
    assert warnings() == [("due_soon", due_at), ("overdue", due_at)]

    first = current.worker_id
    with engine.begin() as conn:
        deactivate_worker(conn, first, actor=Actor("user:admin", "admin"))
    with engine.connect() as conn:
        trail = history(conn, CITY, task_id=task_id)
        second = task(conn, task_id).worker_id
    handed = trail[-1]
    assert second != first and handed.holder == f"worker:{second}"
    later = handed.at + timedelta(hours=1)
    split = overdue_attribution(trail, now=later)
    assert split == {
        f"worker:{first}": pytest.approx((handed.at - due_at).total_seconds()),
        f"worker:{second}": pytest.approx(3600.0),
    }
