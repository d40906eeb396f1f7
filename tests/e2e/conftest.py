"""Browser-test fixtures: the app served by uvicorn on a loopback port, and a headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from gis.settings import DatabaseSettings, ServerSettings
from tests.support.server import served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def base_url(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app of this module's database, served by uvicorn on a free loopback port in a background thread."""
    settings = ServerSettings(secret_key="x" * 40, state_dir=tmp_path_factory.mktemp("state"))
    with served(create_app(db_settings=db, server_settings=settings), name="uvicorn-e2e") as url:
        yield url


class StoryBrowser:
    """Chromium whose pages let the test's own probes run: Playwright's `wait_for_function` evaluates its predicate
    from a string, which the pages' strict Content-Security-Policy (no 'unsafe-eval') refuses, so the stories'
    contexts bypass the page's CSP unless a test says `bypass_csp=False`. The CSP itself is proven page by page,
    with no bypass, in tests/e2e/test_csp.py."""

    def __init__(self, chromium: Any) -> None:
        self._chromium = chromium

    def new_context(self, **options: Any) -> Any:
        options.setdefault("bypass_csp", True)
        return self._chromium.new_context(**options)

    def new_page(self, **options: Any) -> Any:
        options.setdefault("bypass_csp", True)
        return self._chromium.new_page(**options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chromium, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the OS package (a missing browser fails, never skips)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM} (apt-get install chromium)")
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield StoryBrowser(chromium)
        chromium.close()
