"""api.routers.tiles: vector tiles (Mapbox Vector Tile, PostGIS ST_AsMVT) of the territory and the work, scoped by credential; TileJSON."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["矢量瓦片"])
