"""api.routers.public_pages: the public notice pages of double-random inspections (公示), HTML, no credential
(issue 16; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["公开"])
