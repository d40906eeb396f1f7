"""api.routers.aliases: the geocoder's learned aliases: list, trace, promote and withdraw (issue 17, part E)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["标准地址"])
