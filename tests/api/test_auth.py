"""Nobody reads the city without a credential: users sign in, programs send a key, town leaders see their town."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.requests import Request

from api.auth import service
from api.auth.deps import SESSION_COOKIE
from api.auth.errors import InvalidPermission, WeakPassword
from api.auth.logfilter import RedactSecretsFilter
from api.auth.login import LoginBusy, LoginGate
from api.auth.passwords import check_password
from api.auth.revocation import KeyCache
from api.auth.security import issue_access_token, keyed_digest
from api.auth.throttle import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    FIRST_WAIT_S,
    MAX_WAIT_S,
    client_address,
    wait_after,
)
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import PASSWORD, make_api_key, make_users
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

OPEN_V1_PATHS = {"/v1/auth/token"}
BAD_LOGIN = {"error": "unauthorized", "detail": "incorrect username or password"}


@pytest.fixture(scope="module")
def city(db: DatabaseSettings) -> dict[str, Any]:
    """Two towns, and for each an active grid and a community, to probe the town leader's scope with."""
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT ON (g.town_code) g.town_code, g.code, g.community_code, "
                "ST_XMin(e) AS w, ST_YMin(e) AS s, ST_XMax(e) AS e, ST_YMax(e) AS n "
                "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "JOIN LATERAL (SELECT ST_Extent(t.geom) AS e FROM town t WHERE t.code = g.town_code) x ON true "
                "ORDER BY g.town_code, g.code LIMIT 2"
            )
        ).all()
    engine.dispose()
    own, other = rows
    return {
        "town": own.town_code,
        "grid": own.code,
        "community": own.community_code,
        "town_bbox": f"{own.w},{own.s},{own.e},{own.n}",
        "other_town": other.town_code,
        "other_grid": other.code,
    }


@pytest.fixture(scope="module", autouse=True)
def accounts(db: DatabaseSettings, city: dict[str, Any]) -> dict[str, Any]:
    """A command-centre user, a town leader, a dispatcher, a rate-limited key and an exempt one."""
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(
            conn,
            {
                "zhang": ("command_centre", None),
                "leader": ("town_leader", city["town"]),
                "disp": ("dispatcher", city["community"]),
            },
        )
        limited = make_api_key(conn, SECRET_KEY, "limited", rate_limited=True, rate_per_minute=30)
        free = make_api_key(conn, SECRET_KEY, "bench", permissions=["geocode", "gis", "intake"])
    engine.dispose()
    return {"limited_key": limited, "free_key": free}


