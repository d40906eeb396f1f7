"""A command centre redraws a community's grids as a draft, applies it in one audited step, and can roll it back.

The first stories draw with the redesign itself (on the untouched test city); the later ones apply drafts drawn by
hand (two grids merged, one split in two: a retired code and a new one), so that apply and rollback are checked on
a known change.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis.crs import to_metric
from planning import grid_version_repository as repo
from planning import grid_versions
from planning.errors import Infeasible, PlanNotFound, StaleDraft, VersionState
from supervision.audit import Actor
from supervision.events import parse_event
from supervision.outbox import accept_events, relay_batch
from supervision.uscc import uscc_check_char
from supervision.workers import move_worker
from tests.support.grid_areas import a_community_to_redesign

pytestmark = pytest.mark.db

_serials = itertools.count(1)


# ------------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class HandDrawn:
    """A draft drawn by hand: `merged` = (kept, retired) grids made one, `split` = (kept, new) halves of one grid."""

    version_id: int
    community_code: str
    merged: tuple[str, str]
    split: tuple[str, str]
    targets: dict[str, int]


def _halves(geom: BaseGeometry) -> tuple[Polygon, Polygon] | None:
    """The two halves of a grid cut across its longest axis through its centroid, when both are single polygons."""
    xy = shapely.get_coordinates(geom.minimum_rotated_rectangle)[:4]
    a, b = max(((xy[i], xy[(i + 1) % 4]) for i in range(4)), key=lambda s: float(np.hypot(*(s[1] - s[0]))))
    axis = (b - a) / float(np.hypot(*(b - a)))
    normal = np.array([-axis[1], axis[0]])
    c = np.array(geom.centroid.coords[0])
    far = 1e5
    half = Polygon([c + normal * far, c + normal * far + axis * far, c - normal * far + axis * far, c - normal * far])
    one, other = geom.intersection(half), geom.difference(half)
    if isinstance(one, Polygon) and isinstance(other, Polygon) and one.area > 1 and other.area > 1:
        return one, other
    return None


def hand_drawn_draft(conn: Connection, *, not_community: str | None = None, actor: str = "测试") -> HandDrawn:
    """Merge two adjacent grids of a staffed community and split a third one in two; store it as a draft."""
    found = a_community_to_redesign(conn)
    if not_community is not None and found.community_code == not_community:
        found = a_community_to_redesign(conn, not_town=found.town_code)
    area = repo.community_area(conn, found.community_code)
    assert area is not None
    base = repo.active_version(conn)
    assert base is not None
    grids = {g.code: to_metric(g.geom) for g in repo.grids_of(conn, base.id, area.community_codes)}
    workers = repo.active_workers_by_grid(conn, base.id, area.community_codes)
    codes = sorted(grids)
    pair = next(
        (a, b)
        for a, b in itertools.combinations(codes, 2)
        if grids[a].intersection(grids[b]).length > 1.0 and any(_halves(grids[c]) for c in codes if c not in (a, b))
    )
    kept, retired = pair
    cut = next(c for c in codes if c not in pair and _halves(grids[c]))
    halves = _halves(grids[cut])
    assert halves is not None
    merged = shapely.union_all([grids[kept], grids[retired]])
    merged = merged.buffer(0)
    assert isinstance(merged, Polygon)
    new_code = grid_versions.free_grid_codes(area.code, repo.used_grid_numbers(conn, [area.code])[area.code], 1)[0]
    plan: dict[str, BaseGeometry | None] = {c: None for c in codes if c not in (kept, retired, cut)}
    plan.update({kept: merged, cut: halves[0], new_code: halves[1]})
    targets = {c: workers.get(c, 0) for c in codes if c not in (kept, retired, cut)}
    joined = min(5, workers[kept] + workers[retired])
    left = workers[kept] + workers[retired] - joined + workers[cut]
    if left >= 4:
        targets.update({kept: joined, cut: (left + 1) // 2, new_code: left // 2})
    else:
        targets.update({kept: joined - (4 - left), cut: 2, new_code: 2})
    assert all(2 <= n <= 5 for n in targets.values()), targets
    version_id = grid_versions.save_draft(
        conn,
        area=area,
        base_version_id=base.id,
        grids=plan,
        workers=targets,
        figures={"locked": [], "codes_new": [new_code], "codes_retired": [retired], "codes_kept": [kept, cut]},
        actor_name=actor,
    )
    return HandDrawn(version_id, area.code, (kept, retired), (cut, new_code), targets)


def snapshot(conn: Connection, community: str) -> dict[str, Any]:
    """Where everything of a community is: addresses, entities, open tasks (grid and holder), workers, clues."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(text(sql), {"c": community}).all()]

    return {
        "addresses": rows("SELECT id, grid_code FROM address WHERE community_code = :c ORDER BY id"),
        "entities": rows("SELECT uscc, grid_code FROM entity WHERE left(grid_code, 12) = :c ORDER BY uscc"),
        "tasks": rows(
            "SELECT id, grid_code FROM task WHERE community_code = :c "
            "AND status NOT IN ('closed', 'cancelled') ORDER BY id"
        ),
        "workers": rows("SELECT id, grid_code, active FROM worker WHERE left(grid_code, 12) = :c ORDER BY id"),
        "clues": rows("SELECT id, grid_code FROM clue WHERE left(grid_code, 12) = :c ORDER BY id"),
    }


