"""An operator builds and inspects the index store with `gridgov index`; `gridgov serve` starts from the store."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from address_library.index_store import build_store, find_store, open_geocoder, read_manifest
from address_library.live import LiveGeocoder
from api.cli import app
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


def test_index_build_prints_the_store_and_show_lists_its_manifest(db: DatabaseSettings, tmp_path: Path) -> None:
    built = gridgov(db, "index", "build", "--dir", str(tmp_path))
    assert built.exit_code == 0, built.output
    directory = Path(built.output.splitlines()[0])
    manifest = read_manifest(directory)
    assert f"{manifest['rows']:,} addresses" in built.output and "MB on disk" in built.output
    again = gridgov(db, "index", "build", "--dir", str(tmp_path))
    assert again.exit_code == 0 and Path(again.output.splitlines()[0]) == directory
    shown = gridgov(db, "index", "show", "--dir", str(tmp_path))
    assert shown.exit_code == 0, shown.output
    assert f"{manifest['rows']:,}" in shown.output and "city" in shown.output


def test_index_build_of_some_towns_names_them_in_the_manifest(
    db: DatabaseSettings, engine: Engine, tmp_path: Path
) -> None:
    with engine.connect() as conn:
        towns = list(conn.execute(text("SELECT code FROM town ORDER BY code")).scalars())
    built = gridgov(db, "index", "build", "--dir", str(tmp_path), "--towns", towns[0], "--towns", towns[1])
    assert built.exit_code == 0, built.output
    manifest = read_manifest(Path(built.output.splitlines()[0]))
    assert manifest["scope"] == sorted(towns[:2])
    assert set(manifest["towns"]) <= set(towns[:2])


def test_unusable_requests_are_refused_with_exit_code_2(db: DatabaseSettings, tmp_path: Path) -> None:
    unknown = gridgov(db, "index", "build", "--dir", str(tmp_path), "--towns", "441900999000")
    assert unknown.exit_code == 2 and "no such town: 441900999000" in unknown.output
    empty = gridgov(db, "index", "show", "--dir", str(tmp_path / "nothing"))
    assert empty.exit_code == 2 and "no index store" in empty.output
    a_file = tmp_path / "file"
    a_file.write_text("x")
    refused = gridgov(db, "index", "build", "--dir", str(a_file))
    assert refused.exit_code == 2 and "not a folder" in refused.output
    assert "Traceback" not in unknown.output + empty.output + refused.output


def test_two_builds_at_once_leave_one_complete_store(engine: Engine, tmp_path: Path) -> None:
    def build(_: int) -> Path:
        with engine.connect() as conn:
            return build_store(conn, tmp_path, workers=1)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(build, range(2))
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    read_manifest(first)


def test_a_server_starts_from_the_store_a_previous_one_saved(engine: Engine, tmp_path: Path) -> None:
    first = LiveGeocoder(engine, index_root=tmp_path).get()
    (directory,) = [p for p in tmp_path.iterdir() if p.name.startswith("v")]
    written = (directory / "manifest.json").stat().st_mtime_ns
    with engine.connect() as conn:
        door = conn.execute(text("SELECT full_text, id FROM address WHERE level = 'door' ORDER BY id LIMIT 1")).one()
    second = LiveGeocoder(engine, index_root=tmp_path).get()
    assert (directory / "manifest.json").stat().st_mtime_ns == written
    assert second.fingerprint == first.fingerprint
    assert second.geocode(door.full_text).address_id == door.id


def test_a_server_that_rebuilt_after_a_change_saves_the_store_for_its_next_start(
    engine: Engine, tmp_path: Path
) -> None:
    rebuilt = LiveGeocoder(engine, index_root=tmp_path).refresh_now()
    saved = None
    for _ in range(600):  # the save runs in the background after the rebuilt index is in use
        saved = find_store(tmp_path, rebuilt.fingerprint)
        if saved is not None:
            break
        time.sleep(0.1)
    assert saved is not None
    with engine.connect() as conn:
        door = conn.execute(text("SELECT full_text FROM address WHERE level = 'room' ORDER BY id LIMIT 1")).scalar_one()
    assert open_geocoder(saved).geocode(door) == rebuilt.geocode(door)


def test_a_server_whose_store_cannot_be_saved_serves_from_memory(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="address_library.live"):
        geocoder = LiveGeocoder(engine, index_root=blocked / "index").get()
    with engine.connect() as conn:
        text_ = conn.execute(
            text("SELECT full_text FROM address WHERE level = 'door' ORDER BY id LIMIT 1")
        ).scalar_one()
    assert geocoder.geocode(text_).status == "matched"
    assert any("cannot be saved" in record.getMessage() for record in caplog.records)
