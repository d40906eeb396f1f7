"""A territory officer imports boundary files with `gridgov grids import`: all features load, or none and a report says why."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon
from sqlalchemy import Connection, text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids.codes import community_of, grid_code, grid_number

pytestmark = [
    pytest.mark.db,
    pytest.mark.filterwarnings("ignore:Column names longer than 10 characters:UserWarning"),
    pytest.mark.filterwarnings("ignore:Normalized/laundered field name:RuntimeWarning"),
]

METRIC_EPSG = 4547
DRIVER_BY_SUFFIX = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}
# What a user can see of the territory; an import that is refused must leave all of it as it was.
SNAPSHOT_SQL = {
    "town": "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.code)) FROM town t",
    "community": "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.code)) FROM community t",
    "grid_version": "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.id)) FROM grid_version t",
    "grid": "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.version_id, t.code)) FROM grid t",
}


def _clone_template(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A database of our own, cloned from the template city, dropped afterwards."""
    name = f"imp_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    yield DatabaseSettings(database_url=pg_cluster.url(name))
    pg_cluster.drop_database(name)


@pytest.fixture
def fresh_city(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A clone of the template city for a test that changes data."""
    yield from _clone_template(pg_cluster, template_city)


@pytest.fixture(scope="module")
def guarded_city(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A clone shared by the refused imports (each test checks that nothing changed)."""
    yield from _clone_template(pg_cluster, template_city)


def run_cli(settings: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this database, as a user would from a shell."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": settings.database_url})


def snapshot(settings: DatabaseSettings) -> dict[str, tuple[int, str | None]]:
    """Row count and content checksum of each territory table."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        out = {table: tuple(conn.execute(text(query)).one()) for table, query in SNAPSHOT_SQL.items()}
    engine.dispose()
    return out


def busiest_community(conn: Connection) -> str:
    """The community with the most grids in the active version (ties broken by code, so runs repeat)."""
    return str(
        conn.execute(
            text(
                "SELECT g.community_code FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "WHERE v.status = 'active' GROUP BY g.community_code ORDER BY count(*) DESC, g.community_code LIMIT 1"
            )
        ).scalar_one()
    )


def active_grids(settings: DatabaseSettings, community_code: str | None = None) -> gpd.GeoDataFrame:
    """The active version's grids (code, community_code, name, area_m2, geometry in WGS84)."""
    query = (
        "SELECT g.code, g.community_code, g.name, g.area_m2, g.geom FROM grid g "
        "JOIN grid_version v ON v.id = g.version_id WHERE v.status = 'active'"
    )
    params: dict[str, str] = {}
    if community_code is not None:
        query += " AND g.community_code = :community"
        params["community"] = community_code
    engine = make_engine(settings)
    with engine.connect() as conn:
        frame = gpd.read_postgis(text(query + " ORDER BY g.code"), conn, geom_col="geom", params=params)
    engine.dispose()
    return frame.rename_geometry("geometry")


def community_grids(settings: DatabaseSettings) -> gpd.GeoDataFrame:
    """The grids of the busiest community, as an import file would carry them."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        community = busiest_community(conn)
    engine.dispose()
    grids = active_grids(settings, community)
    assert len(grids) >= 3, "the test city should cut its busiest community into several grids"
    return grids[["code", "community_code", "name", "geometry"]].reset_index(drop=True)


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write the features in the format the suffix names."""
    frame.to_file(path, driver=DRIVER_BY_SUFFIX[path.suffix])
    return path


def next_code(codes: list[str]) -> str:
    """The next free grid code of a community: its code plus the next three-digit sequence."""
    top = max(codes)
    return grid_code(community_of(top), grid_number(top) + 1)


