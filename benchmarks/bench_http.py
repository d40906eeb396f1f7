"""benchmarks.bench_http: GET /v1/geocode under a fixed offered load from a second process, one server worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from api.auth.service import create_api_key
from gis.cluster import free_port
from gis.settings import DatabaseSettings

RATE = 1000
SECONDS = 20
CONNECTIONS = 32


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Start uvicorn (1 worker), warm it, offer 1,000 req/s for 20 s, then find the highest rate it sustains."""
    with tempfile.TemporaryDirectory() as state:
        secret = "h" * 40
        with engine.begin() as conn:
            key = create_api_key(conn, secret, name=f"bench-{time.time_ns()}", rate_limited=False).key
            queries = [r[0] for r in conn.execute(text("SELECT raw_address FROM entity ORDER BY uscc LIMIT 20000"))]
        queries_file = Path(state) / "queries.txt"
        queries_file.write_text("\n".join(q.replace("\n", " ") for q in queries), encoding="utf-8")
        port = free_port()
        env = {
            **os.environ,
            "GRIDGOV_DATABASE_URL": settings.sqlalchemy_url(),
            "GRIDGOV_SECRET_KEY": secret,
            "GRIDGOV_STATE_DIR": state,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/v1/geocode"
        try:
            deadline = time.time() + 120
            while True:
                try:
                    if (
                        httpx.get(url, params={"q": queries[0]}, headers={"X-API-Key": key}, timeout=120).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError("server did not come up")
                time.sleep(0.5)
            for q in queries[:500]:  # warm caches
                httpx.get(url, params={"q": q}, headers={"X-API-Key": key})
            fixed = _load(url, key, RATE, SECONDS, queries_file)
            ceiling = []
            for rate in (1500, 2000, 3000):
                result = _load(url, key, rate, 8, queries_file)
                ceiling.append((rate, result))
                if result["achieved_rps"] < rate * 0.95 or result["p99_ms"] > 200:
                    break
        finally:
            server.terminate()
            server.wait(timeout=20)
    rows = "\n".join(
        f"| {rate:,} req/s offered, 8 s | {r['achieved_rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']:,} |"
        for rate, r in ceiling
    )
    return (
        f"uvicorn, 1 worker, `GET /v1/geocode?q=` with 20,000 distinct noisy registrations, a rate-limit-exempt API key; "
        f"open-loop load from a second process (`benchmarks/loadgen.py`, raw asyncio HTTP/1.1 keep-alive, {CONNECTIONS} connections, latency "
        "measured from each request's due time). Both share the 2 cores.\n\n"
        "| load | achieved req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n"
        f"| {RATE:,} req/s offered, {SECONDS} s | {fixed['achieved_rps']:,.0f} | {fixed['p50_ms']:.1f} | "
        f"{fixed['p99_ms']:.1f} | {fixed['errors']:,} |\n" + rows + "\n\n"
        f"Budget: p99 ≤ 10 ms at 1,000 req/s: {'met' if fixed['p99_ms'] <= 10 else 'MISSED'}."
    )


def _load(url: str, key: str, rate: int, seconds: int, queries_file: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            url,
            key,
            str(rate),
            str(seconds),
            str(CONNECTIONS),
            str(queries_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
