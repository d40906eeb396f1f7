"""api.cli: the `gridgov` command line, a thin face over the services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from gis import clock
from gis.errors import GisError
from gis.settings import DatabaseSettings, ServerSettings

app = typer.Typer(help="gridgov: 东莞网格化治理平台 (grid governance for Dongguan).", no_args_is_help=True)
db_app = typer.Typer(help="The PostGIS database: local cluster and schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The deterministic synthetic demo city.", no_args_is_help=True)
grids_app = typer.Typer(help="The territory: towns, communities, grids.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(grids_app, name="grids")
users_app = typer.Typer(help="Accounts: users with a role and a scope.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for programs (sent as X-API-Key).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(apikey_app, name="apikey")
addresses_app = typer.Typer(help="The standard address library (标准地址库): maintenance.", no_args_is_help=True)
app.add_typer(addresses_app, name="addresses")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _database_up() -> DatabaseSettings:
    """Start (or reach) the database and migrate it to head."""
    from gis import migrate
    from gis.database import ensure_database

    settings = DatabaseSettings()
    try:
        ensure_database(settings)
        migrate.upgrade(settings)
    except (GisError, OperationalError) as exc:
        raise _fail(f"database unavailable: {exc}", code=3) from exc
    return settings


@db_app.command("up")
def db_up() -> None:
    """Start the project-local PostGIS cluster (or reach GRIDGOV_DATABASE_URL) and migrate to head."""
    from gis.settings import redact_url

    settings = _database_up()
    typer.echo(f"database ready at {redact_url(settings.libpq_url())}")


@db_app.command("down")
def db_down() -> None:
    """Stop the project-local cluster."""
    from gis.cluster import LocalCluster

    settings = DatabaseSettings()
    if settings.database_url:
        typer.echo("GRIDGOV_DATABASE_URL is set: the external server is not ours to stop")
        return
    LocalCluster.from_settings(settings).stop()
    typer.echo("database stopped")


@db_app.command("status")
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
            raise _fail(f"local cluster in {cluster.data_dir} is not running (gridgov db up)")
    try:
        rev = migrate.current_revision(settings)
        status = status_of(settings, admin_url=admin_url_for(settings))
    except Exception as exc:
        raise _fail(f"database unreachable: {exc}") from exc
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


@db_app.command("migrate")
def db_migrate() -> None:
    """Upgrade the schema to head."""
    _database_up()
    typer.echo("schema at head")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree (alembic check)."""
    from alembic.util import CommandError

    from gis import migrate

    settings = _database_up()
    try:
        migrate.check(settings)
    except CommandError as exc:
        raise _fail(f"models and migrations differ: {exc}") from exc
    typer.echo("models and migrations agree")


@db_app.command("url")
def db_url() -> None:
    """Print the libpq URL (postgresql://…) of the database, password included: for psql, keep it private."""
    typer.echo(DatabaseSettings().libpq_url())


@db_app.command("backup")
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
    try:
        ensure_database(settings)
        result = backup_database(settings, out)
    except BackupError as exc:
        raise _fail(f"backup failed: {exc}") from exc
    except (GisError, OperationalError) as exc:
        raise _fail(f"database unavailable: {exc}", code=3) from exc
    manifest = result.manifest
    typer.echo(
        f"backup written to {result.path}: schema revision {manifest.schema_revision or 'none'}, "
        f"{len(manifest.tables)} tables, {manifest.total_rows:,} rows, {manifest.dump_bytes / 1e6:.1f} MB dump"
    )


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `gridgov db backup`.")],
    force: Annotated[bool, typer.Option(help="Replace a database that holds data.")] = False,
) -> None:
    """Restore a backup atomically: file verified, rebuilt in a scratch database, checked, then swapped in."""
    from gis.backup import opened_backup, restore_backup
    from gis.database import admin_url_for, ensure_database
    from gis.errors import BackupError, BackupInvalid

    settings = DatabaseSettings()
    try:
        with opened_backup(file) as backup:  # a bad file is refused before the database is even reached
            try:
                ensure_database(settings)
                admin_url = admin_url_for(settings)
            except (GisError, OperationalError) as exc:
                raise _fail(f"database unavailable: {exc}", code=3) from exc
            result = restore_backup(
                settings, backup, force=force, admin_url=admin_url, progress=lambda line: typer.echo(line, err=True)
            )
    except BackupInvalid as exc:
        raise _fail(f"cannot restore: {exc}", code=2) from exc
    except BackupError as exc:
        raise _fail(f"restore failed: {exc}") from exc
    manifest = result.manifest
    upgraded = f"; schema upgraded to {result.upgraded_to}" if result.upgraded_to else ""
    typer.echo(
        f"restored {file.name} into {result.database}: backup of {manifest.created_at}, "
        f"schema revision {manifest.schema_revision or 'none'}{upgraded}, {len(manifest.tables)} tables, "
        f"{manifest.total_rows:,} rows"
    )
    if result.left_behind:
        typer.echo(f"the replaced database is kept as {result.left_behind}: drop it when done", err=True)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
) -> None:
    """Serve the API and the map dashboard (migrates first)."""
    import uvicorn

    from api.main import create_app

    _database_up()
    server = ServerSettings()
    # One command runs the whole platform: the API, the outbox relay and the scheduled jobs.
    application = create_app(server_settings=server, run_jobs=True)
    uvicorn.run(application, host=host or server.host, port=port or server.port, log_level="info")


