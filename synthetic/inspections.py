"""synthetic.inspections: the demo city's 一单两库 — the shipped item lists and generated inspector directories.

Dongguan's system has 38 departments, 473 items and 4,746 inspectors; the demo and full cities get about as many
inspectors for their 16 departments, the small test city about 1,200. Every department has a branch office in every
town (东莞市市场监督管理局莞城分局 …) at an address point near the town's centre, and its inspectors are spread
over the towns by their number of entities, most of them living (home grid) in their office's town.
Deterministic from the seed; loading twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from planning.directory import InspectorRow, inspectors_csv
from planning.directory_service import department_codes, import_inspectors, import_items
from supervision.routing import default_router
from synthetic.communities import allocate
from synthetic.loader import GIVEN, SURNAMES

ITEMS_PATH = Path(__file__).resolve().parent.parent / "planning" / "data" / "inspection_items.csv"
ACTOR = "synthetic"
# Dongguan's published total; a city under this many entities gets the small directory.
FULL_INSPECTORS = 4_746
SMALL_INSPECTORS = 1_200
SMALL_CITY_ENTITIES = 50_000
# Shares of the inspectors by department (an assumption shaped like a city's enforcement staff: market supervision
# the largest by far, then health, public security, culture and the safety departments).
DEPARTMENT_SHARES: dict[str, float] = {
    "market_supervision": 0.40,
    "health": 0.08,
    "culture": 0.06,
    "public_security": 0.06,
    "emergency": 0.05,
    "ecology": 0.05,
    "fire_rescue": 0.05,
    "transport": 0.04,
    "commerce": 0.03,
    "tobacco": 0.03,
    "education": 0.03,
    "hrss": 0.03,
    "housing": 0.03,
    "urban_management": 0.03,
    "agriculture": 0.02,
    "water": 0.02,
}
# What a department's town office is called.
_OFFICE_SUFFIX = {"fire_rescue": "消防救援大队", "public_security": "分局"}


def _town_sites(conn: Connection, n_departments: int) -> list[tuple[str, str, int, list[tuple[float, float]]]]:
    """(town code, town name, open entities, the address points nearest the town's centre) per town, by code."""
    rows = conn.execute(
        text(
            "WITH centre AS (SELECT town_code, ST_Centroid(ST_Collect(geom)) AS c FROM address "
            "WHERE level = 'door' GROUP BY town_code) "
            "SELECT t.code, t.name, (SELECT count(*) FROM entity e WHERE e.town_code = t.code AND e.status = 'open'), "
            "ARRAY(SELECT ST_X(a.geom) || ' ' || ST_Y(a.geom) FROM address a WHERE a.town_code = t.code "
            "AND a.level = 'door' ORDER BY a.geom <-> centre.c, a.id LIMIT :k) "
            "FROM town t JOIN centre ON centre.town_code = t.code ORDER BY t.code"
        ),
        {"k": n_departments},
    ).all()
    sites = []
    for code, name, entities, points in rows:
        lonlat = [(float(p.split()[0]), float(p.split()[1])) for p in points]
        sites.append((code, name, int(entities), lonlat))
    return sites


def generate_inspectors(conn: Connection, seed: int) -> list[InspectorRow]:
    """The inspector directory of every department, deterministic from the seed and the city's data."""
    rng = np.random.default_rng([seed, 16])
    departments = sorted(department_codes())
    names = {d.code: d.name for d in default_router().departments()}
    items: dict[str, list[str]] = {d: [] for d in departments}
    for code, department in conn.execute(
        text("SELECT code, department_code FROM inspection_item WHERE active ORDER BY code")
    ):
        items.setdefault(department, []).append(code)
    sites = _town_sites(conn, len(departments))
    open_entities = sum(s[2] for s in sites)
    total = FULL_INSPECTORS if open_entities >= SMALL_CITY_ENTITIES else SMALL_INSPECTORS
    town_grids: dict[str, list[str]] = {}
    for grid_code, town_code in conn.execute(
        text(
            "SELECT g.code, g.town_code FROM grid g JOIN grid_version v ON v.id = g.version_id "
            "WHERE v.status = 'active' ORDER BY g.code"
        )
    ):
        town_grids.setdefault(town_code, []).append(grid_code)
    all_grids = [g for grids in town_grids.values() for g in grids]
    town_entities: dict[str, list[str]] = {}
    for uscc, town_code in conn.execute(
        text("SELECT uscc, town_code FROM entity WHERE status = 'open' AND town_code IS NOT NULL ORDER BY uscc")
    ):
        town_entities.setdefault(town_code, []).append(uscc)

    shares = np.array([DEPARTMENT_SHARES.get(d, 0.02) for d in departments])
    per_department = allocate(total, shares)
    # Every town has at least one inspector of every department with items, the rest follow the entities.
    town_weights = np.array([max(s[2], 1) for s in sites], dtype=float)
    rows: list[InspectorRow] = []
    for d_index, (department, count) in enumerate(zip(departments, per_department, strict=True)):
        own_items = items.get(department, [])
        if not own_items:
            continue
        per_town = allocate(int(count) - len(sites), town_weights) + 1 if count > len(sites) else np.ones(len(sites))
        serial = 0
        for t_index, (town_code, town_name, _, points) in enumerate(sites):
            lon, lat = points[d_index % len(points)]
            office = f"{names[department]}{town_name}{_OFFICE_SUFFIX.get(department, '分局')}"
            grids_here = town_grids.get(town_code) or all_grids
            for _ in range(int(per_town[t_index])):
                serial += 1
                name = (
                    SURNAMES[rng.integers(len(SURNAMES))]
                    + GIVEN[rng.integers(len(GIVEN))]
                    + (GIVEN[rng.integers(len(GIVEN))] if rng.random() < 0.7 else "")
                )
                # Most are qualified for every item of their department; some lack one or two.
                qualified = list(own_items)
                if len(qualified) > 2 and rng.random() < 0.25:
                    drop = rng.choice(len(qualified), size=int(rng.integers(1, 3)), replace=False)
                    qualified = [q for i, q in enumerate(qualified) if i not in set(drop.tolist())]
                home_pool = grids_here if rng.random() < 0.9 else all_grids
                home = home_pool[int(rng.integers(len(home_pool)))]
                n_conflicts = int(rng.choice(3, p=[0.8, 0.15, 0.05]))
                pool = town_entities.get(town_code, [])
                conflicts = (
                    tuple(sorted({pool[int(i)] for i in rng.integers(len(pool), size=n_conflicts)}))
                    if pool and n_conflicts
                    else ()
                )
                load_cap = int(rng.integers(10, 31)) if rng.random() < 0.1 else None
                rows.append(
                    InspectorRow(
                        code=f"4419{d_index + 1:02d}{serial:05d}",
                        department_code=department,
                        name=name,
                        qualifications=tuple(qualified),
                        home_grid_code=home,
                        office_name=office,
                        office_lon=lon,
                        office_lat=lat,
                        conflicts=conflicts,
                        load_cap=load_cap,
                        active=True,
                    )
                )
    return rows


def load_inspection_lists(conn: Connection, seed: int) -> dict[str, Any]:
    """Load the shipped item lists and the generated inspectors (idempotent); what each import changed."""
    items = import_items(conn, ITEMS_PATH.read_bytes(), actor=ACTOR, department=None, replace=True)
    rows = generate_inspectors(conn, seed)
    inspectors = import_inspectors(conn, inspectors_csv(rows), actor=ACTOR, department=None, replace=True)
    return {
        "items": items.rows,
        "inspectors": inspectors.rows,
        "items_created": items.created,
        "inspectors_created": inspectors.created,
    }
