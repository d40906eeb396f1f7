"""planning.route_service: a drawn plan's team days on the city's roads — solve, store, read, move a stop by hand.

Each team starts and ends its days at its office and works at most one day length (08:30–17:30 by default,
`GRIDGOV_ROUTE_DAY_START` / `GRIDGOV_ROUTE_DAY_END`); a visit starts inside its business hours and takes its service
minutes. A team's visits spread over as many working days (`supervision.calendar`) from the plan's visit date as they
need: every day is a vehicle of the problem, and each later day costs a little more to open, so the solver fills the
first days and opens a new one only when the stops do not fit. A team-day is one `inspection_route` row, replaced on
each solve in one transaction.

A visit no team day can take is listed with its reason (planning.routing.vrp): a plan's solve still stores the days it
could plan; a hand move that breaks a day is refused (RouteInfeasible, 422) and changes nothing.

The VROOM-format endpoint is served here too (`solve_vroom`): without matrices its places must lie inside the city and
are timed on the roads of the towns they lie in.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, text

from gis import clock
from planning.errors import InvalidPlan, PlanNotFound, PlanState, RouteInfeasible
from planning.inspection_results import recent_visits
from planning.routing import vroom_format
from planning.routing.travel import LonLat, RoadNetwork, Searched
from planning.routing.vrp import (
    REASONS_ZH,
    Job,
    Problem,
    Route,
    Solution,
    Vehicle,
    evaluate,
    order_around_pin,
    solve,
)
from supervision.calendar import default_calendar, today
from supervision.errors import OutOfScope
from supervision.scope import Scope

MAX_DAYS = 20
# A later day costs this much more to open (seconds of travel): far above any day's travel, far below a stop's prize.
DAY_OPENING_COST = 100_000
MIN_TEAM_SECONDS = 0.1
# How far around a team's points its road network reaches (degrees, about a kilometre).
AROUND_DEG = 0.01
NO_IMPROVEMENT = 3000
# The share of a VROOM request's time limit its road matrix may take (estimated up front; the rest is the search's).
MATRIX_SHARE = 0.75
MIN_SOLVE_S = 0.05
UNMATCHED_ZH = "抽查时未能配齐检查组，无法安排路线"


class RouteDaySettings(BaseSettings):
    """A team's working day: when it may leave the office and when it must be back (HH:MM, Asia/Shanghai)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_ROUTE_", extra="ignore")

    day_start: str = "08:30"
    day_end: str = "17:30"

    def window_s(self) -> tuple[int, int]:
        """The day as seconds after midnight; ValueError when it is not a day."""
        start, end = _seconds_of(self.day_start), _seconds_of(self.day_end)
        if not 0 <= start < end <= 24 * 3600:
            raise ValueError(f"day {self.day_start}–{self.day_end} is not a working day")
        return start, end


def _seconds_of(hhmm: str) -> int:
    """'08:30' → 30600."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _hhmm(seconds: int) -> str:
    """30600 → '08:30' (rounded to the minute)."""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ------------------------------------------------------------------------------------------------ what is answered


@dataclass(frozen=True)
class RouteStop:
    """One visit of a team day, with its planned times."""

    visit_id: int
    uscc: str
    name: str
    address: str | None
    lon: float
    lat: float
    arrival: str
    start: str
    departure: str
    waiting_min: int
    service_min: int
    items: list[str]
    departments: list[str]
    window: list[int]
    window_text: str


@dataclass(frozen=True)
class RouteDay:
    """A team's day: its date, stops in order, times, travel and the road path for the map."""

    day: int
    date: str
    manual: bool
    leave: str
    back: str
    duration_s: int
    travel_s: int
    distance_m: int
    stops: list[RouteStop]
    geometry: dict[str, Any]


@dataclass(frozen=True)
class TeamRoutes:
    """A team, its office and its days."""

    team_id: int
    team_no: int
    departments: list[str]
    office: dict[str, Any]
    days: list[RouteDay]


@dataclass(frozen=True)
class UnroutedVisit:
    """A visit no team day takes, and why."""

    visit_id: int
    uscc: str
    name: str
    team_id: int | None
    reason: str
    detail: str


@dataclass(frozen=True)
class PlanRoutes:
    """Every team's days of a plan, the visits left out, and when they were solved."""

    plan_id: int
    status: str
    visit_date: str | None
    day_start: str
    day_end: str
    travel_source: str
    solved_at: str | None
    teams: list[TeamRoutes]
    unassigned: list[UnroutedVisit]
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ scope


