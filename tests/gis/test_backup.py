"""An operator backs the city up into one file with `gridgov db backup` and gets it back, whole or not at all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg import sql
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate
from gis.backup import backup_database
from gis.cluster import LocalCluster, free_port
from gis.pg_clients import pg_client
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db

# The tables whose every row the tests compare, read here without gis.backup's own checksums.
KEY_TABLES = (
    "public.town",
    "public.community",
    "public.grid",
    "public.address",
    "public.entity",
    "public.entity_licence",
    "public.worker",
    "public.clue",
    "public.task",
    "public.task_event",
    "public.registration_event",
    "public.app_user",
    "synthetic.hotspot",
)


def gridgov(*args: str, url: str | None, admin_url: str | None = None, **env: str | None) -> Result:
    """Run `gridgov ARGS` on the database at `url`, with `admin_url` as GRIDGOV_DATABASE_ADMIN_URL."""
    environment = {"GRIDGOV_DATABASE_URL": url, "GRIDGOV_DATABASE_ADMIN_URL": admin_url, **env}
    return CliRunner().invoke(app, list(args), env=environment)


def state_of(settings: DatabaseSettings) -> dict[str, object]:
    """Row count of every table, every row of the key tables (hashed) and every sequence's position."""
    state: dict[str, object] = {}
    with psycopg.connect(settings.libpq_url()) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'synthetic') AND table_type = 'BASE TABLE' "
            "AND table_name <> 'spatial_ref_sys' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()
            state[f"{schema}.{table} rows"] = count[0] if count else None
        for name in KEY_TABLES:
            schema, table = name.split(".")
            keys = [
                column
                for (column,) in conn.execute(
                    "SELECT k.column_name FROM information_schema.table_constraints c "
                    "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
                    "WHERE c.table_schema = %s AND c.table_name = %s AND c.constraint_type = 'PRIMARY KEY' "
                    "ORDER BY k.ordinal_position",
                    (schema, table),
                )
            ]
            assert keys, f"{name} has no primary key"
            rows = conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                    sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, keys))
                )
            ).fetchall()
            state[f"{name} content"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        for schema, sequence, last_value in conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences "
            "WHERE schemaname IN ('public', 'synthetic') ORDER BY 1, 2"
        ):
            state[f"{schema}.{sequence} at"] = last_value
    return state


def databases_like(cluster: LocalCluster, name: str) -> set[str]:
    """The databases of the cluster named `name` or `name_…` (scratch and replaced copies of a restore)."""
    with psycopg.connect(cluster.superuser_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s)", (name, name + "_")
        ).fetchall()
    return {row[0] for row in rows}


def database_name(settings: DatabaseSettings) -> str:
    assert settings.database_url is not None
    return settings.database_url.rsplit("/", 1)[1]