def _token(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 30 * 60
    return str(body["access_token"])


def _sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post(
        "/login", data={"username": username, "password": password, "next": "/"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    client.cookies.clear()
    return token


def _cookie(session: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={session}"}


def _concrete_path(path: str, city: dict[str, Any]) -> str:
    return re.sub(r"\{code\}", city["grid"], re.sub(r"\{(?!code)[^}]+\}", "1", path))


def test_every_v1_route_refuses_a_request_without_a_credential(client: TestClient, city: dict[str, Any]) -> None:
    # FastAPI 0.165 keeps included routers nested in app.routes; the OpenAPI paths are the public flat list.
    spec = client.get("/openapi.json").json()
    protected = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1") and path not in OPEN_V1_PATHS
        for method in operations
    ]
    assert len(protected) >= 4
    for method, path in protected:
        response = client.request(method, _concrete_path(path, city))
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        # A made-up key or token is refused just the same.
        fake = client.request(method, _concrete_path(path, city), headers={"X-API-Key": "gg_" + "x" * 32})
        assert fake.status_code == 401


def test_health_docs_and_the_login_page_stay_open(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    docs = client.get("/docs")
    assert docs.status_code == 200
    # The API docs work on an offline intranet: Swagger UI comes from this server, never a CDN.
    assert "cdn." not in docs.text and "https://" not in docs.text
    for asset in (
        "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui-dist/swagger-ui.css",
    ):
        assert asset in docs.text
        assert client.get(asset).status_code == 200
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"OAuth2PasswordBearer", "APIKeyHeader", "APIKeyQuery", "APIKeyCookie"} <= set(schemes)
    assert spec["paths"]["/v1/auth/token"]["post"]["summary"] == "获取访问令牌（OAuth2 密码模式）"
    page = client.get("/login")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "用户名" in page.text and "密码" in page.text and 'action="/login"' in page.text
    assert client.get("/static/auth/login.css").status_code == 200


def test_each_kind_of_credential_opens_the_api(
    client: TestClient, accounts: dict[str, Any], city: dict[str, Any]
) -> None:
    path = f"/v1/grids/{city['grid']}"
    key = accounts["free_key"]
    # A key reads the map (its gis permission), not a grid's details.
    assert client.get("/v1/towns", params={"zoom": 8}, headers={"X-API-Key": key}).status_code == 200
    assert client.get("/v1/towns", params={"zoom": 8, "key": key}).status_code == 200
    bearer = _token(client, "zhang")
    assert client.get(path, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    session = _sign_in(client, "zhang")
    assert client.get(path, headers=_cookie(session)).status_code == 200


def test_the_map_page_sends_a_browser_to_sign_in_and_lets_any_credential_in(
    client: TestClient, accounts: dict[str, Any]
) -> None:
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/"
    assert client.get("/", follow_redirects=False).status_code == 401
    assert client.get("/", headers={"X-API-Key": accounts["free_key"]}).status_code == 200
    bearer = _token(client, "zhang")
    assert client.get("/", headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    session = _sign_in(client, "zhang")
    page = client.get("/", headers=_cookie(session))
    assert page.status_code == 200 and "东莞市网格化治理平台" in page.text


def test_signing_in_from_the_form_returns_to_the_page_asked_for_but_never_off_site(client: TestClient) -> None:
    back = client.post(
        "/login", data={"username": "zhang", "password": PASSWORD, "next": "/?layer=grids"}, follow_redirects=False
    )
    assert back.status_code == 303 and back.headers["location"] == "/?layer=grids"
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        away = client.post(
            "/login", data={"username": "zhang", "password": PASSWORD, "next": target}, follow_redirects=False
        )
        assert away.status_code == 303 and away.headers["location"] == "/"
    client.cookies.clear()


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(client: TestClient) -> None:
    wrong = client.post("/v1/auth/token", data={"username": "zhang", "password": "not-the-password"})
    nobody = client.post("/v1/auth/token", data={"username": "nobody", "password": "not-the-password"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json() == BAD_LOGIN
    form_wrong = client.post("/login", data={"username": "zhang", "password": "nope-nope"}, follow_redirects=False)
    form_nobody = client.post("/login", data={"username": "nobody", "password": "nope-nope"}, follow_redirects=False)
    assert form_wrong.status_code == form_nobody.status_code == 401
    assert "用户名或密码错误" in form_wrong.text and "用户名或密码错误" in form_nobody.text
    assert SESSION_COOKIE not in form_wrong.cookies and SESSION_COOKIE not in client.cookies


def test_an_expired_or_forged_token_is_refused(client: TestClient, city: dict[str, Any]) -> None:
    path = f"/v1/grids/{city['grid']}"
    expired = issue_access_token(
        SECRET_KEY,
        subject="zhang",
        role="command_centre",
        scope=None,
        town_code=None,
        minutes=30,
        now=datetime.now(UTC) - timedelta(minutes=31),
    )
    assert client.get(path, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    forged = issue_access_token("f" * 48, subject="zhang", role="admin", scope=None, town_code=None, minutes=30)
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


def test_a_revoked_key_is_refused_on_its_next_request(db: DatabaseSettings, tmp_path: Path) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        new = service.create_api_key(conn, SECRET_KEY, name="to-revoke")
    app = make_app(db, tmp_path)
    with TestClient(app) as fresh:
        cache = app.state.auth.key_cache
        _until(cache.live)
        assert fresh.get("/v1/departments", headers={"X-API-Key": new.key}).status_code == 200
        generation = cache.generation
        with engine.begin() as conn:
            assert service.revoke_api_key(conn, new.record.prefix) == 1
        _until(lambda: cache.generation > generation)  # the NOTIFY of the revocation reached the listener
        refused = fresh.get("/v1/departments", headers={"X-API-Key": new.key})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    engine.dispose()


def test_a_key_over_its_rate_gets_429_then_recovers_and_an_exempt_key_never_does(
    client: TestClient, accounts: dict[str, Any]
) -> None:
    probe = "/v1/departments"
    limited = {"X-API-Key": accounts["limited_key"]}
    answered = 0
    response = client.get(probe, headers=limited)
    while response.status_code != 429 and answered < 40:
        assert response.status_code == 200
        answered += 1
        response = client.get(probe, headers=limited)
    assert response.status_code == 429, "the limited key was never throttled"
    assert 30 <= answered <= 34  # one minute's allowance of 30, plus what refilled meanwhile
    assert response.json()["error"] == "too_many_requests"
    wait_s = int(response.headers["retry-after"])
    assert 1 <= wait_s <= 2
    time.sleep(wait_s + 0.1)
    assert client.get(probe, headers=limited).status_code == 200
    for _ in range(60):
        assert client.get(probe, headers={"X-API-Key": accounts["free_key"]}).status_code == 200


def test_a_town_leader_sees_only_their_town(client: TestClient, city: dict[str, Any]) -> None:
    leader = {"Authorization": f"Bearer {_token(client, 'leader')}"}
    assert client.get(f"/v1/grids/{city['grid']}", headers=leader).status_code == 200
    elsewhere = client.get(f"/v1/grids/{city['other_grid']}", headers=leader)
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "forbidden"
    towns = client.get("/v1/towns", params={"zoom": 9}, headers=leader).json()
    assert [f["properties"]["code"] for f in towns["features"]] == [city["town"]]
    communities = client.get("/v1/communities", params={"zoom": 10}, headers=leader).json()
    assert communities["features"]
    assert {f["properties"]["town_code"] for f in communities["features"]} == {city["town"]}
    grids = client.get("/v1/grids", params={"bbox": city["town_bbox"], "zoom": 13}, headers=leader).json()
    assert grids["features"]
    assert {f["properties"]["code"][:9] for f in grids["features"]} == {city["town"][:9]}
    # The command centre sees both towns; a dispatcher is held to their community's town.
    centre = {"Authorization": f"Bearer {_token(client, 'zhang')}"}
    assert client.get(f"/v1/grids/{city['other_grid']}", headers=centre).status_code == 200
    dispatcher = {"Authorization": f"Bearer {_token(client, 'disp')}"}
    assert client.get(f"/v1/grids/{city['grid']}", headers=dispatcher).status_code == 200
    assert client.get(f"/v1/grids/{city['other_grid']}", headers=dispatcher).status_code == 403


def test_signing_out_ends_the_session(client: TestClient, city: dict[str, Any]) -> None:
    session = _sign_in(client, "zhang")
    path = f"/v1/grids/{city['grid']}"
    assert client.get(path, headers=_cookie(session)).status_code == 200
    out = client.post("/logout", headers=_cookie(session), follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert client.get(path, headers=_cookie(session)).status_code == 401
    page = client.get("/", headers={**_cookie(session), "Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_an_expired_session_is_refused(db: DatabaseSettings, client: TestClient, city: dict[str, Any]) -> None:
    session = _sign_in(client, "zhang")
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE user_session SET expires_at = now() - interval '1 second'"))
    engine.dispose()
    assert client.get(f"/v1/grids/{city['grid']}", headers=_cookie(session)).status_code == 401


def test_secrets_are_never_stored_in_clear_nor_logged(
    db: DatabaseSettings, client: TestClient, accounts: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = accounts["free_key"]
    token = _token(client, "zhang")
    session = _sign_in(client, "zhang")
    client.get("/v1/towns", params={"zoom": 8, "key": key})
    client.post("/v1/auth/token", data={"username": "zhang", "password": "wrong-" + PASSWORD})
    # The test's own HTTP client (httpx) logs the URLs it sends; what matters is what the server logs.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(record.getMessage() for record in server_records)
    for secret in (PASSWORD, key, token, session, SECRET_KEY):
        assert secret not in logged
    # A server access line with key= in its query is redacted before any handler sees it.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/search?q=x&key={key}", "1.1", 200),
        None,
    )
    assert RedactSecretsFilter().filter(record)
    assert key not in record.getMessage() and "key=***" in record.getMessage()
    engine = make_engine(db)
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_key")).all() for v in row)
        hashes = conn.execute(text("SELECT password_hash FROM app_user")).scalars().all()
        sessions = " ".join(conn.execute(text("SELECT token_digest FROM user_session")).scalars().all())
    engine.dispose()
    assert key not in stored and key[:8] in stored
    assert all(h.startswith("$argon2id$") for h in hashes) and PASSWORD not in " ".join(hashes)
    assert session not in sessions


@pytest.mark.parametrize(
    "url",
    [
        "/v1/clues?industry=%00",
        "/v1/clues?status=%00",
        "/v1/clues.csv?industry=%00",
        "/v1/registrations/%00",
        "/v1/registrations/a%00b?x=1",
        "/v1/clues?industry=%1B",
    ],
)
def test_a_nul_or_control_character_in_a_path_or_query_is_refused_at_the_edge(
    client: TestClient, accounts: dict[str, Any], url: str
) -> None:
    """The refusal is the project's 422 (never the database's 500), and the same client goes on being served."""
    headers = {"X-API-Key": accounts["free_key"]}
    refused = client.get(url, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_request"
    assert "control character" in refused.json()["detail"]
    assert client.get("/v1/vocabulary", headers=headers).status_code == 200


def test_the_refusal_names_nul_and_free_text_may_hold_tabs_and_line_breaks(
    client: TestClient, accounts: dict[str, Any]
) -> None:
    bearer = {"Authorization": f"Bearer {_token(client, 'zhang')}"}
    assert "(NUL)" in client.get("/v1/clues?industry=%00", headers=bearer).json()["detail"]
    # A tab or a line break in a query parameter is text: the route answers (no clue of that industry).
    for industry in ("a%09b", "a%0Ab", "a%0D%0Ab"):
        answer = client.get(f"/v1/clues?industry={industry}", headers=bearer)
        assert answer.status_code == 200, answer.text


def test_a_nul_in_a_clue_or_a_registration_body_is_a_422(client: TestClient, accounts: dict[str, Any]) -> None:
    """JSON bodies: NUL (and the other control characters) in names, identifiers and descriptions are refused."""
    bearer = {"Authorization": f"Bearer {_token(client, 'zhang')}"}
    clue = {"lon": 113.75, "lat": 23.02, "industry": "餐饮服务", "description": "无证经营"}
    for description in ("无证\x00经营", "无证\x1b[31m经营", "无证\x0b经营"):
        refused = client.post("/v1/clues", json={**clue, "description": description}, headers=bearer)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "invalid_request" and "description" in refused.json()["detail"]
    assert client.post("/v1/clues", json={**clue, "industry": "餐饮\x00服务"}, headers=bearer).status_code == 422
    registration = {
        "event_id": "nul-1",
        "kind": "new",
        "uscc": "91441900MA4UXXXX0X",
        "name": "东莞市测试商行",
        "address": "东莞市长安镇长青路12号",
        "occurred_at": "2026-12-01T09:00:00+08:00",
    }
    key = {"X-API-Key": accounts["free_key"]}
    for field, value in (("name", "东莞市\x00测试商行"), ("event_id", "nul\x00-1"), ("name", "东莞市\n测试商行")):
        refused = client.post("/v1/registrations", json={**registration, field: value}, headers=key)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "invalid_request" and field in refused.json()["detail"]
    assert client.get("/v1/vocabulary", headers=key).status_code == 200


# --- Issue 17: key permissions, sign-in throttling, the password policy, instant revocation ---------------------------


@pytest.fixture(autouse=True)
def no_throttle_left(db: DatabaseSettings) -> Iterator[None]:
    """Each test starts with no failed sign-in counted (the throttle is per database, shared by every app)."""
    yield
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_throttle"))
    engine.dispose()


def _make_key(db: DatabaseSettings, name: str, **kwargs: Any) -> service.NewApiKey:
    engine = make_engine(db)
    with engine.begin() as conn:
        new = service.create_api_key(conn, SECRET_KEY, name=name, rate_limited=False, **kwargs)
    engine.dispose()
    return new


def test_a_default_key_geocodes_and_nothing_else(
    db: DatabaseSettings, client: TestClient, city: dict[str, Any]
) -> None:
    key = {"X-API-Key": _make_key(db, "search box").key}
    assert client.get("/v1/geocode", params={"q": "东莞市长安镇"}, headers=key).status_code == 200
    assert client.get("/search", params={"q": "东莞市长安镇", "format": "json"}, headers=key).status_code == 200
    assert client.get("/v1/departments", headers=key).status_code == 200
    registration = {
        "event_id": "perm-1",
        "kind": "deregistration",
        "uscc": "91441900MA4UXXXX0X",
        "name": "东莞市测试商行",
        "address": "东莞市长安镇长青路12号",
        "occurred_at": "2026-12-01T09:00:00+08:00",
    }
    for method, path, body in (
        ("POST", "/v1/registrations", registration),
        ("GET", f"/v1/grids/{city['grid']}", None),
        ("GET", "/v1/towns?zoom=8", None),
        ("GET", "/tiles/grids.json", None),
        ("GET", "/ogc/collections", None),
    ):
        refused = client.request(method, path, json=body, headers=key)
        assert refused.status_code == 403, f"{method} {path}: {refused.status_code}"
        assert refused.json()["error"] == "forbidden"


def test_a_gis_key_reads_the_map_and_an_intake_key_is_held_to_its_kinds(
    db: DatabaseSettings, client: TestClient
) -> None:
    gis = {"X-API-Key": _make_key(db, "qgis desk", permissions=["gis"]).key}
    assert client.get("/ogc/collections", headers=gis).status_code == 200
    assert client.get("/tiles/grids.json", headers=gis).status_code == 200
    assert client.get("/v1/geocode", params={"q": "东莞市"}, headers=gis).status_code == 403
    intake = _make_key(db, "registry new only", permissions=["intake"], event_kinds=["new"])
    engine = make_engine(db)
    with engine.connect() as conn:
        found = service.find_api_key(conn, keyed_digest(SECRET_KEY, intake.key))
    engine.dispose()
    assert found is not None
    principal = found.principal()
    assert principal.permissions == frozenset({"intake"}) and principal.event_kinds == frozenset({"new"})
    assert principal.id == intake.record.id and principal.owner == f"key#{intake.record.id}"


@pytest.mark.parametrize(
    ("role", "permissions", "kinds", "reason"),
    [
        ("api_client", ["admin"], None, "unknown permission"),
        ("api_client", ["hotline"], None, "hotline"),
        ("hotline", ["geocode"], None, "hotline"),
        ("api_client", ["geocode"], ["new"], "needs --permission intake"),
        ("api_client", ["intake"], ["bankruptcy"], "unknown event kind"),
    ],
)
def test_a_key_is_refused_a_permission_it_cannot_use(
    db: DatabaseSettings, role: str, permissions: list[str], kinds: list[str] | None, reason: str
) -> None:
    with pytest.raises(InvalidPermission, match=reason):
        _make_key(db, "refused", role=role, permissions=permissions, event_kinds=kinds)


def test_a_hotline_key_gets_the_hotline_permission_and_others_geocoding_by_default(db: DatabaseSettings) -> None:
    assert _make_key(db, "热线默认").record.permissions == frozenset({"geocode"})
    hotline = _make_key(db, "热线默认 12345", role="hotline").record
    assert hotline.permissions == frozenset({"hotline"}) and hotline.event_kinds is None


@given(password=st.text(max_size=11))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_password_under_12_characters_is_always_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password, "someone")


@pytest.mark.parametrize("password", ["12345678", "password", "password1234", "PASSWORD1234", "Password1234"])
def test_a_short_or_common_password_is_refused_whatever_its_case(password: str) -> None:
    with pytest.raises(WeakPassword, match="常见" if len(password) >= 12 else "12"):
        check_password(password, "someone")


def test_the_user_name_is_not_a_password_and_a_long_unusual_one_is_accepted() -> None:
    with pytest.raises(WeakPassword, match="用户名"):
        check_password("Zhang.Wei.2026", "zhang.wei.2026")
    check_password("correct horse battery staple", "zhang")


@given(character=st.characters(), length=st.integers(min_value=12, max_value=80))
@settings(max_examples=60, deadline=None)
def test_a_password_of_one_repeated_character_is_always_refused(character: str, length: int) -> None:
    """The outside re-test: `aaaaaaaaaaaa` passed the length and the common list. Any alphabet: CI found a run of one
    rare character that zxcvbn rates strong, so a floor of distinct characters refuses it."""
    with pytest.raises(WeakPassword, match="different characters"):
        check_password(character * length, "someone")


@pytest.mark.parametrize(
    ("password", "advice"),
    [
        ("abcdeabcdeabcdeab", "Repeats"),
        ("qwertyuiopasdf", "commonly used"),
        ("abcdefghijklmn", "Sequences"),
        ("zhangwei123456", "Add another word"),
    ],
)
def test_an_easily_guessed_password_is_refused_with_zxcvbns_advice(password: str, advice: str) -> None:
    with pytest.raises(WeakPassword, match="太容易被猜中") as refused:
        check_password(password, "zhangwei")
    assert advice in str(refused.value)


@given(password=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=300))
@settings(max_examples=40, deadline=None)
def test_the_password_policy_never_fails_on_any_text(password: str) -> None:
    """Whatever a user types, the policy answers: accepted or WeakPassword, never another error."""
    with contextlib.suppress(WeakPassword):
        check_password(password, "someone")


def test_generated_demo_passwords_pass_the_policy() -> None:
    import secrets

    for _ in range(50):
        check_password(secrets.token_urlsafe(12), "demo_worker")


def _login_form(client: TestClient, username: str, password: str) -> Any:
    return client.post("/login", data={"username": username, "password": password, "next": "/"}, follow_redirects=False)


def test_failed_sign_ins_are_throttled_per_account_with_backoff_and_the_owner_gets_in_after_the_wait(
    db: DatabaseSettings, tmp_path: Path
) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"throttled": ("command_centre", None)})
    engine.dispose()
    # Two app instances (as two worker processes) and two client addresses: the throttle is in the database.
    attacker_app, owner_app = make_app(db, tmp_path / "a"), make_app(db, tmp_path / "b")
    with (
        TestClient(attacker_app, client=("198.51.100.7", 40000)) as attacker,
        TestClient(owner_app, client=("203.0.113.9", 40001)) as owner,
    ):
        for _ in range(ACCOUNT_FREE_FAILURES + 1):
            wrong = attacker.post("/v1/auth/token", data={"username": "throttled", "password": "wrong-" + PASSWORD})
            assert wrong.status_code == 401 and wrong.json() == BAD_LOGIN
        right = attacker.post("/v1/auth/token", data={"username": "throttled", "password": PASSWORD})
        assert right.status_code == 429 and right.json()["error"] == "too_many_requests"
        assert 1 <= int(right.headers["retry-after"]) <= FIRST_WAIT_S
        # The account is held from every address, the login page too (a Chinese message with the wait).
        assert owner.post("/v1/auth/token", data={"username": "throttled", "password": PASSWORD}).status_code == 429
        page = _login_form(owner, "throttled", PASSWORD)
        assert page.status_code == 429 and "登录尝试过多" in page.text and "retry-after" in page.headers
        # A delay, not a lock: after the wait the owner signs in, and that resets the account's counter.
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=FIRST_WAIT_S + 1), tick=True):
            assert owner.post("/v1/auth/token", data={"username": "throttled", "password": PASSWORD}).status_code == 200
            again = attacker.post("/v1/auth/token", data={"username": "throttled", "password": "wrong-" + PASSWORD})
            assert again.status_code == 401


def test_the_wait_doubles_after_each_further_failure_up_to_a_cap() -> None:
    waits = [wait_after(n, ACCOUNT_FREE_FAILURES) for n in range(1, 14)]
    assert waits[:ACCOUNT_FREE_FAILURES] == [0.0] * ACCOUNT_FREE_FAILURES
    assert waits[ACCOUNT_FREE_FAILURES : ACCOUNT_FREE_FAILURES + 3] == [30.0, 60.0, 120.0]
    assert max(waits) == MAX_WAIT_S == wait_after(100, ACCOUNT_FREE_FAILURES)


def test_one_address_guessing_many_accounts_is_throttled_and_other_addresses_are_not(
    db: DatabaseSettings, tmp_path: Path
) -> None:
    with (
        TestClient(make_app(db, tmp_path / "a"), client=("198.51.100.8", 40000)) as sprayer,
        TestClient(make_app(db, tmp_path / "b"), client=("203.0.113.10", 40001)) as colleague,
    ):
        for n in range(ADDRESS_FREE_FAILURES + 1):
            sprayed = sprayer.post("/v1/auth/token", data={"username": f"guess{n}", "password": "wrong-" + PASSWORD})
            assert sprayed.status_code == 401
        assert sprayer.post("/v1/auth/token", data={"username": "zhang", "password": PASSWORD}).status_code == 429
        assert colleague.post("/v1/auth/token", data={"username": "zhang", "password": PASSWORD}).status_code == 200


def _request_from(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1)})


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() -> None:
    trusted = ("10.0.0.0/8", "192.0.2.1")
    assert client_address(_request_from("198.51.100.1", "192.0.2.99"), trusted) == "198.51.100.1"
    assert client_address(_request_from("10.1.2.3", "192.0.2.99"), trusted) == "192.0.2.99"
    # A spoofed first hop is skipped: the last hop a trusted proxy did not add is the client.
    assert client_address(_request_from("10.1.2.3", "6.6.6.6, 192.0.2.99, 10.0.0.5"), trusted) == "192.0.2.99"
    assert client_address(_request_from("10.1.2.3", "not-an-address"), trusted) == "10.1.2.3"
    assert client_address(_request_from("10.1.2.3", None), ()) == "10.1.2.3"


def test_a_full_sign_in_gate_answers_at_once_instead_of_queueing() -> None:
    gate = LoginGate(threads=1, wait_s=0.05)
    release = threading.Event()

    async def scenario() -> tuple[str, str]:
        holder = asyncio.ensure_future(gate.run(lambda: release.wait(30) and "held"))
        await asyncio.sleep(0)
        try:
            await gate.run(lambda: "second")
        except LoginBusy:
            outcome = "busy"
        else:
            outcome = "ran"
        release.set()
        return outcome, str(await holder)

    try:
        assert asyncio.run(scenario()) == ("busy", "held")
    finally:
        release.set()
        gate.close()


def test_a_disabled_user_is_refused_everywhere_like_a_wrong_password(
    db: DatabaseSettings, client: TestClient, city: dict[str, Any]
) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"leaving": ("command_centre", None)})
    path = f"/v1/grids/{city['grid']}"
    bearer = {"Authorization": f"Bearer {_token(client, 'leaving')}"}
    session = _sign_in(client, "leaving")
    with engine.begin() as conn:
        service.set_user_active(conn, "leaving", active=False)
    assert client.get(path, headers=bearer).status_code == 401
    assert client.get(path, headers=_cookie(session)).status_code == 401
    refused = client.post("/v1/auth/token", data={"username": "leaving", "password": PASSWORD})
    assert refused.status_code == 401 and refused.json() == BAD_LOGIN
    form = _login_form(client, "leaving", PASSWORD)
    assert form.status_code == 401 and "用户名或密码错误" in form.text
    with engine.begin() as conn:
        service.set_user_active(conn, "leaving", active=True)
    engine.dispose()
    assert client.get(path, headers=bearer).status_code == 401  # an old token stays revoked
    assert client.get(path, headers={"Authorization": f"Bearer {_token(client, 'leaving')}"}).status_code == 200


def test_a_password_reset_revokes_tokens_and_sessions_and_refuses_a_weak_password(
    db: DatabaseSettings, client: TestClient, city: dict[str, Any]
) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"forgetful": ("command_centre", None)})
    path = f"/v1/grids/{city['grid']}"
    bearer = {"Authorization": f"Bearer {_token(client, 'forgetful')}"}
    session = _sign_in(client, "forgetful")
    for weak in ("12345678", "password", "password1234", "forgetful"):
        with pytest.raises(WeakPassword), engine.begin() as conn:
            service.reset_password(conn, "forgetful", weak)
    assert client.get(path, headers=bearer).status_code == 200  # a refused reset changes nothing
    with engine.begin() as conn:
        service.reset_password(conn, "forgetful", "a new and long passphrase")
    engine.dispose()
    assert client.get(path, headers=bearer).status_code == 401
    assert client.get(path, headers=_cookie(session)).status_code == 401
    old = client.post("/v1/auth/token", data={"username": "forgetful", "password": PASSWORD})
    assert old.status_code == 401
    _token(client, "forgetful", "a new and long passphrase")


