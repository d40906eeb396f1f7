"""Staffing plans on the test city: a town leader sees their town's plan, applies it in one audited step, and the
plan is then done; a plan that changed since it was seen is refused and nothing moves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from api.cli import app
from gis import (
    clock,
    migrate,  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
)
from gis.settings import DatabaseSettings
from planning import staffing_service
from planning.errors import NothingToPlan, PlanNotFound, StaleDraft, StalePlan
from planning.staffing import GridStaff, lower_bound
from planning.workload import load_standards, recommended_workers
from supervision.audit import Actor
from supervision.creation import NewTask, create_tasks
from supervision.errors import InvalidInput, OutOfScope
from supervision.scope import CITY, Scope
from supervision.task_states import OPEN_STATUSES
from supervision.workflow import Duty

pytestmark = pytest.mark.db


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction per story, rolled back after it: every story starts from the same city."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@dataclass(frozen=True)
class EmptiedGrid:
    """A grid whose workers were all sent to the next grid of its community, and that grid."""

    town: str
    community: str
    grid: str
    neighbour: str


def empty_a_grid(conn: Connection) -> EmptiedGrid:
    """The first grid of a community of three grids or more loses all its workers to the next grid of its community:
    a grid left with nobody beside a grid with too many, whose workers then get two open tasks each."""
    row = conn.execute(
        text(
            """
            SELECT g.code, g.community_code, g.town_code, n.code AS neighbour
            FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            CROSS JOIN LATERAL (SELECT min(n.code) AS code FROM grid n WHERE n.version_id = g.version_id
                                  AND n.community_code = g.community_code AND n.code > g.code) n
            WHERE (SELECT count(*) FROM grid c WHERE c.version_id = g.version_id
                     AND c.community_code = g.community_code) >= 3
              AND EXISTS (SELECT 1 FROM entity e WHERE e.grid_code = g.code AND e.status = 'open' AND e.geom IS NOT NULL)
              AND EXISTS (SELECT 1 FROM entity e WHERE e.grid_code = n.code AND e.status = 'open' AND e.geom IS NOT NULL)
              AND EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = g.code AND w.active)
            ORDER BY g.town_code, g.code LIMIT 1
            """
        )
    ).one()
    conn.execute(
        text("UPDATE worker SET grid_code = :to WHERE grid_code = :from AND active"),
        {"from": row.code, "to": row.neighbour},
    )
    push(conn, row.neighbour, 2 * len(active_workers(conn, row.neighbour)))
    return EmptiedGrid(row.town_code, row.community_code, row.code, row.neighbour)


def push(conn: Connection, grid: str, n: int) -> list[int]:
    """n opening checks of the grid's first open entity, assigned by the usual rule (or queued when nobody is there)."""
    uscc = conn.execute(
        text("SELECT min(uscc) FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL"), {"g": grid}
    ).scalar_one()
    return create_tasks(conn, [NewTask(Duty.OPENING_CHECK, grid, clock.now(), uscc) for _ in range(n)])


def active_workers(conn: Connection, grid: str) -> set[int]:
    """The active workers of a grid now."""
    return {
        int(w)
        for w in conn.execute(text("SELECT id FROM worker WHERE grid_code = :g AND active"), {"g": grid}).scalars()
    }


