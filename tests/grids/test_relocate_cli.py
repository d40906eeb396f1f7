"""After a grid change, a territory officer re-locates every address and entity with `gridgov grids relocate`:
the database ends the same with and without a Dask cluster, a second run moves nothing, and a cluster that cannot
be reached stops the command before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db

# What relocation decides, as a user sees it: every address's and entity's grid, and the grids' counts.
STATE_SQL = {
    "address": "SELECT md5(string_agg(id::text || ':' || coalesce(grid_code, '-'), ',' ORDER BY id)) FROM address",
    "entity": "SELECT md5(string_agg(uscc || ':' || coalesce(grid_code, '-'), ',' ORDER BY uscc)) FROM entity",
    "grid": "SELECT md5(string_agg(concat_ws(':', version_id, code, address_count, entity_count, workload), ','"
    " ORDER BY version_id, code)) FROM grid",
}
# A grid change: the lowest-coded grid of a pair of neighbours grows over its neighbour, whose points (covered by
# both now) go to the lower code; and a tenth of the addresses and entities lost their grid.
GRID_CHANGE = [
    """
    WITH pair AS (
      SELECT a.code AS grower, b.code AS covered FROM grid a JOIN grid b ON a.version_id = b.version_id
      JOIN grid_version v ON v.id = a.version_id AND v.status = 'active'
      WHERE a.code < b.code AND ST_Touches(a.geom, b.geom) AND ST_Dimension(ST_Intersection(a.geom, b.geom)) = 1
      ORDER BY a.code, b.code LIMIT 1)
    UPDATE grid g SET geom = ST_Multi(ST_Union(g.geom, (SELECT geom FROM grid WHERE code = pair.covered
                                                        AND version_id = g.version_id)))
    FROM pair WHERE g.code = pair.grower
      AND g.version_id = (SELECT id FROM grid_version WHERE status = 'active')
    """,
    "UPDATE address SET grid_code = NULL WHERE id % 10 = 3",
    "UPDATE entity SET grid_code = NULL WHERE right(uscc, 1) IN ('3', 'A')",
]


def run_cli(settings: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this database, as a user would from a shell."""
    return CliRunner().invoke(
        app, list(args), env={"GRIDGOV_DATABASE_URL": settings.database_url, "GRIDGOV_DASK_SCHEDULER": ""}
    )


