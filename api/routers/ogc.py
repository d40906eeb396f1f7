"""api.routers.ogc: OGC API Features (Part 1 Core, Part 3 CQL2 text) for towns, communities and grids, scoped.

Mounted at /ogc behind the credential check (API_DEPENDENCIES): a GIS client sends X-API-Key, a Bearer token, the
session cookie or `key=`. Every answer is limited to the caller's map area (`Scope.towns`); a feature outside it
answers 404 like one that does not exist. Bad `bbox`, `limit`, `offset`, property queries or filters answer 400
with the project's error body (`{"error": "maps_error", "detail": reason}`). Why this is built here rather than on
tipg or pygeoapi: see maps.ogc.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, allowed
from gis import clock
from maps import ogc, ogc_repository
from supervision.permissions import Capability

router = APIRouter(tags=["OGC API Features"])

Reader = Annotated[Principal, Depends(allowed(Capability.TERRITORY_READ))]
CollectionId = Annotated[str, Path(description="集合：towns（镇街）、communities（村（社区））、grids（网格）")]
Format = Annotated[str | None, Query(alias="f", description="json（默认）")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_format(fmt: str | None) -> None:
    if fmt not in (None, "", "json", "geojson"):
        raise ogc.OgcRequestError(f"f={fmt!r} is not offered; only json")


def _json(content: dict[str, Any], media_type: str = ogc.JSON) -> JSONResponse:
    return JSONResponse(content, media_type=media_type)


@router.get("", summary="OGC API 着陆页", response_class=JSONResponse)
@router.get("/", include_in_schema=False)
def landing(request: Request, _: Reader, f: Format = None) -> JSONResponse:
    """The landing page: links to the API definition, the conformance declaration and the collections."""
    _check_format(f)
    return _json(ogc.landing(_base(request)))


@router.get("/conformance", summary="符合的标准类", response_class=JSONResponse)
def conformance(_: Reader, f: Format = None) -> JSONResponse:
    """The conformance classes this server implements."""
    _check_format(f)
    return _json(ogc.conformance())


@router.get("/collections", summary="要素集合列表", response_class=JSONResponse)
def collections(request: Request, conn: ReadConn, scope: CurrentScope, _: Reader, f: Format = None) -> JSONResponse:
    """Towns, communities and grids, each with its extent within the caller's area."""
    _check_format(f)
    base = _base(request)
    docs = [
        ogc.collection_doc(base, c, ogc_repository.collection_extent(conn, c, towns=scope.towns))
        for c in ogc.COLLECTIONS.values()
    ]
    return _json(ogc.collections_doc(base, docs))


@router.get("/collections/{collection_id}", summary="要素集合", response_class=JSONResponse)
def collection(
    request: Request, collection_id: CollectionId, conn: ReadConn, scope: CurrentScope, _: Reader, f: Format = None
) -> JSONResponse:
    """One collection, with its extent within the caller's area."""
    _check_format(f)
    found = ogc.collection_of(collection_id)
    extent = ogc_repository.collection_extent(conn, found, towns=scope.towns)
    return _json(ogc.collection_doc(_base(request), found, extent))


@router.get("/collections/{collection_id}/queryables", summary="可查询属性", response_class=JSONResponse)
def queryables(request: Request, collection_id: CollectionId, _: Reader, f: Format = None) -> JSONResponse:
    """The properties a filter or a property query may name (JSON Schema)."""
    _check_format(f)
    found = ogc.collection_of(collection_id)
    return _json(ogc.queryables_doc(_base(request), found), "application/schema+json")


@router.get("/collections/{collection_id}/items", summary="要素（GeoJSON）", response_class=JSONResponse)
def items(
    request: Request,
    collection_id: CollectionId,
    conn: ReadConn,
    scope: CurrentScope,
    _: Reader,
    f: Format = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat（CRS84）")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="仅支持 CRS84")] = None,
    limit: Annotated[str | None, Query(description="每页要素数，1–1000，默认 10（超过 1000 按 1000）")] = None,
    offset: Annotated[str | None, Query(description="从第几个要素起（0 起）")] = None,
    filter_text: Annotated[str | None, Query(alias="filter", description="CQL2 文本过滤条件")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang", description="仅 cql2-text")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="仅支持 CRS84")] = None,
) -> JSONResponse:
    """A page of features as a GeoJSON FeatureCollection, with numberMatched, numberReturned and paging links.

    Besides the standard's parameters, any queryable property (`?town_code=…`) is an equality condition.
    """
    _check_format(f)
    found = ogc.collection_of(collection_id)
    query = list(request.query_params.multi_items())
    box = ogc.parse_bbox(bbox, bbox_crs)
    page_size, start = ogc.parse_limit(limit), ogc.parse_offset(offset)
    filters = [
        ogc.property_filter(found, query),
        ogc.cql2_filter(found, filter_text, lang=filter_lang, crs=filter_crs),
    ]
    matched = ogc_repository.count_features(conn, found, towns=scope.towns, bbox=box, filters=filters)
    rows = ogc_repository.read_features(
        conn, found, towns=scope.towns, bbox=box, filters=filters, limit=page_size, offset=start
    )
    base = _base(request)
    body = {
        "type": "FeatureCollection",
        "features": [ogc.feature(base, found, r.properties, r.geometry) for r in rows],
        "numberMatched": matched,
        "numberReturned": len(rows),
        "timeStamp": clock.now().isoformat(timespec="seconds"),
        "links": ogc.page_links(base, found, query, offset=start, limit=page_size, matched=matched),
    }
    return _json(body, ogc.GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="单个要素", response_class=JSONResponse)
def item(
    request: Request,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(description="要素编号（编码）")],
    conn: ReadConn,
    scope: CurrentScope,
    _: Reader,
    f: Format = None,
) -> JSONResponse:
    """One feature by its code; 404 when there is none within the caller's area."""
    _check_format(f)
    found = ogc.collection_of(collection_id)
    row = ogc_repository.read_feature(conn, found, feature_id, towns=scope.towns)
    if row is None:
        raise ogc.UnknownFeature(f"no feature {feature_id!r} in {collection_id}")
    return _json(ogc.feature(_base(request), found, row.properties, row.geometry), ogc.GEOJSON)
