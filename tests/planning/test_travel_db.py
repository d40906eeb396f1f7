"""Travel times on the city's roads: a team drives along the roads (never faster than straight across), the matrix and
the path drawn on the map agree, islands of streets are joined, and the network is built once per data state."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, text

from gis.crs import lonlat_to_metric, to_metric
from planning.routing.travel import SPEED_KMH, RoadNetwork, StraightLine, haversine_m

pytestmark = pytest.mark.db

LON, LAT = 113.75, 23.02


def metric_line(*lonlats: tuple[float, float]) -> shapely.LineString:
    """A line through (lon, lat) points, in the metric CRS the network is built in."""
    return to_metric(shapely.LineString(lonlats))


def test_two_crossing_roads_become_one_network_at_their_crossing() -> None:
    # An avenue east–west and a lane north–south cross without a shared vertex.
    avenue = metric_line((LON - 0.02, LAT), (LON + 0.02, LAT))
    lane = metric_line((LON, LAT - 0.02), (LON, LAT + 0.02))
    network = RoadNetwork([avenue, lane], ["大道", "巷"])
    west, north = (LON - 0.01, LAT), (LON, LAT + 0.01)
    seconds, metres = network.durations([west, north])
    x, y = lonlat_to_metric([LON - 0.01, LON, LON], [LAT, LAT, LAT + 0.01])
    along_avenue = float(np.hypot(x[1] - x[0], y[1] - y[0]))
    along_lane = float(np.hypot(x[2] - x[1], y[2] - y[1]))
    expected = along_avenue / (SPEED_KMH["大道"] / 3.6) + along_lane / (SPEED_KMH["巷"] / 3.6)
    assert seconds[0, 1] == pytest.approx(expected, abs=2)
    assert metres[0, 1] == pytest.approx(along_avenue + along_lane, abs=2)
    assert seconds[1, 0] == seconds[0, 1]
    assert network.connector_count == 0


def test_streets_that_touch_nothing_are_joined_to_the_rest() -> None:
    main = metric_line((LON - 0.02, LAT), (LON + 0.02, LAT))
    island = metric_line((LON - 0.01, LAT + 0.003), (LON + 0.01, LAT + 0.003))  # 330 m north, parallel
    network = RoadNetwork([main, island], ["路", "街"])
    matrix = network.matrix([(LON, LAT), (LON, LAT + 0.003)])
    assert network.connector_count == 1
    assert matrix.fallback_pairs == 0
    assert 0 < matrix.durations_s[0, 1] < 3600


def test_the_straight_line_model_is_haversine_times_a_detour_at_an_average_speed() -> None:
    points = [(LON, LAT), (LON + 0.01, LAT)]
    seconds, metres = StraightLine(detour=1.0, speed_kmh=36.0).durations(points)
    assert metres[0, 1] == pytest.approx(haversine_m(points)[0, 1], abs=1)
    assert seconds[0, 1] == pytest.approx(metres[0, 1] / 10, abs=1)


def test_road_times_in_a_town_are_complete_and_never_beat_the_crow(engine: Engine) -> None:
    with engine.connect() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        points = [
            (float(r[0]), float(r[1]))
            for r in conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE town_code = :t AND geom IS NOT NULL"
                    " ORDER BY uscc LIMIT 30"
                ),
                {"t": town},
            )
        ]
        network = RoadNetwork.load(conn, [town])
    matrix = network.matrix(points)
    seconds, metres = matrix.durations_s, matrix.distances_m
    assert matrix.fallback_pairs == 0
    assert (np.diag(seconds) == 0).all() and (np.diag(metres) == 0).all()
    np.testing.assert_array_equal(seconds, seconds.T)  # two-way roads
    crow = haversine_m(points)
    off = ~np.eye(len(points), dtype=bool)
    assert (metres[off] >= crow[off] * 0.99 - 1).all()
    fastest = SPEED_KMH["大道"] / 3.6
    assert (seconds[off] >= crow[off] / fastest - 1).all()
    straight, _ = StraightLine().durations(points)
    ratio = float(np.mean(seconds[off] / np.maximum(straight[off], 1)))
    assert 0.7 < ratio < 3.0


def test_the_path_drawn_on_the_map_is_as_long_as_the_matrix_says(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT town_code, ST_X(geom), ST_Y(geom) FROM entity WHERE geom IS NOT NULL AND town_code ="
                " (SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1)"
                " ORDER BY uscc LIMIT 4"
            )
        ).all()
        network = RoadNetwork.load(conn, [rows[0][0]])
    points = [(float(r[1]), float(r[2])) for r in rows]
    _, metres = network.durations(points)
    legs = network.paths(points)
    assert len(legs) == len(points) - 1
    for k, leg in enumerate(legs):
        assert leg[0] == pytest.approx(points[k], abs=1e-6)
        assert leg[-1] == pytest.approx(points[k + 1], abs=1e-6)
        drawn = to_metric(shapely.LineString(leg)).length
        assert drawn == pytest.approx(metres[k, k + 1], rel=0.01, abs=5)


def test_the_network_is_built_once_until_the_roads_change(engine: Engine) -> None:
    with engine.begin() as conn:
        town = conn.execute(text("SELECT town_code FROM road ORDER BY id LIMIT 1")).scalar_one()
        first = RoadNetwork.load(conn, [town])
        assert RoadNetwork.load(conn, [town]) is first
        conn.execute(
            text(
                "INSERT INTO road (id, town_code, name, kind, geom)"
                " SELECT max(id) + 1, :t, '测试新路', '路', ST_GeomFromText('MULTILINESTRING((113.75 23.02, 113.76 23.02))', 4326)"
                " FROM road"
            ),
            {"t": town},
        )
        assert RoadNetwork.load(conn, [town]) is not first


def test_a_teams_matrix_and_its_days_map_lines_come_from_one_road_search(engine: Engine) -> None:
    """A plan's solve searched the roads once for a team's matrix and again for each of its days' map lines (2.5 s
    and 2.4 s of a busy town's 13 s): now one search per team serves both, with the very same times and lines."""
    with engine.connect() as conn:
        town = conn.execute(
            text("SELECT town_code FROM road GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1")
        ).scalar_one()
        points = [
            (float(r[0]), float(r[1]))
            for r in conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE town_code = :t AND geom IS NOT NULL"
                    " ORDER BY md5(uscc) LIMIT 12"
                ),
                {"t": town},
            )
        ]
        network = RoadNetwork.load(conn, [town])
    searched = network.search(points)
    alone, shared = network.matrix(points), network.matrix(points, searched)
    assert (alone.durations_s == shared.durations_s).all() and (alone.distances_m == shared.distances_m).all()
    day = [points[0], points[5], points[3], points[9], points[0]]  # one day of the team: office, stops, office
    assert network.paths(day, searched) == network.paths(day)
    # A point the search did not start from is searched for on its own, not mistaken for a searched one.
    elsewhere = (points[0][0] + 0.003, points[0][1] + 0.002)
    assert network.paths([points[0], elsewhere], searched) == network.paths([points[0], elsewhere])
