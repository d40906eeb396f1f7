"""Whatever a client sends to the workflow endpoints, it gets an answer or a 4xx with the one error body, never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import bearer, make_users
from tests.support.server import make_app

pytestmark = pytest.mark.db

FUZZED = {
    ("POST", "/v1/registrations"),
    ("GET", "/v1/tasks"),
    ("GET", "/v1/tasks/{task_id}"),
    ("POST", "/v1/tasks/{task_id}/transitions"),
    ("POST", "/v1/review/{review_id}/resolve"),
    ("POST", "/v1/clues"),
    ("GET", "/v1/clues"),
    ("GET", "/v1/stats"),
}
EXAMPLES_PER_MODE = 12


@pytest.fixture(scope="module")
def app_and_token(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str]:
    engine = make_engine(db)
    with engine.begin() as conn:
        make_users(conn, {"fuzz": ("command_centre", None)})
    engine.dispose()
    app = make_app(db, tmp_path_factory.mktemp("state"))
    with TestClient(app) as client:
        token = bearer(client, "fuzz")["Authorization"].removeprefix("Bearer ")
    return app, token


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_server_error_on_any_input(app_and_token: tuple[object, str], mode: schemathesis.GenerationMode) -> None:
    app, token = app_and_token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    fuzzed = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"unreadable operation in the OpenAPI spec: {result.err()}"
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in FUZZED:
            continue
        fuzzed.append((operation.method.upper(), operation.path))

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])
            if 400 <= response.status_code < 500:
                body = response.json()
                assert {"error", "detail"} <= set(body), (case.path, case.body, response.text)

        fuzz()
    assert set(fuzzed) == FUZZED


def test_the_database_survived_the_fuzzing(db: DatabaseSettings) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM registration_event")).scalar_one()
        outbox = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
        assert conn.execute(text("SELECT count(*) FROM address")).scalar_one() > 30_000
    engine.dispose()
    assert events == outbox, "every accepted event has its outbox row"
