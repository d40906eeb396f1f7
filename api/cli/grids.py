"""api.cli.grids: `gridgov grids`, the territory: import boundaries, print the towns' topology-repair report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import database_up, fail

app = typer.Typer(help="The territory: towns, communities, grids.", no_args_is_help=True)


@app.command("import")
def grids_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile.")],
    level: Annotated[str, typer.Option(help="town | community | grid")] = "grid",
) -> None:
    """Import boundaries: all features load, or none (a report lists each rejected feature)."""
    from grids.errors import GridsError
    from grids.service import ImportRejected, import_features
    from supervision.territory import relocate_community_points

    if level not in ("town", "community", "grid"):
        raise fail(f"--level must be town, community or grid, not {level!r}", code=2)
    settings = database_up()
    try:
        report = import_features(settings, file, level=level, on_grids_changed=relocate_community_points)
    except ImportRejected as exc:
        raise fail(str(exc)) from exc
    except GridsError as exc:
        raise fail(f"import failed: {exc}") from exc
    typer.echo(report)


@app.command("repair-report")
def grids_repair_report() -> None:
    """Print the stored topology-repair report of the towns."""
    from grids.service import stored_repair_report

    settings = database_up()
    typer.echo(stored_repair_report(settings))