def active_id(conn: Connection) -> int:
    return int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())


def misplaced(conn: Connection, community: str) -> dict[str, int]:
    """Objects of the community whose recorded grid (in the active version) does not cover them, by kind."""
    active = active_id(conn)
    query = """
        SELECT count(*) FROM {table} x LEFT JOIN grid g ON g.version_id = :v AND g.code = x.grid_code
        WHERE {where} AND (g.code IS NULL OR NOT ST_Covers(g.geom, x.geom))
    """
    out = {}
    for kind, table, where in (
        ("address", "address", "x.community_code = :c"),
        ("entity", "entity", "left(x.grid_code, 12) = :c AND x.geom IS NOT NULL"),
        ("clue", "clue", "left(x.grid_code, 12) = :c"),
    ):
        out[kind] = int(
            conn.execute(text(query.format(table=table, where=where)), {"v": active, "c": community}).scalar_one()
        )
    out["task"] = int(
        conn.execute(
            text(
                "SELECT count(*) FROM task t JOIN entity e ON e.uscc = t.entity_uscc "
                "LEFT JOIN grid g ON g.version_id = :v AND g.code = t.grid_code "
                "WHERE t.community_code = :c AND t.status NOT IN ('closed', 'cancelled') "
                "AND (g.code IS NULL OR NOT ST_Covers(g.geom, e.geom) OR t.grid_code <> e.grid_code)"
            ),
            {"v": active, "c": community},
        ).scalar_one()
    )
    return out


@pytest.fixture(scope="module")
def geocoder(engine: Engine) -> Geocoder:
    with engine.connect() as conn:
        return Geocoder.load(conn)


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection


# ------------------------------------------------------------------------------------------ drawn by the redesign


def tiling_errors(conn: Connection, version_id: int, community: str) -> tuple[float, float, int]:
    """(m² of the community not covered exactly once, m² covered twice, most parts of one grid) in a version."""
    gap, overlap, parts = conn.execute(
        text(
            """
            SELECT ST_Area(ST_SymDifference(c.geom, (SELECT ST_Union(g.geom) FROM grid g
                     WHERE g.version_id = :v AND g.community_code = c.code))) * s.m2,
                   (SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom))), 0) FROM grid a
                    JOIN grid b ON b.version_id = a.version_id AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
                    WHERE a.version_id = :v AND a.community_code = c.code AND b.community_code = c.code) * s.m2,
                   (SELECT max(ST_NumGeometries(g.geom)) FROM grid g WHERE g.version_id = :v
                    AND g.community_code = c.code)
            FROM community c, LATERAL (SELECT 111320.0 ^ 2 * cos(radians(ST_Y(ST_Centroid(c.geom)))) AS m2) s
            WHERE c.code = :c
            """
        ),
        {"v": version_id, "c": community},
    ).one()
    return float(gap), float(overlap), int(parts)


