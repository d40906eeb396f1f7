"""api.routers.pages: the dashboard (HTML) at /, the clue list at /clues and the review queue at /review, behind the
sign-in; a browser whose role may not open a page gets a Chinese 403 page, other clients the JSON 403."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth.deps import MISSING_CREDENTIAL, WWW_AUTHENTICATE, optional_principal
from api.auth.page import LOGIN_PATH
from api.auth.roles import Principal
from api.deps import require
from maps.page import render_clue_list, render_forbidden, render_index, render_review_queue
from maps.settings import MapSettings
from supervision.permissions import Capability

router = APIRouter(tags=["页面"])


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page (Accept: text/html), not a program asking for JSON."""
    return "text/html" in request.headers.get("accept", "")


def sign_in_first(request: Request) -> Response:
    """A browser goes to the login page (and comes back here after); other clients get 401."""
    if wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)
    raise HTTPException(status_code=401, detail=MISSING_CREDENTIAL, headers=WWW_AUTHENTICATE)


def refused_page(request: Request, principal: Principal, capability: Capability) -> Response | None:
    """None when the caller's role has `capability`; otherwise a browser gets the Chinese 403 page (with the
    sign-out) and other clients the JSON 403 (`forbidden`)."""
    if not principal.may(capability) and wants_html(request):
        return HTMLResponse(
            render_forbidden(user=principal.name), status_code=403, headers={"Cache-Control": "no-store"}
        )
    require(principal, capability)
    return None


@router.get("/", response_class=HTMLResponse, summary="指挥中心看板", include_in_schema=False)
def map_page(request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """The dashboard: the map on vector tiles, the drill-down and its figures, the live feed and the lists (the
    cookie, a Bearer token or an X-API-Key lets one in; /v1/me tells the page where the caller's view starts).
    `?level=town&code=…` opens a view, `?source=geojson` draws the grids from GET /v1/grids (benchmark baseline).
    """
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.TERRITORY_READ):
        return refusal
    settings: MapSettings = request.app.state.map_settings
    return HTMLResponse(render_index(settings, user=principal.name), headers={"Cache-Control": "no-cache"})


@router.get("/clues", response_class=HTMLResponse, summary="线索列表", include_in_schema=False)
def clue_list_page(request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """The clues behind a hotspot as a table; the filters are the query string of GET /v1/clues."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.CLUE_READ):
        return refusal
    return HTMLResponse(render_clue_list(user=principal.name), headers={"Cache-Control": "no-cache"})


@router.get("/review", response_class=HTMLResponse, summary="待核登记处理", include_in_schema=False)
def review_page(request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
    """The review queue: an item's typed address, its proposed components, and a map to place a new address on."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.REVIEW_READ):
        return refusal
    settings: MapSettings = request.app.state.map_settings
    return HTMLResponse(render_review_queue(settings, user=principal.name), headers={"Cache-Control": "no-cache"})