@demo_app.command("load")
def demo_load(
    scale: Annotated[str, typer.Option(help="demo | full | test")] = "demo",
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic city.")] = 20201101,
    force: Annotated[bool, typer.Option(help="Rebuild even if this city is already loaded.")] = False,
) -> None:
    """Load the real territory and the synthetic city (idempotent, all or nothing)."""
    from synthetic.loader import SCALES, load_demo

    if scale not in SCALES:
        raise _fail(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}", code=2)
    settings = _database_up()
    summary = load_demo(settings, scale=scale, seed=seed, force=force, progress=True)
    typer.echo(summary)


@grids_app.command("import")
def grids_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile.")],
    level: Annotated[str, typer.Option(help="town | community | grid")] = "grid",
) -> None:
    """Import boundaries: all features load, or none (a report lists each rejected feature)."""
    from grids.errors import GridsError
    from grids.service import ImportRejected, import_features
    from supervision.territory import relocate_community_points

    if level not in ("town", "community", "grid"):
        raise _fail(f"--level must be town, community or grid, not {level!r}", code=2)
    settings = _database_up()
    try:
        report = import_features(settings, file, level=level, on_grids_changed=relocate_community_points)
    except ImportRejected as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except GridsError as exc:
        raise _fail(f"import failed: {exc}") from exc
    typer.echo(report)


@grids_app.command("repair-report")
def grids_repair_report() -> None:
    """Print the stored topology-repair report of the towns."""
    from grids.service import stored_repair_report

    settings = _database_up()
    typer.echo(stored_repair_report(settings))


@addresses_app.command("import")
def addresses_import(
    file: Annotated[
        Path, typer.Argument(help="CSV (full_text, lon, lat, level[, parent_full_text]) or GeoPackage of points.")
    ],
    changed_by: Annotated[
        str | None, typer.Option(help="Who is recorded in the address history (default: cli:<OS user>).")
    ] = None,
) -> None:
    """Import standard addresses: every row loads, or none (a report lists each rejected row); re-runs are no-ops."""
    import getpass

    from address_library.maintenance import AddressRejected, MaintenanceError, import_rows, read_address_file
    from gis.database import make_engine
    from grids.placement import GridPlacement

    try:  # an unreadable file is reported before the database is even started
        rows = read_address_file(file)
    except MaintenanceError as exc:
        raise _fail(f"cannot import: {exc}", code=2) from exc
    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            placement = GridPlacement.load(conn)
            report = import_rows(
                conn, placement, rows, changed_by=changed_by or f"cli:{getpass.getuser()}", source=str(file)
            )
    except AddressRejected as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except MaintenanceError as exc:
        raise _fail(f"import failed: {exc}") from exc
    finally:
        engine.dispose()
    typer.echo(report.summary())


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Sign-in name.")],
    role: Annotated[
        str,
        typer.Option(
            help="admin | command_centre | town_leader | dispatcher | grid_worker | department_officer | api_client"
        ),
    ],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters.")],
    scope: Annotated[
        str | None,
        typer.Option(
            help="Town code (town_leader), community code (dispatcher), worker id (grid_worker), "
            "department code (department_officer); none for admin and command_centre."
        ),
    ] = None,
) -> None:
    """Create an account (the password is stored as an argon2 hash)."""
    from api.auth import service
    from api.auth.errors import AuthError
    from api.auth.roles import parse_role, validate_scope
    from gis.database import make_engine

    try:  # format errors are reported before the database is even started
        validate_scope(parse_role(role), scope)
    except AuthError as exc:
        raise _fail(str(exc), code=2) from exc
    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            user = service.create_user(conn, username=username, role=role, scope=scope, password=password)
    except AuthError as exc:
        raise _fail(str(exc), code=2) from exc
    finally:
        engine.dispose()
    where = f" scope {user.scope}" if user.scope else ""
    typer.echo(f"created user {user.username} ({user.role}{where})")


