"""A city's own database cluster lets nobody in without a password, and an old one that trusted everyone is closed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gis.cluster import LocalCluster, free_port
from gis.settings import DatabaseSettings
from gis.status import status_of

pytestmark = pytest.mark.db


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="gridgov-cluster-"))
    base.chmod(0o755)  # initdb runs as the postgres user when the tests run as root
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_a_cluster_made_by_an_older_gridgov_with_trust_is_closed_and_its_tables_handed_to_the_app_role(
    scratch: Path,
) -> None:
    cluster = LocalCluster(data_dir=scratch / "pg", port=free_port(), secrets_dir=scratch, durable=False)
    # What earlier versions did: initdb --auth=trust, a database and tables owned by the superuser.
    cluster.data_dir.mkdir()
    shutil.chown(cluster.data_dir, "postgres", "postgres")
    cluster.data_dir.chmod(0o700)
    cluster._run(["initdb", "-D", str(cluster.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    cluster._run(
        ["pg_ctl", "start", "-w", "-D", str(cluster.data_dir), "-l", str(cluster.data_dir / "server.log"),
         "-o", f"-p {cluster.port} -k {cluster.data_dir} -c listen_addresses=127.0.0.1"]
    )  # fmt: skip
    try:
        open_url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
        with psycopg.connect(f"{open_url}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE gridgov")
        with psycopg.connect(f"{open_url}/gridgov", autocommit=True) as conn:
            conn.execute("CREATE SCHEMA synthetic")
            conn.execute("CREATE TABLE town (code text PRIMARY KEY, name text)")
            conn.execute("CREATE TABLE synthetic.demo_load (id serial PRIMARY KEY)")
            conn.execute("INSERT INTO town VALUES ('441900003000', '东城街道')")

        cluster.start()  # the upgrade: set the password, require it everywhere, create the application role
        cluster.create_database("gridgov")

        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"{open_url}/postgres", connect_timeout=5)
        with psycopg.connect(cluster.url("gridgov")) as conn:
            owners = dict(
                conn.execute(
                    "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                    "WHERE c.relname IN ('town', 'demo_load', 'demo_load_id_seq')"
                ).fetchall()
            )
            assert owners == {"town": "gridgov", "demo_load": "gridgov", "demo_load_id_seq": "gridgov"}
            assert conn.execute("SELECT name FROM town").fetchone() == ("东城街道",)
            conn.execute("INSERT INTO synthetic.demo_load DEFAULT VALUES")  # the app role can write its tables
            # … and is no superuser: it cannot create roles or read the server's files.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE ROLE intruder SUPERUSER")
        status = status_of(DatabaseSettings(database_url=cluster.url("gridgov")), admin_url=cluster.superuser_url())
        assert status.role == "gridgov" and not status.superuser
        assert status.trusts_without_password is False
        assert status.hba_rules and all(rule.endswith("scram-sha-256") for rule in status.hba_rules)
        assert status.durable  # started with PostgreSQL's defaults
    finally:
        cluster.stop()


def test_the_app_role_cannot_read_the_authentication_rules_and_status_says_so(db: DatabaseSettings) -> None:
    status = status_of(db)
    assert status.role == "gridgov" and status.superuser is False
    assert status.hba_rules is None and status.trusts_without_password is None
    assert {"PostgreSQL", "PostGIS", "PostGIS GEOS", "PostGIS PROJ"} <= set(status.versions)
    assert not status.durable  # the tests' throwaway cluster runs without fsync, and status says so
