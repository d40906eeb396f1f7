"""benchmarks.bench_scale: scale-out figures — the index store against the build, 1.35 M rows on 1 and 2 Dask
workers against the single-machine paths, memory per worker, and the Amdahl fit docs/SCALE.md is built on.

Measured on the full synthetic city (3 M addresses, 1.35 M entities) when the database `scale_full` is on the
project-local cluster (`GRIDGOV_PG_DATABASE=scale_full gridgov demo load --scale full`, or name another database in
GRIDGOV_SCALE_DATABASE); otherwise on the bench city, and the section says which. Every path must write the same
bytes as the single-machine path and every row must be answered, or the benchmark fails and writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from address_library.batch import BatchReport
from address_library.service import ANSWER_FIELDS, Geocoder
from benchmarks.common import BenchmarkFailed
from gis import migrate
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings
from synthetic.loader import loaded_city

if TYPE_CHECKING:
    from distributed import Client

SCALE_DATABASE = "scale_full"
SCALE_DATABASE_ENV = "GRIDGOV_SCALE_DATABASE"
BULK_ROWS = 1_350_000
SAMPLE_EVERY_S = 0.25  # how often the memory of the processes measured is read
CLUSTER_BUDGET = 1.3  # the 2-worker cluster against the single-machine (2-process) time, median of the pairs
EXTRA_PAIRS = 2  # the budget's two paths run again back to back, beside the first run of each
OPEN_BUDGET_S = 3.0


# ---------------------------------------------------------------------------------------------------------------
# Which city


@dataclass(frozen=True)
class ScaleCity:
    """The database measured, and what it holds."""

    settings: DatabaseSettings
    database: str
    scale: str
    addresses: int
    entities: int


def scale_city(bench: DatabaseSettings) -> ScaleCity:
    """The database named in GRIDGOV_SCALE_DATABASE, else `scale_full` when it holds a loaded city, else `bench`."""
    named = os.environ.get(SCALE_DATABASE_ENV, "").strip()
    candidates = [named] if named else [SCALE_DATABASE]
    engine = make_engine(bench)
    try:
        with engine.connect() as conn:
            present = {
                r[0]
                for r in conn.execute(
                    text("SELECT datname FROM pg_database WHERE datname = ANY(:n)"), {"n": candidates}
                )
            }
            bench_name = conn.execute(text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    if named and named not in present:
        raise BenchmarkFailed(f"{SCALE_DATABASE_ENV}={named}: no such database on the project-local cluster")
    settings, database = bench, str(bench_name)
    if candidates[0] in present:
        settings = DatabaseSettings(database_url=LocalCluster.from_settings(bench).url(candidates[0]))
        database = candidates[0]
        migrate.upgrade(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            city = loaded_city(conn)
            addresses = conn.execute(text("SELECT count(*) FROM address")).scalar_one()
            entities = conn.execute(text("SELECT count(*) FROM entity")).scalar_one()
    finally:
        engine.dispose()
    if city is None:
        if named:
            raise BenchmarkFailed(f"database {database} holds no demo city: load one with `gridgov demo load`")
        return scale_city_fallback(bench)
    return ScaleCity(settings, database, str(city["scale"]), int(addresses), int(entities))


def scale_city_fallback(bench: DatabaseSettings) -> ScaleCity:
    """The bench city (demo scale), when `scale_full` is there but empty."""
    engine = make_engine(bench)
    try:
        with engine.connect() as conn:
            city = loaded_city(conn)
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            addresses = conn.execute(text("SELECT count(*) FROM address")).scalar_one()
            entities = conn.execute(text("SELECT count(*) FROM entity")).scalar_one()
    finally:
        engine.dispose()
    if city is None:
        raise BenchmarkFailed(f"database {database} holds no demo city")
    return ScaleCity(bench, str(database), str(city["scale"]), int(addresses), int(entities))


def registrations_csv(engine: Engine, directory: Path, rows: int = BULK_ROWS) -> Path:
    """The bulk input of `benchmarks.bench_geocode`: the entities' registered addresses as typed, repeated to
    `rows` rows (at full scale, each of the 1.35 M entities once), in one `address` column.

    Made once per database, row count and entity set into `directory` (the state folder's bench/), then reused.
    """
    with engine.connect() as conn:
        database, count, last = conn.execute(
            text("SELECT current_database(), count(*), coalesce(max(uscc), '') FROM entity")
        ).one()
        key = hashlib.sha256(f"{count}:{last}".encode()).hexdigest()[:12]
        path = directory / f"registrations-{database}-{rows}-{key}.csv"
        if path.exists():
            return path
        raw = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT e.raw_address FROM entity e JOIN synthetic.entity_truth t ON t.uscc = e.uscc "
                    "ORDER BY e.uscc"
                )
            )
        ]
    if not raw:
        raise BenchmarkFailed("the city holds no synthetic entity to make the registrations file from")
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["address"])
        for i in range(rows):
            writer.writerow([raw[i % len(raw)]])
    partial.replace(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Memory of processes: resident (RSS) and proportional (PSS: a shared page counts 1/n in each of n processes)


def rss_pss_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) of a process in kB from /proc/PID/smaps_rollup; None when it has gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in rollup.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


@dataclass
class MemoryPeaks:
    """Peak RSS and PSS (kB) of each process seen while sampling, and of their sum."""

    rss: dict[int, int] = field(default_factory=dict)
    pss: dict[int, int] = field(default_factory=dict)
    total_pss: int = 0

    def mb(self) -> str:
        """`RSS a / PSS b MB` per process, largest PSS first."""
        order = sorted(self.pss, key=lambda p: -self.pss[p])
        return ", ".join(f"{self.rss[p] / 1024:,.0f} / {self.pss[p] / 1024:,.0f}" for p in order) or "–"


@contextmanager
def sampled(pids: Callable[[], list[int]]) -> Iterator[MemoryPeaks]:
    """Sample the memory of the processes `pids()` names every SAMPLE_EVERY_S while the block runs."""
    peaks = MemoryPeaks()
    stop = threading.Event()

    def sample() -> None:
        while True:
            total = 0
            for pid in pids():
                got = rss_pss_kb(pid)
                if got is None:
                    continue
                peaks.rss[pid] = max(peaks.rss.get(pid, 0), got[0])
                peaks.pss[pid] = max(peaks.pss.get(pid, 0), got[1])
                total += got[1]
            peaks.total_pss = max(peaks.total_pss, total)
            if stop.wait(SAMPLE_EVERY_S):
                return

    thread = threading.Thread(target=sample, name="bench-memory", daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()


def children() -> list[int]:
    """The pids of this process's children (the fork pool of the single-machine path)."""
    try:
        import psutil
    except ImportError:  # psutil comes with distributed; without it no child is sampled
        return []
    return [c.pid for c in psutil.Process().children(recursive=True)]


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------------------------
# The model


def amdahl_serial_fraction(t1: float, t2: float) -> float:
    """Serial fraction s of T(n) = T1·(s + (1 − s)/n) through the points n = 1 and n = 2: s = 2·T2/T1 − 1."""
    return 2 * t2 / t1 - 1


def fit(s: float) -> str:
    """The fitted serial fraction as the model reads it (outside [0, 1] the second process did not help)."""
    if not 0 <= s <= 1:
        return f"s = {s:.2f} (outside [0, 1]: two processes were no faster than one on this run)"
    return f"s = {s:.2f} (speed-up at n = 2: {1 / (s + (1 - s) / 2):.2f}×, limit 1/s = {1 / max(s, 1e-9):,.1f}×)"


# ---------------------------------------------------------------------------------------------------------------
# The measurements


@dataclass(frozen=True)
class Run:
    """One path over the bulk file: its time, its output's hash, the peak memory of its processes."""

    name: str
    seconds: float
    digest: str
    memory: MemoryPeaks
    extra: str = ""


def _checked(report: BatchReport, path: Path, expected_rows: int, what: str) -> str:
    """The output's hash when every row was written and answered; BenchmarkFailed otherwise."""
    if report.rows != expected_rows:
        raise BenchmarkFailed(f"{what}: {report.rows:,} rows written, {expected_rows:,} read")
    failed = {k: v for k, v in report.by_status.items() if k == "invalid"}
    if failed:
        raise BenchmarkFailed(f"{what}: rows refused as invalid: {failed}")
    return sha256(path)


def build_today(engine: Engine) -> tuple[Geocoder, float]:
    """Today's index: built from PostGIS in this process (`Geocoder.load`), and the seconds it took."""
    from address_library.service import Geocoder

    t0 = time.perf_counter()
    with engine.connect() as conn:
        built = Geocoder.load(conn)
    return built, time.perf_counter() - t0


def today_path(built: Geocoder, source: Path, work: Path, rows: int) -> Run:
    """Today's single-machine path: the index built in the process, 2 forked worker processes."""
    from address_library.batch import geocode_csv

    name = "today's path: index built in the process, 2 forked processes"
    out = work / "today.csv"
    with sampled(lambda: [os.getpid(), *children()]) as memory:
        report = geocode_csv(built, source, out, workers=2)
    return Run(name, report.seconds, _checked(report, out, rows, name), memory)


def store_figures(engine: Engine, root: Path, query: str) -> tuple[Path, dict[str, float], list[tuple[int, int]]]:
    """Build the store; open it in two new processes at once, answer `query` in each, touch every page.

    Returns the store, its figures (build and open seconds, first answer, size) and (RSS, PSS) kB of each process.
    """
    from address_library.index_store import build_store

    t0 = time.perf_counter()
    with engine.connect() as conn:
        store = build_store(conn, root)
    store_build_s = time.perf_counter() - t0
    probes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_scale", "probe", str(store), query],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(2)
    ]
    try:
        reports = []
        for probe in probes:
            assert probe.stdout is not None
            line = probe.stdout.readline()
            if not line:
                raise BenchmarkFailed(f"the store probe exited with code {probe.wait()} before opening the store")
            reports.append(json.loads(line))
        memory = [rss_pss_kb(probe.pid) or (0, 0) for probe in probes]
    finally:
        for probe in probes:
            if probe.stdin is not None:
                probe.stdin.close()
            probe.wait(timeout=60)
    if any(r["status"] != "matched" for r in reports):
        raise BenchmarkFailed(f"the geocoder opened from the store did not place {query!r}: {reports}")
    figures = {
        "store_build_s": store_build_s,
        "open_s": max(r["open_s"] for r in reports),
        "first_s": max(r["first_s"] for r in reports),
        "store_bytes": float(directory_bytes(store)),
    }
    return store, figures, memory


