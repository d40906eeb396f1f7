"""gis.cluster: the root-safe, project-local PostgreSQL + PostGIS cluster."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gis.errors import ClusterError, PostgisUnavailable

if TYPE_CHECKING:
    import psycopg

    from gis.settings import DatabaseSettings

SYSTEM_STATE_ROOT = Path("/var/lib/gridgov")


def _is_root() -> bool:
    return os.geteuid() == 0


def pg_bindir(version: int) -> Path:
    """Directory of the PostgreSQL server binaries of the given major version."""
    candidate = Path(f"/usr/lib/postgresql/{version}/bin")
    if (candidate / "pg_ctl").exists():
        return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PostgisUnavailable(
        f"PostgreSQL {version} server binaries not found; install them with: "
        f"apt-get install -y postgresql-{version} postgresql-{version}-postgis-3"
    )


def postgis_installed(version: int) -> bool:
    """True when the PostGIS extension files are present for this server version."""
    return Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()


def ensure_postgis(version: int) -> None:
    """Install PostGIS from the OS packages when missing and allowed (root on Debian/Ubuntu)."""
    if postgis_installed(version):
        return
    package = f"postgresql-{version}-postgis-3"
    if not (_is_root() and shutil.which("apt-get")):
        raise PostgisUnavailable(
            f"PostGIS is not installed; run as root: apt-get update && apt-get install -y {package}"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgisUnavailable(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    if not postgis_installed(version):
        raise PostgisUnavailable(f"{package} installed but postgis.control is still missing")


def _traversable_by_postgres(path: Path) -> bool:
    """Whether the `postgres` OS user can reach `path` (every ancestor has o+x)."""
    if not _is_root():
        return True
    current = path.resolve()
    return all(not (folder.exists() and not folder.stat().st_mode & 1) for folder in [current, *current.parents])


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


APP_ROLE = "gridgov"
SERVER_ENV_PREFIX = "GRIDGOV_PG_SERVER_ENV_"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD_FILE = "pg-superuser-password"
APP_PASSWORD_FILE = "pg-app-password"
# Only a throwaway test cluster trades durability for speed; a served cluster keeps PostgreSQL's defaults.
NON_DURABLE_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
HBA_RULES = """# gridgov: every connection authenticates with a password (scram-sha-256); nothing is trusted.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""


def server_environment() -> dict[str, str]:
    """Extra environment for the server's processes: every `GRIDGOV_PG_SERVER_ENV_<NAME>` as `<NAME>`.

    For what must reach the server alone, such as a preloaded allocator or the test runs' libfaketime.
    """
    return {
        name.removeprefix(SERVER_ENV_PREFIX): value
        for name, value in os.environ.items()
        if name.startswith(SERVER_ENV_PREFIX) and name != SERVER_ENV_PREFIX
    }


