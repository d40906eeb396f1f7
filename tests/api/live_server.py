"""tests.api.live_server: the app served by uvicorn on a loopback port, for tests that drive it with a real client.

Import the fixture into a test module (`from tests.api.live_server import live_url  # noqa: F401`). The server uses
the tests' one secret key (tests.support.server), so keys made with tests.support.accounts work against it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gis.settings import DatabaseSettings
from tests.support.server import make_app, served


@pytest.fixture(scope="module")
def live_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app of this module's database, served by uvicorn in a background thread; its base URL."""
    with served(make_app(db, tmp_path_factory.mktemp("state")), name="uvicorn-live") as url:
        yield url