def store_paths(geocoder: Geocoder, source: Path, work: Path, rows: int) -> list[Run]:
    """One and two processes of the single-machine path on the geocoder opened from the store."""
    return [
        store_run(geocoder, workers, name, source, work, rows)
        for workers, name in (
            (1, "single process, index from the store"),
            (2, "2 forked processes, index from the store"),
        )
    ]


def store_geocoder(engine: Engine, store: Path) -> Geocoder:
    """The single-machine path's geocoder: opened from the store, with the active aliases."""
    from address_library.index_store import open_geocoder

    geocoder = open_geocoder(store)
    with engine.connect() as conn:
        geocoder.reload_aliases(conn)
    return geocoder


def store_run(
    geocoder: Geocoder,
    workers: int,
    name: str,
    source: Path,
    work: Path,
    rows: int,
    *,
    others: frozenset[int] = frozenset(),
) -> Run:
    """The bulk file through `workers` processes of the single-machine path (its output kept for the checks); the
    memory of the driver and its fork pool, not of `others` (children of the driver already there: a cluster)."""
    from address_library.batch import geocode_csv

    out = work / f"single-{workers}.csv"
    with sampled(lambda: [os.getpid(), *(pid for pid in children() if pid not in others)]) as memory:
        report = geocode_csv(geocoder, source, out, workers=workers)
    return Run(name, report.seconds, _checked(report, out, rows, name), memory)


