"""Issue 17, part C: the outside tester's attacks on the edges replayed over HTTP against the app, each refused.

Finding 6: no security headers on any answer. Finding 7: cookie-authenticated POSTs (photo upload, batch geocode)
accepted from a foreign Origin, and login CSRF. Finding 9 (jobs and files): batch jobs owned by a display name (two
keys of the same name shared results), files kept forever at mode 0644, job errors showing server paths. Finding 11:
a NUL byte in a text field gave a 500 (token, login, forms, JSON, multipart, CSV uploads).
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.edges import API_CSP, HSTS, PAGE_CSP
from api.files import cleanup_files
from api.main import create_app
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import PASSWORD, api_key_headers, bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY, make_app, served, server_settings

pytestmark = pytest.mark.db

CONTROL = ("\x00", "\x1b")
SAME_ORIGIN = "http://testserver"
FOREIGN_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def engine(db: DatabaseSettings) -> Iterator[Engine]:
    made = make_engine(db)
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edges-state")


@pytest.fixture(scope="module")
def client(db: DatabaseSettings, state_dir: Path) -> Iterator[TestClient]:
    with TestClient(make_app(db, state_dir)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def world(engine: Engine, client: TestClient) -> dict[str, Any]:
    """The command centre, two API keys that share one display name, and another key."""
    with engine.begin() as conn:
        make_users(conn, {"edge_centre": ("command_centre", None)})
        twin_a = make_api_key(conn, SECRET_KEY, "地图检索")
        twin_b = make_api_key(conn, SECRET_KEY, "地图检索")
        other = make_api_key(conn, SECRET_KEY, "其他系统")
    return {"centre": bearer(client, "edge_centre"), "twin_a": twin_a, "twin_b": twin_b, "other": other}


def session_client(db: DatabaseSettings, state_dir: Path, username: str) -> TestClient:
    """A TestClient of its own that signed in through the login form (the session cookie set)."""
    browser = TestClient(make_app(db, state_dir), follow_redirects=False)
    browser.__enter__()
    signed_in = browser.post(
        "/login", data={"username": username, "password": PASSWORD}, headers={"Origin": SAME_ORIGIN}
    )
    assert signed_in.status_code == 303, signed_in.text
    assert "gridgov_session" in browser.cookies
    return browser


@pytest.fixture(scope="module")
def browser(db: DatabaseSettings, state_dir: Path, world: dict[str, Any]) -> Iterator[TestClient]:
    made = session_client(db, state_dir, "edge_centre")
    yield made
    made.__exit__(None, None, None)


# ----------------------------------------------------------------------------------------- finding 6: headers


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled with plausible values."""
    app = create_app()
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        methods = set(getattr(context, "methods", None) or ())  # mounts (static files) have none: tested apart
        path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: _value(m.group(1)), context.path or "/")
        found.update((method, path) for method in methods - {"HEAD"})
    assert len(found) > 100, "the walk must see the included routers' routes"
    # The live stream never ends in the in-process client: it is checked over a real connection below. Revoking
    # one's own tokens would sign the shared command-centre credential out for the tests after this one: its
    # headers are checked without a credential (its 401) in the next test.
    return sorted(found - {("GET", "/v1/live"), ("POST", "/v1/auth/revoke")})


def _value(name: str) -> str:
    if name in ("z", "x", "y") or name.endswith("_id") or name in ("id", "year", "version"):
        return "1"
    if name == "fmt":
        return "json"
    return "441900"


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] in ("strict-origin-when-cross-origin", "same-origin")
    assert headers["x-frame-options"] == "DENY"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "camera=()" in headers["permissions-policy"]
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    if headers.get("content-type", "").startswith("text/html") and "attachment" not in headers.get(
        "content-disposition", ""
    ):
        assert csp == PAGE_CSP or csp.startswith("default-src 'none'"), csp
    elif not headers.get("content-type", "").startswith("text/html"):
        assert csp == API_CSP or csp.startswith("default-src 'none'"), csp
    assert "strict-transport-security" not in headers  # plain HTTP: never HSTS


