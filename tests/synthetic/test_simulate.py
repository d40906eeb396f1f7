"""A month of simulated supervision gives the dashboard and the statistics a realistic history."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text

from address_library.service import Geocoder
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.stats import StatsWindow, unit_stats
from synthetic.simulate import SHANGHAI, SimulationReport, simulate

pytestmark = pytest.mark.db

END = date(2026, 11, 13)
DAYS = 21


@pytest.fixture(scope="module")
def simulated(db: DatabaseSettings) -> tuple[SimulationReport, SimulationReport]:
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    first = simulate(engine, lambda: geocoder, days=DAYS, end=END, seed=5)
    again = simulate(engine, lambda: geocoder, days=DAYS, end=END, seed=5)
    engine.dispose()
    return first, again


def test_the_simulation_is_realistic_most_on_time_some_overdue_some_escalated(
    db: DatabaseSettings, simulated: tuple[SimulationReport, SimulationReport]
) -> None:
    first, _ = simulated
    assert first.registrations > 50 and first.clues > 10 and first.transitions > first.registrations
    engine = make_engine(db)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM task GROUP BY status")).tuples().all())
        escalated = conn.execute(
            text("SELECT count(DISTINCT task_id) FROM task_event WHERE to_status = 'escalated_community'")
        ).scalar_one()
        late = conn.execute(
            text("SELECT count(DISTINCT task_id) FROM task_warning WHERE level = 'overdue'")
        ).scalar_one()
        flagged = conn.execute(text("SELECT count(*) FROM task_event WHERE flagged")).scalar_one()
        actors = {a for (a,) in conn.execute(text("SELECT DISTINCT split_part(actor, ':', 1) FROM task_event"))}
        window = StatsWindow(
            since=datetime.combine(END - timedelta(days=DAYS - 1), time(), SHANGHAI),
            until=datetime.combine(END + timedelta(days=1), time(), SHANGHAI),
        )
        totals = unit_stats(conn, level="town", code=None, window=window).totals
    engine.dispose()
    assert statuses.get("closed", 0) > sum(statuses.values()) / 2
    assert escalated > 0 and late > 0 and flagged > 0
    assert actors <= {"system", "sim"}, "simulated work is labelled as such in the audit trail"
    assert 0.9 <= totals.on_time_rate <= 1.0
    assert totals.completion_rate > 0.5


def test_replaying_the_same_days_adds_nothing(
    db: DatabaseSettings, simulated: tuple[SimulationReport, SimulationReport]
) -> None:
    first, again = simulated
    assert again.registrations == 0 and again.transitions == 0 and again.days_skipped == DAYS


def test_a_simulation_cannot_end_today_or_later(db: DatabaseSettings) -> None:
    engine = make_engine(db)
    with pytest.raises(ValueError, match="must end before today"):
        simulate(engine, lambda: None, days=1, end=clock.now().astimezone(SHANGHAI).date() + timedelta(days=1))  # type: ignore[arg-type,return-value]
    engine.dispose()


def test_a_review_backlog_leaves_the_last_days_items_for_the_dispatchers(
    db: DatabaseSettings, simulated: tuple[SimulationReport, SimulationReport]
) -> None:
    """`make run`'s demo keeps the last days' unplaceable registrations in the queue, for a dispatcher to resolve."""
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    later_end, backlog = END + timedelta(days=8), 4
    simulate(engine, lambda: geocoder, days=8, end=later_end, seed=5, review_backlog_days=backlog)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT substr(payload->>'event_id', 5, 8) AS day, resolved_at IS NOT NULL AS resolved "
                "FROM review_queue WHERE kind = 'registration' AND payload->>'event_id' LIKE 'sim-%'"
            )
        ).all()
    engine.dispose()
    first_waiting = (later_end - timedelta(days=backlog - 1)).strftime("%Y%m%d")
    waiting = [r for r in rows if r.day >= first_waiting]
    assert waiting and not any(r.resolved for r in waiting)
    assert any(r.resolved for r in rows if r.day < first_waiting)
