"""A grid worker on a phone, at their task's entity, opens /field in headless Chromium: their tasks by deadline on a
map, an inspection recorded with a photo and the phone's location (a photo lost on the way is retried alone), a clue
reported with a photo; a town leader sees the tasks read-only."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.task_states import WORKER_HELD
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, make_api_key, make_users
from tests.support.city import a_door_with_workers

pytestmark = [pytest.mark.db, pytest.mark.browser]

PASSWORD = "e2e-field-password-1234"
# The e2e server's own key (tests/e2e/conftest.py): API keys are digested with it.
SERVER_SECRET = "x" * 40
PHONE = {"width": 390, "height": 844}
CONSOLE: dict[int, list[str]] = {}


def credit_code(serial: int) -> str:
    first17 = f"91441900MF{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def token(base_url: str, username: str) -> dict[str, str]:
    answer = httpx.post(f"{base_url}/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=60)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def place(db: DatabaseSettings, base_url: str) -> dict[str, Any]:
    """Two registrations at a door (six tasks in its grid), the worker who holds the first task, and their users."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        key = make_api_key(conn, SERVER_SECRET, "registry", permissions=["intake"])
        make_users(conn, {"centre": ("command_centre", None), "leader": ("town_leader", door.town_code)}, PASSWORD)
    task_ids: list[int] = []
    for serial in (1, 2):
        body = {
            "event_id": f"e2e-field-{serial}",
            "kind": "new",
            "uscc": credit_code(serial),
            "name": f"东莞市外勤测试商行{serial}",
            "address": door.full_text,
            "business_scope": "烟草制品零售",
            "occurred_at": (clock.now() - timedelta(hours=serial)).isoformat(),
        }
        answer = httpx.post(f"{base_url}/v1/registrations", json=body, headers=api_key_headers(key), timeout=60)
        assert answer.status_code == 201 and answer.json()["outcome"] == "placed", answer.text
        task_ids += answer.json()["task_ids"]
    centre = token(base_url, "centre")
    first = httpx.get(f"{base_url}/v1/tasks/{task_ids[0]}", headers=centre, timeout=60).json()
    worker_id = first["worker_id"]
    with engine.begin() as conn:
        make_users(conn, {"wangge": ("grid_worker", str(worker_id))}, PASSWORD)
        # Days have passed for the worker's other tasks: one is overdue, and the first task's warning has begun.
        now = clock.now()
        conn.execute(
            text(
                "UPDATE task SET due_at = :past, warn_at = :past - interval '2 days' "
                "WHERE id = (SELECT min(id) FROM task WHERE worker_id = :w AND id <> ALL(:first))"
            ),
            {"past": now - timedelta(days=1), "w": worker_id, "first": task_ids[:1]},
        )
        conn.execute(
            text("UPDATE task SET warn_at = :warn WHERE id = :id"),
            {"warn": now - timedelta(hours=1), "id": task_ids[0]},
        )
    engine.dispose()
    return {"door": door, "worker_id": worker_id, "centre": centre, "task_ids": task_ids}


def phone(browser: Any, door: Any, *, located: bool = True) -> Any:
    """A phone-sized touch page standing at the door (its location shared, unless `located` is False); what its
    console says is kept in `CONSOLE[page]` for the failure messages."""
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": door.lat, "longitude": door.lon, "accuracy": 15},
        permissions=["geolocation"] if located else [],
    )
    page = context.new_page()
    lines: list[str] = []
    page.on("console", lambda line: lines.append(line.text))
    page.on("pageerror", lambda error: lines.append(str(error)))
    CONSOLE[id(page)] = lines
    return page


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/field")
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == "/field"
    page.wait_for_function(
        "document.body.dataset.tasks !== undefined || document.getElementById('status').textContent.startsWith('出错')",
        timeout=30_000,
    )
    status = page.locator("#status").inner_text()
    assert status.startswith("待办"), (status, CONSOLE[id(page)])


def my_open_tasks_by_deadline(base_url: str, place: dict[str, Any]) -> list[int]:
    answer = httpx.get(f"{base_url}/v1/tasks", params={"limit": 500}, headers=place["centre"], timeout=60).json()
    mine = [
        t
        for t in answer["items"]
        if t["grid_code"] == place["door"].grid_code
        and t["worker_id"] in (place["worker_id"], None)
        and t["status"] in WORKER_HELD
    ]
    mine.sort(key=lambda t: (t["due_at"] or "9999", t["id"]))
    return [t["id"] for t in mine]