def assert_refused(
    result: Result, before: dict[str, tuple[int, str | None]], after: dict[str, tuple[int, str | None]]
) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert after == before, "a refused import must leave the territory exactly as it was"


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_a_valid_grid_file_for_one_community_updates_the_active_version_in_place(
    fresh_city: DatabaseSettings, tmp_path: Path, suffix: str
) -> None:
    grids = community_grids(fresh_city)
    before = snapshot(fresh_city)
    community = grids.loc[0, "community_code"]
    # The officer renames every grid, pulls the largest one in by 20 m and makes the freed ring a new grid.
    metric = grids.to_crs(METRIC_EPSG)
    largest = int(metric.geometry.area.idxmax())
    shrunk_m = metric.geometry[largest].buffer(-20)
    ring_m = metric.geometry[largest].difference(shrunk_m)
    edited = grids.copy()
    edited["name"] = [f"{name}(调整)" for name in grids["name"]]
    edited.loc[largest, "geometry"] = gpd.GeoSeries([shrunk_m], crs=METRIC_EPSG).to_crs(4326).iloc[0]
    new_code = next_code(list(grids["code"]))
    ring = gpd.GeoSeries([ring_m], crs=METRIC_EPSG).to_crs(4326).iloc[0]
    new_row = gpd.GeoDataFrame(
        {"code": [new_code], "community_code": [community], "name": ["新增环形网格"]}, geometry=[ring], crs=4326
    )
    edited = gpd.GeoDataFrame([*edited.to_dict("records"), *new_row.to_dict("records")], geometry="geometry", crs=4326)

    result = run_cli(fresh_city, "grids", "import", str(write(edited, tmp_path / f"grids{suffix}")), "--level", "grid")

    assert result.exit_code == 0, result.output
    assert f"{len(edited)} grid feature(s) loaded" in result.stdout
    after = snapshot(fresh_city)
    # No new version: the file edits the active one, the towns and communities stay as they were.
    assert after["grid_version"] == before["grid_version"]
    assert after["town"] == before["town"] and after["community"] == before["community"]
    assert after["grid"][0] == before["grid"][0] + 1
    loaded = active_grids(fresh_city, community).set_index("code")
    assert list(loaded.index) == sorted(edited["code"])
    assert loaded.loc[new_code, "name"] == "新增环形网格"
    assert all(name.endswith("(调整)") for code, name in loaded["name"].items() if code != new_code)
    largest_code = grids.loc[largest, "code"]
    old_area = metric.geometry[largest].area
    assert loaded.loc[largest_code, "area_m2"] == pytest.approx(shrunk_m.area, rel=1e-6)
    assert loaded.loc[new_code, "area_m2"] == pytest.approx(old_area - shrunk_m.area, rel=1e-4)
    # The edited community is still tiled without overlaps.
    loaded_m = loaded.to_crs(METRIC_EPSG)
    assert loaded_m.geometry.area.sum() == pytest.approx(shapely.union_all(loaded_m.geometry.to_numpy()).area, abs=1.0)
    # Doors and entities follow their grid: every address of the community lies in the grid recorded for it,
    # the new ring holds those of its doors, and the grid counts are the new truth.
    engine = make_engine(fresh_city)
    with engine.connect() as conn:
        misplaced = conn.execute(
            text(
                "SELECT count(*) FROM address a LEFT JOIN grid g ON g.code = a.grid_code "
                "WHERE a.community_code = :c AND (g.code IS NULL OR NOT ST_Covers(g.geom, a.geom))"
            ),
            {"c": community},
        ).scalar_one()
        in_ring, counted, entity_mismatch = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM address WHERE grid_code = :g), "
                "(SELECT address_count FROM grid WHERE code = :g), "
                "(SELECT count(*) FROM entity e JOIN address a ON a.id = e.address_id WHERE e.grid_code <> a.grid_code)"
            ),
            {"g": new_code},
        ).one()
    engine.dispose()
    assert misplaced == 0
    assert in_ring == counted
    assert entity_mismatch == 0
    # Importing the same file again replaces the grids by code instead of adding copies.
    again = run_cli(fresh_city, "grids", "import", str(tmp_path / f"grids{suffix}"))
    assert again.exit_code == 0, again.output
    assert snapshot(fresh_city)["grid"][0] == after["grid"][0]


