"""maps.tiles: pure rules of the vector tiles: tile ↔ bbox math, zoom ranges, the layer catalogue, generalisation
by zoom, the GCJ-02 shift of a tile and the TileJSON document.

Tiles are the XYZ tiles of web mercator (EPSG:3857), 256 screen pixels wide at their own zoom, encoded as
Mapbox Vector Tiles of extent 4096 with a buffer of 64 (PostGIS ST_AsMVTGeom / ST_AsMVT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gis.coords import CoordSystem, convert
from maps.errors import InvalidLayerRequest, UnknownLayer
from maps.page import DONGGUAN_BOUNDS_LON_LAT

TILE_ZOOM_MIN = 0
TILE_ZOOM_MAX = 22
# Zoom up to which the TileJSON advertises tiles; a map overzooms beyond (the data holds nothing finer).
TILEJSON_MAXZOOM = 16
MVT_EXTENT = 4096
MVT_BUFFER = 64
TILE_SIZE_PX = 256
# Entities are points from this zoom on; below it, clusters of the points within one cell of CLUSTER_CELL_PX.
ENTITY_POINT_ZOOM = 14
CLUSTER_CELL_PX = 32
# A cluster's id is column * CLUSTER_ID_BASE + row of its cell (2^24 cells a side: enough below zoom 14).
CLUSTER_ID_BASE = 2**24
# Web mercator: the sphere's radius and the half width of the world (metres).
EARTH_RADIUS_M = 6378137.0
HALF_WORLD_M = math.pi * EARTH_RADIUS_M
# The latitude beyond which web mercator stops.
MAX_LATITUDE = 85.0511287798066
TILE_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# The most a tile may weigh (issue 14); a street tile of entities denser than this is sent as clusters instead.
MAX_TILE_BYTES = 500_000


class TileLayer(StrEnum):
    """The layers served as vector tiles (the MVT layer inside each tile has the same name)."""

    TOWNS = "towns"
    COMMUNITIES = "communities"
    GRIDS = "grids"
    ENTITIES = "entities"
    TASKS = "tasks"
    CLUES = "clues"


class DataGroup(StrEnum):
    """The groups of tables whose changes are versioned per town (table data_version, maps.models)."""

    TERRITORY = "territory"
    ENTITIES = "entities"
    TASKS = "tasks"
    CLUES = "clues"


@dataclass(frozen=True)
class LayerSpec:
    """One tile layer: its Chinese label, zoom range, the fields of its features and the data it is built from."""

    layer: TileLayer
    label_zh: str
    minzoom: int
    fields: dict[str, str]
    groups: tuple[DataGroup, ...]
    maxzoom: int = TILEJSON_MAXZOOM


# Every layer reads the territory too: scopes of a worker and grid coverage come from the worker and grid tables.
LAYERS: dict[TileLayer, LayerSpec] = {
    spec.layer: spec
    for spec in (
        LayerSpec(
            TileLayer.TOWNS,
            "镇街",
            0,
            {"code": "镇街编码", "name": "镇街名称"},
            (DataGroup.TERRITORY,),
        ),
        LayerSpec(
            TileLayer.COMMUNITIES,
            "村（社区）",
            8,
            {"code": "村（社区）编码", "name": "名称", "town_code": "所属镇街编码"},
            (DataGroup.TERRITORY,),
        ),
        LayerSpec(
            TileLayer.GRIDS,
            "网格",
            9,
            {
                "code": "网格编码",
                "name": "网格名称",
                "town_code": "所属镇街编码",
                "community_code": "所属村（社区）编码",
                "workers": "网格员人数",
                "workload": "工作量",
                "hours_per_worker": "每人每月工作量（小时；未计算时缺省）",
                "open_tasks": "在办任务数（仅本人辖区内的网格）",
                "overdue_tasks": "逾期任务数（仅本人辖区内的网格）",
                "clues_30d": "近 30 天线索数（仅本人辖区内的网格）",
            },
            (DataGroup.TERRITORY, DataGroup.TASKS, DataGroup.CLUES),
        ),
        LayerSpec(
            TileLayer.ENTITIES,
            "市场主体",
            8,
            {
                "cluster": f"聚合点（缩放级别 {ENTITY_POINT_ZOOM} 以下，或瓦片超过 500 KB 时）",
                "point_count": "聚合的市场主体数",
                "uscc": "统一社会信用代码",
                "name": "名称",
                "grid_code": "所在网格编码",
                "status": "状态：open 存续 / closed 注销",
            },
            (DataGroup.TERRITORY, DataGroup.ENTITIES),
        ),
        LayerSpec(
            TileLayer.TASKS,
            "在办任务",
            10,
            {
                "id": "任务编号",
                "duty": "职责",
                "status": "状态",
                "overdue": "是否逾期",
                "due_at": "期限（ISO 8601）",
                "grid_code": "网格编码",
                "worker_id": "网格员编号",
                "entity_name": "市场主体名称",
                "cluster": "聚合点（瓦片超过 500 KB 时）",
                "point_count": "聚合的任务数",
                "overdue_count": "其中逾期的任务数",
            },
            (DataGroup.TERRITORY, DataGroup.TASKS, DataGroup.ENTITIES, DataGroup.CLUES),
        ),
        LayerSpec(
            TileLayer.CLUES,
            "线索",
            10,
            {
                "id": "线索编号",
                "industry": "行业",
                "severity": "严重程度",
                "status": "状态",
                "source": "来源",
                "reported_at": "上报时间（ISO 8601）",
                "grid_code": "网格编码",
                "cluster": "聚合点（瓦片超过 500 KB 时）",
                "point_count": "聚合的线索数",
            },
            (DataGroup.TERRITORY, DataGroup.CLUES),
        ),
    )
}


@dataclass(frozen=True)
class Tile:
    """One XYZ tile: zoom, column (x, west to east) and row (y, north to south)."""

    z: int
    x: int
    y: int


# ------------------------------------------------------------------------------------------------ validation


def layer_spec(name: str) -> LayerSpec:
    """The spec of a layer by name, or UnknownLayer naming the layers there are."""
    try:
        return LAYERS[TileLayer(name)]
    except ValueError:
        known = ", ".join(layer.value for layer in TileLayer)
        raise UnknownLayer(f"no tile layer {name!r}; the layers are {known}") from None


def check_tile(spec: LayerSpec, z: int, x: int, y: int) -> Tile:
    """The tile when z lies in the layer's range (its minzoom..22) and x, y in 0..2^z-1; else InvalidLayerRequest."""
    if not TILE_ZOOM_MIN <= z <= TILE_ZOOM_MAX:
        raise InvalidLayerRequest(f"zoom must lie within {TILE_ZOOM_MIN}..{TILE_ZOOM_MAX}, got {z}")
    if z < spec.minzoom:
        raise InvalidLayerRequest(f"the {spec.layer.value} layer starts at zoom {spec.minzoom}, got {z}")
    last = 2**z - 1
    if not (0 <= x <= last and 0 <= y <= last):
        raise InvalidLayerRequest(f"at zoom {z}, x and y must lie within 0..{last}, got x={x}, y={y}")
    return Tile(z, x, y)