def driver_work(source: Path, reference: Path, work: Path) -> tuple[float, float, float]:
    """The driver's serial work on the bulk file: reading it, the cheap town parse of every row, and writing the
    answered rows (seconds each)."""
    from address_library.batch import read_table, write_table
    from address_library.cluster_geocode import cheap_town

    t0 = time.perf_counter()
    texts: list[str] = []
    with read_table(source) as table:
        for _rows, chunk in table.chunks:
            texts.extend(chunk)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in texts:
        cheap_town(t)
    parse_s = time.perf_counter() - t0
    del texts

    def answered() -> Iterator[tuple[list[list[str]], list[tuple[object, ...]]]]:
        with reference.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            width = len(next(reader)) - len(ANSWER_FIELDS)
            chunk: list[list[str]] = []
            for row in reader:
                chunk.append(row)
                if len(chunk) == 5_000:
                    yield [r[:width] for r in chunk], [tuple(r[width:]) for r in chunk]
                    chunk = []
            if chunk:
                yield [r[:width] for r in chunk], [tuple(r[width:]) for r in chunk]

    t0 = time.perf_counter()
    for _ in answered():
        pass
    reread_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with reference.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))[: -len(ANSWER_FIELDS)]
    write_table(work / "rewritten.csv", header, answered())
    write_s = time.perf_counter() - t0 - reread_s
    (work / "rewritten.csv").unlink()
    return read_s, parse_s, max(write_s, 0.0)


