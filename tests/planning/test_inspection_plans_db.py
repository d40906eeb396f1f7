"""Double-random plans on the test city: the candidates are fixed and committed before the public value exists, the
draw is the documented algorithm (an independent recomputation agrees), visits are joint and teams obey the rules,
and every bad input is refused with nothing half-drawn."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import (
    clock,
    migrate,  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
)
from gis.settings import DatabaseSettings
from planning import inspection_plans as plans
from planning.directory_service import target_counts
from planning.errors import InvalidPlan, NothingToPlan, PlanNotFound, PlanState
from planning.inspection_plans import PlanRequest
from supervision.errors import OutOfScope
from supervision.scope import CITY, Scope
from tests.support.inspection_world import JOINT_ITEMS, MS_ITEMS, InspectionWorld, make_inspection_world
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

CENTRE = "centre-test"


@pytest.fixture(scope="module")
def world(engine: Engine) -> InspectionWorld:
    with engine.begin() as conn:
        return make_inspection_world(conn)


@pytest.fixture(autouse=True)
def _earlier_visits_made(engine: Engine) -> None:
    """Each story starts with the inspectors' visits of earlier stories made: a load cap counts across plans."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE inspection_visit SET status = 'done' WHERE status = 'planned'"))


def _request(world: InspectionWorld, **overrides: Any) -> PlanRequest:
    values: dict[str, Any] = {
        "departments": ("market_supervision",),
        "items": MS_ITEMS,
        "towns": (world.town_code,),
        "public_value_source": "中国福利彩票3D 第2026335期开奖号码",
        "public_value_at": clock.now(),
    }
    values.update(overrides)
    return PlanRequest(**values)


def _create(engine: Engine, request: PlanRequest, scope: Scope = CITY) -> int:
    with engine.begin() as conn:
        return plans.create_plan(conn, request, actor=CENTRE, scope=scope, secret_key=SECRET_KEY).id


def _draw(engine: Engine, plan_id: int, value: str = "835", scope: Scope = CITY) -> plans.Plan:
    with engine.begin() as conn:
        return plans.draw(conn, plan_id, value, actor=CENTRE, scope=scope, secret_key=SECRET_KEY)


def _count(conn: Connection, table: str, plan_id: int) -> int:
    sql = {
        "inspection_visit": "SELECT count(*) FROM inspection_visit WHERE plan_id = :p",
        "inspection_team": "SELECT count(*) FROM inspection_team WHERE plan_id = :p",
        "selected": "SELECT count(*) FROM inspection_candidate WHERE plan_id = :p AND selected",
    }[table]
    return int(conn.execute(text(sql), {"p": plan_id}).scalar_one())


def _nothing_drawn(engine: Engine, plan_id: int) -> None:
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status, seed FROM inspection_plan WHERE id = :p"), {"p": plan_id}).one()
        assert status.status == "committed" and status.seed is None
        for table in ("inspection_visit", "inspection_team", "selected"):
            assert _count(conn, table, plan_id) == 0, table


def recompute_from_public(public: dict[str, Any], csv_bytes: bytes) -> dict[str, list[str]]:
    """The auditor's recomputation written from docs/INSPECTIONS.md alone (no import of planning.draw)."""
    assert hashlib.sha256(csv_bytes).hexdigest() == public["candidates_sha256"]
    server_seed = bytes.fromhex(public["server_seed"])
    assert hashlib.sha256(server_seed).hexdigest() == public["commitment"]
    seed = hashlib.sha256(server_seed + public["public_value"].encode("utf-8")).digest()
    assert seed.hex() == public["seed"]
    lines = csv_bytes.decode("utf-8").split("\n")
    assert lines[0] == "stratum_id,uscc" and lines[-1] == ""
    members: dict[str, list[str]] = {}
    for line in lines[1:-1]:
        stratum_id, uscc = line.split(",")
        members.setdefault(stratum_id, []).append(uscc)
    out = {}
    for stratum in public["strata"]:
        usccs = members[stratum["id"]]
        assert len(usccs) == stratum["size"]
        ratio = Decimal(str(stratum["ratio"]))
        n = math.ceil(ratio * len(usccs))
        assert n == stratum["n"]
        key = {u: hmac.new(seed, f"{stratum['id']}|{u}".encode(), hashlib.sha256).hexdigest() for u in usccs}
        out[stratum["id"]] = sorted(sorted(usccs, key=lambda u: key[u])[:n])
    return out


