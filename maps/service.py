"""maps.service: map layers under the payload limit, and the grid popup details."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from maps import repository
from maps.errors import UnknownGrid
from maps.layers import WORLD, BBox, Layer, coordinate_decimals, simplifying_can_fit, snap_ladder_deg, too_large


def layer_geojson(conn: Connection, layer: Layer, *, bbox: BBox | None, zoom: int | None, limit_bytes: int) -> bytes:
    """The layer as GeoJSON bytes no larger than `limit_bytes`, simplified for `zoom` (None = full detail).

    When the zoom's own simplification is still too large, vertices are snapped coarser (twice, then
    four times a pixel) before giving up with LayerTooLarge; it gives up at once when the properties
    alone are over the limit, since no simplification can help then.
    """
    decimals = coordinate_decimals(zoom)
    payload: repository.LayerPayload | None = None
    for snap_deg in snap_ladder_deg(zoom):
        payload = repository.layer_feature_collection(conn, layer, bbox or WORLD, snap_deg=snap_deg, decimals=decimals)
        if len(payload.body) <= limit_bytes:
            return payload.body
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
