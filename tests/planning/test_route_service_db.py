"""A drawn plan's team days: each team leaves its office after 08:30, meets every business-hours window on the roads,
is back by 17:30, spreads over working days as needed; a dispatcher moves a stop by hand and the days are
re-optimised around it, or refused with the reason and left as they were."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from gis import clock
from planning import inspection_plans as plans
from planning.errors import InvalidPlan, PlanState, RouteInfeasible
from planning.inspection_plans import PlanRequest
from planning.route_service import move_stop, plan_routes, solve_plan_routes
from planning.routing.travel import RoadNetwork
from supervision.calendar import default_calendar
from supervision.errors import OutOfScope
from supervision.scope import Scope
from tests.support.inspection_world import JOINT_ITEMS, make_inspection_world
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

CITY = Scope("city")
ALONE = ["market_supervision"]
DAY = (8 * 3600 + 1800, 17 * 3600 + 1800)


def insert_drawn_plan(
    conn: Connection, town: str, *, departments: list[str], visit_date: date, status: str = "drawn", load_cap: int = 40
) -> int:
    """A plan as the draw leaves it (the draw's own service is another part's): status, towns, visit date, load cap."""
    return int(
        conn.execute(
            text(
                """
                INSERT INTO inspection_plan (title, department_codes, item_codes, area, town_codes, status,
                    server_seed, commitment, candidates_sha256, candidate_count, public_value_source,
                    public_value_at, load_cap, visit_date, created_by, created_at)
                VALUES ('路线测试计划', :departments, '{}', CAST(:area AS jsonb), ARRAY[:town], :status,
                    '\\x00', repeat('0', 64), repeat('0', 64), 0, '测试', '2026-12-01T10:00:00+08:00', :load_cap,
                    :visit_date, 'test', '2026-12-01T10:00:00+08:00')
                RETURNING id
                """
            ),
            {
                "departments": departments,
                "area": f'{{"towns": ["{town}"]}}',
                "town": town,
                "status": status,
                "visit_date": visit_date,
                "load_cap": load_cap,
            },
        ).scalar_one()
    )


def insert_team(
    conn: Connection,
    plan_id: int,
    team_no: int,
    departments: list[str],
    office: tuple[float, float],
    home_grid: str,
    *,
    qualifications: tuple[str, ...] = ("ITEM-1",),
) -> int:
    """A team of two inspectors (one living in `home_grid`), working from `office`, qualified for `qualifications`."""
    ids = []
    for k, department in enumerate([departments[0], departments[-1]]):
        ids.append(
            conn.execute(
                text(
                    "INSERT INTO inspector (code, department_code, name, qualifications, home_grid_code, office_name,"
                    " office_geom) VALUES (:code, :d, :name, :q, :grid, '执法所',"
                    " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
                ),
                {
                    "code": f"T{plan_id}-{team_no}-{k}",
                    "d": department,
                    "name": f"检查员{team_no}{k}",
                    "q": list(qualifications),
                    "grid": home_grid if k == 0 else None,
                    "lon": office[0],
                    "lat": office[1],
                },
            ).scalar_one()
        )
    return int(
        conn.execute(
            text(
                "INSERT INTO inspection_team (plan_id, team_no, department_codes, inspector_ids, office_name, office_geom)"
                " VALUES (:p, :n, :d, :ids, '执法所', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
            ),
            {"p": plan_id, "n": team_no, "d": departments, "ids": ids, "lon": office[0], "lat": office[1]},
        ).scalar_one()
    )


def insert_visits(
    conn: Connection,
    plan_id: int,
    entities: list[dict[str, Any]],
    team_id: int | None,
    departments: list[str],
    *,
    window: tuple[int, int] = (9 * 60, 17 * 60 + 30),
    service_minutes: int = 45,
    unmatched_reason: str | None = None,
    item: str = "ITEM-1",
) -> list[int]:
    """One visit per entity, as the draw forms them, checking `item` (an item of the first department)."""
    conn.execute(
        text(
            "INSERT INTO inspection_item (code, department_code, name, basis, source)"
            " VALUES (:code, :d, '测试事项', '测试依据', '测试') ON CONFLICT (code) DO NOTHING"
        ),
        {"code": item, "d": departments[0]},
    )
    return [
        conn.execute(
            text(
                """
                    INSERT INTO inspection_visit (plan_id, uscc, town_code, grid_code, item_codes, department_codes,
                        team_id, unmatched_reason, geom, window_start, window_end, service_minutes)
                    SELECT :p, uscc, town_code, grid_code, ARRAY[:item], :d, :t, :why, geom, :ws, :we, :sm
                    FROM entity WHERE uscc = :u
                    RETURNING id
                    """
            ),
            {
                "p": plan_id,
                "u": e["uscc"],
                "d": departments,
                "t": team_id,
                "why": unmatched_reason,
                "ws": window[0],
                "we": window[1],
                "sm": service_minutes,
                "item": item,
            },
        ).scalar_one()
        for e in entities
    ]


@pytest.fixture(scope="module")
def world(engine: Engine) -> dict[str, Any]:
    """A drawn joint plan in the town with the most roads: team 1 (market supervision) with 22 long visits, team 2
    (market supervision + tobacco) with 6, one visit whose shop closes before any team can arrive, one unmatched."""
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        entities = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT uscc, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity"
                    " WHERE town_code = :t AND geom IS NOT NULL AND status = 'open' ORDER BY uscc LIMIT 32"
                ),
                {"t": town},
            )
        ]
        office = (entities[0]["lon"] + 0.002, entities[0]["lat"] + 0.002)
        far_grid = "999999999999999"
        plan_id = insert_drawn_plan(
            conn, town, departments=["market_supervision", "tobacco"], visit_date=date(2026, 12, 5)
        )
        team1 = insert_team(conn, plan_id, 1, ["market_supervision"], office, far_grid)
        team2 = insert_team(conn, plan_id, 2, ["market_supervision", "tobacco"], office, entities[1]["grid_code"])
        ms = ["market_supervision"]
        long_visits = insert_visits(conn, plan_id, entities[2:24], team1, ms, service_minutes=90)
        joint = insert_visits(conn, plan_id, entities[24:30], team2, ["market_supervision", "tobacco"])
        closed = insert_visits(conn, plan_id, entities[30:31], team1, ms, window=(0, 5))
        unmatched = insert_visits(conn, plan_id, entities[31:32], None, ms, unmatched_reason="没有合格的检查人员")
        next_door = insert_visits(conn, plan_id, entities[1:2], team1, ms)  # in team 2's member's home grid
        committed = insert_drawn_plan(
            conn, town, departments=["market_supervision"], visit_date=date(2026, 12, 5), status="committed"
        )
    return {
        "town": town,
        "plan": plan_id,
        "committed": committed,
        "team1": team1,
        "team2": team2,
        "long": long_visits,
        "joint": joint,
        "closed": closed[0],
        "unmatched": unmatched[0],
        "next_door": next_door[0],
        "office": office,
    }


def stored_routes(conn: Connection, plan_id: int) -> list[tuple[Any, ...]]:
    """The plan's route rows as stored (to show nothing changed)."""
    return [
        tuple(r)
        for r in conn.execute(
            text(
                "SELECT team_id, day, visit_ids, steps, manual FROM inspection_route WHERE plan_id = :p ORDER BY team_id, day"
            ),
            {"p": plan_id},
        )
    ]


