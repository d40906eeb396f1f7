"""synthetic.simulate: N days of supervision life on the demo city — registrations, field work, departments, clues.

Everything goes through the real workflow (supervision.outbox, intake, transitions, supervision.clues) with the
simulated clock, so the audit trail, deadlines and statistics are those the platform would have produced.
Actors are named `sim:…` in the audit trail so that simulated history can never pass for real work.

Rates, per working day (weekends at a fifth): new registrations 0.04% of the city's entities (Dongguan
registers about 550 a day for 1.35 million), a few address and scope changes and deregistrations; a worker
inspects an assigned task with probability 0.3 a day (so about 3% miss the 10-day deadline), 86% of
inspections are fine, 11% find a problem, 3% go straight to the community; a department answers with
probability 0.15 a day. Event ids are `sim-YYYYMMDD-NNNNN`: replaying a day adds nothing twice.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from grids.repository import place_names
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, default_calendar
from supervision.campaign import in_campaign_window, run_annual_report_campaign
from supervision.clues import ClueReport, report_clue
from supervision.deadlines import raise_warnings
from supervision.errors import SupervisionError
from supervision.events import RegistrationEvent
from supervision.intake import process_events
from supervision.outbox import accept_events
from supervision.review import resolve_review
from supervision.routing import default_router
from supervision.scope import CITY, Scope
from supervision.task_states import split_departments
from supervision.transitions import Move, transition
from synthetic.entities import SCOPE_SEPARATOR, company_name, individual_name, random_uscc, read_scope_catalogue
from synthetic.noise import render_raw_address

NEW_PER_ENTITY_PER_DAY = 0.0004
CHANGES_PER_ENTITY_PER_DAY = {"address_change": 0.00003, "scope_change": 0.00002, "deregistration": 0.00005}
CLUES_PER_ENTITY_PER_DAY = 0.00015
WEEKEND_FACTOR = 0.2
UNPLACEABLE_SHARE = 0.03
P_INSPECT = 0.3
P_REINSPECT = 0.25
P_COMMUNITY = 0.45
P_DEPARTMENT = 0.15
P_ASSIGN_QUEUED = 0.6
FAR_INSPECTION_SHARE = 0.04
DISPATCHER_RESOLVES = 0.85


@dataclass
class SimulationReport:
    """What a simulation added."""

    start: date
    end: date
    registrations: int = 0
    sent_to_review: int = 0
    resolved: int = 0
    tasks_created: int = 0
    transitions: int = 0
    clues: int = 0
    campaign_tasks: int = 0
    days_skipped: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the terminal."""
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_status.items()))
        return (
            f"simulated {self.start} … {self.end} in {self.seconds:.0f} s: {self.registrations:,} registrations "
            f"({self.sent_to_review:,} to review, {self.resolved:,} resolved by dispatchers), "
            f"{self.tasks_created:,} tasks, {self.transitions:,} transitions, {self.clues:,} clues"
            + (f", {self.campaign_tasks:,} campaign tasks" if self.campaign_tasks else "")
            + (f"; {self.days_skipped} days were simulated before and left as they were" if self.days_skipped else "")
            + f"\ntasks now: {statuses}"
        )


@dataclass
class _City:
    addresses: list[Any]
    town_names: dict[str, str]
    community_names: dict[str, str]
    entity_count: int
    scopes: np.ndarray
    scope_weights: np.ndarray


def _load_city(conn: Connection) -> _City:
    addresses = conn.execute(
        text(
            "SELECT a.id, a.full_text, a.town_code, a.community_code, a.road_name, a.door_no, a.sub_no, a.village, "
            "a.lane, a.park, a.compound, a.phase, a.building, a.unit, a.floor, a.room, a.stall FROM address a "
            "WHERE a.status = 'active' AND a.level IN ('door', 'room') AND a.grid_code IS NOT NULL ORDER BY a.id"
        )
    ).all()
    towns, communities = place_names(conn)
    count = int(conn.execute(text("SELECT count(*) FROM entity WHERE status = 'open'")).scalar_one())
    catalogue = read_scope_catalogue()
    weights = catalogue["weight"].to_numpy(dtype=float)
    return _City(
        addresses=list(addresses),
        town_names=towns,
        community_names=communities,
        entity_count=max(count, 1000),
        scopes=catalogue["scope"].to_numpy(dtype=object),
        scope_weights=weights / weights.sum(),
    )