def test_an_invalid_json_file_is_refused_with_a_clear_message(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": 4419', "utf-8"
    )
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(path), "--level", "grid")

    assert_refused(result, before, snapshot(guarded_city))
    assert "broken.geojson" in result.stderr
    assert "cannot read features" in result.stderr


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_a_truncated_file_is_refused(guarded_city: DatabaseSettings, tmp_path: Path, suffix: str) -> None:
    whole = write(community_grids(guarded_city), tmp_path / f"whole{suffix}")
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(cut))

    assert_refused(result, before, snapshot(guarded_city))
    assert f"cut{suffix}" in result.stderr
    assert "cannot read features" in result.stderr


def test_a_truncated_shapefile_is_refused_feature_by_feature(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    grids = community_grids(guarded_city)
    write(grids, tmp_path / "whole.shp")
    for part in ("shx", "dbf", "prj", "cpg"):
        (tmp_path / f"cut.{part}").write_bytes((tmp_path / f"whole.{part}").read_bytes())
    shp = (tmp_path / "whole.shp").read_bytes()
    (tmp_path / "cut.shp").write_bytes(shp[: len(shp) // 2])
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(tmp_path / "cut.shp"))

    assert_refused(result, before, snapshot(guarded_city))
    # GDAL still reads the records of the .dbf; the features whose shapes were cut off are named one by one.
    assert "cut.shp" in result.stderr and "nothing loaded" in result.stderr
    assert "missing_geometry" in result.stderr or "invalid_geometry" in result.stderr


def test_a_self_intersecting_bow_tie_is_refused_and_nothing_else_loads(
    guarded_city: DatabaseSettings, tmp_path: Path
) -> None:
    grids = community_grids(guarded_city)
    good = grids.iloc[[0]].assign(name="应当不被导入")
    x0, y0, x1, y1 = grids.geometry[1].bounds
    bow_tie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    bad = grids.iloc[[1]].set_geometry([bow_tie])
    frame = gpd.GeoDataFrame([*good.to_dict("records"), *bad.to_dict("records")], geometry="geometry", crs=4326)
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(frame, tmp_path / "bowtie.geojson")))

    assert_refused(result, before, snapshot(guarded_city))
    bad_code = grids.loc[1, "code"]
    assert f"row 1  {bad_code}  invalid_geometry: invalid polygon: Self-intersection" in result.stderr
    assert "1 feature(s) rejected, nothing loaded" in result.stderr
    assert grids.loc[0, "code"] not in result.stderr, "the valid feature is not reported, only held back"


def test_an_unknown_parent_community_is_refused(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    grids = community_grids(guarded_city)
    unknown_parent = "441900999999"
    frame = grids.iloc[[0]].assign(code=f"{unknown_parent}001", community_code=unknown_parent)
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(frame, tmp_path / "orphan.gpkg")))

    assert_refused(result, before, snapshot(guarded_city))
    assert f"row 0  {unknown_parent}001  unknown_parent: parent {unknown_parent} is not known" in result.stderr


def test_a_grid_outside_its_community_is_refused(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    grids = community_grids(guarded_city)
    # The officer's file puts a new grid of this community 5 km to the east, well outside the community.
    moved_m = gpd.GeoSeries([grids.geometry[0]], crs=4326).to_crs(METRIC_EPSG).translate(xoff=5_000)
    code = next_code(list(grids["code"]))
    frame = gpd.GeoDataFrame(
        {"code": [code], "community_code": [grids.loc[0, "community_code"]], "name": ["越界网格"]},
        geometry=moved_m.to_crs(4326).to_numpy(),
        crs=4326,
    )
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(frame, tmp_path / "outside.shp")))

    assert_refused(result, before, snapshot(guarded_city))
    assert f"row 0  {code}  outside_parent:" in result.stderr
    assert f"lies outside parent {grids.loc[0, 'community_code']}" in result.stderr
    # One feature with several problems (it also lands on other communities' grids) is one rejected feature.
    assert "overlaps_existing" in result.stderr
    assert ": 1 feature(s) rejected, nothing loaded" in result.stderr


