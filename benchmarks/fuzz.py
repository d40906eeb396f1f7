"""benchmarks.fuzz: section "Fuzz" of `make bench` — schemathesis over the whole OpenAPI, 0 failures required.

On a COPY of the bench database (`CREATE DATABASE … TEMPLATE`, dropped at the end: the fuzzer's writes never reach
the bench city), the app in-process (benchmarks.fuzz_openapi, the same definition `make test` runs smaller):

1. every operation, as the command centre (bearer token), up to CASES_PER_MODE positive and CASES_PER_MODE negative
   cases, within a time budget shared evenly over the operations (a probe measures each operation's pace; hypothesis
   stops earlier on an operation whose inputs are all tried: a GET without parameters has one case);
2. every operation as an API key of the default permission (geocode), the same way within its own budget;
3. schemathesis' state machine over the OpenAPI links (POST → GET of the id it answered);
4. baseline, same run: the cases per second of GET /health, an operation that does nothing.

A case fails when the answer is a 5xx, or its body is not what the spec declares for its status, or a /v1 refusal
lacks the error body: any failure fails the benchmark (it is listed). schemathesis' `--workers` belongs to its
command-line runner against a served URL; in-process the app and the fuzzer share one interpreter (one core's worth
under the GIL), so the run is sequential.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import schemathesis
from fastapi import FastAPI
from sqlalchemy import make_url

from api.auth.service import create_api_key, create_user
from api.main import create_app
from benchmarks.common import BenchmarkFailed
from benchmarks.fuzz_openapi import Tally, fuzz_schema, operations, run_operation, run_stateful, sign_in
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings

COPY = "gridgov_bench_fuzz"
CASES_PER_MODE = 500  # positive and negative: 1,000 cases per operation as the command centre
KEY_CASES_PER_MODE = 500
PROBE_PER_MODE = 5
# By default every operation gets its 1,000 cases (about an hour a pass on 2 cores). GRIDGOV_FUZZ_BUDGET_MINUTES
# gives a quick run instead: each pass shares that many minutes out evenly over the operations.
BUDGET_ENV = "GRIDGOV_FUZZ_BUDGET_MINUTES"
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS = 8
SEED = 20201101
SECRET = "bench-fuzz-secret-" + "f" * 32
PASSWORD = "fuzzing centre passphrase 2026"
CLONE_ATTEMPTS = 300  # seconds: another benchmark's server (the soak) may still hold the bench database


def run(settings: DatabaseSettings, state_dir: Path) -> str:
    """Fuzz a copy of the bench database; the section's markdown, or BenchmarkFailed naming every failure."""
    cluster = LocalCluster.from_settings(DatabaseSettings())
    template = make_url(settings.sqlalchemy_url()).database
    assert template is not None
    cluster.drop_database(COPY)
    _clone(cluster, template)
    try:
        return _fuzz(DatabaseSettings(database_url=cluster.url(COPY)), state_dir)
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # the app in-process lets go of the copy before it is dropped
        cluster.drop_database(COPY)


def _clone(cluster: LocalCluster, template: str) -> None:
    for _ in range(CLONE_ATTEMPTS):
        try:
            cluster.clone_database(COPY, template)
            return
        except psycopg.errors.ObjectInUse:
            time.sleep(1.0)
    raise BenchmarkFailed(f"the bench database {template} stayed in use: it cannot be copied")


