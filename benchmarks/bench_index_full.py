"""benchmarks.bench_index_full: build the geocoder index over a full-scale library (3 M addresses) and report.

Needs a database holding the full synthetic city (`gridgov demo load --scale full`, ~6 min), so it is not part
of `make bench`; run `python -m benchmarks.bench_index_full DATABASE` on the project-local cluster.
"""

from __future__ import annotations

import os
import resource
import sys
import time

from address_library.service import Geocoder
from benchmarks.common import write_section
from gis.database import make_engine
from gis.settings import DatabaseSettings
from gis.versions import software_versions


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
    body = (
        "| figure | value | budget |\n|---|---:|---|\n"
        f"| standard addresses indexed | {len(geocoder.index):,} | |\n"
        f"| build from PostGIS (COPY, normalize on 2 processes, keys, grids, reverse tree) | {elapsed:.1f} s | ≤ 60 s "
        f"{'met' if elapsed <= 60 else 'MISSED'} |\n"
        f"| resident memory after the build | {rss_kb / 1024:,.0f} MB | ≤ 2,048 MB {'met' if rss_kb <= 2048 * 1024 else 'MISSED'} |\n"
        f"| peak resident memory during the build | {peak_mb:,.0f} MB | |"
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
