"""The morning's assignment on the test city: an overloaded grid lends tasks to a neighbour, audited, once a day."""

from __future__ import annotations

import time as pytime
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from gis import clock
from gis.settings import DatabaseSettings
from planning.daily_service import MORNING_JOB, assign_daily, daily_hours, load_neighbours
from planning.workload import load_standards
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, default_calendar
from supervision.creation import NewTask, create_tasks
from supervision.errors import OutOfScope
from supervision.jobs import DailyJob, run_periodic
from supervision.scope import Scope
from supervision.task_queries import TaskFilters, list_tasks, task_by_id
from supervision.transitions import Move, transition
from supervision.workflow import Duty

pytestmark = pytest.mark.db

FLOOD = 90  # opening checks pushed into one grid at once: far more than its workers can do before the deadline


def _today() -> date:
    return clock.now().astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Area:
    """A grid with workers and open entities, next to grids of its community that have workers too."""

    grid_code: str
    community_code: str
    town_code: str
    workers: tuple[int, ...]
    neighbours: tuple[str, ...]
    entities: tuple[str, ...]


@pytest.fixture(scope="module")
def area(engine: Engine) -> Area:
    """The first grid (by code) with 2+ workers, 3+ open entities and 2+ staffed neighbours in its community."""
    with engine.connect() as conn:
        neighbours = load_neighbours(conn)
        staffed = {
            r[0]: int(r[1])
            for r in conn.execute(text("SELECT grid_code, count(*) FROM worker WHERE active GROUP BY grid_code"))
        }
        for g in conn.execute(
            text(
                """
                SELECT g.code, g.community_code, g.town_code FROM grid g
                JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
                WHERE (SELECT count(*) FROM entity e WHERE e.grid_code = g.code AND e.status = 'open'
                       AND e.geom IS NOT NULL) >= 3
                ORDER BY g.code
                """
            )
        ):
            around = tuple(n for n in neighbours.get(g.code, []) if staffed.get(n, 0) >= 1)
            if staffed.get(g.code, 0) >= 2 and len(around) >= 2:
                workers = conn.execute(
                    text("SELECT id FROM worker WHERE grid_code = :g AND active ORDER BY id"), {"g": g.code}
                ).scalars()
                entities = conn.execute(
                    text("SELECT uscc FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL "
                         "ORDER BY uscc LIMIT 3"),
                    {"g": g.code},
                ).scalars()  # fmt: skip
                return Area(g.code, g.community_code, g.town_code, tuple(workers), around, tuple(entities))
    pytest.fail("the test city has no staffed grid with two staffed neighbours")


