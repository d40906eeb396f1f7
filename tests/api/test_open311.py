"""The 12345 hotline sends work orders over Open311 GeoReport v2 and follows them as the workflow moves them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.auth import service
from api.auth.errors import DuplicateKeyName
from api.cli import app as gridgov
from gis.settings import DatabaseSettings
from supervision.calendar import SHANGHAI
from tests.support.accounts import bearer, make_api_key, make_users
from tests.support.city import Door, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

BASE = "/open311/v2"
CALLER_PHONE = "13800138000"
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


@pytest.fixture(scope="module")
def keys(engine: Engine) -> dict[str, str]:
    """Two hotline keys (two hotline systems), a map client's key, and the command centre's account."""
    with engine.begin() as conn:
        make_users(conn, {"o311-centre": ("command_centre", None)})

        def hotline(name: str) -> str:
            return service.create_api_key(conn, SECRET_KEY, name=name, rate_limited=False, role="hotline").key

        return {
            "hotline": hotline("12345热线"),
            "other": hotline("另一热线"),
            "map": make_api_key(conn, SECRET_KEY, "gis", permissions=["gis"]),
        }


@pytest.fixture(scope="module")
def door(engine: Engine) -> Door:
    """A door of the city, where the calls are about."""
    with engine.connect() as conn:
        return a_door_with_workers(conn)


def _post(client: TestClient, key: str | None, fmt: str = "json", **fields: Any) -> Any:
    data = {"api_key": key, **fields} if key else fields
    return client.post(f"{BASE}/requests.{fmt}", data={k: str(v) for k, v in data.items()})


def _one(client: TestClient, key: str, request_id: str) -> dict[str, Any]:
    answer = client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": key})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert len(found) == 1
    return dict(found[0])


def _xml_request(client: TestClient, key: str, request_id: str) -> ET.Element:
    answer = client.get(f"{BASE}/requests/{request_id}.xml", params={"api_key": key})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(answer.content)
    assert root.tag == "service_requests"
    requests = root.findall("request")
    assert len(requests) == 1
    return requests[0]


def test_the_services_are_the_clue_industries_in_json_and_xml(client: TestClient) -> None:
    """services.json lists the 17 clue industries; services.xml has the specification's elements."""
    services = client.get(f"{BASE}/services.json").json()
    assert len(services) == 17
    catering = next(s for s in services if s["service_code"] == "catering")
    assert catering == {
        "service_code": "catering",
        "service_name": "餐饮服务",
        "description": catering["description"],
        "metadata": False,
        "type": "realtime",
        "keywords": catering["keywords"],
        "group": "东莞市市场监督管理局",
    }
    root = ET.fromstring(client.get(f"{BASE}/services.xml").content)
    assert root.tag == "services"
    first = root.findall("service")[0]
    assert [child.tag for child in first] == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]
    assert first.findtext("metadata") == "false"
    definition = client.get(f"{BASE}/services/catering.json")
    assert definition.json() == {"service_code": "catering", "attributes": []}
    assert client.get(f"{BASE}/services/unicorns.json").status_code == 404


