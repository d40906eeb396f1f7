"""api.observability: request ids and structured logs, Prometheus metrics and the readiness check (issue 17, part G1).

`RequestContext` is the outermost middleware: it gives every request an id (a short safe `X-Request-ID` the client
sent, else a new one), returns it on every answer, times the request into the app's Prometheus registry under the
route's TEMPLATE (`/v1/tasks/{task_id}`, never the raw path: the label set stays bounded; a path no route knows is
`other`) and writes one access-log line per request on the `gridgov.access` logger. `JsonFormatter` renders every
log record as one JSON object per line, with the request id of the request being served (`gridgov serve` installs
it; see docs/OPERATIONS.md).

`router` serves `/metrics` (Prometheus text format; loopback clients, the command centre and administrators, or the
`GRIDGOV_METRICS_TOKEN` bearer token, anything else 403) and `/ready` (200 when the database answers and its schema
is at the migrations' head, 503 naming the failing check otherwise). The database gauges (relay backlog,
review-queue size, intake-to-task lag) are read at scrape time with a short statement timeout.
"""

from __future__ import annotations

import contextvars
import functools
import hmac
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.logfilter import redact_url
from api.auth.roles import Principal
from supervision.monitoring import INTAKE_LAG_WINDOW, pipeline_readings
from supervision.permissions import Role

router = APIRouter(tags=["运维"])

access_log = logging.getLogger("gridgov.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The request being served, for every log line written while it is (the JSON formatter reads it).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("gridgov_request_id", default=None)

# How long a scrape or a readiness check waits for the database before it says so.
DB_TIMEOUT_MS = 2000
# Geocoder confidence buckets: the bands around intake's placement threshold (0.9, supervision.intake) and the
# certain match (1.0).
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OTHER_ROUTE = "other"
METRICS_READERS = frozenset({Role.ADMIN.value, Role.COMMAND_CENTRE.value})


def request_id_from(value: str | None) -> str:
    """The client's request id when it is a short safe token (≤ 64 of [A-Za-z0-9._-]), else a new one."""
    if value is not None and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


# ------------------------------------------------------------------------------------------------------- metrics


class Metrics:
    """The Prometheus registry of one application: request latency and count by route, geocoder confidence, and
    the database gauges read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.request_seconds = Histogram(
            "gridgov_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "gridgov_http_requests",
            "HTTP requests by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.geocode_confidence = Histogram(
            "gridgov_geocode_confidence",
            "Confidence of geocoding answers (API and Nominatim faces)",
            ("status",),
            buckets=CONFIDENCE_BUCKETS,
            registry=self.registry,
        )
        self.engine: Engine | None = None
        self.routes = RouteTemplates()
        self.registry.register(DatabaseGauges(self))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one answered request."""
        labels = (method, route, str(status))
        self.request_seconds.labels(*labels).observe(seconds)
        self.requests.labels(*labels).inc()


def metrics_of(app: Any) -> Metrics:
    """The application's metrics (made on first use)."""
    state = app.state
    metrics: Metrics | None = getattr(state, "metrics", None)
    if metrics is None:
        metrics = Metrics()
        state.metrics = metrics
    metrics.engine = getattr(state, "engine", None)
    return metrics


def observe_geocode(app: FastAPI, status: str, confidence: float) -> None:
    """Record one geocoding answer's confidence (called by the geocode and Nominatim routes)."""
    metrics_of(app).geocode_confidence.labels(status).observe(confidence)


class DatabaseGauges(Collector):
    """Gauges read from the database at each scrape; `gridgov_database_up` 0 (and no others) when it cannot answer."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the database now."""
        readings: dict[str, float] | None = None
        engine = self._metrics.engine
        if engine is not None:
            try:
                with engine.begin() as conn:
                    readings = pipeline_readings(conn, timeout_ms=DB_TIMEOUT_MS)
            except Exception:
                logging.getLogger(__name__).warning("metrics: the database did not answer", exc_info=True)
        yield GaugeMetricFamily("gridgov_database_up", "1 when the database answered this scrape", readings is not None)
        if readings is None:
            return
        yield GaugeMetricFamily(
            "gridgov_outbox_backlog", "Outbox rows accepted but not yet relayed to intake", readings["backlog"]
        )
        yield GaugeMetricFamily("gridgov_review_queue_open", "Unresolved review-queue items", readings["review"])
        oldest = GaugeMetricFamily(
            "gridgov_intake_oldest_waiting_seconds",
            "Age of the oldest registration event received but not yet turned into tasks (0 when none waits)",
            readings["oldest"],
        )
        yield oldest
        lag = GaugeMetricFamily(
            "gridgov_intake_lag_seconds",
            f"Intake-to-task lag (received to processed) over the last {INTAKE_LAG_WINDOW} processed events",
            labels=("quantile",),
        )
        for quantile, name in (("0.5", "lag_p50"), ("0.95", "lag_p95"), ("1", "lag_max")):
            if name in readings:
                lag.add_metric((quantile,), readings[name])
        yield lag


def _loopback(request: Request) -> bool:
    """A client on this host, talking to the server directly (not through a proxy that forwards for someone)."""
    if request.client is None or any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip")):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


class ObservabilitySettings(BaseSettings):
    """Who may scrape from afar, and how long a stopping server waits (environment: GRIDGOV_…)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    # A bearer token Prometheus may send to GET /metrics from another host (loopback clients need none).
    metrics_token: str | None = None
    # How long `gridgov serve` lets requests in flight finish after SIGTERM/SIGINT before it closes them.
    graceful_shutdown_seconds: int = Field(default=30, gt=0)


def observability_settings(app: Any) -> ObservabilitySettings:
    """The application's observability settings (from the environment unless set on `app.state.observability`)."""
    settings: ObservabilitySettings | None = getattr(app.state, "observability", None)
    if settings is None:
        settings = ObservabilitySettings()
        app.state.observability = settings
    return settings


def _metrics_token_matches(request: Request) -> bool:
    token = observability_settings(request.app).metrics_token
    if not token:
        return False
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), token.encode())