def test_a_community_redrawn_with_a_locked_grid_keeps_it_exactly_and_balances_the_rest(engine: Engine) -> None:
    with engine.begin() as conn:
        found = a_community_to_redesign(conn)
        lock = found.lock
        draft = grid_versions.draw(conn, community=found.community_code, locked=[lock], actor_name="指挥中心测试")
    with engine.connect() as conn:
        assert draft.status == "draft" and not draft.stale and draft.area_code == found.community_code
        gap, overlap, parts = tiling_errors(conn, draft.id, found.community_code)
        assert gap < 0.01 and overlap < 0.01 and parts == 1
        same = conn.execute(
            text(
                "SELECT ST_AsBinary(a.geom) = ST_AsBinary(b.geom) FROM grid a JOIN grid b ON b.code = a.code "
                "WHERE a.version_id = :base AND b.version_id = :draft AND a.code = :code"
            ),
            {"base": draft.base_version_id, "draft": draft.id, "code": lock},
        ).scalar_one()
        assert same is True
        figures = draft.figures
        assert figures["locked"] == [lock] and figures["area"]["code"] == found.community_code
        assert figures["balanced"] and figures["max_deviation_after"] <= 0.10 + 1e-9
        assert 0.0 <= figures["share_addresses_kept"] <= 1.0
        # What the draft planned per grid is what its rows hold.
        planned = {g["code"]: g["workers"] for g in figures["grids_after"]}
        stored = dict(
            conn.execute(
                text("SELECT code, worker_count FROM grid WHERE version_id = :v AND community_code = :c"),
                {"v": draft.id, "c": found.community_code},
            ).all()
        )
        assert planned == stored
        compared = grid_versions.comparison(conn, draft.id)
        assert compared["area"] == found.community_code
        assert {f["properties"]["code"] for f in compared["draft"]["features"]} == set(stored)
        assert {f["properties"]["code"] for f in compared["current"]["features"]} == set(found.grid_codes)
        assert all(f["properties"]["from_code"] != f["properties"]["to_code"] for f in compared["moved"]["features"])
        assert [
            f["properties"]["locked"] for f in compared["draft"]["features"] if f["properties"]["code"] == lock
        ] == [True]
    # Applied, the plan holds in the live data; rolled back, everything is where it was.
    with engine.connect() as conn:
        before = snapshot(conn, found.community_code)
    with engine.begin() as conn:
        result = grid_versions.apply(conn, draft.id, actor_name="指挥中心测试")
    with engine.connect() as conn:
        assert misplaced(conn, found.community_code) == {"address": 0, "entity": 0, "clue": 0, "task": 0}
        staffed = dict(
            conn.execute(
                text("SELECT grid_code, count(*) FROM worker WHERE active AND left(grid_code, 12) = :c GROUP BY 1"),
                {"c": found.community_code},
            ).all()
        )
        assert staffed == {code: n for code, n in planned.items() if n}
        # The addresses that changed grid are the ones the figures promised would (the redesign counts active ones).
        moved_active = conn.execute(
            text(
                "SELECT count(*) FROM territory_move m JOIN address a ON a.id = m.object_id::bigint "
                "WHERE m.batch_id = :b AND m.object_kind = 'address' AND a.status = 'active'"
            ),
            {"b": result.batch_id},
        ).scalar_one()
        assert abs(moved_active - figures["addresses_moved"]) <= 2 + 0.01 * figures["addresses_moved"]
    with engine.begin() as conn:
        grid_versions.rollback(conn, actor_name="指挥中心测试")
    with engine.connect() as conn:
        after = snapshot(conn, found.community_code)
        assert after["addresses"] == before["addresses"] and after["entities"] == before["entities"]
        assert after["tasks"] == before["tasks"] and after["clues"] == before["clues"]
        assert after["workers"] == before["workers"]


def test_a_lock_outside_the_area_or_a_grid_count_for_a_town_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        found = a_community_to_redesign(conn)
        elsewhere = a_community_to_redesign(conn, not_town=found.town_code)
        with pytest.raises(Infeasible) as outside:
            grid_versions.draw(
                conn, community=found.community_code, locked=[elsewhere.grid_codes[0]], actor_name="测试"
            )
        assert outside.value.reason == "lock_outside_area" and elsewhere.grid_codes[0] in str(outside.value)
        with pytest.raises(Infeasible) as town_k:
            grid_versions.draw(conn, town=found.town_code, k=3, actor_name="测试")
        assert town_k.value.reason == "k_needs_community"
        with pytest.raises(Infeasible) as too_many:
            grid_versions.draw(conn, community=found.community_code, k=40, actor_name="测试")
        assert too_many.value.reason == "k_out_of_range"


# ------------------------------------------------------------------------------------------ drawn by hand


def test_a_draft_leaves_the_active_version_as_it_was_and_tiles_its_community(engine: Engine) -> None:
    with engine.begin() as conn:
        found = a_community_to_redesign(conn)
        before = snapshot(conn, found.community_code)
        active_before = conn.execute(
            text("SELECT md5(string_agg(g::text, '' ORDER BY code)) FROM grid g WHERE version_id = :v"),
            {"v": active_id(conn)},
        ).scalar_one()
        draft = hand_drawn_draft(conn)
    with engine.connect() as conn:
        assert snapshot(conn, draft.community_code) == before
        assert (
            conn.execute(
                text("SELECT md5(string_agg(g::text, '' ORDER BY code)) FROM grid g WHERE version_id = :v"),
                {"v": active_id(conn)},
            ).scalar_one()
            == active_before
        )
        summary = grid_versions.summary(conn, draft.version_id)
        assert summary.status == "draft" and not summary.stale and summary.area_code == draft.community_code
        assert summary.area_level == "community" and summary.base_version_id == active_id(conn)
        # The draft grids tile the community: their union is the community, no two overlap, each one polygon.
        # Measured where PostGIS places points: planar in the stored lon/lat (ST_Covers, ST_Union are planar), the
        # degrees² scaled to m² at the community's latitude. (Geodesic areas would count the bow of every long edge.)
        gap, overlap, parts = conn.execute(
            text(
                """
                SELECT ST_Area(ST_SymDifference(c.geom, (SELECT ST_Union(g.geom) FROM grid g
                         WHERE g.version_id = :v AND g.community_code = c.code))) * s.m2,
                       (SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom))), 0) FROM grid a
                        JOIN grid b ON b.version_id = a.version_id AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
                        WHERE a.version_id = :v AND a.community_code = c.code AND b.community_code = c.code) * s.m2,
                       (SELECT max(ST_NumGeometries(g.geom)) FROM grid g WHERE g.version_id = :v
                        AND g.community_code = c.code)
                FROM community c,
                     LATERAL (SELECT 111320.0 ^ 2 * cos(radians(ST_Y(ST_Centroid(c.geom)))) AS m2) s
                WHERE c.code = :c
                """
            ),
            {"v": draft.version_id, "c": draft.community_code},
        ).one()
        assert gap < 0.05, f"the draft leaves {gap:.3f} m² of the community uncovered or covered twice"
        assert overlap < 0.05
        assert parts == 1
        # Outside the area, the draft is the active version itself; the merged grid's partner is gone.
        differ = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT code, geom FROM grid WHERE version_id = :a AND community_code <> :c) a "
                "FULL JOIN (SELECT code, geom FROM grid WHERE version_id = :d AND community_code <> :c) b "
                "USING (code) WHERE a.geom IS NULL OR b.geom IS NULL OR ST_AsBinary(a.geom) <> ST_AsBinary(b.geom)"
            ),
            {"a": active_id(conn), "d": draft.version_id, "c": draft.community_code},
        ).scalar_one()
        assert differ == 0
        codes = {
            r[0]
            for r in conn.execute(
                text("SELECT code FROM grid WHERE version_id = :v AND community_code = :c"),
                {"v": draft.version_id, "c": draft.community_code},
            )
        }
        assert draft.merged[1] not in codes and draft.split[1] in codes
        # A new grid gets a name of its community's pattern and the head-count it was drawn with.
        name, workers = conn.execute(
            text("SELECT name, worker_count FROM grid WHERE version_id = :v AND code = :code"),
            {"v": draft.version_id, "code": draft.split[1]},
        ).one()
        assert name.endswith(f"第{int(draft.split[1][12:])}网格")
        assert workers == draft.targets[draft.split[1]]


