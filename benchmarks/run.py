"""benchmarks.run: `make bench` — load, locate, layers, geocoder, scale-out, tiles, dashboard, intake, import, simulation; figures go to RESULTS.md.

Each section is written as soon as its benchmark has measured it, and only then: a benchmark whose request fails
(BenchmarkFailed, benchmarks.common) writes nothing, the run stops there and exits 1.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.auth.service import create_api_key
from api.main import create_app
from benchmarks import (
    bench_aggregate,
    bench_daily,
    bench_geocode,
    bench_grid_apply,
    bench_hotspots,
    bench_http,
    bench_inspection_draw,
    bench_inspection_page,
    bench_inspection_routes,
    bench_intake,
    bench_locate,
    bench_page,
    bench_redesign,
    bench_scale,
    bench_staffing,
    bench_tiles,
    bench_workload,
    fuzz,
    soak,
)
from benchmarks.common import BenchmarkFailed, Recorder, check_every_response
from gis import migrate
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings
from gis.versions import software_versions
from synthetic.loader import load_demo

BENCH_DATABASE = "gridgov_bench"


def bench_database() -> DatabaseSettings:
    """A database of its own on the project-local cluster, so benchmarks never touch the served city."""
    base = DatabaseSettings()
    cluster = LocalCluster.from_settings(base)
    cluster.start()
    cluster.create_database(BENCH_DATABASE)
    settings = DatabaseSettings(database_url=cluster.url(BENCH_DATABASE))
    migrate.upgrade(settings)
    return settings


def bench_demo_load(settings: DatabaseSettings, scale: str) -> str:
    """Time a forced demo load at `scale` (one transaction, all stages)."""
    t0 = time.perf_counter()
    summary = load_demo(settings, scale=scale, seed=20201101, force=True, progress=False, log=lambda _m: None)
    elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = load_demo(settings, scale=scale, seed=20201101, force=False, progress=False, log=lambda _m: None)
    skip_s = time.perf_counter() - t0
    return (
        "| step | seconds |\n|---|---:|\n"
        f"| `gridgov demo load --scale {scale}` into an empty database | {elapsed:.1f} |\n"
        f"| the same command again (already loaded: nothing to do) | {skip_s:.2f} |\n\n"
        f"Loaded: {summary.split(': ', 1)[-1]}\n\nSecond run: {again}"
    )


def bench_layers(settings: DatabaseSettings) -> str:
    """Payload size and time of each map layer at typical zooms, against the 1 MB limit.

    Signed in as the dashboard's browser is (an API key, not rate limited); every answer must be a 200 holding
    features, otherwise the benchmark fails (a 413 means the map could not draw that view).
    """
    secret = "b" * 40
    engine = make_engine(settings)
    with engine.begin() as conn:
        xmin, ymin, xmax, ymax = conn.execute(
            text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM town) s")
        ).one()
        key = create_api_key(
            conn, secret, name=f"bench-layers-{time.time_ns()}", rate_limited=False, permissions=["gis"]
        ).key
    engine.dispose()
    city = f"{xmin},{ymin},{xmax},{ymax}"
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    screen = f"{cx - 0.03},{cy - 0.02},{cx + 0.03},{cy + 0.02}"  # about one 1280x800 screen at zoom 14
    cases = [
        ("towns", "whole city", city, 10),
        ("towns", "whole city", city, 13),
        ("communities", "whole city", city, 11),
        ("communities", "whole city", city, 12),
        ("grids", "whole city", city, 11),
        ("grids", "one screen", screen, 14),
        ("grids", "one screen", screen, 16),
    ]
    rows = ["| layer | extent | zoom | features | bytes | ms |", "|---|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as state:
        app = create_app(db_settings=settings, server_settings=ServerSettings(secret_key=secret, state_dir=Path(state)))
        with check_every_response(TestClient(app, headers={"X-API-Key": key})) as client:
            for layer, extent, bbox, zoom in cases:
                client.get(f"/v1/{layer}", params={"bbox": bbox, "zoom": zoom})  # warm the pool and caches
                t0 = time.perf_counter()
                response = client.get(f"/v1/{layer}", params={"bbox": bbox, "zoom": zoom})
                ms = (time.perf_counter() - t0) * 1000
                n = len(response.json()["features"])
                if n == 0:
                    raise BenchmarkFailed(f"GET /v1/{layer} ({extent}, zoom {zoom}) answered 200 with no feature")
                rows.append(f"| {layer} | {extent} | {zoom} | {n:,} | {len(response.content):,} | {ms:.0f} |")
    return (
        "Uncompressed GeoJSON bodies (the server also gzips them), signed in with an API key; every answer was 200. "
        "Limit 1,000,000 bytes, over it the answer is 413 (which fails this benchmark).\n\n" + "\n".join(rows)
    )


def run_all(results: Recorder, settings: DatabaseSettings, scale: str) -> None:
    """Every benchmark in order, each section written as soon as it is measured (and only if it succeeded)."""
    results.section(f"Demo load ({scale} scale)", lambda: bench_demo_load(settings, scale))
    engine = make_engine(settings)
    try:
        results.section("Locate: point → grid", lambda: bench_locate.run(engine)[0])
        engine.dispose()  # idle connections closed between benchmarks; the engine opens new ones when asked
        results.section("Map layer payloads", lambda: bench_layers(settings))
        build, geocoder = bench_geocode.index_build(engine)
        print(build)
        results.section("Geocoder accuracy", lambda: build + "\n\n" + bench_geocode.accuracy(engine, geocoder))
        results.section("Geocoder speed", lambda: bench_geocode.speed(engine, geocoder))
        results.section("GET /v1/geocode under load", lambda: bench_http.run(settings, engine))
        engine.dispose()
        # The full city (database scale_full) when it is there, else this one: the section says which.
        results.section("Scale-out", lambda: bench_scale.run(settings))
        results.section("Vector tiles", lambda: bench_tiles.run(settings, engine))
        engine.dispose()
        results.section("Dashboard first paint", lambda: bench_page.run(settings))
        # Hotspot detection before the intake benchmarks, which add registrations and clues of their own.
        results.section("Hotspot detection quality", lambda: bench_hotspots.detection(engine))
        engine.dispose()
        results.section("Clues → H3 counts", bench_aggregate.speed)
        results.section("Gi* speed", bench_hotspots.speed)
        results.section("Heatmap page first paint", lambda: bench_page.run_heatmap(settings))
        results.section("Simulation: 30 days of supervision", lambda: bench_intake.simulation(engine))
        results.section("Registration intake latency", lambda: bench_intake.latency(settings, engine))
        results.section("Registration import throughput", lambda: bench_intake.bulk_import(settings, engine))
        # Planning last, on the simulated month of work: the apply benchmark works on a copy of this database.
        engine.dispose()
        results.section("Workload model", lambda: bench_workload.run(settings, engine))
        results.section("Staffing plan", lambda: bench_staffing.run(settings, engine))
        results.section("Daily assignment", lambda: bench_daily.run(settings, engine))
        results.section("Grid redesign", lambda: bench_redesign.run(settings, engine))
        engine.dispose()
        results.section("Grid apply and rollback", lambda: bench_grid_apply.run(settings, engine))
        engine.dispose()
        results.section("Inspection draw", lambda: bench_inspection_draw.run(settings, engine))
        results.section("Inspection routes", lambda: bench_inspection_routes.run(settings, engine))
        results.section("Inspection planning page first paint", lambda: bench_inspection_page.run(settings, engine))
        engine.dispose()
        # Last of the load runs: 10 minutes (GRIDGOV_SOAK_SECONDS) of mixed traffic against gridgov serve.
        results.section("Soak", lambda: soak.run(settings))
        engine.dispose()
        with tempfile.TemporaryDirectory() as fuzz_state:
            results.section("Fuzz", lambda: fuzz.run(settings, Path(fuzz_state)))
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    """Run every benchmark and record it; exit 1 at the first that fails (its section is not written)."""
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    args = [a for i, a in enumerate(argv) if a != "--only" and (i == 0 or argv[i - 1] != "--only")]
    scale = args[0] if args else "demo"
    settings = bench_database()
    command = "make bench" if scale == "demo" else f"python -m benchmarks.run {scale}"
    if only:
        command += f' ONLY="{only}"' if scale == "demo" else f' --only "{only}"'
    engine = make_engine(settings)
    with engine.connect() as conn:
        software = software_versions(conn)
    engine.dispose()
    results = Recorder(command, software, only=only)
    try:
        run_all(results, settings, scale)
    except BenchmarkFailed as failure:
        print(
            f"\nbenchmark failed: {failure}\n"
            "Nothing was written for it; RESULTS.md keeps the earlier figures of that section and the ones after it.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