@router.get(
    "/metrics",
    summary="Prometheus 指标（本机、指挥中心与管理员）",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """请求延迟（按路由模板）、请求数、地理编码置信度分布、待转发事件数、待复核数与登记到任务的延迟。"""
    if not (_loopback(request) or _metrics_token_matches(request)):
        principal = await run_in_threadpool(_principal_or_none, request)
        if principal is None or principal.kind != "user" or principal.role not in METRICS_READERS:
            from api.auth.errors import NotAllowed

            raise NotAllowed("metrics are served to this host, the command centre and administrators only")
    registry = metrics_of(request.app).registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


def _principal_or_none(request: Request) -> Principal | None:
    from fastapi import HTTPException

    from api.auth.deps import API_KEY_HEADER, API_KEY_QUERY, SESSION_COOKIE, resolve_principal

    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    try:
        return resolve_principal(
            request,
            header_key=request.headers.get(API_KEY_HEADER),
            query_key=request.query_params.get(API_KEY_QUERY),
            bearer=bearer if scheme.lower() == "bearer" and bearer else None,
            session_token=request.cookies.get(SESSION_COOKIE),
        )
    except HTTPException:
        return None


# ----------------------------------------------------------------------------------------------------- readiness


@functools.cache
def _migrations_head() -> str | None:
    """The head revision of the packaged migrations (read once: they do not change under a running server)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from gis.migrate import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def readiness(engine: Engine) -> tuple[bool, dict[str, str]]:
    """Whether the database answers within the timeout and its schema is at the migrations' head; the checks."""
    from alembic.runtime.migration import MigrationContext

    checks = {"database": "unreachable", "migrations": "unknown"}
    try:
        with engine.connect() as conn:
            conn.execute(text(f"SET statement_timeout = {DB_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current = MigrationContext.configure(conn).get_current_revision()
            conn.execute(text("RESET statement_timeout"))
            conn.rollback()
    except Exception:
        logging.getLogger(__name__).warning("readiness: the database did not answer", exc_info=True)
        return False, checks
    head = _migrations_head()
    checks["migrations"] = "head" if current == head else "behind"
    return checks["migrations"] == "head", checks


@router.get(
    "/ready",
    summary="就绪检查（含数据库与迁移版本）",
    responses={503: {"description": "未就绪：数据库不可达或迁移未到最新"}},
)
async def ready(request: Request) -> JSONResponse:
    """数据库可在短时间内应答且库表结构为最新迁移时返回 200，否则 503 并指明失败的检查项。"""
    ok, checks = await run_in_threadpool(readiness, request.app.state.engine)
    return JSONResponse({"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503)


# ------------------------------------------------------------------------------------------ request id and logs


class RouteTemplates:
    """The full template of the route that served a request (`/v1/tasks/{task_id}`).

    A route included under a prefix knows only its own part (`/tasks/{task_id}`); the full templates are the
    OpenAPI paths, so the one that ends with the route's own and matches the path is the answer. Routes outside the
    OpenAPI document (pages, static mounts) are labelled by their own path.
    """

    def __init__(self) -> None:
        self._by_tail: dict[str, list[tuple[re.Pattern[str], str]]] | None = None

    def _table(self, app: Any) -> dict[str, list[tuple[re.Pattern[str], str]]]:
        if self._by_tail is None:
            from starlette.routing import compile_path

            table: dict[str, list[tuple[re.Pattern[str], str]]] = {}
            try:
                paths = list(app.openapi().get("paths", {}))
            except Exception:  # a broken schema must not break the metrics
                logging.getLogger(__name__).warning("metrics: no OpenAPI paths for route templates", exc_info=True)
                paths = []
            for template in paths:
                regex = compile_path(template)[0]
                for cut in range(len(template)):
                    if template[cut] == "/":
                        table.setdefault(template[cut:], []).append((regex, template))
            self._by_tail = table
        return self._by_tail

    def of(self, scope: Scope) -> str:
        """The template of the route that served the request; `other` when no route matched."""
        route = scope.get("route")
        own = getattr(route, "path", None)
        if not isinstance(own, str) or not own:
            return OTHER_ROUTE
        app = scope.get("app")
        if app is None or not hasattr(app, "openapi"):
            return own
        path = scope.get("path", "")
        for regex, template in self._table(app).get(own, ()):
            if regex.match(path):
                return template
        return own


class RequestContext:
    """A request id on every request and answer, the request timed into /metrics, one access-log line each."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _REQUEST_ID_KEY:
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()
        header = (_REQUEST_ID_KEY, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = str(scope.get("method", ""))
            app = scope.get("app")
            route = OTHER_ROUTE
            if app is not None:
                metrics = metrics_of(app)
                route = metrics.routes.of(scope)
                metrics.observe_request(method, route, status, seconds)
            principal = scope.get("state", {}).get("principal")
            access_log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "owner": getattr(principal, "owner", None),
                },
            )
            request_id_var.reset(token)


# The fields an access-log line carries besides the standard ones (record attributes set through `extra=`).
_EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "owner")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, request_id and the access fields.

    Query-string secrets (`key=`, `password=`, `token=` …) are redacted from the message and the exception text.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_url(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = redact_url(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The logging configuration of `gridgov serve` (uvicorn's `log_config`): everything as JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"redact": {"()": "api.auth.logfilter.RedactSecretsFilter"}},
        "handlers": {"default": {**handler, "filters": ["redact"]}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            # Replaced by the gridgov.access line of RequestContext (route template, request id, no query string).
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
