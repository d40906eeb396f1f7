"""tests.support.server: the app under test, built with the tests' one fixed secret key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.main import create_app
from gis.settings import DatabaseSettings, ServerSettings

SECRET_KEY = "gridgov-tests-secret-" + "k" * 32


def server_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    """Server settings with the tests' secret key and a state directory of the test's own."""
    return ServerSettings(secret_key=SECRET_KEY, state_dir=state_dir, **overrides)


def make_app(db: DatabaseSettings, state_dir: Path, **overrides: Any) -> FastAPI:
    """The app on this database, with the tests' secret key; `overrides` are further server settings."""
    return create_app(db_settings=db, server_settings=server_settings(state_dir, **overrides))
