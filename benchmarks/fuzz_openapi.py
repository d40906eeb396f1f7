"""benchmarks.fuzz_openapi: the whole OpenAPI of the app, fuzzed by schemathesis, for `make test` and `make bench`.

One definition serves the test (tests/api/test_openapi_fuzz.py, a small derandomized run) and the benchmark
(benchmarks/fuzz.py, at least 1,000 cases per operation):

- `fuzz_schema`: the app's own OpenAPI document, with OpenAPI links added where a POST answers an id that a GET (or
  another POST) takes, so that schemathesis' state machine can chain them; strings may hold NUL and every other
  control character (schemathesis' `allow-x00`, codec utf-8); schemathesis does not invent credentials of its own
  (the run sends a real one);
- `run_operation`: every case of one operation, positive and negative, checked: no 5xx, every body as the spec
  declares it for its status, and a /v1 refusal carries the machine-readable error body;
- `run_stateful`: the state machine over the links.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

# No 5xx, and every answer's body as the spec declares it for its status. (schemathesis' status_code_conformance
# and content_type_conformance are left out: a 404 of an unknown id, a refusal in JSON beside a GeoJSON answer are
# right answers the generated spec does not list.)
CHECKS = [not_a_server_error, response_schema_conformance]
# A case waits this long for its answer (schemathesis' default, 10 s, is shorter than a heavy query on a busy CI).
REQUEST_TIMEOUT_S = 60
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Server-sent events never end: a fuzzer's client would wait forever (the stream has its own tests, test_live.py).
# The readiness check's 503 is its answer, not a fault: a database behind the migrations' head (a bench copy made
# before the newest migration) is not ready (tests/api/test_observability.py covers it).
UNFUZZED = frozenset({("GET", "/v1/live"), ("GET", "/ready")})
# Whatever revokes the caller's own credential runs last (after it, the credential is refused: still checked).
LAST = frozenset({("POST", "/v1/auth/revoke")})

# (source method, source path, status, link name, target method, target path, {target parameter: expression})
LINKS: tuple[tuple[str, str, str, str, str, str, dict[str, str]], ...] = (
    ("post", "/v1/registrations", "201", "ReadRegistration", "get", "/v1/registrations/{event_id}",
     {"event_id": "$response.body#/event_id"}),
    ("post", "/v1/clues", "201", "ReadClue", "get", "/v1/clues/{clue_id}", {"clue_id": "$response.body#/id"}),
    ("post", "/v1/clues", "201", "AddCluePhoto", "post", "/v1/clues/{clue_id}/photos",
     {"clue_id": "$response.body#/id"}),
    ("post", "/v1/clues/{clue_id}/photos", "201", "ReadPhoto", "get", "/v1/photos/{photo_id}",
     {"photo_id": "$response.body#/id"}),
    ("post", "/v1/tasks/{task_id}/transitions", "200", "ReadTaskHistory", "get", "/v1/tasks/{task_id}/history",
     {"task_id": "$response.body#/id"}),
    ("post", "/v1/tasks/{task_id}/transitions", "200", "MoveAgain", "post", "/v1/tasks/{task_id}/transitions",
     {"task_id": "$response.body#/id"}),
    ("post", "/v1/tasks/{task_id}/photos", "201", "ReadTaskPhoto", "get", "/v1/task-photos/{photo_id}",
     {"photo_id": "$response.body#/id"}),
    ("post", "/v1/inspection-plans", "201", "ReadPlan", "get", "/v1/inspection-plans/{plan_id}",
     {"plan_id": "$response.body#/id"}),
    ("post", "/v1/inspection-plans", "201", "DrawPlan", "post", "/v1/inspection-plans/{plan_id}/draw",
     {"plan_id": "$response.body#/id"}),
    ("post", "/v1/inspection-plans", "201", "CancelPlan", "post", "/v1/inspection-plans/{plan_id}/cancel",
     {"plan_id": "$response.body#/id"}),
    ("post", "/v1/grid-versions", "201", "ReadDraft", "get", "/v1/grid-versions/{version_id}",
     {"version_id": "$response.body#/id"}),
    ("post", "/v1/grid-versions", "201", "CompareDraft", "get", "/v1/grid-versions/{version_id}/comparison",
     {"version_id": "$response.body#/id"}),
    ("post", "/v1/grid-versions", "201", "DiscardDraft", "delete", "/v1/grid-versions/{version_id}",
     {"version_id": "$response.body#/id"}),
    ("post", "/v1/geocode/batch", "202", "ReadJob", "get", "/v1/geocode/batch/{job_id}",
     {"job_id": "$response.body#/id"}),
    ("post", "/v1/geocode/batch", "202", "ReadJobResult", "get", "/v1/geocode/batch/{job_id}/result",
     {"job_id": "$response.body#/id"}),
)  # fmt: skip


def linked_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI document with LINKS added to the answers they start from."""
    document = copy.deepcopy(dict(spec))
    paths = document["paths"]
    for method, path, status, name, target_method, target_path, parameters in LINKS:
        if path not in paths or target_path not in paths:
            continue  # an operation this app does not serve
        answer = paths[path][method]["responses"].setdefault(status, {"description": "OK"})
        answer.setdefault("links", {})[name] = {
            "operationId": paths[target_path][target_method]["operationId"],
            "parameters": parameters,
        }
    return document


