"""api.cli.demo: `gridgov demo`, the deterministic synthetic demo city: load it, replay days of work on it."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine

from api.cli.common import database_up, engine, fail

app = typer.Typer(help="The deterministic synthetic demo city.", no_args_is_help=True)


@app.command("load")
def demo_load(
    scale: Annotated[str, typer.Option(help="demo | full | test")] = "demo",
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic city.")] = 20201101,
    force: Annotated[bool, typer.Option(help="Rebuild even if this city is already loaded.")] = False,
) -> None:
    """Load the real territory and the synthetic city (idempotent, all or nothing)."""
    from synthetic.loader import SCALES, load_demo

    if scale not in SCALES:
        raise fail(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}", code=2)
    settings = database_up()
    summary = load_demo(settings, scale=scale, seed=seed, force=force, progress=True)
    typer.echo(summary)
    with engine() as bound:
        _refresh_workload(bound)


@app.command("simulate")
def demo_simulate(
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to replay.")] = 30,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default yesterday (Asia/Shanghai).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20201101,
    review_backlog_days: Annotated[
        int, typer.Option(min=0, max=366, help="Leave the review items of the last N days for the dispatchers.")
    ] = 0,
) -> None:
    """Replay registrations, field work, department answers and clues over N days (adds to what exists)."""
    from datetime import date

    from address_library.service import Geocoder
    from synthetic.simulate import simulate

    try:
        last = date.fromisoformat(end) if end else None
    except ValueError:
        raise fail(f"--end {end!r} is not a date (YYYY-MM-DD)", code=2) from None
    with engine() as bound:
        with bound.connect() as conn:
            geocoder = Geocoder.load(conn)
        try:
            report = simulate(
                bound, lambda: geocoder, days=days, end=last, seed=seed,
                progress=lambda day: typer.echo(f"  {day} done", err=True), review_backlog_days=review_backlog_days,
            )  # fmt: skip
        except ValueError as exc:
            raise fail(str(exc), code=2) from exc
        typer.echo(report.summary())
        _refresh_workload(bound)


def _refresh_workload(bound: Engine) -> None:
    """Compute every grid's workload of the active version, so the dashboard colours grids by it from the start."""
    import time

    from planning.workload_service import refresh

    started = time.perf_counter()
    with bound.begin() as conn:
        written = refresh(conn)
    typer.echo(f"workload of {written:,} grids computed in {time.perf_counter() - started:.1f} s")
