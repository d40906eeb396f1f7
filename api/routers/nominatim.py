"""api.routers.nominatim: a Nominatim-compatible face (/search, /reverse) so existing clients and search boxes work.

Answers keep Nominatim's shapes (json, jsonv2, geojson) with strings for lat/lon as Nominatim sends them, and add
gridgov's fields: grid_code, community_code, town_code, match_level, confidence. The key may come as `key=` like
hosted Nominatim-compatible services, or as the X-API-Key header.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from address_library.normalize import MAX_ADDRESS_CHARS
from api.deps import allowed
from api.observability import observe_geocode
from api.routers.geocode import geocoder, to_wgs84
from supervision.permissions import Capability

router = APIRouter(tags=["Nominatim 兼容接口"], dependencies=[Depends(allowed(Capability.GEOCODE))])

LICENCE = "gridgov 标准地址库 (synthetic demo data)"
Format = Literal["json", "jsonv2", "geojson"]
FormatParam = Annotated[Format, Query(description="json、jsonv2 或 geojson（与 Nominatim 相同）")]


def _place(answer: dict[str, Any], fmt: Format, rank: int) -> dict[str, Any]:
    lat, lon = answer["lat"], answer["lon"]
    d = 0.0005
    place: dict[str, Any] = {
        "place_id": answer.get("address_id") or 0,
        "licence": LICENCE,
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        "display_name": answer.get("standard_address") or "",
        "boundingbox": [f"{lat - d:.7f}", f"{lat + d:.7f}", f"{lon - d:.7f}", f"{lon + d:.7f}"],
        "importance": answer.get("confidence", 0.0),
        "type": answer.get("level") or "",
        "address": {
            "road": answer.get("road"),
            "town_code": answer.get("town_code"),
            "city": "东莞市",
            "state": "广东省",
            "country": "中国",
            "country_code": "cn",
        },
        "grid_code": answer.get("grid_code"),
        "community_code": answer.get("community_code"),
        "town_code": answer.get("town_code"),
        "match_level": answer.get("level"),
        "confidence": answer.get("confidence"),
    }
    if fmt == "jsonv2":
        place["category"] = "place"
        place["place_rank"] = rank
    else:
        place["class"] = "place"
    return place


def _geojson(places: list[dict[str, Any]]) -> dict[str, Any]:
    features = []
    for p in places:
        lat, lon = float(p["lat"]), float(p["lon"])
        properties = {k: v for k, v in p.items() if k not in ("lat", "lon", "boundingbox")}
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "bbox": [
                    float(p["boundingbox"][2]),
                    float(p["boundingbox"][0]),
                    float(p["boundingbox"][3]),
                    float(p["boundingbox"][1]),
                ],
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
        )
    return {"type": "FeatureCollection", "licence": LICENCE, "features": features}


_RANK = {"room": 30, "building": 30, "door": 30, "road": 26, "community": 16, "town": 14}


@router.get("/search", summary="Nominatim 兼容：地址搜索")
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=MAX_ADDRESS_CHARS, description="地址文本")],
    format: FormatParam = "json",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Any:
    """与 Nominatim /search 相同的请求与响应格式，附加网格、村（社区）、镇街编码。"""
    answer = geocoder(request).geocode(q).as_dict()
    observe_geocode(request.app, answer["status"], answer["confidence"])
    places: list[dict[str, Any]] = []
    if answer["status"] == "matched" and answer["lon"] is not None:
        places.append(_place(answer, format, _RANK.get(answer["level"] or "", 10)))
    elif answer["status"] == "ambiguous":
        g = geocoder(request)
        for c in answer["candidates"][:limit]:
            found = g.geocode(c["standard_address"]).as_dict()
            if found["status"] == "matched":
                places.append(_place(found, format, _RANK.get(found["level"] or "", 10)))
    places = places[:limit]
    return _geojson(places) if format == "geojson" else places


@router.get("/reverse", summary="Nominatim 兼容：逆地理编码")
def reverse(
    request: Request,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    format: FormatParam = "json",
) -> Any:
    """与 Nominatim /reverse 相同的请求与响应格式，附加网格、村（社区）、镇街编码。"""
    lon_w, lat_w = to_wgs84(lon, lat, "wgs84")
    found = geocoder(request).reverse(lon_w, lat_w)
    answer = {
        "address_id": found["address_id"],
        "standard_address": found["standard_address"],
        "lat": found["address_lat"],
        "lon": found["address_lon"],
        "level": found["level"],
        "confidence": 1.0,
        "grid_code": found["grid_code"],
        "community_code": found["community_code"],
        "town_code": found["town_code"],
    }
    place = _place(answer, format, 30)
    place["distance_m"] = found["distance_m"]
    return _geojson([place]) if format == "geojson" else place
