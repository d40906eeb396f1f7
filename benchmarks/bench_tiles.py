"""benchmarks.bench_tiles: vector tile latency, cold and warm, over the tiles a dashboard opens at the city view and
at a town view (every layer), beside the same-run baseline of the GeoJSON layer endpoints for the same views; the
largest tile of the busiest town at every zoom 8..16 (over 500 KB fails the benchmark)."""

from __future__ import annotations

import math
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, text

from api.auth.service import create_user
from api.main import create_app
from benchmarks.common import BenchmarkFailed, checked_client
from gis.cluster import free_port
from gis.settings import DatabaseSettings, ServerSettings
from maps.page import DONGGUAN_BOUNDS_LON_LAT
from maps.tile_service import TileStore
from maps.tiles import (
    LAYERS,
    MAX_TILE_BYTES,
    TILE_MEDIA_TYPE,
    Tile,
    TileLayer,
    lon_lat_to_mercator,
    tile_of_lon_lat,
    tile_width_m,
)

RUNS = 5
VIEWPORT_W, VIEWPORT_H = 1440, 900
# MapLibre draws vector tiles 512 CSS pixels wide and asks for the tiles of the zoom below the map's.
MAPLIBRE_TILE_PX = 512
WARM_P95_BUDGET_MS = 10.0
COLD_P95_BUDGET_MS = 50.0
PASSWORD = "bench tiles password"
GEOJSON_LAYERS = ("towns", "communities", "grids")

Bounds = tuple[float, float, float, float]


@dataclass
class Timings:
    """Latencies (ms) of one kind of request, and the largest body seen."""

    ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    largest: int = 0

    def add(self, started: float, response: httpx.Response) -> None:
        """Record one checked answer (and, for a tile, what it cost the server: its Server-Timing)."""
        self.ms.append((time.perf_counter() - started) * 1000)
        self.largest = max(self.largest, len(response.content))
        timing = response.headers.get("server-timing", "")
        if "dur=" in timing:
            self.server_ms.append(float(timing.rsplit("dur=", 1)[1]))

    def p(self, q: float) -> float:
        """The q-quantile (0..1) of the latencies at the client."""
        return _quantile(self.ms, q)

    def row(self, label: str) -> str:
        """A markdown table row: requests, p50, p95, max, the server's own p50 and p95 (tiles), largest body."""
        server = (
            f"{statistics.median(self.server_ms):.1f} | {_quantile(self.server_ms, 0.95):.1f}"
            if self.server_ms
            else "– | –"
        )
        return (
            f"| {label} | {len(self.ms):,} | {statistics.median(self.ms):.1f} | {self.p(0.95):.1f} | "
            f"{max(self.ms):.1f} | {server} | {self.largest:,} |"
        )


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class View:
    """A dashboard view: what it shows, its WGS84 bounds and the tile zoom MapLibre asks for."""

    label: str
    bounds: Bounds
    z: int

    def tiles(self) -> list[Tile]:
        """The tiles covering the view at its zoom."""
        west, south, east, north = self.bounds
        first, last = tile_of_lon_lat(west, north, self.z), tile_of_lon_lat(east, south, self.z)
        return [Tile(self.z, x, y) for x in range(first.x, last.x + 1) for y in range(first.y, last.y + 1)]


def fit_zoom(bounds: Bounds) -> int:
    """The tile zoom MapLibre requests when the map fits `bounds` in the viewport (512-pixel tiles, floor)."""
    west, south, east, north = bounds
    x0, y0 = lon_lat_to_mercator(west, south)
    x1, y1 = lon_lat_to_mercator(east, north)
    world_px_per_m = MAPLIBRE_TILE_PX / tile_width_m(0)
    zoom = min(
        math.log2(VIEWPORT_W / ((x1 - x0) * world_px_per_m)), math.log2(VIEWPORT_H / ((y1 - y0) * world_px_per_m))
    )
    return math.floor(zoom)


@contextmanager
def served(settings: DatabaseSettings, secret: str) -> Iterator[tuple[int, FastAPI]]:
    """The real app on a free loopback port (uvicorn in a thread); yields the port and the app (for its tile cache)."""
    with tempfile.TemporaryDirectory() as state:
        app = create_app(db_settings=settings, server_settings=ServerSettings(secret_key=secret, state_dir=Path(state)))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield port, app
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _store(app: FastAPI) -> TileStore:
    """The app's tile store (made by the first tile request)."""
    store: TileStore | None = getattr(app.state, "tile_store", None)
    if store is None:
        raise BenchmarkFailed("the app made no tile store: no tile was served")
    return store


def _tile_urls(view: View) -> list[str]:
    """Every layer's tiles of the view (the layers that start at or below its zoom)."""
    return [
        f"/tiles/{layer.value}/{t.z}/{t.x}/{t.y}.mvt"
        for layer in TileLayer
        if view.z >= LAYERS[layer].minzoom
        for t in view.tiles()
    ]


def _get(client: httpx.Client, url: str, timings: Timings, params: dict[str, str] | None = None) -> None:
    """One checked request, timed; a tile answers 200 (a vector tile) or 204 (nothing there for the caller)."""
    started = time.perf_counter()
    response = client.get(url, params=params)
    timings.add(started, response)
    if not url.endswith(".mvt"):
        return
    if response.status_code == 200 and response.headers.get("content-type") != TILE_MEDIA_TYPE:
        raise BenchmarkFailed(f"GET {url} answered {response.headers.get('content-type')}, not a vector tile")
    if len(response.content) > MAX_TILE_BYTES:
        raise BenchmarkFailed(f"GET {url} is {len(response.content):,} bytes, over the {MAX_TILE_BYTES:,} limit")


