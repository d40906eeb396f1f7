"""An analyst geocodes a spreadsheet on a Dask cluster (`gridgov geocode --scheduler`) and gets the very file the
single machine writes: every row, in order, the same answers, byte for byte."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner, Result

from address_library.batch import geocode_csv
from address_library.cluster_geocode import (
    cheap_town,
    geocode_csv_on_cluster,
    pack_towns,
    prepare_cluster,
    register_index,
    release_cluster,
)
from address_library.gazetteer import default_gazetteer
from address_library.index_store import build_store
from address_library.service import Geocoder
from api.cli import app
from gis.database import make_engine
from gis.distributed import ClusterError, connect
from gis.settings import DatabaseSettings

UNPLACEABLE = ("北京市朝阳区建国路88号", "广州市天河区体育西路1号", "火星基地3栋", "上海市浦东新区世纪大道100号")
INVALID = ("", "   ", "长安镇\x00振隆路1号", "长安镇振隆路\x071号", "长安镇振隆路" * 100)


# ---------------------------------------------------------------------------------------------- the cheap town parse

_FORMS = default_gazetteer().town_at_start
_OFFICIAL = sorted(default_gazetteer().town_names.items())


@given(st.text(max_size=60))
def test_the_cheap_town_parse_never_raises_and_names_a_known_town_or_none(typed: str) -> None:
    found = cheap_town(typed)
    assert found is None or found in default_gazetteer().town_names


@given(
    town=st.sampled_from(_OFFICIAL),
    opening=st.sampled_from(["", "东莞市", "广东省东莞市", " 东莞", "中国广东省东莞市 "]),
    rest=st.text(alphabet="振隆路新安大道1234567890号栋室 -", max_size=20),
)
def test_the_town_named_at_the_opening_is_found(town: tuple[str, str], opening: str, rest: str) -> None:
    code, name = town
    typed = opening + name + rest
    # A longer form that the text also opens with (another town's name that begins with this one) wins fairly.
    assume(not any(f.startswith(name) and len(f) > len(name) and (name + rest).startswith(f) for f in _FORMS))
    assert cheap_town(typed) == code


def test_the_cheap_town_parse_leaves_other_cities_and_bare_roads_without_a_town() -> None:
    assert cheap_town("北京市朝阳区建国路88号") is None
    assert cheap_town("振隆路1号") is None


def test_towns_are_packed_largest_first_onto_the_least_loaded_worker() -> None:
    packed = pack_towns({"a": 10, "b": 7, "c": 5, "d": 4, "e": 1}, ["w1", "w2"])
    # a → w1 (10); b → w2 (7); c → w2 (12); d → w1 (14); e → w2 (13)
    assert packed == {"a": "w1", "b": "w2", "c": "w2", "d": "w1", "e": "w2"}
    with pytest.raises(ClusterError, match="no workers"):
        pack_towns({"a": 1}, [])


# ---------------------------------------------------------------------------------------------- the same file


@pytest.fixture(scope="module")
def spreadsheet(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV mixing library addresses, noisy registrations, ambiguous, unplaceable, town-less, cross-boundary and
    invalid rows, with extra columns and notes holding commas, quotes and line breaks."""
    engine = make_engine(db)
    with engine.connect() as conn:
        library = conn.execute(
            text(
                "SELECT full_text, town_code FROM address WHERE level IN ('door', 'building', 'room') "
                "ORDER BY md5(id::text) LIMIT 600"
            )
        ).all()
        noisy = conn.execute(text("SELECT raw_address FROM entity ORDER BY md5(uscc) LIMIT 600")).scalars().all()
    engine.dispose()
    names = default_gazetteer().town_names
    towns = sorted(names)
    addresses: list[str] = []
    for i, (full_text, town_code) in enumerate(library):
        name = names.get(town_code, "")
        at = full_text.find(name) if name else -1
        body = full_text[at + len(name) :] if at >= 0 else full_text
        addresses.append(full_text)
        if i % 3 == 0:
            addresses.append(body)  # no town: the whole index answers
        if i % 5 == 0:
            wrong = names[towns[(towns.index(town_code) + 1) % len(towns)]] if town_code in names else "长安镇"
            addresses.append(wrong + body)  # cross-boundary: the town typed is a neighbour's
        if i % 7 == 0:
            road = re.match(r".*?(?:路|街|道|村)", body)
            addresses.append((name + road.group()) if road else name)  # a road or village alone: coarse, ambiguous
        if i % 11 == 0:
            addresses.append(re.sub(r"\d+[号栋座室]", "", full_text, count=1))  # a number missing
    addresses.extend(noisy)
    for i, odd in enumerate((*UNPLACEABLE, *INVALID)):
        addresses.insert(37 * (i + 1), odd)
    path = tmp_path_factory.mktemp("cluster") / "mixed.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["uscc", "address", "note", "extra"])
        for i, address in enumerate(addresses):
            note = f'第{i}行, "备注"\n第二行' if i % 9 == 0 else ("带\x00零字节" if i == 500 else "")
            writer.writerow([f"r{i:05d}", address, note, "a,b"])
    return path