def routed(conn: Connection, plan_id: int) -> Any:
    """The plan's days, solved first when this test runs alone."""
    answer = plan_routes(conn, plan_id, scope=CITY)
    if not any(t.days for t in answer.teams):
        answer = solve_plan_routes(conn, plan_id, scope=CITY, actor="centre", max_seconds=1.0)
    return answer


def check_days(conn: Connection, answer: Any, town: str) -> None:
    """Every stored day: from the office after 08:30 and back by 17:30, each service begun inside its window, the
    arrivals adding up on the roads' travel times."""
    network = RoadNetwork.load(conn, [town])
    for team in answer.teams:
        office = (team.office["lon"], team.office["lat"])
        for day in team.days:
            steps = conn.execute(
                text("SELECT steps FROM inspection_route WHERE team_id = :t AND day = :d"),
                {"t": team.team_id, "d": day.day},
            ).scalar_one()
            points = [office, *((s.lon, s.lat) for s in day.stops), office]
            seconds, _ = network.durations(points)
            assert steps[0]["arrival_s"] >= DAY[0]
            assert steps[-1]["arrival_s"] <= DAY[1]
            clock = steps[0]["arrival_s"]
            for k, (step, stop) in enumerate(zip(steps[1:], [*day.stops, None], strict=True)):
                clock += int(seconds[k, k + 1])
                assert step["arrival_s"] == clock
                if stop is not None:
                    begin = clock + step["waiting_s"]
                    assert stop.window[0] * 60 <= begin <= stop.window[1] * 60
                    clock = begin + step["service_s"]
            coords = day.geometry["coordinates"]
            assert coords[0] == pytest.approx(list(office), abs=1e-6)
            assert coords[-1] == pytest.approx(list(office), abs=1e-6)


