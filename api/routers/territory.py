"""api.routers.territory: map layers of towns, communities and grids, and one grid's details."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, allowed, server_settings
from gis.coords import CoordSystem
from gis.settings import ServerSettings
from grids.codes import GRID_PATTERN
from maps import service
from maps.layers import ZOOM_MAX, ZOOM_MIN, CommunityLayer, GridLayer, Layer, TownLayer, parse_bbox
from supervision.errors import OutOfScope
from supervision.permissions import Capability
from supervision.scope import Scope

router = APIRouter(tags=["地图图层"])
TerritoryReader = Annotated[Principal, Depends(allowed(Capability.TERRITORY_READ))]
# One grid's figures are staff's (territory.detail): an API client reads the outlines, not the register behind them.
DetailReader = Annotated[Principal, Depends(allowed(Capability.TERRITORY_DETAIL))]

GEOJSON_MEDIA_TYPE = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """Documents the layers as GeoJSON objects (the handlers stream their bytes in a plain Response)."""

    media_type = GEOJSON_MEDIA_TYPE


BBoxParam = Annotated[
    str | None,
    Query(
        description="minlon,minlat,maxlon,maxlat in WGS84 degrees; omitted = the whole city",
        examples=["113.7,22.98,113.8,23.05"],
    ),
]
CoordsParam = Annotated[
    CoordSystem,
    Query(
        description="Coordinate system of the bbox and of the answer: wgs84 (stored), gcj02 (Amap/Tencent basemaps) "
        "or bd09 (Baidu)",
    ),
]
ZoomParam = Annotated[
    int | None,
    Query(
        ge=ZOOM_MIN,
        le=ZOOM_MAX,
        description="Map zoom: geometry is simplified to about one pixel; omitted = full detail",
    ),
]


class GridDetails(BaseModel):
    """One grid of the active version, as the map popup shows it."""

    code: str
    name: str | None
    community_code: str
    community_name: str
    community_kind: str
    town_code: str
    town_name: str
    population: int
    address_count: int
    entity_count: int
    workload: int
    worker_count: int
    area_km2: float
    lon: float
    lat: float
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    version_id: int
    version_name: str
    # The work figures only where the caller's task (clue) scope covers the grid (as the grid tiles give them): a
    # dispatcher sees the town's map but not the neighbouring community's workload; null elsewhere.
    open_tasks: int | None = Field(default=0, description="在办任务数（仅本人任务范围内的网格，否则为空）")
    overdue_tasks: int | None = Field(default=0, description="逾期任务数（仅本人任务范围内的网格，否则为空）")
    clues_30d: int | None = Field(default=0, description="近 30 天线索数（仅本人线索范围内的网格，否则为空）")


def _layer_response(
    layer: Layer,
    conn: Connection,
    settings: ServerSettings,
    scope: Scope,
    bbox: str | None,
    zoom: int | None,
    coords: CoordSystem,
) -> Response:
    body = service.layer_geojson(
        conn,
        layer,
        bbox=parse_bbox(bbox) if bbox is not None else None,
        zoom=zoom,
        towns=scope.towns,
        limit_bytes=settings.max_layer_bytes,
        coords=coords,
    )
    return Response(content=body, media_type=GEOJSON_MEDIA_TYPE)


def _layer_responses(model: type[BaseModel]) -> dict[int | str, dict[str, object]]:
    """The documented answers of a layer: a GeoJSON FeatureCollection of `model` (streamed as bytes), or why not."""
    return {
        200: {"model": model, "description": "A GeoJSON FeatureCollection"},
        401: {"description": "缺少或无效的凭证"},
        413: {"description": "Over the payload limit: narrow the bbox or zoom in"},
        422: {"description": "Malformed bbox or zoom"},
    }


@router.get("/towns", summary="镇街边界图层", response_class=GeoJSONResponse, responses=_layer_responses(TownLayer))
def towns_layer(
    conn: ReadConn,
    settings: Annotated[ServerSettings, Depends(server_settings)],
    _: TerritoryReader,
    scope: CurrentScope,
    bbox: BBoxParam = None,
    zoom: ZoomParam = None,
    coords: CoordsParam = "wgs84",
) -> Response:
    """Towns (code, name, population, area_km2) intersecting the bbox; a town-scoped user sees only their town."""
    return _layer_response(Layer.TOWNS, conn, settings, scope, bbox, zoom, coords)


@router.get(
    "/communities",
    summary="村（社区）边界图层",
    response_class=GeoJSONResponse,
    responses=_layer_responses(CommunityLayer),
)
def communities_layer(
    conn: ReadConn,
    settings: Annotated[ServerSettings, Depends(server_settings)],
    _: TerritoryReader,
    scope: CurrentScope,
    bbox: BBoxParam = None,
    zoom: ZoomParam = None,
    coords: CoordsParam = "wgs84",
) -> Response:
    """Communities (code, name, town_code, kind, population) intersecting the bbox, within the user's town."""
    return _layer_response(Layer.COMMUNITIES, conn, settings, scope, bbox, zoom, coords)


@router.get(
    "/grids", summary="网格边界图层（现行版本）", response_class=GeoJSONResponse, responses=_layer_responses(GridLayer)
)
def grids_layer(
    conn: ReadConn,
    settings: Annotated[ServerSettings, Depends(server_settings)],
    _: TerritoryReader,
    scope: CurrentScope,
    bbox: BBoxParam = None,
    zoom: ZoomParam = None,
    coords: CoordsParam = "wgs84",
) -> Response:
    """Grids of the active version with their community, town and counts, intersecting the bbox, within the user's town."""
    return _layer_response(Layer.GRIDS, conn, settings, scope, bbox, zoom, coords)


@router.get(
    "/grids/{code}",
    summary="网格详情",
    response_model=GridDetails,
    responses={
        403: {"description": "网格不在当前用户的辖区内，或 API 客户端无权查看网格详情"},
        404: {"description": "没有该网格"},
    },
)
def grid_details(
    conn: ReadConn,
    principal: DetailReader,
    scope: CurrentScope,
    code: Annotated[str, Path(pattern=GRID_PATTERN.pattern, description="15-digit grid code")],
) -> GridDetails:
    """One grid of the active version with its community, town and counts (403 outside the user's town, 404 when unknown).

    The work counts (open, overdue tasks; clues of 30 days) only where the caller's task scope covers the grid."""
    if not scope.sees(code):
        raise OutOfScope(f"{code} is outside your area")
    details = GridDetails.model_validate(service.grid_details(conn, code))
    covered = scope.covers(conn, "grid", code)
    hidden: dict[str, None] = {}
    if not (covered and principal.may(Capability.TASK_READ)):
        hidden |= {"open_tasks": None, "overdue_tasks": None}
    if not (covered and principal.may(Capability.CLUE_READ)):
        hidden["clues_30d"] = None
    return details.model_copy(update=hidden) if hidden else details
