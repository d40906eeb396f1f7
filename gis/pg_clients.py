"""gis.pg_clients: the connections and client programs (pg_dump, pg_restore) that backups and restores use.

Passwords go into the environment of the client programs, never on their command line.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gis.errors import BackupFailed
from gis.settings import plain_libpq_url

PG_INSTALL_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Server:
    """The server a backup or restore talks to: its version, role, database and extensions."""

    version: str
    major: int
    role: str
    database: str
    extensions: dict[str, str]
    postgis: str | None


def conninfo(url: str, *, dbname: str | None = None, password: bool = True) -> str:
    """`url` as a libpq conninfo string, on another database or without its password."""
    params: dict[str, Any] = conninfo_to_dict(plain_libpq_url(url))
    if dbname is not None:
        params["dbname"] = dbname
    if not password:
        params.pop("password", None)
    return make_conninfo(**params)


def client_env(url: str) -> dict[str, str]:
    """The environment of pg_dump and pg_restore: the password goes here, never on their command line."""
    env = dict(os.environ)
    password = conninfo_to_dict(plain_libpq_url(url)).get("password")
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def pg_client(name: str, server_major: int) -> Path:
    """`pg_dump` or `pg_restore` for a server of this major version: the same major, else the nearest newer one."""
    exact = PG_INSTALL_ROOT / str(server_major) / "bin" / name
    if exact.exists():
        return exact
    newer = sorted(
        (int(path.parent.parent.name), path)
        for path in PG_INSTALL_ROOT.glob(f"*/bin/{name}")
        if path.parent.parent.name.isdigit() and int(path.parent.parent.name) > server_major
    )
    if newer:
        return newer[0][1]
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BackupFailed(
        f"{name} for PostgreSQL {server_major} not found; install it with: "
        f"apt-get install -y postgresql-client-{server_major}"
    )


def tail(text: str, limit: int = 600) -> str:
    """The last lines of a client program's error output, on one line."""
    return " ".join(text.strip().split())[-limit:]


def read_server(conn: psycopg.Connection[Any]) -> Server:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
        "current_user, current_database()"
    ).fetchone()
    assert row is not None
    version, number, role, database = row
    extensions = {str(n): str(v) for n, v in conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1")}
    postgis = None
    if "postgis" in extensions:
        row = conn.execute("SELECT postgis_lib_version()").fetchone()
        postgis = str(row[0]) if row else extensions["postgis"]
    return Server(str(version), int(number) // 10000, str(role), str(database), extensions, postgis)