@pytest.mark.parametrize(("method", "path"), _routes())
def test_finding_6_every_route_answers_with_the_security_headers(
    client: TestClient, world: dict[str, Any], method: str, path: str
) -> None:
    response = client.request(method, path, headers=world["centre"])
    assert_security_headers(response)


def test_finding_6_refusals_404s_static_files_and_pages_carry_the_headers_too(client: TestClient) -> None:
    answers = [
        client.get("/no/such/page"),
        client.get("/static/favicon.svg"),
        client.get("/static/vendor/swagger-ui-dist/swagger-ui.css"),
        client.get("/v1/geocode", params={"q": "长安\x00镇"}),  # the InputGuard's refusal
        client.get("/v1/tasks"),  # 401
        client.post("/v1/auth/revoke"),  # 401: left out of the walk of every route
        client.get("/login"),
        client.get("/docs"),
    ]
    for answer in answers:
        assert_security_headers(answer)
    assert answers[-2].headers["content-security-policy"] == PAGE_CSP
    assert answers[-1].headers["content-security-policy"] == PAGE_CSP
    # /docs starts Swagger UI from a static file: no inline script for the CSP to refuse.
    assert re.search(r"<script>(?!</script>)", answers[-1].text) is None
    assert "/static/docs/swagger-init.js" in answers[-1].text


def test_finding_6_hsts_only_over_https(client: TestClient, db: DatabaseSettings, state_dir: Path) -> None:
    assert "strict-transport-security" not in client.get("/health").headers
    with TestClient(make_app(db, state_dir), base_url="https://testserver") as secure:
        assert secure.get("/health").headers["strict-transport-security"] == HSTS


def test_finding_6_hsts_behind_a_trusted_proxy_that_says_https_and_the_live_stream_headers(
    db: DatabaseSettings, state_dir: Path, world: dict[str, Any]
) -> None:
    """uvicorn takes the scheme from X-Forwarded-Proto of a trusted proxy (loopback by default)."""
    app = create_app(db_settings=db, server_settings=server_settings(state_dir))
    with served(app, name="uvicorn-edges") as url:
        plain = httpx.get(f"{url}/health")
        proxied = httpx.get(f"{url}/health", headers={"X-Forwarded-Proto": "https"})
        with httpx.stream("GET", f"{url}/v1/live", headers=world["centre"], timeout=30) as stream:
            assert stream.status_code == 200
            assert_security_headers(stream)
    assert "strict-transport-security" not in plain.headers
    assert proxied.headers["strict-transport-security"] == HSTS


# ------------------------------------------------------------------------------------------- finding 7: CSRF


def _not_csrf(response: httpx.Response) -> bool:
    return not (response.status_code == 403 and "csrf" in response.text)


