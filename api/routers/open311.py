"""api.routers.open311: Open311 GeoReport v2 for the 12345 hotline's work orders (services, requests)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["12345 热线（Open311）"])