def _day_moment(day: date, rng: random.Random, start_hour: float = 8.5, end_hour: float = 17.5) -> datetime:
    seconds = rng.uniform(start_hour * 3600, end_hour * 3600)
    return datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI) + timedelta(seconds=seconds)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth for small means, normal approximation above: the counts only need to look right.
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(
    engine: Engine,
    geocoder: Callable[[], Geocoder],
    *,
    days: int = 30,
    end: date | None = None,
    seed: int = 20201101,
    progress: Callable[[date], None] | None = None,
    review_backlog_days: int = 0,
) -> SimulationReport:
    """Replay `days` days ending `end` (default yesterday, Asia/Shanghai), adding to what exists.

    With `review_backlog_days`, the dispatchers have not yet reached the registrations sent to review in the last
    that many days: they wait in the queue (what a demo's dispatcher resolves by hand).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = clock.now().astimezone(SHANGHAI).date()
    end = end or today - timedelta(days=1)
    if end >= today:
        raise ValueError(f"the simulation must end before today ({today}); got {end}")
    start = end - timedelta(days=days - 1)
    started = time.perf_counter()
    report = SimulationReport(start=start, end=end)
    with engine.connect() as conn:
        city = _load_city(conn)
    geo = geocoder()
    truth: dict[str, int] = {}
    day = start
    while day <= end:
        rng = random.Random(f"{seed}-{day.isoformat()}")
        with engine.begin() as conn:
            if _already_simulated(conn, day):
                report.days_skipped += 1
                day += timedelta(days=1)
                continue
            _registrations(conn, city, geo, day, rng, report, truth)
            backlog_from = end - timedelta(days=review_backlog_days - 1) if review_backlog_days > 0 else None
            _resolve_reviews(conn, geo, day, rng, report, truth, backlog_from=backlog_from)
            _field_work(conn, day, rng, report)
            _clues(conn, city, day, rng, report)
            if in_campaign_window(day):
                campaign = run_annual_report_campaign(conn, year=day.year, at=_day_moment(day, rng, 8.0, 8.5))
                report.campaign_tasks += campaign.added
            day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
            raise_warnings(conn, now=day_end - timedelta(seconds=1))
            conn.execute(
                text(
                    "INSERT INTO job_run (job, started_at, finished_at, result) "
                    "VALUES ('simulate_day', now(), now(), jsonb_build_object('day', CAST(:day AS text)))"
                ),
                {"day": day.isoformat()},
            )
        if progress is not None:
            progress(day)
        day += timedelta(days=1)
    with engine.connect() as conn:
        report.by_status = dict(conn.execute(text("SELECT status, count(*) FROM task GROUP BY status")).tuples().all())
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------------------------ registrations


def _already_simulated(conn: Connection, day: date) -> bool:
    """Whether this day was simulated before (logged in job_run): a day is simulated once, so reruns add nothing."""
    return (
        conn.execute(
            text("SELECT 1 FROM job_run WHERE job = 'simulate_day' AND result->>'day' = :day LIMIT 1"),
            {"day": day.isoformat()},
        ).first()
        is not None
    )


def _registrations(
    conn: Connection,
    city: _City,
    geo: Geocoder,
    day: date,
    rng: random.Random,
    report: SimulationReport,
    truth: dict[str, int],
) -> None:
    working = default_calendar().is_working_day(day)
    factor = 1.0 if working else WEEKEND_FACTOR
    events: list[tuple[RegistrationEvent, datetime]] = []
    sequence = 0

    def next_id() -> str:
        nonlocal sequence
        sequence += 1
        return f"sim-{day:%Y%m%d}-{sequence:05d}"

    np_rng = np.random.default_rng(rng.randrange(2**32))
    count = _poisson(rng, city.entity_count * NEW_PER_ENTITY_PER_DAY * factor)
    for event, address_id in _new_registrations(city, day, count, rng, np_rng, next_id):
        truth[event.event_id] = address_id
        events.append((event, event.occurred_at + _delay(rng)))
    for kind, rate in CHANGES_PER_ENTITY_PER_DAY.items():
        count = _poisson(rng, city.entity_count * rate * factor)
        if count == 0:
            continue
        targets = conn.execute(
            text(
                "SELECT uscc, name, business_scope, raw_address FROM entity WHERE status = 'open' "
                "ORDER BY md5(uscc || :salt) LIMIT :n"
            ),
            {"salt": f"{day}{kind}", "n": count},
        ).all()
        for target in targets:
            occurred = _day_moment(day, rng)
            address, scope = target.raw_address, target.business_scope
            if kind == "address_change":
                row = city.addresses[rng.randrange(len(city.addresses))]
                address = row.full_text
            elif kind == "scope_change":
                extra = str(np_rng.choice(city.scopes, p=city.scope_weights))
                scope = f"{scope}{SCOPE_SEPARATOR}{extra}" if extra not in scope else scope
            events.append(
                (
                    RegistrationEvent(next_id(), kind, target.uscc, target.name, address, scope, occurred),
                    occurred + _delay(rng),
                )
            )
    # Events of this day that exist already (an interrupted earlier run) are left as they are.
    existing = set(
        conn.execute(
            text("SELECT event_id FROM registration_event WHERE event_id = ANY(:ids)"),
            {"ids": [e.event_id for e, _ in events]},
        ).scalars()
    )
    events = [(e, at) for e, at in events if e.event_id not in existing]
    if not events:
        return
    accepted = accept_events(conn, [e for e, _ in events])
    fresh = {a.event_id for a in accepted if not a.duplicate}
    # The simulated registration system sent each event seconds after it occurred.
    conn.execute(
        text(
            "UPDATE registration_event SET received_at = occurred_at + interval '10 seconds' WHERE event_id = ANY(:ids)"
        ),
        {"ids": sorted(fresh)},
    )
    for event, at in sorted(events, key=lambda pair: pair[1]):
        if event.event_id not in fresh:
            continue
        with conn.begin_nested():
            result = process_events(conn, [event], geo, at=at)[0]
        report.registrations += 1
        report.tasks_created += len(result.task_ids) if event.kind == "new" else 0
        if result.outcome == "review":
            report.sent_to_review += 1
    conn.execute(
        text("UPDATE outbox SET relayed_at = now() WHERE relayed_at IS NULL AND payload->>'event_id' = ANY(:ids)"),
        {"ids": sorted(fresh)},
    )


def _new_registrations(
    city: _City,
    day: date,
    count: int,
    rng: random.Random,
    np_rng: np.random.Generator,
    next_id: Callable[[], str],
) -> list[tuple[RegistrationEvent, int]]:
    """New businesses at random doors, addresses typed as clerks type them; with the address each one meant."""
    out: list[tuple[RegistrationEvent, int]] = []
    for _ in range(count):
        row = city.addresses[rng.randrange(len(city.addresses))]
        town = city.town_names.get(row.town_code, "")
        community = city.community_names.get(row.community_code, "")
        if rng.random() < UNPLACEABLE_SHARE:
            raw = f"东莞市{town}{rng.choice(['市场旁边', '工业区内', '村口', '大道边铺位'])}"
        else:
            raw, _ = render_raw_address(row._mapping, town, community, rng)
        n_items = rng.choice([1, 1, 2, 2, 3])
        items = np_rng.choice(city.scopes, size=n_items, replace=False, p=city.scope_weights)
        scope = SCOPE_SEPARATOR.join(str(s) for s in items)
        kind = "individual" if rng.random() < 0.6 else "company"
        uscc = random_uscc(kind, day, rng)
        name = company_name(str(items[0]), rng) if kind == "company" else individual_name(str(items[0]), town, rng)
        event = RegistrationEvent(next_id(), "new", uscc, name, raw, scope, _day_moment(day, rng))
        out.append((event, int(row.id)))
    return out


def sample_registrations(conn: Connection, count: int, *, seed: int, prefix: str, day: date) -> list[RegistrationEvent]:
    """`count` new-registration events on `day` with ids `prefix-NNNNNN` (benchmarks and tests)."""
    city = _load_city(conn)
    rng = random.Random(f"{seed}-{prefix}")
    np_rng = np.random.default_rng(seed)
    sequence = iter(range(1, count + 1))
    pairs = _new_registrations(city, day, count, rng, np_rng, lambda: f"{prefix}-{next(sequence):06d}")
    return [event for event, _ in pairs]


def _delay(rng: random.Random) -> timedelta:
    return timedelta(seconds=rng.uniform(11, 60))


def _resolve_reviews(
    conn: Connection,
    geo: Geocoder,
    day: date,
    rng: random.Random,
    report: SimulationReport,
    truth: dict[str, int],
    *,
    backlog_from: date | None = None,
) -> None:
    """Dispatchers place yesterday's queued registrations (most of them) at the address the clerk meant; those of
    `backlog_from` on still wait."""
    items = conn.execute(
        text(
            "SELECT id, payload->>'event_id' AS event_id, created_at FROM review_queue "
            "WHERE kind = 'registration' AND resolved_at IS NULL AND payload->>'event_id' LIKE 'sim-%' ORDER BY id"
        )
    ).all()
    for item in items:
        address_id = truth.get(item.event_id)
        if address_id is None or rng.random() > DISPATCHER_RESOLVES:
            continue
        event_day = date(int(item.event_id[4:8]), int(item.event_id[8:10]), int(item.event_id[10:12]))
        if event_day >= day or (backlog_from is not None and event_day >= backlog_from):
            continue
        actor = Actor("sim:dispatcher", "dispatcher", CITY)
        try:
            with conn.begin_nested():
                resolve_review(
                    conn, item.id, actor=actor, geocoder=geo, address_id=address_id, at=_day_moment(day, rng, 9, 11)
                )
            report.resolved += 1
        except SupervisionError:
            continue


# ------------------------------------------------------------------------------------------------ field work


def _field_work(conn: Connection, day: date, rng: random.Random, report: SimulationReport) -> None:
    """Each open task may move today, by the rates in the module docstring."""
    working = default_calendar().is_working_day(day)
    factor = 1.0 if working else WEEKEND_FACTOR
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
    tasks = conn.execute(
        text(
            """
            SELECT t.id, t.status, t.version, t.worker_id, t.town_code, t.community_code, t.department_codes,
                   t.updated_at, t.kind, ST_X(COALESCE(e.geom, c.geom)) AS lon, ST_Y(COALESCE(e.geom, c.geom)) AS lat
            FROM task t LEFT JOIN entity e ON e.uscc = t.entity_uscc LEFT JOIN clue c ON c.id = t.clue_id
            WHERE t.status NOT IN ('closed', 'cancelled') AND t.updated_at < :day_end
            ORDER BY t.id
            """
        ),
        {"day_end": day_end - timedelta(hours=2)},
    ).all()
    for task in tasks:
        plan = _plan(task, rng, factor)
        if not plan:
            continue
        moment = max(_day_moment(day, rng, 8.5, 16.0), task.updated_at + timedelta(minutes=1))
        version = task.version
        for to, actor, with_position in plan:
            lon = lat = None
            if with_position and task.lon is not None:
                lon, lat = _near(task.lon, task.lat, rng)
            try:
                with conn.begin_nested():
                    moved = transition(
                        conn,
                        task.id,
                        Move(to=to, version=version, lon=lon, lat=lat, at=moment, note=_NOTES.get(to)),
                        actor=actor,
                    )
            except SupervisionError:
                break
            version = moved.version
            report.transitions += 1
            moment += timedelta(minutes=rng.uniform(5, 40))


_NOTES = {
    "inspected_ok": "实地核查：在营，地址与登记一致",
    "inspected_problem": "实地核查：发现问题",
    "notice_issued": "已下达整改通知书",
    "reinspected": "复查",
    "escalated_community": "网格内无法解决，上报村（社区）",
    "escalated_department": "按“谁审批、谁监管”转主管部门",
    "department_feedback": "部门已处理并反馈",
    "closed": "办结",
}


def _plan(task: Any, rng: random.Random, factor: float) -> list[tuple[str, Actor, bool]]:  # noqa: C901 - one day's plan of a task, drawn in a fixed order for the seed
    """The moves a task makes today (possibly none)."""
    # The task's worker acts within their own grid (a worker scope). A task whose worker was cleared when its entity
    # moved grids has no worker to act as: the simulation still works it, under the city's scope.
    worker_scope = CITY if task.worker_id is None else Scope("worker", str(task.worker_id), task.town_code)
    worker = Actor(f"sim:worker:{task.worker_id}", "grid_worker", worker_scope)
    dispatcher = Actor(f"sim:dispatcher:{task.community_code}", "dispatcher", CITY)
    departments = split_departments(task.department_codes) or ["market_supervision"]
    department = Actor(f"sim:department:{departments[0]}", "department_officer", CITY)
    status, roll = task.status, rng.random()
    if status == "pushed":
        return [("assigned", dispatcher, False)] if roll < P_ASSIGN_QUEUED * factor else []
    if status == "assigned":
        if roll >= P_INSPECT * factor:
            return []
        outcome = rng.random()
        problem_share = 0.35 if task.kind == "clue" else 0.11
        if outcome < 0.03:
            return [("escalated_community", worker, False)]
        if outcome < 0.03 + problem_share:
            return [("inspected_problem", worker, True), ("notice_issued", worker, False)]
        return [("inspected_ok", worker, True), ("closed", worker, False)]
    if status == "inspected_ok":
        return [("closed", worker, False)]
    if status == "inspected_problem":
        return [("notice_issued", worker, False)]
    if status == "notice_issued":
        if roll >= P_REINSPECT * factor:
            return []
        if rng.random() < 0.12:
            return [("reinspected", worker, True), ("escalated_community", worker, False)]
        return [("reinspected", worker, True), ("closed", worker, False)]
    if status == "reinspected":
        return [("closed", worker, False)]
    if status == "escalated_community":
        if roll >= P_COMMUNITY * factor:
            return []
        return [("escalated_department", dispatcher, False)] if rng.random() < 0.7 else [("closed", dispatcher, False)]
    if status == "escalated_department":
        if roll >= P_DEPARTMENT * factor:
            return []
        return [("department_feedback", department, False), ("closed", department, False)]
    if status == "department_feedback":
        return [("closed", department, False)]
    return []


def _near(lon: float, lat: float, rng: random.Random) -> tuple[float, float]:
    """Where the worker stood: usually within 60 m, now and then far off (flagged for review)."""
    distance_m = rng.uniform(250, 600) if rng.random() < FAR_INSPECTION_SHARE else rng.uniform(0, 60)
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance_m * math.cos(bearing) / 111_320
    dlon = distance_m * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


# ------------------------------------------------------------------------------------------------ clues


def _clues(conn: Connection, city: _City, day: date, rng: random.Random, report: SimulationReport) -> None:
    """Workers' field reports near existing businesses, in the high-frequency industries."""
    factor = 1.0 if default_calendar().is_working_day(day) else WEEKEND_FACTOR
    count = _poisson(rng, city.entity_count * CLUES_PER_ENTITY_PER_DAY * factor)
    if count == 0:
        return
    spots = conn.execute(
        text(
            "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity WHERE status = 'open' AND geom IS NOT NULL "
            "ORDER BY md5(uscc || :salt) LIMIT :n"
        ),
        {"salt": f"clue{day}", "n": count},
    ).all()
    industries = default_router().clue_industries()
    for spot in spots:
        lon, lat = _near(spot.lon, spot.lat, rng)
        industry = rng.choice(industries)
        clue = ClueReport(
            industry=industry,
            description=f"疑似无证经营（{industry}）",
            severity="severe" if rng.random() < 0.04 else "normal",
            lon=lon,
            lat=lat,
            reported_at=_day_moment(day, rng),
        )
        try:
            with conn.begin_nested():
                report_clue(conn, clue, actor=Actor("sim:worker", "grid_worker", CITY))
            report.clues += 1
        except SupervisionError:
            continue