def test_a_drawn_plan_gets_team_days_that_keep_every_window_on_the_roads(engine: Engine, world: dict[str, Any]) -> None:
    with engine.begin() as conn:
        answer = solve_plan_routes(conn, world["plan"], scope=CITY, actor="centre")
        check_days(conn, answer, world["town"])
    by_team = {t.team_id: t for t in answer.teams}
    # 22 visits of 90 minutes do not fit one day: team 1 works over several working days from the visit date.
    days = by_team[world["team1"]].days
    assert len(days) >= 3
    calendar = default_calendar()
    dates = [date.fromisoformat(d.date) for d in days]
    assert all(calendar.is_working_day(d) for d in dates)
    assert dates == sorted(set(dates)) and dates[0] >= date(2026, 12, 5)
    routed = {s.visit_id for t in answer.teams for d in t.days for s in d.stops}
    assert set(world["long"]) | set(world["joint"]) | {world["next_door"]} == routed
    left = {u.visit_id: u for u in answer.unassigned}
    assert left[world["closed"]].reason == "window_closed"
    assert left[world["unmatched"]].reason == "unmatched"
    assert left[world["unmatched"]].detail == "没有合格的检查人员"
    assert set(left) == {world["closed"], world["unmatched"]}
    stop = days[0].stops[0]
    assert stop.arrival <= stop.start < stop.departure and len(stop.arrival) == 5
    assert stop.window_text == "09:00–17:30"


def test_solving_again_replaces_the_days_instead_of_adding_to_them(engine: Engine, world: dict[str, Any]) -> None:
    with engine.begin() as conn:
        before = len(stored_routes(conn, world["plan"]))
        solve_plan_routes(conn, world["plan"], scope=CITY, actor="centre", max_seconds=1.0)
        assert len(stored_routes(conn, world["plan"])) == before
        assert plan_routes(conn, world["plan"], scope=CITY).figures["days"] == before


