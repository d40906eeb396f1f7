"""Story: a benchmark whose request fails reports the failure, never a figure, and `make bench` exits non-zero.

The "Map layer payloads" table once showed seven 401 answers of 121 bytes as if they were payloads: the
benchmark had lost its credential and went on printing. These tests hold the harness to its contract: every
request is checked, a failed one raises BenchmarkFailed, and RESULTS.md is only written from a measurement that
returned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from benchmarks import common, run
from benchmarks.common import (
    BenchmarkFailed,
    PageRequests,
    Recorder,
    check,
    check_every_response,
    check_load,
    checked_client,
    wait_until_up,
)
from benchmarks.loadgen import LoadResult
from gis.settings import DatabaseSettings

SOFTWARE = {"PostgreSQL": "15.18", "PostGIS": "3.3.2", "PostGIS GEOS": "3.11.1", "PostGIS PROJ": "9.1.1"}
EARLIER = "# Benchmark results\n\n## Map layer payloads\n\n- date: earlier\n\n| figures | of an earlier run |\n"


def _answering(status: int, body: bytes = b'{"detail":"a credential is required"}') -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


def _unauthorized_measure() -> str:
    """A measurement like the old layer benchmark's: it asks the API without a credential."""
    with checked_client(transport=_answering(401), base_url="http://bench") as client:
        response = client.get("/v1/towns", params={"zoom": 10})
        return f"| towns | {len(response.content)} bytes |"


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RESULTS.md of this test only, holding an earlier run's section."""
    path = tmp_path / "RESULTS.md"
    path.write_text(EARLIER)
    monkeypatch.setattr(common, "RESULTS", path)
    return path


# ---------------------------------------------------------------- one request


def test_a_2xx_answer_passes_and_any_other_raises_naming_request_and_answer() -> None:
    ok = httpx.Response(201, request=httpx.Request("POST", "http://bench/v1/registrations"))
    assert check(ok) is ok
    for status in (301, 401, 403, 413, 429, 500):
        refused = httpx.Response(status, content=b"why", request=httpx.Request("GET", "http://bench/v1/grids?zoom=11"))
        with pytest.raises(BenchmarkFailed, match=rf"GET http://bench/v1/grids\?zoom=11 answered {status} .*why"):
            check(refused)


def test_a_checked_client_checks_every_request_without_being_asked() -> None:
    with checked_client(transport=_answering(200, b"{}"), base_url="http://bench") as client:
        assert client.get("/v1/towns").status_code == 200
    with checked_client(transport=_answering(401), base_url="http://bench") as client:
        with pytest.raises(BenchmarkFailed, match="answered 401 Unauthorized: .*credential is required"):
            client.get("/v1/towns")
        with pytest.raises(BenchmarkFailed, match="POST http://bench/v1/auth/token answered 401"):
            client.post("/v1/auth/token", data={"username": "u", "password": "p"})


def test_the_in_process_test_client_of_the_layer_benchmark_is_checked_too() -> None:
    app = FastAPI()

    @app.get("/v1/towns")
    def towns(zoom: int) -> dict[str, Any]:
        if zoom < 10:
            raise HTTPException(status_code=413, detail="layer_too_large")
        return {"type": "FeatureCollection", "features": []}

    with check_every_response(TestClient(app)) as client:
        assert client.get("/v1/towns", params={"zoom": 12}).json()["features"] == []
        with pytest.raises(BenchmarkFailed, match="answered 413"):
            client.get("/v1/towns", params={"zoom": 8})


def test_waiting_for_a_server_retries_connections_but_not_a_refusal() -> None:
    attempts: list[int] = []

    def starting(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(401, content=b"no key")

    with (
        checked_client(transport=httpx.MockTransport(starting), base_url="http://bench") as client,
        pytest.raises(BenchmarkFailed, match="answered 401"),
    ):
        wait_until_up(client, "/v1/geocode", params={"q": "x"}, timeout_s=30)
    assert len(attempts) == 3  # two refused connections retried, the 401 answer not


# ---------------------------------------------------------------- load runs and browser pages


def _load(statuses: dict[str, int]) -> LoadResult:
    sent = sum(statuses.values())
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    return LoadResult(sent=sent, ok=ok, errors=sent - ok, statuses=statuses, achieved_rps=1000.0, p50_ms=1.0,
                      p90_ms=2.0, p99_ms=3.0, max_ms=4.0)  # fmt: skip


def test_a_load_run_with_one_failed_request_fails() -> None:
    clean = _load({"200": 20_000})
    assert check_load(clean, "1,000 req/s") is clean
    with pytest.raises(BenchmarkFailed, match=r"1 of 20,000 requests failed .*no answer: 1"):
        check_load(_load({"0": 1, "200": 19_999}), "1,000 req/s")
    with pytest.raises(BenchmarkFailed, match=r"20,000 of 20,000 requests failed .*401: 20,000"):
        check_load(_load({"401": 20_000}), "1,000 req/s")


class _FakePage:
    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Any], None]] = {}

    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        self.handlers[event] = handler


