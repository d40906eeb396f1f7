"""Grid workloads on the test city: placed spatially per grid version, stored, refreshed, and the same hours the
redesign gets by summing the points of `area_work` (the consistency law)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from api.cli import app
from gis import (
    clock,
    migrate,  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
)
from gis.crs import to_metric
from gis.settings import DatabaseSettings
from planning.errors import PlanNotFound
from planning.workload import duty_hours, load_standards
from planning.workload_service import (
    WORKLOAD_JOB,
    area_work,
    grid_workloads,
    months_before,
    refresh,
    worker_workloads,
)
from supervision.creation import NewTask, create_tasks
from supervision.jobs import run_daily_jobs
from supervision.workflow import Duty

pytestmark = pytest.mark.db

STANDARDS = load_standards()
NON_TRAVEL = ("patrol", "clues", "open_tasks", "annual_report_campaign")


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction per story, rolled back: every story starts from the same city."""
    with engine.connect() as connection, connection.begin() as tx:
        yield connection
        tx.rollback()


def _community_with_grids(conn: Connection, at_least: int) -> str:
    """The community (lowest code) with at least `at_least` active grids and the most entities among those."""
    return str(
        conn.execute(
            text(
                "SELECT g.community_code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                " GROUP BY g.community_code HAVING count(*) >= :n ORDER BY sum(g.entity_count) DESC, 1 LIMIT 1"
            ),
            {"n": at_least},
        ).scalar_one()
    )


def _metric_grids(conn: Connection, community: str, version_id: int | None = None) -> dict[str, shapely.Geometry]:
    """The community's grids of a version (None: active) as metric shapes, by code."""
    rows = conn.execute(
        text(
            "SELECT g.code, ST_AsBinary(g.geom) FROM grid g JOIN grid_version v ON v.id = g.version_id"
            " WHERE g.community_code = :c AND (v.id = :v OR (CAST(:v AS int) IS NULL AND v.status = 'active'))"
            " ORDER BY g.code"
        ),
        {"c": community, "v": version_id},
    ).all()
    return {str(code): to_metric(shapely.from_wkb(bytes(wkb))) for code, wkb in rows}


def test_a_grid_holds_the_hours_of_the_points_it_covers_plus_its_land_and_roads(conn: Connection) -> None:
    """The consistency law: summing area_work's points, land and roads per grid gives the hours the API shows."""
    community = _community_with_grids(conn, 3)
    work = area_work(conn, [community])
    grids = _metric_grids(conn, community)
    loads = grid_workloads(conn, grid_codes=list(grids))
    assert len(work.points_xy) > 0 and len(work.address_xy) > 0 and work.roads
    taken = np.zeros(len(work.points_xy), dtype=bool)
    points = shapely.points(work.points_xy)
    for code, shape in grids.items():  # in code order: on a shared edge the lowest code takes the point
        inside = shapely.covers(shape, points) & ~taken
        taken |= inside
        roads_m = sum(shapely.intersection(shape, road).length for road in work.roads)
        law = work.points_hours[inside].sum() + shape.area * work.hours_per_m2 + roads_m * work.hours_per_road_m
        assert law == pytest.approx(loads[code].hours, rel=1e-6), code
    assert taken.all(), "every point of the area lies in one of its grids"


def test_a_grid_where_every_shop_registered_a_change_this_month_shows_more_hours(conn: Connection) -> None:
    """New tasks pushed to one grid raise its expected tasks by their duty's minutes over the window, nothing else."""
    community = _community_with_grids(conn, 2)
    codes = sorted(_metric_grids(conn, community))
    busy, quiet = codes[0], codes[1]
    before = grid_workloads(conn, grid_codes=codes)
    shops = conn.execute(
        text("SELECT uscc FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL ORDER BY uscc"),
        {"g": busy},
    ).scalars()
    now = clock.now()
    made = create_tasks(conn, [NewTask(Duty.OPENING_CHECK, busy, now, entity_uscc=u) for u in shops])
    assert made
    after = grid_workloads(conn, grid_codes=codes)
    key = "tasks:opening_check"
    gained = after[busy].item(key).count - before[busy].item(key).count  # type: ignore[union-attr]
    assert gained == pytest.approx(len(made) / STANDARDS.months_of_history)
    expected_more = len(made) * duty_hours("opening_check", STANDARDS) * (1 / STANDARDS.months_of_history + 1)
    assert after[busy].hours - before[busy].hours == pytest.approx(expected_more)  # the new rate + the new backlog
    assert after[quiet].hours == pytest.approx(before[quiet].hours)