def test_a_hotline_request_becomes_a_clue_with_its_task_and_follows_the_workflow(
    client: TestClient, engine: Engine, keys: dict[str, str], door: Door
) -> None:
    """POST requests → a hotline clue routed to its department with a task; open, then closed once the task is."""
    answer = _post(
        client,
        keys["hotline"],
        service_code="catering",
        lat=door.lat,
        long=door.lon,
        description="群众反映该处有无证餐饮",
        first_name="小明",
        last_name="王",
        phone=CALLER_PHONE,
        email="caller@example.cn",
    )
    assert answer.status_code == 201, answer.text
    [made] = answer.json()
    request_id = made["service_request_id"]
    assert "市场监督管理局" in made["service_notice"]

    with engine.connect() as conn:
        clue = conn.execute(
            text(
                "SELECT c.source, c.industry, c.grid_code, c.department_code, c.description, c.reported_by, "
                "t.id AS task_id, t.status, t.due_at FROM clue c JOIN task t ON t.clue_id = c.id WHERE c.id = :id"
            ),
            {"id": int(request_id)},
        ).one()
    assert (clue.source, clue.industry, clue.grid_code) == ("hotline", "餐饮服务", door.grid_code)
    assert clue.department_code == "market_supervision"
    assert clue.reported_by == "key:12345热线"
    assert CALLER_PHONE in clue.description  # kept for the staff who handle it

    shown = _one(client, keys["hotline"], request_id)
    assert set(shown) == REQUEST_FIELDS
    assert shown["status"] == "open"
    assert shown["service_code"] == "catering"
    assert shown["description"] == "群众反映该处有无证餐饮"
    assert shown["agency_responsible"] == "东莞市市场监督管理局"
    assert shown["expected_datetime"] is not None
    assert shown["expected_datetime"][:10] == clue.due_at.astimezone(SHANGHAI).date().isoformat()
    assert abs(shown["lat"] - door.lat) < 1e-6 and abs(shown["long"] - door.lon) < 1e-6
    as_xml = _xml_request(client, keys["hotline"], request_id)
    assert as_xml.findtext("service_request_id") == request_id
    assert as_xml.findtext("status") == "open"
    assert {child.tag for child in as_xml} == REQUEST_FIELDS
    for fmt in ("json", "xml"):
        published = client.get(f"{BASE}/requests/{request_id}.{fmt}", params={"api_key": keys["hotline"]}).text
        assert CALLER_PHONE not in published and "小明" not in published and "caller@example.cn" not in published

    _close_task(client, clue.task_id, door)
    closed = _one(client, keys["hotline"], request_id)
    assert closed["status"] == "closed"
    assert closed["status_notes"] == "已办结"
    assert closed["updated_datetime"] >= closed["requested_datetime"]
    assert _xml_request(client, keys["hotline"], request_id).findtext("status") == "closed"

    listed = client.get(f"{BASE}/requests.json", params={"api_key": keys["hotline"], "status": "closed"}).json()
    assert request_id in [r["service_request_id"] for r in listed]
    still_open = client.get(f"{BASE}/requests.json", params={"api_key": keys["hotline"], "status": "open"}).json()
    assert request_id not in [r["service_request_id"] for r in still_open]


def _close_task(client: TestClient, task_id: int, door: Door) -> None:
    """The command centre moves the task on to closed through the API (assigned → community → closed)."""
    headers = bearer(client, "o311-centre")
    steps = {
        "pushed": {"to": "assigned", "worker_id": door.worker_id},
        "assigned": {"to": "escalated_community"},
        "escalated_community": {"to": "closed", "note": "已核实处理"},
    }
    for _ in range(3):
        task = client.get(f"/v1/tasks/{task_id}", headers=headers).json()
        if task["status"] == "closed":
            break
        move = client.post(
            f"/v1/tasks/{task_id}/transitions",
            json={**steps[task["status"]], "version": task["version"]},
            headers=headers,
        )
        assert move.status_code == 200, move.text
    assert client.get(f"/v1/tasks/{task_id}", headers=headers).json()["status"] == "closed"


def test_an_address_string_is_placed_with_the_geocoder(
    client: TestClient, engine: Engine, keys: dict[str, str], door: Door
) -> None:
    """Without lat/long the address is geocoded, and the clue lands in the door's grid."""
    answer = _post(
        client, keys["hotline"], service_code="tobacco_retail", address_string=door.full_text, description="无证卖烟"
    )
    assert answer.status_code == 201, answer.text
    request_id = answer.json()[0]["service_request_id"]
    with engine.connect() as conn:
        grid, department = conn.execute(
            text("SELECT grid_code, department_code FROM clue WHERE id = :id"), {"id": int(request_id)}
        ).one()
    assert (grid, department) == (door.grid_code, "tobacco")
    assert _one(client, keys["hotline"], request_id)["agency_responsible"] == "东莞市烟草专卖局"


def _clue_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM clue")).scalar_one())


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_request_without_location_or_service_gets_the_specifications_error_and_creates_nothing(
    client: TestClient, engine: Engine, keys: dict[str, str], fmt: str
) -> None:
    """No location → 400, no service code → 400, unknown service → 404, in the specification's error format."""
    before = _clue_count(engine)
    cases = [
        ({"service_code": "catering", "description": "无地址"}, 400, "location required"),
        ({"lat": "22.9", "long": "113.7", "description": "无服务"}, 400, "service_code required"),
        ({"service_code": "unicorns", "lat": "22.9", "long": "113.7", "description": "x"}, 404, "unknown service_code"),
        ({"service_code": "catering", "lat": "north", "long": "113.7", "description": "x"}, 400, "lat"),
        ({"service_code": "catering", "lat": "22.9", "description": "x"}, 400, "lat and long"),
        (
            {"service_code": "catering", "address_string": "x", "description": "长" * 2100, "phone": "1"},
            400,
            "description",
        ),
    ]
    for fields, status, reason in cases:
        answer = _post(client, keys["hotline"], fmt, **fields)
        assert answer.status_code == status, answer.text
        if fmt == "json":
            [error] = answer.json()
            assert error["code"] == status and reason in error["description"]
        else:
            root = ET.fromstring(answer.content)
            assert root.tag == "errors"
            error = root.find("error")
            assert error is not None
            assert error.findtext("code") == str(status) and reason in (error.findtext("description") or "")
    assert _clue_count(engine) == before
    unknown_format = client.get(f"{BASE}/services.csv")
    assert unknown_format.status_code == 404
    assert unknown_format.json()[0]["code"] == 404


