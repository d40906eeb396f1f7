"""benchmarks.soak: the soak — mixed traffic at 32 connections against a live `gridgov serve` for 10 minutes.

The mix is what a working city sends: geocoding (the API and the Nominatim face), registration intake (an intake
key, one event per request), dashboard reads (task lists, statistics, the command centre's KPIs) and vector tiles
over the city. Every answer must be 2xx (204 for an empty tile): one failed request fails the benchmark. The server's
resident memory is read every 10 s; "flat" means the last minute's mean is less than 10 % above the first minute
after warm-up (a growth over 25 % fails the benchmark as a leak). The same mix at 1 connection for 30 s is the
same-run baseline.

`GRIDGOV_SOAK_SECONDS` (or `--soak-seconds N` with `python -m benchmarks.soak`) shortens the soak for a quick run.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from api.auth import service
from benchmarks.common import BenchmarkFailed, checked_client, wait_until_up
from gis import clock
from gis.cluster import free_port
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.uscc import uscc_check_char

CONNECTIONS = 32
SOAK_SECONDS = 600.0
BASELINE_SECONDS = 30.0
WARMUP_SECONDS = 20.0
RSS_EVERY_SECONDS = 10.0
FLAT_GROWTH = 0.10
LEAK_GROWTH = 0.25
GRIDGOV = str(Path(sys.executable).with_name("gridgov"))
# What one request of the mix is, by weight (out of 100).
MIX = (("geocode", 30), ("nominatim", 15), ("intake", 5), ("dashboard", 30), ("tiles", 20))


def soak_seconds() -> float:
    """The soak's duration: GRIDGOV_SOAK_SECONDS when set, else 10 minutes."""
    return float(os.environ.get("GRIDGOV_SOAK_SECONDS") or SOAK_SECONDS)


@dataclass
class World:
    """What the traffic needs: credentials, addresses to geocode, tiles over the city, where to send events."""

    key: str
    bearer: str
    queries: list[str]
    doors: list[str]
    tiles: list[str]
    town_code: str


