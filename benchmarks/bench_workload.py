"""benchmarks.bench_workload: (being written — issue 15)."""

from __future__ import annotations

from sqlalchemy import Engine

from gis.settings import DatabaseSettings


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """(being written)"""
    raise NotImplementedError("bench_workload is being written")
