"""Issue 17, part A: the outside tester's credential attacks replayed over HTTP against the app, each refused.

Finding 1 (the key side): every API key was a full api_client, so a map search box's key posted a deregistration and
cancelled three open tasks. Finding 4: no brute-force protection (30 wrong passwords, then the right one was
accepted), `12345678` and `password` were accepted as passwords, and a login flood took the API's median from 3 ms to
450 ms. Finding 8: a revoked key worked for 60 s more, bearer tokens could not be revoked, and no command disabled a
user or reset a password.

The outside re-test (fix round): a NUL in a multipart sign-in form was a 500, an api_client ACCOUNT still sent
deregistrations, a loopback client forged X-Forwarded-For past the per-address limit, and `aaaaaaaaaaaa` was accepted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from api.auth.deps import AuthRuntime
from api.auth.security import keyed_digest
from api.auth.throttle import ADDRESS_FREE_FAILURES
from api.cli import app as cli
from api.errors import NUL_IN_TEXT, register_error_handlers
from gis import clock
from gis.cluster import free_port
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.task_states import OPEN_STATUSES
from supervision.uscc import uscc_check_char
from tests.support.accounts import PASSWORD, api_key_headers, make_api_key, make_users
from tests.support.city import a_door_with_workers
from tests.support.server import SECRET_KEY, make_app, served

pytestmark = pytest.mark.db

GRIDGOV = str(Path(sys.executable).with_name("gridgov"))


@pytest.fixture(scope="module")
def engine(db: DatabaseSettings) -> Iterator[Engine]:
    made = make_engine(db)
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def people(engine: Engine) -> dict[str, Any]:
    """The accounts the attacks aim at, and a default (geocoding) key like a map search box's."""
    with engine.begin() as conn:
        make_users(
            conn,
            {
                "target": ("command_centre", None),
                "leaver": ("command_centre", None),
                "forgetter": ("command_centre", None),
                "revoker": ("command_centre", None),
            },
        )
        search_box = make_api_key(conn, SECRET_KEY, "map search box")
    return {"search_box": search_box}


@pytest.fixture(autouse=True)
def no_throttle_left(engine: Engine) -> Iterator[None]:
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_throttle"))