def test_refresh_is_idempotent_and_reads_come_from_the_stored_rows(conn: Connection) -> None:
    """Refreshing twice writes the same figures; a read while nothing changed returns them without recomputing."""
    community = _community_with_grids(conn, 2)
    codes = sorted(_metric_grids(conn, community))
    assert refresh(conn, grid_codes=codes) == len(codes)
    first = dict(
        conn.execute(text("SELECT grid_code, hours FROM grid_workload WHERE grid_code = ANY(:c)"), {"c": codes}).all()
    )
    assert refresh(conn, grid_codes=codes) == len(codes)
    second = dict(
        conn.execute(text("SELECT grid_code, hours FROM grid_workload WHERE grid_code = ANY(:c)"), {"c": codes}).all()
    )
    assert first == second
    # Nothing changed in the data since: a read returns the stored row as it is (marked here), without recomputing.
    conn.execute(text("UPDATE grid_workload SET hours = -1 WHERE grid_code = :g"), {"g": codes[0]})
    assert grid_workloads(conn, grid_codes=codes)[codes[0]].hours == -1
    assert refresh(conn, grid_codes=[codes[0]]) == 1
    assert grid_workloads(conn, grid_codes=codes)[codes[0]].hours == pytest.approx(first[codes[0]])


def test_a_change_of_the_data_makes_the_stored_rows_stale(conn: Connection) -> None:
    """A clue reported in a grid after its workload was stored is counted at the next read."""
    community = _community_with_grids(conn, 2)
    codes = sorted(_metric_grids(conn, community))
    refresh(conn, grid_codes=codes)
    before = grid_workloads(conn, grid_codes=codes)[codes[0]]
    point = conn.execute(
        text(
            "SELECT ST_AsText(ST_PointOnSurface(geom)) FROM grid g JOIN grid_version v ON v.id = g.version_id"
            " AND v.status = 'active' WHERE g.code = :g"
        ),
        {"g": codes[0]},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO clue (industry, reported_at, grid_code, town_code, geom)"
            " SELECT '餐饮', :at, CAST(:g AS varchar), town_code, ST_GeomFromText(:p, 4326) FROM grid WHERE code = CAST(:g AS varchar) LIMIT 1"
        ),
        {"at": clock.now(), "g": codes[0], "p": point},
    )
    after = grid_workloads(conn, grid_codes=codes)[codes[0]]
    assert after.hours - before.hours == pytest.approx(STANDARDS.clue_minutes / 60 / STANDARDS.months_of_history)


def test_a_draft_that_merges_two_grids_is_computed_on_its_own_shapes(conn: Connection) -> None:
    """A draft version's grids are placed spatially: two grids merged into one hold the points of both."""
    community = _community_with_grids(conn, 3)
    active = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one()
    codes = sorted(_metric_grids(conn, community))
    keep, gone = codes[0], codes[1]
    draft = conn.execute(
        text(
            "INSERT INTO grid_version (name, status, base_version_id, area_code) VALUES ('草案', 'draft', :a, :c) RETURNING id"
        ),
        {"a": active, "c": community},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO grid (version_id, code, community_code, town_code, name, worker_count, area_m2, geom)"
            " SELECT :d, code, community_code, town_code, name, worker_count, area_m2, geom FROM grid"
            " WHERE version_id = :a AND community_code = :c AND code <> :gone"
        ),
        {"d": draft, "a": active, "c": community, "gone": gone},
    )
    conn.execute(
        text(
            "UPDATE grid SET geom = (SELECT ST_Multi(ST_Union(geom)) FROM grid WHERE version_id = :a AND code IN (:k, :g))"
            " WHERE version_id = :d AND code = :k"
        ),
        {"a": active, "d": draft, "k": keep, "g": gone},
    )
    base = grid_workloads(conn, grid_codes=codes)
    merged = grid_workloads(conn, version_id=draft)
    assert set(merged) == set(codes) - {gone}
    for key in NON_TRAVEL:
        both = base[keep].item(key).hours + base[gone].item(key).hours  # type: ignore[union-attr]
        assert merged[keep].item(key).hours == pytest.approx(both), key  # type: ignore[union-attr]
    land = base[keep].item("travel:area").hours + base[gone].item("travel:area").hours  # type: ignore[union-attr]
    assert merged[keep].item("travel:area").hours == pytest.approx(land, rel=1e-6)  # type: ignore[union-attr]
    for code in codes[2:]:
        assert merged[code].hours == pytest.approx(base[code].hours)
    stored = conn.execute(text("SELECT count(*) FROM grid_workload WHERE version_id = :d"), {"d": draft}).scalar_one()
    assert stored == len(merged)


