"""gis.cluster: the root-safe, project-local PostgreSQL + PostGIS cluster."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gis.errors import ClusterError, PostgisUnavailable

if TYPE_CHECKING:
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
    for folder in [current, *current.parents]:
        if folder.exists() and not (folder.stat().st_mode & 0o001):
            return False
    return True


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalCluster:
    """A PostgreSQL cluster owned by this checkout, reachable on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    version: int = 15

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> LocalCluster:
        """The cluster for these settings; under /var/lib/gridgov when the checkout is private to root."""
        return cls(data_dir=cluster_dir(settings.state_dir), port=settings.pg_port, version=settings.pg_version)

    def url(self, database: str) -> str:
        """libpq URL of a database in this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bindir(self.version) / args[0]), *args[1:]]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
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
        """Create the data directory (initdb as the postgres user when we are root)."""
        if self.initialized():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(self.data_dir, "postgres", "postgres")
        self.data_dir.chmod(0o700)
        self._run(
            ["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]
        )

    def start(self, timeout_s: float = 60) -> None:
        """Start the server if it is not running, and wait until it accepts connections."""
        ensure_postgis(self.version)
        self.init()
        if self.running():
            return
        options = (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
            "-c shared_buffers=512MB -c work_mem=64MB -c maintenance_work_mem=512MB "
            "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
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
        while time.monotonic() < deadline:
            if self._run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise ClusterError(f"server on port {self.port} did not become ready; see {log}")

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.running():
            self._run(["pg_ctl", "stop", "-m", "fast", "-D", str(self.data_dir)])

    def create_database(self, name: str) -> bool:
        """Create a database with PostGIS if it does not exist; True when created."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return False
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return True


def cluster_dir(state_dir: Path) -> Path:
    """Data directory: `<state_dir>/pg`, or /var/lib/gridgov/<hash>/pg when `postgres` cannot reach the checkout."""
    state_dir = state_dir.resolve()
    if _traversable_by_postgres(state_dir.parent):
        return state_dir / "pg"
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]
    return SYSTEM_STATE_ROOT / digest / "pg"
