"""Loading the demo city twice does nothing the second time, and a load that breaks midway leaves the old city whole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Table, text
from typer.testing import CliRunner

import synthetic.loader
from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.settings import DatabaseSettings
from synthetic import models as truth
from synthetic.loader import load_demo

pytestmark = pytest.mark.db

TEMPLATE_SCALE = "test"
TEMPLATE_SEED = 7  # what conftest's template_city was loaded with
TABLES = (
    "town",
    "town_repair",
    "community",
    "grid_version",
    "grid",
    "worker",
    "road",
    "address",
    "entity",
    "entity_licence",
    "clue",
    "synthetic.entity_truth",
    "synthetic.hotspot",
    "synthetic.demo_load",
)


@pytest.fixture(scope="module")
def city(pg_cluster: LocalCluster, template_city: str) -> Iterator[DatabaseSettings]:
    """A clone of the template city that these tests may try to reload."""
    name = f"demo_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    yield DatabaseSettings(database_url=pg_cluster.url(name))
    pg_cluster.drop_database(name)


def fingerprint(settings: DatabaseSettings) -> dict[str, tuple[int, str | None]]:
    """Row count and content checksum of every table the demo load writes."""
    engine = make_engine(settings)
    out: dict[str, tuple[int, str | None]] = {}
    with engine.connect() as conn:
        for table in TABLES:
            count, digest = conn.execute(
                # Table names come from the fixed tuple above, never from input.
                text(f"SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) FROM {table} t")  # noqa: S608
            ).one()
            out[table] = (int(count), digest)
    engine.dispose()
    return out


def test_loading_the_same_city_again_has_nothing_to_do(city: DatabaseSettings) -> None:
    before = fingerprint(city)
    assert before["synthetic.demo_load"][0] == 1 and before["grid"][0] > 2_000

    message = load_demo(city, scale=TEMPLATE_SCALE, seed=TEMPLATE_SEED, force=False, progress=False)

    assert message.startswith(f"demo city already loaded ({TEMPLATE_SCALE}, seed {TEMPLATE_SEED}, ")
    assert message.endswith("nothing to do")
    assert fingerprint(city) == before


def test_the_cli_says_so_too(city: DatabaseSettings) -> None:
    before = fingerprint(city)

    result = CliRunner().invoke(
        app,
        ["demo", "load", "--scale", TEMPLATE_SCALE, "--seed", str(TEMPLATE_SEED)],
        env={"GRIDGOV_DATABASE_URL": city.database_url},
    )

    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.stdout
    assert fingerprint(city) == before


def test_the_cli_refuses_an_unknown_scale(city: DatabaseSettings) -> None:
    result = CliRunner().invoke(
        app, ["demo", "load", "--scale", "huge"], env={"GRIDGOV_DATABASE_URL": city.database_url}
    )

    assert result.exit_code == 2
    assert "unknown scale 'huge'" in result.stderr
    assert "test" in result.stderr and "demo" in result.stderr and "full" in result.stderr


class PlannedFailure(RuntimeError):
    """Stands for a crash (disk full, killed COPY) late in the write transaction."""


def test_a_load_that_fails_in_the_last_write_leaves_the_previous_city_whole(
    city: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fingerprint(city)
    real_copy_frame = synthetic.loader.copy_frame
    written: list[str] = []

    def copy_then_fail_at_hotspots(conn: Any, table: Table, frame: Any) -> Any:
        # By the hotspots every other table has been truncated and rewritten in this transaction.
        if table is truth.hotspot:
            raise PlannedFailure("disk full while writing hotspots")
        written.append(table.fullname)
        return real_copy_frame(conn, table, frame)

    monkeypatch.setattr(synthetic.loader, "copy_frame", copy_then_fail_at_hotspots)

    # A forced rebuild with another seed, so the data it would write differs from the city in place.
    with pytest.raises(PlannedFailure):
        load_demo(city, scale=TEMPLATE_SCALE, seed=TEMPLATE_SEED + 1, force=True, progress=False)

    assert {"address", "entity", "clue"} <= set(written), "the failure should come after the big tables were written"
    assert fingerprint(city) == before
    # And the old city still counts as loaded: a plain reload has nothing to do.
    assert load_demo(city, scale=TEMPLATE_SCALE, seed=TEMPLATE_SEED, progress=False).endswith("nothing to do")
