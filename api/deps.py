"""api.deps: the typed request dependencies every router uses: connections, the caller, their scope and capability.

A route says what it needs in its signature and nothing else:

    def get_task(task_id: TaskId, scope: CurrentScope, conn: ReadConn,
                 _: Annotated[Principal, Depends(allowed(Capability.TASK_READ))]) -> TaskOut

`allowed(capability)` is the only permission check a route makes (403 without it); the `Scope` of the caller comes
from the credential alone (supervision.scope), never from the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import Connection, Engine

from api.auth.deps import current_principal
from api.auth.errors import NotAllowed
from api.auth.roles import Principal
from api.errors import InvalidRequest
from gis.settings import ServerSettings
from grids.codes import GRID_PATTERN, TOWN_PATTERN
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, today
from supervision.permissions import Capability
from supervision.privacy import Viewer
from supervision.scope import Scope

# Dependencies every /v1 router runs first: no /v1 answer without a valid credential (api.auth.deps).
API_DEPENDENCIES: list[Any] = [Depends(current_principal)]


def engine(request: Request) -> Engine:
    """The application's engine (created in the lifespan)."""
    result: Engine = request.app.state.engine
    return result


def read_connection(request: Request) -> Iterator[Connection]:
    """A read connection for one request, returned to the pool when the handler returns."""
    with engine(request).connect() as conn:
        yield conn


def write_connection(request: Request) -> Iterator[Connection]:
    """One transaction for one request: committed when the handler returns, rolled back when it raises."""
    with engine(request).begin() as conn:
        yield conn


def current_scope(principal: Annotated[Principal, Depends(current_principal)]) -> Scope:
    """Where the caller may look and act, from their credential alone."""
    return principal.area


def actor_of(principal: Principal) -> Actor:
    """The principal as the audit trail names them (Principal.audit_name), with role and scope."""
    area = principal.area
    return Actor(principal.audit_name, principal.role, area)


def viewer_of(principal: Annotated[Principal, Depends(current_principal)]) -> Viewer:
    """Who reads personal data (supervision.privacy): the principal's role, area and audit name."""
    return Viewer(principal.role, principal.area, principal.audit_name)


def require(principal: Principal, capability: Capability) -> Principal:
    """The principal, or NotAllowed (403 `forbidden`) unless their role has `capability`."""
    if not principal.may(capability):
        raise NotAllowed(f"a {principal.role} may not use {capability.value}")
    return principal


def allowed(capability: Capability) -> Callable[[Principal], Principal]:
    """A dependency: the caller, or 403 (`forbidden`) unless their role has `capability`."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return require(principal, capability)

    check.__name__ = f"allowed_{capability.name.lower()}"
    return check


def server_settings(request: Request) -> ServerSettings:
    """The server settings the app was built with."""
    settings: ServerSettings = request.app.state.server_settings
    return settings


# The typed aliases routers declare their parameters with.
DbEngine = Annotated[Engine, Depends(engine)]
ReadConn = Annotated[Connection, Depends(read_connection, scope="function")]
WriteConn = Annotated[Connection, Depends(write_connection, scope="function")]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentScope = Annotated[Scope, Depends(current_scope)]
CurrentViewer = Annotated[Viewer, Depends(viewer_of)]
Limit = Annotated[int, Query(ge=1, le=500, description="每页条数")]
Cursor = Annotated[str | None, Query(max_length=200, description="下一页游标（上一页的 next）")]
GridCode = Annotated[str | None, Query(pattern=GRID_PATTERN.pattern, description="网格编码（15 位）")]
TownCode = Annotated[str | None, Query(pattern=TOWN_PATTERN.pattern, description="镇街编码（12 位，以 000 结尾）")]


# The years a day of a request may fall in: the platform's records start this century; outside them date arithmetic
# (a window, a trend's first day) would overflow Python's dates.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def check_day(day: date | None, field: str) -> date | None:
    """The day itself if it falls in FIRST_YEAR..LAST_YEAR; InvalidRequest (422) naming `field` otherwise."""
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidRequest(f"{field} ({day}) must fall in the years {FIRST_YEAR} to {LAST_YEAR}", field=field)
    return day


def day_window(
    since: date | None, until: date | None, *, default_days: int | None = None
) -> tuple[datetime | None, datetime | None]:
    """Inclusive Asia/Shanghai days (`from`, `to`) → the half-open window [from 00:00, to + 1 day 00:00).

    With `default_days`, a missing `to` is today and a missing `from` that many days before it; a reversed
    window is refused (422) naming `to`, and so is a day outside FIRST_YEAR..LAST_YEAR, naming it.
    """
    check_day(since, "from")
    check_day(until, "to")
    if default_days is not None:
        until = until or today()
        since = since or until - timedelta(days=default_days - 1)
    if since and until and until < since:
        raise InvalidRequest(f"to ({until}) is before from ({since})", field="to")
    start = datetime.combine(since, time(), tzinfo=SHANGHAI) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=SHANGHAI) if until else None
    return start, end