def _response(status: int, url: str) -> SimpleNamespace:
    return SimpleNamespace(status=status, url=url, request=SimpleNamespace(method="GET"))


def test_a_browser_page_fails_on_any_failed_response_but_not_on_its_own_aborts() -> None:
    requests = PageRequests()
    page = _FakePage()
    requests.watch(page)  # type: ignore[arg-type]
    page.handlers["response"](_response(200, "http://bench/"))
    page.handlers["requestfailed"](
        SimpleNamespace(method="GET", url="http://bench/v1/grids", failure="net::ERR_ABORTED")
    )
    requests.check("dashboard")  # a newer map view aborted an older request: not a failure

    page.handlers["response"](_response(401, "http://bench/v1/towns?zoom=10"))
    with pytest.raises(
        BenchmarkFailed, match=r"1 requests failed, e.g. GET http://bench/v1/towns\?zoom=10 answered 401"
    ):
        requests.check("dashboard")

    refused = PageRequests()
    refused.watch(page)  # type: ignore[arg-type]
    page.handlers["requestfailed"](
        SimpleNamespace(method="GET", url="http://bench/", failure="net::ERR_CONNECTION_REFUSED")
    )
    with pytest.raises(BenchmarkFailed, match="ERR_CONNECTION_REFUSED"):
        refused.check("dashboard")
    with pytest.raises(BenchmarkFailed, match="no response"):
        PageRequests().check("dashboard")


# ---------------------------------------------------------------- RESULTS.md and the exit code


def test_a_failed_measurement_writes_nothing(results_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    monkeypatch.setattr(common, "write_section", lambda name, *a, **k: writes.append(name))
    with pytest.raises(BenchmarkFailed, match="Map layer payloads: GET http://bench/v1/towns.* answered 401"):
        Recorder("make bench", SOFTWARE).section("Map layer payloads", _unauthorized_measure)
    assert writes == []  # write_section was never reached
    assert results_file.read_text() == EARLIER


def test_a_measurement_that_returned_is_written_with_the_software_versions(results_file: Path) -> None:
    Recorder("make bench", SOFTWARE).section("Map layer payloads", lambda: "| towns | 253,368 bytes |")
    text = results_file.read_text()
    assert "| figures | of an earlier run |" not in text
    assert "| towns | 253,368 bytes |" in text
    assert "- software: PostgreSQL 15.18, PostGIS 3.3.2, PostGIS GEOS 3.11.1, PostGIS PROJ 9.1.1\n" in text


def test_make_bench_exits_non_zero_at_the_first_failed_benchmark_and_keeps_earlier_figures(
    results_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class _Engine:
        def connect(self) -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

        def dispose(self) -> None:
            pass

    monkeypatch.setattr(run, "bench_database", lambda: DatabaseSettings(database_url="postgresql://bench/none"))
    monkeypatch.setattr(run, "make_engine", lambda settings: _Engine())
    monkeypatch.setattr(run, "software_versions", lambda conn: SOFTWARE)
    monkeypatch.setattr(run, "bench_demo_load", lambda settings, scale: "| demo load | 43.5 s |")
    monkeypatch.setattr(run.bench_locate, "run", lambda engine: (_unauthorized_measure(), {}))
    monkeypatch.setattr(run, "bench_layers", lambda settings: pytest.fail("a benchmark after the failed one ran"))

    assert run.main([]) != 0
    text = results_file.read_text()
    assert "## Demo load (demo scale)" in text and "| demo load | 43.5 s |" in text  # measured before the failure
    assert "Locate" not in text  # the failed one: nothing written
    assert "| figures | of an earlier run |" in text  # the ones after it keep their earlier figures
    assert "benchmark failed: Locate: point → grid: GET http://bench/v1/towns?zoom=10 answered 401" in (
        capsys.readouterr().err
    )


# ---------------------------------------------------------------- the layer benchmark signs in


@pytest.mark.db
def test_the_layer_benchmark_signs_in_and_measures_every_layer(db: DatabaseSettings) -> None:
    body = run.bench_layers(db)
    rows = [line for line in body.splitlines() if line.startswith(("| towns", "| grids"))]
    assert len(rows) == 5
    assert "| towns | whole city | 10 | 33 |" in body


@pytest.mark.db
def test_the_layer_benchmark_fails_when_its_key_is_refused(
    db: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = run.create_api_key

    def unknown_key(conn: Any, secret_key: str, **kwargs: Any) -> Any:
        return real(conn, "not the server's secret " + "x" * 20, **kwargs)  # its digest matches nothing the server has

    monkeypatch.setattr(run, "create_api_key", unknown_key)
    with pytest.raises(BenchmarkFailed, match=r"GET http://testserver/v1/towns\?.* answered 401"):
        run.bench_layers(db)
