"""api.cli.registrations: `gridgov registrations`, registration events (登记事件) accepted from a file and relayed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import engine, fail

app = typer.Typer(help="Registration events (登记事件): import and relay.", no_args_is_help=True)


@app.command("import")
def registrations_import(
    input_path: Annotated[Path, typer.Argument(help="CSV (with a header) or JSON lines.", metavar="FILE")],
    relay: Annotated[bool, typer.Option(help="Process the accepted events now (tasks pushed).")] = True,
) -> None:
    """Accept registration events from a file (idempotent by event_id); rejected rows are listed and queued."""
    import time

    from address_library.service import Geocoder
    from supervision.errors import InvalidInput
    from supervision.event_files import format_rejections, import_events, read_event_rows
    from supervision.outbox import relay_pending

    if not input_path.is_file():
        raise fail(f"cannot read {input_path}: no such file", code=2)
    with engine() as bound:
        started = time.perf_counter()
        try:
            report = import_events(bound, read_event_rows(input_path), source=input_path.name)
        except InvalidInput as exc:
            raise fail(str(exc), code=2) from exc
        except UnicodeDecodeError:
            raise fail(f"{input_path} is not UTF-8 text", code=2) from None
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
                    with bound.connect() as conn:
                        geocoder = Geocoder.load(conn)
                return geocoder

            done = relay_pending(bound, source)
            typer.echo(f"{done:,} events processed in {time.perf_counter() - started:.1f} s")
    if report.rejected:
        raise typer.Exit(3)
