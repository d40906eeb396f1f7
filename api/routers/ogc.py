"""api.routers.ogc: OGC API Features (Part 1 Core) for towns, communities and grids, scoped by credential."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["OGC API Features"])
