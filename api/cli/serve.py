"""api.cli.serve: `gridgov serve`, the whole platform in one process: API, dashboard, relay and scheduled jobs.

Logs are JSON lines on stderr (api.observability). SIGTERM or SIGINT stops it gracefully: no new connections,
requests in flight finish (up to `GRIDGOV_GRACEFUL_SHUTDOWN_SECONDS`), the background jobs stop between two units
of work, and the process exits 0.
"""

from __future__ import annotations

import logging.config
import signal
from types import FrameType
from typing import Annotated

import typer

from api.cli.common import database_up
from gis.settings import ServerSettings


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn raises the stop signal again once it has shut down gracefully; a stop is not a failure.
    raise SystemExit(0)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
) -> None:
    """Serve the API and the map dashboard (migrates first)."""
    import uvicorn

    from api.main import create_app
    from api.observability import ObservabilitySettings, log_config
    from planning.jobs import PLANNING_JOBS

    # JSON lines from the first message on (the migrations, the app's start), not only once uvicorn runs.
    logging.config.dictConfig(log_config())
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    database_up()
    server = ServerSettings()
    trusted = [proxy.strip() for proxy in server.trusted_proxies.split(",") if proxy.strip()]
    # One command runs the whole platform: the API, the outbox relay and the scheduled jobs, among them each
    # working morning's assignment of open tasks, each day's workload of the grids, the monthly credit classes and
    # the publication of inspection results that are due (planning).
    application = create_app(server_settings=server, run_jobs=True, daily_jobs=list(PLANNING_JOBS))
    uvicorn.run(
        application,
        host=host or server.host,
        port=port or server.port,
        log_config=None,  # configured above
        # The access log is api.observability's line (route template, request id, no query string).
        access_log=False,
        timeout_graceful_shutdown=ObservabilitySettings().graceful_shutdown_seconds,
        # GRIDGOV_TRUSTED_PROXIES alone decides whose X-Forwarded-For / X-Forwarded-Proto is believed: uvicorn's own
        # default trusts them from 127.0.0.1, which let a loopback client forge its address past the sign-in
        # throttle. None by default (the socket peer is the client, the scheme the connection's).
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted),
    )
