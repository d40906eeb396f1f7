"""Every endpoint the dashboard reads declares its answer's shape, and real answers match what is declared."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.auth import service as auth_service
from api.main import create_app
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings
from supervision.uscc import uscc_check_char

pytestmark = pytest.mark.db

SECRET_KEY = "s" * 40
PASSWORD = "correct horse battery staple"

# (method, path, status) of every answer the dashboard reads.
TYPED = [
    ("get", "/v1/tasks", "200"),
    ("get", "/v1/tasks/{task_id}", "200"),
    ("post", "/v1/tasks/{task_id}/transitions", "200"),
    ("get", "/v1/tasks/{task_id}/history", "200"),
    ("get", "/v1/entities/{uscc}/history", "200"),
    ("get", "/v1/workers/{worker_id}/history", "200"),
    ("post", "/v1/workers/{worker_id}/changes", "200"),
    ("post", "/v1/clues", "201"),
    ("get", "/v1/clues", "200"),
    ("get", "/v1/clues/{clue_id}", "200"),
    ("post", "/v1/clues/{clue_id}/photos", "201"),
    ("get", "/v1/stats", "200"),
    ("get", "/v1/departments", "200"),
    ("get", "/v1/review", "200"),
    ("get", "/v1/review/{review_id}/proposal", "200"),
    ("post", "/v1/review/{review_id}/resolve", "200"),
    ("get", "/v1/aliases", "200"),
    ("get", "/v1/aliases/{alias_id}", "200"),
    ("post", "/v1/aliases/{alias_id}/promote", "200"),
    ("post", "/v1/aliases/{alias_id}/withdraw", "200"),
    ("get", "/v1/me", "200"),
    ("post", "/v1/auth/revoke", "200"),
    ("get", "/v1/kpi", "200"),
    ("get", "/v1/kpi/trend", "200"),
    ("get", "/v1/workers", "200"),
    ("get", "/v1/tasks/{task_id}/photos", "200"),
    ("post", "/v1/tasks/{task_id}/photos", "201"),
    ("get", "/v1/workload", "200"),
    ("get", "/v1/staffing/plan", "200"),
    ("post", "/v1/staffing/apply", "200"),
    ("get", "/v1/staffing/batches", "200"),
    ("post", "/v1/grid-versions", "201"),
    ("get", "/v1/grid-versions", "200"),
    ("get", "/v1/grid-versions/{version_id}", "200"),
    ("get", "/v1/grid-versions/{version_id}/comparison", "200"),
    ("post", "/v1/grid-versions/{version_id}/apply", "200"),
    ("post", "/v1/grid-versions/rollback", "200"),
    ("get", "/v1/entities/{uscc}/credit", "200"),
    ("post", "/v1/credit/recompute", "200"),
    ("get", "/v1/inspection-ratios", "200"),
    ("put", "/v1/inspection-ratios", "200"),
    ("get", "/v1/inspection-items", "200"),
    ("post", "/v1/inspection-items/import", "200"),
    ("get", "/v1/inspectors", "200"),
    ("post", "/v1/inspectors/import", "200"),
    ("get", "/v1/inspection-targets", "200"),
    ("post", "/v1/inspection-visits/{visit_id}/results", "201"),
    ("get", "/v1/inspection-visits/{visit_id}", "200"),
    ("post", "/v1/inspection-plans/{plan_id}/publish", "200"),
    ("post", "/v1/inspection-plans/preview", "200"),
    ("post", "/v1/inspection-plans", "201"),
    ("get", "/v1/inspection-plans", "200"),
    ("get", "/v1/inspection-plans/{plan_id}", "200"),
    ("post", "/v1/inspection-plans/{plan_id}/draw", "200"),
    ("post", "/v1/inspection-plans/{plan_id}/cancel", "200"),
    ("post", "/v1/routes/solve", "200"),
    ("get", "/v1/inspection-plans/{plan_id}/routes", "200"),
    ("post", "/v1/inspection-plans/{plan_id}/routes", "200"),
    ("post", "/v1/inspection-plans/{plan_id}/routes/move", "200"),
]


def credit_code(serial: int) -> str:
    first17 = f"91441900MA{serial:07d}"[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def door(db: DatabaseSettings) -> dict[str, Any]:
    """A door of a grid with workers, a command-centre user and a registry's key."""
    engine = make_engine(db)
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT a.full_text, a.town_code, a.community_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat "
                "FROM address a WHERE a.level = 'door' AND a.kind = 'road_door' AND EXISTS "
                "(SELECT 1 FROM worker w WHERE w.grid_code = a.grid_code AND w.active) ORDER BY a.id LIMIT 1"
            )
        ).one()
        names = conn.execute(
            text("SELECT t.name AS town, c.name AS community FROM community c JOIN town t ON t.code = c.town_code "
                 "WHERE c.code = :c"),
            {"c": row.community_code},
        ).one()  # fmt: skip
        auth_service.create_user(conn, username="centre", role="command_centre", scope=None, password=PASSWORD)
        key = auth_service.create_api_key(
            conn, SECRET_KEY, name="registry", rate_limited=False, permissions=["intake"]
        ).key
    engine.dispose()
    return {**row._asdict(), "unplaceable": f"{names.town}{names.community}某某工业区后面铺位", "api_key": key}


