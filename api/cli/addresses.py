"""api.cli.addresses: `gridgov addresses`, maintenance of the standard address library (标准地址库) from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="The standard address library (标准地址库): maintenance.", no_args_is_help=True)


@app.command("import")
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

    from address_library.address_import import import_rows, read_address_file
    from address_library.errors import AddressRejected, MaintenanceError
    from grids.placement import GridPlacement

    try:  # an unreadable file is reported before the database is even started
        rows = read_address_file(file)
    except MaintenanceError as exc:
        raise fail(f"cannot import: {exc}", code=2) from exc
    try:
        with connection() as conn:
            placement = GridPlacement.load(conn)
            report = import_rows(
                conn, placement, rows, changed_by=changed_by or f"cli:{getpass.getuser()}", source=str(file)
            )
    except AddressRejected as exc:
        raise fail(str(exc)) from exc
    except MaintenanceError as exc:
        raise fail(f"import failed: {exc}") from exc
    typer.echo(report.summary())