@pytest.fixture(scope="module")
def single_machine(db: DatabaseSettings, spreadsheet: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The single-machine file: what the cluster must write."""
    engine = make_engine(db)
    with engine.connect() as conn:
        geocoder = Geocoder.load(conn)
    engine.dispose()
    out = tmp_path_factory.mktemp("single") / "out.csv"
    geocode_csv(geocoder, spreadsheet, out, workers=1)
    written = out.read_bytes()
    statuses = {row["status"] for row in csv.DictReader(written.decode("utf-8").splitlines(keepends=True))}
    assert statuses >= {"matched", "ambiguous", "not_found", "invalid"}, statuses
    return written


@pytest.fixture(scope="module")
def index_root(db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index root holding the store of the test city (built once for the module)."""
    root = tmp_path_factory.mktemp("index")
    engine = make_engine(db)
    with engine.connect() as conn:
        build_store(conn, root)
    engine.dispose()
    return root


@pytest.fixture()
def client(dask_scheduler: str) -> Iterator[Any]:
    client = connect(dask_scheduler)
    yield client
    client.close()


def gridgov(db: DatabaseSettings, index_root: Path, *args: str, **env: str) -> Result:
    """Run `gridgov ARGS` against the test database and index root."""
    environment = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_INDEX_DIR": str(index_root), **env}
    return CliRunner().invoke(app, list(args), env=environment)


@pytest.mark.db
def test_the_cluster_writes_the_single_machine_file_byte_for_byte(
    db: DatabaseSettings, spreadsheet: Path, single_machine: bytes, index_root: Path, client: Any, tmp_path: Path
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        index = prepare_cluster(client, conn, index_root)
    engine.dispose()
    # Both workers hold towns, packed by their rows.
    assert set(index.assignment.values()) == set(client.scheduler_info(n_workers=-1)["workers"])
    out = tmp_path / "cluster.csv"
    seen: list[int] = []
    try:
        # Small windows: many windows in flight, many parts per window.
        report = geocode_csv_on_cluster(client, index, spreadsheet, out, window_rows=700, progress=seen.append)
    finally:
        release_cluster(client, index)
    assert out.read_bytes() == single_machine
    assert report.rows == sum(seen) == single_machine.decode("utf-8").count("\nr")
    assert os.stat(out).st_mode & 0o777 == 0o600


@pytest.mark.db
def test_gridgov_geocode_with_a_scheduler_writes_what_it_writes_without(
    db: DatabaseSettings,
    spreadsheet: Path,
    single_machine: bytes,
    index_root: Path,
    dask_scheduler: str,
    tmp_path: Path,
) -> None:
    here, there, by_env = tmp_path / "here.csv", tmp_path / "there.csv", tmp_path / "env.csv"
    result = gridgov(db, index_root, "geocode", str(spreadsheet), "--out", str(here), "--workers", "1")
    assert result.exit_code == 0, result.output
    result = gridgov(db, index_root, "geocode", str(spreadsheet), "--out", str(there), "--scheduler", dask_scheduler)
    assert result.exit_code == 0, result.output
    assert "rows written" in result.output
    result = gridgov(db, index_root, "geocode", str(spreadsheet), "--out", str(by_env),
                     GRIDGOV_DASK_SCHEDULER=dask_scheduler)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert here.read_bytes() == there.read_bytes() == by_env.read_bytes() == single_machine


@pytest.mark.db
def test_an_unreachable_scheduler_is_refused_with_a_message_and_no_file(
    db: DatabaseSettings, spreadsheet: Path, index_root: Path, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out.csv"
    result = gridgov(db, index_root, "geocode", str(spreadsheet), "--out", str(out),
                     "--scheduler", f"tcp://127.0.0.1:{port}")  # fmt: skip
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.db
def test_a_scheduler_without_workers_is_refused_with_a_message_and_no_file(
    db: DatabaseSettings, spreadsheet: Path, index_root: Path, tmp_path: Path
) -> None:
    import logging

    from distributed import LocalCluster

    out = tmp_path / "out.csv"
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        result = gridgov(db, index_root, "geocode", str(spreadsheet), "--out", str(out),
                         "--scheduler", cluster.scheduler_address)  # fmt: skip
    assert result.exit_code == 2
    assert "has no workers" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.db
def test_a_worker_without_the_store_or_with_another_version_is_named(
    db: DatabaseSettings, index_root: Path, client: Any, tmp_path: Path
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        store = build_store(conn, index_root)
    engine.dispose()
    with pytest.raises(ClusterError, match="the address index store cannot be read"):
        register_index(client, tmp_path / "nowhere", (1, "x"), [])
    workers = client.scheduler_info(n_workers=-1)["workers"]
    with pytest.raises(ClusterError, match="cannot use the address index store") as refused:
        register_index(client, store, (1, "another version"), [])
    assert any(f"worker {address} " in str(refused.value) for address in workers)
    # A refused registration leaves no index plugin behind on the workers that had accepted it.
    assert not any(name.startswith("gridgov-index") for names in _plugins(client).values() for name in names)


@pytest.mark.db
def test_a_worker_freezes_only_live_objects_for_the_job_and_thaws_them_after_it(
    db: DatabaseSettings, index_root: Path, client: Any
) -> None:
    import gc

    def leave_cyclic_garbage() -> None:
        import builtins
        import weakref

        class Node(dict[str, object]):  # a dict that can be weakly referenced
            pass

        node = Node()
        node["itself"] = node  # a cycle: only the cyclic collector frees it
        builtins._gridgov_probe = weakref.ref(node)  # type: ignore[attr-defined]

    def garbage_still_there() -> bool:
        import builtins

        return bool(builtins._gridgov_probe() is not None)  # type: ignore[attr-defined]

    client.run(gc.unfreeze)
    client.run(gc.disable)  # the garbage stays until something collects it
    try:
        client.run(leave_cyclic_garbage)
        assert set(client.run(garbage_still_there).values()) == {True}
        engine = make_engine(db)
        with engine.connect() as conn:
            index = prepare_cluster(client, conn, index_root)
            other = prepare_cluster(client, conn, index_root)  # a second job on the same cluster
        engine.dispose()

        def tables_walked(dask_worker: Any, name: str) -> bool:
            tables = dask_worker.plugins[name]._tables
            return any(o is tables or o is tables["anchor_towns"] for o in gc.get_objects())

        try:
            # The index tables are out of the collector's walks while the jobs run...
            for job in (index, other):
                assert set(client.run(tables_walked, name=job.plugin_name).values()) == {False}
            # ...what was garbage when they were frozen was collected, not frozen with them...
            assert set(client.run(garbage_still_there).values()) == {False}
            # ...and one job ending leaves the other's tables frozen.
            release_cluster(client, other)
            assert set(client.run(tables_walked, name=index.plugin_name).values()) == {False}
        finally:
            release_cluster(client, other)
            release_cluster(client, index)
        # After the job, nothing of the long-lived worker stays frozen.
        assert set(client.run(gc.get_freeze_count).values()) == {0}
    finally:
        client.run(gc.enable)


def _plugins(client: Any) -> dict[str, list[str]]:
    return client.run(lambda dask_worker: list(dask_worker.plugins))


@pytest.mark.db
def test_two_jobs_sharing_a_cluster_each_write_the_single_machine_file(
    db: DatabaseSettings, spreadsheet: Path, single_machine: bytes, index_root: Path, client: Any, tmp_path: Path
) -> None:
    import threading

    both_registered = threading.Barrier(2, timeout=120)
    second_done = threading.Event()
    outputs: dict[str, bytes] = {}
    failures: list[BaseException] = []

    def job(name: str) -> None:
        try:
            engine = make_engine(db)
            with engine.connect() as conn:
                index = prepare_cluster(client, conn, index_root)
            engine.dispose()
            both_registered.wait()

            def first_waits_for_second(rows: int) -> None:
                if name == "first":  # the second job finishes and releases its index while this one is mid-way
                    second_done.wait(timeout=120)

            out = tmp_path / f"{name}.csv"
            try:
                geocode_csv_on_cluster(
                    client, index, spreadsheet, out, window_rows=200, progress=first_waits_for_second
                )
            finally:
                release_cluster(client, index)
                if name == "second":
                    second_done.set()
            outputs[name] = out.read_bytes()
        except BaseException as exc:
            failures.append(exc)
            second_done.set()

    threads = [threading.Thread(target=job, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert outputs == {"first": single_machine, "second": single_machine}
    # Each job let its own index go.
    assert not any(name.startswith("gridgov-index") for names in _plugins(client).values() for name in names)


@pytest.mark.db
def test_a_worker_lost_mid_job_changes_nothing(
    db: DatabaseSettings, spreadsheet: Path, single_machine: bytes, index_root: Path, tmp_path: Path
) -> None:
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        client = connect(cluster.scheduler_address)
        engine = make_engine(db)
        with engine.connect() as conn:
            index = prepare_cluster(client, conn, index_root)
        engine.dispose()
        pids = client.run(os.getpid)
        killed: list[int] = []

        written: list[int] = []

        def kill_one_worker(rows: int) -> None:
            written.append(rows)
            if not killed:  # after the first chunk is written, while the next windows are being geocoded
                victim = pids[sorted(pids)[0]]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        out = tmp_path / "out.csv"
        geocode_csv_on_cluster(client, index, spreadsheet, out, window_rows=700, progress=kill_one_worker)
        assert killed and len(written) >= 3  # windows were still to geocode when the worker died
        assert out.read_bytes() == single_machine
        client.close()


@pytest.mark.db
def test_when_every_worker_is_gone_the_job_stops_with_a_message_and_no_file(
    db: DatabaseSettings, spreadsheet: Path, index_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from distributed import LocalCluster

    import gis.distributed

    monkeypatch.setattr(gis.distributed, "NO_WORKER_GRACE_S", 3.0)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        client = connect(cluster.scheduler_address)
        engine = make_engine(db)
        with engine.connect() as conn:
            index = prepare_cluster(client, conn, index_root)
        engine.dispose()

        def stop_every_worker(rows: int) -> None:
            cluster.scale(0)
            while client.scheduler_info(n_workers=-1)["workers"]:
                time.sleep(0.1)

        out = tmp_path / "out.csv"
        with pytest.raises(ClusterError, match="every Dask worker is gone"):
            geocode_csv_on_cluster(client, index, spreadsheet, out, window_rows=200, progress=stop_every_worker)
        assert not out.exists() and list(tmp_path.iterdir()) == []
        client.close()


@pytest.mark.db
def test_when_the_scheduler_is_lost_the_job_stops_with_a_message_and_no_file(
    db: DatabaseSettings, spreadsheet: Path, index_root: Path, tmp_path: Path
) -> None:
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        client = connect(cluster.scheduler_address)
        engine = make_engine(db)
        with engine.connect() as conn:
            index = prepare_cluster(client, conn, index_root)
        engine.dispose()

        def stop_the_scheduler(rows: int) -> None:
            cluster.close()

        out = tmp_path / "out.csv"
        with pytest.raises(ClusterError, match="scheduler was lost|scheduler stopped answering"):
            geocode_csv_on_cluster(client, index, spreadsheet, out, window_rows=200, progress=stop_the_scheduler)
        assert not out.exists() and list(tmp_path.iterdir()) == []
        client.close()


@pytest.mark.db
def test_without_a_scheduler_dask_is_never_imported(
    db: DatabaseSettings, spreadsheet: Path, index_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    program = (
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "sys.modules['distributed'] = None\n"
        "from api.cli import app\n"
        f"app(['geocode', {str(spreadsheet)!r}, '--out', {str(out)!r}, '--workers', '1'])\n"
    )
    environment = {**os.environ, "GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_INDEX_DIR": str(index_root)}
    environment.pop("GRIDGOV_DASK_SCHEDULER", None)
    done = subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "rows written" in done.stdout
    assert out.exists()