def _fuzz(copy: DatabaseSettings, state_dir: Path) -> str:
    engine = make_engine(copy)
    with engine.begin() as conn:
        create_user(conn, username="bench_fuzz_centre", role="command_centre", scope=None, password=PASSWORD)
        key = create_api_key(conn, SECRET, name="bench-fuzz", rate_limited=False).key
    engine.dispose()
    app = create_app(db_settings=copy, server_settings=ServerSettings(secret_key=SECRET, state_dir=state_dir))
    schema = fuzz_schema(app)
    token = {"value": _sign_in(app)}

    def centre() -> dict[str, str]:
        return {"Authorization": f"Bearer {token['value']}"}

    rows: list[str] = []
    failures: list[tuple[str, str]] = []
    budget_s = float(os.environ[BUDGET_ENV]) * 60 if os.environ.get(BUDGET_ENV) else None
    for label, headers, per_mode in (
        ("command centre (bearer token)", centre, CASES_PER_MODE),
        ("API key, default permission", lambda: {"X-API-Key": key}, KEY_CASES_PER_MODE),
    ):
        token["value"] = _sign_in(app)  # the previous pass fuzzed POST /v1/auth/revoke last
        tally, seconds = _every_operation(schema, headers, per_mode, budget_s)
        failures += tally.failures
        rows.append(_row(label, tally, seconds, per_mode))
    token["value"] = _sign_in(app)
    t0 = time.perf_counter()
    try:
        stateful = run_stateful(schema, centre, scenarios=STATEFUL_SCENARIOS, steps=STATEFUL_STEPS)
    except (Exception, BaseExceptionGroup) as exc:  # a failing chain is a finding: listed, and the benchmark fails
        stateful = Tally(failures=[("stateful", _first_line(exc))])
    stateful_s = time.perf_counter() - t0
    failures += stateful.failures
    rows.append(
        f"| state machine over the links ({STATEFUL_SCENARIOS} scenarios of up to {STATEFUL_STEPS} calls) "
        f"| {len(stateful.cases)} | {sum(stateful.cases.values()):,} | — | — | {len(stateful.failures)} "
        f"| {stateful_s:.0f} | {sum(stateful.cases.values()) / stateful_s:.0f} |"
    )
    health = next(op for op in operations(schema) if op.path == "/health")
    baseline = Tally()
    t0 = time.perf_counter()
    for _ in range(50):
        run_operation(health, centre, examples=10, seed=SEED, tally=baseline)
    baseline_s = time.perf_counter() - t0
    text_rows = "\n".join(rows)
    body = (
        "| run | operations | cases | cases an operation: fewest / median | operations at ≥ 1,000 cases "
        "| failures | seconds | cases/s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        f"{text_rows}\n"
        f"| baseline: GET /health (does nothing), same run | 1 | {sum(baseline.cases.values()):,} | — | — | 0 "
        f"| {baseline_s:.1f} | {sum(baseline.cases.values()) / baseline_s:.0f} |\n\n"
        f"schemathesis, checks: not_a_server_error, response_schema_conformance, and the /v1 error body; strings may hold NUL and control characters "
        f"(allow-x00, utf-8); hypothesis seed {SEED}. "
        + (
            f"Quick run ({BUDGET_ENV}={budget_s / 60:.0f}): each pass shares that budget evenly over the operations "
            f"(a probe of {2 * PROBE_PER_MODE} cases measures an operation's pace)"
            if budget_s is not None
            else "Every operation gets up to 1,000 cases (500 positive, 500 negative)"
        )
        + "; operations whose every input was tried stop earlier (hypothesis does not send a case twice)."
    )
    if failures:
        listed = "\n".join(f"- {where}: {what}" for where, what in failures[:50])
        raise BenchmarkFailed(f"{len(failures)} fuzzing failures:\n{listed}")
    return body


def _sign_in(app: FastAPI) -> str:
    token = sign_in(app, "bench_fuzz_centre", PASSWORD)
    if token is None:
        raise BenchmarkFailed("the fuzzing account cannot sign in")
    return token


def _every_operation(
    schema: schemathesis.BaseSchema, headers: Callable[[], dict[str, str]], per_mode: int, budget_s: float | None
) -> tuple[Tally, float]:
    """Each operation gets `per_mode` cases each way; with `budget_s`, its share of the budget: a probe of
    PROBE_PER_MODE cases each way measures its pace, then it gets as many as its share allows, up to `per_mode`."""
    tally = Tally()
    found = operations(schema)
    t0 = time.perf_counter()
    for operation in found:
        name = f"{operation.method.upper()} {operation.path}"
        try:
            if budget_s is None:
                run_operation(operation, headers, examples=per_mode, seed=SEED, tally=tally)
                continue
            share_s = budget_s / len(found)
            probe = Tally()
            run_operation(operation, headers, examples=PROBE_PER_MODE, seed=SEED, tally=probe)
            per_case_s = probe.seconds[name] / max(probe.cases.get(name, 1), 1)
            examples = max(PROBE_PER_MODE, min(per_mode, int(share_s / per_case_s / 2)))
            run_operation(operation, headers, examples=examples, seed=SEED, tally=tally)
        except (Exception, BaseExceptionGroup) as exc:  # a failing case is a finding: listed, and the benchmark fails
            tally.failures.append((name, _first_line(exc)))
    return tally, time.perf_counter() - t0


def _row(label: str, tally: Tally, seconds: float, per_mode: int) -> str:
    counts = sorted(tally.cases.values())
    cases = sum(counts)
    median = counts[len(counts) // 2] if counts else 0
    thousand = sum(1 for n in counts if n >= 1000)
    return (
        f"| {label}, up to {2 * per_mode:,} cases an operation | {len(counts)} | {cases:,} "
        f"| {counts[0] if counts else 0:,} / {median:,} | {thousand} | {len(tally.failures)} | {seconds:.0f} "
        f"| {cases / seconds:.0f} |"
    )


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}"[:300]


def main() -> int:
    """`python -m benchmarks.fuzz`: this section alone, on the bench database as `make bench` last left it."""
    import sys
    import tempfile

    from benchmarks.common import write_section
    from benchmarks.run import BENCH_DATABASE
    from gis.versions import software_versions

    cluster = LocalCluster.from_settings(DatabaseSettings())
    cluster.start()
    settings = DatabaseSettings(database_url=cluster.url(BENCH_DATABASE))
    engine = make_engine(settings)
    with engine.connect() as conn:
        software = software_versions(conn)
    engine.dispose()
    try:
        with tempfile.TemporaryDirectory() as state:
            body = run(settings, Path(state))
    except BenchmarkFailed as failure:
        print(f"benchmark failed: Fuzz: {failure}", file=sys.stderr)
        return 1
    print(body)
    write_section("Fuzz", body, "python -m benchmarks.fuzz", software=software)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
