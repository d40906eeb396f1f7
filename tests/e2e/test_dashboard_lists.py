"""The lists beside the dashboard's map in headless Chromium: the command centre reads an overdue task's history, a
dispatcher resolves a review item on the map and assigns a waiting task, a town leader only reads, a department
officer answers their department's case, and every list exports the CSV it shows."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from address_library.service import Geocoder
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.uscc import uscc_check_char
from synthetic.simulate import simulate
from tests.support.accounts import PASSWORD, api_key_headers, make_api_key, make_users
from tests.support.city import a_village_door_with_workers

pytestmark = [pytest.mark.db, pytest.mark.browser]

# The e2e server's own key (tests/e2e/conftest.py): API keys are digested with it.
SERVER_SECRET = "x" * 40
LISTS_READY = "window.gridgov && window.gridgov.lists && window.gridgov.lists.tabs().length > 0"
WAIT = 30_000


def credit_code(serial: int) -> str:
    first17 = f"91441900MB{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def world(db: DatabaseSettings) -> dict[str, Any]:
    """Three weeks of simulated supervision, a village door's community (its dispatcher), the most overdue task
    and its town's leader, a department officer, a registry's key, and a point inside the door's grid."""
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    simulate(engine, lambda: geocoder, days=21, end=date(2026, 11, 30), seed=11)
    with engine.begin() as conn:
        door = a_village_door_with_workers(conn)
        inside = conn.execute(
            text(
                "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(g.geom) AS p FROM grid g "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' WHERE g.code = :code) s"
            ),
            {"code": door.grid_code},
        ).one()
        overdue = conn.execute(
            text(
                "SELECT id, town_code FROM task WHERE status NOT IN ('closed', 'cancelled') AND due_at < :now "
                "ORDER BY due_at, id LIMIT 1"
            ),
            {"now": clock.now()},
        ).one()
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "leader": ("town_leader", overdue.town_code),
                "dispatcher": ("dispatcher", door.community_code),
                "officer": ("department_officer", "tobacco"),
            },
            password=PASSWORD,
        )
        key = make_api_key(conn, SERVER_SECRET, "registry", permissions=["intake"])
    engine.dispose()
    return {"door": door, "inside": inside, "overdue_task": overdue.id, "key": key}


def register(base_url: str, key: str, address: str, serial: int) -> dict[str, Any]:
    """A new entity's registration, sent by the registry as the registration systems do."""
    body = {
        "event_id": f"e2e-lists-{serial}",
        "kind": "new",
        "uscc": credit_code(serial),
        "name": f"东莞市列表测试商行{serial}",
        "address": address,
        "business_scope": "烟草制品零售",
        "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
    }
    response = httpx.post(f"{base_url}/v1/registrations", json=body, headers=api_key_headers(key), timeout=60)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def api(base_url: str, username: str) -> httpx.Client:
    """An API client signed in as `username` (a bearer token), to check what the page did."""
    token = httpx.post(f"{base_url}/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    assert token.status_code == 200, token.text
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=60
    )


