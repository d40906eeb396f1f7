"""api.deps: request dependencies shared by the routers (database connection, the protected-route list)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from api.auth.deps import current_principal
from api.errors import InvalidRequest
from gis import clock
from gis.settings import ServerSettings
from supervision.calendar import SHANGHAI

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


def day_window(
    since: date | None, until: date | None, *, default_days: int | None = None
) -> tuple[datetime | None, datetime | None]:
    """Inclusive Asia/Shanghai days (`from`, `to`) → the half-open window [from 00:00, to + 1 day 00:00).

    With `default_days`, a missing `to` is today and a missing `from` that many days before it; a reversed
    window is refused (422) naming `to`.
    """
    if default_days is not None:
        until = until or clock.now().astimezone(SHANGHAI).date()
        since = since or until - timedelta(days=default_days - 1)
    if since and until and until < since:
        raise InvalidRequest(f"to ({until}) is before from ({since})", field="to")
    start = datetime.combine(since, time(), tzinfo=SHANGHAI) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=SHANGHAI) if until else None
    return start, end
