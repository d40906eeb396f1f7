"""benchmarks.bench_index_full: build the geocoder index over a full-scale library (3 M addresses), save it as an
index store and open that store again, and report.

Needs a database holding the full synthetic city (`gridgov demo load --scale full`, ~6 min), so it is not part
of `make bench`; run `python -m benchmarks.bench_index_full DATABASE` on the project-local cluster.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from address_library.index_store import IndexSettings, build_store
from address_library.service import Geocoder
from benchmarks.common import write_section
from gis.database import make_engine
from gis.settings import DatabaseSettings
from gis.versions import software_versions

# Budget of opening the saved index (issue 18): against a build of half a minute.
OPEN_BUDGET_S = 3.0
_OPEN = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from address_library.index_store import open_geocoder
imported = time.perf_counter()
geocoder = open_geocoder(Path(sys.argv[1]))
opened = time.perf_counter()
geocoder.geocode(sys.argv[2])
answered = time.perf_counter()
print(json.dumps({"import_s": imported - t0, "open_s": opened - imported, "first_answer_s": answered - opened}))
"""


def drop_cached_pages(directory: Path) -> None:
    """Ask the kernel to forget the store's cached pages (a cold-ish open, without root)."""
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def open_store_seconds(directory: Path, query: str = "南城街道") -> dict[str, float]:
    """Open the store in a fresh process and answer one query: seconds to import, to open, to the first answer."""
    out = subprocess.run(
        [sys.executable, "-c", _OPEN, str(directory), query], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str]) -> int:
    """Build once, print and record time and memory."""
    database = argv[0] if argv else "gridgov"
    engine = make_engine(DatabaseSettings(pg_database=database))
    t0 = time.perf_counter()
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        rss_kb = int(status.read().split("VmRSS:")[1].split()[0])
    rows = len(geocoder.index)
    del geocoder
    root = IndexSettings().index_dir
    t0 = time.perf_counter()
    with engine.connect() as conn:
        store = build_store(conn, root)
    store_s = time.perf_counter() - t0
    store_mb = sum(p.stat().st_size for p in store.iterdir()) / 1e6
    drop_cached_pages(store)
    cold = open_store_seconds(store)
    warm = open_store_seconds(store)
    body = (
        "| figure | value | budget |\n|---|---:|---|\n"
        f"| standard addresses indexed | {rows:,} | |\n"
        f"| build from PostGIS (COPY, normalize on 2 processes, keys, grids, reverse tree) | {elapsed:.1f} s | ≤ 60 s "
        f"{'met' if elapsed <= 60 else 'MISSED'} |\n"
        f"| resident memory after the build | {rss_kb / 1024:,.0f} MB | ≤ 2,048 MB {'met' if rss_kb <= 2048 * 1024 else 'MISSED'} |\n"
        f"| peak resident memory during the build | {peak_mb:,.0f} MB | |\n"
        f"| save as an index store (build again, write; reused if this library version is saved) | {store_s:.1f} s, "
        f"{store_mb:,.0f} MB on disk | |\n"
        f"| open the saved store in a new process, pages not cached (memory-mapped) | {cold['open_s']:.2f} s | "
        f"≤ {OPEN_BUDGET_S:.0f} s {'met' if cold['open_s'] <= OPEN_BUDGET_S else 'MISSED'} |\n"
        f"| open the saved store again, pages cached | {warm['open_s']:.2f} s | "
        f"≤ {OPEN_BUDGET_S:.0f} s {'met' if warm['open_s'] <= OPEN_BUDGET_S else 'MISSED'} |\n"
        f"| first answer after opening (cold / warm) | {cold['first_answer_s']:.2f} s / "
        f"{warm['first_answer_s']:.2f} s | |"
    )
    print(body)
    with engine.connect() as conn:
        software = software_versions(conn)
    engine.dispose()
    write_section(
        "Geocoder index at full scale", body, f"python -m benchmarks.bench_index_full {database}", software=software
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
