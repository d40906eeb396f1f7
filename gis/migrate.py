"""gis.migrate: run Alembic programmatically (upgrade to head, check, autogenerate)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from gis.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: DatabaseSettings) -> Config:
    """An Alembic configuration pointing at the packaged migrations and the configured database."""
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url().replace("%", "%%"))
    return cfg


def upgrade(settings: DatabaseSettings, revision: str = "head") -> None:
    """Bring the schema to `revision` (head by default)."""
    command.upgrade(alembic_config(settings), revision)


def check(settings: DatabaseSettings) -> None:
    """Fail (alembic.util.CommandError) when the models and the migrations disagree."""
    command.check(alembic_config(settings))


def revision(settings: DatabaseSettings, message: str) -> None:
    """Autogenerate a new migration from the difference between models and database (developer tool)."""
    command.revision(alembic_config(settings), message=message, autogenerate=True)


def current_revision(settings: DatabaseSettings) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    engine = create_engine(settings.sqlalchemy_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return rev