def test_a_bearer_revokes_its_own_tokens_and_a_key_cannot(
    client: TestClient, accounts: dict[str, Any], city: dict[str, Any]
) -> None:
    path = f"/v1/grids/{city['grid']}"
    first = {"Authorization": f"Bearer {_token(client, 'disp')}"}
    second = {"Authorization": f"Bearer {_token(client, 'disp')}"}
    revoked = client.post("/v1/auth/revoke", headers=first)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": True}
    assert client.get(path, headers=first).status_code == 401
    assert client.get(path, headers=second).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {_token(client, 'disp')}"}).status_code == 200
    by_key = client.post("/v1/auth/revoke", headers={"X-API-Key": accounts["free_key"]})
    assert by_key.status_code == 403 and by_key.json()["error"] == "forbidden"
    assert client.post("/v1/auth/revoke").status_code == 401


@pytest.mark.parametrize(
    ("role", "place"),
    [
        ("admin", None),
        ("command_centre", None),
        ("town_leader", "town"),
        ("dispatcher", "community"),
        ("api_client", None),
    ],
)
def test_every_role_may_revoke_its_own_tokens_and_only_its_own(
    db: DatabaseSettings, client: TestClient, city: dict[str, Any], role: str, place: str | None
) -> None:
    """The role × place matrix of POST /v1/auth/revoke: any signed-in user, for themselves; another's token lives on."""
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {f"self-{role}": (role, city[place] if place else None)})
    engine.dispose()
    own = {"Authorization": f"Bearer {_token(client, f'self-{role}')}"}
    bystander = {"Authorization": f"Bearer {_token(client, 'zhang')}"}
    assert client.post("/v1/auth/revoke", headers=own).status_code == 200
    assert client.get("/v1/me", headers=own).status_code == 401
    assert client.get("/v1/me", headers=bystander).status_code == 200


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("not seen within 10 s")
        time.sleep(0.01)


def test_the_key_cache_fails_closed_and_drops_what_an_invalidation_overtook() -> None:
    now = [100.0]
    cache = KeyCache(ttl_s=60, stale_after_s=5, clock=lambda: now[0])
    record = service.ApiKeyRecord(1, "k", "gg_abcde", False, 600)
    cache.put("d", record, cache.generation)
    assert cache.get("d") is None  # the listener never polled: nothing is trusted, nothing kept
    cache.mark_alive()
    cache.put("d", record, cache.generation)
    assert cache.get("d") == record
    now[0] += 6  # the listener went quiet (the database restarting): back to the database
    assert cache.get("d") is None
    cache.mark_alive()
    assert cache.get("d") == record
    stale = cache.generation
    cache.clear()  # a revocation arrived while a lookup was running: what it read is not kept
    cache.put("d", record, stale)
    assert cache.get("d") is None
    now[0] += 61
    cache.mark_alive()
    cache.put("d", record, cache.generation)
    now[0] += 4
    cache.mark_alive()
    now[0] += 57
    cache.mark_alive()
    assert cache.get("d") is None  # older than its time to live
