"""The served database re-tested (issue 17, and the foundation issue's trust-authentication finding).

The outside tester found the database of a `make run` city trusting every local connection. These tests build a
cluster with the project's own code (gis.cluster.LocalCluster, durable as `make run` makes it) in a temporary
directory, and replay the attacks: a passwordless login over the socket and over TCP, a wrong password, a
connection as the application role trying superuser things. Each must be refused.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gis.cluster import APP_ROLE, SUPERUSER, LocalCluster, free_port

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def served_cluster() -> Iterator[LocalCluster]:
    """A cluster made exactly as `make run` makes it (durable), in a temporary directory, on a free port."""
    base = Path(tempfile.mkdtemp(prefix="gridgov-dbauth-"))
    base.chmod(0o755)  # the postgres OS user must reach it when we run as root
    cluster = LocalCluster(data_dir=base / "pg", port=free_port(), secrets_dir=base / "state")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def refused(**params: object) -> psycopg.OperationalError:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(connect_timeout=10, **params).close()  # type: ignore[arg-type]
    return caught.value


def test_finding_db_passwordless_local_login_is_refused(served_cluster: LocalCluster) -> None:
    for user in (SUPERUSER, APP_ROLE):
        # The Unix socket in the data directory: what `trust` used to let through.
        error = refused(host=str(served_cluster.data_dir), port=served_cluster.port, user=user, dbname="postgres")
        assert "password" in str(error).lower()
        # TCP on the loopback interface.
        error = refused(host="127.0.0.1", port=served_cluster.port, user=user, dbname="postgres")
        assert "password" in str(error).lower()


def test_finding_db_wrong_password_is_refused(served_cluster: LocalCluster) -> None:
    for user in (SUPERUSER, APP_ROLE):
        error = refused(host="127.0.0.1", port=served_cluster.port, user=user, password="password", dbname="postgres")
        assert "password authentication failed" in str(error)


def test_finding_db_every_rule_requires_scram_sha_256(served_cluster: LocalCluster) -> None:
    with psycopg.connect(served_cluster.superuser_url()) as conn:
        rules = conn.execute("SELECT type, auth_method, error FROM pg_hba_file_rules").fetchall()
        assert rules, "pg_hba.conf holds no rule"
        assert {method for _type, method, _error in rules} == {"scram-sha-256"}, rules
        assert all(error is None for _type, _method, error in rules), rules
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        # The stored verifiers are SCRAM, not MD5 (an MD5 hash would let an md5 rule or a leaked hash in).
        secrets = conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)", (SUPERUSER, APP_ROLE)
        ).fetchall()
        assert len(secrets) == 2
        assert all(password.startswith("SCRAM-SHA-256$") for _role, password in secrets), [r for r, _ in secrets]
    hba = (served_cluster.data_dir / "pg_hba.conf").read_text().splitlines()
    methods = {line.split()[-1] for line in hba if line.strip() and not line.lstrip().startswith("#")}
    assert methods == {"scram-sha-256"}, methods


def test_finding_db_the_application_role_is_no_superuser(served_cluster: LocalCluster) -> None:
    with psycopg.connect(served_cluster.url("postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False, False)
        # The attack: what a superuser could do, the application role cannot.
        for statement in (
            f"ALTER ROLE {APP_ROLE} SUPERUSER",
            "COPY (SELECT 1) TO PROGRAM 'true'",
            "CREATE ROLE intruder LOGIN SUPERUSER",
            "SELECT pg_read_file('pg_hba.conf')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_finding_db_the_served_cluster_runs_with_fsync_on(served_cluster: LocalCluster) -> None:
    with psycopg.connect(served_cluster.superuser_url()) as conn:
        for setting in ("fsync", "full_page_writes"):
            assert conn.execute(f"SHOW {setting}").fetchone() == ("on",), setting
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_the_secrets_are_private_to_their_owner(served_cluster: LocalCluster) -> None:
    assert served_cluster.secrets_dir is not None
    for name in ("pg-superuser-password", "pg-app-password"):
        assert (served_cluster.secrets_dir / name).stat().st_mode & 0o777 == 0o600, name