@contextmanager
def dask_cluster(workers: int) -> Iterator[tuple[Client, float, list[int]]]:
    """A process-based Dask LocalCluster of `workers` workers, one thread each: its client, the seconds it took to
    start (workers up), and the workers' pids."""
    import logging

    from distributed import Client
    from distributed import LocalCluster as DaskCluster

    t0 = time.perf_counter()
    with (
        DaskCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(workers)
        startup_s = time.perf_counter() - t0
        yield client, startup_s, [int(pid) for pid in client.run(os.getpid).values()]


def geocode_on_cluster(
    client: Client, pids: list[int], startup_s: float, engine: Engine, root: Path, source: Path, work: Path, rows: int
) -> Run:
    """The bulk file through the cluster path of `gridgov geocode --scheduler`, timed from the index's registration
    on the workers (they open it from the store and keep it resident) to the output renamed into place."""
    from address_library.cluster_geocode import geocode_csv_on_cluster, prepare_cluster, release_cluster

    workers = len(pids)
    name = f"Dask LocalCluster, {workers} worker process{'es' if workers > 1 else ''}"
    out = work / f"cluster-{workers}.csv"
    with sampled(lambda: pids) as memory:
        t0 = time.perf_counter()
        with engine.connect() as conn:
            index = prepare_cluster(client, conn, root)
        register_s = time.perf_counter() - t0
        try:
            report = geocode_csv_on_cluster(client, index, source, out)
        finally:
            release_cluster(client, index)
        total_s = time.perf_counter() - t0
    digest = _checked(report, out, rows, name)
    out.unlink()
    return Run(
        name,
        total_s,
        digest,
        memory,
        f"cluster start-up {startup_s:.1f} s (not counted); index opened and resident on the workers "
        f"{register_s:.1f} s, geocoding {report.seconds:.1f} s (both counted)",
    )


def relocation(engine: Engine, client: Client) -> list[str]:
    """Every address and entity point located in the active grid version's grids (`grids.relocate.locate_points`,
    what `gridgov grids relocate` computes): one process against the 2-worker cluster, the same codes or a failure."""
    import numpy as np
    import pandas as pd
    import shapely

    from grids.relocate import GridSet, locate_points
    from grids.repository import active_version_id

    t0 = time.perf_counter()
    with engine.connect() as conn:
        version = active_version_id(conn)
        grid_rows = conn.execute(
            text("SELECT code, ST_AsBinary(geom) AS wkb FROM grid WHERE version_id = :v ORDER BY code"), {"v": version}
        ).all()
        points = pd.concat(
            [
                pd.read_sql(
                    text("SELECT town_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM address ORDER BY id"), conn
                ),
                pd.read_sql(
                    text("SELECT town_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity ORDER BY uscc"), conn
                ),
            ],
            ignore_index=True,
        )
    grids = GridSet.of(
        [str(r.code) for r in grid_rows],
        list(shapely.from_wkb([bytes(r.wkb) for r in grid_rows])),
        key=("grid_version", version),
    )
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = locate_points(points, grids)
    alone_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    spread = locate_points(points, grids, client=client)
    spread_s = time.perf_counter() - t0
    if not np.array_equal(alone.astype(str), spread.astype(str)):
        differ = int((alone.astype(str) != spread.astype(str)).sum())
        raise BenchmarkFailed(f"relocation: the cluster placed {differ:,} points in another grid than one process")
    placed = int(sum(code is not None for code in alone))
    if placed == 0:
        raise BenchmarkFailed("relocation: no point fell in any grid")
    return [
        f"| re-locate {len(points):,} points (addresses and entities) into {len(grids.codes):,} grids | "
        f"{alone_s:.1f} s ({len(points) / alone_s:,.0f}/s) | {spread_s:.1f} s ({len(points) / spread_s:,.0f}/s) | "
        f"{alone_s / spread_s:.2f}× | reading them from PostGIS on the driver {read_s:.1f} s; {placed:,} placed, "
        "the same codes in the same order |"
    ]


def hotspots(engine: Engine, client: Client) -> list[str]:
    """Hotspots of every town (`gridgov hotspots --towns all`: Gi* on grids, and on H3 cells of resolution 9, over
    a year of clues), one town after the other against the 2-worker cluster: the same file or a failure."""
    from api.deps import day_window
    from maps.heat.cluster import hotspots_by_town, load_town_inputs, towns_csv

    since, until = day_window(None, None, default_days=365)
    assert since is not None and until is not None
    lines = []
    for unit in ("grid", "h3:9"):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            towns = [str(c) for c in conn.execute(text("SELECT code FROM town ORDER BY code")).scalars()]
            inputs = load_town_inputs(
                conn, towns, since=since, until=until, unit=unit, method="gi_star", kind="clue", per="residents"
            )
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        alone = towns_csv(hotspots_by_town(inputs))
        alone_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        spread = towns_csv(hotspots_by_town(inputs, client=client))
        spread_s = time.perf_counter() - t0
        if spread != alone:
            raise BenchmarkFailed(f"hotspots ({unit}): the cluster's file differs from the one of one process")
        units = alone.count("\n") - 1
        if units <= 0:
            raise BenchmarkFailed(f"hotspots ({unit}): no unit analysed in any town")
        events = sum(len(one.events) for one in inputs.values())
        lines.append(
            f"| hotspots of {len(towns)} towns, Gi* on {'grids' if unit == 'grid' else 'H3 cells (res 9)'}, "
            f"365 days of clues | {alone_s:.1f} s | {spread_s:.1f} s | {alone_s / spread_s:.2f}× | reading the "
            f"towns' events and units on the driver {read_s:.1f} s; {units:,} units"
            + f", {events:,} events; the same file |"
        )
    return lines


@dataclass(frozen=True)
class Region:
    """A territory to size: its door addresses, market entities and prefecture cities."""

    name: str
    addresses: float
    entities: float
    cities: int


REGIONS = (
    Region("Guangdong", 40e6, 18e6, 21),
    Region("the country (10× Guangdong)", 400e6, 180e6, 333),
)
MACHINE_CORES = 8
MACHINE_GIB = 32
MEMORY_SHARE = 0.8  # of a machine's memory given to the index; the rest is headroom for the OS, the driver, spikes
TARGET_S = 600.0  # the full re-geocode of a region's entities should take at most this long


def regeocode_s(region: Region, machines: int, per_core: float, serial: float) -> float:
    """Seconds to geocode every entity of `region` on `machines`: the cities side by side, each on its share of
    the cores following Amdahl's T(n) = T1·(s + (1 − s)/n), T1 its entities at one core's rate; with fewer cores
    than cities, the cities one per core in turns."""
    import math

    cores = machines * MACHINE_CORES
    one_city = region.entities / region.cities / per_core
    if cores < region.cities:
        return math.ceil(region.cities / cores) * one_city
    return one_city * (serial + (1 - serial) / (cores / region.cities))


def memory_machines(region: Region, shared_per: float, private_per: float) -> int | None:
    """Fewest machines whose memory holds the region's index: every address's shared pages once, and each worker
    process's private memory, which grows with its city (its city-wide tables); None when one machine's workers
    of an average city do not fit at all.

    With W = MACHINE_CORES·M workers spread over the cities by size, the total is shared·A + W·private·A/C (equal
    cities), which must stay within M machines' share of memory.
    """
    import math

    budget = MEMORY_SHARE * MACHINE_GIB * 2**30
    per_machine_private = MACHINE_CORES * private_per * region.addresses / region.cities
    if per_machine_private >= budget:
        return None
    return max(math.ceil(shared_per * region.addresses / (budget - per_machine_private)), 1)


def sizing_lines(
    indexed: int,
    store_bytes: float,
    probes: list[tuple[int, int]],
    per_core: float,
    serial: float,
    worker_peak_rss_kb: int = 0,
) -> list[str]:
    """Machines, memory and time for each region, from the figures of this run (see docs/SCALE.md, the model).

    Per process on the store of a city of A addresses, every page read: shared pages (the mapped store) and
    private memory (the heap: the pickled city-wide tables, Python), both taken proportional to A from the two
    probes (RSS = private + shared, PSS = private + shared/2); every city is taken as the region's average.
    """

    rss = sum(r for r, _ in probes) / len(probes) * 1024
    pss = sum(p for _, p in probes) / len(probes) * 1024
    shared_per = 2 * (rss - pss) / indexed  # bytes per address
    # A worker's private memory at its peak while geocoding (its RSS less the shared pages), when above the probes'.
    private_per = max(2 * pss - rss, worker_peak_rss_kb * 1024 - 2 * (rss - pss)) / indexed
    s = min(max(serial, 0.0), 1.0)
    lines = [
        f"Model inputs from this run: a worker core geocodes {per_core:,.0f} rows/s (1-worker cluster, engine "
        f"included); serial fraction s = {s:.2f} (the cluster fit, held to [0, 1]); per address, "
        f"{store_bytes / indexed:,.0f} bytes of store on disk, {shared_per:,.0f} bytes of shared pages and "
        f"{private_per:,.0f} bytes of private memory per process (the larger of the probes' and the 1-worker cluster's "
        "worker at its peak, less the shared pages; the whole private memory is counted "
        f"as growing with the city, an upper bound). Machines of {MACHINE_CORES} cores and {MACHINE_GIB} GiB, "
        f"{MEMORY_SHARE:.0%} of it for the index, one worker per core, every city of the region's average size. "
        "Extrapolated, not measured: the linear growth with addresses, and the cities' sizes.",
        "",
        "| region | addresses | entities | cities | index on disk | machines for memory | machines for a "
        f"{TARGET_S / 60:.0f}-min re-geocode | sized: machines, cores, memory, re-geocode of every entity |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for region in REGIONS:
        disk = store_bytes / indexed * region.addresses
        by_memory = memory_machines(region, shared_per, private_per)
        by_time = 1
        while regeocode_s(region, by_time, per_core, s) > TARGET_S and by_time < 100_000:
            by_time += 1
        machines = max(by_memory or 0, by_time)  # fewer workers than cities: the cities take turns
        workers = machines * MACHINE_CORES
        memory = shared_per * region.addresses + workers * private_per * region.addresses / region.cities
        lines.append(
            f"| {region.name} | {region.addresses / 1e6:,.0f} M | {region.entities / 1e6:,.0f} M | {region.cities} | "
            f"{disk / 2**30:,.0f} GiB | {by_memory if by_memory is not None else 'does not fit'} | {by_time:,} | "
            f"{machines:,}, {workers:,} cores, {memory / 2**30:,.0f} GiB: "
            f"{regeocode_s(region, machines, per_core, s) / 60:,.1f} min |"
        )
    return lines


def town_sizes(engine: Engine) -> dict[str, tuple[str, int]]:
    """Town code → (name, standard addresses) of the city measured."""
    with engine.connect() as conn:
        return {
            str(code): (str(name), int(n))
            for code, name, n in conn.execute(
                text(
                    "SELECT t.code, t.name, count(a.id) FROM town t LEFT JOIN address a ON a.town_code = t.code "
                    "GROUP BY t.code, t.name ORDER BY t.code"
                )
            )
        }


def packing_lines(sizes: Mapping[str, tuple[str, int]]) -> list[str]:
    """The towns packed onto 2 and 4 workers by the cluster path's rule (LPT on address rows): each worker's share."""
    from address_library.cluster_geocode import pack_towns

    total = sum(n for _, n in sizes.values())
    name, largest = max(sizes.values(), key=lambda v: v[1])
    lines = [
        f"Towns packed onto workers by their address rows (`cluster_geocode.pack_towns`: largest first onto the "
        f"least loaded, LPT). {len(sizes)} towns, {total:,} addresses; the largest town, {name}, holds {largest:,} "
        f"({largest / total:.1%}).",
        "",
        "| workers | addresses per worker (towns) | heaviest / even share |",
        "|---:|---|---:|",
    ]
    for n in (2, 4):
        workers = [f"w{i}" for i in range(n)]
        assignment = pack_towns({code: rows for code, (_, rows) in sizes.items()}, workers)
        loads = {w: sum(sizes[t][1] for t, held in assignment.items() if held == w) for w in workers}
        held = {w: sum(1 for h in assignment.values() if h == w) for w in workers}
        lines.append(
            f"| {n} | "
            + ", ".join(f"{loads[w]:,} ({held[w]})" for w in workers)
            + f" | {max(loads.values()) / (total / n):.3f} |"
        )
    return lines


def budget_pairs(
    geocoder: Geocoder,
    engine: Engine,
    client: Client,
    pids: list[int],
    startup_s: float,
    work: Path,
    source: Path,
    rows: int,
) -> list[tuple[Run, Run]]:
    """The two paths the cluster budget compares, again, back to back: the single-machine path (2 forked processes
    on the store, the same geocoder), then the 2-worker cluster already started; EXTRA_PAIRS times."""
    pairs = []
    for _ in range(EXTRA_PAIRS):
        cluster_processes = frozenset(children())
        fork = store_run(
            geocoder,
            2,
            "2 forked processes, index from the store (again)",
            source,
            work,
            rows,
            others=cluster_processes,
        )
        (work / "single-2.csv").unlink()
        cluster = geocode_on_cluster(client, pids, startup_s, engine, work / "index", source, work, rows)
        pairs.append((fork, replace(cluster, name=f"{cluster.name} (again)")))
    return pairs


def run(bench: DatabaseSettings, *, rows: int = BULK_ROWS) -> str:
    """Markdown: the index store against the build, 1.35 M rows on every path with memory, the Amdahl fit."""
    city = scale_city(bench)
    engine = make_engine(city.settings)
    try:
        with tempfile.TemporaryDirectory(prefix="gridgov-scale-") as tmp:
            work = Path(tmp)
            return _measure(city, engine, work, rows)
    finally:
        engine.dispose()


def _measure(city: ScaleCity, engine: Engine, work: Path, rows: int) -> str:
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    source = registrations_csv(engine, city.settings.state_dir / "bench", rows)
    with engine.connect() as conn:
        query = str(conn.execute(text("SELECT full_text FROM address ORDER BY id LIMIT 1")).scalar_one())
    built, build_s = build_today(engine)
    indexed = len(built.index)
    built_rss = (rss_pss_kb(os.getpid()) or (0, 0))[0]
    today = today_path(built, source, work, rows)
    del built
    store, store_fig, probe_memory = store_figures(engine, work / "index", query)
    geocoder = store_geocoder(engine, store)
    single, double = store_paths(geocoder, source, work, rows)
    read_s, parse_s, write_s = driver_work(source, work / "single-1.csv", work)
    (work / "single-1.csv").unlink()
    (work / "single-2.csv").unlink()
    (work / "today.csv").unlink()
    clusters = []
    with dask_cluster(1) as (client, startup_s, pids):
        clusters.append(geocode_on_cluster(client, pids, startup_s, engine, work / "index", source, work, rows))
    with dask_cluster(2) as (client, startup_s, pids):
        clusters.append(geocode_on_cluster(client, pids, startup_s, engine, work / "index", source, work, rows))
        spread_lines = [*relocation(engine, client), *hotspots(engine, client)]
        pairs = [(double, clusters[1]), *budget_pairs(geocoder, engine, client, pids, startup_s, work, source, rows)]
    runs = [today, single, double, *clusters, *(run for pair in pairs[1:] for run in pair)]
    reference = double.digest
    for r in runs:
        if r.digest != reference:
            raise BenchmarkFailed(f"{r.name}: output differs from the single-machine output (SHA-256 {r.digest[:16]}… "
                                  f"against {reference[:16]}…)")  # fmt: skip

    size = store_fig["store_bytes"]
    open_s = store_fig["open_s"]
    budget_open = "met" if open_s <= OPEN_BUDGET_S else "MISSED"
    index_lines = [
        "| figure | value | budget |",
        "|---|---:|---|",
        f"| build the index from PostGIS in the process (today's `Geocoder.load`, {indexed:,} addresses; baseline) | "
        f"{build_s:.1f} s | |",
        f"| build the store (`index_store.build_store`: the same build, written as arrays) | "
        f"{store_fig['store_build_s']:.1f} s | |",
        f"| store size on disk | {size / 2**20:,.0f} MB ({size / indexed * 1e6 / 2**20:,.0f} MB per million addresses) "
        "| |",
        f"| open the store in a new process (`index_store.open_geocoder`, the slower of two at once) | {open_s:.2f} s "
        f"({build_s / open_s:,.0f}× faster than the build) | ≤ {OPEN_BUDGET_S:.0f} s {budget_open} |",
        f"| first geocode answer in that process, counted from the start of the open | {store_fig['first_s']:.2f} s "
        "| |",
        "| two processes on the store, every page read: RSS / PSS of each | "
        + ", ".join(f"{r / 1024:,.0f} / {p / 1024:,.0f} MB" for r, p in probe_memory)
        + " | |",
        f"| one process after today's build (the index on its heap): RSS | {built_rss / 1024:,.0f} MB | |",
    ]

    ratios = [cluster.seconds / fork.seconds for fork, cluster in pairs]
    ratio = statistics.median(ratios)
    two = clusters[1]
    path_lines = [
        "| path | seconds | rows/s | peak RSS / PSS per process, MB | peak PSS of all, MB |",
        "|---|---:|---:|---|---:|",
    ]
    path_lines.extend(
        f"| {r.name} | {r.seconds:.1f} | {rows / r.seconds:,.0f} | {r.memory.mb()} | {r.memory.total_pss / 1024:,.0f} |"
        for r in runs
    )
    s_machine = amdahl_serial_fraction(single.seconds, double.seconds)
    s_cluster = amdahl_serial_fraction(clusters[0].seconds, two.seconds)
    driver_s = read_s + parse_s + write_s
    lines = [
        f"City measured: database `{city.database}`, {city.scale} scale ({city.addresses:,} addresses, "
        f"{city.entities:,} entities). Load average (1, 5, 15 min) before the run: {load_before}; after it: "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}.",
        "",
        "Index: the store against today's build.",
        "",
        *index_lines,
        "",
        f"Bulk geocoding of {rows:,} registrations (the entities' addresses as typed, repeated to that many "
        "rows), grid included, every path in the same run on the same 2 cores. Every output has the same SHA-256 "
        f"({reference[:16]}…) as the single-machine output, or the benchmark fails. Memory is sampled every "
        f"{SAMPLE_EVERY_S} s (the driver's and the fork pool's for the single-machine paths, each worker's for the "
        "cluster).",
        "",
        *path_lines,
        "",
        *(f"- {r.name}: {r.extra}" for r in clusters),
        "- 2-worker cluster against the single-machine time (2 forked processes), in pairs: the pair of the table "
        "above, then "
        + ", ".join(f"{fork.seconds:.1f} s and {cluster.seconds:.1f} s" for fork, cluster in pairs[1:])
        + " (each pair back to back, the fork pool first, with the 2-worker cluster idle meanwhile): "
        + ", ".join(f"{r:.2f}×" for r in ratios)
        + f"; the median {ratio:.2f}× (budget ≤ {CLUSTER_BUDGET}× on the median: {'met' if ratio <= CLUSTER_BUDGET else 'MISSED'}). "
        "The machine is virtual and its speed drifts from minute to minute, so one pair decides nothing alone",
        f"- throughput of one core (single process): {rows / single.seconds:,.0f} rows/s",
        f"- the driver's serial work on the file, measured alone: reading it {read_s:.1f} s, the cheap town parse "
        f"{parse_s:.1f} s ({rows / max(parse_s, 1e-9):,.0f} rows/s), writing the answers {write_s:.1f} s: "
        f"{driver_s:.1f} s in all",
        f"- Amdahl fit T(n) = T1·(s + (1 − s)/n) through n = 1 and 2: single machine {fit(s_machine)}, "
        f"cluster {fit(s_cluster)}. Two points on a 2-core machine fix s exactly and leave no degree of freedom "
        "for its error; at n = 2 the driver shares the 2 cores with the workers, so s is an upper bound",
        "",
        "The other batch paths, one process against the 2-worker cluster (the same cluster, already started):",
        "",
        "| job | one process | 2-worker cluster | speed-up | notes |",
        "|---|---:|---:|---:|---|",
        *spread_lines,
        "",
        *packing_lines(town_sizes(engine)),
        "",
        *sizing_lines(
            indexed,
            size,
            probe_memory,
            rows / clusters[0].seconds,
            s_cluster,
            max(clusters[0].memory.rss.values(), default=0),
        ),
    ]
    return "\n".join(lines)


def _probe_main(argv: list[str]) -> int:
    """`python -m benchmarks.bench_scale probe STORE_DIR`: open the store, answer one query, touch its pages, print
    a JSON line of timings, then wait for a line on stdin (the parent reads its memory meanwhile)."""
    from address_library.index_store import open_geocoder

    directory, query = Path(argv[0]), argv[1]
    t0 = time.perf_counter()
    geocoder = open_geocoder(directory)
    opened = time.perf_counter() - t0
    answer = geocoder.geocode(query)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    # The mappings stay referenced until the parent has read this process's memory: a dropped mapping takes its
    # pages out of the process's RSS and PSS.
    mapped = touch_pages(directory)
    touched = sum(int(array.nbytes) for array in mapped)
    touch_s = time.perf_counter() - t1
    print(
        json.dumps(
            {"open_s": opened, "first_s": first, "status": answer.status, "touch_s": touch_s, "touched": touched}
        ),
        flush=True,
    )
    sys.stdin.readline()
    del mapped
    return 0


def touch_pages(directory: Path) -> list[Any]:
    """Map every array of the store and read each of its pages (as a worker resident on them does); the mappings,
    which the caller keeps while it measures memory (pages count in a process's RSS only while mapped)."""
    import numpy as np

    mapped: list[Any] = []
    for path in sorted(directory.rglob("*.npy")):
        array = np.load(path, mmap_mode="r")
        if array.size:
            raw = np.asarray(array).reshape(-1).view(np.uint8)
            int(raw[::4096].astype(np.int64).sum())
            mapped.append(array)
    return mapped


def main() -> int:
    """`python -m benchmarks.bench_scale`: the Scale-out section alone (no demo reload), written to RESULTS.md."""
    from benchmarks.common import write_section
    from benchmarks.run import bench_database
    from gis.versions import software_versions

    bench = bench_database()
    try:
        body = run(bench)
    except BenchmarkFailed as failure:
        print(f"benchmark failed: {failure}\nNothing was written for it.", file=sys.stderr)
        return 1
    print(body)
    engine = make_engine(bench)
    with engine.connect() as conn:
        software = software_versions(conn)
    engine.dispose()
    write_section("Scale-out", body, "python -m benchmarks.bench_scale", software=software)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        sys.exit(_probe_main(sys.argv[2:]))
    sys.exit(main())
