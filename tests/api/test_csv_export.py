"""The lists as spreadsheets: the same rows as the JSON lists, in Chinese, safe to open in Excel, within scope."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.export import TooManyRows, defuse, every_page
from supervision.scope import CITY
from supervision.task_queries import TaskFilters, list_tasks
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

USERS = ("centre", "leader", "far_leader", "dispatcher", "worker")
EVIL_NAME = '=HYPERLINK("http://evil.example","点我")'


def credit_code(serial: int) -> str:
    first17 = f"91441900MD{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module", autouse=True)
def city(db: DatabaseSettings) -> dict[str, Any]:
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        far = a_door_in_another_town(conn, door.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", far.town_code),
                "dispatcher": ("dispatcher", door.community_code),
                "worker": ("grid_worker", str(door.worker_id)),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
    engine.dispose()
    return {"door": asdict(door), "far": asdict(far), "api_key": key}


@pytest.fixture(scope="module")
def auth(client: TestClient, city: dict[str, Any]) -> dict[str, dict[str, str]]:
    headers = {name: bearer(client, name) for name in USERS}
    headers["key"] = api_key_headers(city["api_key"])
    return headers


@pytest.fixture(scope="module", autouse=True)
def registered(client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Two registrations at the door (one named like a spreadsheet formula), one in another town, one unplaceable,
    and a clue whose description is a formula."""
    out: dict[str, Any] = {}
    for serial, name, address in (
        (1, EVIL_NAME, city["door"]["full_text"]),
        (2, "东莞市导出测试商行", city["door"]["full_text"]),
        (3, "东莞市外镇测试商行", city["far"]["full_text"]),
        (4, "东莞市待核测试商行", "火星大道不存在的地方九十九号"),
    ):
        body = {
            "event_id": f"csv-{serial}",
            "kind": "new",
            "uscc": credit_code(serial),
            "name": name,
            "address": address,
            "business_scope": "烟草制品零售",
            "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
        }
        response = client.post("/v1/registrations", json=body, headers=auth["key"])
        assert response.status_code == 201, response.text
        out[f"csv-{serial}"] = response.json()
    assert out["csv-1"]["outcome"] == "placed" and out["csv-3"]["outcome"] == "placed"
    door = city["door"]
    clue = client.post(
        "/v1/clues",
        json={"lon": door["lon"], "lat": door["lat"], "industry": "餐饮服务", "description": "+1-2 @cmd 无证经营"},
        headers=auth["dispatcher"],
    )
    assert clue.status_code == 201, clue.text
    out["clue"] = clue.json()
    return out


