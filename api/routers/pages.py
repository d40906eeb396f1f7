"""api.routers.pages: the map page (HTML) at /."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from maps.page import render_index
from maps.settings import MapSettings

router = APIRouter(tags=["页面"])


@router.get("/", response_class=HTMLResponse, summary="网格地图", include_in_schema=False)
def map_page(request: Request) -> HTMLResponse:
    """The map of towns, communities and grids."""
    settings: MapSettings = request.app.state.map_settings
    return HTMLResponse(render_index(settings), headers={"Cache-Control": "no-cache"})