@users_app.command("ensure-demo")
def users_ensure_demo() -> None:
    """Create the command-centre account `demo` when no account exists, and say how to sign in."""
    from api.auth import service
    from gis.database import make_engine

    settings = _database_up()
    server = ServerSettings()
    url = f"http://{server.host}:{server.port}/"
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            created = service.ensure_demo_user(conn)
    finally:
        engine.dispose()
    if created is None:
        typer.echo(f"accounts exist; sign in at {url}")
        return
    user, password = created
    typer.echo(f"sign in at {url}")
    typer.echo(f"  user:     {user.username}")
    typer.echo(f"  password: {password}   (shown once; set GRIDGOV_DEMO_PASSWORD to choose it)")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in lists).")],
    no_rate_limit: Annotated[bool, typer.Option("--no-rate-limit", help="Exempt this key from rate limiting.")] = False,
    rate_per_minute: Annotated[int, typer.Option(help="Requests per minute allowed to this key.")] = 600,
) -> None:
    """Create an API key and print it once (only its HMAC digest is stored)."""
    from api.auth import service
    from api.auth.errors import AuthError
    from gis.database import make_engine

    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            new = service.create_api_key(
                conn,
                ServerSettings().resolved_secret_key(),
                name=name,
                rate_limited=not no_rate_limit,
                rate_per_minute=rate_per_minute,
            )
    except AuthError as exc:
        raise _fail(str(exc), code=2) from exc
    finally:
        engine.dispose()
    limit = "no rate limit" if no_rate_limit else f"{rate_per_minute} requests/minute"
    typer.echo(new.key)
    typer.secho(f"API key {new.record.prefix}… for {new.record.name} ({limit}); it is shown only this once", err=True)


@apikey_app.command("list")
def apikey_list() -> None:
    """List the keys by prefix (never the keys themselves)."""
    from api.auth import service
    from gis.database import make_engine

    engine = make_engine(_database_up())
    try:
        with engine.connect() as conn:
            keys = service.list_api_keys(conn)
    finally:
        engine.dispose()
    for record, created_at, revoked_at in keys:
        limit = f"{record.rate_per_minute}/min" if record.rate_limited else "unlimited"
        state = f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "active"
        typer.echo(f"{record.prefix}…  {record.name}  {limit}  created {created_at:%Y-%m-%d %H:%M}  {state}")


@apikey_app.command("revoke")
def apikey_revoke(prefix: Annotated[str, typer.Argument(help="The key's first 8 characters (gg_…).")]) -> None:
    """Revoke a key (servers stop accepting it within the key cache time, 60 s by default)."""
    from api.auth import service
    from gis.database import make_engine

    engine = make_engine(_database_up())
    try:
        with engine.begin() as conn:
            count = service.revoke_api_key(conn, prefix)
    finally:
        engine.dispose()
    if count == 0:
        raise _fail(f"no active key with prefix {prefix}")
    typer.echo(f"revoked {count} key(s) with prefix {prefix}")


@demo_app.command("simulate")
def demo_simulate(
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to replay.")] = 30,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default yesterday (Asia/Shanghai).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20201101,
) -> None:
    """Replay registrations, field work, department answers and clues over N days (adds to what exists)."""
    from datetime import date

    from address_library.service import Geocoder
    from gis.database import make_engine
    from synthetic.simulate import simulate

    try:
        last = date.fromisoformat(end) if end else None
    except ValueError:
        raise _fail(f"--end {end!r} is not a date (YYYY-MM-DD)", code=2) from None
    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            geocoder = Geocoder.load(conn)
        try:
            report = simulate(
                engine, lambda: geocoder, days=days, end=last, seed=seed,
                progress=lambda day: typer.echo(f"  {day} done", err=True),
            )  # fmt: skip
        except ValueError as exc:
            raise _fail(str(exc), code=2) from exc
    finally:
        engine.dispose()
    typer.echo(report.summary())