def test_workers_share_their_grid_and_carry_their_own_backlog(conn: Connection) -> None:
    """Each worker carries an equal share of the grid's non-backlog hours plus the open tasks they hold."""
    grid = conn.execute(
        text(
            "SELECT w.grid_code FROM worker w JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'"
            " WHERE w.active GROUP BY w.grid_code HAVING count(*) >= 2 ORDER BY w.grid_code LIMIT 1"
        )
    ).scalar_one()
    ids = list(
        conn.execute(text("SELECT id FROM worker WHERE grid_code = :g AND active ORDER BY id"), {"g": grid}).scalars()
    )
    shops = list(
        conn.execute(
            text(
                "SELECT uscc FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL ORDER BY uscc LIMIT 3"
            ),
            {"g": grid},
        ).scalars()
    )
    made = create_tasks(conn, [NewTask(Duty.LICENCE_CHECK, grid, clock.now(), entity_uscc=u) for u in shops])
    conn.execute(text("UPDATE task SET worker_id = :w WHERE id = ANY(:t)"), {"w": ids[0], "t": made})
    loads = worker_workloads(conn, ids)
    grid_load = grid_workloads(conn, grid_codes=[grid])[grid]
    backlog = grid_load.item("open_tasks").hours  # type: ignore[union-attr]
    shared = [loads[i].hours - loads[i].item("open_tasks").hours for i in ids]  # type: ignore[union-attr]
    assert shared == pytest.approx([(grid_load.hours - backlog) / len(ids)] * len(ids))
    held = conn.execute(
        text(
            "SELECT duty, count(*) FROM task WHERE worker_id = :w AND status NOT IN ('closed', 'cancelled') GROUP BY duty"
        ),
        {"w": ids[0]},
    ).all()
    own = sum(n * duty_hours(d, STANDARDS) for d, n in held)
    assert loads[ids[0]].item("open_tasks").hours == pytest.approx(own)  # type: ignore[union-attr]
    assert own >= len(made) * duty_hours("licence_check", STANDARDS)


