"""Whatever a client sends to the geocoding endpoints, within the spec or not, it never gets a 500 (schemathesis)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import make_api_key
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

FUZZED_PATHS = ["/v1/geocode", "/v1/reverse", "/v1/autocomplete", "/search", "/reverse"]
# No 5xx; every status, media type and body as the spec declares them.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_MODE = 15  # positive and negative: 30 requests per operation, ~150 in all


@pytest.fixture(scope="module")
def api_key(db: DatabaseSettings) -> str:
    """A rate-limit-exempt key: the fuzzer sends hundreds of requests in seconds."""
    engine = make_engine(db)
    with engine.begin() as conn:
        key = make_api_key(conn, SECRET_KEY, "fuzzer")
    engine.dispose()
    return key


@pytest.fixture(scope="module")
def api_schema(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    """The app's own OpenAPI schema, narrowed to the geocoding operations.

    schemathesis reaches the app in-process and runs its lifespan; its pytest plugin ends the lifespan after
    each test. (Its `schemathesis.pytest.from_fixture` integration is not used: 4.32.5 writes
    `request.node._nodeid`, which pytest 9.2 no longer has.)
    """
    app = make_app(db, tmp_path_factory.mktemp("state"))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path=FUZZED_PATHS, method="GET")


def operations(api_schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    """The schema's operations; an operation schemathesis cannot read fails the test."""
    found = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"unreadable operation in the OpenAPI spec: {result.err()}"
        found.append(result.ok())
    return found


def test_the_fuzzed_operations_are_the_geocoding_ones(api_schema: schemathesis.BaseSchema) -> None:
    fuzzed = {(op.method.upper(), op.path) for op in operations(api_schema)}
    assert fuzzed == {("GET", path) for path in FUZZED_PATHS}
    spec = api_schema.raw_schema
    for path in FUZZED_PATHS:
        assert spec["paths"][path]["get"]["summary"], path  # every operation is described (in Chinese)


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_match_the_spec(
    api_schema: schemathesis.BaseSchema, api_key: str, mode: schemathesis.GenerationMode
) -> None:
    key = {"X-API-Key": api_key}
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=key)
            case.validate_response(response, checks=CHECKS)
            # Whatever was refused was refused with the one JSON error body.
            if 400 <= response.status_code < 500:
                assert set(response.json()) == {"error", "detail"}, (case.path, case.query, response.text)
                assert response.status_code in (400, 404, 405, 422), (case.path, case.query, response.text)

        fuzz()


def test_the_database_survived_the_fuzzing(db: DatabaseSettings) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM address")).scalar_one() > 30_000
        assert conn.execute(text("SELECT count(*) FROM api_key WHERE name = 'fuzzer'")).scalar_one() == 1
    engine.dispose()
