"""api.cli.geocode: `gridgov geocode`, a CSV of addresses geocoded in batch to standard addresses and grids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import connection, fail

if TYPE_CHECKING:
    from address_library.batch import BatchReport


def geocode_file(
    input_path: Annotated[Path, typer.Argument(help="CSV file (UTF-8) with a header row.", metavar="INPUT.csv")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV: every input row, in order, plus the answer.")],
    column: Annotated[str, typer.Option(help="The column holding the address text.")] = "address",
    workers: Annotated[int, typer.Option(help="Worker processes (default: up to 2).")] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run on the Dask cluster of this scheduler (tcp://host:8786; else GRIDGOV_DASK_SCHEDULER). "
            "The output is the same as on this machine.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Geocode a CSV of addresses to standard addresses and grids (streams millions of rows)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from address_library.batch import BatchInputError
    from gis.distributed import ClusterError, scheduler_address

    if not input_path.is_file():
        raise fail(f"cannot read {input_path}: no such file", code=2)
    address = scheduler_address(scheduler)
    with Progress(
        TextColumn("geocoding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        task = bar.add_task("rows", total=None if input_path.stat().st_size > 0 else 0)

        def progress(n: int) -> None:
            bar.advance(task, n)

        try:
            if address is None:
                report = _on_this_machine(input_path, out, column, workers, progress)
            else:
                report = _on_cluster(address, input_path, out, column, progress)
        except BatchInputError as exc:
            raise fail(f"{input_path}: {exc}", code=2) from exc
        except ClusterError as exc:
            raise fail(f"geocode on the cluster failed: {exc}", code=2) from exc
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_status.items()))
    typer.echo(f"{report.rows:,} rows written to {out} in {report.seconds:.1f} s ({statuses})")


def _on_this_machine(
    input_path: Path, out: Path, column: str, workers: int, progress: Callable[[int], None]
) -> BatchReport:
    from address_library.batch import geocode_csv
    from address_library.index_store import IndexSettings, open_current

    root = IndexSettings().index_dir

    def unsaved(exc: OSError) -> None:
        typer.secho(
            f"warning: the address index could not be saved under {root} ({exc.strerror or exc}); "
            "geocoding with an index built in memory",
            fg=typer.colors.YELLOW,
            err=True,
        )

    with connection() as conn:
        # The index store of the library's version, mapped from disk (built and saved first when missing); when it
        # cannot be saved, an index built in memory.
        try:
            geocoder = open_current(conn, root, workers=2, unsaved=unsaved)
        except MemoryError as exc:
            raise fail("not enough memory to build the address index on this machine", code=2) from exc
    return geocode_csv(geocoder, input_path, out, column=column, workers=workers or None, progress=progress)


def _on_cluster(address: str, input_path: Path, out: Path, column: str, progress: Callable[[int], None]) -> BatchReport:
    from address_library.cluster_geocode import geocode_csv_on_cluster, prepare_cluster, release_cluster
    from address_library.index_store import IndexSettings
    from gis.distributed import connect

    client = connect(address)
    try:
        with connection() as conn:
            index = prepare_cluster(client, conn, IndexSettings().index_dir)
        try:
            return geocode_csv_on_cluster(client, index, input_path, out, column=column, progress=progress)
        finally:
            release_cluster(client, index)
    finally:
        client.close()
