"""benchmarks.bench_inspection_draw: the double-random draw at the full-scale directory (budget: 1.35 M entities ≤ 5 s).

Four measurements, each beside a same-run baseline; (a)–(c) checked against an independent recomputation of the
documented algorithm (hmac.new per candidate, hex keys sorted; written here again, not imported):

- (a) the pure selection (`planning.draw.select`) over 1.35 M synthetic candidates, one item × four credit classes,
  beside `random.Random(seed).sample` per stratum (the method the issue forbids, as the speed reference);
- (b) the database path on the bench city (135,000 entities): a joint plan of two departments over the whole city
  (candidates from the target directory, COPY, commitment) and its draw (selection, joint visits, teams matched
  from the seed), then the public answer and candidate list an auditor reads;
- (c) the same at full scale: the city's entities copied nine times under synthetic credit codes (1.35 M entities),
  one plan on the items every company or individual business has, drawn;
- (d) matching, over-subscribed: 20,000 visits for 300 inspectors at the default cap of 20 (the case that used to
  hang: a walk past every inspector for every visit left over), its output checked.

Everything written runs inside transactions that are rolled back: the bench database is left as it was.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import random
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text

from benchmarks.common import BenchmarkFailed
from gis.settings import DatabaseSettings
from planning import draw as drawing
from planning import inspection_plans
from planning.inspection_match import InspectorInfo, VisitNeed, match, order_key, town_of_grid
from planning.inspection_plans import PlanRequest
from supervision.scope import CITY

# Seals the benchmark plans' server seeds until their draw (any fixed secret of 32+ characters will do).
BENCH_SECRET_KEY = "gridgov-benchmark-secret-" + "b" * 32

FULL_SCALE = 1_350_000
BUDGET_S = 5.0
CLASS_SHARES = {"A": 0.30, "B": 0.50, "C": 0.15, "D": 0.05}
RATIOS = {"A": Decimal("0.03"), "B": Decimal("0.05"), "C": Decimal("0.10"), "D": Decimal("0.20")}
PUBLIC_VALUE = "835"
COPIES = 9  # (c): the bench city's entities and nine copies make the full-scale directory
JOINT_DEPARTMENTS = ("market_supervision", "health")
EVERYONE_ITEMS = ("market_supervision-01", "market_supervision-02")  # every company / every individual business
ACTOR = "bench:inspection_draw"
# Visits per inspector per plan: a city-wide plan is a year's programme (the 20 of a town's monthly plan would leave
# most visits unmatched, which measures the matching's refusals rather than the draw).
JOINT_LOAD_CAP = 100
FULL_LOAD_CAP = 200
# (d): a whole-city plan far beyond its inspectors: 20,000 visits, 300 inspectors at the default cap of 20.
OVER_VISITS = 20_000
OVER_INSPECTORS = 300
OVER_CAP = 20


def independent_selection(seed: bytes, stratum_id: str, usccs: Sequence[str], n: int) -> list[str]:
    """The documented selection written again: hex HMAC-SHA256(seed, 'stratum_id|uscc') ascending, first n."""
    keys = {u: hmac.new(seed, f"{stratum_id}|{u}".encode(), hashlib.sha256).hexdigest() for u in set(usccs)}
    return sorted(keys, key=keys.__getitem__)[:n]


def synthetic_strata(total: int) -> dict[str, list[str]]:
    """One item × four classes of synthetic, deterministic 18-character credit codes, split by CLASS_SHARES."""
    strata: dict[str, list[str]] = {}
    start = 0
    for i, (cls, share) in enumerate(CLASS_SHARES.items()):
        size = total - start if i == len(CLASS_SHARES) - 1 else round(total * share)
        strata[f"market_supervision-01/{hashlib.sha256(cls.encode()).hexdigest()[:8]}"] = [
            f"91441900B{k:09d}" for k in range(start, start + size)
        ]
        start += size
    return strata


def _pure(total: int) -> dict[str, Any]:
    """(a): ours and the baseline over the synthetic strata; the selection checked independently."""
    strata = synthetic_strata(total)
    classes = list(CLASS_SHARES)
    server_seed = hashlib.sha256(b"bench_inspection_draw").digest()
    seed = drawing.seed_of(server_seed, PUBLIC_VALUE)
    sizes = {sid: len(us) for sid, us in strata.items()}
    ns = {sid: drawing.sample_size(RATIOS[classes[i]], sizes[sid]) for i, sid in enumerate(strata)}
    started = time.perf_counter()
    ours = {sid: drawing.select(seed, sid, usccs, ns[sid]) for sid, usccs in strata.items()}
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    baseline = {sid: random.Random(int.from_bytes(seed, "big")).sample(usccs, ns[sid]) for sid, usccs in strata.items()}
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    csv_bytes = drawing.candidates_csv((sid, u) for sid, usccs in strata.items() for u in usccs)
    digest_s = time.perf_counter() - started
    for sid, usccs in strata.items():
        if ours[sid] != independent_selection(seed, sid, usccs, ns[sid]):
            raise BenchmarkFailed(f"stratum {sid}: the selection disagrees with the independent recomputation")
        if len(baseline[sid]) != ns[sid]:
            raise BenchmarkFailed(f"stratum {sid}: the baseline drew {len(baseline[sid])}, not {ns[sid]}")
    return {
        "candidates": sum(sizes.values()),
        "selected": sum(ns.values()),
        "ours_s": ours_s,
        "baseline_s": baseline_s,
        "csv_s": digest_s,
        "csv_mb": len(csv_bytes) / 1e6,
    }


def _over_subscribed() -> dict[str, Any]:
    """(d): the matching of 20,000 visits by 300 inspectors (150 teams of two at a cap of 20 make 3,000 visits); the
    output checked (every other visit listed as load_cap_reached); beside the least any matching must do, ordering
    the visits by their keys."""
    seed = hashlib.sha256(b"bench_inspection_draw:over").digest()
    grids = [f"4419{t:05d}{g:03d}{k:03d}" for t in range(1, 7) for g in range(1, 4) for k in range(1, 4)]
    visits = [VisitNeed(f"91441900OV{n:07d}X", grids[n % len(grids)], ("ms-01",)) for n in range(OVER_VISITS)]
    inspectors = [
        InspectorInfo(
            id=i,
            department="market_supervision",
            qualifications=frozenset({"ms-01"}),
            home_grid=grids[(i * 7) % len(grids)],
            conflicts=frozenset(),
            recent=frozenset(),
            load_cap=OVER_CAP,
            office=None,
            office_town=town_of_grid(grids[i % len(grids)]),
        )
        for i in range(1, OVER_INSPECTORS + 1)
    ]
    started = time.perf_counter()
    result = match(seed, visits, inspectors, {"ms-01": "market_supervision"})
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    sorted(visits, key=lambda v: order_key(seed, f"visit|{v.uscc}"))
    baseline_s = time.perf_counter() - started
    capacity = (OVER_INSPECTORS // 2) * OVER_CAP
    if len(result.assignment) != capacity or len(result.assignment) + len(result.unmatched) != OVER_VISITS:
        raise BenchmarkFailed(f"over-subscribed matching: {len(result.assignment)} visits matched, not {capacity}")
    if set(result.unmatched.values()) != {"load_cap_reached"}:
        raise BenchmarkFailed(f"over-subscribed matching: reasons {sorted(set(result.unmatched.values()))}")
    return {
        "ours_s": ours_s,
        "baseline_s": baseline_s,
        "matched": len(result.assignment),
        "left": len(result.unmatched),
    }


def _check_public(conn: Connection, plan_id: int) -> tuple[float, int]:
    """Read the public answer and candidate list as an auditor does and recompute every stratum; (seconds, bytes)."""
    started = time.perf_counter()
    public = inspection_plans.public_view(conn, plan_id)
    csv_bytes = inspection_plans.public_candidates_csv(conn, plan_id)
    read_s = time.perf_counter() - started
    if hashlib.sha256(csv_bytes).hexdigest() != public["candidates_sha256"]:
        raise BenchmarkFailed(f"plan {plan_id}: the candidate list does not hash to candidates_sha256")
    server_seed = bytes.fromhex(public["server_seed"])
    if hashlib.sha256(server_seed).hexdigest() != public["commitment"]:
        raise BenchmarkFailed(f"plan {plan_id}: the server seed does not match the commitment")
    seed = hashlib.sha256(server_seed + public["public_value"].encode("utf-8")).digest()
    members: dict[str, list[str]] = {}
    for line in csv_bytes.decode("utf-8").split("\n")[1:-1]:
        stratum_id, uscc = line.split(",")
        members.setdefault(stratum_id, []).append(uscc)
    for stratum in public["strata"]:
        usccs = members.get(stratum["id"], [])
        n = math.ceil(Decimal(str(stratum["ratio"])) * len(usccs))
        if len(usccs) != stratum["size"] or n != stratum["n"]:
            raise BenchmarkFailed(f"plan {plan_id}, stratum {stratum['id']}: size or n differs from the list")
        if sorted(independent_selection(seed, stratum["id"], usccs, n)) != stratum["selected"]:
            raise BenchmarkFailed(f"plan {plan_id}, stratum {stratum['id']}: the selection disagrees")
    return read_s, len(csv_bytes)


def _plan_and_draw(conn: Connection, request: PlanRequest) -> dict[str, Any]:
    """Create a plan and draw it on this connection (the caller's transaction); the figures and the checks."""
    started = time.perf_counter()
    plan = inspection_plans.create_plan(conn, request, actor=ACTOR, scope=CITY, secret_key=BENCH_SECRET_KEY)
    create_s = time.perf_counter() - started
    started = time.perf_counter()
    drawn = inspection_plans.draw(conn, plan.id, PUBLIC_VALUE, actor=ACTOR, scope=CITY, secret_key=BENCH_SECRET_KEY)
    draw_s = time.perf_counter() - started
    if (
        drawn.visits == 0
        or drawn.visits
        != conn.execute(text("SELECT count(*) FROM inspection_visit WHERE plan_id = :p"), {"p": plan.id}).scalar_one()
    ):
        raise BenchmarkFailed(f"plan {plan.id}: the draw stored {drawn.visits} visits")
    read_s, csv_bytes = _check_public(conn, plan.id)
    return {
        "candidates": plan.candidate_count,
        "strata": plan.strata,
        "visits": drawn.visits,
        "teams": drawn.teams,
        "unmatched": drawn.unmatched,
        "create_s": create_s,
        "draw_s": draw_s,
        "stages": dict(drawn.timings),
        "public_s": read_s,
        "csv_mb": csv_bytes / 1e6,
    }


def _baseline_draw(conn: Connection, plan_id: int) -> float:
    """The same selection with random.sample per stratum over the stored candidates (read from the database)."""
    started = time.perf_counter()
    members: dict[str, list[str]] = {}
    for stratum_id, uscc in conn.execute(
        text("SELECT stratum_id, uscc FROM inspection_candidate WHERE plan_id = :p"), {"p": plan_id}
    ).tuples():
        members.setdefault(stratum_id, []).append(uscc)
    rng = random.Random(PUBLIC_VALUE)
    strata = conn.execute(text("SELECT stratum_id, n FROM inspection_stratum WHERE plan_id = :p"), {"p": plan_id})
    for stratum_id, n in strata.tuples():
        rng.sample(sorted(members[stratum_id]), n)
    return time.perf_counter() - started


def _replicate_entities(conn: Connection) -> int:
    """Copy every entity COPIES times under synthetic credit codes (same place, kind, industry, class); the total."""
    conn.execute(
        text(
            """
            INSERT INTO entity (uscc, name, kind, business_scope, industry, raw_address, address_id, town_code,
                grid_code, status, registered_on, annual_report_filed_on, needs_licence, credit_class, geom)
            SELECT 'X' || k || substr(e.uscc, 3), e.name, e.kind, e.business_scope, e.industry, e.raw_address,
                   e.address_id, e.town_code, e.grid_code, e.status, e.registered_on, e.annual_report_filed_on,
                   e.needs_licence, e.credit_class, e.geom
            FROM entity e CROSS JOIN generate_series(1, :copies) AS k
            """
        ),
        {"copies": COPIES},
    )
    return int(conn.execute(text("SELECT count(*) FROM entity")).scalar_one())


def _stages(stages: dict[str, float]) -> str:
    """A draw's stages in words: read and check, select, visits and teams, store."""
    return (
        f"read + check {stages['read_s']:.2f} s, select {stages['select_s']:.2f} s, "
        f"visits + teams {stages['teams_s']:.2f} s, store {stages['store_s']:.2f} s"
    )


def run(settings: DatabaseSettings, engine: Engine) -> str:
    """Measure (a), (b), (c); markdown of the section. Raises BenchmarkFailed when a selection or a step fails."""
    del settings  # the engine is the bench database's
    load = os.getloadavg()[0]
    pure = _pure(FULL_SCALE)
    over = _over_subscribed()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            towns = tuple(conn.execute(text("SELECT code FROM town ORDER BY code")).scalars())
            if not conn.execute(text("SELECT count(*) FROM inspector")).scalar_one():
                raise BenchmarkFailed("the bench city has no inspectors: load the demo (synthetic.inspections) first")
            joint = _plan_and_draw(
                conn,
                PlanRequest(
                    departments=JOINT_DEPARTMENTS,
                    towns=towns,
                    public_value_source="benchmark",
                    title="bench: joint plan over the whole city",
                    load_cap=JOINT_LOAD_CAP,
                ),
            )
            entities = int(conn.execute(text("SELECT count(*) FROM entity")).scalar_one())
        finally:
            trans.rollback()
        trans = conn.begin()
        try:
            started = time.perf_counter()
            full_entities = _replicate_entities(conn)
            replicate_s = time.perf_counter() - started
            full = _plan_and_draw(
                conn,
                PlanRequest(
                    departments=("market_supervision",),
                    items=EVERYONE_ITEMS,
                    towns=towns,
                    public_value_source="benchmark",
                    title="bench: the full-scale directory",
                    load_cap=FULL_LOAD_CAP,
                ),
            )
            plan_id = int(conn.execute(text("SELECT max(id) FROM inspection_plan")).scalar_one())
            baseline_db_s = _baseline_draw(conn, plan_id)
        finally:
            trans.rollback()
    selection_s = full["stages"]["read_s"] + full["stages"]["select_s"]
    verdict = (
        f"within it ({full['draw_s']:.2f} s)"
        if full["draw_s"] <= BUDGET_S
        else f"over it ({full['draw_s']:.2f} s for the whole draw, {selection_s:.2f} s for the selection)"
    )
    return "\n".join(
        [
            "The official draw (HMAC-SHA256 order per stratum, n = ⌈ratio × size⌉) beside `random.Random(seed).sample` "
            "per stratum, the method the issue forbids (its stream may change between Python versions), as the speed "
            "reference. Every selection below was recomputed by an independent implementation of docs/INSPECTIONS.md "
            "(hmac.new per candidate, hex keys sorted) and agreed; the database runs were rolled back.",
            "",
            "| what | candidates | drawn | ours | baseline (random.sample) |",
            "|---|---|---|---|---|",
            f"| (a) pure selection, 1 item × 4 classes, synthetic codes | {pure['candidates']:,} | {pure['selected']:,} | "
            f"{pure['ours_s']:.2f} s (+ candidate list {pure['csv_mb']:.1f} MB built and hashed in "
            f"{pure['csv_s']:.2f} s) | {pure['baseline_s']:.2f} s |",
            f"| (b) bench city ({entities:,} entities), joint plan of {' + '.join(JOINT_DEPARTMENTS)}, whole city: "
            f"create (directory + COPY + commitment) | {joint['candidates']:,} in {joint['strata']} strata | — | "
            f"{joint['create_s']:.2f} s | — |",
            f"| (b) its draw: selection, {joint['visits']:,} joint visits, {joint['teams']:,} teams "
            f"({joint['unmatched']:,} visits unmatched) | {joint['candidates']:,} | {joint['visits']:,} visits | "
            f"{joint['draw_s']:.2f} s ({_stages(joint['stages'])}) | — |",
            f"| (b) the auditor's read: public answer + candidates.csv ({joint['csv_mb']:.1f} MB) | — | — | "
            f"{joint['public_s']:.2f} s | — |",
            f"| (c) full scale ({full_entities:,} entities: the city + {COPIES} synthetic copies, made in "
            f"{replicate_s:.0f} s): create | {full['candidates']:,} in {full['strata']} strata | — | "
            f"{full['create_s']:.2f} s | — |",
            f"| (c) its draw ({full['visits']:,} visits, {full['teams']:,} teams, {full['unmatched']:,} unmatched) | "
            f"{full['candidates']:,} | {full['visits']:,} visits | {full['draw_s']:.2f} s ({_stages(full['stages'])}) | "
            f"{baseline_db_s:.2f} s (read + sample only) |",
            f"| (c) the auditor's read ({full['csv_mb']:.1f} MB) | — | — | {full['public_s']:.2f} s | — |",
            f"| (d) matching, over-subscribed: {OVER_VISITS:,} visits, {OVER_INSPECTORS} inspectors at a cap of "
            f"{OVER_CAP} ({over['matched']:,} visited, {over['left']:,} listed as load_cap_reached) | — | "
            f"{OVER_VISITS:,} visits | {over['ours_s']:.2f} s | {over['baseline_s']:.2f} s (only ordering the visits "
            "by their keys) |",
            "",
            f"Budget: a draw over the full-scale directory ≤ 5 s: {verdict}. The draw itself (read and check the "
            f"candidate list, select) of (c) took {selection_s:.2f} s; with the selected marked (by the server while "
            f"the teams are matched), visits and teams matched and everything stored, {full['draw_s']:.2f} s (pure "
            "selection alone at "
            f"{pure['candidates']:,} candidates: {pure['ours_s']:.2f} s). Load caps: {JOINT_LOAD_CAP} visits per "
            f"inspector in (b), {FULL_LOAD_CAP} in (c). Machine load when the section started: {load:.1f} "
            f"(1-minute average) on {os.cpu_count()} cores.",
        ]
    )