def test_applying_a_draft_moves_everything_of_the_area_to_its_new_grid_audited(engine: Engine) -> None:
    with engine.begin() as conn:
        rival = hand_drawn_draft(conn)
        draft = hand_drawn_draft(conn)
        base = active_id(conn)
        before = snapshot(conn, draft.community_code)
    with engine.begin() as conn:
        result = grid_versions.apply(conn, draft.version_id, actor_name="指挥中心测试")
    assert result.version_id == draft.version_id and result.retired_version_id == base
    # A draft drawn on the version just replaced is stale now, and refused.
    with engine.connect() as conn:
        assert grid_versions.summary(conn, rival.version_id).stale_reasons == ["生效的网格版本已变更"]
    with pytest.raises(StaleDraft) as stale, engine.begin() as conn:
        grid_versions.apply(conn, rival.version_id, actor_name="指挥中心测试")
    assert stale.value.reason == "stale_draft" and "生效的网格版本已变更" in str(stale.value)
    with engine.connect() as conn:
        assert active_id(conn) == draft.version_id
        assert grid_versions.summary(conn, base).status == "retired"
        assert misplaced(conn, draft.community_code) == {"address": 0, "entity": 0, "clue": 0, "task": 0}
        # Nothing of the area is left in the retired grid; every worker row belongs to the new version.
        after = snapshot(conn, draft.community_code)
        retired = draft.merged[1]
        assert all(code != retired for _, code in after["addresses"])
        assert all(code != retired for _, code, _ in after["workers"])
        assert (
            conn.execute(
                text("SELECT count(*) FROM worker WHERE version_id <> :v"), {"v": draft.version_id}
            ).scalar_one()
            == 0
        )
        # Each grid of the area has the head-count it was drawn with.
        staffed = dict(
            conn.execute(
                text(
                    "SELECT grid_code, count(*) FROM worker WHERE active AND left(grid_code, 12) = :c GROUP BY grid_code"
                ),
                {"c": draft.community_code},
            ).all()
        )
        assert staffed == draft.targets
        # Every move is audited under one batch whose reason names the version; task events name it too.
        batch = conn.execute(
            text("SELECT kind, version_id, area_code, actor, reason, summary FROM planning_batch WHERE id = :b"),
            {"b": result.batch_id},
        ).one()
        assert batch.kind == "grid_apply" and batch.version_id == draft.version_id
        assert batch.area_code == draft.community_code and batch.actor == "指挥中心测试"
        assert str(draft.version_id) in batch.reason
        moves = dict(
            conn.execute(
                text("SELECT object_kind, count(*) FROM territory_move WHERE batch_id = :b GROUP BY object_kind"),
                {"b": result.batch_id},
            ).all()
        )
        moved_addresses = sum(1 for a, b in zip(before["addresses"], after["addresses"], strict=True) if a != b)
        assert moves["address"] == moved_addresses == result.moved["address"] > 0
        assert moves.get("worker", 0) == result.moved["worker"] > 0
        moved_tasks = [a[0] for a, b in zip(before["tasks"], after["tasks"], strict=True) if a[1] != b[1]]
        assert moves.get("task", 0) == len(moved_tasks)
        if moved_tasks:
            notes = conn.execute(
                text("SELECT DISTINCT task_id FROM task_event WHERE task_id = ANY(:ids) AND note LIKE :like"),
                {"ids": moved_tasks, "like": f"%网格版本 {draft.version_id} 生效%"},
            ).all()
            assert len(notes) == len(moved_tasks)
        # A task a worker holds is held by a worker of its grid (or waits in its grid's queue).
        wrong = conn.execute(
            text(
                "SELECT count(*) FROM task t WHERE t.community_code = :c AND t.holder LIKE 'worker:%' "
                "AND NOT EXISTS (SELECT 1 FROM worker w WHERE w.id = t.worker_id AND w.grid_code = t.grid_code "
                "AND w.active)"
            ),
            {"c": draft.community_code},
        ).scalar_one()
        assert wrong == 0