def fuzz_schema(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's whole OpenAPI document (with LINKS), served in-process, NUL and control characters allowed."""
    config = SchemathesisConfig.from_dict(
        {"generation": {"allow-x00": True, "codec": "utf-8", "with-security-parameters": False}}
    )
    schema = schemathesis.openapi.from_dict(linked_spec(app.openapi()), config=config)
    schema.app = app
    schema.location = "/openapi.json"
    return schema


def sign_in(app: FastAPI, username: str, password: str) -> str | None:
    """A bearer token for the account, asked of the app in-process (the fuzzer's own lifespan); None if refused."""
    from schemathesis.python import asgi

    with asgi.get_client(app) as client:  # type: ignore[arg-type]  # FastAPI is an ASGI app (Starlette's typing)
        response = client.post("/v1/auth/token", data={"username": username, "password": password})
    return str(response.json()["access_token"]) if response.status_code == 200 else None


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    """Every operation but the streams, the ones that revoke the caller last; unreadable ones fail."""
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"unreadable operation in the OpenAPI spec: {result.err()}"
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in UNFUZZED:
            found.append(operation)
    return sorted(found, key=lambda op: (op.method.upper(), op.path) in LAST)


def check_refusal(case: schemathesis.Case, response: Any) -> None:
    """A /v1 refusal is the one JSON error body (api/errors.py)."""
    if case.path.startswith("/v1/") and 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and {"error", "detail"} <= set(body), (case.method, case.path, response.text)


@dataclass
class Tally:
    """What a run did: cases sent per operation, and the failures (operation, message)."""

    cases: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def count(self, name: str) -> None:
        self.cases[name] = self.cases.get(name, 0) + 1


def run_operation(
    operation: schemathesis.APIOperation,
    headers: Callable[[], dict[str, str]],
    *,
    examples: int,
    seed: int | None,
    tally: Tally,
) -> None:
    """`examples` positive and `examples` negative cases of one operation; a failing check raises."""
    name = f"{operation.method.upper()} {operation.path}"
    for mode in MODES:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=seed is None,
            database=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        def fuzz(case: schemathesis.Case) -> None:
            tally.count(name)
            response = case.call(headers=headers(), timeout=REQUEST_TIMEOUT_S)
            case.validate_response(response, checks=CHECKS)
            check_refusal(case, response)

        if seed is not None:
            fuzz = _seeded(fuzz, seed)
        t0 = time.perf_counter()
        try:
            fuzz()
        except Unsatisfiable:
            # An operation without parameters or body has no input outside its spec: nothing negative to send.
            if mode is not schemathesis.GenerationMode.NEGATIVE:
                raise
        finally:
            tally.seconds[name] = tally.seconds.get(name, 0.0) + time.perf_counter() - t0


def _seeded(test: Callable[[], None], seed: int) -> Callable[[], None]:
    from hypothesis import seed as with_seed

    return with_seed(seed)(test)


def run_stateful(
    schema: schemathesis.BaseSchema, headers: Callable[[], dict[str, str]], *, scenarios: int, steps: int
) -> Tally:
    """schemathesis' state machine over the links: `scenarios` chains of up to `steps` calls, every answer checked."""
    tally = Tally()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            return case.call(headers=headers(), timeout=REQUEST_TIMEOUT_S)

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            tally.count(f"{case.operation.method.upper()} {case.operation.path}")
            case.validate_response(response, checks=CHECKS)
            check_refusal(case, response)

    Machine.run(
        settings=settings(
            max_examples=scenarios,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
    )
    return tally
