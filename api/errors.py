"""api.errors: the one table from domain exceptions to HTTP statuses and the JSON error body."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from address_library.errors import (
    AddressFileError,
    AddressInputError,
    AddressLibraryError,
    AddressNotFound,
    AddressRejected,
    AddressStateError,
    DuplicateAddress,
    OutsideCity,
)
from api.auth.errors import NotAllowed
from gis.errors import ClusterError, GisError, PostgisUnavailable
from grids.errors import FeatureFileError, GridsError, TopologyError
from maps.errors import (
    AggregateError,
    ExportError,
    HotspotError,
    InvalidLayerRequest,
    LayerTooLarge,
    MapsError,
    UnknownGrid,
    UnknownLayer,
)
from planning.errors import (
    Infeasible,
    InvalidPlan,
    NothingToPlan,
    PlanningError,
    PlanNotFound,
    PlanState,
    RouteInfeasible,
    StaleDraft,
    StalePlan,
    VersionState,
)
from supervision import errors as workflow
from supervision.errors import CalendarError, RoutingError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The one shape of every error answer (conflicts add `current` and `allowed`, input errors `field`, a duplicate
    standard address the `address_id` and `standard_address` it duplicates)."""

    error: str
    detail: Any
    current: str | None = None
    allowed: list[str] | None = None
    field: str | None = None
    address_id: int | None = None
    standard_address: str | None = None
    reason: str | None = None


# Declared on the app so that /openapi.json describes the error bodies the handlers below really send.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "缺少或无效的凭据"},
    403: {"model": ErrorBody, "description": "无权访问该范围"},
    409: {
        "model": ErrorBody,
        "description": "冲突：版本已变、不允许的流转（附 current 与 allowed）、事件编号内容不同、标准地址已存在（附 address_id）",
    },
    422: {"model": ErrorBody, "description": "请求无效（invalid_request / invalid_address / outside_city）"},
    429: {"model": ErrorBody, "description": "超出速率限制"},
}


