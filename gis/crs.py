"""gis.crs: the storage (EPSG:4326) and metric (EPSG:4547) reference systems and conversion between them."""

from __future__ import annotations

from functools import cache
from typing import TypeVar, cast

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

# CGCS2000 / 3-degree Gauss-Kruger CM 114E: Dongguan (113.5-114.3E) sits on its central
# meridian, so scale distortion is below 1e-5 and areas/lengths can be read directly.
METRIC_EPSG = 4547
STORAGE_EPSG = 4326

G = TypeVar("G", bound=BaseGeometry)


@cache
def _lonlat_to_metric_transformer() -> Transformer:
    """The shared EPSG:4326 -> EPSG:4547 transformer (pyproj >= 3.1 makes it thread-safe)."""
    return Transformer.from_crs(STORAGE_EPSG, METRIC_EPSG, always_xy=True)


@cache
def _metric_to_lonlat_transformer() -> Transformer:
    """The shared EPSG:4547 -> EPSG:4326 transformer."""
    return Transformer.from_crs(METRIC_EPSG, STORAGE_EPSG, always_xy=True)


def lonlat_to_metric(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 degrees (lon, lat) -> EPSG:4547 metres (x_m east, y_m north)."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    x_m, y_m = _lonlat_to_metric_transformer().transform(lon_a, lat_a)
    return np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)


def metric_to_lonlat(x_m: ArrayLike, y_m: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """EPSG:4547 metres (x_m, y_m) -> WGS84 degrees (lon, lat)."""
    x_a = np.asarray(x_m, dtype=np.float64)
    y_a = np.asarray(y_m, dtype=np.float64)
    lon, lat = _metric_to_lonlat_transformer().transform(x_a, y_a)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _transform_xy(geom: G, transformer: Transformer) -> G:
    """geom with its x/y columns pushed through transformer; Z values are carried unchanged."""

    def transform_block(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.array(coords, dtype=np.float64, copy=True)
        out[:, 0], out[:, 1] = transformer.transform(out[:, 0], out[:, 1])
        return out

    return cast(G, shapely.transform(geom, transform_block, include_z=None))


def to_metric(geom: G) -> G:
    """A WGS84 (lon, lat) shapely geometry re-expressed in EPSG:4547 metres."""
    return _transform_xy(geom, _lonlat_to_metric_transformer())


def to_lonlat(geom: G) -> G:
    """An EPSG:4547 shapely geometry re-expressed in WGS84 (lon, lat) degrees."""
    return _transform_xy(geom, _metric_to_lonlat_transformer())
