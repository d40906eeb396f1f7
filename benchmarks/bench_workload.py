"""benchmarks.bench_workload: the workload model city-wide — refresh time against same-run baselines, and the figures.

Everything runs in one transaction that is rolled back: the bench database is left as it was. Baselines, on the same
data in the same run: the old count-based workload (address rows + entities per grid, one UPDATE, what the grids
carried before) and a per-grid loop of the same model (one refresh per grid, timed on an evenly spread sample and
scaled to the city). Wrong results raise BenchmarkFailed: items that do not add up to the hours, a per-grid answer
that differs from the set-based one, a refresh that is not idempotent, a grid whose hours break the consistency law
with `area_work`.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import shapely
from scipy.stats import spearmanr
from sqlalchemy import Connection, Engine, text

from benchmarks.common import BenchmarkFailed
from gis import clock
from gis.crs import to_metric
from gis.settings import DatabaseSettings
from planning.workload import Standards, Workload, combine, load_standards, recommended_workers
from planning.workload_service import _ITEMS_SQL, _placed, _window, area_work, grid_workloads, refresh

RUNS = 3
LOOP_SAMPLE = 100
LAW_COMMUNITIES = 3
# The same placement done by PostGIS (a spatial join, lowest code per point), counted per grid: what the first
# version of the service ran; timed against our placement of the same things (`_counts` without land and roads).
_POSTGIS_PLACEMENT = f"""
    WITH vg AS (SELECT code, geom FROM grid WHERE version_id = :version_id),
    box AS (SELECT ST_Extent(geom)::geometry AS b FROM grid WHERE version_id = :version_id),
    items AS ({_ITEMS_SQL}),
    placed AS (
      SELECT DISTINCT ON (i.kind, i.id) i.kind, i.key, i.licence, i.unfiled, vg.code
        FROM items i JOIN vg ON ST_Covers(vg.geom, i.geom) ORDER BY i.kind, i.id, vg.code)
    SELECT code, kind, key, licence, count(*), count(*) FILTER (WHERE unfiled) FROM placed
     GROUP BY code, kind, key, licence
"""  # noqa: S608 - fixed SQL fragments; values are bound
# The grids' count-based workload as the loader and the territory code computed it (address rows + entities).
_COUNT_BASED = """
UPDATE grid g SET address_count = c.n_addr, entity_count = c.n_ent, workload = c.n_addr + c.n_ent FROM (
  SELECT g2.code,
    (SELECT count(*) FROM address a WHERE a.grid_code = g2.code) AS n_addr,
    (SELECT count(*) FROM entity e WHERE e.grid_code = g2.code) AS n_ent
  FROM grid g2 WHERE g2.version_id = :v) c
