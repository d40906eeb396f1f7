"""An API client uploads a file of registrations, watches the job, and downloads every row geocoded, in order."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import make_api_key
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def keys(db: DatabaseSettings) -> dict[str, str]:
    engine = make_engine(db)
    with engine.begin() as conn:
        mine = make_api_key(conn, SECRET_KEY, "batch owner")
        other = make_api_key(conn, SECRET_KEY, "someone else")
    engine.dispose()
    return {"mine": mine, "other": other}


@pytest.fixture(scope="module")
def registrations(db: DatabaseSettings) -> list[tuple[str, str]]:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT uscc, raw_address FROM entity ORDER BY uscc LIMIT 300")).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


def upload(client: TestClient, key: str, rows: list[list[str]], column: str = "address") -> dict[str, Any]:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = client.post(
        "/v1/geocode/batch",
        headers={"X-API-Key": key},
        files={"file": ("registrations.csv", buffer.getvalue().encode(), "text/csv")},
        data={"column": column},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def wait(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/v1/geocode/batch/{job_id}", headers={"X-API-Key": key}).json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    pytest.fail(f"batch job {job_id} did not finish")


def test_an_uploaded_file_comes_back_whole_in_order_with_grids(
    client: TestClient, keys: dict[str, str], registrations: list[tuple[str, str]]
) -> None:
    rows = [["uscc", "address"], *[[u, a] for u, a in registrations], ["bad-row", ""], ["ctrl", "长安镇\x07振隆路"]]
    job = upload(client, keys["mine"], rows)
    assert job["status"] in ("queued", "running", "done")
    status = wait(client, keys["mine"], job["id"])
    assert status["status"] == "done"
    assert status["rows_done"] == status["rows_total"] == len(rows) - 1
    result = client.get(status["result_url"], headers={"X-API-Key": keys["mine"]})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/csv")
    out = list(csv.DictReader(io.StringIO(result.text)))
    assert [r["uscc"] for r in out] == [r[0] for r in rows[1:]]
    matched = [r for r in out[: len(registrations)] if r["status"] == "matched" and r["grid_code"]]
    assert len(matched) >= 0.97 * len(registrations)
    assert out[-2]["status"] in ("invalid", "not_found") and out[-2]["reason"]
    assert out[-1]["status"] == "invalid" and "control" in out[-1]["reason"]


def test_a_job_is_visible_only_to_its_owner_and_a_bad_column_fails_with_a_reason(
    client: TestClient, keys: dict[str, str]
) -> None:
    job = upload(client, keys["mine"], [["地址"], ["长安镇振隆路27号"]], column="address")
    status = wait(client, keys["mine"], job["id"])
    assert status["status"] == "failed" and "no column 'address'" in status["error"]
    assert client.get(f"/v1/geocode/batch/{job['id']}", headers={"X-API-Key": keys["other"]}).status_code == 404
    assert client.get(f"/v1/geocode/batch/{job['id']}/result", headers={"X-API-Key": keys["mine"]}).status_code == 409
    assert client.get(f"/v1/geocode/batch/{job['id']}").status_code == 401
