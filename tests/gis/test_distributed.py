"""A batch job on a Dask cluster whose scheduler goes away mid-job stops with a clear message (ClusterError, exit 2 in
the commands), never a traceback of Dask's internals."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from gis.distributed import ClusterError, atomic_output, connect, results


def test_results_turn_a_scheduler_lost_mid_job_into_a_cluster_error() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        client = connect(cluster.scheduler_address)
        try:
            futures = [client.submit(time.sleep, 60, pure=False)]
            cluster.close()
            with pytest.raises(ClusterError, match="scheduler"):
                results(client, futures, job="a test job")
        finally:
            client.close()


def test_every_file_written_through_atomic_output_is_private_to_its_owner(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: a plain write would give 0644
    try:
        for name in ("spots.csv", "again.csv"):
            target = tmp_path / name
            if name == "again.csv":
                target.write_text("old", encoding="utf-8")
                target.chmod(0o644)
            with atomic_output(target) as partial:
                partial.write_text("town,code\n", encoding="utf-8")
            assert target.read_text(encoding="utf-8") == "town,code\n"
            assert os.stat(target).st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.csv", "spots.csv"]