# ------------------------------------------------------------------------------------------------ tile math


def tile_width_m(z: int) -> float:
    """Width of a tile of zoom z in web-mercator metres."""
    return 2 * HALF_WORLD_M / 2**z


def tile_bounds_m(tile: Tile) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the tile in web-mercator metres (what ST_TileEnvelope gives)."""
    width = tile_width_m(tile.z)
    xmin = -HALF_WORLD_M + tile.x * width
    ymax = HALF_WORLD_M - tile.y * width
    return xmin, ymax - width, xmin + width, ymax


def mercator_to_lon_lat(x_m: float, y_m: float) -> tuple[float, float]:
    """Web-mercator metres → (lon, lat) in degrees."""
    lon = math.degrees(x_m / EARTH_RADIUS_M)
    lat = math.degrees(2 * math.atan(math.exp(y_m / EARTH_RADIUS_M)) - math.pi / 2)
    return lon, lat


def lon_lat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) in degrees → web-mercator metres (latitude clamped to web mercator's limit)."""
    lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, lat))
    x_m = EARTH_RADIUS_M * math.radians(lon)
    y_m = EARTH_RADIUS_M * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return x_m, y_m


def mercator_arrays(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Arrays of (lon, lat) degrees → web-mercator metres (latitude clamped to web mercator's limit)."""
    clamped = np.clip(lat, -MAX_LATITUDE, MAX_LATITUDE)
    x_m = EARTH_RADIUS_M * np.radians(lon)
    y_m = EARTH_RADIUS_M * np.log(np.tan(np.pi / 4 + np.radians(clamped) / 2))
    return x_m.astype(np.float64), y_m.astype(np.float64)


def tile_bounds_lon_lat(tile: Tile) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the tile in WGS84 degrees."""
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    west, south = mercator_to_lon_lat(xmin, ymin)
    east, north = mercator_to_lon_lat(xmax, ymax)
    return west, south, east, north


def tile_of_lon_lat(lon: float, lat: float, z: int) -> Tile:
    """The tile of zoom z holding the point (a point on a tile edge belongs to the tile east and south of it)."""
    x_m, y_m = lon_lat_to_mercator(lon, lat)
    width = tile_width_m(z)
    last = 2**z - 1
    x = min(last, max(0, math.floor((x_m + HALF_WORLD_M) / width)))
    y = min(last, max(0, math.floor((HALF_WORLD_M - y_m) / width)))
    return Tile(z, x, y)


def buffered_bounds_lon_lat(tile: Tile, margin_deg: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's WGS84 bounds grown by its MVT buffer, and by `margin_deg` degrees more on every side."""
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    pad = tile_width_m(tile.z) * MVT_BUFFER / MVT_EXTENT
    west, south = mercator_to_lon_lat(xmin - pad, ymin - pad)
    east, north = mercator_to_lon_lat(xmax + pad, ymax + pad)
    return west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg


# ------------------------------------------------------------------------------------------------ generalisation


def snap_deg(z: int) -> float:
    """Degrees of the common grid polygon vertices are snapped to at zoom z: about one screen pixel.

    Snapping every polygon to one grid (rather than simplifying each alone) keeps a vertex two neighbours share
    on the same point in both, so that neighbouring grids still tile (the rationale of maps.layers).
    """
    return 360.0 / (TILE_SIZE_PX * 2.0**z)


def cluster_cell_m(z: int) -> float:
    """Width (web-mercator metres) of the square cells entities are clustered in at zoom z.

    A divisor of the tile width, so that cells never straddle two tiles and each entity counts in one tile only.
    """
    return tile_width_m(z) * CLUSTER_CELL_PX / TILE_SIZE_PX


# ------------------------------------------------------------------------------------------------ Chinese basemaps


@dataclass(frozen=True)
class TileShift:
    """An affine map of web-mercator metres fitted over one tile: x' = a·x + b·y + xoff, y' = d·x + e·y + yoff.

    `dx`, `dy` is how far it moves the tile's centre (what the selection envelope is moved back by).
    """

    a: float = 1.0
    b: float = 0.0
    d: float = 0.0
    e: float = 1.0
    xoff: float = 0.0
    yoff: float = 0.0
    dx: float = 0.0
    dy: float = 0.0

    def apply(self, x_m: float, y_m: float) -> tuple[float, float]:
        """The point (web-mercator metres) moved by the map."""
        return self.a * x_m + self.b * y_m + self.xoff, self.d * x_m + self.e * y_m + self.yoff


NO_SHIFT = TileShift()


def tile_shift(tile: Tile, coords: CoordSystem) -> TileShift:
    """The affine map that moves the tile's WGS84 geometry into `coords` (GCJ-02, BD-09) in web mercator.

    Those offsets change by metres across a city: one translation per tile would be up to about half a pixel off at
    the tile's corners, at any zoom. The map is fitted at the tile's centre with the offset's gradient across the
    tile (central differences over half a tile), which leaves a second-order error far below a pixel at zoom 8 and
    beyond.
    """
    if coords == "wgs84":
        return NO_SHIFT
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    cx, cy, half = (xmin + xmax) / 2, (ymin + ymax) / 2, (xmax - xmin) / 2

    def moved(x_m: float, y_m: float) -> tuple[float, float]:
        lon, lat = mercator_to_lon_lat(x_m, y_m)
        shifted_lon, shifted_lat = convert(lon, lat, "wgs84", coords)
        return lon_lat_to_mercator(float(shifted_lon), float(shifted_lat))

    east, west = moved(cx + half, cy), moved(cx - half, cy)
    north, south = moved(cx, cy + half), moved(cx, cy - half)
    centre = moved(cx, cy)
    a, d = (east[0] - west[0]) / (2 * half), (east[1] - west[1]) / (2 * half)
    b, e = (north[0] - south[0]) / (2 * half), (north[1] - south[1]) / (2 * half)
    return TileShift(
        a=a,
        b=b,
        d=d,
        e=e,
        xoff=centre[0] - a * cx - b * cy,
        yoff=centre[1] - d * cx - e * cy,
        dx=centre[0] - cx,
        dy=centre[1] - cy,
    )


# ------------------------------------------------------------------------------------------------ clusters


@dataclass(frozen=True)
class Clusters:
    """Entities gathered in the cells of one tile: an id per cell, the mean point (web-mercator metres), the count."""

    ids: list[int]
    x_m: list[float]
    y_m: list[float]
    counts: list[int]


def cluster_points(x_m: NDArray[np.float64], y_m: NDArray[np.float64], tile: Tile, shift: TileShift) -> Clusters:
    """The points (web-mercator metres, before the basemap shift) that fall in the tile, clustered by cell.

    Each point is moved by the tile's shift, kept when the tile's half-open box holds it (so that a point counts in
    one tile only), and gathered in the square cell of `cluster_cell_m` holding it; a cell's id is its column and row
    in the world's grid of cells of that zoom, the same in every tile.
    """
    x = shift.a * x_m + shift.b * y_m + shift.xoff
    y = shift.d * x_m + shift.e * y_m + shift.yoff
    xmin, ymin, xmax, ymax = tile_bounds_m(tile)
    inside = (x >= xmin) & (x < xmax) & (y > ymin) & (y <= ymax)
    x, y = x[inside], y[inside]
    if x.size == 0:
        return Clusters([], [], [], [])
    cell = cluster_cell_m(tile.z)
    col = np.floor((x + HALF_WORLD_M) / cell).astype(np.int64)
    row = np.floor((HALF_WORLD_M - y) / cell).astype(np.int64)
    keys, index, counts = np.unique(col * CLUSTER_ID_BASE + row, return_inverse=True, return_counts=True)
    sum_x = np.bincount(index, weights=x)
    sum_y = np.bincount(index, weights=y)
    return Clusters(
        ids=[int(k) for k in keys],
        x_m=[float(v) for v in sum_x / counts],
        y_m=[float(v) for v in sum_y / counts],
        counts=[int(n) for n in counts],
    )


# ------------------------------------------------------------------------------------------------ TileJSON


def tilejson(spec: LayerSpec, *, base_url: str = "", query: str = "") -> dict[str, Any]:
    """The TileJSON 3.0.0 document of a layer.

    `base_url` (the server's, e.g. `http://gis.example:8000`) makes the tile template absolute, as GIS clients such
    as QGIS need; `query` (e.g. `?coords=gcj02`) is appended to it.
    """
    return {
        "tilejson": "3.0.0",
        "name": spec.label_zh,
        "description": f"东莞市{spec.label_zh}矢量瓦片（按当前用户的权限范围过滤）",
        "scheme": "xyz",
        "tiles": [f"{base_url.rstrip('/')}/tiles/{spec.layer.value}/{{z}}/{{x}}/{{y}}.mvt{query}"],
        "minzoom": spec.minzoom,
        "maxzoom": spec.maxzoom,
        "bounds": list(DONGGUAN_BOUNDS_LON_LAT),
        "center": [
            round((DONGGUAN_BOUNDS_LON_LAT[0] + DONGGUAN_BOUNDS_LON_LAT[2]) / 2, 4),
            round((DONGGUAN_BOUNDS_LON_LAT[1] + DONGGUAN_BOUNDS_LON_LAT[3]) / 2, 4),
            max(spec.minzoom, 10),
        ],
        "vector_layers": [
            {
                "id": spec.layer.value,
                "description": spec.label_zh,
                "minzoom": spec.minzoom,
                "maxzoom": spec.maxzoom,
                "fields": dict(spec.fields),
            }
        ],
    }
