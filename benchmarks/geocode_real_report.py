"""benchmarks.geocode_real_report: developer-side check of the geocoder on real Dongguan strings (never a test).

    .venv/bin/python -m benchmarks.geocode_real_report [CSV]     (default ../shared/data/real/dongguan_real_addresses.csv)

The demo city's library is synthetic: it holds none of these real addresses, so every door, building or room answer
with confidence ≥ 0.9 is a confident guess. The report counts them and the levels the strings are answered at. Uses
the benchmark database (the demo city). Nothing from the file is copied into the project; it is read at run time.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from address_library.errors import AddressInputError
from address_library.service import Geocoder
from benchmarks.run import bench_database
from gis.database import make_engine

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "dongguan_real_addresses.csv"


def main(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        strings = [row["address"] for row in csv.DictReader(handle)]
    engine = make_engine(bench_database())
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    levels: Counter[str] = Counter()
    confident = 0
    invalid = 0
    for typed in strings:
        try:
            answer = geocoder.geocode(typed)
        except AddressInputError:
            invalid += 1
            continue
        door = answer.status == "matched" and answer.level in ("door", "building", "room")
        levels[(answer.level if answer.status == "matched" else None) or answer.status] += 1
        confident += door and answer.confidence >= 0.9
    print(f"{len(strings):,} real strings ({invalid} refused as input)")
    print(f"door/building/room answers with confidence ≥ 0.9 (confident guesses): {confident}")
    print("levels: " + ", ".join(f"{k} {v:,}" for k, v in levels.most_common()))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