def test_a_plan_fixes_its_candidates_and_publishes_the_commitment_before_the_draw(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _create(engine, _request(world, public_value_at=clock.now() + timedelta(days=1)))
    with engine.connect() as conn:
        view = plans.plan_view(conn, plan_id, CITY)
        public = plans.public_view(conn, plan_id)
        csv_bytes = plans.public_candidates_csv(conn, plan_id)
        counts = target_counts(conn, list(MS_ITEMS), towns=[world.town_code])
        seed_row = conn.execute(text("SELECT server_seed FROM inspection_plan WHERE id = :p"), {"p": plan_id}).one()
    assert view["status"] == "committed"
    assert len(bytes(seed_row.server_seed)) == 32
    # Stored sealed with the app secret: opened, it is the seed behind the commitment.
    unsealed = plans.seal_seed(bytes(seed_row.server_seed), view["commitment"], SECRET_KEY)
    assert view["commitment"] == hashlib.sha256(unsealed).hexdigest()
    assert hashlib.sha256(csv_bytes).hexdigest() == view["candidates_sha256"] == public["candidates_sha256"]
    # Before the draw nothing about the seed is known outside, and nothing is selected.
    assert public["server_seed"] is None and public["seed"] is None and public["public_value"] is None
    assert all(s["selected"] == [] for s in public["strata"])
    # Each stratum is one item × one class of the target directory; its public id names the item, never the class.
    assert {(s["item_code"], s["credit_class"]): s["size"] for s in view["strata"]} == counts
    for stratum in public["strata"]:
        item, _, token = stratum["id"].partition("/")
        assert item in MS_ITEMS and len(token) == 8 and int(token, 16) >= 0
        assert set(stratum) == {"id", "size", "ratio", "n", "selected"}
    assert [s["id"] for s in public["strata"]] == sorted(s["id"] for s in public["strata"])
    assert sum(s["size"] for s in public["strata"]) == view["candidate_count"] == csv_bytes.count(b"\n") - 1
    # n = ⌈ratio × size⌉ with the default ratios (B 5%, …)
    for stratum in view["strata"]:
        assert stratum["n"] == math.ceil(Decimal(str(stratum["ratio"])) * stratum["size"])
    assert "credit_class" not in repr(public) and "server_seed" in public


def test_a_draw_before_the_announced_public_value_is_refused_and_after_it_selects(
    engine: Engine, world: InspectionWorld
) -> None:
    announced = clock.now() + timedelta(hours=6)
    plan_id = _create(engine, _request(world, public_value_at=announced))
    with pytest.raises(PlanState) as refused:
        _draw(engine, plan_id)
    assert refused.value.reason == "public_value_not_due"
    _nothing_drawn(engine, plan_id)
    with clock.using(clock.FixedClock(announced + timedelta(minutes=5))):
        drawn = _draw(engine, plan_id, "2026335:835")
    assert drawn.status == "drawn" and drawn.visits > 0


def test_an_independent_recomputation_from_the_public_page_gets_the_same_credit_codes(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _create(engine, _request(world))
    drawn = _draw(engine, plan_id, "福彩3D 2026335 期：8 3 5")
    with engine.connect() as conn:
        public = plans.public_view(conn, plan_id)
        csv_bytes = plans.public_candidates_csv(conn, plan_id)
        view = plans.plan_view(conn, plan_id, CITY)
    assert public["status"] == "drawn" and public["seed"] == drawn.seed
    expected = recompute_from_public(public, csv_bytes)
    assert {s["id"]: s["selected"] for s in public["strata"]} == expected
    assert sum(len(v) for v in expected.values()) == sum(s["n"] for s in public["strata"])
    # One visit per drawn entity, carrying every item it was drawn for.
    drawn_items: dict[str, set[str]] = {}
    for stratum in view["strata"]:
        for uscc in stratum["selected"]:
            drawn_items.setdefault(uscc, set()).add(stratum["item_code"])
    assert {v["uscc"]: set(v["items"]) for v in view["visits"]} == drawn_items


def test_a_second_draw_is_refused_and_changes_nothing(engine: Engine, world: InspectionWorld) -> None:
    plan_id = _create(engine, _request(world))
    _draw(engine, plan_id, "111")
    with engine.connect() as conn:
        before = plans.plan_view(conn, plan_id, CITY)
    with pytest.raises(PlanState) as refused:
        _draw(engine, plan_id, "222")
    assert refused.value.reason == "already_drawn"
    with engine.connect() as conn:
        assert plans.plan_view(conn, plan_id, CITY) == before


def test_a_joint_plan_makes_one_visit_per_entity_with_a_team_of_both_departments(
    engine: Engine, world: InspectionWorld
) -> None:
    request = _request(
        world,
        departments=("market_supervision", "health"),
        items=JOINT_ITEMS,
        item_ratios={item: {c: Decimal("0.6") for c in "ABCD"} for item in JOINT_ITEMS},
    )
    plan_id = _create(engine, request)
    _draw(engine, plan_id, "joint-835")
    with engine.connect() as conn:
        view = plans.plan_view(conn, plan_id, CITY)
        home = {r.id: r.home_grid_code for r in conn.execute(text("SELECT id, home_grid_code FROM inspector"))}
    joint = [v for v in view["visits"] if v["departments"] == ["health", "market_supervision"]]
    assert joint, "catering entities drawn for both items make joint visits"
    assert len({v["uscc"] for v in view["visits"]}) == len(view["visits"])
    teams = {t["id"]: t for t in view["teams"]}
    load: Counter[int] = Counter()
    for visit in view["visits"]:
        if visit["team_id"] is None:
            assert visit["unmatched_reason"] and visit["unmatched_reason_zh"]
            continue
        team = teams[visit["team_id"]]
        members = visit["inspectors"]
        assert len(members) >= 2
        assert set(visit["departments"]) <= {m["department"] for m in members}
        assert all(home[m["id"]] != visit["grid_code"] for m in members)
        load.update(m["id"] for m in members)
        assert set(visit["departments"]) <= set(team["departments"])
    assert joint[0]["team_id"] is not None
    assert max(load.values()) <= view["load_cap"]
    # Business hours: catering 10:00–21:00; the service time is the sum of the items' (40 + 30 for a joint visit).
    assert all(v["window"] == [600, 1260] for v in view["visits"])
    assert all(v["service_minutes"] == 70 for v in joint)


def test_bad_ratios_areas_and_values_are_refused_with_a_reason(engine: Engine, world: InspectionWorld) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ratios": {"A": Decimal("1.5")}}, "ratio_out_of_range"),
        ({"ratios": {"B": Decimal("0")}}, "ratio_out_of_range"),
        ({"ratios": {"B": Decimal("-0.1")}}, "ratio_out_of_range"),
        ({"towns": None, "polygon": _bowtie()}, "invalid_polygon"),
        ({"towns": None, "polygon": _square(0.0, 0.0, 0.01)}, "outside_city"),
        ({"towns": (world.town_code,), "grids": (world.grid_code,)}, "invalid_area"),
        ({"towns": ("441900999000",)}, "unknown_town"),
        ({"items": ("health-90",)}, "item_of_other_department"),
        ({"departments": ("no_such_department",)}, "unknown_department"),
        ({"public_value_at": clock.now() - timedelta(hours=1)}, "public_value_in_past"),
        ({"public_value_source": "  "}, "invalid_request"),
    ]
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM inspection_plan")).scalar_one()
    for overrides, reason in cases:
        with pytest.raises(InvalidPlan) as refused, engine.begin() as conn:
            plans.create_plan(conn, _request(world, **overrides), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert refused.value.reason == reason, (overrides, refused.value.reason)
        assert str(refused.value), "a Chinese detail"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inspection_plan")).scalar_one() == before


def test_an_area_with_no_candidates_is_refused(engine: Engine, world: InspectionWorld) -> None:
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM town WHERE code = :t) x"),
            {"t": world.town_code},
        ).one()
    # A square a few metres wide in the town holds no entity.
    with pytest.raises(NothingToPlan) as refused, engine.begin() as conn:
        polygon = _square(lon + 0.00001, lat + 0.00001, 0.00002)
        plans.create_plan(
            conn, _request(world, towns=None, polygon=polygon), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY
        )
    assert refused.value.reason == "no_candidates"


