"""api.cli: the `gridgov` command line, a thin face over the services; one module per command group."""

from __future__ import annotations

import typer

from api.cli import (
    addresses,
    apikey,
    assign,
    credit,
    db,
    demo,
    grids,
    index,
    inspection_lists,
    inspection_results,
    inspections,
    jobs,
    registrations,
    routes,
    staffing,
    users,
    workload,
)
from api.cli.geocode import geocode_file
from api.cli.hotspots import hotspots
from api.cli.serve import serve

app = typer.Typer(help="gridgov: 东莞网格化治理平台 (grid governance for Dongguan).", no_args_is_help=True)
app.command("serve")(serve)
app.command("geocode")(geocode_file)
app.command("hotspots")(hotspots)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(grids.app, name="grids")
app.add_typer(index.app, name="index")
app.add_typer(users.app, name="users")
app.add_typer(apikey.app, name="apikey")
app.add_typer(addresses.app, name="addresses")
app.add_typer(registrations.app, name="registrations")
app.add_typer(jobs.app, name="jobs")
app.add_typer(workload.app, name="workload")
app.add_typer(staffing.app, name="staffing")
app.add_typer(assign.app, name="assign")
app.add_typer(inspections.app, name="inspections")
app.add_typer(inspection_lists.app, name="inspection-lists")
app.add_typer(credit.app, name="credit")
app.add_typer(routes.app, name="routes")
app.add_typer(inspection_results.app, name="inspection-results")

__all__ = ["app"]
