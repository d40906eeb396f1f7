"""The dashboard's figures: who am I, the KPI panel at every level of the drill-down, and its trends."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import service
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.calendar import SHANGHAI
from supervision.permissions import CAPABILITIES, Role
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_with_workers, a_worker
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

FIGURES = {
    "tasks_pushed",
    "tasks_completed",
    "completion_rate",
    "on_time_rate",
    "open_tasks",
    "overdue_tasks",
    "clues_reported",
    "clues_closed",
    "clue_handling_rate",
    "licensing_rate",
}
USERS = ("centre", "admin", "leader", "far_leader", "dispatcher", "worker", "tobacco")


def credit_code(serial: int) -> str:
    first17 = f"91441900MB{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module", autouse=True)
def city(db: DatabaseSettings) -> dict[str, Any]:
    """A door with workers, and one account of every role around it (a town leader of another town too)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        far = a_worker(conn, not_town=door.town_code)
        make_users(
            conn,
            {
                "centre": ("command_centre", None),
                "admin": ("admin", None),
                "leader": ("town_leader", door.town_code),
                "far_leader": ("town_leader", far.town_code),
                "dispatcher": ("dispatcher", door.community_code),
                "worker": ("grid_worker", str(door.worker_id)),
                "tobacco": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
        hotline = service.create_api_key(conn, SECRET_KEY, name="hotline-12345", rate_limited=False, role="hotline")
    engine.dispose()
    return {"door": asdict(door), "far": asdict(far), "api_key": key, "hotline": hotline.key}


@pytest.fixture(scope="module")
def auth(client: TestClient, city: dict[str, Any]) -> dict[str, dict[str, str]]:
    headers = {name: bearer(client, name) for name in USERS}
    headers["key"] = api_key_headers(city["api_key"])
    headers["hotline"] = api_key_headers(city["hotline"])
    return headers


def kpi(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    response = client.get("/v1/kpi", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stats_totals(client: TestClient, headers: dict[str, str], level: str, code: str | None) -> Any:
    response = client.get("/v1/stats", params={"level": level, **({"code": code} if code else {})}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["totals"]


def agrees_with_stats(figures: dict[str, Any], totals: dict[str, Any]) -> None:
    assert figures["tasks_pushed"] == totals["tasks_pushed"]
    assert figures["tasks_completed"] == totals["tasks_completed"]
    assert figures["overdue_tasks"] == totals["open_overdue"]
    assert figures["clues_reported"] == totals["clues_reported"]
    assert figures["clues_closed"] == totals["clues_handled"]
    for rate in ("completion_rate", "on_time_rate", "clue_handling_rate", "licensing_rate"):
        assert figures[rate] == totals[rate], rate


# ------------------------------------------------------------------------------------------------------ /v1/me


def test_every_role_reads_who_it_is_in_chinese_with_its_area_capabilities_and_moves(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    expected = {
        "centre": ("command_centre", "指挥中心", "city", None, "东莞市", None),
        "admin": ("admin", "系统管理员", "city", None, "东莞市", None),
        "leader": ("town_leader", "镇街领导", "town", door["town_code"], door["town_name"], []),
        "dispatcher": (
            "dispatcher",
            "村（社区）调度员",
            "community",
            door["community_code"],
            door["community_name"],
            None,
        ),
        "worker": ("grid_worker", "网格员", "worker", door["grid_code"], None, "some"),
        "tobacco": ("department_officer", "部门人员", "department", "tobacco", None, ["closed", "department_feedback"]),
    }
    for user, (role, role_label, kind, code, label, moves) in expected.items():
        me = client.get("/v1/me", headers=auth[user]).json()
        assert me["name"] == user and me["kind"] == "user" and me["role"] == role
        assert me["role_label"] == role_label
        assert me["area"]["kind"] == kind and me["area"]["code"] == code
        if label is not None:
            assert me["area"]["label"] == label
        assert set(me["capabilities"]) == {c.value for c in CAPABILITIES[Role(role)]}
        if moves == "some":
            assert "inspected_ok" in me["task_moves"] and "department_feedback" not in me["task_moves"]
        else:
            assert me["task_moves"] == moves
    # The worker's area is named after their grid; the department after the routing table (Chinese, not a code).
    worker_area = client.get("/v1/me", headers=auth["worker"]).json()["area"]["label"]
    assert worker_area and worker_area != "无"
    assert "局" in client.get("/v1/me", headers=auth["tobacco"]).json()["area"]["label"]
    program = client.get("/v1/me", headers=auth["key"]).json()
    assert program["kind"] == "api_key" and program["role_label"] == "接口客户端" and program["task_moves"] == []
    hotline = client.get("/v1/me", headers=auth["hotline"]).json()
    assert hotline["role_label"] == "12345 热线" and hotline["area"] == {"kind": "none", "code": None, "label": "无"}
    assert hotline["task_moves"] == [] and "stats.read" not in hotline["capabilities"]


def test_me_needs_a_credential(client: TestClient) -> None:
    response = client.get("/v1/me")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


# ------------------------------------------------------------------------------------------------------ /v1/kpi


def test_the_city_panel_agrees_with_the_statistics_and_its_towns_sum_to_it(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    city_kpi = kpi(client, auth["centre"], level="city")
    assert city_kpi["name"] == "东莞市" and city_kpi["parent"] is None and city_kpi["code"] is None
    assert set(city_kpi["figures"]) == FIGURES
    assert city_kpi["seed"] == {"completion_rate": 0.9916, "clue_handling_rate": 0.971, "licensing_rate": 0.7569}
    agrees_with_stats(city_kpi["figures"], stats_totals(client, auth["centre"], "town", None))
    towns = city_kpi["children"]
    assert towns and all(t["level"] == "town" and set(t["figures"]) == FIGURES for t in towns)
    assert sum(t["figures"]["tasks_pushed"] for t in towns) == city_kpi["figures"]["tasks_pushed"]
    assert sum(t["figures"]["open_tasks"] for t in towns) == city_kpi["figures"]["open_tasks"]
    assert sum(t["figures"]["overdue_tasks"] for t in towns) == city_kpi["figures"]["overdue_tasks"]
    w, s, e, n = city_kpi["bbox"]
    assert 113 < w < e < 115 and 22 < s < n < 24
    assert city_kpi["window"]["from"] < city_kpi["window"]["to"]


def test_each_level_down_to_the_grid_agrees_with_the_statistics_and_names_its_parent(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    chain = [("town", door["town_code"]), ("community", door["community_code"]), ("grid", door["grid_code"])]
    parent: dict[str, Any] = {"level": "city", "code": None, "name": "东莞市"}
    above = kpi(client, auth["centre"], level="city")
    for level, code in chain:
        here = kpi(client, auth["centre"], level=level, code=code)
        assert here["level"] == level and here["code"] == code
        assert here["parent"] == parent
        agrees_with_stats(here["figures"], stats_totals(client, auth["centre"], level, code))
        # The unit is one of its parent's children, with the same figures.
        assert next(c for c in above["children"] if c["code"] == code)["figures"] == here["figures"]
        w, s, e, n = here["bbox"]
        assert w <= door["lon"] <= e and s <= door["lat"] <= n
        if level != "grid":
            children = here["children"]
            assert children and all(c["code"].startswith(code[: 9 if level == "town" else 12]) for c in children)
            assert sum(c["figures"]["tasks_pushed"] for c in children) == here["figures"]["tasks_pushed"]
        else:
            assert here["children"] == []
        parent, above = {"level": level, "code": code, "name": here["name"]}, here
    assert parent["name"]


def test_a_department_officer_reads_their_departments_figures_as_the_statistics_do(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    mine = kpi(client, auth["tobacco"], level="department", code="tobacco")
    agrees_with_stats(mine["figures"], stats_totals(client, auth["tobacco"], "department", "tobacco"))
    assert mine["children"] == [] and "局" in mine["name"]
    trend = client.get("/v1/kpi/trend", params={"level": "department", "code": "tobacco"}, headers=auth["tobacco"])
    assert trend.status_code == 200, trend.text
    assert len(trend.json()["days"]) == 30
    assert sum(trend.json()["series"]["tasks_pushed"]) == mine["figures"]["tasks_pushed"]
    assert sum(trend.json()["series"]["clues_reported"]) == mine["figures"]["clues_reported"]
    for level, code in (("city", None), ("department", "health")):
        response = client.get("/v1/kpi", params={"level": level, **({"code": code} if code else {})},
                              headers=auth["tobacco"])  # fmt: skip
        assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_nobody_reads_figures_outside_their_scope(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door, far = city["door"], city["far"]
    refused = [
        ("leader", "city", None),
        ("leader", "town", far["town_code"]),
        ("leader", "grid", far["grid_code"]),
        ("far_leader", "town", door["town_code"]),
        ("dispatcher", "town", door["town_code"]),
        ("dispatcher", "community", far["community_code"]),
        ("worker", "community", door["community_code"]),
        ("worker", "grid", far["grid_code"]),
    ]
    for user, level, code in refused:
        params = {"level": level, **({"code": code} if code else {})}
        for path in ("/v1/kpi", "/v1/kpi/trend"):
            response = client.get(path, params=params, headers=auth[user])
            assert response.status_code == 403, (user, level, path, response.text)
            assert response.json()["error"] == "forbidden"
    # Within their scope they read it, and a town leader's panel agrees with the statistics they may read.
    mine = kpi(client, auth["leader"], level="town", code=door["town_code"])
    agrees_with_stats(mine["figures"], stats_totals(client, auth["leader"], "town", door["town_code"]))
    assert kpi(client, auth["dispatcher"], level="community", code=door["community_code"])["children"]
    assert kpi(client, auth["worker"], level="grid", code=door["grid_code"])["code"] == door["grid_code"]
    # An API client has no figures at all.
    assert client.get("/v1/kpi", headers=auth["key"]).status_code == 403


def test_bad_levels_and_codes_are_refused_with_a_reason(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    for params, status in (
        ({"level": "province"}, 422),
        ({"level": "town"}, 422),
        ({"level": "town", "code": "x'; drop"}, 422),
        ({"level": "town", "code": "441900999000"}, 404),
    ):
        response = client.get("/v1/kpi", params=params, headers=auth["centre"])
        assert response.status_code == status, (params, response.text)
        assert "error" in response.json()
    response = client.get("/v1/kpi/trend", params={"days": 0}, headers=auth["centre"])
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/kpi", {"from": "0001-01-01", "to": "9999-12-31"}, "from"),
        ("/v1/kpi", {"to": "0001-01-01"}, "to"),
        ("/v1/kpi", {"from": "2026-11-01", "to": "2101-01-01"}, "to"),
        ("/v1/kpi/trend", {"to": "0001-01-01", "days": 30}, "to"),
        ("/v1/kpi/trend", {"to": "9999-12-31"}, "to"),
    ],
)
def test_a_day_outside_the_years_served_is_a_422_naming_it(
    client: TestClient, auth: dict[str, dict[str, str]], path: str, params: dict[str, Any], field: str
) -> None:
    response = client.get(path, params=params, headers=auth["centre"])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and body["field"] == field
    assert "2000 to 2100" in body["detail"]


# ---------------------------------------------------------------------------------------------------- trends


def test_the_trend_has_one_value_per_day_and_counts_a_new_task_on_its_day(
    client: TestClient, city: dict[str, Any], auth: dict[str, dict[str, str]]
) -> None:
    door = city["door"]
    params = {"level": "grid", "code": door["grid_code"], "days": 7}
    before = client.get("/v1/kpi/trend", params=params, headers=auth["centre"]).json()
    today = clock.now().astimezone(SHANGHAI).date()
    assert before["days"] == [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    assert set(before["series"]) == {
        "tasks_pushed",
        "tasks_completed",
        "overdue_tasks",
        "clues_reported",
        "clues_closed",
    }
    assert all(len(values) == 7 for values in before["series"].values())
    body = {
        "event_id": "kpi-1",
        "kind": "new",
        "uscc": credit_code(1),
        "name": "东莞市趋势测试商行",
        "address": door["full_text"],
        "business_scope": "烟草制品零售",
        "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
    }
    posted = client.post("/v1/registrations", json=body, headers=auth["key"])
    assert posted.status_code == 201 and posted.json()["outcome"] == "placed", posted.text
    pushed = len(posted.json()["task_ids"])
    after = client.get("/v1/kpi/trend", params=params, headers=auth["centre"]).json()
    assert after["series"]["tasks_pushed"][-1] == before["series"]["tasks_pushed"][-1] + pushed
    assert after["series"]["tasks_pushed"][:-1] == before["series"]["tasks_pushed"][:-1]
    # The series over the panel's window sum to the panel's figures.
    month = client.get("/v1/kpi/trend", params={**params, "days": 30}, headers=auth["centre"]).json()
    panel = kpi(client, auth["centre"], level="grid", code=door["grid_code"])["figures"]
    assert sum(month["series"]["tasks_pushed"]) == panel["tasks_pushed"]
    assert sum(month["series"]["tasks_completed"]) == panel["tasks_completed"]
    assert sum(month["series"]["clues_reported"]) == panel["clues_reported"]
    assert panel["open_tasks"] >= pushed
