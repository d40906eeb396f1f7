"""api.routers.public_inspections: 公开：抽查计划的承诺、摇号结果、候选名单与检查结果公示（无需凭证） (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
