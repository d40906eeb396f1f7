"""api.cli.common: the steps every command shares: reach the database, open a transaction, fail with an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from gis.errors import GisError
from gis.settings import DatabaseSettings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` in red on stderr and return the exit to raise: `raise fail("…", code=2) from exc`."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn a database that cannot be started or reached (GisError, OperationalError) into exit 3."""
    try:
        yield
    except (GisError, OperationalError) as exc:
        raise fail(f"database unavailable: {exc}", code=3) from exc


def database_up() -> DatabaseSettings:
    """Start (or reach) the database and migrate it to head."""
    from gis import migrate
    from gis.database import ensure_database

    settings = DatabaseSettings()
    with database_errors():
        ensure_database(settings)
        migrate.upgrade(settings)
    return settings


@contextmanager
def engine() -> Iterator[Engine]:
    """The database brought up and migrated (`database_up`); its engine, disposed on the way out."""
    from gis.database import make_engine

    bound = make_engine(database_up())
    try:
        yield bound
    finally:
        bound.dispose()


@contextmanager
def connection() -> Iterator[Connection]:
    """A connection inside one transaction (`begin`) on the database brought up by `engine`: all or nothing."""
    with engine() as bound, bound.begin() as conn:
        yield conn
