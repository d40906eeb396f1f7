"""gis.coords: WGS84 <-> GCJ-02 <-> BD-09 conversion for Chinese web basemaps.

Chinese web maps do not publish coordinates in WGS84. Amap (高德), Tencent and most
domestic tiles use GCJ-02, a deliberately perturbed datum; Baidu (百度) adds a second
perturbation on top of GCJ-02 called BD-09. Near Dongguan a WGS84 point drawn on a
GCJ-02 basemap lands roughly 500 m away (about +0.005 deg lon, -0.0025 deg lat).

The forward formulas are the public, well-known ones: a polynomial-plus-sine offset in
metres, scaled to degrees on the Krasovsky 1940 ellipsoid (a = 6378245.0 m,
e^2 = 0.00669342162296594323), and for BD-09 a small polar twist around the origin with
x_pi = pi * 3000 / 180 plus a fixed shift. The inverses have no closed form, so they are
solved by fixed-point iteration on the forward formula until the residual is below
1e-9 deg (~0.1 mm) or 30 iterations have run; the offset varies slowly, so two or three
iterations normally suffice.

Outside China GCJ-02 equals WGS84: the usual rectangular "out of China" test
(lon outside 72.004..137.8347 or lat outside 0.8293..55.8271) switches the GCJ offset
off, as every GCJ-02 provider does. The BD-09 twist applies everywhere, as Baidu does.

Every public function takes floats or numpy arrays (broadcast together) and returns
(lon, lat) of the same kind: floats for floats, float64 arrays for arrays.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, TypeVar, cast, get_args

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.errors import UnknownCoordSystem

CoordSystem: TypeAlias = Literal["wgs84", "gcj02", "bd09"]
COORD_SYSTEMS: tuple[CoordSystem, ...] = get_args(CoordSystem)

# Krasovsky 1940 ellipsoid, the one GCJ-02 scales its metre offsets on.
KRASOVSKY_A_M = 6378245.0
KRASOVSKY_E2 = 0.00669342162296594323
BD_X_PI = math.pi * 3000.0 / 180.0
# Baidu's constant shift, in degrees, applied after the polar twist.
BD_SHIFT_LON = 0.0065
BD_SHIFT_LAT = 0.006

CHINA_LON_MIN, CHINA_LON_MAX = 72.004, 137.8347
CHINA_LAT_MIN, CHINA_LAT_MAX = 0.8293, 55.8271

INVERSE_TOLERANCE_DEG = 1e-9
INVERSE_MAX_ITERATIONS = 30

Floats: TypeAlias = NDArray[np.float64]
T = TypeVar("T", float, NDArray[np.float64])
G = TypeVar("G", bound=BaseGeometry)


# ---------------------------------------------------------------- array kernels


def _as_floats(lon: object, lat: object) -> tuple[Floats, Floats]:
    """Both inputs as broadcast float64 arrays (copies, so callers may mutate)."""
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return lon_a.astype(np.float64, copy=True), lat_a.astype(np.float64, copy=True)


def _same_kind(template_lon: object, template_lat: object, values: Floats) -> Any:
    """values returned as a float when both inputs were scalars, else as an array."""
    if isinstance(template_lon, np.ndarray) or isinstance(template_lat, np.ndarray) or values.ndim > 0:
        return values
    return float(values)


def out_of_china(lon: float | Floats, lat: float | Floats) -> bool | NDArray[np.bool_]:
    """True where (lon, lat) falls outside the rectangle in which GCJ-02 offsets apply."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    outside = (lon_a < CHINA_LON_MIN) | (lon_a > CHINA_LON_MAX) | (lat_a < CHINA_LAT_MIN) | (lat_a > CHINA_LAT_MAX)
    if outside.ndim == 0:
        return bool(outside)
    return outside


def _periodic_terms(u: Floats) -> Floats:
    """The 6*pi / 2*pi sine terms shared by both offset polynomials (u is the shifted lon)."""
    return (20.0 * np.sin(6.0 * np.pi * u) + 20.0 * np.sin(2.0 * np.pi * u)) * 2.0 / 3.0


def _gcj_offset_lat_m(u: Floats, v: Floats) -> Floats:
    """Northward GCJ offset before ellipsoid scaling; u, v = lon - 105, lat - 35."""
    poly = -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * np.sqrt(np.abs(u))
    waves = (20.0 * np.sin(np.pi * v) + 40.0 * np.sin(np.pi * v / 3.0)) * 2.0 / 3.0
    waves += (160.0 * np.sin(np.pi * v / 12.0) + 320.0 * np.sin(np.pi * v / 30.0)) * 2.0 / 3.0
    return poly + _periodic_terms(u) + waves


def _gcj_offset_lon_m(u: Floats, v: Floats) -> Floats:
    """Eastward GCJ offset before ellipsoid scaling; u, v = lon - 105, lat - 35."""
    poly = 300.0 + u + 2.0 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * np.sqrt(np.abs(u))
    waves = (20.0 * np.sin(np.pi * u) + 40.0 * np.sin(np.pi * u / 3.0)) * 2.0 / 3.0
    waves += (150.0 * np.sin(np.pi * u / 12.0) + 300.0 * np.sin(np.pi * u / 30.0)) * 2.0 / 3.0
    return poly + _periodic_terms(u) + waves


