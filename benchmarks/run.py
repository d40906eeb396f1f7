"""benchmarks.run: `make bench` — load, locate, layers, geocoder, intake, import, simulation; figures go to RESULTS.md."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from benchmarks import (
    bench_aggregate,
    bench_geocode,
    bench_hotspots,
    bench_http,
    bench_intake,
    bench_locate,
    bench_page,
)
from benchmarks.common import write_section
from gis import migrate
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings, ServerSettings
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
    body = (
        "| step | seconds |\n|---|---:|\n"
        f"| `gridgov demo load --scale {scale}` into an empty database | {elapsed:.1f} |\n"
        f"| the same command again (already loaded: nothing to do) | {skip_s:.2f} |\n\n"
        f"Loaded: {summary.split(': ', 1)[-1]}\n\nSecond run: {again}"
    )
    print(body)
    return body


def bench_layers(settings: DatabaseSettings) -> str:
    """Payload size and time of each map layer at typical zooms, against the 1 MB limit."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        xmin, ymin, xmax, ymax = conn.execute(
            text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM town) s")
        ).one()
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
    rows = ["| layer | extent | zoom | status | features | bytes | ms |", "|---|---|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as state:
        app = create_app(
            db_settings=settings, server_settings=ServerSettings(secret_key="b" * 40, state_dir=Path(state))
        )
        with TestClient(app) as client:
            for layer, extent, bbox, zoom in cases:
                client.get(f"/v1/{layer}", params={"bbox": bbox, "zoom": zoom})  # warm the pool and caches
                t0 = time.perf_counter()
                response = client.get(f"/v1/{layer}", params={"bbox": bbox, "zoom": zoom})
                ms = (time.perf_counter() - t0) * 1000
                n = len(response.json().get("features", [])) if response.status_code == 200 else 0
                rows.append(
                    f"| {layer} | {extent} | {zoom} | {response.status_code} | {n:,} | {len(response.content):,} | {ms:.0f} |"
                )
    body = "Uncompressed GeoJSON bodies (the server also gzips them); limit 1,000,000 bytes, over it the answer is 413.\n\n"
    body += "\n".join(rows)
    print(body)
    return body


def main(argv: list[str]) -> int:
    """Run every benchmark and record it."""
    scale = argv[0] if argv else "demo"
    settings = bench_database()
    command = "make bench" if scale == "demo" else f"python -m benchmarks.run {scale}"
    write_section(f"Demo load ({scale} scale)", bench_demo_load(settings, scale), command)
    engine = make_engine(settings)
    body, _figures = bench_locate.run(engine)
    engine.dispose()
    print(body)
    write_section("Locate: point → grid", body, command)
    write_section("Map layer payloads", bench_layers(settings), command)
    engine = make_engine(settings)
    build, geocoder = bench_geocode.index_build(engine)
    print(build)
    accuracy = bench_geocode.accuracy(engine, geocoder)
    print(accuracy)
    write_section("Geocoder accuracy", build + "\n\n" + accuracy, command)
    speed = bench_geocode.speed(engine, geocoder)
    print(speed)
    write_section("Geocoder speed", speed, command)
    http = bench_http.run(settings, engine)
    print(http)
    write_section("GET /v1/geocode under load", http, command)
    engine.dispose()
    page = bench_page.run(settings)
    print(page)
    write_section("Dashboard first paint", page, command)
    # Hotspot detection before the intake benchmarks, which add registrations and clues of their own.
    engine = make_engine(settings)
    detection = bench_hotspots.detection(engine)
    engine.dispose()
    print(detection)
    write_section("Hotspot detection quality", detection, command)
    for name, measure in (
        ("Clues → H3 counts", bench_aggregate.speed),
        ("Gi* speed", bench_hotspots.speed),
        ("Heatmap page first paint", lambda: bench_page.run_heatmap(settings)),
    ):
        body = measure()  # each section is written as soon as it is measured
        print(body)
        write_section(name, body, command)
    engine = make_engine(settings)
    simulated = bench_intake.simulation(engine)
    print(simulated)
    write_section("Simulation: 30 days of supervision", simulated, command)
    intake = bench_intake.latency(settings, engine)
    print(intake)
    write_section("Registration intake latency", intake, command)
    imported = bench_intake.bulk_import(settings, engine)
    print(imported)
    write_section("Registration import throughput", imported, command)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
