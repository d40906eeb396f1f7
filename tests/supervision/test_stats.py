"""A town leader reads the supervision figures: completion, on-time, overdue with its culprits, clues, licensing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, event, text

from supervision.errors import InvalidInput, OutOfScope, StatsError, SupervisionError
from supervision.stats import (
    LEVELS,
    SEED_HEADLINE,
    Headline,
    StatsReport,
    StatsWindow,
    headline,
    stats_report,
    unit_stats,
)

pytestmark = pytest.mark.db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A month no synthetic data reaches, so every task and clue in it is one this module wrote.
SINCE = datetime(2031, 3, 1, tzinfo=SHANGHAI)
UNTIL = datetime(2031, 4, 1, tzinfo=SHANGHAI)
WINDOW = StatsWindow(since=SINCE, until=UNTIL)
NOW = datetime(2031, 4, 10, 12, tzinfo=SHANGHAI)


def day(n: int, hour: int = 9) -> datetime:
    """Day n of the window at the given hour, Shanghai time."""
    return SINCE + timedelta(days=n - 1, hours=hour)


@dataclass(frozen=True)
class Place:
    """A grid with a worker, and its community and town."""

    grid_code: str
    community_code: str
    town_code: str
    worker_id: int
    uscc: str


@dataclass(frozen=True)
class City:
    """The two places this module's tasks and clues were written in."""

    here: Place
    elsewhere: Place


def place(conn: Connection, *, not_in_town: str | None = None) -> Place:
    row = conn.execute(
        text(
            """
            SELECT g.code, g.community_code, g.town_code, w.id AS worker_id, e.uscc
            FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            JOIN worker w ON w.grid_code = g.code AND w.active
            JOIN entity e ON e.grid_code = g.code
            WHERE g.town_code IS DISTINCT FROM :town
            ORDER BY g.code, w.id, e.uscc LIMIT 1
            """
        ),
        {"town": not_in_town},
    ).one()
    return Place(row.code, row.community_code, row.town_code, row.worker_id, row.uscc)


def add_task(conn: Connection, p: Place, *, status: str, departments: str, due_at: datetime | None) -> int:
    return int(
        conn.execute(
            text(
                """
                INSERT INTO task (kind, duty, entity_uscc, town_code, community_code, grid_code, worker_id,
                                  department_codes, status, pushed_at, due_at, holder)
                VALUES ('task', 'licence_check', :uscc, :town, :community, :grid, :worker, :departments, :status,
                        :pushed_at, :due_at, :holder)
                RETURNING id
                """
            ),
            {
                "uscc": p.uscc,
                "town": p.town_code,
                "community": p.community_code,
                "grid": p.grid_code,
                "worker": p.worker_id,
                "departments": departments,
                "status": status,
                "pushed_at": day(1),
                "due_at": due_at,
                "holder": f"worker:{p.worker_id}" if status not in ("closed", "cancelled") else None,
            },
        ).scalar_one()
    )


def add_events(conn: Connection, task_id: int, trail: list[tuple[str, datetime, str | None, datetime | None]]) -> None:
    """The task's history: (to_status, at, holder after it, deadline in force after it)."""
    previous = None
    for to_status, at, holder, due_at in trail:
        conn.execute(
            text(
                "INSERT INTO task_event (task_id, from_status, to_status, actor, at, holder, due_at) "
                "VALUES (:task, :from_status, :to_status, 'test', :at, :holder, :due_at)"
            ),
            {
                "task": task_id,
                "from_status": previous,
                "to_status": to_status,
                "at": at,
                "holder": holder,
                "due_at": due_at,
            },
        )
        previous = to_status


def add_clue(conn: Connection, p: Place, *, status: str, department: str) -> None:
    conn.execute(
        text(
            """
            INSERT INTO clue (industry, status, reported_at, town_code, grid_code, geom, department_code)
            SELECT '烟草制品零售', :status, :at, :town, g.code, ST_PointOnSurface(g.geom), :department
            FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' WHERE g.code = :grid
            """
        ),
        {"status": status, "at": day(3), "town": p.town_code, "grid": p.grid_code, "department": department},
    )


