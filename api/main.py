"""api.main: the FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles

from api.deps import API_DEPENDENCIES
from api.errors import register_error_handlers
from api.routers import pages, territory
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings
from maps.page import STATIC_DIR, vendor_libraries
from maps.settings import MapSettings


def create_app(
    *,
    db_settings: DatabaseSettings | None = None,
    server_settings: ServerSettings | None = None,
    map_settings: MapSettings | None = None,
) -> FastAPI:
    """Build the app; the engine lives on `app.state`, created in the lifespan."""
    db_settings = db_settings or DatabaseSettings()
    server_settings = server_settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(db_settings)
        app.state.secret_key = server_settings.resolved_secret_key()
        yield
        app.state.engine.dispose()

    app = FastAPI(title="gridgov 网格化治理平台", version="0.1.0", lifespan=lifespan)
    app.state.server_settings = server_settings
    app.state.map_settings = map_settings or MapSettings()
    register_error_handlers(app)
    # Layers are JSON of up to 1 MB; gzip shrinks them several-fold on the wire.
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.include_router(territory.router, prefix="/v1", dependencies=API_DEPENDENCIES)
    app.include_router(pages.router)
    # Front-end libraries come from this server, never a CDN (offline intranets); mounted before /static.
    for library in vendor_libraries():
        app.mount(
            f"/static/vendor/{library.name}", StaticFiles(directory=library.directory), name=f"vendor-{library.name}"
        )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", tags=["运维"], summary="健康检查")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
