"""maps.service: map layers under the payload limit, and the grid popup details."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection

from gis.coords import CoordSystem, convert, convert_geojson_geometry
from maps import repository
from maps.errors import UnknownGrid
from maps.layers import WORLD, BBox, Layer, coordinate_decimals, simplifying_can_fit, snap_ladder_deg, too_large


def layer_geojson(
    conn: Connection,
    layer: Layer,
    *,
    bbox: BBox | None,
    zoom: int | None,
    towns: frozenset[str] | None,
    limit_bytes: int,
    coords: CoordSystem = "wgs84",
) -> bytes:
    """The layer as GeoJSON bytes no larger than `limit_bytes`, simplified for `zoom` (None = full detail).

    Only the features of `towns` are kept (None: the whole city; an empty set: none), in the SQL itself, so the
    size limit applies to what the caller receives.

    `coords` is the coordinate system of both the bbox and the answer: "gcj02" for an Amap or Tencent basemap,
    "bd09" for Baidu's, "wgs84" (the stored one) otherwise.

    When the zoom's own simplification is still too large, vertices are snapped coarser (twice, then
    four times a pixel) before giving up with LayerTooLarge; it gives up at once when the properties
    alone are over the limit, since no simplification can help then.
    """
    decimals = coordinate_decimals(zoom)
    if bbox is not None and coords != "wgs84":
        bbox = bbox_to_wgs84(bbox, coords)
    payload: repository.LayerPayload | None = None
    for snap_deg in snap_ladder_deg(zoom):
        payload = repository.layer_feature_collection(
            conn, layer, bbox or WORLD, towns=towns, snap_deg=snap_deg, decimals=decimals
        )
        body = payload.body if coords == "wgs84" else convert_feature_collection(payload.body, coords, decimals)
        if len(body) <= limit_bytes:
            return body
        if not simplifying_can_fit(
            fixed_bytes=payload.fixed_bytes, n_features=payload.n_features, limit_bytes=limit_bytes
        ):
            break
    assert payload is not None  # the ladder is never empty
    raise too_large(layer, size_bytes=len(payload.body), n_features=payload.n_features, limit_bytes=limit_bytes)


def grid_details(conn: Connection, code: str) -> dict[str, Any]:
    """One active grid's details for the map popup, or UnknownGrid."""
    details = repository.grid_details(conn, code)
    if details is None:
        raise UnknownGrid(f"no grid with code {code} in the active grid version")
    return details


# The GCJ-02 and BD-09 offsets stay under about 1 km in China; a converted box is widened by this much so that
# features near its edges are not lost to the non-linearity of the offset.
_BBOX_PAD_DEG = 0.002


def bbox_to_wgs84(bbox: BBox, coords: CoordSystem) -> BBox:
    """The WGS84 box covering a box given in `coords` (its corners converted, then padded)."""
    lon, lat = convert(
        np.array([bbox.min_lon, bbox.max_lon, bbox.min_lon, bbox.max_lon]),
        np.array([bbox.min_lat, bbox.min_lat, bbox.max_lat, bbox.max_lat]),
        coords,
        "wgs84",
    )
    return BBox(
        float(lon.min()) - _BBOX_PAD_DEG,
        float(lat.min()) - _BBOX_PAD_DEG,
        float(lon.max()) + _BBOX_PAD_DEG,
        float(lat.max()) + _BBOX_PAD_DEG,
    )


def convert_feature_collection(body: bytes, coords: CoordSystem, decimals: int) -> bytes:
    """A WGS84 GeoJSON FeatureCollection with every geometry converted to `coords`, rounded to `decimals`."""
    collection = orjson.loads(body)
    for feature in collection["features"]:
        converted = convert_geojson_geometry(feature["geometry"], "wgs84", coords)
        feature["geometry"] = _rounded(converted, decimals)
    return orjson.dumps(collection)


def _rounded(value: Any, decimals: int) -> Any:
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, list):
        return [_rounded(v, decimals) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, decimals) for k, v in value.items()}
    return value
