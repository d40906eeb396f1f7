"""一单两库 over the API: anyone planning reads the item lists; a department keeps its own inspectors and lists by
CSV; the target directory is counted per item and credit class, and exported without the class."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.inspection_directory import ImportOut, InspectorsOut, ItemsOut, TargetsOut
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "officer", "health-officer", "leader", "dispatcher", "worker")
FOOD = "market_supervision-05"


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """The busiest town (home), another town (away), and every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home, away = conn.execute(
            text("SELECT town_code FROM entity WHERE status = 'open' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2")
        ).scalars()
        community = conn.execute(
            text("SELECT code FROM community WHERE town_code = :t ORDER BY code LIMIT 1"), {"t": home}
        ).scalar_one()
        worker = conn.execute(
            text("SELECT id FROM worker WHERE town_code = :t ORDER BY id LIMIT 1"), {"t": home}
        ).scalar_one()
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "officer": ("department_officer", "market_supervision"),
                "health-officer": ("department_officer", "health"),
                "leader": ("town_leader", home),
                "dispatcher": ("dispatcher", community),
                "worker": ("grid_worker", str(worker)),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "directory-test")
    engine.dispose()
    return {"home": home, "away": away, "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {name: bearer(client, name) for name in PEOPLE}
    out["api"] = api_key_headers(world["api_key"])
    return out


def _csv(response: Any) -> list[list[str]]:
    assert response.headers["content-type"].startswith("text/csv")
    return [line.split(",") for line in response.content.decode("utf-8-sig").splitlines()]


# Written out by hand: who may do what, where (200 in scope, 403 out of it or without the capability).
EXPECTED: dict[str, dict[str, int]] = {
    #                  items  targets-home targets-away inspectors-own inspectors-other targets.csv-own
    "admin": {"items": 200, "t_home": 200, "t_away": 200, "insp_ms": 200, "insp_health": 200, "csv_ms": 200},
    "centre": {"items": 200, "t_home": 200, "t_away": 200, "insp_ms": 200, "insp_health": 200, "csv_ms": 200},
    "officer": {"items": 200, "t_home": 200, "t_away": 200, "insp_ms": 200, "insp_health": 403, "csv_ms": 200},
    "health-officer": {"items": 200, "t_home": 403, "t_away": 403, "insp_ms": 403, "insp_health": 200, "csv_ms": 403},
    "leader": {"items": 200, "t_home": 200, "t_away": 403, "insp_ms": 403, "insp_health": 403, "csv_ms": 403},
    "dispatcher": {"items": 403, "t_home": 403, "t_away": 403, "insp_ms": 403, "insp_health": 403, "csv_ms": 403},
    "worker": {"items": 403, "t_home": 403, "t_away": 403, "insp_ms": 403, "insp_health": 403, "csv_ms": 403},
    "api": {"items": 403, "t_home": 403, "t_away": 403, "insp_ms": 403, "insp_health": 403, "csv_ms": 403},
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_reads_the_lists_of_its_own_department_and_place_only(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], who: str
) -> None:
    h = headers[who]
    answers = {
        "items": client.get("/v1/inspection-items", headers=h),
        "t_home": client.get("/v1/inspection-targets", params={"items": FOOD, "town": world["home"]}, headers=h),
        "t_away": client.get("/v1/inspection-targets", params={"items": FOOD, "town": world["away"]}, headers=h),
        "insp_ms": client.get("/v1/inspectors", params={"department": "market_supervision"}, headers=h),
        "insp_health": client.get("/v1/inspectors", params={"department": "health"}, headers=h),
        "csv_ms": client.get("/v1/inspection-targets.csv", params={"items": FOOD, "town": world["home"]}, headers=h),
    }
    for what, status in EXPECTED[who].items():
        assert answers[what].status_code == status, (who, what, answers[what].text)
        if status == 403:
            assert answers[what].json()["error"] in ("forbidden", "not_permitted")


def test_everyone_planning_reads_every_departments_item_list(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = ItemsOut.model_validate(client.get("/v1/inspection-items", headers=headers["leader"]).json())
    assert body.total == len(body.items) >= 60
    assert {i.department_code for i in body.items} >= {"market_supervision", "health", "culture", "fire_rescue"}
    assert {i.department_name for i in body.items if i.department_code == "health"} == {"东莞市卫生健康局"}
    health = client.get("/v1/inspection-items", params={"department": "health"}, headers=headers["officer"]).json()
    assert {i["department_code"] for i in health["items"]} == {"health"}
    exported = _csv(client.get("/v1/inspection-items.csv", params={"department": "health"}, headers=headers["leader"]))
    assert exported[0][:3] == ["code", "department_code", "name"]
    assert len(exported) == 1 + len(health["items"])
    unknown = client.get("/v1/inspection-items", params={"department": "nobody"}, headers=headers["centre"])
    assert unknown.status_code == 422 and unknown.json()["reason"] == "unknown_department"


def test_an_officer_sees_their_own_inspectors_by_default(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = InspectorsOut.model_validate(client.get("/v1/inspectors", headers=headers["health-officer"]).json())
    assert body.total > 20 and {i.department_code for i in body.items} == {"health"}
    everyone = InspectorsOut.model_validate(client.get("/v1/inspectors", headers=headers["centre"]).json())
    assert {i.department_code for i in everyone.items} >= {"health", "market_supervision"}
    exported = _csv(client.get("/v1/inspectors.csv", headers=headers["health-officer"]))
    assert {row[1] for row in exported[1:]} == {"health"}


def test_the_target_counts_follow_items_and_town(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    both = TargetsOut.model_validate(
        client.get(
            "/v1/inspection-targets",
            params={"items": f"{FOOD},market_supervision-02", "town": world["home"]},
            headers=headers["centre"],
        ).json()
    )
    assert both.items == ["market_supervision-02", FOOD] and both.town == world["home"]
    assert both.total == sum(s.count for s in both.strata) == sum(both.per_item.values())
    assert {s.credit_class for s in both.strata} <= set("ABCD")
    # Restaurants of individuals are in both lists but count once as entities (one joint visit).
    assert both.entities < both.total
    # A town leader without a town gets their own town.
    own = client.get("/v1/inspection-targets", params={"items": FOOD}, headers=headers["leader"]).json()
    assert own["town"] == world["home"]
    city = client.get("/v1/inspection-targets", params={"items": FOOD}, headers=headers["centre"]).json()
    assert city["town"] is None and city["total"] > both.per_item[FOOD]
    # A department's whole list by its code: every active item of it.
    health = client.get(
        "/v1/inspection-targets", params={"department": "health", "town": world["home"]}, headers=headers["centre"]
    ).json()
    assert health["items"] == ["health-01", "health-02", "health-03", "health-04", "health-05", "health-06"]
    assert health["total"] > 0
    nothing = client.get("/v1/inspection-targets", headers=headers["centre"])
    assert nothing.status_code == 422 and nothing.json()["reason"] == "no_items"
    unknown = client.get("/v1/inspection-targets", params={"items": "nothing-01"}, headers=headers["centre"])
    assert unknown.status_code == 422 and unknown.json()["reason"] == "unknown_item"


def test_an_officer_counts_only_their_own_departments_targets_by_class_and_a_leader_only_their_town(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """The class counts of another department's items are that department's: refused as JSON as in CSV."""
    health = headers["health-officer"]
    for params in (
        {"items": FOOD, "town": world["home"]},
        {"items": f"health-01,{FOOD}"},
        {"department": "market_supervision"},
    ):
        as_json = client.get("/v1/inspection-targets", params=params, headers=health)
        as_csv = client.get("/v1/inspection-targets.csv", params=params, headers=health)
        assert as_json.status_code == as_csv.status_code == 403, (params, as_json.text)
        assert "本部门" in as_json.json()["detail"]
    own = TargetsOut.model_validate(
        client.get("/v1/inspection-targets", params={"town": world["home"]}, headers=health).json()
    )
    assert own.items == ["health-01", "health-02", "health-03", "health-04", "health-05", "health-06"]
    assert client.get("/v1/inspection-targets", params={"items": "health-02"}, headers=health).status_code == 200
    leader = client.get("/v1/inspection-targets", params={"items": FOOD}, headers=headers["leader"])
    assert leader.status_code == 200 and leader.json()["town"] == world["home"]
    away = client.get(
        "/v1/inspection-targets", params={"items": FOOD, "town": world["away"]}, headers=headers["leader"]
    )
    assert away.status_code == 403


def test_the_target_export_lists_names_but_never_the_credit_class(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    counts = client.get(
        "/v1/inspection-targets", params={"items": FOOD, "town": world["home"]}, headers=headers["officer"]
    ).json()
    rows = _csv(
        client.get(
            "/v1/inspection-targets.csv", params={"items": FOOD, "town": world["home"]}, headers=headers["officer"]
        )
    )
    assert rows[0] == ["item_code", "uscc", "name", "town_code", "grid_code"]
    assert len(rows) - 1 == counts["total"]
    assert all(r[0] == FOOD and r[3] == world["home"] and len(r[1]) == 18 for r in rows[1:])
    # Without items, an officer exports their own department's whole list.
    own = _csv(client.get("/v1/inspection-targets.csv", params={"town": world["home"]}, headers=headers["officer"]))
    assert {r[0] for r in own[1:]} <= {f"market_supervision-{n:02d}" for n in range(1, 11)} and len(own) > len(rows)


HEADER = "code,department_code,name,basis,key,entity_kinds,industries,licence_only,service_minutes,source\n"


def test_an_officer_imports_their_own_items_and_a_file_with_another_departments_row_is_refused_whole(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    own = (
        HEADER
        + "health-90,health,游泳场所卫生监督检查,《公共场所卫生管理条例》,一般,company;individual,生活服务,否,30,本局自定\n"
    )
    h = headers["health-officer"] | {"content-type": "text/csv"}
    first = client.post("/v1/inspection-items/import", content=own.encode(), headers=h)
    assert first.status_code == 200, first.text
    assert ImportOut.model_validate(first.json()).created == 1
    again = client.post("/v1/inspection-items/import", content=own.encode(), headers=h).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1)
    mixed = own + "market_supervision-90,market_supervision,抽查,依据,一般,company,,否,30,自定\n"
    refused = client.post("/v1/inspection-items/import", content=mixed.encode("gb18030"), headers=h)
    assert refused.status_code == 422
    body = refused.json()
    assert body["reason"] == "invalid_directory"
    assert body["problems"] == [
        {
            "line": 3,
            "column": "department_code",
            "detail": "只能导入本部门（health）的数据，此行属于“market_supervision”",
        }
    ]
    items = client.get("/v1/inspection-items", params={"department": "market_supervision"}, headers=h).json()
    assert "market_supervision-90" not in {i["code"] for i in items["items"]}
    leader = client.post("/v1/inspection-items/import", content=own.encode(), headers=headers["leader"])
    assert leader.status_code == 403


def test_an_import_over_five_megabytes_or_empty_is_refused(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["centre"] | {"content-type": "text/csv"}
    big = client.post("/v1/inspectors/import", content=b"x" * (5 * 1024 * 1024 + 1), headers=h)
    assert big.status_code == 413
    empty = client.post("/v1/inspectors/import", content=b"", headers=h)
    assert empty.status_code == 422 and empty.json()["reason"] == "invalid_directory"


def test_an_officer_round_trips_their_inspector_directory_and_marks_one_as_left(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["officer"]
    exported = client.get("/v1/inspectors.csv", headers=h).content
    same = client.post("/v1/inspectors/import", content=exported, params={"replace": True}, headers=h).json()
    assert same["created"] == same["updated"] == same["deactivated"] == 0 and same["unchanged"] > 100
    lines = exported.decode("utf-8-sig").splitlines()
    left = lines[:1] + lines[2:]  # the first inspector is gone from the department's file
    changed = client.post(
        "/v1/inspectors/import", content="\n".join(left).encode(), params={"replace": True}, headers=h
    )
    assert changed.json()["deactivated"] == 1
    code = lines[1].split(",")[0]
    listed = {i["code"]: i["active"] for i in client.get("/v1/inspectors", headers=h).json()["items"]}
    assert listed[code] is False


def test_a_formula_in_an_item_or_entity_name_is_exported_behind_an_apostrophe(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], db: DatabaseSettings
) -> None:
    """Names typed as =cmd|calc!A1 must not run in the spreadsheet that opens an export; they import back as typed."""
    h = headers["centre"]
    row = "health-95,health,=cmd|calc!A1,+依据,一般,company,,否,30,@来源\n"
    imported = client.post("/v1/inspection-items/import", content=(HEADER + row).encode(), headers=h)
    assert imported.status_code == 200, imported.text
    exported = client.get("/v1/inspection-items.csv", params={"department": "health"}, headers=h)
    line = next(x for x in exported.content.decode("utf-8-sig").splitlines() if x.startswith("health-95,"))
    assert line == "health-95,health,'=cmd|calc!A1,'+依据,一般,company,,否,30,'@来源"
    again = client.post("/v1/inspection-items/import", content=exported.content, headers=h).json()
    assert again["created"] == again["updated"] == 0  # the export imports back unchanged
    names = {i["code"]: i["name"] for i in client.get("/v1/inspection-items", headers=h).json()["items"]}
    assert names["health-95"] == "=cmd|calc!A1"
    engine = make_engine(db)
    with engine.begin() as conn:
        uscc = conn.execute(
            text(
                "UPDATE entity SET name = '=HYPERLINK(\"http://x\")' WHERE uscc = (SELECT uscc FROM entity "
                "WHERE status = 'open' AND town_code = :t AND kind = 'company' ORDER BY uscc LIMIT 1) RETURNING uscc"
            ),
            {"t": world["home"]},
        ).scalar_one()
    engine.dispose()
    targets = client.get(
        "/v1/inspection-targets.csv",
        params={"items": "market_supervision-01", "town": world["home"]},
        headers=h,
    ).content.decode("utf-8-sig")
    cells = next(csv.reader([x for x in targets.splitlines() if uscc in x]))
    assert cells[2] == '\'=HYPERLINK("http://x")'
    inspectors = client.get("/v1/inspectors.csv", headers=h).content.decode("utf-8-sig")
    assert not any(c.startswith(("=", "+", "-", "@")) for r in csv.reader(inspectors.splitlines()) for c in r)


GBK_ROW = (
    "health-91,health,游泳场所卫生监督检查,《公共场所卫生管理条例》,一般,company;individual,生活服务,否,30,本局自定\n"
)


@pytest.mark.parametrize(
    "content_type",
    ["text/csv", "text/csv; charset=gbk", "text/csv; charset=GB18030", "application/octet-stream", "form upload"],
)
def test_a_gbk_file_from_an_older_chinese_excel_imports_like_the_command_line(
    client: TestClient, headers: dict[str, dict[str, str]], content_type: str
) -> None:
    """A GBK (GB18030) upload is read as the CLI reads it, sent as the body or as a browser's or curl -F's form."""
    data = (HEADER + GBK_ROW).encode("gbk")
    h = headers["health-officer"]
    if content_type == "form upload":
        imported = client.post("/v1/inspection-items/import", files={"file": ("清单.csv", data, "text/csv")}, headers=h)
    else:
        imported = client.post("/v1/inspection-items/import", content=data, headers=h | {"content-type": content_type})
    assert imported.status_code == 200, imported.text
    assert ImportOut.model_validate(imported.json()).rows == 1
    names = {i["code"]: i["name"] for i in client.get("/v1/inspection-items", headers=h).json()["items"]}
    assert names["health-91"] == "游泳场所卫生监督检查"


def test_a_declared_gbk_charset_is_honoured_and_only_undecodable_bytes_are_an_encoding_error(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    # "涓枃" in GBK is byte for byte "中文" in UTF-8: only the declared charset tells them apart.
    row = "health-93,health,涓枃,涓枃,0,company,,0,30,涓枃\n"
    h = headers["health-officer"]
    declared = client.post(
        "/v1/inspection-items/import",
        content=(HEADER + row).encode("gbk"),
        headers=h | {"content-type": "text/csv; charset=GBK"},
    )
    assert declared.status_code == 200, declared.text
    names = {i["code"]: i["name"] for i in client.get("/v1/inspection-items", headers=h).json()["items"]}
    assert names["health-93"] == "涓枃"
    for content_type in ("text/csv", "text/csv; charset=gbk"):
        garbage = client.post(
            "/v1/inspection-items/import",
            content=HEADER.encode() + b"health-94,\xff\xff\x81,x\n",
            headers=h | {"content-type": content_type},
        )
        assert garbage.status_code == 422 and garbage.json()["reason"] == "invalid_directory", garbage.text
        assert "编码" in garbage.json()["detail"]
    empty = client.post("/v1/inspection-items/import", files={"other": ("a.txt", b"", "text/plain")}, headers=h)
    assert empty.status_code == 422 and empty.json()["reason"] == "invalid_directory"
