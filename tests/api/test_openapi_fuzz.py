"""Whatever a client sends to any operation of the API, within the spec or not, it never gets a 500 (schemathesis).

The whole OpenAPI document (benchmarks.fuzz_openapi): every operation, as the two credentials that reach most of
it (the command centre with a bearer token, and an API key of the default permission), positive and negative
cases, strings that may hold NUL and control characters, JSON, form and multipart bodies; then schemathesis'
state machine over the OpenAPI links the document is given (a POST's id read back by its GET). Derandomized: the
same cases on every run. `make bench` runs the same with at least 1,000 cases per operation (section "Fuzz").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from fastapi import FastAPI
from sqlalchemy import text

from benchmarks.fuzz_openapi import (
    LINKS,
    UNFUZZED,
    Tally,
    fuzz_schema,
    operations,
    run_operation,
    run_stateful,
    sign_in,
)
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import PASSWORD, make_api_key, make_users
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

EXAMPLES_PER_MODE = 10  # positive and negative: 20 cases per operation and credential
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 6


@pytest.fixture(scope="module")
def app(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"fuzz_centre": ("command_centre", None)})
    engine.dispose()
    return make_app(db, tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return fuzz_schema(app)


@pytest.fixture(scope="module")
def credentials(db: DatabaseSettings, app: FastAPI) -> dict[str, Callable[[], dict[str, str]]]:
    """How each credential signs a request: a bearer token of the command centre, a default API key.

    `sign_in` signs the command centre in again (POST /v1/auth/revoke, fuzzed last, revokes its token).
    """
    engine = make_engine(db)
    with engine.begin() as conn:
        key = make_api_key(conn, SECRET_KEY, "fuzzer")  # exempt from the rate limit: hundreds of requests a second
    engine.dispose()

    def signed_in() -> str:
        token = sign_in(app, "fuzz_centre", PASSWORD)
        assert token is not None, "the fuzzing account cannot sign in"
        return token

    token = {"value": signed_in()}

    def centre() -> dict[str, str]:
        return {"Authorization": f"Bearer {token['value']}"}

    def centre_signed_in_again() -> dict[str, str]:
        token["value"] = signed_in()
        return centre()

    return {"command_centre": centre, "api_key": lambda: {"X-API-Key": key}, "sign_in": centre_signed_in_again}


def test_every_operation_is_fuzzed_and_described(api_schema: schemathesis.BaseSchema) -> None:
    fuzzed = {(op.method.upper(), op.path) for op in operations(api_schema)}
    spec = api_schema.raw_schema
    everything = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert fuzzed == everything - UNFUZZED
    assert len(fuzzed) > 100
    for method, path in everything:
        assert spec["paths"][path][method.lower()]["summary"], (method, path)  # described (in Chinese)
    # Every link names a served operation, so the state machine has chains to follow.
    linked = [path for _m, path, _s, _n, _tm, target, _p in LINKS if path in spec["paths"] and target in spec["paths"]]
    assert len(linked) == len(LINKS)


@pytest.mark.parametrize("credential", ["command_centre", "api_key"])
def test_no_server_error_and_answers_match_the_spec(
    api_schema: schemathesis.BaseSchema,
    credentials: dict[str, Callable[[], dict[str, str]]],
    credential: str,
) -> None:
    tally = Tally()
    for operation in operations(api_schema):
        try:
            run_operation(operation, credentials[credential], examples=EXAMPLES_PER_MODE, seed=None, tally=tally)
        except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed; the failures listed below
            tally.failures.append((f"{operation.method.upper()} {operation.path}", str(exc)[:1500]))
    assert not tally.failures, "\n\n".join(f"{where}:\n{what}" for where, what in tally.failures)
    assert len(tally.cases) == len(operations(api_schema))


def test_stateful_chains_over_the_links_hold(
    api_schema: schemathesis.BaseSchema, credentials: dict[str, Callable[[], dict[str, str]]]
) -> None:
    credentials["sign_in"]()
    tally = run_stateful(api_schema, credentials["command_centre"], scenarios=STATEFUL_SCENARIOS, steps=STATEFUL_STEPS)
    assert sum(tally.cases.values()) >= STATEFUL_SCENARIOS


def test_the_database_survived_the_fuzzing(db: DatabaseSettings) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM address")).scalar_one() > 30_000
        assert conn.execute(text("SELECT count(*) FROM api_key WHERE name = 'fuzzer'")).scalar_one() == 1
    engine.dispose()
