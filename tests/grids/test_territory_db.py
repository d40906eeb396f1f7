"""The loaded territory, as a command-centre user would check it: counts, a clean tiling, grids that hold their doors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from sqlalchemy import Connection, text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids.locate import GridLocator
from grids.reference import read_towns
from supervision.uscc import is_valid_uscc

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def conn(db: DatabaseSettings) -> Iterator[Connection]:
    engine = make_engine(db)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def scalar(conn: Connection, sql: str) -> object:
    return conn.execute(text(sql)).scalar_one()


def test_the_city_has_33_towns_605_communities_and_about_2900_grids(conn: Connection) -> None:
    assert scalar(conn, "SELECT count(*) FROM town") == 33
    kinds = dict(conn.execute(text("SELECT kind, count(*) FROM community GROUP BY kind")).all())
    assert kinds == {"village_committee": 350, "residents_committee": 246, "special": 8, "virtual": 1}
    n_grids = scalar(
        conn, "SELECT count(*) FROM grid g JOIN grid_version v ON v.id = g.version_id WHERE v.status = 'active'"
    )
    assert 2800 <= n_grids <= 3000
    assert scalar(conn, "SELECT count(*) FROM grid_version WHERE status = 'active'") == 1
    assert scalar(conn, "SELECT id FROM grid_version WHERE status = 'active'") == 1


def test_grid_codes_are_their_community_code_plus_a_three_digit_sequence(conn: Connection) -> None:
    bad = scalar(
        conn,
        "SELECT count(*) FROM grid WHERE code !~ '^[0-9]{15}$' OR left(code, 12) <> community_code "
        "OR right(code, 3) = '000'",
    )
    assert bad == 0
    # Every community has at least one grid, and sequences start at 001 without holes.
    holes = scalar(
        conn,
        "SELECT count(*) FROM (SELECT community_code, max(right(code, 3)::int) AS top, count(*) AS n "
        "FROM grid GROUP BY community_code) s WHERE top <> n",
    )
    assert holes == 0
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM community c WHERE NOT EXISTS (SELECT 1 FROM grid g WHERE g.community_code = c.code)",
        )
        == 0
    )


@pytest.mark.parametrize(
    ("table", "parent"),
    [("town", None), ("community", "town"), ("grid", "community")],
)
def test_each_level_tiles_the_city_without_gap_or_overlap(conn: Connection, table: str, parent: str | None) -> None:
    # Identifiers come from the parametrization above, never from input.
    overlap = scalar(
        conn,
        f"SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0) FROM {table} a "  # noqa: S608 - table names from the fixed list above
        f"JOIN {table} b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)",
    )
    assert overlap <= 1.0, f"{table}: overlap of {overlap:.1f} m²"
    sum_area, union_area, town_area = conn.execute(
        text(
            f"SELECT (SELECT sum(ST_Area(geom::geography)) FROM {table}), "  # noqa: S608 - table names from the fixed list above
            f"(SELECT ST_Area(ST_Union(geom)::geography) FROM {table}), "
            "(SELECT ST_Area(ST_Union(geom)::geography) FROM town)"
        )
    ).one()
    assert abs(sum_area - union_area) <= 1.0
    assert abs(union_area - town_area) <= 1.0, f"{table} does not cover the city: {union_area - town_area:.1f} m²"
    # No polygon holds an interior gap of its union (a gap would show as a hole in the union, not in the towns).
    holes = scalar(
        conn,
        f"SELECT sum(ST_NumInteriorRings(g)) FROM (SELECT (ST_Dump(ST_Union(geom))).geom g FROM {table}) s",  # noqa: S608 - table names from the fixed list above
    )
    town_holes = scalar(
        conn, "SELECT sum(ST_NumInteriorRings(g)) FROM (SELECT (ST_Dump(ST_Union(geom))).geom g FROM town) s"
    )
    assert holes == town_holes
    if parent:
        outside = scalar(
            conn,
            f"SELECT coalesce(max(ST_Area(ST_Difference(c.geom, p.geom)::geography)), 0) FROM {table} c "  # noqa: S608 - table names from the fixed list above
            f"JOIN {parent} p ON p.code = c.{parent}_code",
        )
        assert outside <= 1.0, f"a {table} reaches {outside:.1f} m² outside its {parent}"


def test_all_geometries_are_valid_wgs84(conn: Connection) -> None:
    for table in ("town", "community", "grid", "address", "road"):
        invalid, srid = conn.execute(
            text(f"SELECT count(*) FILTER (WHERE NOT ST_IsValid(geom)), max(ST_SRID(geom)) FROM {table}")  # noqa: S608 - table names from the fixed list above
        ).one()
        assert invalid == 0, table
        assert srid == 4326, table


def test_the_repair_filled_the_real_gaps_and_recorded_them(conn: Connection) -> None:
    rows = (
        conn.execute(text("SELECT t.name, r.* FROM town_repair r JOIN town t ON t.code = r.town_code")).mappings().all()
    )
    assert len(rows) == 33
    gained = {r["name"]: r["gap_area_added_m2"] for r in rows}
    # The ~12 km² hole between 东坑, 茶山 and 寮步 and the ~10 km² one between 茶山, 石排, 横沥 went to a neighbour.
    assert sum(gained[n] for n in ("东坑镇", "茶山镇", "寮步镇", "石排镇", "横沥镇")) > 18e6
    lost = {r["name"]: r["overlap_area_removed_m2"] for r in rows}
    assert lost["莞城街道"] + lost["东城街道"] > 0
    assert lost["石碣镇"] + lost["石龙镇"] > 0
    # The repaired towns stay close to the source: nothing moves more than the gaps and overlaps it had.
    source = read_towns().to_crs(4547).set_index("code").geometry.area
    stored = dict(conn.execute(text("SELECT code, ST_Area(ST_Transform(geom, 4547)) FROM town")).all())
    for code, area in stored.items():
        assert abs(area - source[code]) < 15e6


def test_every_standard_address_lies_in_the_grid_recorded_for_it(conn: Connection) -> None:
    assert scalar(conn, "SELECT count(*) FROM address WHERE grid_code IS NULL") == 0
    misplaced = scalar(
        conn,
        "SELECT count(*) FROM address a JOIN grid g ON g.code = a.grid_code "
        "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' WHERE NOT ST_Covers(g.geom, a.geom)",
    )
    assert misplaced == 0
    wrong_community = scalar(
        conn,
        "SELECT count(*) FROM address a JOIN grid g ON g.code = a.grid_code WHERE g.community_code <> a.community_code",
    )
    assert wrong_community == 0


def test_address_levels_form_a_tree_with_full_standard_text(conn: Connection) -> None:
    levels = dict(conn.execute(text("SELECT level, count(*) FROM address GROUP BY level")).all())
    assert {"door", "building", "room"} <= set(levels)
    orphans = scalar(
        conn,
        "SELECT count(*) FROM address c LEFT JOIN address p ON p.id = c.parent_id "
        "WHERE c.parent_id IS NOT NULL AND (p.id IS NULL OR NOT starts_with(c.full_text, p.full_text))",
    )
    assert orphans == 0
    assert scalar(conn, "SELECT count(*) FROM address WHERE level = 'room' AND parent_id IS NULL") == 0
    assert scalar(conn, "SELECT count(*) - count(DISTINCT full_text) FROM address") == 0
    # The full text starts with the town's name: 东莞 addresses are written town-first.
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM address a JOIN town t ON t.code = a.town_code WHERE NOT starts_with(a.full_text, t.name)",
        )
        == 0
    )


def test_every_credit_code_is_valid_and_every_entity_sits_in_a_grid(conn: Connection) -> None:
    codes = [r[0] for r in conn.execute(text("SELECT uscc FROM entity")).all()]
    assert len(codes) > 1000
    assert all(is_valid_uscc(c) for c in codes)
    assert len(set(codes)) == len(codes)
    assert scalar(conn, "SELECT count(*) FROM entity WHERE grid_code IS NULL") == 0
    stray = scalar(
        conn,
        "SELECT count(*) FROM entity e JOIN address a ON a.id = e.address_id WHERE a.grid_code <> e.grid_code",
    )
    assert stray == 0


def test_population_sums_to_the_2020_census_at_every_level(conn: Connection) -> None:
    town_mismatch = scalar(
        conn,
        "SELECT count(*) FROM town t WHERE t.population <> "
        "(SELECT sum(c.population) FROM community c WHERE c.town_code = t.code)",
    )
    assert town_mismatch == 0
    community_mismatch = scalar(
        conn,
        "SELECT count(*) FROM community c WHERE c.population <> "
        "(SELECT sum(g.population) FROM grid g WHERE g.community_code = c.code)",
    )
    assert community_mismatch == 0
    # 东莞 2020 census: 10,466,625 residents.
    assert scalar(conn, "SELECT sum(population) FROM town") == 10_466_625


def test_residents_committees_are_denser_than_villages(conn: Connection) -> None:
    density = dict(conn.execute(text("SELECT kind, sum(population) / sum(area_m2) FROM community GROUP BY kind")).all())
    assert density["residents_committee"] > density["village_committee"]


def test_grids_are_balanced_on_workload_within_their_community(conn: Connection) -> None:
    rows = conn.execute(
        text(
            "SELECT workload, avg(workload) OVER (PARTITION BY community_code), count(*) OVER (PARTITION BY community_code),"
            " address_count, entity_count FROM grid"
        )
    ).all()
    load = np.array([r[0] for r in rows], dtype=float)
    mean = np.array([float(r[1]) for r in rows])
    assert all(r[0] == r[3] + r[4] for r in rows)
    deviation = np.abs(load / mean - 1)
    assert np.mean(deviation <= 0.25) >= 0.95
    assert deviation.max() <= 0.50
    # The counts are the truth: they match the rows in the address and entity tables.
    assert scalar(conn, "SELECT sum(address_count) FROM grid") == scalar(conn, "SELECT count(*) FROM address")
    assert scalar(conn, "SELECT sum(entity_count) FROM grid") == scalar(conn, "SELECT count(*) FROM entity")


def test_every_grid_has_a_worker(conn: Connection) -> None:
    assert (
        scalar(conn, "SELECT count(*) FROM grid g WHERE NOT EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = g.code)")
        == 0
    )


def test_locate_agrees_with_postgis_st_covers(conn: Connection) -> None:
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM grid ORDER BY code")).all()
    codes = [r[0] for r in rows]
    locator = GridLocator.build(codes, [shapely.from_wkb(bytes(r[1])) for r in rows])
    # Address points, points on grid vertices (shared boundaries) and random points over the city box.
    rng = np.random.default_rng(3)
    addr = np.array(conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM address ORDER BY random() LIMIT 3000")).all())
    vertices = np.array(
        conn.execute(
            text(
                "SELECT ST_X(p.geom), ST_Y(p.geom) FROM (SELECT (ST_DumpPoints(geom)).geom FROM grid) p "
                "ORDER BY random() LIMIT 2000"
            )
        ).all()
    )
    xmin, ymin, xmax, ymax = conn.execute(
        text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM town) s")
    ).one()
    box = np.column_stack([rng.uniform(xmin, xmax, 3000), rng.uniform(ymin, ymax, 3000)])
    pts = np.vstack([addr, vertices, box])
    ours = locator.locate_codes(pts[:, 0], pts[:, 1])
    conn.execute(text("CREATE TEMP TABLE probe (i int, lon float8, lat float8)"))
    conn.execute(
        text("INSERT INTO probe SELECT * FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[]))"),
        {"i": list(range(len(pts))), "x": pts[:, 0].tolist(), "y": pts[:, 1].tolist()},
    )
    # PostGIS: every covering grid; on a shared boundary several cover the point and the lowest code wins.
    theirs = dict(
        conn.execute(
            text(
                "SELECT p.i, min(g.code) FROM probe p LEFT JOIN grid g "
                "ON ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)) GROUP BY p.i"
            )
        ).all()
    )
    conn.execute(text("DROP TABLE probe"))
    disagreements = [i for i in range(len(pts)) if ours[i] != theirs[i]]
    assert disagreements == []
    assert sum(c is None for c in ours) > 0  # the box reaches the sea and 深圳/惠州: no grid there