def test_api_key_is_the_credential(client: TestClient, engine: Engine, keys: dict[str, str], door: Door) -> None:
    """No key, a wrong key or a key of another role: 403 and nothing created; a hotline key opens nothing else."""
    before = _clue_count(engine)
    fields = {"service_code": "catering", "lat": door.lat, "long": door.lon, "description": "x"}
    for key in (None, "gg_not-a-real-key-0000000000000000", keys["map"]):
        answer = _post(client, key, **fields)
        assert answer.status_code == 403, answer.text
        assert answer.json()[0]["code"] == 403
    assert _clue_count(engine) == before
    assert client.get(f"{BASE}/requests.json").status_code == 403
    hotline = {"X-API-Key": keys["hotline"]}
    assert client.get("/v1/clues", headers=hotline).status_code == 403
    assert client.get("/ogc/collections", headers=hotline).status_code == 403


def test_a_hotline_reads_only_its_own_requests(client: TestClient, keys: dict[str, str], door: Door) -> None:
    """Another hotline's key gets 404 for the first one's request, and its list does not hold it."""
    answer = _post(client, keys["hotline"], service_code="clinic", lat=door.lat, long=door.lon, description="黑诊所")
    request_id = answer.json()[0]["service_request_id"]
    other = client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": keys["other"]})
    assert other.status_code == 404
    assert other.json()[0]["code"] == 404
    assert request_id not in [
        r["service_request_id"] for r in client.get(f"{BASE}/requests.json", params={"api_key": keys["other"]}).json()
    ]
    mine = client.get(f"{BASE}/requests.json", params={"api_key": keys["hotline"], "service_request_id": request_id})
    assert [r["service_request_id"] for r in mine.json()] == [request_id]
    window = client.get(
        f"{BASE}/requests.json",
        params={
            "api_key": keys["hotline"],
            "start_date": "2026-01-01T00:00:00+08:00",
            "end_date": "2026-12-31T00:00:00+08:00",
        },
    )
    assert window.status_code == 400
    assert "90 days" in window.json()[0]["description"]


def test_gridgov_apikey_create_makes_a_hotline_key(db: DatabaseSettings, client: TestClient, door: Door) -> None:
    """`gridgov apikey create --role hotline` prints a key that can submit a request."""
    result = CliRunner().invoke(
        gridgov,
        ["apikey", "create", "--name", "12345 市民热线", "--role", "hotline", "--no-rate-limit"],
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET_KEY},
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    answer = _post(client, key, service_code="lodging", lat=door.lat, long=door.lon, description="无证旅馆")
    assert answer.status_code == 201, answer.text
    scoped = CliRunner().invoke(
        gridgov,
        ["apikey", "create", "--name", "x", "--role", "hotline", "--scope", "441900003000"],
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET_KEY},
    )
    assert scoped.exit_code != 0 and "takes no --scope" in scoped.output


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_control_characters_in_a_request_are_refused_in_the_specifications_format(
    client: TestClient, engine: Engine, keys: dict[str, str], door: Door, fmt: str
) -> None:
    """NUL, a vertical tab or an escape in the description or the caller's name: 400, nothing created, and the
    same connection then submits a good request."""
    before = _clue_count(engine)
    fields = {"service_code": "catering", "lat": door.lat, "long": door.lon, "description": "无证餐饮"}
    for field, value in (
        ("description", "无证\x00餐饮"),
        ("description", "无证\x0b餐饮"),
        ("description", "无证\x1b[2J餐饮"),
        ("first_name", "小\x00明"),
    ):
        answer = _post(client, keys["hotline"], fmt, **{**fields, field: value})
        assert answer.status_code == 400, answer.text
        if fmt == "json":
            [error] = answer.json()
        else:
            found = ET.fromstring(answer.content).find("error")
            assert found is not None
            error = {"code": int(found.findtext("code") or 0), "description": found.findtext("description")}
        assert error["code"] == 400 and f"{field} holds a control character" in error["description"]
    assert _clue_count(engine) == before
    # Tabs and line breaks are text.
    good = _post(client, keys["hotline"], fmt, **{**fields, "description": "无证餐饮\n\t二楼"})
    assert good.status_code == 201, good.text