def _counts(conn: Connection) -> tuple[int, int, int]:
    """Audit rows, planning batches and the sum of task versions: what any write would change."""
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM task_event), (SELECT count(*) FROM planning_batch), "
            "(SELECT coalesce(sum(version), 0) FROM task)"
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def test_grids_neighbour_only_inside_their_community_across_a_shared_edge(engine: Engine) -> None:
    with engine.connect() as conn:
        neighbours = load_neighbours(conn)
        grids = dict(
            conn.execute(
                text(
                    "SELECT g.code, g.community_code FROM grid g "
                    "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                )
            ).all()
        )
        pairs = [(a, b) for a, ns in neighbours.items() for b in ns if a < b]
        assert pairs
        for a, ns in neighbours.items():
            for b in ns:
                assert grids[a] == grids[b], "a neighbour lies in the same community"
                assert a in neighbours[b], "being neighbours is mutual"
        shared = conn.execute(
            text(
                """
                SELECT min(ST_Length(ST_Transform(ST_CollectionExtract(
                           ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 2), 4547)))
                FROM unnest(CAST(:a AS text[]), CAST(:b AS text[])) AS p(a, b)
                JOIN grid a ON a.code = p.a JOIN grid_version va ON va.id = a.version_id AND va.status = 'active'
                JOIN grid b ON b.code = p.b AND b.version_id = a.version_id
                """
            ),
            {"a": [p[0] for p in pairs[:200]], "b": [p[1] for p in pairs[:200]]},
        ).scalar_one()
        assert shared > 1.0, "neighbours share a boundary of real length, not a corner"
        # The grids tile their communities: nearly every grid of a community of several grids has a neighbour.
        several = [g for g, c in grids.items() if sum(1 for x in grids.values() if x == c) > 1]
        assert sum(1 for g in several if neighbours.get(g)) >= 0.95 * len(several)


def test_a_dry_run_plans_the_whole_city_and_writes_nothing(engine: Engine, area: Area) -> None:
    with engine.begin() as conn:
        _flood(conn, area, 6, tag="dry-run")
        before = _counts(conn)
        summary = assign_daily(conn, on=_today(), dry_run=True)
        assert _counts(conn) == before
    assert summary.dry_run and summary.batch_id is None
    assert summary.workers > 9000
    assert summary.tasks >= 6
    assert summary.kept + summary.changed == summary.tasks
    assert summary.hours_per_day == pytest.approx(daily_hours(_today(), load_standards(), default_calendar()), abs=1e-3)


def _flood(conn: Connection, area: Area, n: int, *, tag: str = "daily-test") -> list[int]:
    """n opening checks of the grid's entities pushed now (10 working days to the deadline), as intake pushes them."""
    moment = clock.now()
    created = create_tasks(
        conn,
        [
            NewTask(
                Duty.OPENING_CHECK, area.grid_code, moment, area.entities[i % len(area.entities)], campaign=f"{tag}:{i}"
            )
            for i in range(n)
        ],  # fmt: skip
    )
    assert len(created) == n
    return created


def test_an_overloaded_grid_lends_its_latest_tasks_to_neighbouring_grids_of_its_community(
    engine: Engine, area: Area
) -> None:
    with engine.begin() as conn:
        flood = _flood(conn, area, FLOOD)
        events_before, batches_before, _ = _counts(conn)
        summary = assign_daily(conn, on=_today(), town_code=area.town_code)
        assert summary.crossed > 0 and summary.changed > 0 and summary.batch_id is not None
        rows = conn.execute(
            text(
                "SELECT t.id, t.grid_code, t.holder, t.worker_id, t.status, w.grid_code AS worker_grid "
                "FROM task t LEFT JOIN worker w ON w.id = t.worker_id WHERE t.id = ANY(:ids)"
            ),
            {"ids": flood},
        ).all()
        lent = [r for r in rows if r.worker_grid not in (None, area.grid_code)]
        assert lent, "some of the flood went to a neighbour"
        for r in rows:
            assert r.grid_code == area.grid_code, "a task keeps its grid"
            if r.worker_id is not None:
                assert r.holder == f"worker:{r.worker_id}" and r.status == "assigned"
        assert {r.worker_grid for r in lent} <= set(area.neighbours) | set(load_neighbours(conn)[area.grid_code])
        # Each move is audited with a note naming the day, and the run is one planning batch.
        notes = conn.execute(
            text("SELECT note FROM task_event WHERE task_id = :t ORDER BY id DESC LIMIT 1"), {"t": lent[0].id}
        ).scalar_one()
        assert f"每日分派 {_today().isoformat()}" in notes and "相邻网格" in notes
        events_after, batches_after, _ = _counts(conn)
        assert events_after - events_before == summary.changed
        assert batches_after == batches_before + 1
        batch = conn.execute(
            text("SELECT kind, area_code, summary FROM planning_batch WHERE id = :id"), {"id": summary.batch_id}
        ).one()
        assert batch.kind == "daily_assignment" and batch.area_code == area.town_code
        assert batch.summary["crossed"] == summary.crossed
        assert summary.crossed_now == batch.summary["crossed_now"] == len(lent)  # all new: the flood was just pushed
        assert summary.lenders[0] == (area.grid_code, sum(1 for r in lent))


def test_a_second_run_the_same_morning_changes_nothing(engine: Engine, area: Area) -> None:
    with engine.begin() as conn:
        before = _counts(conn)
        summary = assign_daily(conn, on=_today(), town_code=area.town_code)
        assert summary.changed == 0 and summary.batch_id is None
        assert summary.kept == summary.tasks
        assert _counts(conn) == before
        # The tasks lent this morning are still with the neighbours, but this run handed none over.
        assert summary.crossed > 0 and summary.crossed_now == 0 and summary.lenders == ()


def test_gridgov_assign_daily_run_again_says_it_handed_nothing_to_a_neighbour(
    db: DatabaseSettings, area: Area, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary counts what this run changed; the tasks already with a neighbour are labelled as such."""
    from api.cli import app

    monkeypatch.setenv("GRIDGOV_DATABASE_URL", db.database_url or "")
    result = CliRunner().invoke(app, ["assign", "daily", "--town", area.town_code])
    assert result.exit_code == 0, result.output
    figures = {line.split()[0]: line.split()[1] for line in result.output.splitlines()[1:] if len(line.split()) >= 2}
    assert figures["改派"] == "0" and figures["其中交相邻网格"] == "0", result.output
    assert int(figures["由相邻网格办理（含以前分派）"].replace(",", "")) > 0
    assert "本次交出任务最多的网格" not in result.output and "记录批次" not in result.output


def test_a_worker_handed_a_neighbours_task_sees_it_and_inspects_it(engine: Engine, area: Area) -> None:
    with engine.begin() as conn:
        lent = conn.execute(
            text(
                """
                SELECT t.id, t.version, w.id AS worker_id, w.town_code, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat
                FROM task t JOIN worker w ON w.id = t.worker_id JOIN entity e ON e.uscc = t.entity_uscc
                WHERE t.grid_code = :g AND w.grid_code <> t.grid_code AND t.campaign LIKE 'daily-test:%'
                ORDER BY t.id LIMIT 1
                """
            ),
            {"g": area.grid_code},
        ).one()
        scope = Scope("worker", str(lent.worker_id), town=lent.town_code)
        mine = list_tasks(conn, scope, TaskFilters(grid=area.grid_code), limit=500)
        assert lent.id in {t.id for t in mine.items}
        assert all(t.worker_id == lent.worker_id for t in mine.items), "of the other grid, only what was handed over"
        kept_home = conn.execute(
            text("SELECT id FROM task WHERE grid_code = :g AND worker_id = :w AND status = 'assigned' LIMIT 1"),
            {"g": area.grid_code, "w": area.workers[0]},
        ).scalar_one()
        with pytest.raises(OutOfScope):
            task_by_id(conn, kept_home, scope)
        view = transition(
            conn,
            lent.id,
            Move(to="inspected_ok", version=lent.version, lon=lent.lon, lat=lent.lat, note="已核查"),
            actor=Actor(f"worker:{lent.worker_id}", "grid_worker", scope),
        )
        assert view.status == "inspected_ok" and view.worker_id == lent.worker_id


def test_the_morning_job_runs_once_each_working_day_from_seven_and_is_logged(engine: Engine) -> None:
    calendar = default_calendar()
    day = _today() + timedelta(days=1)
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    rest = day + timedelta(days=1)
    while calendar.is_working_day(rest):
        rest += timedelta(days=1)
    calls: list[date] = []

    def record(conn: Connection, on: date, moment: datetime) -> dict[str, object]:
        calls.append(on)
        return MORNING_JOB.run(conn, on, moment)

    job = DailyJob(MORNING_JOB.name, MORNING_JOB.at, record)
    at = lambda d, h, m=0: datetime.combine(d, time(h, m), tzinfo=SHANGHAI)  # noqa: E731
    run_periodic(engine, now=at(day, 6, 55), daily_jobs=[job])
    assert calls == [], "not before seven"
    first = run_periodic(engine, now=at(day, 7, 3), daily_jobs=[job])
    run_periodic(engine, now=at(day, 9, 0), daily_jobs=[job])
    run_periodic(engine, now=at(rest, 8, 0), daily_jobs=[job])
    assert calls == [day], "once on the working day, never on a day off"
    assert first["daily_assignment"]["on"] == day.isoformat()  # type: ignore[index]
    with engine.connect() as conn:
        logged = conn.execute(
            text("SELECT result FROM job_run WHERE job = 'daily_assignment' ORDER BY id")
        ).scalars().all()  # fmt: skip
    assert len(logged) == 1 and logged[0]["on"] == day.isoformat()


def test_gridgov_assign_daily_prints_the_plan_in_chinese(db: DatabaseSettings, area: Area, monkeypatch) -> None:
    from api.cli import app

    monkeypatch.setenv("GRIDGOV_DATABASE_URL", db.database_url or "")
    result = CliRunner().invoke(app, ["assign", "daily", "--town", area.town_code, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "每日分派（试算，未写入）" in result.output and "交相邻网格" in result.output
    bad = CliRunner().invoke(app, ["assign", "daily", "--date", "2026-13-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    unknown = CliRunner().invoke(app, ["assign", "daily", "--town", "441900999"])
    assert unknown.exit_code == 2 and "没有编码为 441900999 的镇街" in unknown.output


def test_a_case_a_worker_follows_up_stays_with_them_however_full_the_grid(engine: Engine, area: Area) -> None:
    with engine.begin() as conn:
        held = conn.execute(
            text(
                """
                SELECT t.id, t.version, t.worker_id, w.town_code, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat
                FROM task t JOIN worker w ON w.id = t.worker_id JOIN entity e ON e.uscc = t.entity_uscc
                WHERE t.grid_code = :g AND w.grid_code = t.grid_code AND t.status = 'assigned'
                ORDER BY t.id LIMIT 1
                """
            ),
            {"g": area.grid_code},
        ).one()
        scope = Scope("worker", str(held.worker_id), town=held.town_code)
        transition(
            conn,
            held.id,
            Move(to="inspected_problem", version=held.version, lon=held.lon, lat=held.lat, note="发现问题"),
            actor=Actor(f"worker:{held.worker_id}", "grid_worker", scope),
        )
        _flood(conn, area, FLOOD, tag="follow-up")
        summary = assign_daily(conn, on=_today(), town_code=area.town_code)
        assert summary.carried >= 1 and summary.changed > 0
        after = conn.execute(text("SELECT worker_id, status FROM task WHERE id = :t"), {"t": held.id}).one()
        assert (after.worker_id, after.status) == (held.worker_id, "inspected_problem")


def test_the_served_platform_runs_the_morning_assignment_at_its_first_tick(
    db: DatabaseSettings, engine: Engine, area: Area, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from gis.settings import ServerSettings

    with engine.begin() as conn:
        queued = _flood(conn, area, 3, tag="served")
        conn.execute(text("UPDATE task SET worker_id = NULL, holder = :q WHERE id = ANY(:ids)"),
                     {"q": f"grid:{area.grid_code}", "ids": queued})  # fmt: skip
    settings = ServerSettings(secret_key="d" * 40, state_dir=tmp_path_factory.mktemp("state"))
    app = create_app(db_settings=db, server_settings=settings, run_jobs=True, daily_jobs=[MORNING_JOB])
    with TestClient(app):
        deadline = pytime.monotonic() + 90
        while True:
            with engine.connect() as conn:
                ran = conn.execute(
                    text(
                        "SELECT result FROM job_run WHERE job = 'daily_assignment' "
                        "AND (started_at AT TIME ZONE 'Asia/Shanghai')::date = :day"
                    ),
                    {"day": _today()},
                ).scalars().all()  # fmt: skip
            if ran:
                break
            assert pytime.monotonic() < deadline, "the morning assignment did not run"
            pytime.sleep(0.3)
    assert len(ran) == 1 and ran[0]["on"] == _today().isoformat()
    assert ran[0]["tasks"] >= len(queued) and ran[0]["workers"] > 9000, "the whole city's open tasks were planned"


def test_the_worker_finds_a_task_handed_over_from_a_neighbouring_grid_on_their_map(engine: Engine, area: Area) -> None:
    import mapbox_vector_tile

    from maps.tile_service import Caller, TileStore
    from maps.tiles import LAYERS, TileLayer, tile_of_lon_lat

    with engine.connect() as conn:
        lent = conn.execute(
            text(
                """
                SELECT t.id, w.id AS worker_id, w.town_code, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat
                FROM task t JOIN worker w ON w.id = t.worker_id JOIN entity e ON e.uscc = t.entity_uscc
                WHERE t.grid_code = :g AND w.grid_code <> t.grid_code AND t.status = 'assigned'
                ORDER BY t.id LIMIT 1
                """
            ),
            {"g": area.grid_code},
        ).one()
        caller = Caller(Scope("worker", str(lent.worker_id), town=lent.town_code), reads_tasks=True, reads_clues=True)
        answer = TileStore().tile(
            conn, LAYERS[TileLayer.TASKS], tile_of_lon_lat(lent.lon, lent.lat, 15), caller, "wgs84"
        )
    shown = mapbox_vector_tile.decode(answer.tile.body)["tasks"]["features"]
    ids = {f["properties"]["id"] for f in shown}
    assert lent.id in ids
    assert all(
        f["properties"]["worker_id"] == lent.worker_id for f in shown if f["properties"]["grid_code"] == area.grid_code
    ), "of the other grid, only the tasks handed to them"


def test_the_neighbour_workers_phone_lists_the_task_handed_to_them(
    db: DatabaseSettings, engine: Engine, area: Area, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from fastapi.testclient import TestClient

    from tests.support.accounts import bearer, make_users
    from tests.support.server import make_app

    with engine.begin() as conn:
        lent = conn.execute(
            text(
                "SELECT t.id, t.worker_id FROM task t JOIN worker w ON w.id = t.worker_id "
                "WHERE t.grid_code = :g AND w.grid_code <> t.grid_code AND t.status = 'assigned' ORDER BY t.id LIMIT 1"
            ),
            {"g": area.grid_code},
        ).one()
        home = conn.execute(
            text("SELECT id FROM task WHERE grid_code = :g AND worker_id = :w AND status = 'assigned' LIMIT 1"),
            {"g": area.grid_code, "w": area.workers[0]},
        ).scalar_one()
        make_users(conn, {"next-door": ("grid_worker", str(lent.worker_id))})
    with TestClient(make_app(db, tmp_path_factory.mktemp("state"))) as client:
        headers = bearer(client, "next-door")
        listed = client.get(f"/v1/tasks?status=assigned&worker={lent.worker_id}&limit=200", headers=headers)
        assert listed.status_code == 200
        assert lent.id in {t["id"] for t in listed.json()["items"]}
        one = client.get(f"/v1/tasks/{lent.id}", headers=headers)
        assert one.status_code == 200 and one.json()["grid_code"] == area.grid_code
        assert client.get(f"/v1/tasks/{home}", headers=headers).status_code == 403


def test_a_task_a_worker_takes_while_the_morning_plan_is_drawn_stays_theirs(
    engine: Engine, area: Area, monkeypatch: pytest.MonkeyPatch
) -> None:
    import planning.daily_service as service

    with engine.begin() as conn:
        (task_id,) = _flood(conn, area, 1, tag="race")
        conn.execute(text("UPDATE task SET worker_id = NULL, status = 'pushed', holder = :q WHERE id = :t"),
                     {"q": f"grid:{area.grid_code}", "t": task_id})  # fmt: skip
        version = conn.execute(text("SELECT version FROM task WHERE id = :t"), {"t": task_id}).scalar_one()
        town = conn.execute(text("SELECT town_code FROM worker WHERE id = :w"), {"w": area.workers[-1]}).scalar_one()
    taker = area.workers[-1]
    drawn = service.plan_daily

    def drawn_while_a_worker_acts(*args: object, **kwargs: object) -> object:
        plan = drawn(*args, **kwargs)  # type: ignore[arg-type]
        with engine.begin() as other:  # the worker's phone, in its own transaction, commits first
            scope = Scope("worker", str(taker), town=town)
            transition(other, task_id, Move(to="assigned", version=version), actor=Actor(f"worker:{taker}",
                       "grid_worker", scope))  # fmt: skip
        return plan

    monkeypatch.setattr(service, "plan_daily", drawn_while_a_worker_acts)
    with engine.begin() as conn:
        assign_daily(conn, on=_today(), town_code=area.town_code)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT worker_id, version FROM task WHERE id = :t"), {"t": task_id}).one()
        notes = conn.execute(text("SELECT note FROM task_event WHERE task_id = :t ORDER BY id"), {"t": task_id}).all()
    assert (row.worker_id, row.version) == (taker, version + 1), "the worker's move stands, untouched"
    assert not any("每日分派" in (n.note or "") for n in notes), "the plan wrote nothing over it"