@dataclass
class Tally:
    """Latencies per kind, error answers by kind and status."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sent: int = 0


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _key(conn: Any, secret: str) -> str:
    """A rate-limit-exempt key that may geocode, read tiles and send registrations."""
    kwargs: dict[str, Any] = {"name": f"soak-{time.time_ns()}", "rate_limited": False}
    if "permissions" in inspect.signature(service.create_api_key).parameters:
        kwargs["permissions"] = ["geocode", "gis", "intake"]
    return service.create_api_key(conn, secret, **kwargs).key


def prepare(settings: DatabaseSettings, secret: str) -> tuple[World, str]:
    """The key, a command-centre account (its password), the queries, the doors and the tiles of the city."""
    engine = make_engine(settings)
    password = secrets.token_urlsafe(18)
    username = f"soak-centre-{time.time_ns()}"
    with engine.begin() as conn:
        key = _key(conn, secret)
        service.create_user(conn, username=username, role="command_centre", scope=None, password=password)
        queries = [r[0] for r in conn.execute(text("SELECT raw_address FROM entity ORDER BY uscc LIMIT 5000"))]
        doors = list(
            conn.execute(text("SELECT full_text FROM address WHERE level = 'door' ORDER BY id LIMIT 2000")).scalars()
        )
        town_code = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1")).scalar_one()
        lon, lat = conn.execute(
            text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c FROM town) s")
        ).one()
    engine.dispose()
    tiles = []
    for z in (12, 13, 14):
        cx, cy = _tile(lon, lat, z)
        for layer in ("towns", "grids", "tasks"):
            tiles += [f"/tiles/{layer}/{z}/{cx + dx}/{cy + dy}.mvt" for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    world = World(key=key, bearer="", queries=queries or doors, doors=doors, tiles=tiles, town_code=town_code)
    return world, f"{username}\n{password}"


def _event(serial: int, address: str) -> dict[str, Any]:
    first17 = f"92441900MC{serial % 10_000_000:07d}"
    return {
        "event_id": f"soak-{time.time_ns()}-{serial}",
        "kind": "new",
        "uscc": first17 + uscc_check_char(first17),
        "name": f"东莞市浸泡测试商店{serial}",
        "address": address,
        "business_scope": "小餐饮服务",
        "occurred_at": (clock.now() - timedelta(minutes=1)).isoformat(),
    }


def _request(kind: str, world: World, rng: random.Random, serial: int) -> tuple[str, str, dict[str, Any]]:
    """One request of a kind: method, path, httpx arguments."""
    key = {"X-API-Key": world.key}
    if kind == "geocode":
        return "GET", "/v1/geocode", {"params": {"q": rng.choice(world.queries)}, "headers": key}
    if kind == "nominatim":
        return "GET", "/search", {"params": {"q": rng.choice(world.queries), "format": "json"}, "headers": key}
    if kind == "intake":
        return "POST", "/v1/registrations", {"json": _event(serial, rng.choice(world.doors)), "headers": key}
    centre = {"Authorization": f"Bearer {world.bearer}"}
    if kind == "tiles":  # outlines with the key (gis); the work layer as the command centre's map reads it
        tile = rng.choice(world.tiles)
        return "GET", tile, {"headers": centre if tile.startswith("/tiles/tasks/") else key}
    path, params = rng.choice(
        [
            ("/v1/tasks", {"limit": 50}),
            ("/v1/stats", {}),
            ("/v1/kpi", {}),
            ("/v1/kpi", {"level": "town", "code": world.town_code}),
        ]
    )
    return "GET", path, {"params": params, "headers": centre}


async def _traffic(base_url: str, world: World, connections: int, seconds: float, seed: int) -> Tally:
    tally = Tally()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    serial = [seed * 1_000_000]
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while time.monotonic() < deadline:
                kind = rng.choice(kinds)
                serial[0] += 1
                method, path, args = _request(kind, world, rng, serial[0])
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, **args)
                    ok = 200 <= response.status_code < 300
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    ok, status = False, type(exc).__name__
                tally.latencies[kind].append((time.perf_counter() - started) * 1000)
                tally.sent += 1
                if not ok:
                    tally.errors[f"{kind} {method} {path}: {status}"] += 1

        await asyncio.gather(*(worker(n) for n in range(connections)))
    return tally


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _table(tally: Tally, seconds: float) -> str:
    rows = ["| kind | requests | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for kind, _ in MIX:
        values = tally.latencies.get(kind, [])
        rows.append(
            f"| {kind} | {len(values):,} | {_quantile(values, 0.5):.1f} | {_quantile(values, 0.95):.1f} | "
            f"{_quantile(values, 0.99):.1f} |"
        )
    everything = [v for values in tally.latencies.values() for v in values]
    rows.append(
        f"| **all** | {tally.sent:,} | {_quantile(everything, 0.5):.1f} | {_quantile(everything, 0.95):.1f} | "
        f"{_quantile(everything, 0.99):.1f} |"
    )
    return "\n".join(rows) + f"\n\nThroughput: {tally.sent / seconds:,.0f} req/s; errors: {sum(tally.errors.values())}."


def _check(tally: Tally, what: str) -> None:
    if tally.errors:
        worst = ", ".join(f"{name} ×{n}" for name, n in sorted(tally.errors.items(), key=lambda i: -i[1])[:8])
        raise BenchmarkFailed(f"{what}: {sum(tally.errors.values()):,} of {tally.sent:,} requests failed ({worst})")


def run(settings: DatabaseSettings, *, seconds: float | None = None) -> str:
    """Serve the city with `gridgov serve`, run the baseline then the soak; the section's markdown."""
    seconds = soak_seconds() if seconds is None else seconds
    window = min(60.0, max(RSS_EVERY_SECONDS, (seconds - WARMUP_SECONDS) / 3))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as state:
        secret = "s" * 40
        world, account = prepare(settings, secret)
        username, password = account.split("\n")
        port = free_port()
        env = {
            **os.environ,
            "GRIDGOV_DATABASE_URL": settings.sqlalchemy_url(),
            "GRIDGOV_SECRET_KEY": secret,
            "GRIDGOV_STATE_DIR": state,
            # A bearer token outlives the soak.
            "GRIDGOV_TOKEN_MINUTES": str(max(30, int(seconds / 60) + 30)),
        }
        log_path = Path(state) / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen([GRIDGOV, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            with checked_client(base_url=base, timeout=120) as client:
                wait_until_up(client, "/ready", server=server, timeout_s=300)
                token = client.post("/v1/auth/token", data={"username": username, "password": password})
                world.bearer = token.json()["access_token"]
                for q in world.queries[:300]:  # the index is built, the caches are warm
                    client.get("/v1/geocode", params={"q": q}, headers={"X-API-Key": world.key})
            baseline = asyncio.run(_traffic(base, world, 1, BASELINE_SECONDS, seed=1))
            _check(baseline, f"the baseline (1 connection, {BASELINE_SECONDS:.0f} s)")
            samples: list[tuple[float, int]] = []
            stop = threading.Event()
            t0 = time.monotonic()

            def sample() -> None:
                while not stop.is_set():
                    samples.append((time.monotonic() - t0, _rss_kib(server.pid)))
                    stop.wait(RSS_EVERY_SECONDS)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                soak = asyncio.run(_traffic(base, world, CONNECTIONS, seconds, seed=2))
            finally:
                stop.set()
                sampler.join()
            samples.append((time.monotonic() - t0, _rss_kib(server.pid)))
            _check(soak, f"the soak ({CONNECTIONS} connections, {seconds:.0f} s)")
        finally:
            server.terminate()
            try:
                code = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
    load_after = os.getloadavg()[0]
    if code != 0:
        raise BenchmarkFailed(f"gridgov serve exited with code {code} on SIGTERM after the soak")
    first = [kib for at, kib in samples if WARMUP_SECONDS <= at < WARMUP_SECONDS + window]
    last = [kib for at, kib in samples if at >= seconds - window]
    first_mib = statistics.mean(first or [samples[0][1]]) / 1024
    last_mib = statistics.mean(last or [samples[-1][1]]) / 1024
    growth = last_mib / first_mib - 1
    if growth > LEAK_GROWTH:
        raise BenchmarkFailed(f"server memory grew {growth:.0%} ({first_mib:.0f} → {last_mib:.0f} MiB): a leak")
    verdict = "flat" if growth < FLAT_GROWTH else "NOT flat"
    rss_series = ", ".join(f"{kib / 1024:.0f}" for _, kib in samples)
    mix = ", ".join(f"{kind} {weight} %" for kind, weight in MIX)
    return (
        f"`gridgov serve` (one process: API, relay, scheduled jobs) on the bench city; {CONNECTIONS} concurrent "
        f"keep-alive connections (httpx, asyncio, one client process on the same 2 cores) for {seconds:.0f} s of "
        f"mixed traffic, closed loop: {mix}. Geocoding is `GET /v1/geocode` and Nominatim `GET /search` with noisy "
        "registration addresses; intake is `POST /v1/registrations`, one new event each, with an intake key (the relay "
        "turns them into tasks meanwhile); dashboard reads are the command centre's `/v1/tasks`, `/v1/stats` and "
        "`/v1/kpi`; tiles are towns, grids and tasks at z 12–14 over the city. Every answer was 2xx (one failed "
        "request fails the benchmark).\n\n"
        f"### Soak: {CONNECTIONS} connections, {seconds:.0f} s\n\n{_table(soak, seconds)}\n\n"
        f"### Baseline: 1 connection, {BASELINE_SECONDS:.0f} s (same run, same mix)\n\n"
        f"{_table(baseline, BASELINE_SECONDS)}\n\n"
        f"### Server memory (RSS, every {RSS_EVERY_SECONDS:.0f} s)\n\n"
        f"After {WARMUP_SECONDS:.0f} s of warm-up, first {window:.0f} s: {first_mib:.0f} MiB; last {window:.0f} s: "
        f"{last_mib:.0f} MiB; growth {growth:+.1%}: **{verdict}** (flat < {FLAT_GROWTH:.0%}, a leak > "
        f"{LEAK_GROWTH:.0%} fails).\n\nSamples (MiB): {rss_series}.\n\n"
        f"The server exited {code} on SIGTERM at the end (graceful shutdown). Load average (1 min) of the machine "
        f"at the start and the end: {load_before:.1f}, {load_after:.1f} (the soak's own client and server included)."
    )


def main(argv: list[str]) -> int:
    """`python -m benchmarks.soak [--soak-seconds N] [--write]` on the bench database (as loaded by `make bench`):
    prints the section, and with `--write` records it as "Soak" in RESULTS.md."""
    from benchmarks.common import write_section
    from benchmarks.run import bench_database
    from gis.versions import software_versions

    seconds = float(argv[argv.index("--soak-seconds") + 1]) if "--soak-seconds" in argv else None
    settings = bench_database()
    body = run(settings, seconds=seconds)
    print(body)
    if "--write" in argv:
        engine = make_engine(settings)
        with engine.connect() as conn:
            software = software_versions(conn)
        engine.dispose()
        write_section("Soak", body, "python -m benchmarks.soak " + " ".join(argv), software=software)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
