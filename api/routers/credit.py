"""api.routers.credit: 信用分级分类：信用等级、理由与历史、抽查比例 (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