def test_rolling_back_puts_everything_back_where_it_was(engine: Engine) -> None:
    with engine.connect() as conn:
        applied = active_id(conn)
        base = grid_versions.summary(conn, applied).base_version_id
        area = grid_versions.summary(conn, applied).area_code
        assert base is not None and area is not None
        moved_before = conn.execute(
            text(
                "SELECT object_kind, object_id, from_grid FROM territory_move m JOIN planning_batch b ON b.id = m.batch_id "
                "WHERE b.version_id = :v AND b.kind = 'grid_apply' ORDER BY object_kind, object_id"
            ),
            {"v": applied},
        ).all()
    with engine.begin() as conn:
        result = grid_versions.rollback(conn, actor_name="指挥中心测试")
    assert result.version_id == base and result.retired_version_id == applied
    with engine.connect() as conn:
        assert active_id(conn) == base
        assert grid_versions.summary(conn, applied).status == "retired"
        assert misplaced(conn, area) == {"address": 0, "entity": 0, "clue": 0, "task": 0}
        # Everything the apply moved is back in the grid it came from.
        for kind, object_id, from_grid in moved_before:
            table, key = {
                "address": ("address", "id::text"),
                "entity": ("entity", "uscc"),
                "clue": ("clue", "id::text"),
                "task": ("task", "id::text"),
                "worker": ("worker", "id::text"),
            }[kind]
            now = conn.execute(
                text(f"SELECT grid_code FROM {table} WHERE {key} = :id"),  # noqa: S608 - names from the fixed table above
                {"id": object_id},
            ).scalar_one()
            assert now == from_grid, f"{kind} {object_id} is in {now}, not back in {from_grid}"
        batch = conn.execute(
            text("SELECT kind, reason FROM planning_batch WHERE id = :b"), {"b": result.batch_id}
        ).one()
        assert batch.kind == "grid_rollback" and str(applied) in batch.reason
        # There is nothing before the first version to return to.
        with pytest.raises(VersionState) as refused:
            grid_versions.rollback(conn, actor_name="指挥中心测试")
        assert refused.value.reason == "nothing_to_roll_back"


def test_a_draft_whose_area_changed_since_it_was_drawn_is_refused_and_nothing_is_applied(engine: Engine) -> None:
    with engine.begin() as conn:
        draft = hand_drawn_draft(conn)
        address = conn.execute(
            text("SELECT id FROM address WHERE community_code = :c AND status = 'active' ORDER BY id LIMIT 1"),
            {"c": draft.community_code},
        ).scalar_one()
        conn.execute(
            text(
                "UPDATE address SET geom = ST_Translate(geom, 0.00001, 0), updated_at = clock_timestamp() WHERE id = :id"
            ),
            {"id": address},
        )
    with engine.connect() as conn:
        summary = grid_versions.summary(conn, draft.version_id)
        assert summary.stale and summary.stale_reasons == ["区域内的标准地址已变化"]
        before = snapshot(conn, draft.community_code)
        active = active_id(conn)
        batches = conn.execute(text("SELECT count(*) FROM planning_batch")).scalar_one()
    with pytest.raises(StaleDraft) as refused, engine.begin() as conn:
        grid_versions.apply(conn, draft.version_id, actor_name="指挥中心测试")
    assert refused.value.reason == "stale_draft" and "标准地址" in str(refused.value)
    with engine.connect() as conn:
        assert active_id(conn) == active and snapshot(conn, draft.community_code) == before
        assert conn.execute(text("SELECT count(*) FROM planning_batch")).scalar_one() == batches
        assert grid_versions.summary(conn, draft.version_id).status == "draft"


