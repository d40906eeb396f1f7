"""maps.settings: how the map page looks (basemap choice), from the environment (prefix GRIDGOV_MAP_)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.coords import CoordSystem

Basemap = Literal["none", "osm", "amap", "tianditu"]

# Public tile services per basemap; an intranet sets GRIDGOV_MAP_TILE_URL to its own tile server instead.
DEFAULT_TILES: dict[str, tuple[str, str]] = {
    "osm": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "&copy; OpenStreetMap contributors"),
    "amap": (
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        "&copy; 高德地图",
    ),
    # 天地图 needs a key: set GRIDGOV_MAP_TILE_URL with your tk=… for this basemap.
    "tianditu": (
        "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=",
        "&copy; 天地图",
    ),
}
# The coordinate system each basemap's tiles are drawn in (Amap uses the GCJ-02 offset; 天地图 is CGCS2000 ≈ WGS84).
BASEMAP_COORDS: dict[str, CoordSystem] = {"none": "wgs84", "osm": "wgs84", "amap": "gcj02", "tianditu": "wgs84"}


class MapSettings(BaseSettings):
    """Basemap and view of the map page; the default needs no network beyond this server."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_MAP_", extra="ignore")

    basemap: Basemap = "none"
    # Empty = the public service of the chosen basemap (DEFAULT_TILES).
    tile_url: str = ""
    tile_attribution: str = ""
    # Below this zoom the page does not ask for grids. The whole city's ~2,900 grids fit in one answer at city
    # zoom (lean properties, pixel snapping), so the default shows them from the first paint.
    grid_min_zoom: int = 0
    community_min_zoom: int = 0

    def tiles(self) -> tuple[str, str]:
        """(URL template, attribution) of the basemap tiles; empty for no basemap."""
        if self.basemap == "none":
            return "", ""
        url, attribution = DEFAULT_TILES[self.basemap]
        return self.tile_url or url, self.tile_attribution or attribution

    @property
    def coords(self) -> CoordSystem:
        """The coordinate system the page asks the layers in, so outlines sit on the basemap's streets."""
        return BASEMAP_COORDS[self.basemap]