def execute(settings: DatabaseSettings, *statements: str | sql.Composable) -> None:
    with psycopg.connect(settings.libpq_url(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def manifest_of(path: Path) -> dict[str, object]:
    with tarfile.open(path) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest: dict[str, object] = json.load(member)
    return manifest


def rewrite(
    source: Path, target: Path, *, manifest: dict[str, object] | None = None, flip_dump_byte: bool = False
) -> Path:
    """A copy of a backup with another manifest, or one byte of its dump changed."""
    with tarfile.open(source) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest).encode()
    if flip_dump_byte:
        dump = bytearray(members["database.dump"])
        dump[len(dump) // 2] ^= 0xFF
        members["database.dump"] = bytes(dump)
    with tarfile.open(target, "w") as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return target


@pytest.fixture
def city(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A database of its own holding the test city, for one test."""
    name = f"b_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    yield DatabaseSettings(database_url=pg_cluster.url(name))
    for database in databases_like(pg_cluster, name):
        pg_cluster.drop_database(database)


@pytest.fixture
def fresh(pg_cluster: LocalCluster) -> Iterator[DatabaseSettings]:
    """A new database with PostGIS and nothing else, as on a new server."""
    name = f"f_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    yield DatabaseSettings(database_url=pg_cluster.url(name))
    for database in databases_like(pg_cluster, name):
        pg_cluster.drop_database(database)


@pytest.fixture(scope="module")
def backup_file(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of this module's test city, made with the command line."""
    path = tmp_path_factory.mktemp("backups") / "city.gridgov-backup"
    result = gridgov("db", "backup", "--out", str(path), url=db.database_url)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def head(db: DatabaseSettings) -> str:
    revision = ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()
    assert revision is not None
    return revision


def test_a_restore_brings_back_exactly_the_city_that_was_backed_up(
    city: DatabaseSettings, pg_cluster: LocalCluster, tmp_path: Path, head: str
) -> None:
    execute(city, "INSERT INTO app_user (username, password_hash, role) VALUES ('alice', 'argon2-x', 'dispatcher')")
    path = tmp_path / "city.gridgov-backup"

    backup = gridgov("db", "backup", "--out", str(path), url=city.database_url)

    assert backup.exit_code == 0, backup.output
    backed_up = state_of(city)
    table_count = sum(key.endswith(" rows") for key in backed_up)
    assert backup.stdout.startswith(f"backup written to {path}: schema revision {head}, {table_count} tables, ")
    assert path.stat().st_mode & 0o777 == 0o600  # it holds password hashes
    # The manifest describes the same snapshot as the dump: the counts the operator can read match the database.
    manifest = manifest_of(path)
    assert manifest["format"] == "gridgov-backup" and manifest["format_version"] == 1
    assert manifest["schema_revision"] == head == migrate.current_revision(city)
    tables = manifest["tables"]
    assert isinstance(tables, dict)
    assert {f"{name} rows": entry["rows"] for name, entry in tables.items()} == {
        key: value for key, value in backed_up.items() if key.endswith(" rows")
    }
    assert "public.spatial_ref_sys" not in tables  # PostGIS's own table comes with PostGIS
    assert all(re.fullmatch(r"[0-9a-f]{32}", entry["md5"]) for entry in tables.values())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(manifest["created_at"]))
    assert str(manifest["postgresql_version"]).startswith("15.") and manifest["postgis_version"]
    assert manifest["gridgov_version"] == metadata.version("gridgov")
    with tarfile.open(path) as archive:
        assert archive.getnames() == ["manifest.json", "database.dump"]
        dump = archive.extractfile("database.dump")
        assert dump is not None
        assert hashlib.sha256(dump.read()).hexdigest() == manifest["dump"]["sha256"]  # type: ignore[index]

    # Work goes on: rows deleted, updated and added in several tables.
    execute(
        city,
        "DELETE FROM clue WHERE id % 7 = 0",
        "DELETE FROM entity_licence WHERE id % 5 = 0",
        "UPDATE entity SET name = name || '（已变更）' WHERE uscc IN (SELECT uscc FROM entity ORDER BY uscc LIMIT 50)",
        "UPDATE worker SET active = false, capacity = capacity + 1 WHERE id % 3 = 0",
        "UPDATE app_user SET role = 'admin' WHERE username = 'alice'",
        "INSERT INTO app_user (username, password_hash, role) VALUES ('bob', 'argon2-y', 'command_centre')",
        "DELETE FROM synthetic.hotspot WHERE id = (SELECT min(id) FROM synthetic.hotspot)",
    )
    changed = state_of(city)
    assert changed != backed_up

    # A database that holds data is not replaced by accident.
    refused = gridgov("db", "restore", str(path), url=city.database_url, admin_url=pg_cluster.superuser_url())
    assert refused.exit_code != 0
    assert "holds data" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert state_of(city) == changed

    restored = gridgov(
        "db", "restore", str(path), "--force", url=city.database_url, admin_url=pg_cluster.superuser_url()
    )

    assert restored.exit_code == 0, restored.output
    name = database_name(city)
    assert restored.stdout.strip() == (
        f"restored city.gridgov-backup into {name}: backup of {manifest['created_at']}, schema revision {head}, "
        f"{table_count} tables, {manifest['total_rows']:,} rows"
    )
    assert state_of(city) == backed_up
    assert databases_like(pg_cluster, name) == {name}  # no scratch or replaced copy left behind
    with psycopg.connect(city.libpq_url()) as conn:
        # Everything of the project belongs to the application role, as before; PostGIS to the administrator.
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'synthetic') AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
        ).fetchall()
        assert owners == [("gridgov",)]
        assert conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone() == ("gridgov",)
        # The restored city takes new work: sequences continue after the restored rows.
        conn.execute("INSERT INTO app_user (username, password_hash, role) VALUES ('carol', 'argon2-z', 'admin')")
    assert migrate.current_revision(city) == head


