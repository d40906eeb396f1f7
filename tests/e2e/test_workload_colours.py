"""The dashboard colours grids by hours of work per worker a month, with a Chinese legend, in headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning.workload_service import refresh
from tests.support.accounts import PASSWORD, make_users
from tests.support.city import busiest_town

pytestmark = [pytest.mark.db, pytest.mark.browser]

READY = "window.gridgov && window.gridgov.page && window.gridgov.page.isReady()"
CENTRE = "zhihui-workload"


@pytest.fixture(scope="module")
def town(db: DatabaseSettings) -> dict[str, Any]:
    """The busiest town, its grids' hours per worker as the workload model computed and stored them."""
    engine = make_engine(db)
    with engine.begin() as conn:
        refresh(conn)
        busy = busiest_town(conn)
        make_users(conn, {CENTRE: ("command_centre", None)})
        per_worker = {
            str(code): float(value)
            for code, value in conn.execute(
                text(
                    "SELECT g.code, w.hours / (SELECT count(*) FROM worker k WHERE k.version_id = g.version_id"
                    " AND k.grid_code = g.code AND k.active) FROM grid g"
                    " JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                    " JOIN grid_workload w ON w.version_id = g.version_id AND w.grid_code = g.code"
                    " WHERE g.town_code = :t AND EXISTS (SELECT 1 FROM worker k WHERE k.version_id = g.version_id"
                    " AND k.grid_code = g.code AND k.active)"
                ),
                {"t": busy.code},
            )
        }
    engine.dispose()
    return {"code": busy.code, "name": busy.name, "per_worker": per_worker}


def _colour_of(paint: list[Any], value: float) -> str:
    """The colour a ["case", has, ["step", value, c0, b1, c1, …], none] expression gives a grid of that value."""
    step = paint[2]
    assert step[0] == "step"
    colour = step[2]
    for bound, next_colour in zip(step[3::2], step[4::2], strict=True):
        if value >= bound:
            colour = next_colour
    return str(colour)


def test_grids_are_coloured_by_hours_per_worker_with_a_chinese_legend(
    base_url: str, browser: Any, town: dict[str, Any], artifacts_dir: Path
) -> None:
    """The command centre opens a town: the grids carry their hours per worker, the fill follows them from light to
    dark, the legend names the figure in Chinese, and the other colourings are one choice away."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base_url}/?level=town&code={town['code']}")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", CENTRE)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_function(READY, timeout=90_000)  # generous: a busy machine draws a town of 228 grids slowly
    page.evaluate("window.gridgov.page.idle()")

    # The default colouring is the workload model's figure, named with its unit.
    assert page.locator("#grid-metric").input_value() == "hours_per_worker"
    assert page.locator("#grid-metric option:checked").inner_text() == "每人工作量 (小时/月)"
    page.evaluate("window.gridgov.page.metric('hours_per_worker')")
    paint = page.evaluate("window.gridgov.page.gridPaint()")
    assert paint[0] == "case" and "hours_per_worker" in str(paint[1]) and "hours_per_worker" in str(paint[2])

    # The grids drawn carry the hours per worker stored for them (tiles hold float32).
    grids = [
        g for g in page.evaluate("window.gridgov.page.renderedFeatures('grids')") if g["town_code"] == town["code"]
    ]
    assert len(grids) >= 5
    for grid in grids:
        assert grid["hours_per_worker"] == pytest.approx(town["per_worker"][grid["code"]], rel=1e-5)

    # Light to dark: the grid of most hours per worker is never in a lighter class than the one of least.
    palette = [paint[2][2], *paint[2][4::2]]
    lightest = min(grids, key=lambda g: g["hours_per_worker"])
    heaviest = max(grids, key=lambda g: g["hours_per_worker"])
    light = palette.index(_colour_of(paint, lightest["hours_per_worker"]))
    dark = palette.index(_colour_of(paint, heaviest["hours_per_worker"]))
    assert dark > light, (lightest, heaviest, paint)

    # The legend: one row per class with its range in hours, and the grey of "no data".
    legend = page.locator("#legend > div").all_inner_texts()
    assert len(legend) == len(palette) + 1
    assert legend[-1] == "无数据或无权查看"
    assert legend[0].startswith("0 – ") and legend[-2].startswith("≥ ")
    page.screenshot(path=str(artifacts_dir / "dashboard_hours_per_worker.png"))

    # Another colouring is one choice away, and back again.
    page.select_option("#grid-metric", "overdue_tasks")
    assert "overdue_tasks" in str(page.evaluate("window.gridgov.page.gridPaint()"))
    page.select_option("#grid-metric", "hours_per_worker")
    assert "hours_per_worker" in str(page.evaluate("window.gridgov.page.gridPaint()"))

    # The figures panel of the town names its workload, as GET /v1/workload answers it; a step down updates it.
    page.wait_for_function("document.querySelector('#kpi-workload').textContent.startsWith('工作量')", timeout=10_000)
    answer = context.request.get(f"{base_url}/v1/workload?level=town&code={town['code']}").json()
    line = page.locator("#kpi-workload").inner_text()
    assert f"每月 {answer['hours']:.1f} 小时" in line and f"网格员 {answer['workers']} 人" in line
    assert f"建议 {answer['recommended_workers']} 人" in line
    page.screenshot(path=str(artifacts_dir / "dashboard_workload_line.png"))
    community = grids[0]["community_code"]
    page.evaluate("([c]) => window.gridgov.page.drill('community', c)", [community])
    page.evaluate("window.gridgov.page.settled()")
    below = context.request.get(f"{base_url}/v1/workload?level=community&code={community}").json()
    page.wait_for_function(
        "([h]) => document.querySelector('#kpi-workload').textContent.includes(h)",
        arg=[f"每月 {below['hours']:.1f} 小时"],
        timeout=10_000,
    )
    assert not errors, errors
    context.close()
