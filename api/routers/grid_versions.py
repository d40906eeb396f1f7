"""api.routers.grid_versions: (being written — issue 15)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["规划"])
pages_router = APIRouter(tags=["页面"])