def test_the_databases_own_settings_and_grants_survive_a_restore(
    city: DatabaseSettings, pg_cluster: LocalCluster, backup_file: Path
) -> None:
    name = database_name(city)
    execute(
        city,
        sql.SQL("ALTER DATABASE {} SET work_mem = '77MB'").format(sql.Identifier(name)),
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)),
    )

    result = gridgov(
        "db", "restore", str(backup_file), "--force", url=city.database_url, admin_url=pg_cluster.superuser_url()
    )

    assert result.exit_code == 0, result.output
    with psycopg.connect(city.libpq_url()) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("77MB",)
        acl = conn.execute("SELECT datacl::text[] FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert acl is not None
    assert sorted(acl[0]) == ["=c/gridgov", "gridgov=CTc/gridgov"]


def test_on_the_project_local_cluster_a_backup_lands_in_the_state_folder_and_restores_into_a_new_database(
    pg_cluster: LocalCluster, template_city: str
) -> None:
    # The test cluster stands in for the checkout's own cluster: same layout (state folder holding pg/ and the
    # generated passwords), no GRIDGOV_DATABASE_URL, and the superuser comes from the cluster itself.
    state_dir = pg_cluster.data_dir.parent
    source, target = f"l_{uuid.uuid4().hex[:12]}", f"n_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(source, template_city)
    local = {"GRIDGOV_STATE_DIR": str(state_dir), "GRIDGOV_PG_PORT": str(pg_cluster.port)}
    try:
        backup = gridgov("db", "backup", url=None, GRIDGOV_PG_DATABASE=source, **local)
        assert backup.exit_code == 0, backup.output
        written = Path(backup.stdout.split("backup written to ", 1)[1].split(":", 1)[0])
        assert written.parent == state_dir / "backups"
        assert re.fullmatch(r"gridgov-\d{8}T\d{6}Z\.gridgov-backup", written.name)
        backed_up = state_of(DatabaseSettings(database_url=pg_cluster.url(source)))

        # A database that does not exist yet is created, empty, and takes the backup without --force.
        restore = gridgov("db", "restore", str(written), url=None, GRIDGOV_PG_DATABASE=target, **local)

        assert restore.exit_code == 0, restore.output
        assert restore.stdout.startswith(f"restored {written.name} into {target}: ")
        assert state_of(DatabaseSettings(database_url=pg_cluster.url(target))) == backed_up
        assert databases_like(pg_cluster, target) == {target}
    finally:
        for database in (source, target):
            pg_cluster.drop_database(database)


@pytest.mark.parametrize("kind", ["fresh", "migrated"])
def test_a_database_without_rows_takes_a_backup_without_force(
    kind: str, fresh: DatabaseSettings, pg_cluster: LocalCluster, backup_file: Path, db: DatabaseSettings
) -> None:
    if kind == "migrated":  # `gridgov db up` on a new server: every table, no row
        migrate.upgrade(fresh)

    result = gridgov("db", "restore", str(backup_file), url=fresh.database_url, admin_url=pg_cluster.superuser_url())

    assert result.exit_code == 0, result.output
    assert state_of(fresh) == state_of(db)


def test_a_backup_of_an_older_schema_is_brought_to_head_after_the_restore(
    fresh: DatabaseSettings, pg_cluster: LocalCluster, tmp_path: Path, head: str
) -> None:
    old = f"o_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(old)
    try:
        older = DatabaseSettings(database_url=pg_cluster.url(old))
        migrate.upgrade(older, "0005")
        execute(older, "INSERT INTO app_user (username, password_hash, role) VALUES ('dora', 'argon2-d', 'admin')")
        path = tmp_path / "older.gridgov-backup"
        assert gridgov("db", "backup", "--out", str(path), url=older.database_url).exit_code == 0
    finally:
        pg_cluster.drop_database(old)

    result = gridgov("db", "restore", str(path), url=fresh.database_url, admin_url=pg_cluster.superuser_url())

    assert result.exit_code == 0, result.output
    assert f"schema revision 0005; schema upgraded to {head}," in result.stdout
    assert migrate.current_revision(fresh) == head
    with psycopg.connect(fresh.libpq_url()) as conn:
        assert conn.execute("SELECT username FROM app_user").fetchall() == [("dora",)]
        assert conn.execute("SELECT to_regclass('public.task_warning') IS NOT NULL").fetchone() == (True,)


def test_a_backup_taken_while_work_goes_on_is_one_consistent_moment(
    city: DatabaseSettings, fresh: DatabaseSettings, pg_cluster: LocalCluster, tmp_path: Path
) -> None:
    # Counts and checksums taken outside the dump's snapshot would disagree with it, and the restore would refuse.
    stop = threading.Event()
    written = threading.Semaphore(0)

    def keep_writing() -> None:
        with psycopg.connect(city.libpq_url(), autocommit=True) as conn:
            for n in range(100_000):
                if stop.is_set():
                    return
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO app_user (username, password_hash, role) VALUES (%s, 'h', 'admin')", (f"w{n}",)
                    )
                    conn.execute("DELETE FROM clue WHERE id = (SELECT min(id) FROM clue)")
                written.release()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert written.acquire(timeout=30)
        result = backup_database(city, tmp_path / "busy.gridgov-backup")
        assert written.acquire(timeout=30)  # the writer went on after the backup
    finally:
        stop.set()
        writer.join()
    manifest = result.manifest
    assert manifest.tables["public.app_user"].rows > 0
    assert manifest.tables["public.app_user"].rows + manifest.tables["public.clue"].rows == 8000

    restore = gridgov("db", "restore", str(result.path), url=fresh.database_url, admin_url=pg_cluster.superuser_url())

    assert restore.exit_code == 0, restore.output
    counts = state_of(fresh)
    assert counts["public.app_user rows"] == manifest.tables["public.app_user"].rows
    assert counts["public.clue rows"] == manifest.tables["public.clue"].rows


