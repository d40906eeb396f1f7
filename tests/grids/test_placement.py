"""A dispatcher sees which grid a point falls in, and whether it sits close enough to an edge to confirm by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids.placement import GridPlacement, PlacementCache

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def placement(db: DatabaseSettings) -> GridPlacement:
    engine = make_engine(db)
    with engine.connect() as conn:
        loaded = GridPlacement.load(conn)
    engine.dispose()
    return loaded


def test_points_get_grid_community_town_and_a_boundary_distance_like_postgis(
    db: DatabaseSettings, placement: GridPlacement
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(a.geom), ST_Y(a.geom), a.grid_code, g.community_code, g.town_code, "
                "ST_Distance(ST_Transform(a.geom, 4547), ST_Boundary(ST_Transform(g.geom, 4547))) "
                "FROM address a JOIN grid g ON g.code = a.grid_code ORDER BY a.id LIMIT 2000"
            )
        ).all()
    engine.dispose()
    lon = np.array([r[0] for r in rows])
    lat = np.array([r[1] for r in rows])
    placed = placement.place(lon, lat)
    assert list(placed.grid_code) == [r[2] for r in rows]
    assert list(placed.community_code) == [r[3] for r in rows]
    assert list(placed.town_code) == [r[4] for r in rows]
    np.testing.assert_allclose(placed.boundary_distance_m, [r[5] for r in rows], atol=0.05)
    assert np.array_equal(placed.near_boundary, placed.boundary_distance_m < 30)


def test_a_point_on_a_grid_edge_is_near_the_boundary_and_one_outside_the_city_has_no_grid(
    db: DatabaseSettings, placement: GridPlacement
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointN(ST_ExteriorRing((ST_Dump(geom)).geom), 2) p "
                "FROM grid ORDER BY code LIMIT 1) s"
            )
        ).one()
    engine.dispose()
    placed = placement.place([lon, 112.0], [lat, 22.0])
    assert placed.grid_code[0] is not None and placed.near_boundary[0]
    assert placed.boundary_distance_m[0] < 0.01
    assert placed.grid_code[1] is None and placed.town_code[1] is None and not placed.near_boundary[1]
    # The distance that counts as "near" is configurable per call.
    assert not placement.place([lon], [lat], near_boundary_m=0.0).near_boundary[0]


def test_the_placement_cache_reloads_only_when_the_active_version_changes(db: DatabaseSettings) -> None:
    cache = PlacementCache()
    engine = make_engine(db)
    with engine.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first, "an unchanged version is answered from memory"
        conn.execute(text("UPDATE grid SET area_m2 = area_m2 + 1 WHERE code = (SELECT min(code) FROM grid)"))
        redrawn = cache.get(conn)
        assert redrawn is not first and redrawn.version_id == first.version_id
        conn.rollback()  # the redraw never happened
        assert cache.get(conn) is not redrawn, "back to the first fingerprint: loaded again"
    engine.dispose()
