"""api.routers.tiles: vector tiles (Mapbox Vector Tile, PostGIS ST_AsMVT) of the territory and the work, scoped by
credential; TileJSON.

`GET /tiles/{layer}/{z}/{x}/{y}.mvt` answers 200 with the tile, or 204 with no body when the caller has no feature
there (MapLibre draws both as a tile); `Cache-Control: private, max-age=0` with an ETag, so a map revalidates each
tile and an unchanged one costs a 304. `X-Tile-Cache: hit|miss` says whether the server's tile cache had it, and
`Server-Timing: tile;dur=…` what the tile cost the server in milliseconds.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentPrincipal, ReadConn, require
from gis.coords import CoordSystem
from maps.tile_service import Caller, TileStore
from maps.tiles import TILE_MEDIA_TYPE, TileLayer, check_tile, layer_spec, tilejson
from supervision.permissions import Capability

router = APIRouter(tags=["矢量瓦片"])

TILE_CACHE_CONTROL = "private, max-age=0"
# What a caller needs to read each layer: the territory for outlines, its details for entities, the work for tasks
# and clues.
LAYER_CAPABILITY: dict[TileLayer, Capability] = {
    TileLayer.TOWNS: Capability.TERRITORY_READ,
    TileLayer.COMMUNITIES: Capability.TERRITORY_READ,
    TileLayer.GRIDS: Capability.TERRITORY_READ,
    TileLayer.ENTITIES: Capability.TERRITORY_DETAIL,
    TileLayer.TASKS: Capability.TASK_READ,
    TileLayer.CLUES: Capability.CLUE_READ,
}
_STORE_LOCK = threading.Lock()

LayerName = Annotated[str, Path(description="towns, communities, grids, entities, tasks or clues", max_length=32)]
CoordsParam = Annotated[
    CoordSystem,
    Query(description="Coordinate system of the basemap: wgs84 (stored), gcj02 (Amap/Tencent) or bd09 (Baidu)"),
]


def tile_store(request: Request) -> TileStore:
    """The application's tile store (cache and town index), made on first use."""
    state = request.app.state
    with _STORE_LOCK:
        store: TileStore | None = getattr(state, "tile_store", None)
        if store is None:
            store = TileStore()
            state.tile_store = store
    return store


@router.get(
    "/{layer}.json",
    summary="图层的 TileJSON 3.0.0 描述",
    responses={404: {"description": "没有该图层"}},
)
def layer_tilejson(
    request: Request, layer: LayerName, principal: CurrentPrincipal, coords: CoordsParam = "wgs84"
) -> JSONResponse:
    """The TileJSON of a layer: tile URL template, zoom range, Dongguan's bounds and the fields of its features."""
    spec = layer_spec(layer)
    require(principal, LAYER_CAPABILITY[spec.layer])
    # Absolute, on this server's base URL (with any root path): QGIS does not resolve a relative template.
    query = "" if coords == "wgs84" else f"?coords={coords}"
    document = tilejson(spec, base_url=str(request.base_url), query=query)
    return JSONResponse(document, headers={"Cache-Control": "private, max-age=60"})


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="矢量瓦片（Mapbox Vector Tile）",
    response_class=Response,
    responses={
        200: {"content": {TILE_MEDIA_TYPE: {}}, "description": "The tile"},
        204: {"description": "No feature of this layer in the caller's scope in this tile"},
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        404: {"description": "没有该图层"},
        422: {"description": "Zoom, column or row outside the layer's range"},
    },
)
def vector_tile(
    request: Request,
    conn: ReadConn,
    principal: CurrentPrincipal,
    layer: LayerName,
    z: Annotated[int, Path(description="zoom")],
    x: Annotated[int, Path(description="column, west to east")],
    y: Annotated[int, Path(description="row, north to south")],
    coords: CoordsParam = "wgs84",
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
    accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """One tile of a layer, with only what the caller's scope holds (a town leader gets no work of other towns)."""
    spec = layer_spec(layer)
    require(principal, LAYER_CAPABILITY[spec.layer])
    tile = check_tile(spec, z, x, y)
    caller = Caller(
        scope=principal.area,
        reads_tasks=principal.may(Capability.TASK_READ),
        reads_clues=principal.may(Capability.CLUE_READ),
    )
    started = time.perf_counter()
    answer = tile_store(request).tile(conn, spec, tile, caller, coords)
    headers = {
        "Cache-Control": TILE_CACHE_CONTROL,
        "ETag": answer.tile.etag,
        "X-Tile-Cache": answer.cache,
        # What the tile cost the server (versions read, cache or build), for the browser's tools and the benchmark.
        "Server-Timing": f"tile;desc={answer.cache};dur={(time.perf_counter() - started) * 1000:.2f}",
    }
    if if_none_match is not None and answer.tile.etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    if not answer.tile.body:
        return Response(status_code=204, headers=headers)
    headers["Vary"] = "Accept-Encoding"
    if accept_encoding is not None and "gzip" in accept_encoding.lower():
        # Compressed when built; the gzip middleware leaves an encoded answer alone.
        headers["Content-Encoding"] = "gzip"
        return Response(content=answer.tile.gzipped, media_type=TILE_MEDIA_TYPE, headers=headers)
    return Response(content=answer.tile.body, media_type=TILE_MEDIA_TYPE, headers=headers)
