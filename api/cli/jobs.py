"""api.cli.jobs: `gridgov jobs`, the scheduled jobs run once by hand: the outbox relay, warnings, the campaign, the
cleanup of uploaded files."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import connection, engine
from gis import clock

app = typer.Typer(help="The scheduled jobs (also run by `gridgov serve`).", no_args_is_help=True)


@app.command("campaign")
def jobs_campaign(
    year: Annotated[int | None, typer.Option(help="Campaign year (reports due for the year before).")] = None,
) -> None:
    """Annual-report campaign: every entity that has not filed goes on its grid's patrol list (idempotent)."""

    from supervision.calendar import SHANGHAI
    from supervision.campaign import run_annual_report_campaign

    with connection() as conn:
        report = run_annual_report_campaign(conn, year=year or clock.now().astimezone(SHANGHAI).year)
    typer.echo(f"annual-report campaign {report.year}: {report.unfiled:,} entities have not filed, "
               f"{report.added:,} added to their grids' patrol lists")  # fmt: skip


@app.command("run")
def jobs_run() -> None:
    """Run the scheduled jobs once: relay the outbox, raise deadline warnings, the campaign in March–June."""
    from address_library.service import Geocoder
    from supervision.jobs import run_periodic
    from supervision.outbox import relay_pending

    with engine() as bound:
        with bound.connect() as conn:
            geocoder = Geocoder.load(conn)
        relayed = relay_pending(bound, lambda: geocoder)
        result = run_periodic(bound)
    typer.echo(f"relayed {relayed:,} events; {result}")


@app.command("cleanup")
def jobs_cleanup() -> None:
    """Remove batch geocoding files past their retention period and give stored files private modes (0600/0700)."""
    from api.files import cleanup_files
    from gis.settings import ServerSettings

    with connection() as conn:
        result = cleanup_files(conn, ServerSettings(), clock.now())
    typer.echo(
        f"cleanup: {result['jobs_purged']:,} expired batch jobs purged, {result['files_removed']:,} files removed, "
        f"{result['modes_tightened']:,} file modes tightened"
    )
