"""tests.support.server: the app under test, built with the tests' one fixed secret key, and served by uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from api.main import create_app
from gis.cluster import free_port
from gis.settings import DatabaseSettings, ServerSettings

SECRET_KEY = "gridgov-tests-secret-" + "k" * 32


def server_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    """Server settings with the tests' secret key and a state directory of the test's own."""
    return ServerSettings(secret_key=SECRET_KEY, state_dir=state_dir, **overrides)


def make_app(db: DatabaseSettings, state_dir: Path, **overrides: Any) -> FastAPI:
    """The app on this database, with the tests' secret key; `overrides` are further server settings."""
    return create_app(db_settings=db, server_settings=server_settings(state_dir, **overrides))


@contextmanager
def served(app: FastAPI, *, name: str = "uvicorn-tests") -> Iterator[str]:
    """The app served by uvicorn on a free loopback port in a background thread (lifespan on); its base URL.

    For tests that drive the app with a real client (a browser, OWSLib, geopy, a stream): the in-process TestClient
    cannot hold a server-sent event stream or a second client's connection.
    """
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
