"""A city sets one worker's monthly field capacity from its own time study: every plan then divides by it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout
from gis.settings import DatabaseSettings
from planning.workload import load_standards, recommended_workers
from planning.workload_service import capacity_setting, city_standards, set_capacity, unit_workload
from supervision.errors import InvalidInput
from supervision.scope import CITY

pytestmark = pytest.mark.db


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction per story, rolled back."""
    with engine.connect() as connection, connection.begin() as tx:
        yield connection
        tx.rollback()


def _busiest_grid(conn: Connection) -> str:
    return str(
        conn.execute(
            text(
                "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "ORDER BY g.entity_count DESC, g.code LIMIT 1"
            )
        ).scalar_one()
    )


def test_without_a_setting_the_standards_files_capacity_applies(conn: Connection) -> None:
    assert capacity_setting(conn) is None
    assert city_standards(conn) == load_standards()


def test_a_smaller_capacity_recommends_more_workers_for_the_same_hours(conn: Connection) -> None:
    code = _busiest_grid(conn)
    before = unit_workload(conn, CITY, level="grid", code=code)
    set_capacity(conn, 0.05, source="工时测定（测试）", actor_name="user:admin")
    after = unit_workload(conn, CITY, level="grid", code=code)
    assert after.workload.hours == pytest.approx(before.workload.hours)
    assert after.recommended_workers == recommended_workers(after.workload.hours, city_standards(conn))
    assert after.recommended_workers > before.recommended_workers
    setting = capacity_setting(conn)
    assert setting is not None and setting.hours == 0.05 and setting.set_by == "user:admin"


def test_clearing_the_setting_goes_back_to_the_file(conn: Connection) -> None:
    set_capacity(conn, 3.0, source="决定", actor_name="cli:workload")
    assert city_standards(conn).field_hours_per_worker_month == 3.0
    set_capacity(conn, None, source="", actor_name="cli:workload")
    assert city_standards(conn).field_hours_per_worker_month == load_standards().field_hours_per_worker_month


@pytest.mark.parametrize(("hours", "source"), [(0.0, "依据"), (-2.0, "依据"), (5000.0, "依据"), (2.0, "  ")])
def test_a_capacity_without_sense_or_source_is_refused(conn: Connection, hours: float, source: str) -> None:
    with pytest.raises(InvalidInput):
        set_capacity(conn, hours, source=source, actor_name="cli:workload")
    assert capacity_setting(conn) is None


def test_the_command_line_shows_sets_and_refuses(db: DatabaseSettings) -> None:
    runner = CliRunner(env={"GRIDGOV_DATABASE_URL": db.database_url})
    shown = runner.invoke(app, ["workload", "capacity"])
    assert shown.exit_code == 0 and "默认值" in shown.output
    changed = runner.invoke(app, ["workload", "capacity", "--hours", "2.5", "--source", "2026 年工时测定"])
    assert changed.exit_code == 0 and "2.5 小时" in changed.output and "2026 年工时测定" in changed.output
    refused = runner.invoke(app, ["workload", "capacity", "--hours", "0"])
    assert refused.exit_code == 2 and "大于 0" in refused.output
    cleared = runner.invoke(app, ["workload", "capacity", "--clear"])
    assert cleared.exit_code == 0 and "默认值" in cleared.output
