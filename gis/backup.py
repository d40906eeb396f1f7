"""gis.backup: one-file backups of the database (pg_dump and a manifest of one snapshot) and their atomic restore.

A backup is an uncompressed tar holding `manifest.json` and `database.dump` (pg_dump, custom format). The manifest
names the schema revision, the exact row count and a checksum of every table of the project's schemas, the
software versions and the sha256 of the dump; counts, checksums and dump come from one exported snapshot.

A restore checks the whole file first, rebuilds the database in a scratch database on the same server as the
application role, compares every count and checksum with the manifest, and only then swaps the scratch database
in by renaming (one transaction). Anything that fails before the swap drops the scratch database and leaves the
target as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gis.errors import BackupFailed, BackupInvalid, DatabaseNotEmpty, RestoreFailed
from gis.settings import DatabaseSettings, plain_libpq_url

FORMAT = "gridgov-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.dump"
SUFFIX = ".gridgov-backup"
PROJECT_SCHEMAS = ("public", "synthetic")
# Alembic's bookkeeping: a database whose only row is its schema revision holds no data.
BOOKKEEPING_TABLES = frozenset({"public.alembic_version"})
CHECKSUM_METHOD = "md5 of the md5s of every row's text, sorted (TimeZone UTC, DateStyle ISO)"
# A row's text depends on these session settings; both ends of a backup fix them, so checksums compare anywhere.
CANONICAL_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
)
# Sorting the row hashes (not the rows by key) makes the checksum independent of the server's collation.
TABLE_STATE = sql.SQL(
    "SELECT count(*), md5(coalesce(string_agg(row_md5, '' ORDER BY row_md5 COLLATE \"C\"), '')) "
    "FROM (SELECT md5(t::text) AS row_md5 FROM {table} AS t) AS hashed"
)
PROJECT_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""
EXTENSION_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
WHERE c.relkind IN ('r', 'p')
"""
# Only sessions this role may end: its own (or every one, for a superuser).
TERMINATE = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid() AND pg_has_role(usesysid, 'MEMBER')
"""
DATABASE_PRIVILEGES = frozenset({"CREATE", "TEMPORARY", "CONNECT"})
PG_INSTALL_ROOT = Path("/usr/lib/postgresql")
MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class TableState:
    """The exact row count and the row checksum of one table."""

    rows: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, read from the same snapshot as its dump."""

    created_at: str
    database: str
    schema_revision: str | None
    gridgov_version: str
    postgresql_version: str
    postgis_version: str | None
    extensions: dict[str, str]
    pg_dump_version: str
    dump_bytes: int
    dump_sha256: str
    tables: dict[str, TableState]

    @property
    def total_rows(self) -> int:
        """Rows in all tables."""
        return sum(state.rows for state in self.tables.values())

    def to_json(self) -> bytes:
        """The manifest as written into the backup file."""
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "database": self.database,
            "schema_revision": self.schema_revision,
            "gridgov_version": self.gridgov_version,
            "postgresql_version": self.postgresql_version,
            "postgis_version": self.postgis_version,
            "extensions": self.extensions,
            "pg_dump_version": self.pg_dump_version,
            "dump": {
                "name": DUMP_NAME,
                "format": "pg_dump custom",
                "bytes": self.dump_bytes,
                "sha256": self.dump_sha256,
            },
            "checksum_method": CHECKSUM_METHOD,
            "total_rows": self.total_rows,
            "tables": {name: {"rows": state.rows, "md5": state.md5} for name, state in self.tables.items()},
        }
        return json.dumps(document, indent=2, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Read a manifest; BackupInvalid when it is not one of ours or of a format this gridgov does not read."""
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupInvalid(f"{MANIFEST_NAME} is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupInvalid(f"{MANIFEST_NAME} is not a gridgov backup manifest")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise BackupInvalid(f"backup format version {version!r}; this gridgov reads version {FORMAT_VERSION}")
        try:
            dump = document["dump"]
            return cls(
                created_at=str(document["created_at"]),
                database=str(document["database"]),
                schema_revision=None if document["schema_revision"] is None else str(document["schema_revision"]),
                gridgov_version=str(document["gridgov_version"]),
                postgresql_version=str(document["postgresql_version"]),
                postgis_version=None if document["postgis_version"] is None else str(document["postgis_version"]),
                extensions={str(k): str(v) for k, v in document["extensions"].items()},
                pg_dump_version=str(document["pg_dump_version"]),
                dump_bytes=int(dump["bytes"]),
                dump_sha256=str(dump["sha256"]),
                tables={
                    str(name): TableState(rows=int(state["rows"]), md5=str(state["md5"]))
                    for name, state in document["tables"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupInvalid(f"{MANIFEST_NAME} lacks or garbles {exc}") from None


@dataclass(frozen=True)
class BackupResult:
    """A written backup: where, and what it holds."""

    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup file found whole, with its dump extracted for pg_restore (valid inside `opened_backup`)."""

    path: Path
    manifest: Manifest
    dump: Path


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: what was restored, where, and the schema revision it was brought to when older."""

    manifest: Manifest
    database: str
    upgraded_to: str | None
    # The database that was swapped out, when it could not be dropped afterwards (None once dropped).
    left_behind: str | None


@dataclass(frozen=True)
class _Server:
    version: str
    major: int
    role: str
    database: str
    extensions: dict[str, str]
    postgis: str | None


# --- connections and client programs -------------------------------------------------------------------------


def _conninfo(url: str, *, dbname: str | None = None, password: bool = True) -> str:
    """`url` as a libpq conninfo string, on another database or without its password."""
    params: dict[str, Any] = conninfo_to_dict(plain_libpq_url(url))
    if dbname is not None:
        params["dbname"] = dbname
    if not password:
        params.pop("password", None)
    return make_conninfo(**params)


def _client_env(url: str) -> dict[str, str]:
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


def _tail(text: str, limit: int = 600) -> str:
    """The last lines of a client program's error output, on one line."""
    return " ".join(text.strip().split())[-limit:]


def _read_server(conn: psycopg.Connection[Any]) -> _Server:
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
    return _Server(str(version), int(number) // 10000, str(role), str(database), extensions, postgis)


# --- what a database holds -------------------------------------------------------------------------------------


def _canonical_session(conn: psycopg.Connection[Any]) -> None:
    for name, value in CANONICAL_SETTINGS:
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def project_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, table) of every table of the project's schemas, without the extensions' own (spatial_ref_sys)."""
    return [(str(s), str(t)) for s, t in conn.execute(PROJECT_TABLES, (list(PROJECT_SCHEMAS),))]


def table_states(conn: psycopg.Connection[Any]) -> dict[str, TableState]:
    """`schema.table` → exact row count and row checksum, for every project table (in the connection's snapshot)."""
    _canonical_session(conn)
    states = {}
    for schema, table in project_tables(conn):
        row = conn.execute(TABLE_STATE.format(table=sql.Identifier(schema, table))).fetchone()
        assert row is not None  # an aggregate always answers one row
        states[f"{schema}.{table}"] = TableState(rows=int(row[0]), md5=str(row[1]))
    return states


def _tables_with_rows(conn: psycopg.Connection[Any]) -> list[str]:
    found = []
    for schema, table in project_tables(conn):
        name = f"{schema}.{table}"
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        if name not in BOOKKEEPING_TABLES and row and row[0]:
            found.append(name)
    return found


def _schema_revision(conn: psycopg.Connection[Any], tables: dict[str, TableState]) -> str | None:
    if "public.alembic_version" not in tables:
        return None
    versions = [str(v) for (v,) in conn.execute("SELECT version_num FROM public.alembic_version ORDER BY 1")]
    return ",".join(versions) or None


# --- backup ----------------------------------------------------------------------------------------------------


def default_backup_path(settings: DatabaseSettings, at: datetime) -> Path:
    """`.gridgov/backups/gridgov-YYYYmmddTHHMMSSZ.gridgov-backup` (UTC)."""
    return settings.state_dir / "backups" / f"gridgov-{at:%Y%m%dT%H%M%SZ}{SUFFIX}"


def backup_database(settings: DatabaseSettings, out: Path | None = None) -> BackupResult:
    """Write a backup of the configured database to `out` (default under `.gridgov/backups`, mode 0600)."""
    started = datetime.now(UTC)
    path = out if out is not None else default_backup_path(settings, started)
    url = settings.libpq_url()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(prefix=".gridgov-backup-", dir=path.parent) as work:
            dump = Path(work) / DUMP_NAME
            try:
                server, tables, revision, pg_dump_version = _dump_in_snapshot(url, dump)
            except psycopg.Error as exc:
                raise BackupFailed(f"cannot read the database: {_tail(str(exc))}") from exc
            manifest = Manifest(
                created_at=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
                database=server.database,
                schema_revision=revision,
                gridgov_version=_gridgov_version(),
                postgresql_version=server.version,
                postgis_version=server.postgis,
                extensions=server.extensions,
                pg_dump_version=pg_dump_version,
                dump_bytes=dump.stat().st_size,
                dump_sha256=_sha256(dump),
                tables=tables,
            )
            _write_archive(path, manifest, dump)
    except OSError as exc:
        raise BackupFailed(f"cannot write {path}: {exc}") from exc
    return BackupResult(path=path, manifest=manifest)


def _dump_in_snapshot(url: str, dump: Path) -> tuple[_Server, dict[str, TableState], str | None, str]:
    """pg_dump and the counts and checksums, all of the snapshot this transaction exports while it stays open."""
    with psycopg.connect(_conninfo(url)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = str(row[0])
        server = _read_server(conn)
        pg_dump = pg_client("pg_dump", server.major)
        version = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, check=False)
        command = [
            str(pg_dump),
            "--format=custom",
            f"--snapshot={snapshot}",
            f"--file={dump}",
            f"--dbname={_conninfo(url, password=False)}",
        ]
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                command, env=_client_env(url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
            )
            try:  # pg_dump reads the same snapshot meanwhile: the transaction stays open until it is done
                tables = table_states(conn)
                revision = _schema_revision(conn, tables)
            except BaseException:
                process.kill()
                process.wait()
                raise
            if process.wait() != 0:
                errors.seek(0)
                raise BackupFailed(
                    f"pg_dump failed ({process.returncode}): {_tail(errors.read().decode(errors='replace'))}"
                )
        conn.rollback()  # read only: nothing to keep
    return server, tables, revision, version.stdout.strip()


def _gridgov_version() -> str:
    try:
        return metadata.version("gridgov")
    except metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_archive(path: Path, manifest: Manifest, dump: Path) -> None:
    """The tar of manifest and dump, written beside `path`, synced, then renamed into place (never half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    now = int(time.time())
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
                body = manifest.to_json()
                archive.addfile(_member(MANIFEST_NAME, len(body), now), BytesIO(body))
                with dump.open("rb") as handle:
                    archive.addfile(_member(DUMP_NAME, manifest.dump_bytes, now), handle)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = mtime
    return info


# --- verification ----------------------------------------------------------------------------------------------


@contextmanager
def opened_backup(path: Path, work_dir: Path | None = None) -> Iterator[VerifiedBackup]:
    """Check that `path` is a whole gridgov backup and extract its dump to a temporary folder for the block."""
    with tempfile.TemporaryDirectory(prefix="gridgov-restore-", dir=work_dir) as work:
        yield verify_backup(path, Path(work))


def verify_backup(path: Path, work_dir: Path) -> VerifiedBackup:
    """Read the manifest of `path`, extract its dump into `work_dir` and check its size and sha256 (BackupInvalid)."""
    if not path.exists():
        raise BackupInvalid(f"{path}: no such file")
    if not path.is_file():
        raise BackupInvalid(f"{path} is not a file")
    dump = work_dir / DUMP_NAME
    try:
        with tarfile.open(path, mode="r:") as archive:
            members = {member.name: member for member in archive.getmembers()}
            if MANIFEST_NAME not in members:
                raise BackupInvalid(f"{path} is not a gridgov backup (no {MANIFEST_NAME} in it)")
            try:
                manifest = Manifest.from_json(_read_member(archive, members[MANIFEST_NAME]).read())
            except BackupInvalid as exc:
                raise BackupInvalid(f"{path}: {exc}") from None
            member = members.get(DUMP_NAME)
            if member is None or not member.isfile():
                raise BackupInvalid(f"{path} is incomplete: {DUMP_NAME} is missing")
            if member.size != manifest.dump_bytes:
                raise BackupInvalid(
                    f"{path} is damaged: {DUMP_NAME} has {member.size:,} bytes, its manifest says {manifest.dump_bytes:,}"
                )
            digest = hashlib.sha256()
            with _read_member(archive, member) as source, dump.open("wb") as target:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    target.write(chunk)
    except tarfile.ReadError as exc:
        reason = str(exc)
        if reason == "empty file":
            raise BackupInvalid(f"{path} is empty") from None
        if "end of data" in reason or "truncated" in reason:
            raise BackupInvalid(f"{path} is truncated") from None
        raise BackupInvalid(f"{path} is not a gridgov backup (not a tar archive)") from None
    except (tarfile.TarError, EOFError) as exc:
        raise BackupInvalid(f"{path} is truncated or damaged ({exc})") from None
    except OSError as exc:
        raise BackupInvalid(f"cannot read {path} or extract its dump: {exc}") from None
    if digest.hexdigest() != manifest.dump_sha256:
        raise BackupInvalid(f"{path} is damaged: the sha256 of {DUMP_NAME} does not match its manifest")
    return VerifiedBackup(path=path, manifest=manifest, dump=dump)


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = archive.extractfile(member)
    if handle is None:
        raise BackupInvalid(f"{member.name} is not a file")
    return handle


def _restore_list(pg_restore: Path, backup: VerifiedBackup) -> list[str]:
    """The dump's table of contents (`pg_restore --list`): proof that pg_restore can read it."""
    listed = subprocess.run([str(pg_restore), "--list", str(backup.dump)], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise BackupInvalid(f"{backup.path} is damaged: pg_restore cannot read its dump ({_tail(listed.stderr)})")
    return listed.stdout.splitlines()


# --- restore ---------------------------------------------------------------------------------------------------


def restore_backup(
    settings: DatabaseSettings,
    backup: VerifiedBackup,
    *,
    force: bool = False,
    admin_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RestoreResult:
    """Replace the configured database by the backup: scratch copy, checked against the manifest, swapped in.

    `admin_url` is a role that may create, rename and drop databases on the same server (the local cluster's
    superuser); without it the application role does so itself and needs CREATEDB. A database holding data is
    replaced only with `force`.
    """
    say = progress or (lambda _message: None)
    url = settings.libpq_url()
    manifest = backup.manifest
    head = _check_revision_known(settings, manifest)
    try:
        with psycopg.connect(_conninfo(url), autocommit=True) as conn:
            server = _read_server(conn)
            occupied = _tables_with_rows(conn)
            locale = _locale(conn)
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot read the database to restore into: {_tail(str(exc))}") from exc
    toc = _restore_list(pg_client("pg_restore", server.major), backup)
    target = server.database
    if occupied and not force:
        shown = ", ".join(occupied[:3]) + (", …" if len(occupied) > 3 else "")
        raise DatabaseNotEmpty(
            f"database {target} holds data ({len(occupied)} tables with rows: {shown}); "
            "a restore replaces all of it: add --force to do so"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    scratch = _derived_name(target, "restore", stamp)
    admin = plain_libpq_url(admin_url) if admin_url else url
    say(f"backup {backup.path.name} verified: {manifest.created_at}, schema revision {manifest.schema_revision}")
    with _maintenance(admin) as maint:
        _create_scratch(maint, scratch, owner=server.role, locale=locale, target=target)
        try:
            say(f"restoring into the scratch database {scratch}")
            _prepare_scratch(admin, scratch, manifest)
            _run_restore(url, scratch, backup, toc, server.major, admin)
            _check_copy(url, scratch, manifest)
            say("the restored copy matches the manifest (every table's rows and checksum)")
            _carry_database_settings(maint, target=target, scratch=scratch)
            replaced = _derived_name(target, "replaced", stamp)
            dropped = _swap(maint, target=target, scratch=scratch, replaced=replaced)
        except BaseException:
            _drop(maint, scratch)
            raise
    say(f"database {target} now holds the backup")
    upgraded_to = None
    if manifest.schema_revision != head:
        from gis import migrate

        try:
            migrate.upgrade(settings)
        except Exception as exc:
            raise RestoreFailed(
                f"the backup is restored into {target}, but upgrading its schema from revision "
                f"{manifest.schema_revision} failed: {exc}; run `gridgov db migrate`"
            ) from exc
        upgraded_to = head
    left_behind = None if dropped else replaced
    return RestoreResult(manifest=manifest, database=target, upgraded_to=upgraded_to, left_behind=left_behind)


def _check_revision_known(settings: DatabaseSettings, manifest: Manifest) -> str | None:
    """The head revision of this gridgov; BackupInvalid when the backup's schema is newer than this gridgov."""
    from alembic.script import ScriptDirectory

    from gis import migrate

    script = ScriptDirectory.from_config(migrate.alembic_config(settings))
    known = {revision.revision for revision in script.walk_revisions()}
    for revision in (manifest.schema_revision or "").split(","):
        if revision and revision not in known:
            raise BackupInvalid(
                f"the backup's schema revision {revision} is unknown to this gridgov "
                f"(made by gridgov {manifest.gridgov_version}?): upgrade gridgov first"
            )
    return script.get_current_head()


def _derived_name(database: str, purpose: str, stamp: str) -> str:
    suffix = f"_{purpose}_{stamp}"
    return database.encode()[: MAX_IDENTIFIER - len(suffix)].decode(errors="ignore") + suffix


def _locale(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Encoding, collation and locale provider of the current database (the scratch copy gets the same)."""
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype, to_jsonb(d) ->> 'datlocprovider', "
        "coalesce(to_jsonb(d) ->> 'daticulocale', to_jsonb(d) ->> 'datlocale') "
        "FROM pg_database d WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return {"encoding": row[0], "collate": row[1], "ctype": row[2], "provider": row[3], "icu_locale": row[4]}


@contextmanager
def _maintenance(admin: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection of the administrator to a database that is neither the target nor the scratch."""
    last: psycopg.Error | None = None
    for database in ("postgres", "template1"):
        try:
            conn = psycopg.connect(_conninfo(admin, dbname=database), autocommit=True)
        except psycopg.Error as exc:
            last = exc
            continue
        with conn:
            yield conn
        return
    raise RestoreFailed(f"cannot connect to the server's maintenance database (postgres): {_tail(str(last))}")


def _create_scratch(
    conn: psycopg.Connection[Any], scratch: str, *, owner: str, locale: dict[str, Any], target: str
) -> None:
    statement = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
        sql.Identifier(scratch),
        sql.Identifier(owner),
        sql.Literal(locale["encoding"]),
        sql.Literal(locale["collate"]),
        sql.Literal(locale["ctype"]),
    )
    if locale["provider"] == "i" and locale["icu_locale"]:
        statement += sql.SQL(" LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(locale["icu_locale"]))
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RestoreFailed(
            f"role {conn.info.user} may not create the scratch database a restore builds next to {target} "
            f"({_tail(str(exc), 200)}): grant it CREATEDB, or set GRIDGOV_DATABASE_ADMIN_URL to an administrator"
        ) from None
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot create the scratch database {scratch}: {_tail(str(exc))}") from None


def _prepare_scratch(admin: str, scratch: str, manifest: Manifest) -> None:
    """The backup's extensions, created by the administrator (the dump's own CREATE EXTENSION entries are skipped)."""
    with psycopg.connect(_conninfo(admin, dbname=scratch), autocommit=True) as conn:
        for name in sorted(manifest.extensions):
            if name == "plpgsql":
                continue
            try:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
            except psycopg.Error as exc:
                raise RestoreFailed(
                    f"cannot create the extension {name} as role {conn.info.user} ({_tail(str(exc), 300)}); "
                    "set GRIDGOV_DATABASE_ADMIN_URL to a role that can"
                ) from None


def _restore_entries(toc: list[str], extension_tables: set[tuple[str, str]]) -> list[str]:
    """The dump's entries the application role restores: no extension, its comment, or an extension's table data."""
    skipped = [re.compile(r"^\d+; \d+ \d+ EXTENSION - "), re.compile(r"^\d+; \d+ \d+ COMMENT - EXTENSION ")]
    skipped += [
        re.compile(rf"^\d+; \d+ \d+ TABLE DATA {re.escape(schema)} {re.escape(table)} ")
        for schema, table in extension_tables
    ]
    return [
        line for line in toc if line.strip() and not line.startswith(";") and not any(p.match(line) for p in skipped)
    ]


def _run_restore(url: str, scratch: str, backup: VerifiedBackup, toc: list[str], major: int, admin: str) -> None:
    """pg_restore into the scratch database as the application role, so that it owns every object."""
    with psycopg.connect(_conninfo(admin, dbname=scratch)) as conn:
        extension_tables = {(str(s), str(t)) for s, t in conn.execute(EXTENSION_TABLES)}
    entries = backup.dump.with_name("restore.list")
    entries.write_text("\n".join(_restore_entries(toc, extension_tables)) + "\n")
    command = [
        str(pg_client("pg_restore", major)),
        "--no-owner",
        "--exit-on-error",
        f"--jobs={max(1, min(4, os.cpu_count() or 1))}",
        f"--use-list={entries}",
        f"--dbname={_conninfo(url, dbname=scratch, password=False)}",
        str(backup.dump),
    ]
    done = subprocess.run(command, env=_client_env(url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RestoreFailed(f"pg_restore failed ({done.returncode}): {_tail(done.stderr)}")


def _check_copy(url: str, scratch: str, manifest: Manifest) -> None:
    """Every table of the scratch copy has the manifest's row count and checksum (RestoreFailed otherwise)."""
    try:
        with psycopg.connect(_conninfo(url, dbname=scratch), autocommit=True) as conn:
            conn.execute("ANALYZE")  # pg_restore leaves the planner without statistics
            found = table_states(conn)
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot read the restored copy: {_tail(str(exc))}") from exc
    differences = [f"{name} is missing" for name in manifest.tables if name not in found]
    differences += [f"{name} is not in the backup" for name in found if name not in manifest.tables]
    for name, expected in manifest.tables.items():
        state = found.get(name)
        if state is not None and state != expected:
            differences.append(
                f"{name} has {state.rows:,} rows (backup: {expected.rows:,})"
                if state.rows != expected.rows
                else f"{name} differs from the backup's checksum"
            )
    if differences:
        raise RestoreFailed("the restored copy does not match the backup: " + "; ".join(differences[:5]))


def _carry_database_settings(conn: psycopg.Connection[Any], *, target: str, scratch: str) -> None:
    """The target's database-wide settings and privileges (ALTER DATABASE … SET, GRANT … ON DATABASE) go along."""
    try:
        acl = conn.execute("SELECT datacl IS NOT NULL FROM pg_database WHERE datname = %s", (target,)).fetchone()
        if acl and acl[0]:
            grants = conn.execute(
                "SELECT a.grantee = 0, r.rolname, a.privilege_type, a.is_grantable "
                "FROM pg_database d CROSS JOIN aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
                "WHERE d.datname = %s",
                (target,),
            ).fetchall()
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (scratch,)
            ).fetchone()
            assert owner is not None
            with conn.transaction():
                for grantee in (sql.SQL("PUBLIC"), sql.Identifier(str(owner[0]))):
                    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(scratch), grantee))
                for public, role, privilege, grantable in grants:
                    if privilege not in DATABASE_PRIVILEGES:
                        continue
                    conn.execute(
                        sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                            sql.SQL(privilege),
                            sql.Identifier(scratch),
                            sql.SQL("PUBLIC") if public else sql.Identifier(str(role)),
                            sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
                        )
                    )
        settings = conn.execute(
            "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = %s AND s.setrole = 0",
            (target,),
        ).fetchall()
        for (entry,) in settings:
            name, _, value = str(entry).partition("=")
            with conn.transaction():  # the value is parsed as the server parses it, then stored as it is
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET {} FROM CURRENT").format(
                        sql.Identifier(scratch), sql.Identifier(name)
                    )
                )
    except psycopg.Error as exc:
        raise RestoreFailed(
            f"cannot give {scratch} the settings and privileges of {target}: {_tail(str(exc))}"
        ) from exc


def _swap(conn: psycopg.Connection[Any], *, target: str, scratch: str, replaced: str) -> bool:
    """Close the target, rename it away and the scratch copy into its name in one transaction; drop the old one."""
    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(target)))
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot close {target} to new connections: {_tail(str(exc))}") from exc
    try:
        for attempt in range(20):
            conn.execute(TERMINATE, (target,))
            try:
                with conn.transaction():
                    conn.execute(rename.format(sql.Identifier(target), sql.Identifier(replaced)))
                    conn.execute(rename.format(sql.Identifier(scratch), sql.Identifier(target)))
                break
            except psycopg.errors.ObjectInUse as exc:
                if attempt == 19:
                    raise RestoreFailed(f"sessions of other roles keep {target} open: {_tail(str(exc))}") from exc
                time.sleep(0.25)
    except BaseException as exc:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(target)))
        if isinstance(exc, psycopg.Error):
            raise RestoreFailed(f"cannot swap the restored copy in: {_tail(str(exc))}") from exc
        raise
    try:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(replaced)))
    except psycopg.Error:
        return False  # the restore is done; the replaced database stays behind under its own name
    return True


def _drop(conn: psycopg.Connection[Any], database: str) -> None:
    try:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    except psycopg.Error:
        pass  # the original error matters more; a left-over scratch database is named for what it is