def _gcj_delta_deg(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat); zero outside China."""
    u = lon - 105.0
    v = lat - 35.0
    lat_rad = np.radians(lat)
    w = 1.0 - KRASOVSKY_E2 * np.sin(lat_rad) ** 2
    sqrt_w = np.sqrt(w)
    # Metres -> degrees: meridian radius of curvature for lat, parallel radius for lon.
    meridian_radius_m = KRASOVSKY_A_M * (1.0 - KRASOVSKY_E2) / (w * sqrt_w)
    parallel_radius_m = KRASOVSKY_A_M / sqrt_w * np.cos(lat_rad)
    dlat = _gcj_offset_lat_m(u, v) * 180.0 / (meridian_radius_m * np.pi)
    dlon = _gcj_offset_lon_m(u, v) * 180.0 / (parallel_radius_m * np.pi)
    outside = np.asarray(out_of_china(lon, lat), dtype=bool)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def _wgs84_to_gcj02(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of wgs84_to_gcj02."""
    dlon, dlat = _gcj_delta_deg(lon, lat)
    return lon + dlon, lat + dlat


def _gcj02_to_bd09(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of gcj02_to_bd09."""
    radius = np.hypot(lon, lat) + 0.00002 * np.sin(lat * BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * BD_X_PI)
    return radius * np.cos(theta) + BD_SHIFT_LON, radius * np.sin(theta) + BD_SHIFT_LAT


def _bd09_to_gcj02_first_guess(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """The classic one-step BD-09 inverse (error ~1e-6 deg), a starting point for refinement."""
    x = lon - BD_SHIFT_LON
    y = lat - BD_SHIFT_LAT
    radius = np.hypot(x, y) - 0.00002 * np.sin(y * BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * BD_X_PI)
    return radius * np.cos(theta), radius * np.sin(theta)


Kernel: TypeAlias = Callable[[Floats, Floats], tuple[Floats, Floats]]


def _invert(forward: Kernel, lon: Floats, lat: Floats, guess: tuple[Floats, Floats]) -> tuple[Floats, Floats]:
    """Solve forward(x) = (lon, lat) for x by fixed-point iteration from guess.

    The forward maps are the identity plus a slowly varying offset (Jacobian within ~1e-3
    of identity), so subtracting the residual contracts fast. Points that have converged
    are frozen so a few slow ones (e.g. straddling the out-of-China edge, where the map is
    discontinuous) cannot disturb the rest.
    """
    src_lon, src_lat = guess[0].copy(), guess[1].copy()
    active = np.ones(src_lon.shape, dtype=bool)
    for _ in range(INVERSE_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(src_lon, src_lat)
        err_lon = fwd_lon - lon
        err_lat = fwd_lat - lat
        active &= (np.abs(err_lon) >= INVERSE_TOLERANCE_DEG) | (np.abs(err_lat) >= INVERSE_TOLERANCE_DEG)
        if not active.any():
            break
        src_lon = np.where(active, src_lon - err_lon, src_lon)
        src_lat = np.where(active, src_lat - err_lat, src_lat)
    return src_lon, src_lat


def _gcj02_to_wgs84(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of gcj02_to_wgs84."""
    dlon, dlat = _gcj_delta_deg(lon, lat)
    return _invert(_wgs84_to_gcj02, lon, lat, (lon - dlon, lat - dlat))


def _bd09_to_gcj02(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of bd09_to_gcj02."""
    return _invert(_gcj02_to_bd09, lon, lat, _bd09_to_gcj02_first_guess(lon, lat))


def _wgs84_to_bd09(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of wgs84_to_bd09."""
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of bd09_to_wgs84."""
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


def _identity(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Array kernel of a same-system conversion."""
    return lon, lat


_KERNELS: dict[tuple[CoordSystem, CoordSystem], Kernel] = {
    ("wgs84", "gcj02"): _wgs84_to_gcj02,
    ("gcj02", "wgs84"): _gcj02_to_wgs84,
    ("gcj02", "bd09"): _gcj02_to_bd09,
    ("bd09", "gcj02"): _bd09_to_gcj02,
    ("wgs84", "bd09"): _wgs84_to_bd09,
    ("bd09", "wgs84"): _bd09_to_wgs84,
    ("wgs84", "wgs84"): _identity,
    ("gcj02", "gcj02"): _identity,
    ("bd09", "bd09"): _identity,
}


def _kernel(src: str, dst: str) -> Kernel:
    """The array kernel converting src to dst, or UnknownCoordSystem."""
    for name in (src, dst):
        if name not in COORD_SYSTEMS:
            raise UnknownCoordSystem(f"unknown coordinate system {name!r}; expected one of {', '.join(COORD_SYSTEMS)}")
    return _KERNELS[(cast(CoordSystem, src), cast(CoordSystem, dst))]


def _apply(kernel: Kernel, lon: T, lat: T) -> tuple[T, T]:
    """Run an array kernel on floats or arrays and hand back the caller's kind."""
    lon_a, lat_a = _as_floats(lon, lat)
    out_lon, out_lat = kernel(lon_a, lat_a)
    return _same_kind(lon, lat, np.asarray(out_lon)), _same_kind(lon, lat, np.asarray(out_lat))


# ---------------------------------------------------------------- public point API


def wgs84_to_gcj02(lon: T, lat: T) -> tuple[T, T]:
    """WGS84 (GPS) degrees -> GCJ-02 (Amap/Tencent) degrees; identity outside China."""
    return _apply(_wgs84_to_gcj02, lon, lat)


def gcj02_to_wgs84(lon: T, lat: T) -> tuple[T, T]:
    """GCJ-02 degrees -> WGS84 degrees, iterated to < 1e-9 deg (at most 30 rounds)."""
    return _apply(_gcj02_to_wgs84, lon, lat)


def gcj02_to_bd09(lon: T, lat: T) -> tuple[T, T]:
    """GCJ-02 degrees -> BD-09 (Baidu) degrees."""
    return _apply(_gcj02_to_bd09, lon, lat)


def bd09_to_gcj02(lon: T, lat: T) -> tuple[T, T]:
    """BD-09 degrees -> GCJ-02 degrees, iterated to < 1e-9 deg (at most 30 rounds)."""
    return _apply(_bd09_to_gcj02, lon, lat)


def wgs84_to_bd09(lon: T, lat: T) -> tuple[T, T]:
    """WGS84 degrees -> BD-09 degrees (through GCJ-02)."""
    return _apply(_wgs84_to_bd09, lon, lat)


def bd09_to_wgs84(lon: T, lat: T) -> tuple[T, T]:
    """BD-09 degrees -> WGS84 degrees (through GCJ-02, both steps iterated)."""
    return _apply(_bd09_to_wgs84, lon, lat)


def convert(lon: T, lat: T, src: CoordSystem, dst: CoordSystem) -> tuple[T, T]:
    """(lon, lat) in src -> (lon, lat) in dst; the same system returns the input values."""
    return _apply(_kernel(src, dst), lon, lat)


# ---------------------------------------------------------------- geometries


def convert_geometry(geom: G, src: CoordSystem, dst: CoordSystem) -> G:
    """A shapely geometry with every vertex converted from src to dst (Z values kept)."""
    kernel = _kernel(src, dst)

    def transform_xy(coords: Floats) -> Floats:
        # shapely hands us an (N, 2) or (N, 3) block; only the first two columns move.
        out = np.array(coords, dtype=np.float64, copy=True)
        out[:, 0], out[:, 1] = kernel(out[:, 0], out[:, 1])
        return out

    return cast(G, shapely.transform(geom, transform_xy, include_z=None))


def _collect_positions(coordinates: Any, sink: list[list[float]]) -> None:
    """Append every GeoJSON position in a nested coordinates array to sink, depth first."""
    if len(coordinates) > 0 and isinstance(coordinates[0], numbers.Real):
        sink.append([float(value) for value in coordinates])
        return
    for child in coordinates:
        _collect_positions(child, sink)


def _rebuild_positions(coordinates: Any, positions: list[list[float]], cursor: list[int]) -> Any:
    """coordinates with the same nesting, positions taken in _collect_positions order."""
    if len(coordinates) > 0 and isinstance(coordinates[0], numbers.Real):
        position = positions[cursor[0]]
        cursor[0] += 1
        return position
    return [_rebuild_positions(child, positions, cursor) for child in coordinates]


def _convert_geojson(geometry: Mapping[str, Any], kernel: Kernel) -> dict[str, Any]:
    """GeoJSON geometry dict converted by kernel; bbox dropped because it would be stale."""
    out = {key: value for key, value in geometry.items() if key != "bbox"}
    if geometry.get("type") == "GeometryCollection":
        out["geometries"] = [_convert_geojson(part, kernel) for part in geometry.get("geometries", [])]
        return out
    coordinates = geometry.get("coordinates")
    if coordinates is None:
        return out
    positions: list[list[float]] = []
    _collect_positions(coordinates, positions)
    if positions:
        lon = np.array([position[0] for position in positions], dtype=np.float64)
        lat = np.array([position[1] for position in positions], dtype=np.float64)
        new_lon, new_lat = kernel(lon, lat)
        for position, x, y in zip(positions, new_lon.tolist(), new_lat.tolist(), strict=True):
            position[0], position[1] = x, y
    out["coordinates"] = _rebuild_positions(coordinates, positions, [0])
    return out


def convert_geojson_geometry(geometry: Mapping[str, Any], src: CoordSystem, dst: CoordSystem) -> dict[str, Any]:
    """A GeoJSON geometry mapping converted from src to dst, nesting kept, as plain lists."""
    return _convert_geojson(geometry, _kernel(src, dst))
