"""api.routers.live: server-sent events of registrations, task moves and clues, scoped by credential; the last hour's registrations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["实时"])