@pytest.fixture(scope="module")
def city(engine: Engine) -> City:
    """In one grid: a task closed in time, one closed late, one cancelled, one open and overdue; five clues."""
    with engine.begin() as conn:
        here = place(conn)
        elsewhere = place(conn, not_in_town=here.town_code)
        worker, grid = f"worker:{here.worker_id}", f"grid:{here.grid_code}"

        in_time = add_task(conn, here, status="closed", departments="tobacco", due_at=None)
        add_events(
            conn,
            in_time,
            [
                ("pushed", day(1), grid, day(11, 23)),
                ("assigned", day(1, 10), worker, day(11, 23)),
                ("inspected_ok", day(3), worker, day(11, 23)),
                ("closed", day(4), None, None),
            ],
        )
        late = add_task(conn, here, status="closed", departments="tobacco,market_supervision", due_at=None)
        add_events(
            conn,
            late,
            [
                ("pushed", day(1), grid, day(5, 23)),
                ("assigned", day(1, 10), worker, day(5, 23)),
                ("inspected_problem", day(7), worker, day(20, 23)),  # two days after the first deadline
                ("closed", day(8), None, None),
            ],
        )
        cancelled = add_task(conn, here, status="cancelled", departments="market_supervision", due_at=None)
        add_events(conn, cancelled, [("pushed", day(1), grid, day(11, 23)), ("cancelled", day(2), None, None)])
        # Waited three days unassigned past its deadline (the grid's fault), then sat with the worker until now.
        overdue = add_task(conn, here, status="assigned", departments="market_supervision", due_at=day(4, 0))
        add_events(conn, overdue, [("pushed", day(1), grid, day(4, 0)), ("assigned", day(7, 0), worker, day(4, 0))])

        far = add_task(conn, elsewhere, status="closed", departments="culture", due_at=None)
        add_events(conn, far, [("pushed", day(1), grid, day(11, 23)), ("closed", day(2), None, None)])

        for status in ("closed", "closed", "closed", "pushed", "cancelled"):
            add_clue(conn, here, status=status, department="tobacco")
        add_clue(conn, elsewhere, status="pushed", department="culture")
    return City(here, elsewhere)


def grid_figures(conn: Connection, city: City) -> StatsReport:
    out = unit_stats(conn, level="grid", code=city.here.grid_code, window=WINDOW, now=NOW)
    assert [u.code for u in out.units] == [city.here.grid_code]
    return out.units[0]


