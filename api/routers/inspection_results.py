"""api.routers.inspection_results: 检查结果的录入与公示 (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