@pytest.fixture
def two_instances(db: DatabaseSettings, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances on one database, as two worker processes: each has its own AuthRuntime."""
    with (
        TestClient(make_app(db, tmp_path / "one"), client=("192.0.2.11", 41000)) as one,
        TestClient(make_app(db, tmp_path / "two"), client=("192.0.2.12", 41001)) as two,
    ):
        yield one, two


def gridgov(db: DatabaseSettings, *args: str, stdin: str | None = None) -> Result:
    """`gridgov ARGS` against this database, as an operator runs it."""
    environment = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET_KEY}
    return CliRunner().invoke(cli, list(args), env=environment, input=stdin)


def _open_tasks(engine: Engine, uscc: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM task WHERE entity_uscc = :u AND status = ANY(:open)"),
                {"u": uscc, "open": list(OPEN_STATUSES)},
            ).scalar_one()
        )


def test_finding_1_default_key_cannot_deregister(
    engine: Engine, people: dict[str, Any], two_instances: tuple[TestClient, TestClient]
) -> None:
    client, _ = two_instances
    # A registration system's intake key places a new business: its grid's workers get open tasks.
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        registry = make_api_key(conn, SECRET_KEY, "登记系统", permissions=["intake"])
    first17 = "91441900MC0000017"
    uscc = first17 + uscc_check_char(first17)
    now = clock.now().replace(microsecond=0)
    new = {
        "event_id": "victim-new-1",
        "kind": "new",
        "uscc": uscc,
        "name": "东莞市受害测试商行",
        "address": door.full_text,
        "business_scope": "烟草制品零售",
        "occurred_at": (now - timedelta(minutes=5)).isoformat(),
    }
    placed = client.post("/v1/registrations", json=new, headers=api_key_headers(registry))
    assert placed.status_code == 201, placed.text
    open_before = _open_tasks(engine, uscc)
    assert open_before > 0
    with engine.connect() as conn:
        events_before = conn.execute(text("SELECT count(*) FROM registration_event")).scalar_one()
    # The attack: a map search box's key (the default permission) deregisters that business.
    attack = {**new, "event_id": "attack-deregistration-1", "kind": "deregistration", "occurred_at": now.isoformat()}
    key = api_key_headers(people["search_box"])
    refused = client.post("/v1/registrations", json=attack, headers=key)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert client.get("/v1/geocode", params={"q": door.full_text}, headers=key).status_code == 200  # what it is for
    assert _open_tasks(engine, uscc) == open_before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM registration_event")).scalar_one() == events_before


def test_finding_4_thirty_wrong_passwords_then_the_right_one_is_refused_with_retry_after(
    people: dict[str, Any], two_instances: tuple[TestClient, TestClient]
) -> None:
    client, _ = two_instances
    statuses = []
    for n in range(30):
        wrong = client.post("/v1/auth/token", data={"username": "target", "password": f"guess-{n:04d}-password"})
        statuses.append(wrong.status_code)
    assert set(statuses) <= {401, 429} and 429 in statuses
    right = client.post("/v1/auth/token", data={"username": "target", "password": PASSWORD})
    assert right.status_code == 429 and right.json()["error"] == "too_many_requests"
    assert int(right.headers["retry-after"]) >= 1
    page = client.post("/login", data={"username": "target", "password": PASSWORD}, follow_redirects=False)
    assert page.status_code == 429 and "retry-after" in page.headers and "gridgov_session" not in page.cookies


@pytest.mark.parametrize("weak", ["12345678", "password", "password1234"])
def test_finding_4_common_passwords_are_refused_at_creation_and_reset(
    db: DatabaseSettings, people: dict[str, Any], two_instances: tuple[TestClient, TestClient], weak: str
) -> None:
    created = gridgov(db, "users", "create", "--username", f"weak-{weak}", "--role", "admin", "--password", weak)
    assert created.exit_code == 2, created.output
    reset = gridgov(db, "users", "reset-password", "target", "--password-stdin", stdin=weak + "\n")
    assert reset.exit_code == 2, reset.output
    client, _ = two_instances
    assert client.post("/v1/auth/token", data={"username": f"weak-{weak}", "password": weak}).status_code == 401
    assert client.post("/v1/auth/token", data={"username": "target", "password": weak}).status_code == 401


def test_finding_4_a_login_flood_does_not_starve_another_route(
    db: DatabaseSettings, people: dict[str, Any], tmp_path: Path
) -> None:
    """200 concurrent wrong sign-ins against a served app; a geocoding request sent meanwhile is answered 200."""
    key = api_key_headers(people["search_box"])

    async def attack(url: str) -> tuple[list[int], int]:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
            assert (await http.get("/v1/geocode", params={"q": "东莞市"}, headers=key)).status_code == 200  # warm
            flood = [
                asyncio.ensure_future(
                    http.post("/v1/auth/token", data={"username": f"flood{n % 7}", "password": f"wrong-{n}-password"})
                )
                for n in range(200)
            ]
            await asyncio.sleep(0)
            during = await http.get("/v1/geocode", params={"q": "东莞市长安镇"}, headers=key)
            answers = await asyncio.gather(*flood)
            return [a.status_code for a in answers], during.status_code

    with served(make_app(db, tmp_path), name="uvicorn-login-flood") as url:
        flood_statuses, geocode_status = asyncio.run(attack(url))
    assert geocode_status == 200
    # Every sign-in of the flood got an answer: refused (401), throttled or told to come back (429), never a 5xx.
    assert set(flood_statuses) <= {401, 429}


def _runtime(instance: TestClient) -> AuthRuntime:
    runtime: AuthRuntime = instance.app.state.auth  # type: ignore[attr-defined]
    return runtime


def _wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll until `check()` holds (the listener thread works in the background); fail after 10 s."""
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within 10 s")
        time.sleep(0.01)


def test_finding_8_revoked_key_refused_at_once_by_two_app_instances(
    db: DatabaseSettings, engine: Engine, two_instances: tuple[TestClient, TestClient]
) -> None:
    with engine.begin() as conn:
        key = make_api_key(conn, SECRET_KEY, "to be revoked")
    one, two = two_instances
    for instance in (one, two):
        _wait_for(_runtime(instance).key_cache.live, "the revocation listener")
        assert instance.get("/v1/departments", headers=api_key_headers(key)).status_code == 200
        # Both processes now answer this key from memory: what a revocation must reach.
        assert _runtime(instance).key_cache.get(keyed_digest(SECRET_KEY, key)) is not None
    generations = [_runtime(instance).key_cache.generation for instance in (one, two)]
    revoked = gridgov(db, "apikey", "revoke", key[:8])
    assert revoked.exit_code == 0, revoked.output
    # The NOTIFY of the revoking transaction reaches each process's listener (milliseconds after the commit).
    for instance, generation in zip((one, two), generations, strict=True):
        _wait_for(lambda i=instance, g=generation: _runtime(i).key_cache.generation > g, "the revocation notice")
    for instance in (one, two):
        refused = instance.get("/v1/departments", headers=api_key_headers(key))
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"


def _bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_finding_8_bearer_token_refused_after_users_disable(
    db: DatabaseSettings, people: dict[str, Any], two_instances: tuple[TestClient, TestClient]
) -> None:
    one, two = two_instances
    token = _bearer(one, "leaver")
    for instance in (one, two):
        assert instance.get("/v1/me", headers=token).status_code == 200
    assert gridgov(db, "users", "disable", "leaver").exit_code == 0
    for instance in (one, two):
        assert instance.get("/v1/me", headers=token).status_code == 401
        refused = instance.post("/v1/auth/token", data={"username": "leaver", "password": PASSWORD})
        assert refused.status_code == 401 and refused.json()["detail"] == "incorrect username or password"


def test_finding_8_bearer_token_refused_after_reset_password(
    db: DatabaseSettings, people: dict[str, Any], two_instances: tuple[TestClient, TestClient]
) -> None:
    one, two = two_instances
    token = _bearer(two, "forgetter")
    assert one.get("/v1/me", headers=token).status_code == 200
    reset = gridgov(db, "users", "reset-password", "forgetter", "--password-stdin", stdin="a brand new passphrase\n")
    assert reset.exit_code == 0, reset.output
    for instance in (one, two):
        assert instance.get("/v1/me", headers=token).status_code == 401
    assert one.get("/v1/me", headers=_bearer(two, "forgetter", "a brand new passphrase")).status_code == 200


def test_finding_8_bearer_token_refused_after_self_revoke(
    people: dict[str, Any], two_instances: tuple[TestClient, TestClient]
) -> None:
    one, two = two_instances
    token = _bearer(one, "revoker")
    assert two.get("/v1/me", headers=token).status_code == 200
    assert one.post("/v1/auth/revoke", headers=token).status_code == 200
    for instance in (one, two):
        assert instance.get("/v1/me", headers=token).status_code == 401


# ------------------------------------------------------------------ the outside re-test (fix round, credentials)


def _throttle_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM login_throttle")).scalar_one())


@pytest.mark.parametrize("poison", ["\x00", "\x1b"], ids=["NUL", "ESC"])
@pytest.mark.parametrize("field", ["username", "password", "scope", "client_id", "client_secret"])
def test_finding_4_a_control_character_in_a_multipart_sign_in_is_422_before_the_throttle(
    db: DatabaseSettings, engine: Engine, people: dict[str, Any], tmp_path: Path, field: str, poison: str
) -> None:
    """Re-test 1: a multipart `username="de\\x00"` on /v1/auth/token was a 500 (PostgreSQL refuses NUL in text, in the
    throttle's query) and reset the keep-alive connection; ESC was a 401. Now 422 naming the field, nothing written."""
    form = {"username": "target", "password": PASSWORD, "grant_type": "password"}
    form[field] = f"de{poison}x"
    multipart = {name: (None, value) for name, value in form.items()}
    with TestClient(make_app(db, tmp_path), raise_server_exceptions=False) as client:
        answer = client.post("/v1/auth/token", files=multipart)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid_request" and answer.json()["field"] == field
        # The same connection goes on: the next sign-in is answered.
        assert (
            client.post(
                "/v1/auth/token", files={"username": (None, "target"), "password": (None, PASSWORD)}
            ).status_code
            == 200
        )
    assert _throttle_rows(engine) == 0


@pytest.mark.parametrize("poison", ["\x00", "\x1b"], ids=["NUL", "ESC"])
@pytest.mark.parametrize("field", ["username", "password", "next"])
def test_finding_4_a_control_character_in_a_multipart_login_form_is_422_with_the_page(
    db: DatabaseSettings, engine: Engine, people: dict[str, Any], tmp_path: Path, field: str, poison: str
) -> None:
    form = {"username": "target", "password": PASSWORD, "next": "/"}
    form[field] = f"de{poison}x"
    multipart = {name: (None, value) for name, value in form.items()}
    with TestClient(make_app(db, tmp_path), raise_server_exceptions=False, follow_redirects=False) as client:
        answer = client.post("/login", files=multipart, headers={"Origin": "http://testserver"})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "控制字符" in answer.text and "gridgov_session" not in answer.cookies
    assert _throttle_rows(engine) == 0


def test_finding_11_a_nul_that_reaches_the_database_is_422_not_500(engine: Engine) -> None:
    """Re-test 1b, the safety net: whatever path carries a NUL past the guards to PostgreSQL, the answer is 422."""
    app = FastAPI()
    register_error_handlers(app)

    @app.post("/echo")
    def echo(value: Annotated[str, Form()]) -> dict[str, str]:
        with engine.connect() as conn:
            return {"value": str(conn.execute(text("SELECT CAST(:v AS text)"), {"v": value}).scalar_one())}

    @app.post("/number")
    def number(value: Annotated[str, Form()]) -> dict[str, int]:
        with engine.connect() as conn:  # another DataError of the database: still the server's fault
            return {"value": int(conn.execute(text("SELECT CAST(:v AS integer)"), {"v": value}).scalar_one())}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/echo", files={"value": (None, "fine")}).json() == {"value": "fine"}
        refused = client.post("/echo", files={"value": (None, "de\x00x")})
        assert refused.status_code == 422
        assert refused.json() == {"error": "invalid_request", "detail": NUL_IN_TEXT}
        other = client.post("/number", files={"value": (None, "not a number")})
        assert other.status_code == 500 and other.json()["error"] == "internal_error"


def test_finding_1_an_api_client_account_without_intake_cannot_deregister(
    engine: Engine, two_instances: tuple[TestClient, TestClient]
) -> None:
    """Re-test 2: an account of role api_client (not a key) posted a deregistration for another town's entity → 201,
    "cancelled 2 open tasks". It now holds only what it is granted (geocoding by default), like a key."""
    client, _ = two_instances
    with engine.begin() as conn:
        door = a_door_with_workers(conn)
        registry = make_api_key(conn, SECRET_KEY, "登记系统 retest", permissions=["intake"])
        make_users(
            conn,
            {"geocoder-account": ("api_client", None), "registry-account": ("api_client", None)},
            permissions={"registry-account": ["intake"]},
        )
    first17 = "91441900MC0000025"
    uscc = first17 + uscc_check_char(first17)
    now = clock.now().replace(microsecond=0)
    new = {
        "event_id": "retest-new-1",
        "kind": "new",
        "uscc": uscc,
        "name": "东莞市复测商行",
        "address": door.full_text,
        "business_scope": "烟草制品零售",
        "occurred_at": (now - timedelta(minutes=5)).isoformat(),
    }
    assert client.post("/v1/registrations", json=new, headers=api_key_headers(registry)).status_code == 201
    open_before = _open_tasks(engine, uscc)
    assert open_before > 0
    attack = {**new, "event_id": "retest-deregistration-1", "kind": "deregistration", "occurred_at": now.isoformat()}
    geocoder = _bearer(client, "geocoder-account")
    refused = client.post("/v1/registrations", json=attack, headers=geocoder)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert client.get("/v1/geocode", params={"q": door.full_text}, headers=geocoder).status_code == 200
    assert _open_tasks(engine, uscc) == open_before
    # A browser session of the same account is held to the same permissions.
    session = TestClient(client.app, follow_redirects=False)
    signed_in = session.post(
        "/login", data={"username": "geocoder-account", "password": PASSWORD}, headers={"Origin": "http://testserver"}
    )
    assert signed_in.status_code == 303
    assert session.post("/v1/registrations", json=attack, headers={"Origin": "http://testserver"}).status_code == 403
    assert _open_tasks(engine, uscc) == open_before
    # An account granted intake is a registration system: its deregistration is accepted.
    sent = client.post("/v1/registrations", json=attack, headers=_bearer(client, "registry-account"))
    assert sent.status_code == 201, sent.text
    assert _open_tasks(engine, uscc) < open_before


def test_finding_1_users_grant_gives_an_api_client_account_intake_from_its_next_request(
    db: DatabaseSettings, engine: Engine, two_instances: tuple[TestClient, TestClient]
) -> None:
    client, _ = two_instances
    with engine.begin() as conn:
        make_users(conn, {"later-registry": ("api_client", None)})
    token = _bearer(client, "later-registry")
    bogus = {"event_id": "grant-1", "kind": "new", "uscc": "x", "name": "x", "address": "x"}
    assert client.post("/v1/registrations", json=bogus, headers=token).status_code == 403
    granted = gridgov(db, "users", "grant", "later-registry", "--permission", "intake")
    assert granted.exit_code == 0, granted.output
    assert "geocode,intake" in granted.stdout
    # Past the permission check: the event itself is judged now (422 for this malformed one).
    assert client.post("/v1/registrations", json=bogus, headers=token).status_code == 422


@contextmanager
def _gridgov_serve(db: DatabaseSettings, state: Path, **environment: str) -> Iterator[str]:
    """A real `gridgov serve` subprocess on this module's database; its base URL."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("FORWARDED_ALLOW_IPS", "GRIDGOV_TRUSTED_PROXIES")},
        "GRIDGOV_DATABASE_URL": db.database_url or "",
        "GRIDGOV_SECRET_KEY": SECRET_KEY,
        "GRIDGOV_STATE_DIR": str(state),
        **environment,
    }
    state.mkdir(parents=True, exist_ok=True)
    with (state / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [GRIDGOV, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gridgov serve did not start: {(state / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _spray(url: str, attempts: int, forwarded: Callable[[int], str]) -> list[int]:
    """Wrong sign-ins, each for another account (the per-account limit stays out of it), with X-Forwarded-For."""
    statuses = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for n in range(attempts):
            answer = http.post(
                "/v1/auth/token",
                data={"username": f"sprayed{n}", "password": "wrong-" + PASSWORD},
                headers={"X-Forwarded-For": forwarded(n)},
            )
            statuses.append(answer.status_code)
    return statuses


def test_finding_4_a_forged_x_forwarded_for_from_loopback_does_not_escape_the_address_limit(
    db: DatabaseSettings, engine: Engine, people: dict[str, Any], tmp_path: Path
) -> None:
    """Re-test 3: uvicorn trusted X-Forwarded-For from 127.0.0.1 by default, so a loopback client rotating it was a new
    address at every attempt. `gridgov serve` now believes it only from GRIDGOV_TRUSTED_PROXIES (none by default)."""
    over = ADDRESS_FREE_FAILURES + 2
    with _gridgov_serve(db, tmp_path / "untrusted") as url:
        statuses = _spray(url, over, lambda n: f"203.0.113.{n + 1}")
    assert set(statuses) <= {401, 429} and statuses[-1] == 429, statuses
    with engine.connect() as conn:
        subjects = set(conn.execute(text("SELECT subject FROM login_throttle WHERE subject LIKE 'addr:%'")).scalars())
    assert subjects == {"addr:127.0.0.1"}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_throttle"))
    # Behind a proxy that is trusted, the forwarded address is the client: one forwarded address hits its limit,
    # another is still free.
    with _gridgov_serve(db, tmp_path / "trusted", GRIDGOV_TRUSTED_PROXIES="127.0.0.1") as url:
        same = _spray(url, over, lambda n: "198.51.100.7")
        other = _spray(url, 1, lambda n: "198.51.100.8")
    assert same[-1] == 429 and other == [401], (same, other)
    with engine.connect() as conn:
        subjects = set(conn.execute(text("SELECT subject FROM login_throttle WHERE subject LIKE 'addr:%'")).scalars())
    assert subjects == {"addr:198.51.100.7", "addr:198.51.100.8"}