def test_a_dispatcher_moves_a_stop_to_another_day_and_both_days_are_reoptimised(
    engine: Engine, world: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        answer = routed(conn, world["plan"])
        team = next(t for t in answer.teams if t.team_id == world["team1"])
        source = max(team.days, key=lambda d: len(d.stops))
        target = min(team.days, key=lambda d: len(d.stops))
        moved = source.stops[1].visit_id
        after = move_stop(
            conn,
            world["plan"],
            visit_id=moved,
            team_id=world["team1"],
            day=target.day,
            position=0,
            scope=CITY,
            actor="centre",
        )
        check_days(conn, after, world["town"])
    days = {d.day: d for d in next(t for t in after.teams if t.team_id == world["team1"]).days}
    assert days[target.day].stops[0].visit_id == moved
    assert days[target.day].manual is True
    assert moved not in [s.visit_id for s in days[source.day].stops]
    assert len(days[source.day].stops) == len(source.stops) - 1
    assert days[source.day].travel_s <= source.travel_s + 1  # the day it left is re-optimised, never made worse


def test_a_stop_moves_to_another_team_only_if_that_team_covers_it_and_need_not_recuse(
    engine: Engine, world: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        routed(conn, world["plan"])
        before = stored_routes(conn, world["plan"])
        # Team 1 has no tobacco inspector: a joint visit cannot go to it.
        with pytest.raises(InvalidPlan) as refused:
            move_stop(
                conn,
                world["plan"],
                visit_id=world["joint"][0],
                team_id=world["team1"],
                day=1,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert refused.value.reason == "team_not_eligible"
        # A member of team 2 lives in the grid of this visit: team 2 must recuse.
        with pytest.raises(InvalidPlan) as recused:
            move_stop(
                conn,
                world["plan"],
                visit_id=world["next_door"],
                team_id=world["team2"],
                day=1,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert recused.value.reason == "team_conflict"
        # The plan's load cap holds: with the cap at team 2's present load, it takes no more.
        load = conn.execute(
            text("SELECT count(*) FROM inspection_visit WHERE team_id = :t"), {"t": world["team2"]}
        ).scalar_one()
        conn.execute(text("UPDATE inspection_plan SET load_cap = :c WHERE id = :p"), {"c": load, "p": world["plan"]})
        with pytest.raises(InvalidPlan) as capped:
            move_stop(
                conn,
                world["plan"],
                visit_id=world["long"][0],
                team_id=world["team2"],
                day=1,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert capped.value.reason == "team_over_cap"
        conn.execute(text("UPDATE inspection_plan SET load_cap = 40 WHERE id = :p"), {"p": world["plan"]})
        # Team 2's inspectors inspected this entity two months ago (an earlier plan): they must not go again.
        visited = world["long"][1]
        earlier = insert_drawn_plan(conn, world["town"], departments=ALONE, visit_date=date(2026, 10, 1))
        old_team = conn.execute(
            text(
                "INSERT INTO inspection_team (plan_id, team_no, department_codes, inspector_ids, office_name,"
                " office_geom) SELECT :p, 1, department_codes, inspector_ids, office_name, office_geom"
                " FROM inspection_team WHERE id = :t RETURNING id"
            ),
            {"p": earlier, "t": world["team2"]},
        ).scalar_one()
        conn.execute(
            text(
                """
                WITH v AS (
                    INSERT INTO inspection_visit (plan_id, uscc, item_codes, department_codes, team_id, window_start,
                                                  window_end, service_minutes)
                    SELECT :p, uscc, item_codes, department_codes, :t, window_start, window_end, service_minutes
                    FROM inspection_visit WHERE id = :visited RETURNING id
                )
                INSERT INTO inspection_result (visit_id, item_code, outcome, recorded_by, recorded_at, publish_due)
                SELECT id, 'ITEM-1', 'ok', 'test', '2026-10-01T10:00:00+08:00', '2026-10-30' FROM v
                """
            ),
            {"p": earlier, "t": old_team, "visited": visited},
        )
        with pytest.raises(InvalidPlan) as again:
            move_stop(
                conn,
                world["plan"],
                visit_id=visited,
                team_id=world["team2"],
                day=1,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert again.value.reason == "team_conflict" and "12 个月" in str(again.value)
        assert stored_routes(conn, world["plan"]) == before
        # A market-supervision visit can go to the joint team, which then makes it.
        visit = world["long"][0]
        after = move_stop(
            conn, world["plan"], visit_id=visit, team_id=world["team2"], day=1, position=1, scope=CITY, actor="centre"
        )
        assert (
            conn.execute(text("SELECT team_id FROM inspection_visit WHERE id = :v"), {"v": visit}).scalar_one()
            == world["team2"]
        )
        check_days(conn, after, world["town"])
    team2 = next(t for t in after.teams if t.team_id == world["team2"])
    assert team2.days[0].stops[1].visit_id == visit


def test_a_move_the_day_cannot_take_is_refused_with_the_reason_and_changes_nothing(
    engine: Engine, world: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        routed(conn, world["plan"])
        before = stored_routes(conn, world["plan"])
        with pytest.raises(RouteInfeasible) as refused:
            move_stop(
                conn,
                world["plan"],
                visit_id=world["closed"],
                team_id=world["team1"],
                day=1,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert refused.value.unassigned[0]["id"] == world["closed"]
        assert refused.value.unassigned[0]["reason"] == "window_closed"
        # Days are filled before a new one opens: team 1's fullest day holds five 90-minute visits, and a sixth
        # cannot fit between 09:00 and 17:30.
        team1 = next(t for t in routed(conn, world["plan"]).teams if t.team_id == world["team1"])
        fullest = max(team1.days, key=lambda d: len(d.stops))
        assert len(fullest.stops) >= 5
        elsewhere = next(d for d in team1.days if d.day != fullest.day).stops[0].visit_id
        with pytest.raises(RouteInfeasible) as full:
            move_stop(
                conn,
                world["plan"],
                visit_id=elsewhere,
                team_id=world["team1"],
                day=fullest.day,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert full.value.unassigned[0]["reason"] == "day_full"
        with pytest.raises(InvalidPlan):
            move_stop(
                conn,
                world["plan"],
                visit_id=world["long"][1],
                team_id=world["team1"],
                day=99,
                position=0,
                scope=CITY,
                actor="centre",
            )
        assert stored_routes(conn, world["plan"]) == before


def test_routes_are_read_and_planned_only_within_the_callers_reach(engine: Engine, world: dict[str, Any]) -> None:
    with engine.begin() as conn:
        other_town = conn.execute(
            text("SELECT code FROM town WHERE code <> :t ORDER BY code LIMIT 1"), {"t": world["town"]}
        ).scalar_one()
        assert plan_routes(conn, world["plan"], scope=Scope("town", world["town"])).teams
        assert plan_routes(conn, world["plan"], scope=Scope("department", "tobacco")).teams
        with pytest.raises(OutOfScope):
            plan_routes(conn, world["plan"], scope=Scope("town", other_town))
        with pytest.raises(OutOfScope):
            plan_routes(conn, world["plan"], scope=Scope("department", "health"))
        # A joint plan is planned by the command centre: one of its departments' officers may read it, not re-plan it.
        with pytest.raises(OutOfScope):
            solve_plan_routes(conn, world["plan"], scope=Scope("department", "market_supervision"), actor="officer")
        with pytest.raises(PlanState):
            solve_plan_routes(conn, world["committed"], scope=CITY, actor="centre")


def test_a_plan_drawn_by_the_real_draw_gets_its_days_on_the_roads(engine: Engine) -> None:
    """The whole chain: a joint plan created, drawn with a public value (teams, visits, business hours and service
    minutes as the draw makes them), then routed: every matched visit is on a day or listed with its reason."""
    with engine.begin() as conn:
        world = make_inspection_world(conn)
        request = PlanRequest(
            departments=("health", "market_supervision"),
            items=JOINT_ITEMS,
            towns=(world.town_code,),
            ratios={c: Decimal("0.2") for c in "ABCD"},
            public_value_source="中国福利彩票3D 第2026335期开奖号码",
            public_value_at=clock.now(),
        )
        plan = plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY)
        drawn = plans.draw(conn, plan.id, "835", actor="centre", scope=CITY, secret_key=SECRET_KEY)
        answer = solve_plan_routes(conn, drawn.id, scope=CITY, actor="centre", max_seconds=1.0)
        check_days(conn, answer, world.town_code)
        visits = conn.execute(
            text("SELECT id, team_id FROM inspection_visit WHERE plan_id = :p"), {"p": drawn.id}
        ).all()
    assert visits, "the draw selected no one"
    routed = {s.visit_id for t in answer.teams for d in t.days for s in d.stops}
    left = {u.visit_id: u.reason for u in answer.unassigned}
    assert routed | set(left) == {v.id for v in visits}
    assert not routed & set(left)
    assert all(left[v.id] == "unmatched" for v in visits if v.team_id is None)
    assert all(reason != "day_full" for reason in left.values())


def test_a_visit_the_draw_could_not_staff_is_placed_by_hand_on_a_team_that_may_make_it(
    engine: Engine, world: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        team1 = next(t for t in routed(conn, world["plan"]).teams if t.team_id == world["team1"])
        lightest = min(team1.days, key=lambda d: len(d.stops))
        after = move_stop(
            conn,
            world["plan"],
            visit_id=world["unmatched"],
            team_id=world["team1"],
            day=lightest.day,
            position=0,
            scope=CITY,
            actor="centre",
        )
        row = conn.execute(
            text("SELECT team_id, unmatched_reason FROM inspection_visit WHERE id = :v"), {"v": world["unmatched"]}
        ).one()
        check_days(conn, after, world["town"])
    assert tuple(row) == (world["team1"], None)
    assert world["unmatched"] not in {u.visit_id for u in after.unassigned}
    day = next(d for t in after.teams if t.team_id == world["team1"] for d in t.days if d.day == lightest.day)
    assert day.stops[0].visit_id == world["unmatched"]


def every_stop(answer: Any) -> list[int]:
    """Every stop of every team day as answered (the planning page and the route sheets print these)."""
    return [s.visit_id for t in answer.teams for d in t.days for s in d.stops]


def test_successive_hand_moves_keep_every_visit_exactly_once_on_the_days_and_the_sheets(engine: Engine) -> None:
    """The outside test: moving a stop within a ten-stop day doubled one stop and lost another, and the sheets
    followed. Now move after move, each visit stays on exactly one day, in storage and in what the sheets print."""
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        entities = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT uscc, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity"
                    " WHERE town_code = :t AND geom IS NOT NULL AND status = 'open' ORDER BY uscc DESC LIMIT 14"
                ),
                {"t": town},
            )
        ]
        office = (entities[0]["lon"] - 0.002, entities[0]["lat"] - 0.002)
        plan_id = insert_drawn_plan(conn, town, departments=ALONE, visit_date=date(2026, 12, 7))
        team = insert_team(conn, plan_id, 1, ALONE, office, "999999999999999")
        ids = insert_visits(conn, plan_id, entities, team, ALONE, service_minutes=25)
        answer = solve_plan_routes(conn, plan_id, scope=CITY, actor="centre", max_seconds=1.0)
        assert sorted(every_stop(answer)) == sorted(ids)
        for k in range(6):
            days = next(t for t in answer.teams if t.team_id == team).days
            fullest = max(days, key=lambda d: len(d.stops))
            stops = [s.visit_id for s in fullest.stops]
            moved = stops[k % len(stops)]
            answer = move_stop(
                conn,
                plan_id,
                visit_id=moved,
                team_id=team,
                day=fullest.day,
                position=(k * 3 + 2) % len(stops),
                scope=CITY,
                actor="centre",
            )
            stored = [
                i
                for row in conn.execute(
                    text("SELECT visit_ids FROM inspection_route WHERE plan_id = :p"), {"p": plan_id}
                ).scalars()
                for i in row
            ]
            assert sorted(stored) == sorted(ids), f"move {k + 1} of {moved}"
            assert sorted(every_stop(answer)) == sorted(ids)
            assert not answer.unassigned
            check_days(conn, answer, town)


def test_a_move_onto_days_that_already_hold_a_visit_twice_is_refused_and_stores_nothing(engine: Engine) -> None:
    """Days corrupted before the fix (one stop twice, another lost) are not built upon: the next move is refused with
    the doubled visit named, and nothing changes."""
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        entities = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT uscc, grid_code FROM entity WHERE town_code = :t AND geom IS NOT NULL AND status = 'open'"
                    " ORDER BY uscc DESC OFFSET 20 LIMIT 4"
                ),
                {"t": town},
            )
        ]
        office = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE uscc = :u"), {"u": entities[0]["uscc"]}
        ).one()
        plan_id = insert_drawn_plan(conn, town, departments=ALONE, visit_date=date(2026, 12, 7))
        team = insert_team(conn, plan_id, 1, ALONE, (office[0] + 0.001, office[1]), "999999999999999")
        ids = insert_visits(conn, plan_id, entities, team, ALONE, service_minutes=20)
        solve_plan_routes(conn, plan_id, scope=CITY, actor="centre", max_seconds=0.5)
        row = conn.execute(
            text("SELECT id, visit_ids FROM inspection_route WHERE plan_id = :p ORDER BY day LIMIT 1"), {"p": plan_id}
        ).one()
        doubled = [row.visit_ids[1], *row.visit_ids[1:]]  # the first stop lost, the second twice
        conn.execute(text("UPDATE inspection_route SET visit_ids = :v WHERE id = :id"), {"v": doubled, "id": row.id})
        before = stored_routes(conn, plan_id)
        with pytest.raises(PlanState) as refused:
            move_stop(conn, plan_id, visit_id=ids[2], team_id=team, day=1, position=0, scope=CITY, actor="centre")
        assert refused.value.reason == "route_integrity"
        assert f"重复：{row.visit_ids[1]}" in str(refused.value)
        assert stored_routes(conn, plan_id) == before


def test_a_stop_moves_to_another_team_only_if_a_member_is_qualified_for_each_of_its_items(engine: Engine) -> None:
    """The outside test: a visit checking health-02 went to a team qualified only for the other health items (200).
    Now it is refused with the item named, nothing changes; a team whose member holds health-02 may take it."""
    health = ["health"]
    with engine.begin() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        entities = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT uscc, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity WHERE town_code = :t"
                    " AND geom IS NOT NULL AND status = 'open' ORDER BY uscc DESC OFFSET 40 LIMIT 4"
                ),
                {"t": town},
            )
        ]
        office = (entities[0]["lon"] + 0.001, entities[0]["lat"])
        plan_id = insert_drawn_plan(conn, town, departments=health, visit_date=date(2026, 12, 7))
        own = insert_team(conn, plan_id, 1, health, office, "999999999999999", qualifications=("HEALTH-T02",))
        others = ("HEALTH-T01", "HEALTH-T03", "HEALTH-T04")
        unqualified = insert_team(conn, plan_id, 2, health, office, "999999999999999", qualifications=others)
        qualified = insert_team(conn, plan_id, 3, health, office, "999999999999999", qualifications=("HEALTH-T02",))
        ids = insert_visits(conn, plan_id, entities[:2], own, health, service_minutes=20, item="HEALTH-T02")
        insert_visits(conn, plan_id, entities[2:3], unqualified, health, service_minutes=20, item="HEALTH-T01")
        insert_visits(conn, plan_id, entities[3:], qualified, health, service_minutes=20, item="HEALTH-T01")
        solve_plan_routes(conn, plan_id, scope=CITY, actor="centre", max_seconds=0.5)
        before = stored_routes(conn, plan_id)
        with pytest.raises(InvalidPlan) as refused:
            move_stop(conn, plan_id, visit_id=ids[0], team_id=unqualified, day=1, position=0, scope=CITY, actor="c")
        assert refused.value.reason == "not_qualified"
        assert "HEALTH-T02" in str(refused.value) and "第 2 组" in str(refused.value)
        assert stored_routes(conn, plan_id) == before
        after = move_stop(conn, plan_id, visit_id=ids[0], team_id=qualified, day=1, position=0, scope=CITY, actor="c")
    team3 = next(t for t in after.teams if t.team_id == qualified)
    assert team3.days[0].stops[0].visit_id == ids[0]
