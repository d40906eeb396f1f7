"""A batch job on a Dask cluster whose scheduler goes away mid-job stops with a clear message (ClusterError, exit 2 in
the commands), never a traceback of Dask's internals."""

from __future__ import annotations

import logging
import time

import pytest

from gis.distributed import ClusterError, connect, results


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