def _foreign_files(backup_file: Path, folder: Path, db: DatabaseSettings) -> dict[str, Path]:
    """Files an operator might hand to `db restore` by mistake."""
    truncated = folder / "truncated.gridgov-backup"
    truncated.write_bytes(backup_file.read_bytes()[: backup_file.stat().st_size // 2])
    random_file = folder / "random.gridgov-backup"
    random_file.write_bytes(os.urandom(200_000))
    pg_dump = pg_client("pg_dump", 15)
    env = dict(os.environ, PGPASSWORD=str(psycopg.conninfo.conninfo_to_dict(db.libpq_url())["password"]))
    plain, tar_dump = folder / "plain.dump", folder / "tar.dump"
    url_without_password = re.sub(r":[^:@/]+@", "@", db.libpq_url())
    for path, form in ((plain, "custom"), (tar_dump, "tar")):
        subprocess.run([pg_dump, f"--format={form}", f"--file={path}", url_without_password], env=env, check=True)
    manifest = manifest_of(backup_file)
    return {
        "missing": folder / "nowhere.gridgov-backup",
        "truncated": truncated,
        "random": random_file,
        "plain pg_dump": plain,
        "tar without manifest": tar_dump,
        "altered dump": rewrite(backup_file, folder / "altered.gridgov-backup", flip_dump_byte=True),
        "future format": rewrite(
            backup_file, folder / "future.gridgov-backup", manifest={**manifest, "format_version": 2}
        ),
    }


@pytest.fixture(scope="module")
def foreign_files(backup_file: Path, tmp_path_factory: pytest.TempPathFactory, db: DatabaseSettings) -> dict[str, Path]:
    return _foreign_files(backup_file, tmp_path_factory.mktemp("foreign"), db)


@pytest.fixture(scope="module")
def db_state(db: DatabaseSettings) -> dict[str, object]:
    return state_of(db)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("truncated", "is truncated"),
        ("random", "not a gridgov backup (not a tar archive)"),
        ("plain pg_dump", "not a gridgov backup (not a tar archive)"),
        ("tar without manifest", "not a gridgov backup (no manifest.json in it)"),
        ("altered dump", "the sha256 of database.dump does not match its manifest"),
        ("future format", "backup format version 2; this gridgov reads version 1"),
    ],
)
def test_a_file_that_is_not_a_whole_backup_is_refused_in_one_line_and_the_database_is_untouched(
    case: str,
    message: str,
    foreign_files: dict[str, Path],
    db: DatabaseSettings,
    db_state: dict[str, object],
    pg_cluster: LocalCluster,
) -> None:
    # --force: only the file itself may stop this restore.
    result = gridgov(
        "db", "restore", str(foreign_files[case]), "--force", url=db.database_url, admin_url=pg_cluster.superuser_url()
    )

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cannot restore: ") and message in lines[0], lines[0]
    assert str(foreign_files[case]) in lines[0]
    assert state_of(db) == db_state
    assert databases_like(pg_cluster, database_name(db)) == {database_name(db)}


