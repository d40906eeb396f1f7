"""Every page runs under the strict Content-Security-Policy (issue 17, finding 6) in headless Chromium without a single
violation: no inline script or style, nothing from another origin, MapLibre's blob: workers allowed. The login page,
/docs (Swagger UI), the dashboard and every other page a signed-in person opens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from api.auth import service as auth_service
from api.edges import PAGE_CSP
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.city import a_door_with_workers

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-csp-password-12345"
# Collected by a script the browser adds before any page script (devtools-injected: the CSP does not govern it).
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture(scope="module")
def people(db: DatabaseSettings) -> Iterator[dict[str, str]]:
    """The command centre (every staff page), a town leader (heatmap of their town) and a grid worker (/field)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        plan = conn.execute(text("SELECT min(id) FROM inspection_plan")).scalar()
        auth_service.create_user(conn, username="cspcentre", role="command_centre", scope=None, password=PASSWORD)
        auth_service.create_user(
            conn, username="cspleader", role="town_leader", scope=door.town_code, password=PASSWORD
        )
        auth_service.create_user(
            conn, username="cspworker", role="grid_worker", scope=str(door.worker_id), password=PASSWORD
        )
    engine.dispose()
    yield {"town": door.town_code, "plan": str(plan) if plan is not None else ""}


def _sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path != "/login"


def _visit(page: Any, url: str, console: list[str]) -> list[str]:
    """Open `url`, let its scripts and requests settle, and return the CSP violations it caused."""
    response = page.goto(url)
    assert response is not None and response.status < 500, url
    assert response.headers["content-security-policy"] in (PAGE_CSP,) or response.headers[
        "content-security-policy"
    ].startswith("default-src 'none'"), url
    page.wait_for_load_state("networkidle", timeout=30_000)
    violations: list[str] = page.evaluate("window.__violations")
    return violations + [line for line in console if "Content Security Policy" in line]


def _browse(browser: Any, base_url: str, username: str | None, paths: list[str]) -> dict[str, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", bypass_csp=False)
    context.add_init_script(LISTEN)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    if username:
        _sign_in(page, base_url, username)
    found: dict[str, list[str]] = {}
    for path in paths:
        console.clear()
        violations = _visit(page, f"{base_url}{path}", console)
        if violations:
            found[path] = violations
    context.close()
    return found


def test_the_login_page_docs_and_public_pages_run_without_a_csp_violation(base_url: str, browser: Any) -> None:
    found = _browse(browser, base_url, None, ["/login", "/docs", "/public/inspections/page"])
    assert found == {}
    # /docs really started Swagger UI from its static script; an inline script is refused and seen as a violation.
    context = browser.new_context(bypass_csp=False)
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".swagger-ui .information-container", timeout=30_000)
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_function("window.__violations.length > 0", timeout=10_000)
    assert page.evaluate("window.__ran === undefined")
    assert "script-src" in page.evaluate("window.__violations")[0]
    context.close()


def test_every_staff_page_runs_without_a_csp_violation(base_url: str, browser: Any, people: dict[str, str]) -> None:
    paths = ["/", "/clues", "/review", "/staffing", "/grid-versions", "/inspections", "/ogc/"]
    if people["plan"]:
        paths += [f"/inspections/{people['plan']}", f"/inspections/{people['plan']}/print"]
    assert _browse(browser, base_url, "cspcentre", paths) == {}
    assert _browse(browser, base_url, "cspleader", [f"/towns/{people['town']}/heatmap", "/"]) == {}


def test_the_field_page_runs_without_a_csp_violation(base_url: str, browser: Any, people: dict[str, str]) -> None:
    assert _browse(browser, base_url, "cspworker", ["/field"]) == {}