def test_a_grid_worker_records_an_inspection_with_a_photo_at_the_entity(
    base_url: str, place: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    page = phone(browser, place["door"])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, base_url, "wangge")
    assert page.title() == "网格员移动端"
    inline = page.evaluate("Array.from(document.scripts).filter(s => !s.src && s.type !== 'application/json').length")
    assert inline == 0

    # My tasks, by deadline, with duty and entity in Chinese; the map outlines my grid and marks where I stand.
    listed = page.evaluate("window.gridgov.page.tasks()")
    assert listed == my_open_tasks_by_deadline(base_url, place)
    task_id = place["task_ids"][0]
    assert task_id in listed
    card = page.locator(f".task-card[data-id='{task_id}']")
    assert "东莞市外勤测试商行1" in card.inner_text()
    assert any(duty in card.inner_text() for duty in ("地址核查", "开业核查", "许可核查"))
    assert "即将到期" in card.inner_text()
    overdue = page.locator(".task-card", has=page.locator(".badge.overdue"))
    assert overdue.count() == 1 and overdue.get_attribute("data-id") == str(listed[0])
    assert "逾期 1 项" in page.locator("#task-count").inner_text()
    page.wait_for_function("window.gridgov.page.map().position !== null", timeout=30_000)
    shown = page.evaluate("window.gridgov.page.map()")
    assert shown["grids"] == [place["door"].grid_code]
    assert abs(shown["position"]["lon"] - place["door"].lon) < 1e-6
    assert "精度 ±15 米" in page.locator("#position-line").inner_text()
    page.wait_for_function("window.gridgov.page.map().rendered", timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "field-page-tasks.png"), full_page=True)

    # The tasks are points on the map: tapping the entity's point opens one of its tasks.
    assert shown["tileTasks"] is True
    door = place["door"]
    target = page.evaluate(f"window.gridgov.page.containerPoint({door.lon}, {door.lat})")
    box = page.locator("#field-map").bounding_box()
    assert box is not None and 0 < target["x"] < box["width"] and 0 < target["y"] < box["height"]
    page.touchscreen.tap(box["x"] + target["x"], box["y"] + target["y"])
    page.wait_for_selector("body[data-task]", timeout=30_000)
    assert int(page.evaluate("document.body.dataset.task")) in listed
    page.locator("#back").tap()

    # The worker taps the task in the list: its facts, and the inspection form with the phone's position.
    card.tap()
    page.wait_for_selector(f"body[data-task='{task_id}']", timeout=30_000)
    assert "东莞市外勤测试商行1" in page.locator("#task-facts").inner_text()
    page.wait_for_function("document.getElementById('inspect-position').textContent.includes('东经')")
    assert "精度 ±15 米" in page.locator("#inspect-position").inner_text()
    assert page.locator("#result-options").inner_text().split() == ["正常", "发现问题"]
    page.locator("#result-options label", has_text="正常").tap()
    page.fill("#inspect-note", "亮照经营，现场无异常")
    photos = [("门头.jpg", jpeg((180, 40, 40))), ("营业执照.jpg", jpeg((40, 160, 60)))]
    page.set_input_files(
        "#inspect-photos", files=[{"name": n, "mimeType": "image/jpeg", "buffer": data} for n, data in photos]
    )
    assert "门头.jpg" in page.locator("#inspect-chosen").inner_text()

    # The network drops while the first photo is on its way: the page says which photo failed and offers a retry.
    dropped: list[str] = []

    def drop_once(route: Any) -> None:
        if not dropped:
            dropped.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(f"**/v1/tasks/{task_id}/photos", drop_once)
    page.locator("#inspect-send").tap()
    page.wait_for_selector("body[data-inspection='partial']", timeout=30_000)
    assert dropped
    message = page.locator("#inspect-message").inner_text()
    assert "核查已记录" in message and "门头.jpg" in message and "营业执照.jpg" not in message
    assert page.locator("#inspect-send").is_disabled()
    page.screenshot(path=str(artifacts_dir / "field-page-photo-failed.png"), full_page=True)
    page.locator("#inspect-uploads li.failed .retry").tap()
    page.wait_for_selector("body[data-inspection='done']", timeout=30_000)
    assert "2 张照片已上传" in page.locator("#inspect-message").inner_text()
    page.wait_for_function("document.querySelectorAll('#task-photos img').length === 2", timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "field-page-inspection.png"), full_page=True)

    # Through the API: the task moved once, with the worker's position, and holds both photos.
    centre = place["centre"]
    task = httpx.get(f"{base_url}/v1/tasks/{task_id}", headers=centre, timeout=60).json()
    assert task["status"] == "inspected_ok" and task["flagged"] is False
    history = httpx.get(f"{base_url}/v1/tasks/{task_id}/history", headers=centre, timeout=60).json()["items"]
    inspections = [h for h in history if h["to_status"] == "inspected_ok"]
    assert len(inspections) == 1
    assert inspections[0]["note"] == "亮照经营，现场无异常" and inspections[0]["actor"] == "user:wangge"
    assert inspections[0]["distance_m"] is not None and inspections[0]["distance_m"] < 200
    assert abs(inspections[0]["lon"] - place["door"].lon) < 1e-6
    stored = httpx.get(f"{base_url}/v1/tasks/{task_id}/photos", headers=centre, timeout=60).json()["items"]
    assert sorted(p["filename"] for p in stored) == sorted(n for n, _ in photos)
    for photo in stored:
        body = httpx.get(f"{base_url}/v1/task-photos/{photo['id']}", headers=centre, timeout=60)
        assert body.status_code == 200 and body.content == dict(photos)[photo["filename"]]
    assert "检查无问题" in page.locator("#task-history").inner_text()

    # Nothing was wrong: the worker closes the task, and it leaves their list.
    assert page.locator("#task-moves button").all_inner_texts() == ["办结"]
    page.locator("#task-moves button[data-move='closed']").tap()
    page.wait_for_selector("#move-message.done", timeout=30_000)
    assert httpx.get(f"{base_url}/v1/tasks/{task_id}", headers=centre, timeout=60).json()["status"] == "closed"
    page.locator("#back").tap()
    page.wait_for_function(f"!window.gridgov.page.tasks().includes({task_id})", timeout=30_000)
    assert page.locator(f".task-card[data-id='{task_id}']").count() == 0
    assert not errors, errors


