"""API test fixtures: the app on this module's database in a TestClient, with the tests' fixed secret key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gis.settings import DatabaseSettings
from tests.support.server import make_app


@pytest.fixture(scope="module")
def client(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app of this module's database, its lifespan running, for the module's stories (one per module)."""
    with TestClient(make_app(db, tmp_path_factory.mktemp("state"))) as test_client:
        yield test_client