def test_only_a_known_draft_can_be_applied(engine: Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(PlanNotFound):
            grid_versions.apply(conn, 999_999, actor_name="测试")
        with pytest.raises(PlanNotFound):
            grid_versions.summary(conn, 999_999)
        with pytest.raises(VersionState) as refused:
            grid_versions.apply(conn, active_id(conn), actor_name="测试")
        assert refused.value.reason == "not_a_draft" and "只有草案可以生效" in str(refused.value)
        with pytest.raises(PlanNotFound) as unknown:
            grid_versions.draw(conn, community="441900999999", actor_name="测试")
        assert unknown.value.reason == "unknown_area"
        with pytest.raises(Infeasible) as neither:
            grid_versions.draw(conn, actor_name="测试")
        assert neither.value.reason == "area_required"


def test_a_registration_that_arrives_during_an_apply_lands_in_the_new_grid(engine: Engine, geocoder: Geocoder) -> None:
    with engine.begin() as conn:
        draft = hand_drawn_draft(conn)
        kept, retired = draft.merged
        # A door of the grid the draft merges away: the geocoder (loaded before) still places it there.
        door = conn.execute(
            text(
                "SELECT id, full_text FROM address WHERE grid_code = :g AND level = 'door' AND status = 'active' "
                "ORDER BY id LIMIT 40"
            ),
            {"g": retired},
        ).all()
        placed = next(d for d in door if geocoder.geocode(d.full_text).address_id == d.id)
        assert geocoder.geocode(placed.full_text).grid_code == retired
        serial = next(_serials)
        first17 = f"91441900GW{serial:07d}"
        event = parse_event(
            {
                "event_id": f"gv-during-apply-{serial}",
                "kind": "new",
                "uscc": first17 + uscc_check_char(first17),
                "name": f"东莞市网格调整测试商行{serial}号",
                "address": placed.full_text,
                "business_scope": "日用百货销售",
                "occurred_at": datetime(2026, 12, 1, 2, 0, tzinfo=UTC).isoformat(),
            }
        )
        accept_events(conn, [event])

    applying = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def apply_and_hold() -> None:
        try:
            with engine.begin() as conn:
                grid_versions.apply(conn, draft.version_id, actor_name="指挥中心测试")
                applying.set()
                release.wait(30)
        except BaseException as exc:
            errors.append(exc)
            applying.set()

    def register() -> None:
        try:
            with engine.begin() as conn:
                relay_batch(conn, geocoder, event_ids=[event.event_id])
        except BaseException as exc:
            errors.append(exc)

    applier = threading.Thread(target=apply_and_hold)
    applier.start()
    assert applying.wait(60)
    relay = threading.Thread(target=register)
    relay.start()
    # The registration waits for the apply's lock (it must not place the entity in the old grid meanwhile).
    with engine.connect() as watcher:
        for _ in range(200):
            waiting = watcher.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
    assert waiting == 1 and relay.is_alive()
    release.set()
    applier.join(60)
    relay.join(60)
    assert not errors, errors
    with engine.connect() as conn:
        entity_grid = conn.execute(text("SELECT grid_code FROM entity WHERE uscc = :u"), {"u": event.uscc}).scalar_one()
        assert entity_grid == kept
        grids = {
            r[0] for r in conn.execute(text("SELECT grid_code FROM task WHERE entity_uscc = :u"), {"u": event.uscc})
        }
        assert grids == {kept}
        holders = conn.execute(
            text(
                "SELECT count(*) FROM task t WHERE t.entity_uscc = :u AND t.worker_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM worker w WHERE w.id = t.worker_id AND w.grid_code = :g)"
            ),
            {"u": event.uscc, "g": kept},
        ).scalar_one()
        assert holders == 0
    with engine.begin() as conn:
        grid_versions.rollback(conn, actor_name="测试")


# ------------------------------------------------------------------------------------------ found by the outside test


def surge(conn: Connection, grid_code: str, times: int) -> int:
    """`times - 1` more market entities at every open entity's place in a grid (its patrol work × times); how many."""
    return conn.execute(
        text(
            """
            INSERT INTO entity (uscc, name, kind, business_scope, industry, raw_address, address_id, town_code,
                                grid_code, status, registered_on, annual_report_filed_on, needs_licence, credit_class,
                                geom)
            SELECT 'S' || right(e.grid_code, 4) || lpad(n::text, 2, '0')
                   || lpad(row_number() OVER (PARTITION BY n ORDER BY e.uscc)::text, 11, '0'), e.name || '（分店' || n || '）', e.kind, e.business_scope, e.industry, e.raw_address,
                   e.address_id, e.town_code, e.grid_code, e.status, e.registered_on, e.annual_report_filed_on,
                   e.needs_licence, e.credit_class, e.geom
              FROM entity e CROSS JOIN generate_series(1, :more) n
             WHERE e.grid_code = :g AND e.status = 'open' AND e.geom IS NOT NULL
            """
        ),
        {"g": grid_code, "more": times - 1},
    ).rowcount


def smallest_town(conn: Connection) -> tuple[str, str]:
    """(town, its busiest grid) of the town with the fewest grids among those of at least three communities."""
    town = conn.execute(
        text(
            "SELECT g.town_code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "GROUP BY g.town_code HAVING count(DISTINCT g.community_code) >= 3 ORDER BY count(*), g.town_code LIMIT 1"
        )
    ).scalar_one()
    grid = conn.execute(
        text(
            "SELECT e.grid_code FROM entity e WHERE e.town_code = :t AND e.status = 'open' AND e.geom IS NOT NULL "
            "GROUP BY e.grid_code ORDER BY count(*) DESC, e.grid_code LIMIT 1"
        ),
        {"t": town},
    ).scalar_one()
    return str(town), str(grid)


SURGE = 20


def test_a_town_with_one_surging_community_is_never_refused_for_want_of_grid_codes(engine: Engine) -> None:
    with engine.begin() as conn:
        town, busy = smallest_town(conn)
        assert surge(conn, busy, SURGE) > 0
        # The town run may give the surging community many more grids than it has: codes must never run short.
        try:
            draft = grid_versions.draw(conn, town=town, actor_name="指挥中心测试")
        except Infeasible as refused:
            assert refused.reason != "new_codes_missing", str(refused)
            # What refuses it is the balance itself, and the refusal says what would do (a lower compactness floor).
            assert refused.reason == "no_balanced_plan" and "--pp-floor" in str(refused)
        else:
            assert draft.status == "draft" and draft.area_code == town
        conn.rollback()


def stale_worker_counts(conn: Connection) -> dict[str, tuple[int, int]]:
    """Grids of the active version whose stored worker count is not their active workers: code → (stored, real)."""
    rows = conn.execute(
        text(
            "SELECT g.code, g.worker_count, count(w.id) FROM grid g "
            "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "LEFT JOIN worker w ON w.version_id = g.version_id AND w.grid_code = g.code AND w.active "
            "GROUP BY g.code, g.worker_count HAVING g.worker_count <> count(w.id)"
        )
    ).all()
    return {str(code): (int(stored), int(real)) for code, stored, real in rows}


def test_after_a_rollback_every_grid_counts_the_workers_it_really_has(engine: Engine) -> None:
    with engine.begin() as conn:
        draft = hand_drawn_draft(conn)
        grid_versions.apply(conn, draft.version_id, actor_name="指挥中心测试")
    with engine.begin() as conn:
        # While the draft is active, staffing moves a worker between two grids of the town outside the redrawn area.
        town = conn.execute(
            text("SELECT town_code FROM community WHERE code = :c"), {"c": draft.community_code}
        ).scalar_one()
        worker, home, target = conn.execute(
            text(
                "SELECT w.id, w.grid_code, g.code FROM worker w "
                "JOIN grid_version v ON v.id = w.version_id AND v.status = 'active' "
                "JOIN grid g ON g.version_id = w.version_id AND g.town_code = :t AND g.community_code <> :c "
                "AND left(g.code, 12) <> left(w.grid_code, 12) "
                "JOIN grid h ON h.version_id = w.version_id AND h.code = w.grid_code AND h.town_code = :t "
                "WHERE w.active AND left(w.grid_code, 12) <> :c ORDER BY w.id, g.code LIMIT 1"
            ),
            {"t": town, "c": draft.community_code},
        ).one()
        move_worker(conn, worker, target, actor=Actor("调度测试", "staffing"))
    with engine.begin() as conn:
        grid_versions.rollback(conn, actor_name="指挥中心测试")
    with engine.connect() as conn:
        assert stale_worker_counts(conn) == {}
        assert conn.execute(text("SELECT grid_code FROM worker WHERE id = :w"), {"w": worker}).scalar_one() == target
        # A draft drawn now starts from the real counts too, outside its area as well as inside.
    with engine.begin() as conn:
        again = hand_drawn_draft(conn, not_community=draft.community_code)
        counts = dict(
            conn.execute(
                text("SELECT code, worker_count FROM grid WHERE version_id = :v AND code = ANY(:g)"),
                {"v": again.version_id, "g": [home, target]},
            ).all()
        )
        real = dict(
            conn.execute(
                text(
                    "SELECT grid_code, count(*) FROM worker w JOIN grid_version v ON v.id = w.version_id "
                    "AND v.status = 'active' WHERE w.active AND w.grid_code = ANY(:g) GROUP BY 1"
                ),
                {"g": [home, target]},
            ).all()
        )
        assert counts == {code: real.get(code, 0) for code in (home, target)}
        conn.rollback()


def test_a_community_that_cannot_balance_at_its_own_compactness_is_drawn_at_its_towns_and_says_so(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        # Communities of 3-6 grids whose worst grid is far more compact than their town's worst, most first.
        candidates = conn.execute(
            text(
                """
                WITH pp AS (
                    SELECT g.community_code, g.town_code,
                           4 * pi() * ST_Area(ST_Transform(g.geom, 4547)) / ST_Perimeter(ST_Transform(g.geom, 4547)) ^ 2
                             AS pp
                    FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'),
                c AS (SELECT community_code, town_code, min(pp) AS own, count(*) AS n FROM pp
                      GROUP BY community_code, town_code),
                t AS (SELECT town_code, min(pp) AS worst FROM pp GROUP BY town_code)
                SELECT c.community_code, c.own, t.worst FROM c JOIN t USING (town_code)
                WHERE c.n BETWEEN 3 AND 6 AND t.worst < c.own - 0.1 ORDER BY c.own - t.worst DESC, 1 LIMIT 12
                """
            )
        ).all()
        relaxed = None
        for community, own, worst in candidates:
            with conn.begin_nested() as attempt:
                try:
                    draft = grid_versions.draw(conn, community=community, k=None, actor_name="指挥中心测试")
                except Infeasible:
                    attempt.rollback()
                    continue
                notes = [n for n in draft.figures.get("notes", []) if n.startswith("紧凑度下限由")]
                if notes:
                    relaxed = (community, own, worst, notes[0], draft)
                    break
                # Balanced at its own floor: the draft never goes below its own worst grid.
                assert draft.figures["worst_pp_after"] >= own - 0.01
                attempt.rollback()
        assert relaxed is not None, "no community of the test city needed its town's floor"
        community, own, worst, note, draft = relaxed
        assert note == f"紧凑度下限由 {own:.2f} 放宽至 {worst:.2f} 以达到均衡"
        assert draft.status == "draft" and draft.figures["balanced"]
        assert draft.figures["worst_pp_after"] >= worst - 0.01
        conn.rollback()


def test_an_area_holds_five_drafts_at_most_and_a_discarded_one_makes_room(engine: Engine) -> None:
    with engine.begin() as conn:
        first = hand_drawn_draft(conn)
        base = active_id(conn)
        more = [
            repo.insert_draft(
                conn,
                name=f"草案{n}",
                note="",
                base_version_id=base,
                area_code=first.community_code,
                created_by="测试",
                created_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
                figures={},
                fingerprint="",
            )
            for n in range(4)
        ]
    drafts = [first.version_id, *more]
    with pytest.raises(VersionState) as refused, engine.begin() as conn:
        grid_versions.draw(conn, community=first.community_code, actor_name="指挥中心测试")
    assert refused.value.reason == "too_many_drafts"
    assert "最多 5 份" in str(refused.value) and all(str(d) in str(refused.value) for d in drafts)
    with engine.begin() as conn:
        grids_before = conn.execute(
            text("SELECT count(*) FROM grid WHERE version_id = :v"), {"v": first.version_id}
        ).scalar_one()
        assert grids_before > 0
        discarded = grid_versions.discard(conn, first.version_id, actor_name="指挥中心测试")
    assert discarded.status == "retired" and "已删除" in discarded.name
    assert discarded.figures["discarded_by"] == "指挥中心测试"
    with engine.connect() as conn:
        for table in ("grid", "grid_workload"):
            left = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE version_id = :v"),  # noqa: S608 - a fixed table name
                {"v": first.version_id},
            ).scalar_one()
            assert left == 0, table
        assert first.version_id not in [v.id for v in grid_versions.versions(conn, status="draft")]
    # With one discarded there is room again; an active or already discarded version is never deleted.
    with engine.begin() as conn:
        draft = grid_versions.draw(conn, community=first.community_code, actor_name="指挥中心测试")
        assert draft.status == "draft"
        for version_id in (active_id(conn), first.version_id):
            with pytest.raises(VersionState) as not_a_draft:
                grid_versions.discard(conn, version_id, actor_name="测试")
            assert not_a_draft.value.reason == "not_a_draft" and "只有草案可以删除" in str(not_a_draft.value)
        with pytest.raises(PlanNotFound):
            grid_versions.discard(conn, 999_999, actor_name="测试")
        for version_id in [*more, draft.id]:
            grid_versions.discard(conn, version_id, actor_name="测试")


def test_a_drawn_town_tiles_every_community_exactly(engine: Engine) -> None:
    with engine.begin() as conn:
        town, _ = smallest_town(conn)
        # What is checked is the tiling: a loose balance and floor so that every community is redrawn.
        draft = grid_versions.draw(conn, town=town, pp_floor=0.1, tolerance=0.5, actor_name="指挥中心测试")
        communities = [
            str(c)
            for c in conn.execute(
                text("SELECT DISTINCT community_code FROM grid WHERE version_id = :v AND town_code = :t"),
                {"v": draft.id, "t": town},
            ).scalars()
        ]
        for community in communities:
            gap, overlap, parts = tiling_errors(conn, draft.id, community)
            assert gap < 0.01 and overlap < 0.01, (community, gap, overlap)
            assert parts == 1, community
        conn.rollback()


def test_new_grid_codes_skip_every_used_number_and_stop_at_the_last_three_digit_one() -> None:
    codes = grid_versions.free_grid_codes("441900003001", {1, 2, 4}, 3)
    assert codes == ["441900003001005", "441900003001006", "441900003001007"]
    near_the_end = grid_versions.free_grid_codes("441900003001", {997}, 10)
    assert near_the_end == ["441900003001998", "441900003001999"]