_PLAN_SQL = "SELECT id, status, department_codes, town_codes, visit_date, load_cap FROM inspection_plan WHERE id = :id"


def _plan(conn: Connection, plan_id: int, scope: Scope, *, write: bool, lock: bool = False) -> dict[str, Any]:
    """The plan row; PlanNotFound (404), OutOfScope (403) when the caller may not see it or may not plan it."""
    row = (
        conn.execute(
            text(_PLAN_SQL + (" FOR UPDATE" if lock else "")),
            {"id": plan_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise PlanNotFound(f"没有编号为 {plan_id} 的抽查计划", reason="not_found")
    plan = dict(row)
    if scope.kind == "city":
        return plan
    sees = (scope.kind == "department" and scope.code in plan["department_codes"]) or (
        scope.kind == "town" and scope.code in plan["town_codes"]
    )
    if not sees:
        raise OutOfScope("该抽查计划不在本账号范围内")
    if write and not (scope.kind == "department" and list(plan["department_codes"]) == [scope.code]):
        raise OutOfScope("只能为本部门单独的抽查计划安排路线（多部门联合抽查由指挥中心办理）")
    return plan


def _drawn(plan: Mapping[str, Any]) -> None:
    """PlanState (409) unless the plan is drawn: routes need its visits and teams."""
    if plan["status"] != "drawn":
        raise PlanState("抽查计划尚未摇号（或已撤销），还没有检查对象和检查组", reason="not_drawn")


# ------------------------------------------------------------------------------------------------ reading


def _teams(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The plan's teams with their office point, members' home grids, declared conflicts and tightest load cap, and
    how many visits each already makes."""
    rows = conn.execute(
        text(
            """
            SELECT t.id, t.team_no, t.department_codes, t.office_name, t.inspector_ids,
                   ST_X(t.office_geom) AS lon, ST_Y(t.office_geom) AS lat,
                   coalesce(array_agg(i.home_grid_code) FILTER (WHERE i.home_grid_code IS NOT NULL), '{}')
                       AS home_grids,
                   coalesce(array_agg(DISTINCT c.uscc) FILTER (WHERE c.uscc IS NOT NULL), '{}') AS conflicts,
                   min(i.load_cap) AS member_cap,
                   (SELECT count(*) FROM inspection_visit v WHERE v.team_id = t.id) AS load
            FROM inspection_team t
            LEFT JOIN inspector i ON i.id = ANY(t.inspector_ids)
            LEFT JOIN LATERAL unnest(i.conflicts) AS c(uscc) ON TRUE
            WHERE t.plan_id = :plan_id
            GROUP BY t.id
            ORDER BY t.team_no
            """
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


def _visits(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The plan's visits with the entity's name, address and point."""
    rows = conn.execute(
        text(
            """
            SELECT v.id, v.uscc, e.name, e.raw_address AS address, v.grid_code, v.team_id, v.unmatched_reason,
                   ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat, v.item_codes, v.department_codes,
                   v.window_start, v.window_end, v.service_minutes
            FROM inspection_visit v JOIN entity e ON e.uscc = v.uscc
            WHERE v.plan_id = :plan_id
            ORDER BY v.id
            """
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


def _routes(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The stored team days of a plan."""
    rows = conn.execute(
        text(
            "SELECT id, team_id, day, visit_ids, steps, duration_s, distance_m, travel_source, manual, solved_at"
            " FROM inspection_route WHERE plan_id = :plan_id ORDER BY team_id, day"
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


def _towns_of(conn: Connection, points: Sequence[LonLat]) -> list[str | None]:
    """The town each (lon, lat) point lies in (None outside the city)."""
    if not points:
        return []
    rows = conn.execute(
        text(
            """
            SELECT p.ord, t.code
            FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(lon, lat, ord)
            LEFT JOIN LATERAL (
                SELECT code FROM town WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)) LIMIT 1
            ) t ON TRUE
            ORDER BY p.ord
            """
        ),
        {"lons": [p[0] for p in points], "lats": [p[1] for p in points]},
    )
    return [r[1] for r in rows]


def _network_around(conn: Connection, points: Sequence[LonLat]) -> RoadNetwork:
    """The roads of the towns around these points (their envelope, a kilometre wider), for a one-off problem."""
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    towns = conn.execute(
        text(
            "SELECT code FROM town WHERE ST_Intersects(geom,"
            " ST_Expand(ST_MakeEnvelope(:w, :s, :e, :n, 4326), :margin)) ORDER BY code"
        ),
        {"w": min(lons), "s": min(lats), "e": max(lons), "n": max(lats), "margin": AROUND_DEG},
    ).scalars()
    return RoadNetwork.load(conn, list(towns) or None)


def _plan_network(conn: Connection, plan: Mapping[str, Any], teams: Sequence[Mapping[str, Any]]) -> RoadNetwork:
    """The roads of the plan's towns and of the towns its teams' offices lie in: one graph for the whole plan, built
    once per process and data state (RoadNetwork.load caches it)."""
    offices = _towns_of(conn, [_office(t) for t in teams])
    return RoadNetwork.load(conn, sorted(set(plan["town_codes"]) | {t for t in offices if t is not None}))


def _office(team: Mapping[str, Any]) -> LonLat:
    """A team's office point."""
    return float(team["lon"]), float(team["lat"])


def _placed(visits: Sequence[Mapping[str, Any]]) -> list[LonLat]:
    """The points of the visits that have one."""
    return [(float(v["lon"]), float(v["lat"])) for v in visits if v["lon"] is not None]


def _day_dates(first: date | None, days: int) -> list[date]:
    """The first `days` working days from `first` (itself when it is one)."""
    calendar = default_calendar()
    start = first or today()
    while not calendar.is_working_day(start):
        start += timedelta(days=1)
    return [calendar.add_working_days(start, k) for k in range(days)]


# ------------------------------------------------------------------------------------------------ solving


@dataclass
class _TeamProblem:
    """One team's stops over a matrix: index 0 is the office, then the team's visits that have a point."""

    team: dict[str, Any]
    visits: list[dict[str, Any]]
    problem: Problem
    day: Vehicle
    # The road searches from the team's points: its matrix came from them, its days' map lines reuse them.
    searched: Searched


def _team_problem(
    network: RoadNetwork,
    team: Mapping[str, Any],
    visits: Sequence[Mapping[str, Any]],
    window: tuple[int, int],
    days: int,
) -> _TeamProblem:
    """The team's visits as jobs (window and service in seconds) and its days as vehicles from the office and back."""
    placed = [v for v in visits if v["lon"] is not None]
    points: list[LonLat] = [(float(team["lon"]), float(team["lat"]))]
    points += [(float(v["lon"]), float(v["lat"])) for v in placed]
    searched = network.search(points)
    matrix = network.matrix(points, searched)
    index = {v["id"]: k + 1 for k, v in enumerate(placed)}
    jobs = [
        Job(
            id=int(v["id"]),
            location=index.get(v["id"]),
            service_s=int(v["service_minutes"]) * 60,
            windows=((int(v["window_start"]) * 60, int(v["window_end"]) * 60),),
        )
        for v in visits
    ]
    vehicles = [
        Vehicle(id=d + 1, start=0, end=0, window=window, fixed_cost=DAY_OPENING_COST * (d + 1)) for d in range(days)
    ]
    problem = Problem(matrix.durations_s, jobs, vehicles, matrix.distances_m)
    return _TeamProblem(dict(team), [dict(v) for v in visits], problem, vehicles[0], searched)


def _days_needed(visits: Sequence[Mapping[str, Any]], window: tuple[int, int]) -> int:
    """A first guess of a team's days: its service time plus a quarter hour's travel per stop, over the day."""
    work = sum(int(v["service_minutes"]) * 60 + 900 for v in visits)
    return max(1, min(MAX_DAYS, math.ceil(work / (window[1] - window[0])) + 1))


def _solve_team(tp: _TeamProblem, seconds: float) -> Solution:
    """The team's days, opening more days (up to MAX_DAYS) while stops are left out only for want of room."""
    solution = solve(tp.problem, max_seconds=seconds, no_improvement=NO_IMPROVEMENT)
    while any(u.reason == "day_full" for u in solution.unassigned) and len(tp.problem.vehicles) < MAX_DAYS:
        days = min(MAX_DAYS, len(tp.problem.vehicles) * 2)
        window = tp.day.window
        vehicles = [
            Vehicle(id=d + 1, start=0, end=0, window=window, fixed_cost=DAY_OPENING_COST * (d + 1)) for d in range(days)
        ]
        tp.problem = Problem(tp.problem.durations, tp.problem.jobs, vehicles, tp.problem.distances)
        solution = solve(tp.problem, max_seconds=seconds, no_improvement=NO_IMPROVEMENT)
    return solution


def _legs(
    network: RoadNetwork,
    team: Mapping[str, Any],
    stops: Sequence[Mapping[str, Any]],
    searched: Searched | None = None,
) -> list[list[LonLat]]:
    """The road path of each leg of a day: office → first stop → … → office (from the team's searches if given)."""
    return network.paths([_office(team), *_placed(stops), _office(team)], searched)


def _steps_json(route: Route, legs: Sequence[Sequence[LonLat]]) -> list[dict[str, Any]]:
    """A route's steps as stored: kind, visit, arrival, waiting, service, travel and metres so far, and the road path
    that led to it (lon, lat), so that reading a day draws it without searching the roads again."""
    return [
        {
            "type": s.kind,
            "visit_id": s.job_id,
            "arrival_s": s.arrival,
            "waiting_s": s.waiting,
            "service_s": s.service,
            "travel_s": s.travel_s,
            "distance_m": s.distance_m,
            "path": [] if k == 0 else [list(p) for p in legs[k - 1]],
        }
        for k, s in enumerate(route.steps)
    ]


def _store_day(
    conn: Connection,
    plan_id: int,
    team_id: int,
    day: int,
    route: Route,
    *,
    manual: bool,
    at: Any,
    legs: Sequence[Sequence[LonLat]],
) -> None:
    """Insert or replace one team day."""
    conn.execute(
        text(
            """
            INSERT INTO inspection_route (plan_id, team_id, day, visit_ids, steps, duration_s, distance_m,
                                          travel_source, manual, solved_at)
            VALUES (:plan_id, :team_id, :day, :visit_ids, CAST(:steps AS jsonb), :duration_s, :distance_m,
                    'road', :manual, :at)
            ON CONFLICT (team_id, day) DO UPDATE SET
                visit_ids = EXCLUDED.visit_ids, steps = EXCLUDED.steps, duration_s = EXCLUDED.duration_s,
                distance_m = EXCLUDED.distance_m, travel_source = EXCLUDED.travel_source, manual = EXCLUDED.manual,
                solved_at = EXCLUDED.solved_at
            """
        ),
        {
            "plan_id": plan_id,
            "team_id": team_id,
            "day": day,
            "visit_ids": route.job_ids,
            "steps": json.dumps(_steps_json(route, legs)),
            "duration_s": route.steps[-1].arrival - route.steps[0].arrival,
            "distance_m": route.distance_m,
            "manual": manual,
            "at": at,
        },
    )


class RouteIntegrity(PlanState):
    """Stored days that would hold a visit twice, lose one, or carry another team's visit: refused (409), nothing
    stored, because route sheets printed from them would send a team to one shop twice and skip another."""

    default_reason = "route_integrity"


def _check_days(conn: Connection, plan_id: int, expected: set[int]) -> None:
    """RouteIntegrity unless the plan's stored days hold exactly the `expected` visits, each once, each on a day of
    the team it belongs to."""
    rows = conn.execute(
        text(
            """
            SELECT r.team_id, r.day, v.visit_id, iv.team_id AS visit_team
            FROM inspection_route r
            CROSS JOIN LATERAL unnest(r.visit_ids) AS v(visit_id)
            LEFT JOIN inspection_visit iv ON iv.id = v.visit_id AND iv.plan_id = r.plan_id
            WHERE r.plan_id = :p
            """
        ),
        {"p": plan_id},
    ).all()
    seen: dict[int, int] = {}
    for row in rows:
        seen[row.visit_id] = seen.get(row.visit_id, 0) + 1
    twice = sorted(i for i, n in seen.items() if n > 1)
    lost = sorted(expected - set(seen))
    extra = sorted(set(seen) - expected)
    foreign = sorted({r.visit_id for r in rows if r.visit_team != r.team_id})
    if twice or lost or extra or foreign:
        parts = [
            f"{label}：{'、'.join(map(str, ids[:10]))}"
            for label, ids in (("重复", twice), ("丢失", lost), ("多出", extra), ("不属于该检查组", foreign))
            if ids
        ]
        raise RouteIntegrity(f"路线校验未通过（{'；'.join(parts)}），未保存任何改动", reason="route_integrity")


def _stored_visits(conn: Connection, plan_id: int) -> set[int]:
    """Every visit the plan's stored days hold."""
    return set(
        conn.execute(
            text("SELECT DISTINCT unnest(visit_ids) FROM inspection_route WHERE plan_id = :p"), {"p": plan_id}
        ).scalars()
    )


def solve_plan_routes(
    conn: Connection,
    plan_id: int,
    *,
    scope: Scope,
    actor: str,
    max_seconds: float = 2.0,
    settings: RouteDaySettings | None = None,
) -> PlanRoutes:
    """Plan every team's days of a drawn plan on the roads and store them (replacing any), in one transaction.

    The time budget is shared by the teams (at least MIN_TEAM_SECONDS each); a team with one stop needs no search.
    """
    del actor  # the routes carry solved_at; who solved is the request's audit
    plan = _plan(conn, plan_id, scope, write=True, lock=True)
    _drawn(plan)
    day_settings = settings or RouteDaySettings()
    window = day_settings.window_s()
    teams = _teams(conn, plan_id)
    visits = _visits(conn, plan_id)
    network = _plan_network(conn, plan, teams)
    started = time.monotonic()
    at = clock.now()
    routed_teams = [t for t in teams if any(v["team_id"] == t["id"] for v in visits)]
    per_team = max(MIN_TEAM_SECONDS, max_seconds / max(len(routed_teams), 1))
    expected: set[int] = set()
    with conn.begin_nested():  # a failed check below leaves the previous days as they were
        conn.execute(text("DELETE FROM inspection_route WHERE plan_id = :p"), {"p": plan_id})
        for team in routed_teams:
            own = [v for v in visits if v["team_id"] == team["id"]]
            tp = _team_problem(network, team, own, window, _days_needed(own, window))
            solution = _solve_team(tp, per_team)
            by_id = {v["id"]: v for v in own}
            for day, route in enumerate(solution.routes, start=1):
                expected.update(route.job_ids)
                legs = _legs(network, team, [by_id[i] for i in route.job_ids], tp.searched)
                _store_day(conn, plan_id, int(team["id"]), day, route, manual=False, at=at, legs=legs)
        _check_days(conn, plan_id, expected)
    result = plan_routes(conn, plan_id, scope=scope, settings=day_settings)
    result.figures["solve_s"] = round(time.monotonic() - started, 3)
    return result


# ------------------------------------------------------------------------------------------------ the answer


def plan_routes(
    conn: Connection, plan_id: int, *, scope: Scope, settings: RouteDaySettings | None = None
) -> PlanRoutes:
    """Every team's stored days of a plan (stops, times, road path) and the visits no day takes, with the reason."""
    plan = _plan(conn, plan_id, scope, write=False)
    day_settings = settings or RouteDaySettings()
    window = day_settings.window_s()
    teams = _teams(conn, plan_id) if plan["status"] == "drawn" else []
    visits = {v["id"]: v for v in _visits(conn, plan_id)} if plan["status"] == "drawn" else {}
    routes = _routes(conn, plan_id) if plan["status"] == "drawn" else []
    last_day = max((r["day"] for r in routes), default=0)
    dates = _day_dates(plan["visit_date"], last_day) if last_day else []
    routed: set[int] = set()
    out_teams: list[TeamRoutes] = []
    for team in teams:
        office = _office(team)
        days: list[RouteDay] = []
        for row in (r for r in routes if r["team_id"] == team["id"]):
            routed.update(row["visit_ids"])
            days.append(_day_out(row, visits, dates))
        out_teams.append(
            TeamRoutes(
                team_id=int(team["id"]),
                team_no=int(team["team_no"]),
                departments=list(team["department_codes"]),
                office={"name": team["office_name"], "lon": office[0], "lat": office[1]},
                days=days,
            )
        )
    unassigned = _unrouted(
        conn, plan, teams, [v for v in visits.values() if v["id"] not in routed], window, bool(routes)
    )
    solved = max((r["solved_at"] for r in routes), default=None)
    return PlanRoutes(
        plan_id=plan_id,
        status=str(plan["status"]),
        visit_date=None if plan["visit_date"] is None else plan["visit_date"].isoformat(),
        day_start=day_settings.day_start,
        day_end=day_settings.day_end,
        travel_source="road",
        solved_at=None if solved is None else solved.isoformat(),
        teams=out_teams,
        unassigned=unassigned,
        figures={
            "days": len(routes),
            "stops": len(routed),
            "travel_s": sum(d.travel_s for t in out_teams for d in t.days),
            "distance_m": sum(d.distance_m for t in out_teams for d in t.days),
        },
    )


def _day_out(row: Mapping[str, Any], visits: Mapping[int, Mapping[str, Any]], dates: Sequence[date]) -> RouteDay:
    """One stored team day as answered: stops with times, and the path along the roads (stored with each step)."""
    steps = row["steps"]
    stops: list[RouteStop] = []
    for step in steps:
        if step["type"] != "job":
            continue
        v = visits[step["visit_id"]]
        begin = step["arrival_s"] + step["waiting_s"]
        stops.append(
            RouteStop(
                visit_id=int(v["id"]),
                uscc=v["uscc"],
                name=v["name"],
                address=v["address"],
                lon=float(v["lon"]),
                lat=float(v["lat"]),
                arrival=_hhmm(step["arrival_s"]),
                start=_hhmm(begin),
                departure=_hhmm(begin + step["service_s"]),
                waiting_min=round(step["waiting_s"] / 60),
                service_min=round(step["service_s"] / 60),
                items=list(v["item_codes"]),
                departments=list(v["department_codes"]),
                window=[int(v["window_start"]), int(v["window_end"])],
                window_text=f"{_hhmm(v['window_start'] * 60)}–{_hhmm(v['window_end'] * 60)}",
            )
        )
    line: list[list[float]] = []
    if stops:
        for step in steps[1:]:
            coords = step.get("path") or []
            line.extend(coords if not line else coords[1:])
    return RouteDay(
        day=int(row["day"]),
        date=dates[row["day"] - 1].isoformat(),
        manual=bool(row["manual"]),
        leave=_hhmm(steps[0]["arrival_s"]),
        back=_hhmm(steps[-1]["arrival_s"]),
        duration_s=int(row["duration_s"]),
        travel_s=int(steps[-1]["travel_s"]),
        distance_m=int(row["distance_m"]),
        stops=stops,
        geometry={"type": "LineString", "coordinates": line},
    )


def _unrouted(
    conn: Connection,
    plan: Mapping[str, Any],
    teams: Sequence[Mapping[str, Any]],
    visits: Sequence[Mapping[str, Any]],
    window: tuple[int, int],
    solved: bool,
) -> list[UnroutedVisit]:
    """The visits no stored day takes, with the reason each would be refused alone (or the draw's, when unmatched)."""
    out: list[UnroutedVisit] = []
    by_team = {t["id"]: t for t in teams}
    network: RoadNetwork | None = None
    for v in visits:
        team = by_team.get(v["team_id"])
        if team is None:
            reason, detail = "unmatched", v["unmatched_reason"] or UNMATCHED_ZH
        elif not solved:
            continue  # nothing solved yet: nothing is left out
        else:
            network = network or _plan_network(conn, plan, teams)
            tp = _team_problem(network, team, [v], window, 1)
            alone = solve(tp.problem, max_seconds=0.2, max_iterations=50)
            reason = alone.unassigned[0].reason if alone.unassigned else "day_full"
            detail = REASONS_ZH[reason]
        out.append(UnroutedVisit(int(v["id"]), v["uscc"], v["name"], v["team_id"], reason, detail))
    return out


# ------------------------------------------------------------------------------------------------ moving a stop


def move_stop(
    conn: Connection,
    plan_id: int,
    *,
    visit_id: int,
    team_id: int,
    day: int,
    position: int,
    scope: Scope,
    actor: str,
    settings: RouteDaySettings | None = None,
) -> PlanRoutes:
    """A dispatcher puts a stop on a team's day at a position; that day is re-optimised around it, and so is the day
    it left. The target day becomes manual (the stop is pinned there). RouteInfeasible (422) when the day cannot take
    it, InvalidPlan (422) when the team may not make the visit: nothing changes then."""
    del actor
    plan = _plan(conn, plan_id, scope, write=True, lock=True)
    _drawn(plan)
    day_settings = settings or RouteDaySettings()
    window = day_settings.window_s()
    teams = {t["id"]: t for t in _teams(conn, plan_id)}
    visits = {v["id"]: v for v in _visits(conn, plan_id)}
    routes = _routes(conn, plan_id)
    visit = visits.get(visit_id)
    if visit is None:
        raise PlanNotFound(f"抽查计划 {plan_id} 没有编号为 {visit_id} 的检查对象", reason="visit_not_found")
    team = teams.get(team_id)
    if team is None:
        raise PlanNotFound(f"抽查计划 {plan_id} 没有编号为 {team_id} 的检查组", reason="team_not_found")
    if not routes:
        raise PlanState("该计划尚未安排路线，请先生成路线", reason="not_routed")
    if visit["lon"] is None:
        raise RouteInfeasible(
            "该检查对象位置不明，无法排入路线",
            unassigned=[{"id": visit_id, "reason": "unknown_location", "detail": REASONS_ZH["unknown_location"]}],
        )
    if visit["team_id"] != team_id:
        _may_take(team, visit, int(plan["load_cap"]))
        _qualified(conn, team, visit)
        recent = recent_visits(conn, today())
        if any(visit["uscc"] in recent.get(i, frozenset()) for i in team["inspector_ids"]):
            raise InvalidPlan(
                f"第 {team['team_no']} 组有检查人员在最近 12 个月内检查过该对象，须回避", reason="team_conflict"
            )
    team_days = sorted(r["day"] for r in routes if r["team_id"] == team_id)
    if not 1 <= day <= (max(team_days, default=0) + 1) or day > MAX_DAYS:
        raise InvalidPlan(
            f"第 {day} 天不存在：该检查组现有 {len(team_days)} 天，最多可新增到第 {len(team_days) + 1} 天",
            reason="bad_day",
        )
    source = next((r for r in routes if visit_id in r["visit_ids"]), None)
    target = next((r for r in routes if r["team_id"] == team_id and r["day"] == day), None)
    others = [i for i in (target["visit_ids"] if target else []) if i != visit_id]
    if not 0 <= position <= len(others):
        raise InvalidPlan(f"位置须在 0 到 {len(others)} 之间", reason="bad_position")
    day_visits = [visits[i] for i in [*others, visit_id]]
    network = _plan_network(conn, plan, list(teams.values()))
    at = clock.now()
    tp = _team_problem(network, team, day_visits, window, 1)
    placed = order_around_pin(tp.problem, tp.day, others, visit_id, position)
    if placed is None:
        alone = solve(
            Problem(tp.problem.durations, [j for j in tp.problem.jobs if j.id == visit_id], [tp.day]),
            max_seconds=0.2,
            max_iterations=20,
        )
        reason = alone.unassigned[0].reason if alone.unassigned else "day_full"
        raise RouteInfeasible(
            f"第 {day} 天排不下该检查对象（{visit['name']}）：{REASONS_ZH[reason]}，路线未改动",
            unassigned=[{"id": visit_id, "reason": reason, "detail": REASONS_ZH[reason]}],
        )
    expected = _stored_visits(conn, plan_id) | {visit_id}
    with conn.begin_nested():  # a failed check below leaves every day (and the visit's team) as it was
        if source is not None and (source["team_id"], source["day"]) != (team_id, day):
            _reoptimise_left(conn, plan_id, network, teams[source["team_id"]], source, visit_id, visits, window, at)
        if visit["team_id"] != team_id:
            conn.execute(
                text(
                    "UPDATE inspection_visit SET team_id = :t, unmatched_reason = NULL WHERE id = :v AND plan_id = :p"
                ),
                {"t": team_id, "v": visit_id, "p": plan_id},
            )
        legs = _legs(network, team, [visits[i] for i in placed.job_ids])
        _store_day(conn, plan_id, team_id, day, placed, manual=True, at=at, legs=legs)
        _check_days(conn, plan_id, expected)
    return plan_routes(conn, plan_id, scope=scope, settings=day_settings)


def _may_take(team: Mapping[str, Any], visit: Mapping[str, Any], plan_cap: int) -> None:
    """InvalidPlan (422) unless the team covers the visit's departments, none of its members must recuse, and one
    more visit keeps every member within the load cap (their own, else the plan's)."""
    missing = set(visit["department_codes"]) - set(team["department_codes"])
    if missing:
        raise InvalidPlan(
            f"第 {team['team_no']} 组没有 {'、'.join(sorted(missing))} 的检查人员，不能承担该检查对象",
            reason="team_not_eligible",
        )
    if visit["grid_code"] is not None and visit["grid_code"] in team["home_grids"]:
        raise InvalidPlan(f"第 {team['team_no']} 组有检查人员住在该对象所在网格，须回避", reason="team_conflict")
    if visit["uscc"] in team["conflicts"]:
        raise InvalidPlan(f"第 {team['team_no']} 组有检查人员申报了与该对象的利益冲突，须回避", reason="team_conflict")
    cap = min(plan_cap, team["member_cap"] or plan_cap)
    if team["load"] + 1 > cap:
        raise InvalidPlan(
            f"第 {team['team_no']} 组已承担 {team['load']} 户，再加一户将超过每人 {cap} 户的上限",
            reason="team_over_cap",
        )


def _qualified(conn: Connection, team: Mapping[str, Any], visit: Mapping[str, Any]) -> None:
    """InvalidPlan (422, not_qualified) unless every item of the visit has a member of the item's department qualified
    for it — the draw's matching rule, kept for a hand move too."""
    missing = list(
        conn.execute(
            text(
                """
                SELECT x.code, coalesce(it.name, x.code) AS name
                FROM unnest(CAST(:items AS text[])) WITH ORDINALITY AS x(code, ord)
                LEFT JOIN inspection_item it ON it.code = x.code
                WHERE NOT EXISTS (
                    SELECT 1 FROM inspector i
                    WHERE i.id = ANY(CAST(:members AS bigint[])) AND i.department_code = it.department_code
                      AND x.code = ANY(i.qualifications)
                )
                ORDER BY x.ord
                """
            ),
            {"items": list(visit["item_codes"]), "members": list(team["inspector_ids"])},
        )
    )
    if missing:
        shown = "、".join(f"{r.name}（{r.code}）" for r in missing)
        raise InvalidPlan(
            f"第 {team['team_no']} 组没有具备以下检查事项资格的本部门检查人员：{shown}，不能承担该检查对象",
            reason="not_qualified",
        )


def _reoptimise_left(
    conn: Connection,
    plan_id: int,
    network: RoadNetwork,
    team: Mapping[str, Any],
    source: Mapping[str, Any],
    visit_id: int,
    visits: Mapping[int, Mapping[str, Any]],
    window: tuple[int, int],
    at: Any,
) -> None:
    """The day a stop left, re-optimised without it (deleted when empty); its old order if the solver does worse."""
    rest = [i for i in source["visit_ids"] if i != visit_id]
    if not rest:
        conn.execute(text("DELETE FROM inspection_route WHERE id = :id"), {"id": source["id"]})
        return
    left = [visits[i] for i in rest]
    tp = _team_problem(network, team, left, window, 1)
    solution = solve(tp.problem, max_seconds=0.5, no_improvement=NO_IMPROVEMENT)
    kept = evaluate(tp.problem, tp.day, rest)
    best = solution.routes[0] if solution.routes and not solution.unassigned else None
    if kept is not None and (best is None or kept.travel_s <= best.travel_s):
        best = kept
    if best is None:  # cannot happen: a feasible day minus a stop stays feasible
        raise RouteInfeasible("移出后原路线无法重排", unassigned=[])
    legs = _legs(network, team, [visits[i] for i in best.job_ids])
    _store_day(
        conn, plan_id, int(team["id"]), int(source["day"]), best, manual=bool(source["manual"]), at=at, legs=legs
    )


# ------------------------------------------------------------------------------------------------ VROOM format


def solve_vroom(conn: Connection, payload: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A VROOM JSON problem solved: (VROOM's solution JSON, the unassigned jobs as RouteInfeasible lists them).

    Without matrices, the places must lie inside the city (InvalidPlan 422 otherwise) and are timed on the roads.
    """
    started = time.monotonic()
    request = vroom_format.read_problem(payload)
    routing_s = 0.0
    if request.durations is None:
        towns = _towns_of(conn, request.points)
        outside = [i for i, t in enumerate(towns) if t is None]
        if outside:
            shown = "、".join(f"[{request.points[i][0]:g}, {request.points[i][1]:g}]" for i in outside[:5])
            raise InvalidPlan(f"以下位置不在本市范围内：{shown}", reason="outside_city")
        network = _network_around(conn, request.points)
        estimate = network.matrix_estimate_s(len(request.points))
        if estimate > request.max_seconds * MATRIX_SHARE:
            raise InvalidPlan(
                f"{len(request.points)} 个位置的道路用时矩阵预计需 {estimate:.1f} 秒，超过时限 {request.max_seconds:g} 秒"
                f"可用于矩阵的 {request.max_seconds * MATRIX_SHARE:.1f} 秒：请调高 options.max_seconds（最多 30 秒）、"
                "减少任务，或在请求中附上 matrices",
                reason="too_large",
            )
        routing_started = time.monotonic()
        matrix = network.matrix(request.points)
        problem = request.problem(matrix.durations_s, matrix.distances_m)
        routing_s = time.monotonic() - routing_started
    else:
        problem = request.problem()
    # The matrix counts against the request's time limit: the search gets what is left (a short minimum).
    left = max(request.max_seconds - (time.monotonic() - started), MIN_SOLVE_S)
    solution = solve(problem, max_seconds=left)
    # Loading is everything but the search: reading the request, the towns, the roads and the matrix, the model.
    solution.loading_s = time.monotonic() - started - solution.solving_s
    answer = vroom_format.write_solution(
        request, solution, with_distance=problem.distances is not None, routing_s=routing_s
    )
    unassigned = [{"id": u.job_id, "reason": u.reason, "detail": u.detail} for u in solution.unassigned]
    if unassigned and not request.allow_unassigned:
        raise RouteInfeasible(
            f"有 {len(unassigned)} 个任务无法安排（可在 options 中设 allow_unassigned 为 true 取得部分解）",
            unassigned=unassigned,
        )
    return answer, unassigned