class InvalidRequest(ValueError):
    """A request parameter the API refuses (a reversed date window, say), naming the parameter."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ErrorRule:
    """How one exception class answers: HTTP status, machine-readable code, whether its message is shown."""

    status: int
    code: str
    show_message: bool = True


# Looked up along the exception's MRO, so a subclass without its own row answers like its base.
ERROR_TABLE: dict[type[Exception], ErrorRule] = {
    AddressInputError: ErrorRule(422, "invalid_address"),
    OutsideCity: ErrorRule(422, "outside_city"),
    AddressNotFound: ErrorRule(404, "not_found"),
    AddressRejected: ErrorRule(422, "address_rejected"),
    AddressStateError: ErrorRule(409, "address_retired"),
    DuplicateAddress: ErrorRule(409, "duplicate_address"),
    AddressFileError: ErrorRule(400, "invalid_address_file"),
    AddressLibraryError: ErrorRule(400, "address_error"),
    NotAllowed: ErrorRule(403, "forbidden"),
    workflow.OutOfScope: ErrorRule(403, "forbidden"),
    workflow.NotPermitted: ErrorRule(403, "not_permitted"),
    workflow.NotFound: ErrorRule(404, "not_found"),
    workflow.StaleVersion: ErrorRule(409, "stale_version"),
    workflow.InvalidMove: ErrorRule(409, "invalid_transition"),
    workflow.EventConflict: ErrorRule(409, "event_conflict"),
    workflow.AlreadyResolved: ErrorRule(409, "already_resolved"),
    workflow.InvalidInput: ErrorRule(422, "invalid_request"),
    workflow.SupervisionError: ErrorRule(400, "workflow_error"),
    Infeasible: ErrorRule(422, "infeasible"),
    NothingToPlan: ErrorRule(422, "nothing_to_plan"),
    PlanNotFound: ErrorRule(404, "not_found"),
    StalePlan: ErrorRule(409, "stale_plan"),
    StaleDraft: ErrorRule(409, "stale_draft"),
    VersionState: ErrorRule(409, "version_state"),
    InvalidPlan: ErrorRule(422, "invalid_request"),
    PlanState: ErrorRule(409, "plan_state"),
    RouteInfeasible: ErrorRule(422, "route_infeasible"),
    PlanningError: ErrorRule(400, "planning_error"),
    RoutingError: ErrorRule(422, "invalid_request"),
    CalendarError: ErrorRule(422, "invalid_request"),
    InvalidLayerRequest: ErrorRule(422, "invalid_request"),
    LayerTooLarge: ErrorRule(413, "layer_too_large"),
    UnknownLayer: ErrorRule(404, "not_found"),
    UnknownGrid: ErrorRule(404, "not_found"),
    InvalidRequest: ErrorRule(422, "invalid_request"),
    AggregateError: ErrorRule(422, "invalid_request"),
    HotspotError: ErrorRule(422, "invalid_request"),
    ExportError: ErrorRule(503, "export_unavailable"),
    MapsError: ErrorRule(400, "maps_error"),
    TopologyError: ErrorRule(422, "topology_error"),
    FeatureFileError: ErrorRule(400, "invalid_feature_file"),
    GridsError: ErrorRule(400, "grids_error"),
    PostgisUnavailable: ErrorRule(503, "database_unavailable", show_message=False),
    ClusterError: ErrorRule(503, "database_unavailable", show_message=False),
    GisError: ErrorRule(500, "internal_error", show_message=False),
    # The driver's message can hold host names and credentials: never shown.
    OperationalError: ErrorRule(503, "database_unavailable", show_message=False),
}

_GENERIC_DETAIL = {
    "database_unavailable": "the database is unavailable; try again later",
    "internal_error": "internal server error",
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "too_many_requests",
}


def rule_for(exc: BaseException) -> ErrorRule | None:
    """The table row for this exception (its own class first, then its bases), None when unmapped."""
    for cls in type(exc).__mro__:
        rule = ERROR_TABLE.get(cls)
        if rule is not None:
            return rule
    return None


def error_body(code: str, detail: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": code, "detail": detail}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    rule = rule_for(exc)
    if rule is None:
        return await _unexpected_error(request, exc)
    if rule.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    detail = str(exc) if rule.show_message else _GENERIC_DETAIL.get(rule.code, "request failed")
    body = error_body(rule.code, detail)
    # Workflow conflicts say where the task stands and what may happen next; input errors name the field; a
    # duplicate names the address it duplicates.
    for extra in ("current", "allowed", "field", "address_id", "standard_address", "reason", "unassigned", "problems"):
        value = getattr(exc, extra, None)
        if value is not None and rule.show_message:
            body[extra] = value
    return JSONResponse(body, status_code=rule.status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"location": ".".join(str(part) for part in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p['location']}: {p['message']}" for p in problems) or "invalid request"
    return JSONResponse(error_body("invalid_request", summary), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "http_error")
    return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", _GENERIC_DETAIL["internal_error"]), status_code=500)


NUL_IN_TEXT = "a text value holds a NUL character"


def is_nul_in_text(exc: BaseException) -> bool:
    """Whether a database error is PostgreSQL (through psycopg) refusing a NUL character in a text value."""
    if not isinstance(exc, DataError):
        return False
    original = exc.orig
    return isinstance(original, psycopg.DataError) and "cannot contain NUL" in str(original)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """A safety net behind the input guard: a NUL that reached the database is the client's input, not a 500."""
    if not is_nul_in_text(exc):
        return await _unexpected_error(request, exc)
    log.warning("%s %s: a NUL in a text value reached the database", request.method, request.url.path)
    return JSONResponse(error_body("invalid_request", NUL_IN_TEXT), status_code=422)


def register_error_handlers(app: FastAPI) -> None:
    """Answer every error with {"error": code, "detail": message}, statuses from ERROR_TABLE."""
    for exc_class in ERROR_TABLE:
        app.add_exception_handler(exc_class, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
