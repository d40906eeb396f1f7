"""api.cli.geocode: `gridgov geocode`, a CSV of addresses geocoded in batch to standard addresses and grids."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import connection, fail


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

    if not input_path.is_file():
        raise fail(f"cannot read {input_path}: no such file", code=2)
    with connection() as conn:
        geocoder = Geocoder.load(conn)
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
            raise fail(f"{input_path}: {exc}", code=2) from exc
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_status.items()))
    typer.echo(f"{report.rows:,} rows written to {out} in {report.seconds:.1f} s ({statuses})")
