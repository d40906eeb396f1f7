"""benchmarks.bench_inspection_routes: issue 16 (being built)."""

from __future__ import annotations

from sqlalchemy import Engine

from benchmarks.common import BenchmarkFailed
from gis.settings import DatabaseSettings


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Not built yet: fails, never prints a figure."""
    raise BenchmarkFailed("bench_inspection_routes is not built yet")
