"""tests.api.live_server: the app served by uvicorn on a loopback port, for tests that drive it with a real client.

Import the fixture into a test module (`from tests.api.live_server import live_url  # noqa: F401`). The server uses
the tests' one secret key (tests.support.server), so keys made with tests.support.accounts work against it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from gis.cluster import free_port
from gis.settings import DatabaseSettings
from tests.support.server import make_app


@pytest.fixture(scope="module")
def live_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app of this module's database, served by uvicorn in a background thread; its base URL."""
    app = make_app(db, tmp_path_factory.mktemp("state"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
