"""api.routers.geocode: geocode, reverse and autocomplete for API clients (all need a credential)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from address_library.errors import OutsideCity
from address_library.live import LiveGeocoder
from address_library.normalize import MAX_ADDRESS_CHARS
from address_library.service import Geocoder
from api.deps import allowed
from api.observability import observe_geocode
from gis.coords import CoordSystem, convert
from supervision.permissions import Capability

router = APIRouter(tags=["地理编码"], dependencies=[Depends(allowed(Capability.GEOCODE))])

# The box reverse geocoding accepts (WGS84): Dongguan with a margin; anything else is outside the city.
CITY_BOX = (113.45, 22.60, 114.30, 23.20)

QueryText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_ADDRESS_CHARS,
        description="地址文本，按用户输入原样传入（繁体、全角、中文数字均可）",
        examples=["东莞市长安镇振隆路27号"],
    ),
]
CrsParam = Annotated[CoordSystem, Query(description="输出坐标系：wgs84（默认）、gcj02（高德/腾讯）或 bd09（百度）")]
NearBoundaryParam = Annotated[
    float | None, Query(ge=0, le=500, description="距网格边界多少米以内标记 near_boundary（默认 30 米）")
]


class Candidate(BaseModel):
    """一个可能的标准地址（ambiguous 时给出）。"""

    address_id: int
    standard_address: str
    level: str
    town_code: str


class GeocodeResponse(BaseModel):
    """地理编码结果：标准地址、坐标、网格、匹配级别与置信度。"""

    query: str
    status: str = Field(description="matched / ambiguous / not_found")
    level: str | None = Field(description="room / building / door / road / community / town")
    confidence: float = Field(ge=0, le=1)
    address_id: int | None
    standard_address: str | None
    lon: float | None
    lat: float | None
    crs: str
    grid_code: str | None
    community_code: str | None
    town_code: str | None
    near_boundary: bool | None
    reason: str | None
    candidates: list[Candidate]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "query": "東莞市長安鎮振隆路２７號",
                    "status": "matched",
                    "level": "door",
                    "confidence": 0.97,
                    "address_id": 223375,
                    "standard_address": "长安镇振隆路27号",
                    "lon": 113.8052,
                    "lat": 22.8162,
                    "crs": "wgs84",
                    "grid_code": "441900119004003",
                    "community_code": "441900119004",
                    "town_code": "441900119000",
                    "near_boundary": False,
                    "reason": None,
                    "candidates": [],
                }
            ]
        }
    }


class ReverseResponse(BaseModel):
    """逆地理编码结果：最近的标准地址及该点所在网格。"""

    lon: float
    lat: float
    crs: str
    address_id: int
    standard_address: str
    level: str
    distance_m: float = Field(description="点到该标准地址的距离（米）")
    grid_code: str | None
    community_code: str | None
    town_code: str | None
    near_boundary: bool | None
    boundary_distance_m: float | None


class Suggestion(BaseModel):
    """自动补全的一条标准地址。"""

    address_id: int
    standard_address: str
    level: str
    lon: float
    lat: float
    grid_code: str | None


def geocoder(request: Request) -> Geocoder:
    """The application's live geocoder (built on first use, refreshed when the library changes)."""
    live: LiveGeocoder = request.app.state.geocoder
    return live.get()


def geocode_one(request: Request, q: str, crs: CoordSystem, near_boundary_m: float | None) -> dict[str, Any]:
    """One geocode answer as the JSON body (shared with the Nominatim face)."""
    answer = geocoder(request).geocode(q, near_boundary_m=near_boundary_m).in_coords(crs)
    observe_geocode(request.app, answer.status, answer.confidence)
    return {"query": q, "crs": crs, **answer.as_dict()}


def to_wgs84(lon: float, lat: float, crs: CoordSystem) -> tuple[float, float]:
    """A client's point in WGS84, refused when it lies outside the city."""
    if crs != "wgs84":
        lon_w, lat_w = convert(lon, lat, crs, "wgs84")
        lon, lat = float(lon_w), float(lat_w)
    west, south, east, north = CITY_BOX
    if not (west <= lon <= east and south <= lat <= north):
        raise OutsideCity(f"({lon:.6f}, {lat:.6f}) is outside Dongguan")
    return lon, lat


@router.get(
    "/geocode",
    response_model=GeocodeResponse,
    summary="地理编码：地址文本 → 标准地址、坐标与网格",
)
async def geocode(
    request: Request, q: QueryText, crs: CrsParam = "wgs84", near_boundary_m: NearBoundaryParam = None
) -> Any:
    """把用户输入的地址匹配到标准地址库，返回匹配状态、级别、置信度、坐标及所在网格、村（社区）、镇街。"""
    # Matching is ~0.1 ms of CPU on the in-memory index: done on the event loop, no thread hop. The first
    # call builds the index, which takes seconds: that one goes to the thread pool.
    live: LiveGeocoder = request.app.state.geocoder
    if not live.ready:
        await run_in_threadpool(live.get)
    body = orjson.dumps(geocode_one(request, q, crs, near_boundary_m))
    return Response(content=body, media_type="application/json")


@router.get("/reverse", response_model=ReverseResponse, summary="逆地理编码：坐标 → 最近标准地址与所在网格")
def reverse(
    request: Request,
    lon: Annotated[float, Query(ge=-180, le=180, description="经度", examples=[113.7518])],
    lat: Annotated[float, Query(ge=-90, le=90, description="纬度", examples=[23.0205])],
    crs: CrsParam = "wgs84",
    near_boundary_m: NearBoundaryParam = None,
) -> Any:
    """坐标（可为 GCJ-02/BD-09）所在的网格，以及离它最近的门牌或楼栋。"""
    lon_w, lat_w = to_wgs84(lon, lat, crs)
    found = geocoder(request).reverse(lon_w, lat_w, near_boundary_m=near_boundary_m)
    if crs != "wgs84":
        a_lon, a_lat = convert(found["address_lon"], found["address_lat"], "wgs84", crs)
        found["address_lon"], found["address_lat"] = float(a_lon), float(a_lat)
    return {"lon": lon, "lat": lat, "crs": crs, **found}


@router.get("/autocomplete", response_model=list[Suggestion], summary="地址自动补全")
def autocomplete(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=100, description="已输入的地址前缀", examples=["长安镇振隆"])],
    limit: Annotated[int, Query(ge=1, le=10, description="最多返回条数")] = 10,
    crs: CrsParam = "wgs84",
) -> Any:
    """以输入前缀开头的标准地址（镇街可省略），门牌优先。"""
    suggestions = geocoder(request).autocomplete(q, limit=limit)
    if crs != "wgs84":
        for s in suggestions:
            lon, lat = convert(s["lon"], s["lat"], "wgs84", crs)
            s["lon"], s["lat"] = float(lon), float(lat)
    return suggestions
