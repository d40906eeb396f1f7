"""benchmarks.calibrate: fit the geocoder's confidence table on the demo city and write it into the package.

    .venv/bin/python -m benchmarks.calibrate

Uses the benchmark database (the demo city, seed 20201101, loaded when missing). The labelled set is
benchmarks.geocode_eval's: registrations, input-method slips and absent addresses (4:1), of the towns in the
FIT half only; the geocoder benchmark checks the table on the other half. Writes
address_library/data/calibration.json and prints the cell count.
"""

from __future__ import annotations

from pathlib import Path

from address_library import calibration
from address_library.calibration import Calibration
from address_library.service import Geocoder
from benchmarks.geocode_eval import FIT, SEED, cases, half_of, judge
from benchmarks.run import bench_database
from gis.database import make_engine
from synthetic.loader import load_demo

TABLE = Path(calibration.__file__).resolve().parent / "data" / "calibration.json"


def fit() -> Calibration:
    """Fit the table on the FIT half of the demo city's labelled set."""
    settings = bench_database()
    # A fresh load: the benchmarks that run after the accuracy section add registrations of their own.
    load_demo(settings, scale="demo", seed=20201101, force=True, progress=False, log=lambda _m: None)
    engine = make_engine(settings)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    in_library, absent, towns = cases(engine)
    chosen = [c for c in (*in_library, *absent) if half_of(c.town_code, towns) == FIT]
    labelled = [(j.result.evidence, j.right) for j in judge(geocoder, chosen) if j.result.evidence is not None]
    source = (
        f"benchmarks.calibrate on the demo city (seed 20201101), cases seed {SEED}: {len(labelled):,} answers of "
        f"the FIT half of the towns (registrations, input-method slips, absent addresses 4:1)"
    )
    return Calibration.fit(labelled, source)


if __name__ == "__main__":
    table = fit()
    table.save(TABLE)
    print(f"{len(table.counts)} cells written to {TABLE}: {table.source}")