@app.command("geocode")
def geocode_file(
    input_path: Annotated[Path, typer.Argument(help="CSV file (UTF-8) with a header row.", metavar="INPUT.csv")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV: every input row, in order, plus the answer.")],
    column: Annotated[str, typer.Option(help="The column holding the address text.")] = "address",
    workers: Annotated[int, typer.Option(help="Worker processes (default: up to 2).")] = 0,
) -> None:
    """Geocode a CSV of addresses to standard addresses and grids (streams millions of rows)."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from address_library.batch import BatchInputError, geocode_csv
    from address_library.service import Geocoder
    from gis.database import make_engine

    if not input_path.is_file():
        raise _fail(f"cannot read {input_path}: no such file", code=2)
    settings = _database_up()
    engine = make_engine(settings)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    engine.dispose()
    size = os.path.getsize(input_path)
    with Progress(
        TextColumn("geocoding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        task = bar.add_task("rows", total=None if size > 0 else 0)
        try:
            report = geocode_csv(
                geocoder,
                input_path,
                out,
                column=column,
                workers=workers or None,
                progress=lambda n: bar.advance(task, n),
            )
        except BatchInputError as exc:
            raise _fail(str(exc), code=2) from exc
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_status.items()))
    typer.echo(f"{report.rows:,} rows written to {out} in {report.seconds:.1f} s ({statuses})")


registrations_app = typer.Typer(help="Registration events (登记事件): import and relay.", no_args_is_help=True)
app.add_typer(registrations_app, name="registrations")
jobs_app = typer.Typer(help="The scheduled jobs (also run by `gridgov serve`).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@registrations_app.command("import")
def registrations_import(
    input_path: Annotated[Path, typer.Argument(help="CSV (with a header) or JSON lines.", metavar="FILE")],
    relay: Annotated[bool, typer.Option(help="Process the accepted events now (tasks pushed).")] = True,
) -> None:
    """Accept registration events from a file (idempotent by event_id); rejected rows are listed and queued."""
    import time

    from address_library.service import Geocoder
    from gis.database import make_engine
    from supervision.errors import InvalidInput
    from supervision.intake import format_rejections, import_events, read_event_rows, relay_pending

    if not input_path.is_file():
        raise _fail(f"cannot read {input_path}: no such file", code=2)
    settings = _database_up()
    engine = make_engine(settings)
    try:
        started = time.perf_counter()
        try:
            report = import_events(engine, read_event_rows(input_path), source=input_path.name)
        except InvalidInput as exc:
            raise _fail(str(exc), code=2) from exc
        except UnicodeDecodeError:
            raise _fail(f"{input_path} is not UTF-8 text", code=2) from None
        accepted_s = time.perf_counter() - started
        typer.echo(f"{report.summary()} in {accepted_s:.1f} s")
        if report.rejected:
            typer.echo(format_rejections(report.rejected), err=True, nl=False)
        if relay:
            started = time.perf_counter()
            geocoder: Geocoder | None = None

            def source() -> Geocoder:
                nonlocal geocoder
                if geocoder is None:
                    with engine.connect() as conn:
                        geocoder = Geocoder.load(conn)
                return geocoder

            done = relay_pending(engine, source)
            typer.echo(f"{done:,} events processed in {time.perf_counter() - started:.1f} s")
    finally:
        engine.dispose()
    if report.rejected:
        raise typer.Exit(3)


@jobs_app.command("campaign")
def jobs_campaign(
    year: Annotated[int | None, typer.Option(help="Campaign year (reports due for the year before).")] = None,
) -> None:
    """Annual-report campaign: every entity that has not filed goes on its grid's patrol list (idempotent)."""

    from gis.database import make_engine
    from supervision.calendar import SHANGHAI
    from supervision.campaign import run_annual_report_campaign

    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            report = run_annual_report_campaign(conn, year=year or clock.now().astimezone(SHANGHAI).year)
    finally:
        engine.dispose()
    typer.echo(f"annual-report campaign {report.year}: {report.unfiled:,} entities have not filed, "
               f"{report.added:,} added to their grids' patrol lists")  # fmt: skip


@jobs_app.command("run")
def jobs_run() -> None:
    """Run the scheduled jobs once: relay the outbox, raise deadline warnings, the campaign in March–June."""
    from address_library.service import Geocoder
    from gis.database import make_engine
    from supervision.intake import relay_pending
    from supervision.jobs import run_periodic

    settings = _database_up()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            geocoder = Geocoder.load(conn)
        relayed = relay_pending(engine, lambda: geocoder)
        result = run_periodic(engine)
    finally:
        engine.dispose()
    typer.echo(f"relayed {relayed:,} events; {result}")


def main() -> None:  # pragma: no cover - console entry
    """Entry point for `python -m api.cli`."""
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