def test_the_annual_report_campaign_weighs_only_in_its_season(conn: Connection) -> None:
    """From March to June, entities that have not filed add reminders; in December they add nothing."""
    community = _community_with_grids(conn, 2)
    codes = sorted(_metric_grids(conn, community))
    december = grid_workloads(conn, grid_codes=codes)
    april = grid_workloads(conn, grid_codes=codes, at=datetime(2027, 4, 1, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert all(december[c].item("annual_report_campaign").hours == 0 for c in codes)  # type: ignore[union-attr]
    unfiled = sum(april[c].item("annual_report_campaign").count for c in codes)  # type: ignore[union-attr]
    assert unfiled > 0
    assert sum(april[c].item("annual_report_campaign").hours for c in codes) == pytest.approx(  # type: ignore[union-attr]
        unfiled * STANDARDS.campaign_minutes / 60
    )


def test_the_history_window_counts_calendar_months() -> None:
    """Three months before 31 May is the last day of February; before 15 January, 15 October."""
    assert months_before(datetime(2027, 5, 31, tzinfo=ZoneInfo("UTC")), 3) == datetime(
        2027, 2, 28, tzinfo=ZoneInfo("UTC")
    )
    assert months_before(datetime(2027, 1, 15), 3) + timedelta(0) == datetime(2026, 10, 15)


def test_an_unknown_grid_version_is_not_found(conn: Connection) -> None:
    """grid_workloads of a version that does not exist: PlanNotFound with its reason."""
    with pytest.raises(PlanNotFound) as refused:
        grid_workloads(conn, version_id=987654)
    assert refused.value.reason == "unknown_version"


def test_the_command_line_refreshes_the_city_and_shows_a_community_in_chinese(
    db: DatabaseSettings, engine: Engine
) -> None:
    """`gridgov workload refresh` stores every grid's hours; `show CODE` prints the unit, its items and its grids."""
    with engine.connect() as conn:
        community = _community_with_grids(conn, 3)
        grids = sorted(_metric_grids(conn, community))
        n_grids = conn.execute(
            text("SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'")
        ).scalar_one()
    env = {"GRIDGOV_DATABASE_URL": db.database_url}
    refreshed = CliRunner().invoke(app, ["workload", "refresh"], env=env)
    assert refreshed.exit_code == 0, refreshed.output
    assert f"已计算 {n_grids:,} 个网格的工作量" in refreshed.output
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM grid_workload")).scalar_one()
    assert stored == n_grids

    shown = CliRunner().invoke(app, ["workload", "show", community], env=env)
    assert shown.exit_code == 0, shown.output
    for label in ("每月工作量", "网格员", "建议", "市场主体日常巡查", "通行（面积）", *grids):
        assert label in shown.output

    one_grid = CliRunner().invoke(app, ["workload", "show", grids[0]], env=env)
    assert one_grid.exit_code == 0 and "网格员" in one_grid.output and "本人在办" in one_grid.output
    unknown = CliRunner().invoke(app, ["workload", "show", "441900999999999"], env=env)
    assert unknown.exit_code == 2 and "不存在" in unknown.output
    malformed = CliRunner().invoke(app, ["workload", "show", "12ab"], env=env)
    assert malformed.exit_code == 2 and "编码格式不对" in malformed.output


def test_the_daily_job_refreshes_every_grid_once_a_day_from_half_past_six(db: DatabaseSettings, engine: Engine) -> None:
    """`gridgov serve` recomputes the workload each day (weekends too) at its first tick from 06:30, once."""
    shanghai = ZoneInfo("Asia/Shanghai")
    saturday_early = datetime(2026, 12, 5, 6, 0, tzinfo=shanghai)
    saturday_later = datetime(2026, 12, 5, 6, 45, tzinfo=shanghai)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_workload"))
        conn.execute(text("DELETE FROM job_run WHERE job = 'workload_refresh'"))
        n_grids = conn.execute(
            text("SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'")
        ).scalar_one()
    assert run_daily_jobs(engine, [WORKLOAD_JOB], now=saturday_early) == {}
    assert run_daily_jobs(engine, [WORKLOAD_JOB], now=saturday_later) == {"workload_refresh": {"grids": n_grids}}
    assert run_daily_jobs(engine, [WORKLOAD_JOB], now=saturday_later + timedelta(hours=3)) == {}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid_workload")).scalar_one() == n_grids
        logged = conn.execute(text("SELECT count(*) FROM job_run WHERE job = 'workload_refresh'")).scalar_one()
    assert logged == 1


def test_campaign_reminders_are_not_counted_again_as_expected_tasks(conn: Connection) -> None:
    """Annual-report reminders pushed by the campaign are backlog while open, never a rate of new registrations."""
    community = _community_with_grids(conn, 2)
    grid = sorted(_metric_grids(conn, community))[0]
    before = grid_workloads(conn, grid_codes=[grid])[grid]
    shops = list(
        conn.execute(
            text("SELECT uscc FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL ORDER BY uscc"),
            {"g": grid},
        ).scalars()
    )
    made = create_tasks(
        conn,
        [NewTask(Duty.ANNUAL_REPORT, grid, clock.now(), entity_uscc=u, campaign="annual_report:2026") for u in shops],
    )
    assert made
    after = grid_workloads(conn, grid_codes=[grid])[grid]
    assert after.item("tasks:annual_report").count == before.item("tasks:annual_report").count  # type: ignore[union-attr]
    assert after.item("open_tasks").count - before.item("open_tasks").count == len(made)  # type: ignore[union-attr]


def test_rows_of_an_older_standards_version_are_recomputed_on_the_next_read(conn: Connection) -> None:
    """A change of the standards file (a new version) makes every stored row stale: the next read recomputes it."""
    community = _community_with_grids(conn, 2)
    codes = sorted(_metric_grids(conn, community))
    refresh(conn, grid_codes=codes)
    right = grid_workloads(conn, grid_codes=codes)
    conn.execute(
        text("UPDATE grid_workload SET standards_version = '2025.9', hours = 999 WHERE grid_code = ANY(:c)"),
        {"c": codes},
    )
    again = grid_workloads(conn, grid_codes=codes)
    assert {c: w.hours for c, w in again.items()} == pytest.approx({c: w.hours for c, w in right.items()})
    versions = set(
        conn.execute(
            text("SELECT standards_version FROM grid_workload WHERE grid_code = ANY(:c)"), {"c": codes}
        ).scalars()
    )
    assert versions == {STANDARDS.version}