def test_an_inspection_is_refused_without_the_phones_location(
    base_url: str, place: dict[str, Any], browser: Any
) -> None:
    page = phone(browser, place["door"], located=False)
    sign_in(page, base_url, "wangge")
    task_id = next(t for t in page.evaluate("window.gridgov.page.tasks()") if t != place["task_ids"][0])
    before = httpx.get(f"{base_url}/v1/tasks/{task_id}", headers=place["centre"], timeout=60).json()
    page.locator(f".task-card[data-id='{task_id}']").tap()
    page.wait_for_selector(f"body[data-task='{task_id}']", timeout=30_000)
    page.wait_for_function("document.getElementById('inspect-position').classList.contains('failed')")
    assert "定位权限被拒绝" in page.locator("#inspect-position").inner_text()
    page.locator("#inspect-send").tap()
    assert "尚未获取当前位置" in page.locator("#inspect-message").inner_text()
    after = httpx.get(f"{base_url}/v1/tasks/{task_id}", headers=place["centre"], timeout=60).json()
    assert after["version"] == before["version"] and after["status"] == before["status"]


def test_a_grid_worker_reports_a_clue_with_a_photo(
    base_url: str, place: dict[str, Any], browser: Any, artifacts_dir: Path
) -> None:
    page = phone(browser, place["door"])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, base_url, "wangge")
    page.locator("#tab-clue").tap()
    page.wait_for_function("document.getElementById('clue-position').textContent.includes('东经')")
    page.select_option("#clue-industry", "餐饮服务")
    page.fill("#clue-description", "路边无证大排档")
    page.set_input_files(
        "#clue-photos", files=[{"name": "排档.jpg", "mimeType": "image/jpeg", "buffer": jpeg((9, 9, 200))}]
    )
    page.locator("#clue-send").tap()
    page.wait_for_selector("body[data-clue='done']", timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "field-page-clue.png"), full_page=True)
    clue = page.evaluate("window.gridgov.page.clue()")["clue"]
    assert f"编号 {clue['id']}" in page.locator("#clue-message").inner_text()

    stored = httpx.get(f"{base_url}/v1/clues/{clue['id']}", headers=place["centre"], timeout=60).json()
    assert stored["industry"] == "餐饮服务" and stored["description"] == "路边无证大排档"
    assert stored["grid_code"] == place["door"].grid_code and stored["reported_by"] == "user:wangge"
    assert stored["photo_count"] == 1 and stored["photos"][0]["filename"] == "排档.jpg"
    assert stored["task_id"] is not None
    assert not errors, errors


def test_a_town_leader_sees_the_tasks_read_only(base_url: str, place: dict[str, Any], browser: Any) -> None:
    page = phone(browser, place["door"])
    sign_in(page, base_url, "leader")
    assert "只能查看任务" in page.locator("#readonly-note").inner_text()
    assert page.locator("#tab-clue").is_hidden()
    listed = page.evaluate("window.gridgov.page.tasks()")
    assert set(listed) >= set(place["task_ids"][1:])
    task_id = listed[0]
    page.locator(f".task-card[data-id='{task_id}']").tap()
    page.wait_for_selector(f"body[data-task='{task_id}']", timeout=30_000)
    assert page.locator("#inspect-form").is_hidden()
