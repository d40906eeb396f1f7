"""api.cli.db: `gridgov db`, the PostGIS database: start, stop, status, schema, backup and restore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import database_errors, database_up, fail
from gis.settings import DatabaseSettings

app = typer.Typer(help="The PostGIS database: local cluster and schema.", no_args_is_help=True)


@app.command("up")
def db_up() -> None:
    """Start the project-local PostGIS cluster (or reach GRIDGOV_DATABASE_URL) and migrate to head."""
    from gis.settings import redact_url

    settings = database_up()
    typer.echo(f"database ready at {redact_url(settings.libpq_url())}")


@app.command("down")
def db_down() -> None:
    """Stop the project-local cluster."""
    from gis.cluster import LocalCluster

    settings = DatabaseSettings()
    if settings.database_url:
        typer.echo("GRIDGOV_DATABASE_URL is set: the external server is not ours to stop")
        return
    LocalCluster.from_settings(settings).stop()
    typer.echo("database stopped")


@app.command("status")
def db_status() -> None:
    """Say whether the database is up, at which schema revision, how durable and closed it is (exit 1 when down)."""
    from gis import migrate
    from gis.cluster import LocalCluster
    from gis.database import admin_url_for
    from gis.settings import redact_url
    from gis.status import status_of

    settings = DatabaseSettings()
    if not settings.database_url:
        cluster = LocalCluster.from_settings(settings)
        if not cluster.running():
            raise fail(f"local cluster in {cluster.data_dir} is not running (gridgov db up)")
    try:
        rev = migrate.current_revision(settings)
        status = status_of(settings, admin_url=admin_url_for(settings))
    except Exception as exc:
        raise fail(f"database unreachable: {exc}") from exc
    typer.echo(f"up: {redact_url(settings.libpq_url())} schema revision {rev or 'none'}")
    typer.echo(f"role: {status.role} ({'SUPERUSER' if status.superuser else 'not a superuser'})")
    durability = ", ".join(f"{k}={v}" for k, v in status.durability.items())
    verdict = "durable" if status.durable else "NOT DURABLE: a crash can lose or corrupt acknowledged writes"
    typer.echo(f"durability: {durability} ({verdict})")
    if status.hba_rules is None:
        rules = "pg_hba rules not visible to this role"
    else:
        rules = "; ".join(status.hba_rules)
        rules += " (TRUST: connections without a password)" if status.trusts_without_password else " (no trust)"
    typer.echo(f"authentication: password_encryption={status.password_encryption}; {rules}")
    typer.echo("versions: " + ", ".join(f"{k} {v}" for k, v in status.versions.items()))


@app.command("migrate")
def db_migrate() -> None:
    """Upgrade the schema to head."""
    database_up()
    typer.echo("schema at head")


@app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree (alembic check)."""
    from alembic.util import CommandError

    from gis import migrate

    settings = database_up()
    try:
        migrate.check(settings)
    except CommandError as exc:
        raise fail(f"models and migrations differ: {exc}") from exc
    typer.echo("models and migrations agree")


@app.command("citus-plan")
def db_citus_plan() -> None:
    """Print the SQL that distributes the schema on a Citus cluster (refused while a table breaks Citus's rules)."""
    from gis.database import make_engine
    from gis.distribution import citus_plan, foreign_key_targets, violations

    settings = database_up()
    engine = make_engine(settings)
    try:
        with database_errors(), engine.connect() as conn:
            found = violations(conn)
            targets = foreign_key_targets(conn)
    finally:
        engine.dispose()
    if found:
        raise fail("the schema is not ready for Citus (gis/distribution.py):\n" + "\n".join(f"  {v}" for v in found))
    typer.echo(citus_plan(targets), nl=False)


@app.command("url")
def db_url() -> None:
    """Print the libpq URL (postgresql://…) of the database, password included: for psql, keep it private."""
    typer.echo(DatabaseSettings().libpq_url())


@app.command("backup")
def db_backup(
    out: Annotated[
        Path | None, typer.Option(help="Backup file; default .gridgov/backups/gridgov-<UTC time>.gridgov-backup.")
    ] = None,
) -> None:
    """Back up the database into one file: pg_dump and a manifest of every table's rows and checksum (one snapshot)."""
    from gis.backup import backup_database
    from gis.database import ensure_database
    from gis.errors import BackupError

    settings = DatabaseSettings()
    with database_errors():  # a BackupError (a GisError too) is the backup's failure, not the database's
        ensure_database(settings)
        try:
            result = backup_database(settings, out)
        except BackupError as exc:
            raise fail(f"backup failed: {exc}") from exc
    manifest = result.manifest
    typer.echo(
        f"backup written to {result.path}: schema revision {manifest.schema_revision or 'none'}, "
        f"{len(manifest.tables)} tables, {manifest.total_rows:,} rows, {manifest.dump_bytes / 1e6:.1f} MB dump"
    )


@app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `gridgov db backup`.")],
    force: Annotated[bool, typer.Option(help="Replace a database that holds data.")] = False,
) -> None:
    """Restore a backup atomically: file verified, rebuilt in a scratch database, checked, then swapped in."""
    from gis.backup import opened_backup
    from gis.database import admin_url_for, ensure_database
    from gis.errors import BackupError, BackupInvalid
    from gis.restore import restore_backup

    settings = DatabaseSettings()
    try:
        with opened_backup(file) as backup:  # a bad file is refused before the database is even reached
            with database_errors():
                ensure_database(settings)
                admin_url = admin_url_for(settings)
            result = restore_backup(
                settings, backup, force=force, admin_url=admin_url, progress=lambda line: typer.echo(line, err=True)
            )
    except BackupInvalid as exc:
        raise fail(f"cannot restore: {exc}", code=2) from exc
    except BackupError as exc:
        raise fail(f"restore failed: {exc}") from exc
    manifest = result.manifest
    upgraded = f"; schema upgraded to {result.upgraded_to}" if result.upgraded_to else ""
    typer.echo(
        f"restored {file.name} into {result.database}: backup of {manifest.created_at}, "
        f"schema revision {manifest.schema_revision or 'none'}{upgraded}, {len(manifest.tables)} tables, "
        f"{manifest.total_rows:,} rows"
    )
    if result.left_behind:
        typer.echo(f"the replaced database is kept as {result.left_behind}: drop it when done", err=True)