WHERE g.version_id = :v AND g.code = c.code
"""


def _timed(step: object) -> float:
    """Seconds one call of `step` takes."""
    started = time.perf_counter()
    step()  # type: ignore[operator]
    return time.perf_counter() - started


def _check_items(loads: dict[str, Workload]) -> None:
    """Every grid's hours are ≥ 0 and its items' sum."""
    for code, w in loads.items():
        if w.hours < 0 or not math.isclose(w.hours, math.fsum(i.hours for i in w.items), rel_tol=1e-9, abs_tol=1e-9):
            raise BenchmarkFailed(f"grid {code}: hours {w.hours} are not the sum of its items")


def _check_law(conn: Connection, version_id: int) -> int:
    """The consistency law on a few real communities; the grids checked."""
    communities = list(
        conn.execute(
            text(
                "SELECT community_code FROM grid WHERE version_id = :v GROUP BY community_code"
                " HAVING count(*) BETWEEN 4 AND 6 ORDER BY sum(entity_count) DESC LIMIT :n"
            ),
            {"v": version_id, "n": LAW_COMMUNITIES},
        ).scalars()
    )
    checked = 0
    for community in communities:
        work = area_work(conn, [community])
        rows = conn.execute(
            text(
                "SELECT code, ST_AsBinary(geom) FROM grid WHERE version_id = :v AND community_code = :c ORDER BY code"
            ),
            {"v": version_id, "c": community},
        ).all()
        loads = grid_workloads(conn, grid_codes=[r[0] for r in rows])
        points = shapely.points(work.points_xy)
        taken = np.zeros(len(work.points_xy), dtype=bool)
        for code, wkb in rows:
            shape = to_metric(shapely.from_wkb(bytes(wkb)))
            inside = shapely.covers(shape, points) & ~taken
            taken |= inside
            roads_m = sum(shapely.intersection(shape, road).length for road in work.roads)
            law = work.points_hours[inside].sum() + shape.area * work.hours_per_m2 + roads_m * work.hours_per_road_m
            if not math.isclose(law, loads[code].hours, rel_tol=1e-6, abs_tol=1e-9):
                raise BenchmarkFailed(
                    f"grid {code}: area_work gives {law:.6f} h, grid_workloads {loads[code].hours:.6f} h"
                )
            checked += 1
    return checked


def _figures(conn: Connection, version_id: int, loads: dict[str, Workload], standards: Standards) -> str:
    """The city's hours, their breakdown, hours per worker and the staffing they imply, as markdown."""
    rows = conn.execute(
        text(
            "SELECT g.code, g.workload, (SELECT count(*) FROM worker w WHERE w.version_id = g.version_id"
            " AND w.grid_code = g.code AND w.active) FROM grid g WHERE g.version_id = :v ORDER BY g.code"
        ),
        {"v": version_id},
    ).all()
    codes = [str(r[0]) for r in rows]
    workers = np.array([int(r[2]) for r in rows])
    hours = np.array([loads[c].hours for c in codes])
    old = np.array([float(r[1]) for r in rows])
    staffed = workers > 0
    per_worker = hours[staffed] / workers[staffed]
    recommended = np.array([recommended_workers(h, standards) for h in hours])
    more, fewer = int((recommended > workers).sum()), int((recommended < workers).sum())
    rho = float(spearmanr(old[staffed] / workers[staffed], per_worker).statistic)
    total = combine(list(loads.values()))
    item_rows = "".join(
        f"| {i.label_zh} (`{i.key}`) | {i.count:,.1f} | {i.minutes_each:.1f} | {i.hours:,.1f} | {i.hours / total.hours:.1%} |\n"
        for i in sorted(total.items, key=lambda i: -i.hours)
        if i.hours > 0
    )
    p10, p50, p90 = np.percentile(per_worker, [10, 50, 90])
    return (
        f"City: {len(codes):,} grids, {int(workers.sum()):,} active workers, {total.hours:,.0f} hours a month "
        f"({total.hours / max(int(workers.sum()), 1):.2f} per worker; capacity {standards.field_hours_per_worker_month:g} h "
        f"per worker, standards {standards.version}).\n\n"
        "| item | count per month | minutes each | hours per month | share |\n|---|---:|---:|---:|---:|\n"
        f"{item_rows}\n"
        f"Hours per worker per grid: p10 {p10:.2f}, median {p50:.2f}, p90 {p90:.2f}, max {per_worker.max():.2f} "
        f"(max/median {per_worker.max() / p50:.1f}×). Spearman rank correlation with the old count-based workload per "
        f"worker (address rows + entities): {rho:.2f}.\n\n"
        f"Recommended workers (hours / capacity, within {standards.min_workers}–{standards.max_workers}): "
        f"{int(recommended.sum()):,} in all against {int(workers.sum()):,} now; {more + fewer:,} grids "
        f"({(more + fewer) / len(codes):.1%}) differ from their current head-count: {more:,} need more, {fewer:,} fewer."
    )


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Measure and return markdown: city-wide refresh against the baselines, checks, and the city's figures."""
    del settings  # the engine is the bench database's
    standards = load_standards()
    with engine.connect() as conn, conn.begin() as tx:
        version_id = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one()
        n_grids = conn.execute(text("SELECT count(*) FROM grid WHERE version_id = :v"), {"v": version_id}).scalar_one()
        if n_grids == 0:
            raise BenchmarkFailed("the bench database has no active grids")

        refresh(conn, standards=standards)  # warm-up: plans, caches, the standards file
        runs = [_timed(lambda: refresh(conn, standards=standards)) for _ in range(RUNS)]
        written = refresh(conn, standards=standards)
        if written != n_grids:
            raise BenchmarkFailed(f"refresh wrote {written} rows for {n_grids} grids")
        loads = grid_workloads(conn, standards=standards)
        _check_items(loads)
        read_s = _timed(lambda: grid_workloads(conn, standards=standards))
        again = grid_workloads(conn, standards=standards)
        if any(not math.isclose(again[c].hours, loads[c].hours, rel_tol=1e-12) for c in loads):
            raise BenchmarkFailed("a second refresh changed the hours: refresh is not idempotent")

        # Baseline 0: the placement in PostGIS, against ours on the same things.
        now = clock.now()
        postgis_s = min(
            _timed(
                lambda: conn.execute(
                    text(_POSTGIS_PLACEMENT), {"version_id": version_id, **_window(now, standards)}
                ).all()
            )
            for _ in range(RUNS)
        )
        ours_s = min(_timed(lambda: _placed(conn, version_id, None, now, standards)) for _ in range(RUNS))
        # Baseline 1: the old count-based workload, one UPDATE over the city.
        count_s = [_timed(lambda: conn.execute(text(_COUNT_BASED), {"v": version_id})) for _ in range(RUNS)]
        # Baseline 2: the same model one grid at a time, on an evenly spread sample, scaled to the city.
        codes = sorted(loads)
        sample = codes[:: max(1, len(codes) // LOOP_SAMPLE)][:LOOP_SAMPLE]
        started = time.perf_counter()
        for code in sample:
            refresh(conn, grid_codes=[code], standards=standards)
        loop_s = (time.perf_counter() - started) / len(sample) * n_grids
        one_by_one = grid_workloads(conn, grid_codes=sample, standards=standards)
        for code in sample:
            if not math.isclose(one_by_one[code].hours, loads[code].hours, rel_tol=1e-9, abs_tol=1e-9):
                raise BenchmarkFailed(
                    f"grid {code}: {one_by_one[code].hours} h one by one, {loads[code].hours} h city-wide"
                )
        law_grids = _check_law(conn, version_id)
        figures = _figures(conn, version_id, loads, standards)
        tx.rollback()

    best, median = min(runs), statistics.median(runs)
    return (
        f"City-wide refresh of the workload of every grid of the active version ({n_grids:,} grids; one pass: every "
        "entity, task and clue fetched once and placed in the grid covering it by GEOS covers in bulk, land and road "
        "length per grid in SQL, one upsert), in a transaction rolled back at the end.\n\n"
        "| method | seconds | ratio |\n|---|---:|---:|\n"
        f"| `planning.workload_service.refresh`, best of {RUNS} | {best:.2f} | 1.0 |\n"
        f"| same, median of {RUNS} | {median:.2f} | {median / best:.2f}× |\n"
        f"| reading the stored rows when current (`grid_workloads`) | {read_s:.2f} | {read_s / best:.2f}× |\n"
        f"| placing the things in their grids: ours (one query, GEOS covers in bulk), best of {RUNS} | {ours_s:.2f} | "
        f"{ours_s / best:.2f}× |\n"
        f"| baseline: the same placement by a PostGIS spatial join (ST_Covers, lowest code), best of {RUNS} | "
        f"{postgis_s:.2f} | {postgis_s / best:.2f}× ({postgis_s / ours_s:.1f}× ours) |\n"
        f"| baseline: the same model grid by grid (`refresh(grid_codes=[code])`, {len(sample)} grids timed, scaled to "
        f"{n_grids:,}) | {loop_s:.1f} | {loop_s / best:.1f}× slower |\n"
        f"| baseline: the old count-based workload (address rows + entities, one UPDATE), best of {RUNS} | "
        f"{min(count_s):.2f} | {min(count_s) / best:.2f}× |\n\n"
        f"Checks: every grid's items add up to its hours; the {len(sample)} grids computed one by one equal the "
        f"city-wide answer; a second refresh changes nothing; the consistency law holds on {law_grids} grids of "
        f"{LAW_COMMUNITIES} communities (points of `area_work` + land + roads = the grid's hours, within 1e-6).\n\n"
        f"{figures}"
    )
