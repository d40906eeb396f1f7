"""api.cli.serve: `gridgov serve`, the whole platform in one process: API, dashboard, relay and scheduled jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import database_up
from gis.settings import ServerSettings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
) -> None:
    """Serve the API and the map dashboard (migrates first)."""
    import uvicorn

    from api.main import create_app
    from planning.jobs import PLANNING_JOBS

    database_up()
    server = ServerSettings()
    # One command runs the whole platform: the API, the outbox relay and the scheduled jobs, among them each
    # working morning's assignment of open tasks, each day's workload of the grids, the monthly credit classes and
    # the publication of inspection results that are due (planning).
    application = create_app(server_settings=server, run_jobs=True, daily_jobs=list(PLANNING_JOBS))
    uvicorn.run(application, host=host or server.host, port=port or server.port, log_level="info")