def test_a_town_leader_plans_their_own_town_and_workers_stay_inside_it(conn: Connection) -> None:
    town = conn.execute(text("SELECT town_code FROM grid GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()
    standards = load_standards()
    plan = staffing_service.plan(conn, scope=Scope("town", town))
    assert plan.town_code == town
    assert {g.town_code for g in plan.grids} == {town}
    grid_count = conn.execute(
        text(
            "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "WHERE g.town_code = :t"
        ),
        {"t": town},
    ).scalar_one()
    assert len(plan.grids) == grid_count
    staffed = conn.execute(
        text("SELECT count(*) FROM worker WHERE town_code = :t AND active"), {"t": town}
    ).scalar_one()
    assert plan.totals.workers == staffed == sum(g.workers for g in plan.grids) == sum(g.after for g in plan.grids)
    for grid in plan.grids:
        assert grid.recommended == recommended_workers(grid.hours, standards)
        assert standards.min_workers <= grid.recommended <= standards.max_workers
    assert all(m.from_grid.startswith(town[:9]) and m.to_grid.startswith(town[:9]) for m in plan.moves)
    # Asking again gives the same plan, and the same fingerprint.
    assert staffing_service.plan(conn, scope=Scope("town", town)) == plan


def test_a_grid_left_without_workers_gets_its_minimum_from_the_grid_with_too_many(conn: Connection) -> None:
    emptied = empty_a_grid(conn)
    plan = staffing_service.plan(conn, scope=Scope("town", emptied.town))
    line = next(g for g in plan.grids if g.code == emptied.grid)
    assert line.workers == 0 and line.hours_per_worker_before is None
    assert line.target >= 2 and line.after == line.target
    arriving = [m for m in plan.moves if m.to_grid == emptied.grid]
    assert len(arriving) == line.target
    # The neighbour holds the most spare workers: it gives first, those with fewest open tasks first.
    assert {m.from_grid for m in arriving} == {emptied.neighbour}
    open_tasks: dict[int, int] = dict(
        conn.execute(
            text(
                "SELECT w.id, count(t.id) FROM worker w LEFT JOIN task t ON t.worker_id = w.id "
                "AND t.status = ANY(:open) WHERE w.id = ANY(:ids) GROUP BY w.id"
            ),
            {"open": list(OPEN_STATUSES), "ids": list(active_workers(conn, emptied.neighbour))},
        ).all()
    )
    assert all(move.open_tasks == open_tasks[move.worker_id] for move in arriving)
    assert sorted(m.open_tasks for m in arriving) == sorted(open_tasks.values())[: len(arriving)]
    # Every move is needed: the plan makes exactly as many as the targets require, no more.
    grids = [GridStaff(g.code, g.town_code, g.community_code, g.hours, (0,) * g.workers, 0, 0) for g in plan.grids]
    assert plan.totals.moves == len(plan.moves) == lower_bound(grids, {g.code: g.target for g in plan.grids})
    assert plan.totals.understaffed_before >= 1 and plan.totals.understaffed_after == 0
    # Asked to keep workers inside their community, the grid is filled all the same, and no move crosses a line.
    local = staffing_service.plan(conn, scope=Scope("town", emptied.town), within="community")
    assert all(m.from_grid[:12] == m.to_grid[:12] for m in local.moves)
    assert len([m for m in local.moves if m.to_grid == emptied.grid]) == line.target
    assert local.fingerprint != plan.fingerprint


def test_applying_a_plan_moves_the_workers_hands_over_their_tasks_and_records_the_batch(conn: Connection) -> None:
    emptied = empty_a_grid(conn)
    leader = Actor("镇街领导", "town_leader", Scope("town", emptied.town))
    plan = staffing_service.plan(conn, scope=leader.scope)
    movers = {m.worker_id: m for m in plan.moves}
    held = {
        int(r.id): int(r.worker_id)
        for r in conn.execute(
            text("SELECT id, worker_id FROM task WHERE worker_id = ANY(:w) AND status = ANY(:open)"),
            {"w": list(movers), "open": list(OPEN_STATUSES)},
        )
    }
    assert held, "the workers who move hold open tasks"
    result = staffing_service.apply(conn, actor=leader, fingerprint=plan.fingerprint)
    assert [m.worker_id for m in result.moves] == [m.worker_id for m in plan.moves]
    # Each worker now works in their new grid.
    for worker_id, move in movers.items():
        assert conn.execute(text("SELECT grid_code FROM worker WHERE id = :w"), {"w": worker_id}).scalar_one() == (
            move.to_grid
        )
    # Their open tasks stayed in the old grid and went to a colleague who stays there (or its queue), audited.
    for task_id, mover in held.items():
        task = conn.execute(text("SELECT grid_code, worker_id, holder FROM task WHERE id = :t"), {"t": task_id}).one()
        assert task.worker_id != mover
        if task.worker_id is not None:
            assert task.worker_id in active_workers(conn, task.grid_code)
        notes = conn.execute(
            text("SELECT note FROM task_event WHERE task_id = :t ORDER BY id DESC LIMIT 1"), {"t": task_id}
        ).scalar_one()
        assert f"staffing batch {result.batch_id}" in notes
    assert result.open_tasks_handed_over == len(held)
    # One batch, one row per worker moved.
    batch = conn.execute(
        text("SELECT kind, actor, area_code, summary FROM planning_batch WHERE id = :b"), {"b": result.batch_id}
    ).one()
    assert (batch.kind, batch.actor, batch.area_code) == ("staffing", "镇街领导", emptied.town)
    assert batch.summary["moves"] == len(movers) and batch.summary["fingerprint"] == plan.fingerprint
    recorded = conn.execute(
        text("SELECT object_kind, object_id, from_grid, to_grid FROM territory_move WHERE batch_id = :b"),
        {"b": result.batch_id},
    ).all()
    assert sorted(recorded) == sorted(("worker", str(m.worker_id), m.from_grid, m.to_grid) for m in plan.moves)
    # The grids' head-counts follow, and the plan is done: asked again, it moves nobody.
    counts: dict[str, int] = dict(
        conn.execute(
            text(
                "SELECT g.code, g.worker_count FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "AND v.status = 'active' WHERE g.code = ANY(:g)"
            ),
            {"g": [emptied.grid, emptied.neighbour]},
        ).all()
    )
    assert counts[emptied.grid] == len(active_workers(conn, emptied.grid)) >= 2
    assert counts[emptied.neighbour] == len(active_workers(conn, emptied.neighbour))
    again = staffing_service.plan(conn, scope=leader.scope)
    assert again.moves == [] and again.totals.understaffed_after == again.totals.understaffed_before == 0
    with pytest.raises(NothingToPlan):
        staffing_service.apply(conn, actor=leader, fingerprint=again.fingerprint)


def test_tasks_waiting_in_an_empty_grids_queue_go_to_the_workers_who_arrive(conn: Connection) -> None:
    emptied = empty_a_grid(conn)
    leader = Actor("镇街领导", "town_leader", Scope("town", emptied.town))
    # Work arrives in the grid while nobody is there: it waits in the grid's queue.
    waiting = push(conn, emptied.grid, 3)
    queued = conn.execute(text("SELECT holder, worker_id FROM task WHERE id = ANY(:t)"), {"t": waiting}).all()
    assert queued == [(f"grid:{emptied.grid}", None)] * 3
    plan = staffing_service.plan(conn, scope=leader.scope)
    result = staffing_service.apply(conn, actor=leader, fingerprint=plan.fingerprint)
    arrived = active_workers(conn, emptied.grid)
    holders = conn.execute(text("SELECT worker_id FROM task WHERE id = ANY(:t)"), {"t": waiting}).scalars().all()
    assert result.queued_tasks_assigned > 0
    assert {h for h in holders if h is not None} <= arrived
    assert sum(h is not None for h in holders) == result.queued_tasks_assigned


def test_a_plan_that_changed_since_it_was_seen_is_refused_and_nobody_moves(conn: Connection) -> None:
    emptied = empty_a_grid(conn)
    leader = Actor("镇街领导", "town_leader", Scope("town", emptied.town))
    seen = staffing_service.plan(conn, scope=leader.scope)
    # Meanwhile one of the workers the plan would move leaves.
    conn.execute(text("UPDATE worker SET active = false WHERE id = :w"), {"w": seen.moves[0].worker_id})
    before = {w: active_workers(conn, g) for w, g in ((0, emptied.grid), (1, emptied.neighbour))}
    with pytest.raises(StalePlan) as refused:
        staffing_service.apply(conn, actor=leader, fingerprint=seen.fingerprint)
    assert (
        isinstance(refused.value, StaleDraft) and refused.value.reason == "stale_plan" and "刷新" in str(refused.value)
    )
    assert {w: active_workers(conn, g) for w, g in ((0, emptied.grid), (1, emptied.neighbour))} == before
    assert conn.execute(text("SELECT count(*) FROM planning_batch WHERE kind = 'staffing'")).scalar_one() == 0


def test_a_town_leader_may_not_plan_or_apply_another_town(conn: Connection) -> None:
    towns = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 2")).scalars().all()
    leader = Actor("镇街领导", "town_leader", Scope("town", towns[0]))
    with pytest.raises(OutOfScope):
        staffing_service.plan(conn, scope=leader.scope, town_code=towns[1])
    with pytest.raises(OutOfScope):
        staffing_service.apply(conn, actor=leader, town_code=towns[1], fingerprint="0" * 64)
    with pytest.raises(PlanNotFound):
        staffing_service.plan(conn, scope=CITY, town_code="441900999000")


def test_a_malformed_fingerprint_or_a_city_wide_plan_of_a_town_is_refused_before_anything_is_computed(
    conn: Connection,
) -> None:
    """The refusals come first, before the plan is computed: nobody moves, nothing is recorded."""
    town = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1")).scalar_one()
    leader = Actor("镇街领导", "town_leader", Scope("town", town))
    for malformed in ("abc", "G" * 64, "0" * 65):
        with pytest.raises(InvalidInput, match="指纹"):
            staffing_service.apply(conn, actor=leader, fingerprint=malformed)
    with pytest.raises(OutOfScope, match="市指挥中心"):
        staffing_service.apply(conn, actor=leader, within="city", fingerprint="0" * 64)
    with pytest.raises(OutOfScope, match="市指挥中心"):
        staffing_service.plan(conn, scope=Scope("community", town[:9] + "001"), within="city")
    assert conn.execute(text("SELECT count(*) FROM planning_batch WHERE kind = 'staffing'")).scalar_one() == 0


def test_a_dispatchers_plan_covers_their_community_only(conn: Connection) -> None:
    emptied = empty_a_grid(conn)
    plan = staffing_service.plan(conn, scope=Scope("community", emptied.community))
    assert plan.community_code == emptied.community
    assert {g.community_code for g in plan.grids} == {emptied.community}
    assert all(
        m.to_grid.startswith(emptied.community) and m.from_grid.startswith(emptied.community) for m in plan.moves
    )
    assert any(m.to_grid == emptied.grid for m in plan.moves)


def test_a_town_short_of_workers_leaves_the_gap_where_work_per_worker_is_lowest(conn: Connection) -> None:
    town = conn.execute(text("SELECT town_code FROM grid GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()
    base = staffing_service.plan(conn, scope=Scope("town", town))
    # A capacity so small that every grid would want five workers: the town has fewer than that.
    tight = replace(load_standards(), field_hours_per_worker_month=1e-6)
    plan = staffing_service.plan(conn, scope=Scope("town", town), standards=tight)
    assert all(g.recommended == 5 for g in plan.grids)
    assert sum(g.target for g in plan.grids) == base.totals.workers
    assert all(2 <= g.target <= 5 for g in plan.grids)
    assert plan.totals.shortfall_after == 5 * len(plan.grids) - base.totals.workers
    # Each grid says how far its target is below its recommendation, and the gaps add up to the town's shortfall.
    assert all(g.short_by == g.recommended - g.target for g in plan.grids)
    assert sum(g.short_by for g in plan.grids) == plan.totals.shortfall_after
    assert all(g.short_by == 0 for g in base.grids if base.totals.workers >= base.totals.recommended)
    # Grids that keep fewer than five are those with the least work per worker.
    short = [g for g in plan.grids if g.target < 5]
    full = [g for g in plan.grids if g.target == 5]
    if short and full:
        assert max(g.hours / (g.target + 1) for g in short) <= min(g.hours / 5 for g in full) + 1e-9


# ------------------------------------------------------------------ committed stories (last: they change the module's city)


def test_two_leaders_applying_the_same_plan_at_once_move_each_worker_once(engine: Engine) -> None:
    with engine.begin() as conn:
        emptied = empty_a_grid(conn)
    leader = Actor("镇街领导", "town_leader", Scope("town", emptied.town))
    with engine.connect() as conn:
        seen = staffing_service.plan(conn, scope=leader.scope)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        with engine.connect() as conn:
            start.wait()
            try:
                with conn.begin():
                    staffing_service.apply(conn, actor=leader, fingerprint=seen.fingerprint)
                    time.sleep(0.3)  # hold the plan's lock a moment: the other leader really waits for it
                outcomes.append("applied")
            except StaleDraft:
                outcomes.append("refused as changed")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["applied", "refused as changed"]
    with engine.connect() as conn:
        batches = conn.execute(
            text("SELECT count(*) FROM planning_batch WHERE summary->>'fingerprint' = :f"), {"f": seen.fingerprint}
        ).scalar_one()
        assert batches == 1
        target = next(g.target for g in seen.grids if g.code == emptied.grid)
        assert len(active_workers(conn, emptied.grid)) == target


# ---------------------------------------------------------------------------------------- the command line (last:
# it commits to this module's database)


def test_the_command_line_prints_the_plan_and_applies_it_by_its_fingerprint(
    engine: Engine, db: DatabaseSettings
) -> None:
    with engine.begin() as conn:
        emptied = empty_a_grid(conn)
    env = {"GRIDGOV_DATABASE_URL": db.database_url}
    shown = CliRunner().invoke(app, ["staffing", "plan", "--town", emptied.town], env=env)
    assert shown.exit_code == 0, shown.output
    assert "调动清单" in shown.output and "方案指纹：" in shown.output
    fingerprint = shown.output.strip().splitlines()[-1].split("：")[1]
    refused = CliRunner().invoke(app, ["staffing", "apply", "--town", emptied.town, "--fingerprint", "0" * 64], env=env)
    assert refused.exit_code == 1 and "未应用" in refused.output and "刷新" in refused.output
    with engine.connect() as conn:
        assert active_workers(conn, emptied.grid) == set()
    applied = CliRunner().invoke(
        app, ["staffing", "apply", "--town", emptied.town, "--fingerprint", fingerprint], env=env
    )
    assert applied.exit_code == 0, applied.output
    assert "已应用配员方案" in applied.output
    with engine.connect() as conn:
        assert len(active_workers(conn, emptied.grid)) >= 2
        actor = conn.execute(text("SELECT actor FROM planning_batch ORDER BY id DESC LIMIT 1")).scalar_one()
    assert actor == "cli:staffing"
    done = CliRunner().invoke(app, ["staffing", "plan", "--town", emptied.town], env=env)
    assert done.exit_code == 0 and "无需调动" in done.output
    unknown = CliRunner().invoke(app, ["staffing", "plan", "--town", "441900999000"], env=env)
    assert unknown.exit_code == 2 and "未找到镇街" in unknown.output


def test_the_command_line_says_which_grids_stay_short_because_the_town_is_short(
    engine: Engine, db: DatabaseSettings
) -> None:
    """A town with fewer workers than its grids' minimum: the plan lists each grid left below its recommendation."""
    with engine.begin() as conn:
        town = conn.execute(text("SELECT town_code FROM grid GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")).scalar_one()
        # At most two workers stay in each grid of the town, and one grid keeps one: fewer than two per grid.
        conn.execute(
            text(
                """
                UPDATE worker w SET active = false FROM (
                  SELECT id, row_number() OVER (PARTITION BY grid_code ORDER BY id) AS n,
                         dense_rank() OVER (ORDER BY grid_code) AS g
                  FROM worker WHERE town_code = :t AND active) r
                WHERE w.id = r.id AND (r.n > 2 OR (r.g = 1 AND r.n > 1))
                """
            ),
            {"t": town},
        )
    env = {"GRIDGOV_DATABASE_URL": db.database_url}
    shown = CliRunner().invoke(app, ["staffing", "plan", "--town", town, "--all"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "缺 " in shown.output and "人（全镇人手不足）" in shown.output
    with engine.connect() as conn:
        plan = staffing_service.plan(conn, scope=Scope("town", town))
    short = [g for g in plan.grids if g.short_by > 0]
    assert short and sum(g.short_by for g in plan.grids) == plan.totals.shortfall_after
    assert shown.output.count("人（全镇人手不足）") == len(short)
