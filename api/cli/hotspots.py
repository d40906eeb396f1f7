"""api.cli.hotspots: `gridgov hotspots`, the hotspots of many towns to one CSV or GeoJSON file, on this machine or
on a Dask cluster (the same output)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Connection, text

from api.cli.common import connection, fail

# The heatmap API's choices and defaults (api.routers.heatmap): grids, Gi*, per residents, clues, the last 30 days.
METHODS = ("gi_star", "rate")
UNITS = ("grid", "h3", "h3:7", "h3:8", "h3:9", "h3:10")
PERS = ("residents", "entities")
KINDS = ("clue", "unlicensed", "problem", "all")
SUFFIXES = (".csv", ".geojson")
# `--unit h3` means the heatmap page's resolution.
H3_DEFAULT = "h3:9"


def hotspots(
    towns: Annotated[str, typer.Option("--towns", help="all, or town codes separated by commas.")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .geojson.")],
    method: Annotated[str, typer.Option(help="gi_star | rate")] = "gi_star",
    unit: Annotated[str, typer.Option(help="grid | h3 (resolution 9) | h3:7 … h3:10")] = "grid",
    per: Annotated[str, typer.Option(help="Rates per residents | entities (method rate).")] = "residents",
    kind: Annotated[str, typer.Option(help="clue | unlicensed | problem | all")] = "clue",
    days: Annotated[int, typer.Option(help="N days (Asia/Shanghai) ending on --until, that day included.")] = 30,
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until",
            formats=["%Y-%m-%d"],
            help="The last day of the window, YYYY-MM-DD (default: today in Asia/Shanghai).",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address (default: GRIDGOV_DASK_SCHEDULER; none: this machine)."
        ),
    ] = None,
) -> None:
    """Hot and cold grids or H3 cells of many towns, each town analysed as its heatmap page does."""
    from api.deps import day_window
    from api.errors import InvalidRequest
    from gis.distributed import ClusterError, atomic_output, connect, scheduler_address
    from maps.errors import MapsError
    from maps.heat.cluster import hotspots_by_town, load_town_inputs, towns_csv, towns_geojson

    for name, value, allowed in (("--method", method, METHODS), ("--unit", unit, UNITS), ("--per", per, PERS),
                                 ("--kind", kind, KINDS)):  # fmt: skip
        if value not in allowed:
            raise fail(f"{name} must be one of {', '.join(allowed)}, not {value!r}", code=2)
    if out.suffix.lower() not in SUFFIXES:
        raise fail(f"--out must end in .csv or .geojson, not {out.name!r}", code=2)
    if not out.parent.is_dir():
        raise fail(f"cannot write {out}: no such directory {out.parent}", code=2)
    if not 1 <= days <= 3660:
        raise fail(f"--days must be between 1 and 3660, not {days}", code=2)
    wanted = [code.strip() for code in towns.split(",") if code.strip()]
    if not wanted:
        raise fail("--towns must be all or town codes separated by commas", code=2)
    try:
        since, end = day_window(None, until.date() if until else None, default_days=days)
    except InvalidRequest as exc:
        raise fail(f"--until: {exc}", code=2) from exc
    assert since is not None and end is not None

    address = scheduler_address(scheduler)
    try:
        client = connect(address) if address is not None else None
    except ClusterError as exc:
        raise fail(str(exc), code=2) from exc
    try:
        with connection() as conn:
            codes = _towns(conn, wanted)
            inputs = load_town_inputs(
                conn, codes, since=since, until=end, unit=H3_DEFAULT if unit == "h3" else unit, method=method,
                kind=kind, per=per,
            )  # fmt: skip
        by_town = hotspots_by_town(inputs, client=client)
    except MapsError as exc:
        raise fail(f"hotspots failed: {exc}", code=2) from exc
    except ClusterError as exc:
        raise fail(f"hotspots on the cluster failed: {exc}", code=2) from exc
    finally:
        if client is not None:
            client.close()
    text = towns_csv(by_town) if out.suffix.lower() == ".csv" else towns_geojson(by_town)
    with atomic_output(out) as partial:
        partial.write_text(text, encoding="utf-8")
    hot = sum(1 for spots in by_town.values() for f in spots.features if f.properties.class_.startswith("hot"))
    units = sum(len(spots.features) for spots in by_town.values())
    typer.echo(f"{len(by_town)} towns, {units:,} units, {hot:,} hot: written to {out}")


def _towns(conn: Connection, wanted: list[str]) -> list[str]:
    """The town codes asked for (all: every town), refusing unknown ones with exit 2."""
    known = [str(c) for c in conn.execute(text("SELECT code FROM town ORDER BY code")).scalars()]
    if wanted == ["all"]:
        return known
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise fail(f"unknown towns: {', '.join(unknown)}", code=2)
    return list(dict.fromkeys(wanted))
