"""gis.backup: making a one-file backup of the database (pg_dump and a manifest of one snapshot) and verifying one.

A backup is an uncompressed tar holding `manifest.json` and `database.dump` (pg_dump, custom format). The manifest
names the schema revision, the exact row count and a checksum of every table of the project's schemas, the
software versions and the sha256 of the dump; counts, checksums and dump come from one exported snapshot. Its
restore is gis.restore.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import psycopg

from gis.backup_manifest import DUMP_NAME, MANIFEST_NAME, Manifest, TableState, table_states
from gis.errors import BackupFailed, BackupInvalid
from gis.pg_clients import Server, client_env, conninfo, pg_client, read_server, tail
from gis.settings import DatabaseSettings

SUFFIX = ".gridgov-backup"


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
                raise BackupFailed(f"cannot read the database: {tail(str(exc))}") from exc
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


def _dump_in_snapshot(url: str, dump: Path) -> tuple[Server, dict[str, TableState], str | None, str]:
    """pg_dump and the counts and checksums, all of the snapshot this transaction exports while it stays open."""
    with psycopg.connect(conninfo(url)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = str(row[0])
        server = read_server(conn)
        pg_dump = pg_client("pg_dump", server.major)
        version = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, check=False)
        command = [
            str(pg_dump),
            "--format=custom",
            f"--snapshot={snapshot}",
            f"--file={dump}",
            f"--dbname={conninfo(url, password=False)}",
        ]
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                command, env=client_env(url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
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
                    f"pg_dump failed ({process.returncode}): {tail(errors.read().decode(errors='replace'))}"
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