def sign_in(browser: Any, base_url: str, username: str, *, offline_live: bool = False) -> tuple[Any, list[str]]:
    """The dashboard at / signed in as `username`, with its lists loaded; returns (page, page errors).

    With `offline_live` the live feed never connects (as behind a proxy that drops event streams).
    """
    context = browser.new_context(viewport={"width": 1500, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    if offline_live:
        page.route("**/v1/live*", lambda route: route.abort())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base_url}/")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_function(LISTS_READY, timeout=60_000)
    page.evaluate("window.gridgov.lists.ready.then(() => true)")
    page.wait_for_function(
        "window.gridgov.page && window.gridgov.page.isReady && window.gridgov.page.isReady()", timeout=60_000
    )
    return page, errors


def loads(page: Any, pane: str) -> int:
    """How many loads the pane has finished."""
    return int(page.evaluate(f"document.querySelector('[data-pane={pane}]').dataset.loads"))


def open_tab(page: Any, pane: str) -> None:
    """Click the tab of `pane` and wait for its list (loaded once for the view; a tab opened again is not reloaded)."""
    page.click(f".lists-tab[data-tab={pane}]")
    page.evaluate("window.gridgov.lists.settled()")
    assert page.evaluate("window.gridgov.lists.active()") == pane
    assert loads(page, pane) > 0


def read_every_tab(page: Any) -> None:
    """Open each tab the role has, as a user would; none of them may fail to load."""
    for pane in page.evaluate("window.gridgov.lists.tabs()"):
        open_tab(page, pane)
        failed = page.locator(f"[data-pane={pane}] .lists-message.error")
        assert failed.count() == 0, (pane, failed.all_inner_texts())


def open_row(page: Any, pane: str, task_id: int) -> dict[str, Any]:
    """Click a task's row and wait for its panel; returns the hook's view of the panel."""
    page.click(f"[data-pane={pane}] li[data-id='{task_id}']")
    page.wait_for_selector(f".task-panel[data-task='{task_id}']", timeout=WAIT)
    shown: dict[str, Any] = page.evaluate("window.gridgov.lists.panel()")
    return shown


def test_the_command_centre_opens_an_overdue_task_and_reads_its_history(
    base_url: str, world: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    page, errors = sign_in(browser, base_url, "centre")
    assert page.evaluate("window.gridgov.lists.tabs()") == ["tasks", "overdue", "clues", "review"]
    assert page.locator(".lists-tab").all_inner_texts() == ["任务", "逾期", "线索", "待核"]

    open_tab(page, "overdue")
    task_id = world["overdue_task"]
    assert page.evaluate("window.gridgov.lists.overdue.ids()")[0] == task_id, "the most overdue task comes first"
    first = page.locator("[data-pane=overdue] li").first
    assert "逾期" in first.inner_text() and "逾期归属" in first.inner_text()

    shown = open_row(page, "overdue", task_id)
    with api(base_url, "centre") as client:
        history = client.get(f"/v1/tasks/{task_id}/history").json()["items"]
        task = client.get(f"/v1/tasks/{task_id}").json()
    assert shown["task"]["id"] == task_id and shown["task"]["overdue"] is True
    assert [e["id"] for e in shown["history"]] == [e["id"] for e in history] and len(history) >= 1
    # The timeline shows every step in Chinese; the facts say the task is late.
    assert page.locator(".panel-timeline li").count() == len(history)
    assert "新建" in page.locator(".panel-timeline li").first.inner_text()
    facts = page.locator(".panel-facts").inner_text()
    assert "已逾期" in facts and task["grid_code"] in facts
    # The command centre may make every move the state machine allows from here.
    assert sorted(shown["moves"]) == sorted(task["allowed"])
    page.screenshot(path=str(artifacts_dir / "dashboard-lists-overdue-task.png"))
    assert not errors, errors


def test_a_dispatcher_resolves_a_review_item_on_the_map_and_its_tasks_appear_in_the_grid(
    base_url: str, world: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    door, inside = world["door"], world["inside"]
    typed = re.sub(r"\d+号$", "907号", door.full_text)
    waiting = register(base_url, world["key"], typed, 1)
    assert waiting["outcome"] == "review", waiting
    item = waiting["review_id"]

    page, errors = sign_in(browser, base_url, "dispatcher")
    assert page.evaluate("window.gridgov.lists.view()")["code"] == door.community_code
    open_tab(page, "review")
    assert item in page.evaluate("window.gridgov.lists.review.ids()")
    page.click(f"[data-pane=review] li[data-id='{item}']")
    page.wait_for_selector(f"[data-pane=review][data-selected='{item}']", timeout=WAIT)
    assert page.locator(".review-typed").inner_text() == typed
    assert page.locator(".review-reason").inner_text() != ""

    # The dispatcher asks to pick the point, then clicks the map where the place is, as a person would.
    page.evaluate(f"window.gridgov.page.setView({inside.lon}, {inside.lat}, 17)")
    page.evaluate("window.gridgov.page.idle()")
    page.click(".review-pick")
    at = page.evaluate(f"window.gridgov.page.pixel({inside.lon}, {inside.lat})")
    page.mouse.click(at["x"], at["y"])
    page.wait_for_selector(".review-confirm:not([disabled])", timeout=WAIT)
    chosen = page.evaluate("window.gridgov.lists.review.selected()")["point"]
    assert abs(chosen["lon"] - inside.lon) < 1e-4 and abs(chosen["lat"] - inside.lat) < 1e-4
    page.screenshot(path=str(artifacts_dir / "dashboard-lists-review-point.png"))
    page.click(".review-confirm")
    page.wait_for_selector("[data-pane=review] .lists-message.done", timeout=WAIT)
    result = page.evaluate("window.gridgov.lists.lastResolution()")
    assert result["outcome"] == "placed" and len(result["task_ids"]) == 3, result
    assert item not in page.evaluate("window.gridgov.lists.review.ids()")
    assert "已派发 3 项任务" in page.locator("[data-pane=review] .lists-message").inner_text()

    # Drilled to the grid, its task list holds the new tasks.
    page.evaluate(f"window.gridgov.page.drill('grid', '{door.grid_code}')")
    open_tab(page, "tasks")
    assert page.evaluate("window.gridgov.lists.view()")["code"] == door.grid_code
    shown = page.evaluate("window.gridgov.lists.tasks.ids()")
    assert set(result["task_ids"]) <= set(shown)
    page.screenshot(path=str(artifacts_dir / "dashboard-lists-review-resolved.png"))

    # A clue reported in the grid meanwhile joins the grid's open clue list at once (live), on top.
    open_tab(page, "clues")
    with api(base_url, "dispatcher") as client:
        body = {"lon": inside.lon, "lat": inside.lat, "industry": "餐饮服务", "description": "无证经营的小食店"}
        reported = client.post("/v1/clues", json=body)
        assert reported.status_code == 201, reported.text
    clue_id = reported.json()["id"]
    page.wait_for_function(f"window.gridgov.lists.clues.ids()[0] === {clue_id}", timeout=WAIT)
    assert "餐饮服务" in page.locator(f"[data-pane=clues] li[data-id='{clue_id}']").inner_text()
    assert not errors, errors


def test_a_town_leader_only_reads_and_a_dispatcher_assigns_within_their_community(
    base_url: str, world: dict[str, Any], browser: Any, db: DatabaseSettings, artifacts_dir: Path
) -> None:
    # The town leader: tasks and their history, but not one move button.
    page, errors = sign_in(browser, base_url, "leader")
    assert page.evaluate("window.gridgov.lists.tabs()") == ["tasks", "overdue", "clues"]
    open_tab(page, "tasks")
    first = page.evaluate("window.gridgov.lists.tasks.ids()")[0]
    shown = open_row(page, "tasks", first)
    assert shown["moves"] == [] and shown["history"]
    assert page.locator(".panel-move").count() == 0 and page.locator(".panel-actions").is_hidden()
    page.click(".panel-back")
    read_every_tab(page)
    assert page.locator(".lists-message.error").count() == 0
    assert not errors, errors

    # The dispatcher watches the tasks waiting for a worker in their community.
    page, errors = sign_in(browser, base_url, "dispatcher")
    open_tab(page, "tasks")
    page.evaluate("window.gridgov.lists.tasks.filter('status', 'pushed')")

    # A registration comes in while the grid's workers are full: its tasks wait in the grid's queue, and the
    # open list shows them at once (live), highlighted.
    door = world["door"]
    engine = make_engine(db)
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT id, capacity FROM worker WHERE grid_code = :g AND active"), {"g": door.grid_code}
        )
        capacity = {r.id: r.capacity for r in rows}
        conn.execute(text("UPDATE worker SET capacity = 0 WHERE grid_code = :g"), {"g": door.grid_code})
    queued = register(base_url, world["key"], door.full_text, 2)
    assert queued["outcome"] == "placed", queued
    with engine.begin() as conn:
        for worker_id, cap in capacity.items():
            conn.execute(text("UPDATE worker SET capacity = :c WHERE id = :w"), {"c": cap, "w": worker_id})
        community_workers = {
            r.id: r.grid_code
            for r in conn.execute(
                text("SELECT id, grid_code FROM worker WHERE active AND grid_code LIKE :p"),
                {"p": door.community_code + "%"},
            )
        }
    engine.dispose()
    task_id = queued["task_ids"][0]
    # Nothing reloads the list: only the live feed can bring the new rows.
    page.wait_for_function(
        f"{queued['task_ids']}.every((id) => window.gridgov.lists.tasks.ids().includes(id))", timeout=WAIT
    )
    assert "待分派" in page.locator(f"[data-pane=tasks] li[data-id='{task_id}']").inner_text()
    shown = open_row(page, "tasks", task_id)
    assert shown["task"]["status"] == "pushed" and "assigned" in shown["moves"]
    offered = page.evaluate("window.gridgov.lists.panelWorkers()")
    offered_ids = [o["value"] for o in offered]
    assert offered_ids and set(offered_ids) == {w for w, g in community_workers.items() if g == door.grid_code}
    assert all(community_workers.get(w) for w in offered_ids), "only workers of the dispatcher's community"
    chosen = offered_ids[-1]
    page.select_option("select[name=worker_id]", str(chosen))
    page.click(".panel-move[data-move=assigned]")
    page.wait_for_selector(".task-panel .lists-message.done", timeout=WAIT)
    shown = page.evaluate("window.gridgov.lists.panel()")
    assert shown["task"]["status"] == "assigned" and shown["task"]["worker_id"] == chosen
    assert shown["history"][-1]["to_status"] == "assigned"
    page.screenshot(path=str(artifacts_dir / "dashboard-lists-assign.png"))
    with api(base_url, "dispatcher") as client:
        assert client.get(f"/v1/tasks/{task_id}").json()["worker_id"] == chosen
    assert not errors, errors


def test_a_department_officer_answers_their_departments_case(
    base_url: str, world: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    # The command centre hands an open task to the tobacco department.
    with api(base_url, "centre") as centre:
        # (Not an overdue one: the command centre's story reads the most overdue task.)
        candidates = centre.get("/v1/tasks", params={"status": "assigned", "limit": 20}).json()["items"]
        task = [t for t in candidates if not t["overdue"]][0]
        for to, extra in (("escalated_community", {}), ("escalated_department", {"department_codes": ["tobacco"]})):
            moved = centre.post(
                f"/v1/tasks/{task['id']}/transitions", json={"to": to, "version": task["version"], **extra}
            )
            assert moved.status_code == 200, moved.text
            task = moved.json()

    page, errors = sign_in(browser, base_url, "officer")
    assert page.evaluate("window.gridgov.lists.tabs()") == ["department", "overdue", "clues"]
    read_every_tab(page)
    open_tab(page, "department")
    assert page.locator(".lists-tab").first.inner_text() == "部门案件"
    page.evaluate("window.gridgov.lists.settled()")
    assert task["id"] in page.evaluate("window.gridgov.lists.department.ids()")
    shown = open_row(page, "department", task["id"])
    assert shown["moves"] == ["department_feedback"]
    assert page.locator(".panel-actions h3").inner_text() == "部门反馈"
    page.click(".panel-move[data-move=department_feedback]")
    assert "请填写反馈意见" in page.locator(".task-panel .lists-message").inner_text()
    page.fill(".panel-actions textarea[name=note]", "已责令停止无证经营，材料已归档")
    page.click(".panel-move[data-move=department_feedback]")
    page.wait_for_selector(".task-panel .lists-message.done", timeout=WAIT)
    shown = page.evaluate("window.gridgov.lists.panel()")
    assert shown["task"]["status"] == "department_feedback" and shown["moves"] == ["closed"]
    assert "已责令停止无证经营" in page.locator(".panel-timeline").inner_text()
    page.screenshot(path=str(artifacts_dir / "dashboard-lists-department.png"))
    with api(base_url, "officer") as client:
        last = client.get(f"/v1/tasks/{task['id']}/history").json()["items"][-1]
    assert last["to_status"] == "department_feedback" and last["note"] == "已责令停止无证经营，材料已归档"
    assert not errors, errors


def test_a_move_on_a_task_someone_else_moved_meanwhile_is_refused_and_the_panel_reloads(
    base_url: str, world: dict[str, Any], browser: Any
) -> None:
    page, errors = sign_in(browser, base_url, "centre", offline_live=True)
    with api(base_url, "centre") as centre:
        candidates = centre.get("/v1/tasks", params={"status": "assigned", "limit": 20}).json()["items"]
        task = [t for t in candidates if not t["overdue"]][-1]
        page.evaluate(f"window.gridgov.lists.openTask({task['id']})")
        assert page.evaluate("window.gridgov.lists.panel()")["task"]["version"] == task["version"]
        # Another dispatcher escalates it while the panel is open (no live feed tells this page).
        moved = centre.post(
            f"/v1/tasks/{task['id']}/transitions", json={"to": "escalated_community", "version": task["version"]}
        )
        assert moved.status_code == 200, moved.text
    page.click(".panel-move[data-move=escalated_community]")
    page.wait_for_selector(".task-panel .lists-message.error", timeout=WAIT)
    assert "刚被他人更新，已重新载入" in page.locator(".task-panel .lists-message").inner_text()
    shown = page.evaluate("window.gridgov.lists.panel()")
    assert shown["task"]["status"] == "escalated_community" and shown["task"]["version"] == moved.json()["version"]
    assert "escalated_department" in shown["moves"] and "escalated_community" not in shown["moves"]
    assert not errors, errors


def _download(page: Any, pane: str) -> tuple[str, list[list[str]]]:
    """Click the pane's 导出CSV button; the file's name and rows."""
    with page.expect_download(timeout=WAIT) as info:
        page.click(f"[data-pane={pane}] .lists-csv")
    download = info.value
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{pane}: a CSV for Excel starts with the UTF-8 BOM"
    return download.suggested_filename, list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_each_list_downloads_the_csv_it_shows_with_chinese_headers(
    base_url: str, world: dict[str, Any], browser: Any
) -> None:
    page, errors = sign_in(browser, base_url, "centre")
    for pane in ("tasks", "overdue", "clues", "review"):
        open_tab(page, pane)
        name, rows = _download(page, pane)
        assert name.endswith(".csv"), (pane, name)
        assert rows and all(re.search(r"[\u4e00-\u9fff]", cell) for cell in rows[0] if cell), (pane, rows[:1])
    # The task list's file follows its filters: only overdue tasks.
    open_tab(page, "tasks")
    page.evaluate("window.gridgov.lists.tasks.filter('overdue', true)")
    assert "overdue=true" in page.evaluate("window.gridgov.lists.tasks.csvHref()")
    _, rows = _download(page, "tasks")
    total = int(re.sub(r"\D", "", page.locator("[data-pane=tasks] .lists-total").inner_text()))
    assert len(rows) - 1 == total
    assert not errors, errors
