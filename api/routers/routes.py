"""api.routers.routes: 检查路线：VROOM 格式求解与检查组每日路线 (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
