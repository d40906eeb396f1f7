"""api.routers.inspection_directory: 一单两库：检查事项、检查人员与检查对象名录（CSV 导入导出） (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