def test_a_polygon_drawn_on_the_map_selects_the_same_as_its_grids(engine: Engine, world: InspectionWorld) -> None:
    with engine.connect() as conn:
        shape = conn.execute(
            text(
                "SELECT ST_AsGeoJSON(ST_Buffer(ST_GeometryN(geom, 1), 0.00001)) FROM grid"
                " WHERE code = :g AND version_id = (SELECT id FROM grid_version WHERE status = 'active')"
            ),
            {"g": world.grid_code},
        ).scalar_one()
    polygon = json.loads(shape)
    by_grid = _create(engine, _request(world, towns=None, grids=(world.grid_code,)))
    by_polygon = _create(engine, _request(world, towns=None, polygon=polygon))
    with engine.connect() as conn:
        grid_sizes = {
            s["item_code"] + s["credit_class"]: s["size"] for s in plans.plan_view(conn, by_grid, CITY)["strata"]
        }
        poly_view = plans.plan_view(conn, by_polygon, CITY)
    poly_sizes = {s["item_code"] + s["credit_class"]: s["size"] for s in poly_view["strata"]}
    assert sum(poly_sizes.values()) >= sum(grid_sizes.values()) > 0
    assert poly_view["area"]["polygon"]["type"] == "Polygon"
    assert world.town_code in poly_view["town_codes"]


