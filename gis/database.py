"""gis.database: engines, connections and the database bootstrap used by every command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, text

from gis.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings, *, pool_size: int = 5) -> Engine:
    """A SQLAlchemy engine on the configured database (psycopg 3)."""
    return create_engine(settings.sqlalchemy_url(), pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def engine_for(settings: DatabaseSettings) -> Engine:
    """A process-wide engine for these settings (one pool per URL)."""
    return _cached_engine(settings.sqlalchemy_url())


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    with engine.begin() as conn:
        yield conn


def ensure_database(settings: DatabaseSettings) -> str:
    """Bring the database up (local cluster when no URL is configured); return its libpq URL."""
    if settings.database_url:
        engine = make_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        return settings.libpq_url()
    from gis.cluster import LocalCluster

    cluster = LocalCluster.from_settings(settings)
    cluster.start()
    cluster.create_database(settings.pg_database)
    return cluster.url(settings.pg_database)