def state(settings: DatabaseSettings) -> dict[str, str]:
    """Checksums of the grid of every address and entity, and of the grid counts."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        out = {table: str(conn.execute(text(query)).scalar_one()) for table, query in STATE_SQL.items()}
    engine.dispose()
    return out


def changed_city(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A clone of the template city after a grid change whose points are not re-located yet."""
    name = f"rel_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    engine = make_engine(settings)
    with engine.begin() as conn:
        for statement in GRID_CHANGE:
            conn.execute(text(statement))
    engine.dispose()
    yield settings
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def city_alone(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    yield from changed_city(pg_cluster, template_city)


@pytest.fixture(scope="module")
def city_on_cluster(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    yield from changed_city(pg_cluster, template_city)


def test_a_dry_run_counts_the_moves_and_writes_nothing(city_alone: DatabaseSettings) -> None:
    before = state(city_alone)
    result = run_cli(city_alone, "grids", "relocate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would move" in result.output
    assert state(city_alone) == before


def test_the_database_ends_the_same_with_and_without_the_cluster(
    city_alone: DatabaseSettings, city_on_cluster: DatabaseSettings, dask_scheduler: str
) -> None:
    assert state(city_alone) == state(city_on_cluster)
    alone = run_cli(city_alone, "grids", "relocate")
    together = run_cli(city_on_cluster, "grids", "relocate", "--scheduler", dask_scheduler)
    assert alone.exit_code == 0, alone.output
    assert together.exit_code == 0, together.output
    assert alone.output == together.output
    assert state(city_alone) == state(city_on_cluster)
    # The towns' lines name how many moved: the grid change and the lost grids are all put right.
    assert "moved 0 addresses" not in alone.output
    assert "town" in alone.output


def test_every_address_is_in_the_grid_postgis_puts_it_in_and_counts_follow(city_on_cluster: DatabaseSettings) -> None:
    engine = make_engine(city_on_cluster)
    with engine.connect() as conn:
        wrong = conn.execute(
            text(
                "SELECT count(*) FROM address a WHERE a.grid_code IS DISTINCT FROM ("
                " SELECT min(g.code) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                " WHERE ST_Covers(g.geom, a.geom))"
            )
        ).scalar_one()
        stale_counts = conn.execute(
            text(
                "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE g.address_count <> (SELECT count(*) FROM address a WHERE a.grid_code = g.code)"
            )
        ).scalar_one()
    engine.dispose()
    assert wrong == 0
    assert stale_counts == 0


def test_a_second_run_moves_nothing(city_on_cluster: DatabaseSettings, dask_scheduler: str) -> None:
    before = state(city_on_cluster)
    result = run_cli(city_on_cluster, "grids", "relocate", "--scheduler", dask_scheduler)
    assert result.exit_code == 0, result.output
    assert "moved 0 addresses, 0 entities" in result.output
    assert state(city_on_cluster) == before


def test_an_unreachable_scheduler_stops_before_anything_is_written(city_alone: DatabaseSettings) -> None:
    engine = make_engine(city_alone)
    with engine.begin() as conn:
        conn.execute(text("UPDATE address SET grid_code = NULL WHERE id % 10 = 7"))
    engine.dispose()
    before = state(city_alone)
    result = run_cli(city_alone, "grids", "relocate", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert state(city_alone) == before


def test_an_unknown_version_is_refused(city_alone: DatabaseSettings) -> None:
    result = run_cli(city_alone, "grids", "relocate", "--version", "987654")
    assert result.exit_code == 2
    assert "there is no grid version 987654" in result.output


def test_without_a_scheduler_dask_is_never_imported(city_alone: DatabaseSettings) -> None:
    program = (
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "sys.modules['distributed'] = None\n"
        "from api.cli import app\n"
        "app(['grids', 'relocate', '--dry-run'])\n"
    )
    environment = {**os.environ, "GRIDGOV_DATABASE_URL": city_alone.database_url}
    environment.pop("GRIDGOV_DASK_SCHEDULER", None)
    done = subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "would move" in done.stdout


def _misplaced(settings: DatabaseSettings) -> int:
    """Addresses whose grid is not the one PostGIS puts them in (the lowest code of the active grids covering them)."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        wrong = conn.execute(
            text(
                "SELECT count(*) FROM address a WHERE a.grid_code IS DISTINCT FROM ("
                " SELECT min(g.code) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                " WHERE ST_Covers(g.geom, a.geom))"
            )
        ).scalar_one()
    engine.dispose()
    return int(wrong)


def test_a_grid_change_between_two_runs_on_the_same_cluster_is_seen_by_the_second(
    pg_cluster: LocalCluster, template_city: str, dask_scheduler: str
) -> None:
    # The workers keep their locators between jobs: the second run must not locate against the grids of the first.
    name = f"rel_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    try:
        first = run_cli(settings, "grids", "relocate", "--scheduler", dask_scheduler)
        assert first.exit_code == 0, first.output
        assert _misplaced(settings) == 0
        engine = make_engine(settings)
        with engine.begin() as conn:
            conn.execute(text(GRID_CHANGE[0]))
        engine.dispose()
        assert _misplaced(settings) > 0  # the change moves addresses: the grown grid now covers its neighbour's
        second = run_cli(settings, "grids", "relocate", "--scheduler", dask_scheduler)
        assert second.exit_code == 0, second.output
        assert _misplaced(settings) == 0
    finally:
        pg_cluster.drop_database(name)


def test_a_version_that_is_not_the_active_one_is_only_counted(city_alone: DatabaseSettings) -> None:
    engine = make_engine(city_alone)
    with engine.begin() as conn:
        draft = conn.execute(
            text("INSERT INTO grid_version (name, status) VALUES ('relocate-draft', 'draft') RETURNING id")
        ).scalar_one()
        # A draft holding one grid of the active version: written, it would put most rows in no grid.
        conn.execute(
            text(
                "INSERT INTO grid (version_id, code, name, town_code, community_code, area_m2, geom) "
                "SELECT :draft, g.code, g.name, g.town_code, g.community_code, g.area_m2, g.geom FROM grid g "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' ORDER BY g.code LIMIT 1"
            ),
            {"draft": draft},
        )
    engine.dispose()
    before = state(city_alone)
    refused = run_cli(city_alone, "grids", "relocate", "--version", str(draft))
    assert refused.exit_code == 2
    assert f"grid version {draft} is not the active one" in refused.output
    assert "Traceback" not in refused.output
    assert state(city_alone) == before
    counted = run_cli(city_alone, "grids", "relocate", "--version", str(draft), "--dry-run")
    assert counted.exit_code == 0, counted.output
    assert f"grid version {draft}: would move" in counted.output
    assert state(city_alone) == before


def test_a_point_moved_while_a_relocation_runs_waits_for_it(city_alone: DatabaseSettings) -> None:
    from sqlalchemy.exc import OperationalError

    from supervision.relocation import relocate_version

    relocating = make_engine(city_alone)
    moving = make_engine(city_alone)
    with relocating.connect() as conn, conn.begin() as transaction:
        relocate_version(conn)  # not committed yet: the rows it read and wrote are its own until then
        with moving.connect() as other, pytest.raises(OperationalError, match="lock"):
            other.execute(text("SET lock_timeout = '200ms'"))
            other.execute(
                text("UPDATE address SET geom = ST_Translate(geom, 0.001, 0) WHERE id = (SELECT min(id) FROM address)")
            )
        transaction.rollback()
    relocating.dispose()
    moving.dispose()


def test_after_a_relocation_a_grid_import_moves_no_entity(pg_cluster: LocalCluster, template_city: str) -> None:
    from supervision.territory import relocate_community_points

    name = f"rel_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    try:
        engine = make_engine(settings)
        with engine.begin() as conn:
            # Entities registered in another grid than their address's (a shop's pin beside its building).
            conn.execute(
                text(
                    "UPDATE entity e SET geom = ST_Translate(a.geom, 0.01, 0.01) FROM address a "
                    "WHERE a.id = e.address_id AND right(e.uscc, 1) IN ('1', '2')"
                )
            )
        result = run_cli(settings, "grids", "relocate")
        assert result.exit_code == 0, result.output
        relocated = state(settings)
        with engine.begin() as conn:
            active = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one()
            communities = conn.execute(text("SELECT code FROM community")).scalars().all()
            relocate_community_points(conn, active, communities)  # what `gridgov grids import` runs
        engine.dispose()
        assert state(settings) == relocated
    finally:
        pg_cluster.drop_database(name)
