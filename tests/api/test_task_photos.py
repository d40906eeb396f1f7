"""A grid worker photographs an inspection: the photos are stored with the task, listed and downloaded within scope,
and refused when they are not images, too large, too many, or for a task that is done."""

from __future__ import annotations

import io
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.clues import MAX_PHOTO_BYTES
from supervision.task_photos import MAX_PHOTOS_PER_TASK
from supervision.uscc import uscc_check_char
from tests.support.accounts import bearer, make_api_key, make_users
from tests.support.city import a_door_with_workers, a_worker
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db


def credit_code(serial: int) -> str:
    first17 = f"91441900MB{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


def image_bytes(kind: str = "JPEG", colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def city(db: DatabaseSettings, client: TestClient) -> dict[str, Any]:
    """Two registrations' tasks in a grid, the worker they went to, and people of other roles here and elsewhere."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        far = a_worker(conn, not_town=door.town_code)
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
    task_ids: list[int] = []
    for serial in (1, 2):
        body = {
            "event_id": f"task-photos-{serial}",
            "kind": "new",
            "uscc": credit_code(serial),
            "name": f"东莞市拍照商行{serial}",
            "address": door.full_text,
            "business_scope": "烟草制品零售",
            "occurred_at": (clock.now() - timedelta(hours=serial)).isoformat(),
        }
        placed = client.post("/v1/registrations", json=body, headers={"X-API-Key": key})
        assert placed.status_code == 201 and placed.json()["outcome"] == "placed", placed.text
        task_ids += placed.json()["task_ids"]
    with engine.begin() as conn:
        make_users(conn, {"centre": ("command_centre", None)})
    engine.dispose()
    centre = bearer(client, "centre")
    tasks = [client.get(f"/v1/tasks/{task_id}", headers=centre).json() for task_id in task_ids]
    worker_id = tasks[0]["worker_id"]
    assert worker_id is not None
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(
            conn,
            {
                "worker": ("grid_worker", str(worker_id)),
                "far_worker": ("grid_worker", str(far.id)),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", far.town_code),
            },
        )
    engine.dispose()
    return {"door": asdict(door), "tasks": tasks, "api_key": key}


@pytest.fixture(scope="module")
def auth(client: TestClient, city: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: bearer(client, name) for name in ("centre", "worker", "far_worker", "leader", "far_leader")}


def upload(
    client: TestClient, task_id: int, data: bytes, headers: dict[str, str], *, name: str = "现场.jpg",
    content_type: str = "image/jpeg",
) -> Any:  # fmt: skip
    return client.post(f"/v1/tasks/{task_id}/photos", files={"file": (name, data, content_type)}, headers=headers)


def test_a_worker_uploads_a_photo_of_their_task_and_it_is_listed_and_downloaded(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task_id = city["tasks"][0]["id"]
    photo = image_bytes()
    stored = upload(client, task_id, photo, auth["worker"])
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert body["task_id"] == task_id and body["size_bytes"] == len(photo)
    assert body["content_type"] == "image/jpeg" and body["filename"] == "现场.jpg"
    assert body["uploaded_by"] == "user:worker"

    listed = client.get(f"/v1/tasks/{task_id}/photos", headers=auth["worker"])
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["items"]] == [body["id"]]
    # The town's leader reads the photos of their town's tasks, the command centre those of the city.
    for reader in ("leader", "centre"):
        assert client.get(f"/v1/tasks/{task_id}/photos", headers=auth[reader]).json()["items"][0]["id"] == body["id"]
        download = client.get(f"/v1/task-photos/{body['id']}", headers=auth[reader])
        assert download.status_code == 200 and download.content == photo
        assert download.headers["content-type"] == "image/jpeg"


def test_another_towns_worker_and_leader_are_refused(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task_id = city["tasks"][3]["id"]
    stored = upload(client, task_id, image_bytes(), auth["worker"])
    assert stored.status_code == 201, stored.text
    photo_id = stored.json()["id"]
    for outsider in ("far_worker", "far_leader"):
        assert client.get(f"/v1/tasks/{task_id}/photos", headers=auth[outsider]).json()["error"] == "forbidden"
        assert client.get(f"/v1/task-photos/{photo_id}", headers=auth[outsider]).status_code == 403
    refused = upload(client, task_id, image_bytes(), auth["far_worker"])
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    # A town leader reads but never uploads (no task.transition), even in their own town.
    leader = upload(client, task_id, image_bytes(), auth["leader"])
    assert leader.status_code == 403 and leader.json()["error"] == "forbidden"
    assert len(client.get(f"/v1/tasks/{task_id}/photos", headers=auth["centre"]).json()["items"]) == 1
    # Without a credential there is nothing at all.
    assert client.get(f"/v1/task-photos/{photo_id}").status_code == 401
    assert client.get("/v1/tasks/999999999/photos", headers=auth["centre"]).status_code == 404
    assert client.get("/v1/task-photos/999999999", headers=auth["centre"]).status_code == 404


def test_what_is_not_a_photo_is_refused_with_a_reason(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task_id = city["tasks"][1]["id"]
    not_image = upload(client, task_id, b"this is not a photo at all\n" * 10, auth["centre"])
    assert not_image.status_code == 422
    assert not_image.json()["error"] == "invalid_request" and not_image.json()["field"] == "file"
    lying = upload(client, task_id, image_bytes("PNG"), auth["centre"], name="a.jpg", content_type="image/jpeg")
    assert lying.status_code == 422 and "image/png" in lying.json()["detail"]
    empty = upload(client, task_id, b"", auth["centre"])
    assert empty.status_code == 422
    too_large = upload(client, task_id, b"\xff\xd8\xff" + b"\0" * MAX_PHOTO_BYTES, auth["centre"])
    assert too_large.status_code == 422 and "limit" in too_large.json()["detail"]
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    assert upload(client, task_id, gif.getvalue(), auth["centre"], content_type="image/gif").status_code == 422
    assert client.get(f"/v1/tasks/{task_id}/photos", headers=auth["centre"]).json()["items"] == []


def test_a_file_name_with_control_characters_is_cleaned_and_the_photo_stored_once_with_its_row(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task_id = city["tasks"][1]["id"]
    photo = image_bytes("PNG", (7, 77, 177))
    # Written by hand: httpx would percent-encode the NUL of the file name, a phone's browser may not.
    body = (
        b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
        + "现场\x00\x1b照片.png".encode()
        + b"\"\r\nContent-Type: image/png\r\n\r\n" + photo + b"\r\n--b0undary--\r\n"
    )  # fmt: skip
    stored = client.post(
        f"/v1/tasks/{task_id}/photos",
        content=body,
        headers={**auth["worker"], "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["filename"] == "现场照片.png"
    download = client.get(f"/v1/task-photos/{stored.json()['id']}", headers=auth["worker"])
    assert download.status_code == 200 and download.content == photo
    # A photo refused by a check that runs with the row (here: the task is another town's) leaves no file behind.
    photos = client.app.state.server_settings.state_dir / "photos"  # type: ignore[attr-defined]
    before = sorted(photos.rglob("*"))
    refused = upload(client, city["tasks"][0]["id"], image_bytes("PNG", (9, 99, 199)), auth["far_worker"])
    assert refused.status_code == 403
    assert sorted(photos.rglob("*")) == before
    client.get(f"/v1/tasks/{task_id}/photos", headers=auth["centre"]).raise_for_status()


def test_a_task_holds_at_most_nine_photos_and_a_finished_task_takes_none(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    task = city["tasks"][2]
    for n in range(MAX_PHOTOS_PER_TASK):
        stored = upload(client, task["id"], image_bytes("PNG", (n, 0, 0)), auth["centre"], content_type="image/png")
        assert stored.status_code == 201, stored.text
    one_more = upload(client, task["id"], image_bytes(), auth["centre"])
    assert one_more.status_code == 422 and str(MAX_PHOTOS_PER_TASK) in one_more.json()["detail"]
    assert len(client.get(f"/v1/tasks/{task['id']}/photos", headers=auth["centre"]).json()["items"]) == 9

    # Inspected and closed: the task takes no more photos, and keeps those it has.
    done = city["tasks"][4]
    door = city["door"]
    inspected = client.post(
        f"/v1/tasks/{done['id']}/transitions",
        json={"to": "inspected_ok", "version": done["version"], "lon": door["lon"], "lat": door["lat"]},
        headers=auth["worker"],
    )
    assert inspected.status_code == 200, inspected.text
    assert upload(client, done["id"], image_bytes(), auth["worker"]).status_code == 201
    closed = client.post(
        f"/v1/tasks/{done['id']}/transitions",
        json={"to": "closed", "version": inspected.json()["version"]},
        headers=auth["worker"],
    )
    assert closed.status_code == 200, closed.text
    late = upload(client, done["id"], image_bytes("PNG"), auth["worker"], content_type="image/png")
    assert late.status_code == 422 and "closed" in late.json()["detail"]
    assert len(client.get(f"/v1/tasks/{done['id']}/photos", headers=auth["worker"]).json()["items"]) == 1


def test_the_field_page_signs_in_first_and_asks_for_task_reading(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    browser = client.get("/field", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/field"
    assert client.get("/field", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/field", headers={"X-API-Key": city["api_key"]}).status_code == 403  # a key reads no tasks
    page = client.get("/field", headers=auth["worker"])
    assert page.status_code == 200 and "网格员移动端" in page.text and "上报线索" in page.text
    assert client.get("/field", headers=auth["leader"]).status_code == 200  # read-only, said on the page
