"""An operator looks after the database with `gridgov db`: status, migrate, url, check, up and down."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate
from gis.cluster import LocalCluster, free_port
from gis.settings import DatabaseSettings, redact_url

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def blank_db(pg_cluster: LocalCluster) -> Iterator[DatabaseSettings]:
    """A new database with PostGIS and no schema yet, as on a first install."""
    name = f"cli_{uuid.uuid4().hex[:12]}"
    assert pg_cluster.create_database(name)
    yield DatabaseSettings(database_url=pg_cluster.url(name))
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def head(blank_db: DatabaseSettings) -> str:
    """The newest revision among the packaged migrations."""
    revision = ScriptDirectory.from_config(migrate.alembic_config(blank_db)).get_current_head()
    assert revision is not None
    return revision


def gridgov(*args: str, url: str | None) -> Result:
    """Run `gridgov ARGS` with GRIDGOV_DATABASE_URL set to `url` (unset when None)."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": url})


def table_names(settings: DatabaseSettings) -> set[str]:
    with psycopg.connect(settings.libpq_url()) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'synthetic')"
        ).fetchall()
    return {row[0] for row in rows}


def test_status_of_a_new_database_says_up_without_a_schema_then_migrate_brings_it_to_head(
    blank_db: DatabaseSettings, head: str
) -> None:
    url = blank_db.database_url

    status = gridgov("db", "status", url=url)
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[0] == f"up: {redact_url(url)} schema revision none"
    # On a server that is not ours, the platform's role cannot read pg_hba; status says so rather than guess.
    assert "pg_hba rules not visible to this role" in status.stdout

    first = gridgov("db", "migrate", url=url)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "schema at head"
    tables = table_names(blank_db)
    assert {"public.town", "public.community", "public.grid", "synthetic.demo_load"} <= tables

    # Migrating an up-to-date database is harmless: same answer, same tables, same revision.
    second = gridgov("db", "migrate", url=url)
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == "schema at head"
    assert table_names(blank_db) == tables
    assert migrate.current_revision(blank_db) == head

    status = gridgov("db", "status", url=url)
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[0] == f"up: {redact_url(url)} schema revision {head}"


def test_check_finds_models_and_migrations_in_agreement(blank_db: DatabaseSettings) -> None:
    result = gridgov("db", "check", url=blank_db.database_url)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "models and migrations agree"


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "postgres"])
def test_url_prints_a_libpq_url_that_psql_and_psycopg_accept(blank_db: DatabaseSettings, scheme: str) -> None:
    assert blank_db.database_url is not None
    configured = blank_db.database_url.replace("postgresql://", f"{scheme}://", 1)

    result = gridgov("db", "url", url=configured)

    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert printed == blank_db.database_url
    assert printed.startswith("postgresql://")
    with psycopg.connect(printed) as conn:
        assert conn.execute("SELECT PostGIS_Version()").fetchone() is not None


def test_down_leaves_an_external_server_alone(blank_db: DatabaseSettings) -> None:
    url = blank_db.database_url

    result = gridgov("db", "down", url=url)

    assert result.exit_code == 0, result.output
    assert "not ours to stop" in result.stdout
    assert gridgov("db", "status", url=url).exit_code == 0


def test_up_on_an_external_server_migrates_and_names_it(blank_db: DatabaseSettings, head: str) -> None:
    result = gridgov("db", "up", url=blank_db.database_url)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"database ready at {redact_url(blank_db.database_url)}"
    assert migrate.current_revision(blank_db) == head


@pytest.mark.parametrize("command", ["status", "migrate", "check", "up"])
def test_a_database_on_a_closed_port_gives_a_clear_message_not_a_traceback(command: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/gridgov"

    result = gridgov("db", command, url=url)

    assert result.exit_code != 0
    # CliRunner keeps an escaped exception in result.exception; a clean failure is a SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"`gridgov db {command}` crashed with {result.exception!r} instead of explaining"
    )
    assert "Traceback" not in result.output
    assert "unreachable" in result.stderr or "unavailable" in result.stderr
    assert "Connection refused" in result.stderr


def test_up_status_down_run_a_project_local_cluster() -> None:
    # A project checkout without GRIDGOV_DATABASE_URL: `db up` starts its own cluster under the state folder.
    base = Path(tempfile.mkdtemp(prefix="gridgov-cli-up-"))
    base.chmod(0o755)  # initdb runs as the postgres user when the tests run as root
    port = free_port()
    env = {"GRIDGOV_DATABASE_URL": None, "GRIDGOV_STATE_DIR": str(base), "GRIDGOV_PG_PORT": str(port)}
    runner = CliRunner()
    try:
        before = runner.invoke(app, ["db", "status"], env=env)
        assert before.exit_code == 1
        assert "is not running (gridgov db up)" in before.stderr

        up = runner.invoke(app, ["db", "up"], env=env)
        assert up.exit_code == 0, up.output
        assert up.stdout.strip() == f"database ready at postgresql://gridgov:***@127.0.0.1:{port}/gridgov"
        assert (base / "pg" / "PG_VERSION").exists()
        # The generated passwords are the operator's alone, like the signing key.
        for name in ("pg-superuser-password", "pg-app-password"):
            assert (base / name).stat().st_mode & 0o777 == 0o600

        status = runner.invoke(app, ["db", "status"], env=env)
        assert status.exit_code == 0, status.output
        lines = status.stdout.splitlines()
        assert lines[0].startswith(f"up: postgresql://gridgov:***@127.0.0.1:{port}/gridgov schema revision ")
        assert "revision none" not in lines[0]
        assert "role: gridgov (not a superuser)" in lines
        assert "durability: fsync=on, synchronous_commit=on, full_page_writes=on (durable)" in lines
        auth = next(line for line in lines if line.startswith("authentication: "))
        assert "password_encryption=scram-sha-256" in auth and auth.endswith("(no trust)")
        assert "host all all 127.0.0.1/32 scram-sha-256" in auth
        versions = next(line for line in lines if line.startswith("versions: "))
        assert "PostGIS" in versions and "GEOS" in versions and "PROJ" in versions

        # Nobody gets in without the password, not even the superuser on the machine itself.
        cluster = LocalCluster.from_settings(DatabaseSettings(state_dir=base, pg_port=port))
        for url in (
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            f"postgresql://gridgov@127.0.0.1:{port}/gridgov",
        ):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(url, connect_timeout=5)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host=str(cluster.data_dir), port=port, user="postgres", dbname="postgres")
        with psycopg.connect(cluster.superuser_url()) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").fetchone() == (True,)

        down = runner.invoke(app, ["db", "down"], env=env)
        assert down.exit_code == 0, down.output
        assert down.stdout.strip() == "database stopped"

        after = runner.invoke(app, ["db", "status"], env=env)
        assert after.exit_code == 1
        assert "is not running" in after.stderr
    finally:
        LocalCluster(data_dir=base / "pg", port=port, secrets_dir=base).stop()
        shutil.rmtree(base, ignore_errors=True)
