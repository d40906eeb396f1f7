"""maps.layers: pure rules of the map layers (bbox parsing, zoom -> simplification, payload size guard) and the
schema of their features."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from maps.errors import InvalidLayerRequest, LayerTooLarge
from maps.geojson import FeatureCollection, Model

ZOOM_MIN = 0
ZOOM_MAX = 20
TILE_SIZE_PX = 256
# How much coarser than one screen pixel each retry snaps, when a layer is over the payload limit.
COARSENING_STEPS: tuple[float, ...] = (1.0, 2.0, 4.0)
# The smallest a polygon feature's geometry can serialize to (a one-ring MultiPolygon of four points);
# lets the size guard tell "simplifying harder could help" from "only a smaller bbox can help".
MIN_GEOMETRY_BYTES = len('{"type":"MultiPolygon","coordinates":[[[[0,0],[0,0],[0,0],[0,0]]]]}')


class Layer(StrEnum):
    """The polygon layers of the map."""

    TOWNS = "towns"
    COMMUNITIES = "communities"
    GRIDS = "grids"


LAYER_LABELS_ZH: dict[Layer, str] = {Layer.TOWNS: "镇街", Layer.COMMUNITIES: "村（社区）", Layer.GRIDS: "网格"}


@dataclass(frozen=True)
class BBox:
    """A WGS84 box, west/south/east/north in degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def as_params(self) -> dict[str, float]:
        """Bound parameters for ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326)."""
        return {"min_lon": self.min_lon, "min_lat": self.min_lat, "max_lon": self.max_lon, "max_lat": self.max_lat}


WORLD = BBox(-180.0, -90.0, 180.0, 90.0)


def parse_bbox(text: str) -> BBox:
    """Parse `minlon,minlat,maxlon,maxlat` (degrees, WGS84) or raise InvalidLayerRequest."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidLayerRequest(f"bbox must be minlon,minlat,maxlon,maxlat (4 numbers), got {len(parts)} part(s)")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p.strip()) for p in parts)
    except ValueError as exc:
        raise InvalidLayerRequest("bbox must be minlon,minlat,maxlon,maxlat with decimal numbers") from exc
    values = (min_lon, min_lat, max_lon, max_lat)
    if not all(math.isfinite(v) for v in values):
        raise InvalidLayerRequest("bbox values must be finite numbers")
    if not (-180.0 <= min_lon <= 180.0 and -180.0 <= max_lon <= 180.0):
        raise InvalidLayerRequest("bbox longitudes must lie within -180..180")
    if not (-90.0 <= min_lat <= 90.0 and -90.0 <= max_lat <= 90.0):
        raise InvalidLayerRequest("bbox latitudes must lie within -90..90")
    if not (min_lon < max_lon and min_lat < max_lat):
        raise InvalidLayerRequest("bbox minimum must be below its maximum (minlon < maxlon, minlat < maxlat)")
    return BBox(min_lon, min_lat, max_lon, max_lat)


def check_zoom(zoom: int) -> int:
    """The zoom itself when within ZOOM_MIN..ZOOM_MAX, else InvalidLayerRequest."""
    if not ZOOM_MIN <= zoom <= ZOOM_MAX:
        raise InvalidLayerRequest(f"zoom must be an integer within {ZOOM_MIN}..{ZOOM_MAX}, got {zoom}")
    return zoom


def degrees_per_pixel(zoom: int) -> float:
    """Longitude degrees one screen pixel spans at this web-mercator zoom (256-px tiles)."""
    return 360.0 / (TILE_SIZE_PX * 2.0**zoom)


def snap_ladder_deg(zoom: int | None) -> tuple[float, ...]:
    """Grid sizes (degrees) to snap vertices to, finest first; (0.0,) = full detail when no zoom is given.

    Snapping to a common grid keeps neighbouring polygons tiled: a vertex two polygons share
    lands on the same grid point in both, unlike per-polygon Douglas-Peucker simplification.
    """
    if zoom is None:
        return (0.0,)
    pixel_deg = degrees_per_pixel(check_zoom(zoom))
    return tuple(pixel_deg * step for step in COARSENING_STEPS)


def coordinate_decimals(zoom: int | None) -> int:
    """Decimals of the GeoJSON coordinates: 5 (about 1 m) up to zoom 16, 6 beyond or without zoom."""
    if zoom is not None and zoom <= 16:
        return 5
    return 6


def megabytes(n_bytes: int) -> str:
    """A byte count as megabytes for messages (`1.23 MB`)."""
    return f"{n_bytes / 1_000_000:.2f} MB"


def simplifying_can_fit(*, fixed_bytes: int, n_features: int, limit_bytes: int) -> bool:
    """Whether some geometry simplification could bring the layer under the limit.

    `fixed_bytes` is what does not shrink with simplification (properties and JSON skeleton);
    each feature still needs at least MIN_GEOMETRY_BYTES of geometry.
    """
    return fixed_bytes + n_features * MIN_GEOMETRY_BYTES <= limit_bytes


def too_large(layer: Layer, *, size_bytes: int, n_features: int, limit_bytes: int) -> LayerTooLarge:
    """The LayerTooLarge error a user reads: how big, the limit, and what to do."""
    return LayerTooLarge(
        f"the {layer.value} layer would be {megabytes(size_bytes)} for {n_features} features, over the "
        f"{megabytes(limit_bytes)} limit: narrow the bbox or zoom in"
    )


# ------------------------------------------------------------------------------------------------ schemas
# What each layer's features carry (the OpenAPI document of the streamed GeoJSON; the SQL of maps.repository).


class TownProperties(Model):
    """A town of the towns layer."""

    code: str
    name: str
    population: int
    area_km2: float


class CommunityProperties(Model):
    """A village or community of the communities layer."""

    code: str
    name: str
    town_code: str
    kind: str
    population: int


class GridProperties(Model):
    """A grid of the grids layer: its code (the first 12 digits are its community's) and what the map colours by."""

    code: str
    workload: int
    worker_count: int


class TownLayer(FeatureCollection[TownProperties]):
    """GET /v1/towns: a GeoJSON FeatureCollection of towns."""


class CommunityLayer(FeatureCollection[CommunityProperties]):
    """GET /v1/communities: a GeoJSON FeatureCollection of villages and communities."""


class GridLayer(FeatureCollection[GridProperties]):
    """GET /v1/grids: a GeoJSON FeatureCollection of the active version's grids."""