@pytest.fixture(scope="module")
def client(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings_ = ServerSettings(secret_key=SECRET_KEY, state_dir=tmp_path_factory.mktemp("state"))
    with TestClient(create_app(db_settings=db, server_settings=settings_)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def centre(client: TestClient, door: dict[str, Any]) -> dict[str, str]:
    """The command centre's headers, after a placed registration, an unplaceable one and a clue."""
    for serial, address in ((1, door["full_text"]), (2, door["unplaceable"])):
        body = {
            "event_id": f"schema-{serial}",
            "kind": "new",
            "uscc": credit_code(9000 + serial),
            "name": "东莞市测试商行",
            "address": address,
            "business_scope": "烟草制品零售",
            "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
        }
        sent = client.post("/v1/registrations", json=body, headers={"X-API-Key": door["api_key"]})
        assert sent.status_code == 201, sent.text
    token = client.post("/v1/auth/token", data={"username": "centre", "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    clue = {"lon": door["lon"], "lat": door["lat"], "industry": "烟草制品零售", "description": "无证卖烟"}
    reported = client.post("/v1/clues", json=clue, headers=headers)
    assert reported.status_code == 201, reported.text
    return headers


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _response_schema(spec: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    return dict(content["schema"])


JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
    "array": list,
    "object": dict,
}


def validate(value: Any, schema: dict[str, Any], components: dict[str, Any], where: str = "$") -> None:
    """A small JSON Schema check (the subset pydantic writes): types, refs, anyOf, enum, properties, items.

    An object with named properties may carry no other key: the schema must declare everything sent.
    """
    schema = _resolve(schema, components)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, components, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches no option: {errors}")
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    kind = schema.get("type")
    if kind is not None:
        expected = JSON_TYPES[kind]
        ok = isinstance(value, expected) and not (kind in ("integer", "number") and isinstance(value, bool))
        assert ok, f"{where}: {value!r} is not {kind}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing {name}"
        extra = schema.get("additionalProperties", not properties)
        for name, item in value.items():
            if name in properties:
                validate(item, properties[name], components, f"{where}.{name}")
            else:
                assert extra is not False, f"{where}: undeclared key {name}"
                if isinstance(extra, dict):
                    validate(item, extra, components, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], components, f"{where}[{i}]")


def test_every_answer_the_dashboard_reads_has_a_named_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    for method, path, status in TYPED:
        schema = _resolve(_response_schema(spec, method, path, status), components)
        assert schema.get("type") == "object", (path, schema)
        properties = schema.get("properties")
        assert properties, f"{method.upper()} {path} answers a bare object: {schema}"
        assert schema.get("additionalProperties") in (None, False), (path, schema)


@pytest.mark.parametrize(("path", "key"), [("/v1/tasks", "tasks"), ("/v1/clues", "clues"), ("/v1/review", "review")])
def test_real_answers_match_their_declared_schema(
    client: TestClient, centre: dict[str, str], path: str, key: str
) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    answer = client.get(path, headers=centre)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["items"], f"no {key} to check"
    validate(body, _response_schema(spec, "get", path, "200"), components)


def test_one_task_its_history_and_the_figures_match_their_declared_schema(
    client: TestClient, centre: dict[str, str]
) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    task = client.get("/v1/tasks", headers=centre).json()["items"][0]
    clue = client.get("/v1/clues", headers=centre).json()["items"][0]
    review = client.get("/v1/review", headers=centre).json()["items"][0]
    for path, template, params in (
        (f"/v1/tasks/{task['id']}", "/v1/tasks/{task_id}", {}),
        (f"/v1/tasks/{task['id']}/history", "/v1/tasks/{task_id}/history", {}),
        (f"/v1/clues/{clue['id']}", "/v1/clues/{clue_id}", {}),
        ("/v1/stats", "/v1/stats", {"level": "town"}),
        ("/v1/departments", "/v1/departments", {}),
        (f"/v1/review/{review['id']}/proposal", "/v1/review/{review_id}/proposal", {}),
    ):
        answer = client.get(path, params=params, headers=centre)
        assert answer.status_code == 200, answer.text
        validate(answer.json(), _response_schema(spec, "get", template, "200"), components)
