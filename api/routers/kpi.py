"""api.routers.kpi: the dashboard's figures at each level of the drill-down (city, town, community, grid) and their trends."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["指挥中心指标"])
