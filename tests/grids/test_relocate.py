"""Points re-located into the grids of a version land in the same grid on a Dask cluster as on one machine,
including points on shared edges and corners, outside every grid, without coordinates, or filed under another town."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from sqlalchemy import Engine, text

from grids.relocate import GridSet, candidate_grids, locate_points, town_partitions

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def client(dask_scheduler: str) -> Iterator[object]:
    """A client of the session's 2-worker process cluster."""
    from gis.distributed import connect

    with connect(dask_scheduler, min_workers=2) as connected:
        yield connected


@pytest.fixture(scope="module")
def city_grids(engine: Engine) -> gpd.GeoDataFrame:
    """The test city's active grids (code, town_code, geometry)."""
    with engine.connect() as conn:
        return gpd.read_postgis(
            text(
                "SELECT g.code, g.town_code, g.geom FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "WHERE v.status = 'active' ORDER BY g.code"
            ),
            conn,
            geom_col="geom",
        )


@pytest.fixture(scope="module")
def hard_points(engine: Engine, city_grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Every address of the test city, plus grid corners, edge midpoints, far-away and NaN points, some filed under
    the wrong town or under none."""
    with engine.connect() as conn:
        addresses = pd.read_sql(
            text("SELECT id::text AS id, town_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM address ORDER BY id"),
            conn,
        )
    rng = np.random.default_rng(18)
    rings = shapely.get_exterior_ring(shapely.get_parts(city_grids.geometry.to_numpy()))
    corners = shapely.get_coordinates(rings)
    segments = np.stack([corners[:-1], corners[1:]], axis=1)
    midpoints = segments.mean(axis=1)
    picked = np.concatenate([corners[rng.choice(len(corners), 1500)], midpoints[rng.choice(len(midpoints), 1500)]])
    towns = sorted(city_grids.town_code.unique())
    town_of_grid = dict(zip(city_grids.code, city_grids.town_code, strict=True))
    edge_points = pd.DataFrame(
        {
            "id": [f"edge-{i}" for i in range(len(picked))],
            # Half of them filed under a town chosen at random, whether it holds them or not.
            "town_code": [towns[int(rng.integers(len(towns)))] if i % 2 else None for i in range(len(picked))],
            "lon": picked[:, 0],
            "lat": picked[:, 1],
        }
    )
    odd = pd.DataFrame(
        {
            "id": ["far", "nan-lon", "nan-both", "inf", "blank-town", "unknown-town"],
            "town_code": [towns[0], towns[0], None, towns[-1], "  ", "999999999999"],
            "lon": [0.0, np.nan, np.nan, np.inf, 113.75, 113.75],
            "lat": [0.0, 23.0, np.nan, 23.0, 23.02, 23.02],
        }
    )
    shuffled = addresses.sample(frac=1.0, random_state=7).reset_index(drop=True)
    # A tenth of the addresses are filed under another town than their own.
    wrong = shuffled.index % 10 == 3
    shuffled.loc[wrong, "town_code"] = [towns[(towns.index(t) + 1) % len(towns)] for t in shuffled.town_code[wrong]]
    assert town_of_grid  # the city has grids to test against
    return pd.concat([shuffled, edge_points, odd], ignore_index=True)


def test_the_cluster_puts_every_point_in_the_same_grid_as_one_machine(
    client: object, city_grids: gpd.GeoDataFrame, hard_points: pd.DataFrame
) -> None:
    grids = GridSet.of(city_grids.code.tolist(), city_grids.geometry.tolist(), key="test-active")
    alone = locate_points(hard_points, grids)
    together = locate_points(hard_points, grids, client=client)  # type: ignore[arg-type]
    assert alone.tolist() == together.tolist()
    # The hard cases are really there: corners shared by several grids, and points no grid covers.
    assert sum(code is None for code in alone) >= 4
    assert len(set(alone.tolist()) - {None}) == len(city_grids)


def test_the_cluster_agrees_with_postgis_on_shared_corners(
    client: object, engine: Engine, city_grids: gpd.GeoDataFrame, hard_points: pd.DataFrame
) -> None:
    corners = hard_points[hard_points.id.str.startswith("edge-")].head(400).reset_index(drop=True)
    grids = GridSet.of(city_grids.code.tolist(), city_grids.geometry.tolist(), key="test-active")
    together = locate_points(corners, grids, client=client)  # type: ignore[arg-type]
    with engine.connect() as conn:
        expected = [
            conn.execute(
                text(
                    "SELECT min(g.code) FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                    "WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
                ),
                {"lon": lon, "lat": lat},
            ).scalar_one()
            for lon, lat in zip(corners.lon, corners.lat, strict=True)
        ]
    assert together.tolist() == expected


def test_a_second_job_of_the_same_version_gives_the_same_answer_from_the_workers_locators(
    client: object, city_grids: gpd.GeoDataFrame, hard_points: pd.DataFrame
) -> None:
    grids = GridSet.of(city_grids.code.tolist(), city_grids.geometry.tolist())
    first = locate_points(hard_points, grids, client=client)  # type: ignore[arg-type]
    second = locate_points(hard_points, grids, client=client)  # type: ignore[arg-type]
    assert first.tolist() == second.tolist()


def test_points_without_a_town_or_with_a_blank_one_share_one_partition() -> None:
    parts = town_partitions(["441900001000", None, " ", "441900001000", float("nan"), "441900002000"])
    assert {town: at.tolist() for town, at in parts.items()} == {
        "": [1, 2, 4],
        "441900001000": [0, 3],
        "441900002000": [5],
    }


coordinate = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn) -> shapely.Geometry:
    """A small box, sometimes degenerate to a line (still covering the points on it)."""
    x0, y0 = draw(coordinate), draw(coordinate)
    w = draw(st.floats(min_value=0.0, max_value=5.0))
    h = draw(st.floats(min_value=1e-9, max_value=5.0))
    return box(x0, y0, x0 + w, y0 + h)


@settings(max_examples=200, deadline=None)
@given(
    grids=st.lists(boxes(), min_size=1, max_size=12),
    points=st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=20),
    on_boundary=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 100)), max_size=10),
)
def test_every_grid_covering_a_point_of_a_partition_is_a_candidate(
    grids: list[shapely.Geometry], points: list[tuple[float, float]], on_boundary: list[tuple[int, int]]
) -> None:
    coords = list(points)
    for grid_at, vertex_at in on_boundary:  # points exactly on grid corners and edges
        ring = shapely.get_coordinates(grids[grid_at % len(grids)].exterior)
        coords.append(tuple(ring[vertex_at % len(ring)]))
    lon = np.array([c[0] for c in coords])
    lat = np.array([c[1] for c in coords])
    selected = set(candidate_grids(shapely.bounds(np.array(grids, dtype=object)), lon, lat).tolist())
    for x, y in coords:
        covering = {i for i, g in enumerate(grids) if g.covers(shapely.Point(x, y))}
        assert covering <= selected


def test_points_without_coordinates_select_no_grid() -> None:
    bounds = shapely.bounds(np.array([box(0, 0, 1, 1)], dtype=object))
    assert candidate_grids(bounds, np.array([np.nan]), np.array([0.5])).tolist() == []


def test_a_worker_killed_mid_job_changes_nothing_in_the_answer(
    city_grids: gpd.GeoDataFrame, hard_points: pd.DataFrame
) -> None:
    import logging
    import os
    import signal
    import threading

    from distributed import LocalCluster as DaskCluster

    from gis.distributed import connect

    grids = GridSet.of(city_grids.code.tolist(), city_grids.geometry.tolist(), key="test-killed")
    alone = locate_points(hard_points, grids)
    with (
        DaskCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        connect(cluster.scheduler_address, min_workers=2) as own,
    ):
        victim = sorted(own.run(os.getpid).values())[0]
        answer: dict[str, object] = {}
        job = threading.Thread(target=lambda: answer.update(codes=locate_points(hard_points, grids, client=own)))
        job.start()
        # Kill one worker as soon as the cluster has work in hand (or the job is already done).
        while job.is_alive() and not any(own.processing().values()):
            job.join(0.01)
        os.kill(victim, signal.SIGKILL)
        job.join()
    together = answer["codes"]
    assert isinstance(together, np.ndarray)
    assert together.tolist() == alone.tolist()