def test_finding_7_cookie_authenticated_changes_from_another_site_are_refused(
    browser: TestClient, world: dict[str, Any]
) -> None:
    photo = {"file": ("现场.jpg", b"\xff\xd8\xff\xe0 not really", "image/jpeg")}
    batch = {"file": ("a.csv", "address\n长安镇振隆路27号\n".encode(), "text/csv")}
    attacks: list[tuple[str, dict[str, Any]]] = [
        ("/v1/tasks/1/photos", {"files": photo}),
        ("/v1/clues/1/photos", {"files": photo}),
        ("/v1/geocode/batch", {"files": batch, "data": {"column": "address"}}),
        ("/v1/tasks/1/transitions", {"json": {"action": "close", "version": 1}}),
    ]
    for foreign in ({"Origin": FOREIGN_ORIGIN}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        for path, body in attacks:
            refused = browser.post(path, headers=foreign, **body)
            assert refused.status_code == 403, (path, foreign, refused.text)
            assert refused.json()["error"] == "csrf"
            assert_security_headers(refused)
    # The pages' own fetches (same origin, or no header at all) go through to the route.
    for own in ({"Origin": SAME_ORIGIN}, {"Sec-Fetch-Site": "same-origin"}, {}):
        for path, body in attacks:
            assert _not_csrf(browser.post(path, headers=own, **body)), (path, own)
    # No jobs were made by the refused uploads, one per allowed one.
    assert browser.get("/v1/geocode/batch/0").status_code == 404


def test_finding_7_login_csrf_is_refused(db: DatabaseSettings, state_dir: Path, world: dict[str, Any]) -> None:
    with TestClient(make_app(db, state_dir), follow_redirects=False) as anonymous:
        form = {"username": "edge_centre", "password": PASSWORD}
        for foreign in ({"Origin": FOREIGN_ORIGIN}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            refused = anonymous.post("/login", data=form, headers=foreign)
            assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
            assert "请求被拒绝" in refused.text and "gridgov_session" not in refused.headers.get("set-cookie", "")
        assert anonymous.post("/logout", headers={"Origin": FOREIGN_ORIGIN}).status_code == 403
        signed_in = anonymous.post(
            "/login", data=form, headers={"Origin": SAME_ORIGIN, "Sec-Fetch-Site": "same-origin"}
        )
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie


def test_finding_7_bearer_and_api_key_requests_are_not_cookie_bound(client: TestClient, world: dict[str, Any]) -> None:
    batch = {"file": ("a.csv", "address\n长安镇振隆路27号\n".encode(), "text/csv")}
    by_key = client.post(
        "/v1/geocode/batch", files=batch, headers={**api_key_headers(world["other"]), "Origin": FOREIGN_ORIGIN}
    )
    assert by_key.status_code == 202, by_key.text
    by_token = client.post(
        "/v1/tasks/999999999/transitions", json={}, headers={**world["centre"], "Origin": FOREIGN_ORIGIN}
    )
    assert _not_csrf(by_token)


def test_finding_7_session_cookie_is_secure_over_https(
    db: DatabaseSettings, state_dir: Path, world: dict[str, Any]
) -> None:
    with TestClient(make_app(db, state_dir), base_url="https://testserver", follow_redirects=False) as secure:
        signed_in = secure.post(
            "/login", data={"username": "edge_centre", "password": PASSWORD}, headers={"Origin": "https://testserver"}
        )
    assert signed_in.status_code == 303
    assert "secure" in signed_in.headers["set-cookie"].lower()


# ---------------------------------------------------------------------------- finding 9: batch jobs and files


def upload(client: TestClient, headers: dict[str, str], content: bytes, column: str = "address") -> dict[str, Any]:
    response = client.post(
        "/v1/geocode/batch", headers=headers, files={"file": ("in.csv", content, "text/csv")}, data={"column": column}
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def wait(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(600):
        status: dict[str, Any] = client.get(f"/v1/geocode/batch/{job_id}", headers=headers).json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    pytest.fail(f"batch job {job_id} did not finish")


def test_finding_9_two_keys_of_the_same_name_do_not_share_jobs(client: TestClient, world: dict[str, Any]) -> None:
    mine, twin = api_key_headers(world["twin_a"]), api_key_headers(world["twin_b"])
    job = upload(client, mine, "address\n长安镇振隆路27号\n".encode())
    assert wait(client, mine, job["id"])["status"] == "done"
    assert client.get(f"/v1/geocode/batch/{job['id']}/result", headers=mine).status_code == 200
    for path in (f"/v1/geocode/batch/{job['id']}", f"/v1/geocode/batch/{job['id']}/result"):
        assert client.get(path, headers=twin).status_code == 404
    assert client.get(f"/v1/geocode/batch/{job['id']}", headers=world["centre"]).status_code in (403, 404)


def test_finding_9_files_are_private_expire_and_are_cleaned_up(
    client: TestClient, world: dict[str, Any], engine: Engine, state_dir: Path
) -> None:
    mine = api_key_headers(world["other"])
    job = upload(client, mine, "address\n长安镇振隆路27号\n".encode())
    assert wait(client, mine, job["id"])["status"] == "done"
    folder = state_dir / "batch"
    files = [folder / f"{job['id']}.in.csv", folder / f"{job['id']}.out.csv"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with engine.connect() as conn:
        owner = conn.execute(text("SELECT owner FROM geocode_batch_job WHERE id = :id"), {"id": job["id"]}).scalar()
    assert owner is not None and owner.startswith("key#")
    later = clock.now() + timedelta(days=8)
    with clock.using(clock.FixedClock(later)):
        gone = client.get(f"/v1/geocode/batch/{job['id']}/result", headers=mine)
        assert gone.status_code == 410 and "expired" in gone.json()["detail"]
        assert client.get(f"/v1/geocode/batch/{job['id']}", headers=mine).status_code == 410
    settings = client.app.state.server_settings  # type: ignore[attr-defined]
    with engine.begin() as conn:
        result = cleanup_files(conn, settings, later)
    assert int(result["jobs_purged"]) >= 1  # type: ignore[call-overload]
    assert not any(path.exists() for path in files)
    with engine.begin() as conn:
        again = cleanup_files(conn, settings, later)
    assert again["jobs_purged"] == 0
    assert client.get(f"/v1/geocode/batch/{job['id']}", headers=mine).status_code == 410


def test_finding_9_photos_are_private_files(client: TestClient, state_dir: Path) -> None:
    from supervision.clues import store_photo

    photos = state_dir / "photos"
    stored = store_photo(photos, "ab" + "0" * 62, "image/png", b"png bytes")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(photos.stat().st_mode) == 0o700


def test_finding_9_a_failing_job_shows_no_server_path(
    client: TestClient, world: dict[str, Any], state_dir: Path
) -> None:
    mine = api_key_headers(world["other"])
    failures = [
        upload(client, mine, "地址\n长安镇振隆路27号\n".encode()),  # no such column
        upload(client, mine, b""),  # empty
        upload(client, mine, b"address\n\xff\xfe\xfa broken\n"),  # not UTF-8
    ]
    for job in failures:
        status = wait(client, mine, job["id"])
        assert status["status"] == "failed" and status["error"]
        assert str(state_dir) not in status["error"] and "/" not in status["error"], status["error"]
        assert "input file" in status["error"]


# ---------------------------------------------------------------------------------- finding 11: NUL and ESC


def _sample(schema: dict[str, Any], components: dict[str, Any], poison: str, depth: int = 0) -> Any:
    """A value for a JSON schema with every string field holding `poison`."""
    if "$ref" in schema:
        return _sample(components[schema["$ref"].rsplit("/", 1)[-1]], components, poison, depth)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _sample(options[0], components, poison, depth)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {name: _sample(sub, components, poison, depth + 1) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), components, poison, depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return f"长安镇{poison}振隆路"


def _json_operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{([^}]+)\}", lambda m: _value(m.group(1)), path)
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                if "json" in media_type:
                    found.append((method.upper(), concrete, {"schema": body["schema"], "components": components}))
    return found


def assert_refused_cleanly(response: httpx.Response, what: object) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert isinstance(body, list) or "error" in body, (what, body)


@pytest.mark.parametrize("poison", CONTROL, ids=["NUL", "ESC"])
def test_finding_11_control_characters_in_every_json_body_get_a_4xx(
    client: TestClient, world: dict[str, Any], poison: str
) -> None:
    operations = _json_operations(client)
    assert len(operations) >= 20
    for method, path, schema in operations:
        body = _sample(schema["schema"], schema["components"], poison)
        answer = client.request(method, path, json=body, headers=world["centre"])
        assert_refused_cleanly(answer, (method, path))
    # And the refusal is the guard's, naming where the character is.
    refused = client.post("/v1/clues", json={"description": f"油烟{poison}扰民"}, headers=world["centre"])
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"
    assert "/description" in refused.json()["detail"]


@pytest.mark.parametrize("poison", CONTROL, ids=["NUL", "ESC"])
def test_finding_11_control_characters_in_forms_get_a_4xx(
    client: TestClient, db: DatabaseSettings, state_dir: Path, world: dict[str, Any], poison: str
) -> None:
    token = [
        {"username": f"edge{poison}centre", "password": PASSWORD},
        {"username": "edge_centre", "password": f"x{poison}y"},
        {"username": "edge_centre", "password": PASSWORD, "scope": f"a{poison}"},
    ]
    for form in token:
        answer = client.post("/v1/auth/token", data=form)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text
    with TestClient(make_app(db, state_dir), follow_redirects=False) as anonymous:
        for form in ({"username": f"a{poison}", "password": "x"}, {"username": "a", "password": f"x{poison}"},
                     {"username": "a", "password": "x", "next": f"/{poison}"}):  # fmt: skip
            answer = anonymous.post("/login", data=form, headers={"Origin": SAME_ORIGIN})
            assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text
    # Open311 posts, urlencoded and multipart: its own error format, never a 500.
    hotline = {"api_key": world["other"], "service_code": "001", "description": f"噪音{poison}扰民"}
    for fmt in ("json", "xml"):
        answer = client.post(f"/open311/v2/requests.{fmt}", data=hotline)
        assert answer.status_code == 400, answer.text
        multipart = client.post(
            f"/open311/v2/requests.{fmt}", data=hotline, files={"media": ("a.txt", b"x", "text/plain")}
        )
        assert multipart.status_code == 400, multipart.text
    # Multipart form fields: the batch job's column, a photo's file name.
    batch = client.post(
        "/v1/geocode/batch",
        headers=api_key_headers(world["other"]),
        files={"file": ("in.csv", b"address\nx\n", "text/csv")},
        data={"column": f"add{poison}ress"},
    )
    assert batch.status_code == 422 and batch.json()["error"] == "invalid_request"
    photo = client.post(
        "/v1/tasks/999999999/photos",
        headers=world["centre"],
        files={"file": (f"现场{poison}.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert_refused_cleanly(photo, "photo")
    # CSV imports of the inspection directory: as a body and as a form upload.
    table = f"事项编码,事项名称\nA{poison},B\n".encode()
    for path in ("/v1/inspection-items/import", "/v1/inspectors/import"):
        raw = client.post(path, content=table, headers={**world["centre"], "Content-Type": "text/csv"})
        assert_refused_cleanly(raw, path)
        form = client.post(path, files={"file": ("名录.csv", table, "text/csv")}, headers=world["centre"])
        assert_refused_cleanly(form, path)


@pytest.mark.parametrize("poison", CONTROL, ids=["NUL", "ESC"])
def test_finding_11_control_characters_in_query_path_and_headers_get_a_4xx(
    client: TestClient, world: dict[str, Any], poison: str
) -> None:
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{([^}]+)\}", lambda m: _value(m.group(1)), path)
        for method, operation in item.items():
            params = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            if params:
                answer = client.request(
                    method.upper(), concrete, params={p: f"a{poison}b" for p in params}, headers=world["centre"]
                )
                assert answer.status_code in (400, 422), (method, path, answer.text[:200])
                assert_refused_cleanly(answer, (method, path))
            if "{" in path:
                poisoned = re.sub(r"\{([^}]+)\}", quote(f"a{poison}b"), path)
                answer = client.request(method.upper(), poisoned, headers=world["centre"])
                assert answer.status_code in (400, 422), (method, poisoned, answer.status_code, answer.text[:200])
    for headers in ({"X-API-Key": f"gg_{poison}x"}, {"Authorization": f"Bearer a{poison}b"}):
        try:
            answer = client.get("/v1/geocode", params={"q": "长安镇"}, headers=headers)
        except (httpx.LocalProtocolError, ValueError):
            continue  # the client itself will not send it: nor will a server see it
        assert answer.status_code == 401, answer.text


def test_finding_11_a_nul_in_a_csv_row_sends_that_row_to_the_rejects(client: TestClient, world: dict[str, Any]) -> None:
    mine = api_key_headers(world["other"])
    content = "uscc,address\nA,长安镇振隆路27号\nB,长安镇\x00振隆路\nC\x00,长安镇振隆路27号\nD,长安镇振隆路27号\n"
    job = upload(client, mine, content.encode())
    status = wait(client, mine, job["id"])
    assert status["status"] == "done", status
    assert status["rows_done"] == status["rows_total"] == 4
    out = list(csv.DictReader(io.StringIO(client.get(status["result_url"], headers=mine).text)))
    assert [row["uscc"] for row in out] == ["A", "B", "C\x00", "D"]  # nothing lost, the NUL included
    assert [row["status"] for row in out][1:3] == ["invalid", "invalid"]
    assert all("control" in row["reason"] for row in out[1:3])
    assert out[0]["status"] != "invalid" and out[3]["status"] != "invalid"


def test_finding_11_json_refusal_names_the_field_not_only_a_500(client: TestClient, world: dict[str, Any]) -> None:
    raw = json.dumps({"q": "x", "nested": [{"k": "a\u0000"}]})
    answer = client.post(
        "/v1/geocode/batch/0", content=raw, headers={**world["centre"], "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and "/nested/0/k" in answer.json()["detail"]


# ------------------------------------------------------------------- the outside re-test (fix round B): jobs


@pytest.mark.parametrize("poison", CONTROL, ids=["NUL", "ESC"])
def test_retest_1_a_control_character_in_the_csv_header_is_refused_at_once(
    client: TestClient, world: dict[str, Any], engine: Engine, poison: str
) -> None:
    """The attack: `addr\\x00ess` as the header left the job `running` forever (its error could not be stored)."""
    mine = api_key_headers(world["other"])
    answer = client.post(
        "/v1/geocode/batch",
        headers=mine,
        files={"file": ("in.csv", f"addr{poison}ess\n东城\n".encode(), "text/csv")},
        data={"column": "address"},
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and "header" in body["detail"] and "column 1" in body["detail"]
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT status, error FROM geocode_batch_job WHERE owner = :o AND error LIKE '%header%' "
                "ORDER BY created_at DESC, id LIMIT 1"
            ),
            {"o": _owner(client, engine, mine)},
        ).one()
    assert stored.status == "failed" and poison not in stored.error and "control character" in stored.error


def _owner(client: TestClient, engine: Engine, headers: dict[str, str]) -> str:
    """The owner reference the batch store records for these credentials (read from a job of theirs)."""
    job = upload(client, headers, "address\n长安镇振隆路27号\n".encode())
    with engine.connect() as conn:
        owner: str = conn.execute(
            text("SELECT owner FROM geocode_batch_job WHERE id = :id"), {"id": job["id"]}
        ).scalar_one()
    return owner


def test_retest_1_a_job_error_is_stored_with_its_control_characters_as_text(engine: Engine) -> None:
    """Whatever a failure's message holds, it is stored (PostgreSQL text cannot hold a NUL) and printable."""
    from address_library import batch_jobs

    with engine.begin() as conn:
        batch_jobs.create_job(
            conn, job_id="e" * 32, owner="key#0", address_column="address", now=clock.now(),
            retention=timedelta(days=1),
        )  # fmt: skip
        batch_jobs.finish_job(conn, "e" * 32, status="failed", now=clock.now(), error="no column 'a\x00b\x1b'")
        job = batch_jobs.get_job(conn, "e" * 32)
    assert job is not None and job.status == "failed"
    assert job.error == "no column 'a\\x00b\\x1b'"


def test_retest_1_a_job_left_running_by_a_dead_server_fails_as_interrupted(
    client: TestClient, world: dict[str, Any], engine: Engine, db: DatabaseSettings
) -> None:
    """A job row `running` whose server process died (no one holds its run lock) answers failed, not running."""
    from address_library import batch_jobs
    from gis.settings import plain_libpq_url

    mine = api_key_headers(world["other"])
    owner = _owner(client, engine, mine)
    with engine.begin() as conn:
        for job_id in ("a" * 32, "b" * 32):
            batch_jobs.create_job(
                conn, job_id=job_id, owner=owner, address_column="address", now=clock.now(),
                retention=timedelta(days=7),
            )  # fmt: skip
            batch_jobs.mark_running(conn, job_id, 10)
    # b's runner is alive (it holds the lock, as the job thread does): it stays running.
    lock = batch_jobs.hold_run_lock(plain_libpq_url(engine.url.render_as_string(hide_password=False)), "b" * 32)
    try:
        dead = client.get(f"/v1/geocode/batch/{'a' * 32}", headers=mine).json()
        assert dead["status"] == "failed" and dead["error"] == batch_jobs.INTERRUPTED
        alive = client.get(f"/v1/geocode/batch/{'b' * 32}", headers=mine).json()
        assert alive["status"] == "running"
    finally:
        lock.close()  # the process holding it died
    assert client.get(f"/v1/geocode/batch/{'b' * 32}", headers=mine).json()["status"] == "failed"


def test_retest_2_a_200_kb_field_fails_the_job_naming_the_line_and_the_limit(
    client: TestClient, world: dict[str, Any]
) -> None:
    mine = api_key_headers(world["other"])
    job = upload(client, mine, ("address\n长安镇振隆路27号\n" + "x" * 200_000 + "\n").encode())
    status = wait(client, mine, job["id"])
    assert status["status"] == "failed", status
    assert "line 3" in status["error"] and "131,072" in status["error"], status["error"]
    assert "internal error" not in status["error"]


# -------------------------------------------------------------- the outside re-test: every multipart text field


@pytest.mark.parametrize("poison", CONTROL, ids=["NUL", "ESC"])
def test_retest_3_a_control_character_in_any_multipart_text_field_is_refused(
    client: TestClient, world: dict[str, Any], poison: str
) -> None:
    """Text fields the routes do not declare (or whose names) hold a control character: 422 on every multipart
    route, Open311's 400 under /open311; file parts are not text fields (a NUL in a file is the file's business)."""
    centre, key = world["centre"], api_key_headers(world["other"])
    fields = {"note": f"a{poison}b"}
    posts = [
        ("/v1/geocode/batch", key, {"file": ("in.csv", b"address\nx\n", "text/csv")}, {"column": "address"}),
        ("/v1/clues/999999999/photos", centre, {"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {}),
        ("/v1/tasks/999999999/photos", centre, {"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, {}),
        ("/v1/inspectors/import", centre, {"file": ("名录.csv", "姓名\n张三\n".encode(), "text/csv")}, {}),
    ]
    for path, headers, files, data in posts:
        answer = client.post(path, headers=headers, files=files, data={**data, **fields})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"] == "invalid_request" and "control character" in answer.json()["detail"]
        # A field NAME holding one (httpx escapes names, so the body is written by hand, as an attacker would).
        boundary = "gridgov-retest"
        raw = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="no{poison}te"\r\n\r\nab\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\naddress\nx\n\r\n--{boundary}--\r\n"
        ).encode()
        named = client.post(
            path, content=raw, headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        assert named.status_code == 422 and "field name" in named.json()["detail"], (path, named.text)
    hotline = {"api_key": world["other"], "service_code": "001", "description": "噪音扰民", **fields}
    for fmt in ("json", "xml"):
        answer = client.post(
            f"/open311/v2/requests.{fmt}", data=hotline, files={"media": ("a.txt", b"x\x00", "text/plain")}
        )
        assert answer.status_code == 400, answer.text
        assert "note holds a control character" in answer.text
    # A file part holding a NUL is not a text field: the batch upload of a NUL row is still accepted.
    accepted = client.post(
        "/v1/geocode/batch",
        headers=key,
        files={"file": ("in.csv", b"address\n\x00\n", "text/csv")},
        data={"column": "address", "note": "tab\tand\nnewline are text"},
    )
    assert accepted.status_code == 202, accepted.text
    assert wait(client, key, accepted.json()["id"])["status"] == "done"
