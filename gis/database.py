"""gis.database: engines, connections and the database bootstrap used by every command."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text

from gis.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings, *, pool_size: int = 5) -> Engine:
    """A SQLAlchemy engine on the configured database (psycopg 3)."""
    return create_engine(settings.sqlalchemy_url(), pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


def admin_url_for(settings: DatabaseSettings) -> str | None:
    """The server's administrator: the local cluster's superuser, else GRIDGOV_DATABASE_ADMIN_URL (or None)."""
    if not settings.database_url:
        from gis.cluster import LocalCluster

        return LocalCluster.from_settings(settings).superuser_url()
    return settings.database_admin_url


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
