"""The command centre computes the hotspots of every town at once: on a Dask cluster the classes, z and p values
are the very ones the heatmap page shows town by town, and `gridgov hotspots` writes the same file either way."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.settings import DatabaseSettings
from maps.heat.cluster import hotspots_by_town, load_town_inputs
from maps.heat.heatmap import hotspot_collection
from supervision.calendar import SHANGHAI

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def client(dask_scheduler: str) -> Iterator[Any]:
    """A client of the session's 2-worker process cluster."""
    from gis.distributed import connect

    with connect(dask_scheduler, min_workers=2) as connected:
        yield connected


@pytest.fixture(scope="module")
def window(engine: Engine) -> tuple[datetime, datetime]:
    """Eight weeks of the test city's clues, ending on the day of the last one (enough for emerging categories)."""
    with engine.connect() as conn:
        last = conn.execute(text("SELECT max(reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM clue")).scalar_one()
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
    return until - timedelta(days=56), until


@pytest.fixture(scope="module")
def last_day(window: tuple[datetime, datetime]) -> str:
    """The window's last day as `--until` takes it: the commands' window never depends on today's date."""
    return (window[1] - timedelta(days=1)).date().isoformat()


@pytest.fixture(scope="module")
def towns(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(c) for c in conn.execute(text("SELECT code FROM town ORDER BY code")).scalars()]


@pytest.mark.parametrize(("unit", "method", "per"), [("grid", "gi_star", "residents"), ("h3:9", "rate", "entities")])
def test_every_town_on_the_cluster_gets_the_hotspots_its_heatmap_page_shows(
    client: Any, engine: Engine, towns: list[str], window: tuple[datetime, datetime], unit: str, method: str, per: str
) -> None:
    since, until = window
    options: dict[str, Any] = {"since": since, "until": until, "unit": unit, "method": method, "per": per}
    with engine.connect() as conn:
        inputs = load_town_inputs(conn, towns, kind="clue", **options)
        page = {town: hotspot_collection(conn, town=town, kind="clue", **options) for town in towns}
    alone = hotspots_by_town(inputs)
    together = hotspots_by_town(inputs, client=client)
    assert list(together) == towns
    for town in towns:
        assert together[town].model_dump(mode="json") == page[town].model_dump(mode="json")
        assert alone[town].model_dump(mode="json") == page[town].model_dump(mode="json")
    classes = [f.properties.class_ for spots in together.values() for f in spots.features]
    assert any(c != "not_significant" for c in classes), "the test city should have hotspots to compare"


def run_cli(settings: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this database, as a user would from a shell."""
    return CliRunner().invoke(
        app, list(args), env={"GRIDGOV_DATABASE_URL": settings.database_url, "GRIDGOV_DASK_SCHEDULER": ""}
    )


@pytest.mark.parametrize("suffix", [".csv", ".geojson"])
def test_the_command_writes_the_same_file_with_and_without_the_cluster(
    db: DatabaseSettings, dask_scheduler: str, tmp_path: Path, suffix: str, last_day: str
) -> None:
    alone, together = tmp_path / f"alone{suffix}", tmp_path / f"together{suffix}"
    common = ["hotspots", "--towns", "all", "--days", "90", "--until", last_day]
    first = run_cli(db, *common, "--out", str(alone))
    second = run_cli(db, *common, "--out", str(together), "--scheduler", dask_scheduler)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert alone.read_bytes() == together.read_bytes()
    written = alone.read_text(encoding="utf-8-sig")
    if suffix == ".csv":
        assert written.splitlines()[0] == "town,code,count,rate,z,p,class,emerging"
        assert len(written.splitlines()) > 10
    else:
        assert '"type": "FeatureCollection"' in written and '"town": "' in written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alone.name, together.name])
    # Hotspots name places and cases: the files are their owner's only, as the geocoder's are.
    assert os.stat(alone).st_mode & 0o777 == 0o600
    assert os.stat(together).st_mode & 0o777 == 0o600


def test_the_window_ends_on_the_day_until_names(
    db: DatabaseSettings, engine: Engine, towns: list[str], window: tuple[datetime, datetime], last_day: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    from maps.heat.cluster import towns_csv

    out = tmp_path / "spots.csv"
    result = run_cli(db, "hotspots", "--towns", "all", "--days", "56", "--until", last_day, "--out", str(out))
    assert result.exit_code == 0, result.output
    since, until = window
    with engine.connect() as conn:
        inputs = load_town_inputs(conn, towns, since=since, until=until, unit="grid", method="gi_star", kind="clue",
                                  per="residents")  # fmt: skip
    assert out.read_bytes().decode("utf-8") == towns_csv(hotspots_by_town(inputs))


def test_a_bad_until_day_is_refused(db: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "spots.csv"
    for day in ("2026-13-01", "1900-01-01"):
        result = run_cli(db, "hotspots", "--towns", "all", "--until", day, "--out", str(out))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert not out.exists()


def test_an_unreachable_scheduler_exits_2_and_writes_no_file(db: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "spots.csv"
    result = run_cli(db, "hotspots", "--towns", "all", "--out", str(out), "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--towns", "441900999999"], "unknown towns: 441900999999"),
        (["--towns", "all", "--method", "kde"], "--method must be one of gi_star, rate"),
        (["--towns", "all", "--unit", "h3:12"], "--unit must be one of"),
    ],
)
def test_bad_options_are_refused_without_output(
    db: DatabaseSettings, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "spots.geojson"
    result = run_cli(db, "hotspots", *args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_an_output_that_is_neither_csv_nor_geojson_is_refused(db: DatabaseSettings, tmp_path: Path) -> None:
    result = run_cli(db, "hotspots", "--towns", "all", "--out", str(tmp_path / "spots.xlsx"))
    assert result.exit_code == 2
    assert "--out must end in .csv or .geojson" in result.output


def test_without_a_scheduler_dask_is_never_imported(db: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "spots.csv"
    program = (
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "sys.modules['distributed'] = None\n"
        "from api.cli import app\n"
        f"app(['hotspots', '--towns', 'all', '--days', '90', '--until', '2026-01-31', '--out', {str(out)!r}])\n"
    )
    environment = {**os.environ, "GRIDGOV_DATABASE_URL": db.database_url}
    environment.pop("GRIDGOV_DASK_SCHEDULER", None)
    done = subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "written to" in done.stdout
    assert out.exists()
