"""maps.settings: how the map page looks (basemap choice), from the environment (prefix GRIDGOV_MAP_)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class MapSettings(BaseSettings):
    """Basemap and view of the map page; the default needs no network beyond this server."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_MAP_", extra="ignore")

    basemap: Literal["none", "osm"] = "none"
    # An intranet points this at its own tile server; the default is the public OSM one.
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    # Below this zoom the page does not ask for grids: ~2,900 grids city-wide exceed the payload limit.
    grid_min_zoom: int = 12
    community_min_zoom: int = 0