def _views(engine: Engine) -> tuple[list[View], str, tuple[float, float]]:
    """The city view and the busiest town's view, that town's name, and the point of its densest grid."""
    with engine.connect() as conn:
        code, name, w, s, e, n = conn.execute(
            text(
                "SELECT t.code, t.name, ST_XMin(t.geom), ST_YMin(t.geom), ST_XMax(t.geom), ST_YMax(t.geom) FROM town t "
                "ORDER BY (SELECT count(*) FROM entity x WHERE x.town_code = t.code) DESC, t.code LIMIT 1"
            )
        ).one()
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) AS p, g.entity_count, g.code "
                "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE g.town_code = :t ORDER BY g.entity_count DESC, g.code LIMIT 1) s"
            ),
            {"t": code},
        ).one()
    city = DONGGUAN_BOUNDS_LON_LAT
    town: Bounds = (float(w), float(s), float(e), float(n))
    views = [View("city", city, fit_zoom(city)), View(f"town ({name})", town, fit_zoom(town))]
    return views, str(name), (float(lon), float(lat))


def _verdict(value_ms: float, budget_ms: float) -> str:
    """`12.3 ms (met ≤ 50)` or `(MISSED ≤ 10)`."""
    return f"{value_ms:.1f} ms ({'met' if value_ms <= budget_ms else 'MISSED'} ≤ {budget_ms:.0f})"


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Tile latency cold and warm over the city and town views, GeoJSON baseline, largest tile; BenchmarkFailed on
    any failed request or a tile over 500 KB."""
    secret = "t" * 40
    username = f"bench-tiles-{time.time_ns()}"
    with engine.begin() as conn:
        create_user(conn, username=username, role="command_centre", scope=None, password=PASSWORD)
    views, town_name, densest = _views(engine)
    rows: list[str] = []
    verdicts: list[str] = []
    largest = Timings()
    with (
        served(settings, secret) as (port, app),
        checked_client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client,
    ):
        token = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        for view in views:
            urls = _tile_urls(view)
            for url in urls:  # the database's own caches warm, the tile cache filled once
                _get(client, url, Timings())
            start = Timings()
            _store(app).clear()  # tile cache and every town's entity points: a server just started
            for url in urls:
                _get(client, url, start)
            cold, warm, baseline = Timings(), Timings(), Timings()
            for _ in range(RUNS):
                _store(app).cache.clear()
                for url in urls:
                    _get(client, url, cold)
                for url in urls:
                    _get(client, url, warm)
                west, south, east, north = view.bounds
                for layer in GEOJSON_LAYERS:
                    params = {"bbox": f"{west},{south},{east},{north}", "zoom": str(view.z + 1)}
                    _get(client, f"/v1/{layer}", baseline, params)
            tiles = len(view.tiles())
            label = f"{view.label}, z{view.z}, {tiles} tiles × {len(urls) // tiles} layers"
            rows += [
                cold.row(f"{label}: tiles, cold (tile cache cleared)"),
                warm.row(f"{label}: tiles, warm"),
                start.row(f"{label}: tiles, first after a start (entity points loaded too)"),
                baseline.row(
                    f"{label}: baseline GeoJSON /v1/towns, /v1/communities, /v1/grids (bbox, zoom {view.z + 1})"
                ),
            ]
            verdicts.append(
                f"{view.label}: warm p95 {_verdict(warm.p(0.95), WARM_P95_BUDGET_MS)}, "
                f"cold p95 {_verdict(cold.p(0.95), COLD_P95_BUDGET_MS)} (in the server: warm "
                f"{_quantile(warm.server_ms, 0.95):.1f} ms, cold {_quantile(cold.server_ms, 0.95):.1f} ms)"
            )
            largest.largest = max(largest.largest, cold.largest)
        for z in range(8, 17):
            tile = tile_of_lon_lat(*densest, z)
            for layer in TileLayer:
                if z >= LAYERS[layer].minzoom:
                    _get(client, f"/tiles/{layer.value}/{z}/{tile.x}/{tile.y}.mvt", largest)
    return (
        "The real app (uvicorn in a thread, one worker) on the demo city, signed in as the command centre (every "
        f"layer, no scope filter: the largest tiles); a {VIEWPORT_W}×{VIEWPORT_H} dashboard fitted to the view asks "
        f"for the tiles of every layer at the zoom shown ({MAPLIBRE_TILE_PX}-pixel tiles). Each of {RUNS} runs clears "
        "the tile cache, then requests every tile (cold), then again (warm); the baseline is the GeoJSON layer "
        "endpoints for the same bbox in the same run. Latency is measured at the client, over loopback HTTP (the "
        "budgets are read there); the server's own time for a tile (versions read, cache lookup or build) is its "
        "`Server-Timing` header. Every answer was 2xx (204 is an empty tile).\n\n"
        "| requests | n | p50 ms | p95 ms | max ms | server p50 ms | server p95 ms | largest bytes |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + f"\n\nLargest tile of any layer at zooms 8–16 over the densest grid of {town_name} (and of the views): "
        f"{largest.largest:,} bytes (limit {MAX_TILE_BYTES:,}: met).\n\n" + "Budgets: " + "; ".join(verdicts) + "."
    )