def test_a_bad_public_value_or_tampered_candidates_leave_nothing_half_drawn(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _create(engine, _request(world))
    for value in ("", "835\n", "8\x0035", "8" * 201):
        with pytest.raises(InvalidPlan) as refused:
            _draw(engine, plan_id, value)
        assert refused.value.reason == "invalid_public_value"
    _nothing_drawn(engine, plan_id)
    with engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM inspection_candidate WHERE ctid IN"
                " (SELECT ctid FROM inspection_candidate WHERE plan_id = :p LIMIT 1)"
            ),
            {"p": plan_id},
        )
    with pytest.raises(PlanState) as refused_state:
        _draw(engine, plan_id)
    assert refused_state.value.reason == "candidates_changed"
    _nothing_drawn(engine, plan_id)


def test_unknown_and_cancelled_plans_cannot_be_drawn(engine: Engine, world: InspectionWorld) -> None:
    with pytest.raises(PlanNotFound):
        _draw(engine, 987_654_321)
    plan_id = _create(engine, _request(world))
    with engine.begin() as conn:
        cancelled = plans.cancel(conn, plan_id, "抽查范围有误，重新建立", actor=CENTRE, scope=CITY)
    assert cancelled.status == "cancelled"
    with pytest.raises(PlanState) as refused:
        _draw(engine, plan_id)
    assert refused.value.reason == "cancelled"
    with engine.connect() as conn:
        public = plans.public_view(conn, plan_id)
        listed = {p["id"]: p["status"] for p in plans.public_list(conn)}
    assert public["status"] == "cancelled" and "抽查范围有误" in public["cancel_reason"]
    assert listed[plan_id] == "cancelled"
    drawn_id = _create(engine, _request(world))
    _draw(engine, drawn_id)
    with pytest.raises(PlanState) as refused, engine.begin() as conn:
        plans.cancel(conn, drawn_id, "太晚了", actor=CENTRE, scope=CITY)
    assert refused.value.reason == "already_drawn"


def test_officers_plan_their_own_department_alone_and_leaders_see_their_towns_plans(
    engine: Engine, world: InspectionWorld
) -> None:
    officer = Scope("department", "market_supervision")
    plan_id = _create(engine, _request(world), scope=officer)
    with pytest.raises(OutOfScope), engine.begin() as conn:
        plans.create_plan(
            conn,
            _request(world, departments=("health",), items=("health-90",)),
            actor="o",
            scope=officer,
            secret_key=SECRET_KEY,
        )
    joint = _request(world, departments=("market_supervision", "health"), items=JOINT_ITEMS)
    with pytest.raises(OutOfScope), engine.begin() as conn:
        plans.create_plan(conn, joint, actor="o", scope=officer, secret_key=SECRET_KEY)
    joint_id = _create(engine, joint)
    with pytest.raises(OutOfScope):
        _draw(engine, joint_id, scope=officer)
    with pytest.raises(OutOfScope):
        _draw(engine, plan_id, scope=Scope("department", "health"))
    _draw(engine, plan_id, scope=officer)
    with engine.connect() as conn:
        assert plans.plan_view(conn, joint_id, Scope("department", "health"))["id"] == joint_id
        assert plans.plan_view(conn, plan_id, Scope("town", world.town_code))["status"] == "drawn"
        with pytest.raises(OutOfScope):
            plans.plan_view(conn, plan_id, Scope("town", world.other_town))
        with pytest.raises(OutOfScope):
            plans.plan_view(conn, plan_id, Scope("department", "tobacco"))
        assert plan_id not in {p["id"] for p in plans.list_plans(conn, Scope("department", "tobacco"))}
        assert plan_id in {p["id"] for p in plans.list_plans(conn, Scope("town", world.town_code))}
        assert plan_id not in {p["id"] for p in plans.list_plans(conn, Scope("town", world.other_town))}