def download(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[list[str]]:
    """The CSV answer, checked to be a UTF-8 download with a BOM, as rows (header first)."""
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition and ".csv" in disposition
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def every_item(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json()  # fmt: skip
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def column(rows: list[list[str]], header: str) -> list[str]:
    index = rows[0].index(header)
    return [r[index] for r in rows[1:]]


def test_the_task_export_holds_the_lists_rows_with_chinese_headers(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    grid = city["door"]["grid_code"]
    rows = download(client, "/v1/tasks.csv", auth["centre"], grid=grid)
    assert rows[0][:3] == ["任务编号", "类型", "职责"] and "状态" in rows[0] and "期限" in rows[0]
    listed = every_item(client, "/v1/tasks", auth["centre"], grid=grid)
    assert [int(i) for i in column(rows, "任务编号")] == [t["id"] for t in listed]
    assert set(column(rows, "网格编码")) == {grid}
    assert "已分派" in column(rows, "状态") and set(column(rows, "已逾期")) <= {"是", "否"}
    assert city["door"]["town_name"] in column(rows, "镇街")
    # The same filters as the list: one status, one entity.
    uscc = credit_code(2)
    by_entity = download(client, "/v1/tasks.csv", auth["centre"], uscc=uscc, status="assigned")
    assert len(by_entity) - 1 == client.get("/v1/tasks", params={"uscc": uscc, "status": "assigned"},
                                            headers=auth["centre"]).json()["total"] > 0  # fmt: skip
    response = client.get("/v1/tasks.csv", params={"status": "nonsense"}, headers=auth["centre"])
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_defused(
    client: TestClient, auth: dict[str, dict[str, str]], registered: dict[str, Any]
) -> None:
    tasks = download(client, "/v1/tasks.csv", auth["centre"], uscc=credit_code(1))
    assert set(column(tasks, "市场主体")) == {"'" + EVIL_NAME}
    clues = download(client, "/v1/clues.csv", auth["centre"], grid=registered["clue"]["grid_code"], source="all")
    assert "'+1-2 @cmd 无证经营" in column(clues, "描述")
    assert [defuse(v) for v in ("-3", "@x", "\tx", "普通", 5, None, True)] == [
        "'-3",
        "'@x",
        "'\tx",
        "普通",
        "5",
        "",
        "是",
    ]


def test_each_export_keeps_to_the_callers_scope(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]], registered: dict[str, Any]
) -> None:
    near, far = set(registered["csv-2"]["task_ids"]), set(registered["csv-3"]["task_ids"])
    for user, sees, misses in (("leader", near, far), ("far_leader", far, near), ("dispatcher", near, far)):
        rows = download(client, "/v1/tasks.csv", auth[user])
        ids = {int(i) for i in column(rows, "任务编号")}
        assert sees <= ids and not (misses & ids), user
        assert len(ids) == client.get("/v1/tasks", headers=auth[user]).json()["total"]
    worker = download(client, "/v1/tasks.csv", auth["worker"])
    assert set(column(worker, "网格编码")) <= {city["door"]["grid_code"]}
    clue_id = str(registered["clue"]["id"])
    assert clue_id in column(download(client, "/v1/clues.csv", auth["dispatcher"]), "线索编号")
    assert clue_id not in column(download(client, "/v1/clues.csv", auth["far_leader"]), "线索编号")
    # Whoever may not read a list may not export it.
    assert client.get("/v1/tasks.csv", headers=auth["key"]).status_code == 403
    assert client.get("/v1/review.csv", headers=auth["leader"]).status_code == 403
    assert client.get("/v1/tasks.csv").status_code == 401


def test_the_clue_export_takes_the_clue_lists_filters(
    client: TestClient, auth: dict[str, dict[str, str]], registered: dict[str, Any]
) -> None:
    params = {"industry": "餐饮服务", "source": "all"}
    rows = download(client, "/v1/clues.csv", auth["centre"], **params)
    listed = every_item(client, "/v1/clues", auth["centre"], **params)
    assert [int(i) for i in column(rows, "线索编号")] == [c["id"] for c in listed]
    assert set(column(rows, "行业")) == {"餐饮服务"} and rows[0][:3] == ["线索编号", "类别", "行业"]
    assert client.get("/v1/clues.csv", params={"h3": "zzz"}, headers=auth["centre"]).status_code == 422
    # A NUL in a filter is the API's 422 (PostgreSQL text cannot hold it), and the next export is served.
    nul = client.get("/v1/clues.csv", params={"industry": "\x00"}, headers=auth["centre"])
    assert nul.status_code == 422 and nul.json()["error"] == "invalid_request" and "NUL" in nul.json()["detail"]
    assert client.get("/v1/clues.csv", params=params, headers=auth["centre"]).status_code == 200


def test_the_review_export_is_the_dispatchers_queue(
    client: TestClient, auth: dict[str, dict[str, str]], registered: dict[str, Any]
) -> None:
    assert registered["csv-4"]["outcome"] == "review"
    for user in ("centre", "dispatcher"):
        rows = download(client, "/v1/review.csv", auth[user])
        queue = client.get("/v1/review", params={"limit": 500}, headers=auth[user]).json()["items"]
        assert [int(i) for i in column(rows, "待核编号")] == [q["id"] for q in queue]
        assert rows[0][:4] == ["待核编号", "事件编号", "统一社会信用代码", "名称"]
    centre = download(client, "/v1/review.csv", auth["centre"])
    assert "csv-4" in column(centre, "事件编号") and "东莞市待核测试商行" in column(centre, "名称")


def test_the_overdue_export_is_the_statistics_overdue_list(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    town = city["door"]["town_code"]
    rows = download(client, "/v1/stats/overdue.csv", auth["leader"], level="town", code=town)
    assert rows[0][:3] == ["任务编号", "类型", "职责"] and "逾期天数" in rows[0] and "逾期归责（小时）" in rows[0]
    listed = client.get("/v1/stats", params={"level": "town", "code": town}, headers=auth["leader"]).json()["overdue"]
    assert [int(i) for i in column(rows, "任务编号")][: len(listed)] == [o["id"] for o in listed]
    far = city["far"]["town_code"]
    response = client.get("/v1/stats/overdue.csv", params={"level": "town", "code": far}, headers=auth["leader"])
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_an_export_larger_than_the_bound_is_refused(db: DatabaseSettings, client: TestClient) -> None:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            total = list_tasks(conn, CITY, TaskFilters(), limit=1).total
            assert total > 3
            with pytest.raises(TooManyRows, match="narrow the filters"):
                every_page(lambda limit, cursor: list_tasks(conn, CITY, TaskFilters(), limit=limit, cursor=cursor),
                           limit=3)  # fmt: skip
            assert len(every_page(lambda limit, cursor: list_tasks(conn, CITY, TaskFilters(), limit=limit,
                                                                    cursor=cursor), limit=total)) == total  # fmt: skip
    finally:
        engine.dispose()
    assert quote("任务清单") in client.get("/v1/tasks.csv", params={"grid": "441900000000000"},
                                          headers=bearer(client, "centre")).headers["content-disposition"]  # fmt: skip