def test_two_overlapping_grids_in_one_file_are_both_named(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    grids = community_grids(guarded_city)
    first = grids.loc[0, "code"]
    second = next_code(list(grids["code"]))
    # The second feature is a copy of the first under a new code: the two cover the same ground.
    frame = gpd.GeoDataFrame(
        {"code": [first, second], "community_code": [grids.loc[0, "community_code"]] * 2, "name": ["甲", "乙"]},
        geometry=[grids.geometry[0], grids.geometry[0]],
        crs=4326,
    )
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(frame, tmp_path / "overlap.geojson")))

    assert_refused(result, before, snapshot(guarded_city))
    assert f"row 0  {first}  overlaps_sibling: overlaps row 1 ({second})" in result.stderr
    assert f"row 1  {second}  overlaps_sibling: overlaps row 0 ({first})" in result.stderr
    assert "overlaps_sibling 2" in result.stderr


def test_a_community_in_an_unknown_town_is_refused(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    engine = make_engine(guarded_city)
    with engine.connect() as conn:
        community = gpd.read_postgis(
            text("SELECT code, town_code, name, geom FROM community ORDER BY code LIMIT 1"),
            conn,
            geom_col="geom",
        )
    engine.dispose()
    frame = community.rename_geometry("geometry").assign(town_code="441999999000", code="441999999001")
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(frame, tmp_path / "c.geojson")), "--level", "community")

    assert_refused(result, before, snapshot(guarded_city))
    assert "row 0  441999999001  unknown_parent: parent 441999999000 is not known" in result.stderr


def test_an_unknown_level_is_a_usage_error(guarded_city: DatabaseSettings, tmp_path: Path) -> None:
    path = tmp_path / "any.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}), "utf-8")

    result = run_cli(guarded_city, "grids", "import", str(path), "--level", "street")

    assert result.exit_code == 2
    assert "--level must be town, community or grid" in result.stderr


def test_the_repair_report_lists_every_town_with_its_areas(guarded_city: DatabaseSettings) -> None:
    result = run_cli(guarded_city, "grids", "repair-report")

    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert "before km²" in lines[0] and "gap added m²" in lines[0]
    assert len(lines) == 1 + 33
    row = next(line for line in lines if "东坑" in line)
    code, _name, before_km2, after_km2, _gap_m2, _overlap_m2 = row.split()
    assert code.startswith("441900")
    assert 1 < float(before_km2) < 100 and 1 < float(after_km2) < 100
    assert any("茶山" in line for line in lines)


def test_grids_that_would_leave_doors_outside_every_grid_are_refused(
    guarded_city: DatabaseSettings, tmp_path: Path
) -> None:
    grids = community_grids(guarded_city)
    engine = make_engine(guarded_city)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("SELECT grid_code, count(*) FROM address WHERE grid_code = ANY(:codes) GROUP BY grid_code"),
                {"codes": list(grids["code"])},
            ).all()
        )
    engine.dispose()
    busiest = max(counts, key=lambda code: counts[code])
    # The officer redraws the busiest grid at half its size around its centre: its outer doors lose their grid.
    row = grids[grids["code"] == busiest].reset_index(drop=True)
    metric = row.to_crs(METRIC_EPSG)
    centre = metric.geometry[0].representative_point()
    metric.loc[0, "geometry"] = shapely.affinity.scale(metric.geometry[0], 0.5, 0.5, origin=centre).intersection(
        metric.geometry[0]
    )
    before = snapshot(guarded_city)

    result = run_cli(guarded_city, "grids", "import", str(write(metric.to_crs(4326), tmp_path / "half.geojson")))

    assert_refused(result, before, snapshot(guarded_city))
    assert "uncovered_addresses" in result.output
    assert "would lie outside every grid" in result.output