def test_the_preview_counts_what_the_plan_then_fixes(engine: Engine, world: InspectionWorld) -> None:
    request = _request(world, ratios={"A": Decimal("0.04"), "D": Decimal("0.3")})
    with engine.connect() as conn:
        preview = plans.preview(conn, request, scope=CITY)
    plan_id = _create(engine, request)
    with engine.connect() as conn:
        view = plans.plan_view(conn, plan_id, CITY)
    assert {(s.item_code, s.credit_class, s.size, s.n) for s in preview.strata} == {
        (s["item_code"], s["credit_class"], s["size"], s["n"]) for s in view["strata"]
    }
    assert preview.candidate_count == view["candidate_count"]
    assert all(s.ratio == Decimal("0.04") for s in preview.strata if s.credit_class == "A")


def _square(lon: float, lat: float, size: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _bowtie() -> dict[str, Any]:
    ring = [[113.7, 23.0], [113.8, 23.1], [113.8, 23.0], [113.7, 23.1], [113.7, 23.0]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_the_draw_happens_at_the_clock_instant_it_names(engine: Engine, world: InspectionWorld) -> None:
    at = datetime(2026, 12, 3, 20, 30, tzinfo=clock.now().tzinfo)
    plan_id = _create(engine, _request(world, public_value_at=at))
    with clock.using(clock.FixedClock(at)):
        drawn = _draw(engine, plan_id)
    with engine.connect() as conn:
        view = plans.plan_view(conn, plan_id, CITY)
    assert view["drawn_at"] == at and drawn.seed == view["seed"]
    # Visits start the next working day after the announcement.
    assert view["visit_date"] > at.date()


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this module's database, as a user would from a shell."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


def test_the_command_line_plans_on_the_departments_items_and_draws(
    db: DatabaseSettings, world: InspectionWorld
) -> None:
    planned = gridgov(
        db,
        "inspections",
        "plan",
        "--department",
        "market_supervision",
        "--town",
        world.town_code,
        "--ratio",
        "A=0.03",
        "--ratio",
        "B=0.05",
    )
    assert planned.exit_code == 0, planned.output
    lines = planned.output.strip().splitlines()
    plan_id = int(lines[-1])
    assert "承诺" in planned.output and "候选名单 SHA-256" in planned.output
    assert "未事先公布" in planned.output, "the command line's on-the-spot value is flagged"
    assert f"gridgov inspections draw {plan_id}" in lines[-2]
    drawn = gridgov(db, "inspections", "draw", str(plan_id), "--public-value", "835")
    assert drawn.exit_code == 0, drawn.output
    assert "种子" in drawn.output and "检查组" in drawn.output
    shown = gridgov(db, "inspections", "show", str(plan_id))
    assert shown.exit_code == 0 and "已摇号" in shown.output and "835" in shown.output
    listed = gridgov(db, "inspections", "list")
    assert listed.exit_code == 0 and any(line.startswith(f"{plan_id}  已摇号") for line in listed.output.splitlines())
    again = gridgov(db, "inspections", "draw", str(plan_id), "--public-value", "836")
    assert again.exit_code == 1 and "已经摇号" in again.output
    late = gridgov(db, "inspections", "cancel", str(plan_id), "--reason", "太晚")
    assert late.exit_code == 1
    assert gridgov(db, "inspections", "draw", "987654321", "--public-value", "1").exit_code == 2
    bad = gridgov(
        db, "inspections", "plan", "--department", "market_supervision", "--town", world.town_code, "--ratio", "A"
    )
    assert bad.exit_code == 2 and "--ratio" in bad.output
    outside = gridgov(
        db, "inspections", "plan", "--department", "market_supervision", "--town", world.town_code, "--ratio", "A=1.5"
    )
    assert outside.exit_code == 1 and "比例" in outside.output


def test_a_plan_far_beyond_its_inspectors_is_refused_before_its_commitment(
    engine: Engine, world: InspectionWorld
) -> None:
    """The department down to four inspectors, one visit each (two teams of two: two visits): a town's plan would
    leave most of its visits without a team, so it is refused up front (nothing committed) and the planner is told
    which load cap would do; with that cap the same plan is committed."""
    with engine.connect() as conn, conn.begin() as trans:
        conn.execute(
            text(
                "UPDATE inspector SET active = (code IN ('T16MS001', 'T16MS002', 'T16MS003', 'T16MS005'))"
                " WHERE department_code = 'market_supervision'"
            )
        )
        plans_before = conn.execute(text("SELECT count(*) FROM inspection_plan")).scalar_one()
        with pytest.raises(InvalidPlan) as refused:
            plans.create_plan(conn, _request(world, load_cap=1), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert refused.value.reason == "over_capacity"
        assert "4 名执法人员" in str(refused.value) and "最多检查 2 户" in str(refused.value)
        assert conn.execute(text("SELECT count(*) FROM inspection_plan")).scalar_one() == plans_before
        suggested = int(str(refused.value).split("检查户数上限提高到 ")[1].split(" 户")[0])
        plan = plans.create_plan(
            conn, _request(world, load_cap=suggested), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY
        )
        assert plan.status == "committed"
        trans.rollback()


def test_a_draw_beyond_its_inspectors_says_how_many_visits_wait_and_why(engine: Engine, world: InspectionWorld) -> None:
    """Four inspectors (two teams) for about twice what they can make: the plan stands (not far beyond), the draw
    staffs what the caps allow and the answer counts the rest by reason, as the API and the CLI show it."""
    with engine.connect() as conn, conn.begin() as trans:
        conn.execute(
            text(
                "UPDATE inspector SET active = (code IN ('T16MS001', 'T16MS002', 'T16MS003', 'T16MS005'))"
                " WHERE department_code = 'market_supervision'"
            )
        )
        # The earlier stories' visits are made: the four start with no visits owed to other plans.
        conn.execute(text("UPDATE inspection_visit SET status = 'done'"))
        least = max(
            sum(s.n for s in plans.preview(conn, _request(world), scope=CITY).strata if s.item_code == item)
            for item in MS_ITEMS
        )
        cap = math.ceil(least / 4)
        plan = plans.create_plan(conn, _request(world, load_cap=cap), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        drawn = plans.draw(conn, plan.id, "835", actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert drawn.teams == 2
        assert drawn.unmatched == drawn.visits - 2 * cap > 0
        view = plans.plan_view(conn, plan.id, CITY)
        assert view["unmatched"] == [
            {
                "reason": "load_cap_reached",
                "reason_zh": "可派的执法人员已达本次抽查的检查户数上限",
                "count": drawn.unmatched,
            }
        ]
        assert sum(1 for v in view["visits"] if v["unmatched_reason"] == "load_cap_reached") == drawn.unmatched
        trans.rollback()


def _stored_seed(conn: Connection, plan_id: int) -> bytes:
    return bytes(
        conn.execute(text("SELECT server_seed FROM inspection_plan WHERE id = :p"), {"p": plan_id}).scalar_one()
    )


def test_the_server_seed_is_sealed_at_rest_until_the_draw_reveals_it(engine: Engine, world: InspectionWorld) -> None:
    plan_id = _create(engine, _request(world))
    with engine.connect() as conn:
        commitment = plans.public_view(conn, plan_id)["commitment"]
        stored = _stored_seed(conn, plan_id)
    # Someone reading the database before the draw does not hold the seed behind the commitment.
    assert hashlib.sha256(stored).hexdigest() != commitment
    drawn = _draw(engine, plan_id)
    with engine.connect() as conn:
        public = plans.public_view(conn, plan_id)
        stored_after = _stored_seed(conn, plan_id)
    assert hashlib.sha256(bytes.fromhex(public["server_seed"])).hexdigest() == commitment
    assert stored_after.hex() == public["server_seed"]
    assert hashlib.sha256(stored_after + b"835").hexdigest() == drawn.seed


def test_a_draw_after_the_app_secret_changed_is_refused_and_draws_nothing(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _create(engine, _request(world))
    with pytest.raises(PlanState) as refused, engine.begin() as conn:
        plans.draw(conn, plan_id, "835", actor=CENTRE, scope=CITY, secret_key="another-secret-" + "x" * 32)
    assert refused.value.reason == "seed_unavailable"
    assert "密钥" in str(refused.value)
    with engine.connect() as conn:
        assert plans.public_view(conn, plan_id)["status"] == "committed"
        assert _count(conn, "inspection_visit", plan_id) == 0
    assert _draw(engine, plan_id).status == "drawn"


def test_a_public_value_given_on_the_spot_is_flagged_and_one_announced_in_advance_is_not(
    engine: Engine, world: InspectionWorld
) -> None:
    on_the_spot = _create(engine, _request(world, public_value_at=None))
    announced = _create(engine, _request(world, public_value_at=clock.now() + timedelta(days=1)))
    with engine.connect() as conn:
        assert plans.public_view(conn, on_the_spot)["public_value_announced"] is False
        assert plans.plan_view(conn, on_the_spot, CITY)["public_value_announced"] is False
        assert plans.public_view(conn, announced)["public_value_announced"] is True
    # The command line's way still works: plan, then draw at once with the value given there.
    assert _draw(engine, on_the_spot).status == "drawn"


def test_dates_far_ahead_or_in_the_past_are_refused_not_a_server_error(engine: Engine, world: InspectionWorld) -> None:
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    cases = [
        ({"public_value_at": far}, "public_value_too_far"),
        ({"public_value_at": clock.now() + timedelta(days=400)}, "public_value_too_far"),
        ({"visit_date": date(9999, 12, 31)}, "invalid_visit_date"),
        ({"visit_date": clock.now().date() + timedelta(days=400)}, "invalid_visit_date"),
        ({"visit_date": clock.now().date() - timedelta(days=1)}, "invalid_visit_date"),
    ]
    for overrides, reason in cases:
        with pytest.raises(InvalidPlan) as refused, engine.begin() as conn:
            plans.create_plan(conn, _request(world, **overrides), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert refused.value.reason == reason, overrides
    # Within the year both still stand.
    _create(engine, _request(world, public_value_at=clock.now() + timedelta(days=300)))


def test_a_cancelled_plan_withdraws_its_list_and_keeps_the_canceller_private(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _create(engine, _request(world))
    with engine.begin() as conn:
        plans.cancel(conn, plan_id, "抽查范围有误", actor="user:demo", scope=CITY)
    with engine.connect() as conn:
        public = plans.public_view(conn, plan_id)
        view = plans.plan_view(conn, plan_id, CITY)
        with pytest.raises(plans.PlanWithdrawn) as gone:
            plans.public_candidates_csv(conn, plan_id)
    assert gone.value.reason == "cancelled"
    assert public["cancel_reason"] == "抽查范围有误" and "demo" not in json.dumps(public, default=str)
    assert public["commitment"] == view["commitment"]
    assert view["cancelled_by"] == "user:demo"


def _two_town_plan(engine: Engine, world: InspectionWorld) -> int:
    plan_id = _create(engine, _request(world, towns=(world.town_code, world.other_town)))
    _draw(engine, plan_id)
    return plan_id


def test_a_town_leader_sees_only_their_towns_part_of_a_plan_across_towns(
    engine: Engine, world: InspectionWorld
) -> None:
    plan_id = _two_town_plan(engine, world)
    with engine.connect() as conn:
        whole = plans.plan_view(conn, plan_id, CITY)
        mine = plans.plan_view(conn, plan_id, Scope("town", world.other_town))
    assert {v["town_code"] for v in whole["visits"]} == {world.town_code, world.other_town}
    assert mine["visits"] and {v["town_code"] for v in mine["visits"]} == {world.other_town}
    own = {v["uscc"] for v in mine["visits"]}
    assert {u for s in mine["strata"] for u in s["selected"]} == own
    assert all(s["credit_class"] is None for s in mine["strata"])
    assert {t["id"] for t in mine["teams"]} == {v["team_id"] for v in mine["visits"] if v["team_id"]}
    # A plan wholly in the leader's town shows its classes to them.
    single = _create(engine, _request(world))
    with engine.connect() as conn:
        alone = plans.plan_view(conn, single, Scope("town", world.town_code))
    assert all(s["credit_class"] in {"A", "B", "C", "D"} for s in alone["strata"])


def test_an_inspector_full_from_one_plan_is_not_booked_again_by_the_next(
    engine: Engine, world: InspectionWorld
) -> None:
    """Four inspectors whose caps the first plan fills: the second plan in the same town, drawn right after, cannot
    give them more visits than their cap across both plans."""
    with engine.connect() as conn, conn.begin() as trans:
        conn.execute(
            text(
                "UPDATE inspector SET active = (code IN ('T16MS001', 'T16MS002', 'T16MS003', 'T16MS005'))"
                " WHERE department_code = 'market_supervision'"
            )
        )
        # The earlier stories' visits are made: the four start with no visits owed to other plans.
        conn.execute(text("UPDATE inspection_visit SET status = 'done'"))
        least = max(
            sum(s.n for s in plans.preview(conn, _request(world), scope=CITY).strata if s.item_code == item)
            for item in MS_ITEMS
        )
        cap = math.ceil(least / 4)
        first = plans.create_plan(conn, _request(world, load_cap=cap), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        second = plans.create_plan(conn, _request(world, load_cap=cap), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert plans.draw(conn, first.id, "835", actor=CENTRE, scope=CITY, secret_key=SECRET_KEY).teams == 2
        again = plans.draw(conn, second.id, "836", actor=CENTRE, scope=CITY, secret_key=SECRET_KEY)
        assert again.teams == 0 and again.unmatched == again.visits > 0
        per_inspector = conn.execute(
            text(
                """
                SELECT m.id, count(*) FROM inspection_visit v JOIN inspection_team t ON t.id = v.team_id,
                     unnest(t.inspector_ids) AS m(id)
                WHERE v.plan_id IN (:a, :b) GROUP BY m.id
                """
            ),
            {"a": first.id, "b": second.id},
        ).all()
        assert per_inspector and all(visits <= cap for _, visits in per_inspector)
        trans.rollback()


def test_a_polygon_across_the_city_edge_is_clipped_and_one_wholly_outside_is_refused(
    engine: Engine, world: InspectionWorld
) -> None:
    with engine.connect() as conn:
        min_lon, min_lat, max_lon, max_lat = conn.execute(
            text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM town) x")
        ).one()
    # A box over the whole city and well beyond it: clipped to the city, so it holds every town's candidates.
    big = _square(min_lon - 0.2, min_lat - 0.2, max(max_lon - min_lon, max_lat - min_lat) + 0.4)
    plan_id = _create(engine, _request(world, towns=None, polygon=big, items=MS_ITEMS[:1]))
    with engine.connect() as conn:
        view = plans.plan_view(conn, plan_id, CITY)
    assert view["area"]["clipped_to_city"] is True and view["area"]["outside_m2"] > 0
    assert view["area"]["drawn_polygon"] == big
    assert world.town_code in view["town_codes"] and world.other_town in view["town_codes"]
    outside = _square(max_lon + 1.0, max_lat + 1.0, 0.05)
    with pytest.raises(InvalidPlan) as refused, engine.begin() as conn:
        plans.create_plan(
            conn, _request(world, towns=None, polygon=outside), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY
        )
    assert refused.value.reason == "outside_city"


def test_a_self_intersecting_polygon_is_named_so(engine: Engine, world: InspectionWorld) -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[113.7, 23.0], [113.8, 23.1], [113.8, 23.0], [113.7, 23.1], [113.7, 23.0]]],
    }
    with pytest.raises(InvalidPlan) as refused, engine.begin() as conn:
        plans.create_plan(
            conn, _request(world, towns=None, polygon=bow_tie), actor=CENTRE, scope=CITY, secret_key=SECRET_KEY
        )
    assert refused.value.reason == "invalid_polygon"
    assert "多边形自相交" in str(refused.value)
