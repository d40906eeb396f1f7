"""api.deps: request dependencies shared by the routers (database connection, the protected-route list)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from api.auth.deps import current_principal
from gis.settings import ServerSettings

# Dependencies every /v1 router runs first: no /v1 answer without a valid credential (api.auth.deps).
API_DEPENDENCIES: list[Any] = [Depends(current_principal)]


def engine(request: Request) -> Engine:
    """The application's engine (created in the lifespan)."""
    result: Engine = request.app.state.engine
    return result


def connection(request: Request) -> Iterator[Connection]:
    """A read connection for one request, returned to the pool afterwards."""
    with engine(request).connect() as conn:
        yield conn


def server_settings(request: Request) -> ServerSettings:
    """The server settings the app was built with."""
    settings: ServerSettings = request.app.state.server_settings
    return settings