def test_completion_counts_cancelled_tasks_out_and_late_tasks_are_not_on_time(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        unit = grid_figures(conn, city)
    assert unit.tasks_pushed == 4 and unit.tasks_cancelled == 1 and unit.tasks_completed == 2
    assert unit.completion_rate == round(2 / 3, 4)
    assert unit.tasks_on_time == 1 and unit.on_time_rate == 0.5
    assert unit.open_overdue == 1


def test_the_overdue_list_blames_each_holder_for_the_time_they_held_it(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        out = unit_stats(conn, level="community", code=city.here.community_code, window=WINDOW, now=NOW)
    [item] = out.overdue
    assert item.grid_code == city.here.grid_code and item.entity_uscc == city.here.uscc
    assert item.duty == "licence_check" and item.holder == f"worker:{city.here.worker_id}"
    assert item.overdue_days == round((NOW - day(4, 0)).total_seconds() / 86400, 1)
    blame = {a.holder: a.overdue_seconds for a in item.attribution}
    assert blame == {
        f"grid:{city.here.grid_code}": 3 * 86400,
        f"worker:{city.here.worker_id}": round((NOW - day(7, 0)).total_seconds()),
    }
    assert item.attribution[0].holder == f"worker:{city.here.worker_id}", "the largest share comes first"


def test_clue_handling_leaves_cancelled_clues_out(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        unit = grid_figures(conn, city)
    assert unit.clues_reported == 5 and unit.clues_handled == 3
    assert unit.clue_handling_rate == 0.75


def test_licensing_rate_is_the_share_of_entities_needing_a_licence_that_hold_one(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        town = unit_stats(conn, level="town", code=city.here.town_code, window=WINDOW, now=NOW).units[0]
        needing, licensed = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE uscc IN (SELECT uscc FROM entity_licence)) "
                "FROM entity WHERE status = 'open' AND needs_licence AND town_code = :town"
            ),
            {"town": city.here.town_code},
        ).one()
        everyone = headline(conn, window=WINDOW)
        city_share = conn.execute(
            text(
                "SELECT round(avg((uscc IN (SELECT uscc FROM entity_licence))::int), 4) "
                "FROM entity WHERE status = 'open' AND needs_licence"
            )
        ).scalar_one()
    assert needing > 0
    assert (town.entities_needing_licence, town.entities_licensed) == (needing, licensed)
    assert town.licensing_rate == round(licensed / needing, 4)
    assert everyone.licensing_rate == float(city_share)
    assert 0.6 < everyone.licensing_rate < 0.9, "the synthetic city licenses about three in four"


def test_the_headline_gives_the_seed_systems_three_figures_from_our_data(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        figures = headline(conn, window=WINDOW)
    # Five tasks pushed in the month (one cancelled, three closed); six clues (one cancelled, three closed).
    assert figures.completion_rate == 0.75
    assert figures.clue_handling_rate == 0.6
    assert figures.seed_reported == {
        "completion_rate": 0.9916,
        "clue_handling_rate": 0.971,
        "licensing_rate": 0.7569,
    }


def _town_totals_headline(conn: Connection, town_codes: frozenset[str] | None) -> Headline:
    totals = unit_stats(conn, level="town", code=None, window=WINDOW, town_codes=town_codes, now=NOW).totals
    return Headline(totals.completion_rate, totals.clue_handling_rate, totals.licensing_rate, dict(SEED_HEADLINE))


def test_the_report_carries_the_headline_of_the_callers_towns_whatever_it_lists(engine: Engine, city: City) -> None:
    mine = frozenset({city.here.town_code})
    asked = [
        ("town", None),
        ("town", city.here.town_code),
        ("community", None),
        ("community", city.here.community_code),
        ("grid", None),
        ("grid", city.here.grid_code),
        ("department", None),
        ("department", "tobacco"),
    ]
    with engine.connect() as conn:
        for towns in (None, mine):
            expected = _town_totals_headline(conn, towns)
            assert headline(conn, window=WINDOW, town_codes=towns) == expected
            for level, code in asked:
                report = stats_report(conn, level=level, code=code, window=WINDOW, town_codes=towns, now=NOW)
                assert report.headline == expected, (level, code, towns)
                alone = unit_stats(conn, level=level, code=code, window=WINDOW, town_codes=towns, now=NOW)
                assert report.units == alone.units and report.totals == alone.totals
                assert report.overdue == alone.overdue


def test_a_report_over_every_unit_of_a_level_takes_its_headline_from_its_own_totals(engine: Engine, city: City) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", count)
        unit_stats(conn, level="town", code=None, window=WINDOW, now=NOW)
        alone = len(statements)
        statements.clear()
        stats_report(conn, level="town", code=None, window=WINDOW, now=NOW)
        event.remove(conn, "before_cursor_execute", count)
    assert len(statements) == alone


def test_a_leader_sees_only_their_own_towns(engine: Engine, city: City) -> None:
    mine = frozenset({city.here.town_code})
    with engine.connect() as conn:
        towns = unit_stats(conn, level="town", code=None, window=WINDOW, town_codes=mine, now=NOW)
        grids = unit_stats(conn, level="grid", code=None, window=WINDOW, town_codes=mine, now=NOW)
        whole = unit_stats(conn, level="town", code=None, window=WINDOW, now=NOW)
        with pytest.raises(OutOfScope):
            unit_stats(conn, level="grid", code=city.elsewhere.grid_code, window=WINDOW, town_codes=mine, now=NOW)
    assert [u.code for u in towns.units] == [city.here.town_code]
    assert towns.totals.tasks_pushed == 4
    assert {u.code[:9] for u in grids.units} == {city.here.town_code[:9]}
    assert city.here.grid_code in {u.code for u in grids.units}
    assert city.elsewhere.grid_code not in {u.code for u in grids.units}
    assert len(whole.units) == 33, "every town is listed, even one with nothing to report"
    assert whole.totals.tasks_pushed == 5


def test_a_department_counts_only_the_tasks_routed_to_it(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        tobacco = unit_stats(conn, level="department", code="tobacco", window=WINDOW, now=NOW)
        market = unit_stats(conn, level="department", code="market_supervision", window=WINDOW, now=NOW)
        every = unit_stats(conn, level="department", code=None, window=WINDOW, now=NOW)
    [t] = tobacco.units
    assert t.name == "东莞市烟草专卖局"
    assert (t.tasks_pushed, t.tasks_completed, t.tasks_on_time, t.open_overdue) == (2, 2, 1, 0)
    assert t.completion_rate == 1.0 and t.on_time_rate == 0.5
    assert (t.clues_reported, t.clues_handled) == (5, 3)
    assert tobacco.overdue == []
    [m] = market.units
    assert (m.tasks_pushed, m.tasks_cancelled, m.tasks_completed, m.open_overdue) == (3, 1, 1, 1)
    assert [o.holder for o in market.overdue] == [f"worker:{city.here.worker_id}"]
    by_code = {u.code: u for u in every.units}
    assert by_code["culture"].tasks_pushed == 1 and by_code["health"].tasks_pushed == 0
    for u in every.units:
        assert u.entities_licensed <= u.entities_needing_licence
    assert t.entities_needing_licence > 0 and 0.5 < t.licensing_rate < 1


def test_department_licensing_over_the_city_is_quick(engine: Engine, city: City) -> None:
    with engine.connect() as conn:
        started = time.perf_counter()
        unit_stats(conn, level="department", code=None, window=WINDOW, now=NOW)
        elapsed_s = time.perf_counter() - started
    # 15,000 entities here; the demo city's 135,000 must stay under 3 s, so this must take well under 0.3 s.
    assert elapsed_s < 0.5


@pytest.mark.parametrize(
    ("level", "code", "window"),
    [
        ("district", None, WINDOW),
        ("town", None, StatsWindow(since=UNTIL, until=SINCE)),
        ("town", "441900999000", WINDOW),
        ("department", "no_such_department", WINDOW),
        ("town", None, StatsWindow(since=SINCE.replace(tzinfo=None), until=UNTIL.replace(tzinfo=None))),
    ],
)
def test_a_request_that_cannot_be_answered_is_refused(
    engine: Engine, level: str, code: str | None, window: StatsWindow
) -> None:
    with engine.connect() as conn, pytest.raises(StatsError) as refused:
        unit_stats(conn, level=level, code=code, window=window, now=NOW)
    assert isinstance(refused.value, InvalidInput) and isinstance(refused.value, SupervisionError)
    assert refused.value.field in ("level", "code", "from", "to")
    assert "department" in LEVELS
