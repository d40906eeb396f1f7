"""gis.restore: restoring a verified backup atomically in place of the configured database.

A restore checks the whole file first (gis.backup.opened_backup), rebuilds the database in a scratch database on
the same server as the application role, compares every count and checksum with the manifest, and only then swaps
the scratch database in by renaming (one transaction). Anything that fails before the swap drops the scratch
database and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from gis.backup import VerifiedBackup
from gis.backup_manifest import Manifest, project_tables, table_states
from gis.errors import BackupInvalid, DatabaseNotEmpty, RestoreFailed
from gis.pg_clients import client_env, conninfo, pg_client, read_server, tail
from gis.settings import DatabaseSettings, plain_libpq_url

# Written by the migrations themselves: a database whose only rows are its schema revision and the city that
# migration 0019 seeds holds no data.
BOOKKEEPING_TABLES = frozenset({"public.alembic_version", "public.city"})
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
MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: what was restored, where, and the schema revision it was brought to when older."""

    manifest: Manifest
    database: str
    upgraded_to: str | None
    # The database that was swapped out, when it could not be dropped afterwards (None once dropped).
    left_behind: str | None


def _tables_with_rows(conn: psycopg.Connection[Any]) -> list[str]:
    found = []
    for schema, table in project_tables(conn):
        name = f"{schema}.{table}"
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        if name not in BOOKKEEPING_TABLES and row and row[0]:
            found.append(name)
    return found


def _restore_list(pg_restore: Path, backup: VerifiedBackup) -> list[str]:
    """The dump's table of contents (`pg_restore --list`): proof that pg_restore can read it."""
    listed = subprocess.run([str(pg_restore), "--list", str(backup.dump)], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise BackupInvalid(f"{backup.path} is damaged: pg_restore cannot read its dump ({tail(listed.stderr)})")
    return listed.stdout.splitlines()


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
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            server = read_server(conn)
            occupied = _tables_with_rows(conn)
            locale = _locale(conn)
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot read the database to restore into: {tail(str(exc))}") from exc
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
            conn = psycopg.connect(conninfo(admin, dbname=database), autocommit=True)
        except psycopg.Error as exc:
            last = exc
            continue
        with conn:
            yield conn
        return
    raise RestoreFailed(f"cannot connect to the server's maintenance database (postgres): {tail(str(last))}")


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
            f"({tail(str(exc), 200)}): grant it CREATEDB, or set GRIDGOV_DATABASE_ADMIN_URL to an administrator"
        ) from None
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot create the scratch database {scratch}: {tail(str(exc))}") from None


def _prepare_scratch(admin: str, scratch: str, manifest: Manifest) -> None:
    """The backup's extensions, created by the administrator (the dump's own CREATE EXTENSION entries are skipped)."""
    with psycopg.connect(conninfo(admin, dbname=scratch), autocommit=True) as conn:
        for name in sorted(manifest.extensions):
            if name == "plpgsql":
                continue
            try:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
            except psycopg.Error as exc:
                raise RestoreFailed(
                    f"cannot create the extension {name} as role {conn.info.user} ({tail(str(exc), 300)}); "
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
    with psycopg.connect(conninfo(admin, dbname=scratch)) as conn:
        extension_tables = {(str(s), str(t)) for s, t in conn.execute(EXTENSION_TABLES)}
    entries = backup.dump.with_name("restore.list")
    entries.write_text("\n".join(_restore_entries(toc, extension_tables)) + "\n")
    command = [
        str(pg_client("pg_restore", major)),
        "--no-owner",
        "--exit-on-error",
        f"--jobs={max(1, min(4, os.cpu_count() or 1))}",
        f"--use-list={entries}",
        f"--dbname={conninfo(url, dbname=scratch, password=False)}",
        str(backup.dump),
    ]
    done = subprocess.run(command, env=client_env(url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RestoreFailed(f"pg_restore failed ({done.returncode}): {tail(done.stderr)}")


def _check_copy(url: str, scratch: str, manifest: Manifest) -> None:
    """Every table of the scratch copy has the manifest's row count and checksum (RestoreFailed otherwise)."""
    try:
        with psycopg.connect(conninfo(url, dbname=scratch), autocommit=True) as conn:
            conn.execute("ANALYZE")  # pg_restore leaves the planner without statistics
            found = table_states(conn)
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot read the restored copy: {tail(str(exc))}") from exc
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
        raise RestoreFailed(f"cannot give {scratch} the settings and privileges of {target}: {tail(str(exc))}") from exc


def _swap(conn: psycopg.Connection[Any], *, target: str, scratch: str, replaced: str) -> bool:
    """Close the target, rename it away and the scratch copy into its name in one transaction; drop the old one."""
    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(target)))
    except psycopg.Error as exc:
        raise RestoreFailed(f"cannot close {target} to new connections: {tail(str(exc))}") from exc
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
                    raise RestoreFailed(f"sessions of other roles keep {target} open: {tail(str(exc))}") from exc
                time.sleep(0.25)
    except BaseException as exc:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(target)))
        if isinstance(exc, psycopg.Error):
            raise RestoreFailed(f"cannot swap the restored copy in: {tail(str(exc))}") from exc
        raise
    try:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(replaced)))
    except psycopg.Error:
        return False  # the restore is done; the replaced database stays behind under its own name
    return True


def _drop(conn: psycopg.Connection[Any], database: str) -> None:
    # The original error matters more; a left-over scratch database is named for what it is.
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
