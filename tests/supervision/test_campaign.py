"""From March to June the grid urges every open entity that has not filed last year's annual report, once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Connection, Engine, text

from supervision.campaign import in_campaign_window, run_annual_report_campaign

pytestmark = pytest.mark.db

YEAR = 2026
UNFILED_SQL = """
    SELECT e.uscc FROM entity e
    JOIN grid g ON g.code = e.grid_code JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
    WHERE e.status = 'open' AND e.registered_on < :first_day
      AND (e.annual_report_filed_on IS NULL OR e.annual_report_filed_on < :first_day)
"""


@pytest.fixture(scope="module")
def people(engine: Engine) -> dict[str, str]:
    """Four entities of one grid, set up as a late filer, a filer, a newcomer and a closed business."""
    with engine.begin() as conn:
        usccs = conn.execute(
            text("SELECT uscc FROM entity WHERE status = 'open' AND grid_code IN "
                 "(SELECT grid_code FROM worker WHERE active) ORDER BY uscc LIMIT 4")
        ).scalars().all()  # fmt: skip
        roles = dict(zip(("late", "filer", "newcomer", "closed"), usccs, strict=True))
        for role, registered, filed, status in (
            ("late", date(2019, 5, 1), date(2025, 4, 2), "open"),  # filed for 2024, not yet for 2025
            ("filer", date(2019, 5, 1), date(2026, 3, 15), "open"),
            ("newcomer", date(2026, 2, 1), None, "open"),  # files for 2026 only in 2027
            ("closed", date(2019, 5, 1), None, "closed"),
        ):
            conn.execute(
                text("UPDATE entity SET registered_on = :r, annual_report_filed_on = :f, status = :s WHERE uscc = :u"),
                {"r": registered, "f": filed, "s": status, "u": roles[role]},
            )
    return roles


def campaign_tasks(conn: Connection) -> dict[str, tuple[str, str, int | None, str]]:
    rows = conn.execute(
        text("SELECT entity_uscc, grid_code, worker_id, status FROM task WHERE duty = 'annual_report' "
             "AND campaign = :c"),
        {"c": f"annual_report:{YEAR}"},
    ).all()  # fmt: skip
    assert len(rows) == len({r.entity_uscc for r in rows}), "an entity was urged twice"
    return {r.entity_uscc: (r.grid_code, r.status, r.worker_id, r.entity_uscc) for r in rows}


def test_every_open_entity_that_has_not_filed_gets_one_annual_report_task_and_a_rerun_adds_nothing(
    engine: Engine, people: dict[str, str]
) -> None:
    with engine.connect() as conn:
        expected = set(conn.execute(text(UNFILED_SQL), {"first_day": date(YEAR, 1, 1)}).scalars())
    assert people["late"] in expected and len(expected) > 100
    with engine.begin() as conn:
        report = run_annual_report_campaign(conn, year=YEAR)
    assert (report.year, report.unfiled, report.added) == (YEAR, len(expected), len(expected))
    with engine.connect() as conn:
        tasks = campaign_tasks(conn)
        assert set(tasks) == expected
        assert people["late"] in tasks
        assert not {people["filer"], people["newcomer"], people["closed"]} & set(tasks)
        # Each task lies in its entity's grid and went to a worker of that grid.
        misplaced = conn.execute(
            text(
                "SELECT count(*) FROM task t JOIN entity e ON e.uscc = t.entity_uscc "
                "LEFT JOIN worker w ON w.id = t.worker_id "
                "WHERE t.campaign = :c AND (t.grid_code <> e.grid_code OR (t.worker_id IS NOT NULL "
                "AND (w.grid_code <> t.grid_code OR NOT w.active)))"
            ),
            {"c": f"annual_report:{YEAR}"},
        ).scalar_one()
        assert misplaced == 0
        assert {status for _, status, _, _ in tasks.values()} <= {"assigned", "pushed"}
        assert sum(1 for _, status, _, _ in tasks.values() if status == "assigned") > 0.9 * len(tasks)

    with engine.begin() as conn:
        again = run_annual_report_campaign(conn, year=YEAR)
    assert (again.unfiled, again.added) == (len(expected), 0)
    with engine.connect() as conn:
        assert campaign_tasks(conn) == tasks


def test_the_campaign_runs_from_march_to_june() -> None:
    assert [in_campaign_window(date(YEAR, m, d)) for m, d in ((2, 28), (3, 1), (6, 30), (7, 1))] == [
        False, True, True, False,
    ]  # fmt: skip
