"""api.routers.inspections: 双随机抽查计划：建立、承诺、摇号、检查组与对象 (issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["双随机抽查"])