def read_or_create_secret(path: Path) -> str:
    """A generated password kept in `path` (mode 0600, like the signing key); created on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(24)  # hex: safe inside a URL without quoting
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@dataclass(frozen=True)
class LocalCluster:
    """A PostgreSQL cluster owned by this checkout, reachable on 127.0.0.1:`port` with passwords only.

    The superuser `postgres` is for administration (roles, databases, extensions, backups); the platform connects
    as the application role `gridgov`, which is not a superuser and owns the project's databases and schemas.
    Both passwords are generated into `secrets_dir` (mode 0600). `durable=False` is for throwaway test clusters.
    """

    data_dir: Path
    port: int
    version: int = 15
    secrets_dir: Path | None = None
    durable: bool = True

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> LocalCluster:
        """The cluster for these settings; under /var/lib/gridgov when the checkout is private to root."""
        return cls(
            data_dir=cluster_dir(settings.state_dir),
            port=settings.pg_port,
            version=settings.pg_version,
            secrets_dir=settings.state_dir,
        )

    @property
    def _secrets(self) -> Path:
        return self.secrets_dir if self.secrets_dir is not None else self.data_dir.parent

    def superuser_password(self) -> str:
        """The superuser's generated password."""
        return read_or_create_secret(self._secrets / SUPERUSER_PASSWORD_FILE)

    def app_password(self) -> str:
        """The application role's generated password."""
        return read_or_create_secret(self._secrets / APP_PASSWORD_FILE)

    def url(self, database: str) -> str:
        """libpq URL of a database in this cluster, as the application role."""
        return f"postgresql://{APP_ROLE}:{self.app_password()}@127.0.0.1:{self.port}/{database}"

    def superuser_url(self, database: str = "postgres") -> str:
        """libpq URL of a database as the superuser (administration only)."""
        return f"postgresql://{SUPERUSER}:{self.superuser_password()}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bindir(self.version) / args[0]), *args[1:]]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = {**os.environ, **server_environment()} if args[0] == "pg_ctl" else None
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=env)
        if check and done.returncode != 0:
            raise ClusterError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def initialized(self) -> bool:
        """Whether initdb has run in the data directory."""
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        """Whether the server of this data directory is up."""
        if not self.initialized():
            return False
        return self._run(["pg_ctl", "status", "-D", str(self.data_dir)], check=False).returncode == 0

    def init(self) -> None:
        """Create the data directory (initdb as the postgres user when we are root), password authentication only."""
        if self.initialized():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(self.data_dir, "postgres", "postgres")
        self.data_dir.chmod(0o700)
        # initdb reads the password from a file the postgres user can read; it lives only while initdb runs.
        pwfile = self.data_dir.parent / f".initdb-pw-{secrets.token_hex(4)}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.superuser_password() + "\n")
        try:
            if _is_root():
                shutil.chown(pwfile, "postgres", "postgres")
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(HBA_RULES)
        if _is_root():
            shutil.chown(hba, "postgres", "postgres")
        hba.chmod(0o600)

    def _trusts_anyone(self) -> bool:
        hba = self.data_dir / "pg_hba.conf"
        rules = [line.split() for line in hba.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return any(rule and rule[-1] in ("trust", "peer", "ident") for rule in rules)

    def start(self, timeout_s: float = 60) -> None:
        """Start the server if it is not running, wait until it accepts connections, and close it to strangers."""
        ensure_postgis(self.version)
        self.init()
        if not self.running():
            options = (
                f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
                "-c shared_buffers=512MB -c work_mem=64MB -c maintenance_work_mem=512MB "
                "-c max_connections=200 -c password_encryption=scram-sha-256"
            )
            if not self.durable:
                options += " " + NON_DURABLE_OPTIONS
            log = self.data_dir / "server.log"
            self._run(
                [
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(log),
                    "-o",
                    options,
                ]
            )
            deadline = time.monotonic() + timeout_s
            while self._run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise ClusterError(f"server on port {self.port} did not become ready; see {log}")
                time.sleep(0.2)
        if self._trusts_anyone():
            self._close_trust()
        self._ensure_app_role()

    def _close_trust(self) -> None:
        """Upgrade a cluster made by an older gridgov (trust authentication): set the password, then require it."""
        import psycopg

        # Still trusted at this moment: the socket in the data directory reaches the server as the superuser.
        with psycopg.connect(
            host=str(self.data_dir), port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(
                psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    psycopg.sql.Identifier(SUPERUSER), psycopg.sql.Literal(self.superuser_password())
                )
            )
        self._write_hba()
        self._run(["pg_ctl", "reload", "-D", str(self.data_dir)])
        # The postmaster re-reads pg_hba.conf asynchronously: wait until a passwordless login is refused.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                psycopg.connect(host=str(self.data_dir), port=self.port, user=SUPERUSER, dbname="postgres").close()
            except psycopg.OperationalError:
                return
            time.sleep(0.05)
        raise ClusterError(f"the server on port {self.port} still admits logins without a password after a reload")

    @contextmanager
    def _admin(self, database: str = "postgres") -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection as the superuser."""
        import psycopg

        with psycopg.connect(self.superuser_url(database), autocommit=True) as conn:
            yield conn

    def _ensure_app_role(self) -> None:
        """The application role exists, logs in with its generated password, and is no superuser."""
        from psycopg import sql

        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(self.app_password())
                )
            )

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.running():
            self._run(["pg_ctl", "stop", "-m", "fast", "-D", str(self.data_dir)])

    def create_database(self, name: str) -> bool:
        """Create a database owned by the application role, with PostGIS, if it does not exist; True when created.

        A database made by an older gridgov (owned by the superuser) is handed to the application role.
        """
        from psycopg import sql

        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE))
                )
        with self._admin(name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            if exists:
                conn.execute(sql.SQL(ADOPT_OBJECTS).format(role=sql.Literal(APP_ROLE)))
        return not exists

    def clone_database(self, name: str, template: str) -> None:
        """Create `name` as a copy of `template` (CREATE DATABASE … TEMPLATE), owned by the application role."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(APP_ROLE)
                )
            )

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, closing its connections."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# Objects of the project's schemas (not those of extensions) that belong to someone else go to the application
# role, so that a database created before the role existed keeps working under it. ({role} is a quoted literal.)
ADOPT_OBJECTS = """
DO $$
DECLARE
    target text := {role};
    item record;
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO %I', current_database(), target);
    FOR item IN
        SELECT n.nspname FROM pg_namespace n
        WHERE n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'public')
          AND pg_get_userbyid(n.nspowner) <> target
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = n.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', item.nspname, target);
    END LOOP;
    FOR item IN
        SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
          AND pg_get_userbyid(c.relowner) <> target
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format(
            'ALTER %s %I.%I OWNER TO %I',
            CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            item.nspname, item.relname, target);
    END LOOP;
END
$$
"""


def cluster_dir(state_dir: Path) -> Path:
    """Data directory: `<state_dir>/pg`, or /var/lib/gridgov/<hash>/pg when `postgres` cannot reach the checkout."""
    state_dir = state_dir.resolve()
    if _traversable_by_postgres(state_dir.parent):
        return state_dir / "pg"
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]
    return SYSTEM_STATE_ROOT / digest / "pg"