def test_an_old_row_with_a_control_character_never_breaks_the_xml_answers(
    client: TestClient, engine: Engine, keys: dict[str, str], door: Door
) -> None:
    """A description stored before input was checked: the XML answers replace what XML 1.0 cannot carry."""
    made = _post(client, keys["hotline"], service_code="karaoke_dance", lat=door.lat, long=door.lon, description="x")
    request_id = made.json()[0]["service_request_id"]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE clue SET description = :d WHERE id = :id"),
            {"d": "噪音\x0b扰民\x1b\x01", "id": int(request_id)},
        )
    one = client.get(f"{BASE}/requests/{request_id}.xml", params={"api_key": keys["hotline"]})
    assert one.status_code == 200
    assert ET.fromstring(one.content).findtext("request/description") == "噪音\ufffd扰民\ufffd\ufffd"
    listed = client.get(f"{BASE}/requests.xml", params={"api_key": keys["hotline"]})
    assert listed.status_code == 200
    assert request_id in [r.findtext("service_request_id") for r in ET.fromstring(listed.content)]
    # JSON carries them escaped, as it may.
    assert _one(client, keys["hotline"], request_id)["description"] == "噪音\x0b扰民\x1b\x01"


def test_nul_in_the_path_or_query_and_non_ascii_digits_are_the_specifications_errors(
    client: TestClient, keys: dict[str, str]
) -> None:
    params = {"api_key": keys["hotline"]}
    nul = client.get(f"{BASE}/requests/%00.json", params=params)
    assert nul.status_code == 400 and nul.json()[0]["code"] == 400 and "NUL" in nul.json()[0]["description"]
    nul_xml = client.get(f"{BASE}/requests.xml", params={**params, "service_code": "\x00"})
    assert nul_xml.status_code == 400 and ET.fromstring(nul_xml.content).findtext("error/code") == "400"
    # "²" is a digit to str.isdigit, not to int(): an id is ASCII digits.
    superscript = client.get(f"{BASE}/requests/%C2%B2.json", params=params)
    assert superscript.status_code == 404 and superscript.json()[0]["code"] == 404
    listed = client.get(f"{BASE}/requests.json", params={**params, "service_request_id": "1,²"})
    assert listed.status_code == 400 and "service_request_id" in listed.json()[0]["description"]
    assert client.get(f"{BASE}/requests.json", params=params).status_code == 200


@pytest.mark.parametrize(
    "window", [{"start_date": "9999-12-31T00:00:00Z"}, {"end_date": "0001-01-01T00:00:00Z"}, {"end_date": "1999-06-01"}]
)
def test_a_date_out_of_range_is_a_400(client: TestClient, keys: dict[str, str], window: dict[str, str]) -> None:
    answer = client.get(f"{BASE}/requests.json", params={"api_key": keys["hotline"], **window})
    assert answer.status_code == 400, answer.text
    assert "2000 to 2100" in answer.json()[0]["description"]


def test_one_name_is_one_hotline_operator_and_a_replacement_key_keeps_its_history(
    db: DatabaseSettings, client: TestClient, engine: Engine, door: Door
) -> None:
    """A second active hotline key of a name is refused (it would read the first one's requests); revoked, the name
    goes to a new key, which reads the requests made under it."""
    with engine.begin() as conn:
        first = service.create_api_key(conn, SECRET_KEY, name="东城热线", rate_limited=False, role="hotline")
        with pytest.raises(DuplicateKeyName, match="revoke"):
            service.create_api_key(conn, SECRET_KEY, name="东城热线", rate_limited=False, role="hotline")
    made = _post(client, first.key, service_code="clinic", lat=door.lat, long=door.lon, description="无证诊所")
    request_id = made.json()[0]["service_request_id"]
    env = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET_KEY}
    create = ["apikey", "create", "--name", "东城热线", "--role", "hotline", "--no-rate-limit"]
    refused = CliRunner().invoke(gridgov, create, env=env)
    assert refused.exit_code != 0
    assert "an active API key named '东城热线' exists" in refused.output and first.record.prefix in refused.output
    revoked = CliRunner().invoke(gridgov, ["apikey", "revoke", first.record.prefix], env=env)
    assert revoked.exit_code == 0, revoked.output
    replaced = CliRunner().invoke(gridgov, create, env=env)
    assert replaced.exit_code == 0, replaced.output
    assert _one(client, replaced.stdout.strip(), request_id)["description"] == "无证诊所"
