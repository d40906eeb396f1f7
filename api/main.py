"""api.main: the FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles

from address_library.index_store import IndexSettings
from address_library.live import LiveGeocoder
from api.auth.deps import AuthRuntime
from api.auth.logfilter import install_log_redaction
from api.auth.login import LoginGate
from api.auth.page import AUTH_STATIC_DIR
from api.deps import API_DEPENDENCIES, allowed
from api.edges import CsrfGuard, SecurityHeaders
from api.errors import ERROR_RESPONSES, register_error_handlers
from api.files import files_cleanup_job
from api.input_guard import InputGuard
from api.observability import RequestContext
from api.observability import router as observability_router
from api.routers import (
    addresses,
    aliases,
    auth,
    clues,
    credit,
    docs,
    field,
    geocode,
    geocode_batch,
    grid_versions,
    heatmap,
    inspection_directory,
    inspection_pages,
    inspection_results,
    inspections,
    kpi,
    live,
    nominatim,
    ogc,
    open311,
    pages,
    public_inspections,
    public_pages,
    registrations,
    routes,
    staffing,
    stats,
    tasks,
    territory,
    tiles,
    vocabulary,
    workers,
    workload,
)
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings, plain_libpq_url
from maps.page import STATIC_DIR, vendor_libraries
from maps.settings import MapSettings
from supervision.jobs import BackgroundJobs, DailyJob
from supervision.permissions import Capability

# Map reads (vector tiles, OGC API Features): an API key needs its gis permission.
GIS_READ = Depends(allowed(Capability.GIS_READ))


def create_app(
    *,
    db_settings: DatabaseSettings | None = None,
    server_settings: ServerSettings | None = None,
    map_settings: MapSettings | None = None,
    run_jobs: bool = False,
    daily_jobs: Sequence[DailyJob] = (),
) -> FastAPI:
    """Build the app; the engine lives on `app.state`, created in the lifespan.

    With `run_jobs` (what `gridgov serve` does) the outbox relay and the scheduled jobs run in-process, with the
    `daily_jobs` of the layers above supervision (planning's morning assignment).
    """
    db_settings = db_settings or DatabaseSettings()
    server_settings = server_settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(db_settings)
        # Opened from the index store on the first geocoding request (built and saved first when the library has
        # none), then kept fresh in the background.
        index_root = IndexSettings().root_beside(server_settings.state_dir)
        app.state.geocoder = LiveGeocoder(app.state.engine, index_root=index_root)
        app.state.secret_key = server_settings.resolved_secret_key()
        app.state.auth = auth = AuthRuntime(
            secret_key=app.state.secret_key,
            token_minutes=server_settings.token_minutes,
            session_hours=server_settings.session_hours,
            trusted_proxies=tuple(p.strip() for p in server_settings.trusted_proxies.split(",") if p.strip()),
            login_gate=LoginGate(server_settings.password_verify_threads, server_settings.password_verify_wait_seconds),
        )
        # Revoked or changed API keys leave every process's key cache at once (LISTEN gridgov_auth).
        auth.start_listener(plain_libpq_url(app.state.engine.url.render_as_string(hide_password=False)))
        app.state.jobs = None
        if run_jobs:
            # The daily cleanup of uploaded files (batch inputs and results past their retention) runs with them.
            scheduled = [*daily_jobs, files_cleanup_job(server_settings)]
            app.state.jobs = BackgroundJobs(app.state.engine, app.state.geocoder.get, daily_jobs=scheduled)
            app.state.jobs.start()
        yield
        # The live feed (made by the first /v1/live stream) stops with the app, not only when its last listener goes.
        feed = getattr(app.state, "live_feed", None)
        if feed is not None:
            feed.stop()
        if app.state.jobs is not None:
            app.state.jobs.stop()
        auth.close()  # this lifespan's own (a second TestClient on the same app runs another)
        app.state.engine.dispose()

    # /docs is served by api.routers.docs with Swagger UI from npm: the stock page loads it from a CDN.
    app = FastAPI(
        title="gridgov 网格化治理平台",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.server_settings = server_settings
    app.state.map_settings = map_settings or MapSettings()
    register_error_handlers(app)
    install_log_redaction()
    # Layers are JSON of up to 1 MB; gzip shrinks them several-fold on the wire.
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    # Outermost: a NUL or other control character in a path or query string is refused before any route sees it.
    app.add_middleware(InputGuard)
    # Cookie-authenticated changes from another site are refused; every answer (refusals too) carries the security
    # headers; the request id and the access log wrap everything.
    app.add_middleware(CsrfGuard)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)
    # Open: the token endpoint and the login page. Everything else under /v1, and the pages, need a credential.
    app.include_router(auth.router, prefix="/v1")
    app.include_router(auth.pages_router)
    app.include_router(territory.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(geocode.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(geocode_batch.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(addresses.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(aliases.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(registrations.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(tasks.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(clues.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(stats.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(heatmap.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(vocabulary.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(kpi.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(live.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(workers.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(workload.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(staffing.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(grid_versions.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(credit.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(inspection_directory.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(inspections.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(inspection_results.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(routes.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(inspection_pages.router)
    # The published side of a double-random draw: anyone may check it, so no credential (nothing internal in it).
    # The pages first: /public/inspections/page would otherwise be taken for a plan id by the JSON router.
    app.include_router(public_pages.router, prefix="/public")
    app.include_router(public_inspections.router, prefix="/public")
    app.include_router(workload.pages_router)
    app.include_router(staffing.pages_router)
    app.include_router(grid_versions.pages_router)
    app.include_router(heatmap.pages_router)
    # Vector tiles and OGC API Features for the map and GIS clients: every request needs a credential.
    # A key needs the gis permission for them (a default, geocoding-only key gets 403).
    app.include_router(tiles.router, prefix="/tiles", dependencies=[*API_DEPENDENCIES, GIS_READ])
    app.include_router(ogc.router, prefix="/ogc", dependencies=[*API_DEPENDENCIES, GIS_READ])
    # Open311 takes its credential as the specification's api_key parameter (api.routers.open311 checks it).
    app.include_router(open311.router, prefix="/open311/v2")
    app.include_router(field.router)
    app.include_router(nominatim.router, dependencies=API_DEPENDENCIES)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.include_router(observability_router)
    # Front-end libraries come from this server, never a CDN (offline intranets); mounted before /static.
    for library in vendor_libraries():
        app.mount(
            f"/static/vendor/{library.name}", StaticFiles(directory=library.directory), name=f"vendor-{library.name}"
        )
    app.mount("/static/auth", StaticFiles(directory=AUTH_STATIC_DIR), name="auth-static")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", tags=["运维"], summary="健康检查")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
