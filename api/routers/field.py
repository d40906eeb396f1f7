"""api.routers.field: the grid worker's phone page (the field end of the seed's app)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["网格员移动端"])
