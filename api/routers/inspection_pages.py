"""api.routers.inspection_pages: 双随机抽查规划页面与路线单打印 (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