def test_a_copy_that_disagrees_with_its_manifest_is_never_swapped_in(
    backup_file: Path, tmp_path: Path, db: DatabaseSettings, db_state: dict[str, object], pg_cluster: LocalCluster
) -> None:
    # A manifest that promises one clue more than the dump holds (its sha256 still matches the dump).
    manifest = manifest_of(backup_file)
    tables = manifest["tables"]
    assert isinstance(tables, dict)
    clues = tables["public.clue"]["rows"]
    tables["public.clue"]["rows"] = clues + 1
    lying = rewrite(backup_file, tmp_path / "lying.gridgov-backup", manifest=manifest)

    result = gridgov("db", "restore", str(lying), "--force", url=db.database_url, admin_url=pg_cluster.superuser_url())

    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"restore failed: the restored copy does not match the backup: public.clue has {clues:,} rows "
        f"(backup: {clues + 1:,})"
    )
    assert state_of(db) == db_state
    assert databases_like(pg_cluster, database_name(db)) == {database_name(db)}


def test_without_an_administrator_a_role_that_may_not_create_databases_is_told_what_it_needs(
    backup_file: Path, db: DatabaseSettings, db_state: dict[str, object], pg_cluster: LocalCluster
) -> None:
    # An external server with no GRIDGOV_DATABASE_ADMIN_URL: the platform's role (NOCREATEDB here) must do it alone.
    result = gridgov("db", "restore", str(backup_file), "--force", url=db.database_url, admin_url=None)

    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("restore failed: role gridgov may not create the scratch database")
    assert "grant it CREATEDB, or set GRIDGOV_DATABASE_ADMIN_URL" in last
    assert state_of(db) == db_state
    assert databases_like(pg_cluster, database_name(db)) == {database_name(db)}


@pytest.mark.parametrize("command", ["backup --out OUT", "restore FILE --force"])
def test_a_server_that_does_not_answer_gives_a_clear_message(command: str, backup_file: Path, tmp_path: Path) -> None:
    url = f"postgresql://gridgov:secret@127.0.0.1:{free_port()}/gridgov"
    paths = {"OUT": str(tmp_path / "new.gridgov-backup"), "FILE": str(backup_file)}

    result = gridgov("db", *(paths.get(word, word) for word in command.split()), url=url)

    assert result.exit_code == 3
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("database unavailable: ") and "Connection refused" in result.stderr
    assert "secret" not in result.output
    assert not (tmp_path / "new.gridgov-backup").exists()
