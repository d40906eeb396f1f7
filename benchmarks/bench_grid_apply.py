"""benchmarks.bench_grid_apply: (being written — issue 15)."""

from __future__ import annotations

from sqlalchemy import Engine

from gis.settings import DatabaseSettings


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """(being written)"""
    raise NotImplementedError("bench_grid_apply is being written")
