"""gis.distributed: the connection to a Dask cluster for batch jobs, and the output discipline they share.

Dask (`distributed`) is imported only inside these functions, and only when a scheduler is named (`--scheduler`
or GRIDGOV_DASK_SCHEDULER): the single-machine path never imports it. Output files are written under a temporary
name beside the final one and renamed into place when complete, so a failed or interrupted job never leaves a
half-written file under the name the user asked for.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client, Future

SCHEDULER_ENV = "GRIDGOV_DASK_SCHEDULER"
# How long to wait for the scheduler to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10.0


class ClusterError(Exception):
    """The cluster cannot do the job (scheduler unreachable, no workers, workers lost): the message says which."""


def scheduler_address(option: str | None) -> str | None:
    """The scheduler named by the option, else by GRIDGOV_DASK_SCHEDULER; None for the single-machine path."""
    for value in (option, os.environ.get(SCHEDULER_ENV)):
        if value is not None and value.strip():
            return value.strip()
    return None


def connect(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S, min_workers: int = 1) -> Client:
    """A client of the scheduler at `address` with at least `min_workers` workers, or ClusterError saying why."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:.0f} s ({exc.__class__.__name__}: "
            f"{exc}); start it with `dask scheduler` and workers with `dask worker {address}`, or leave out "
            "--scheduler to run on this machine"
        ) from exc
    try:
        client.wait_for_workers(min_workers, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterError(
            f"the Dask scheduler at {address} has no workers (waited {timeout_s:.0f} s for {min_workers}); "
            f"start them with `dask worker {address}`"
        ) from exc
    return client


# How long results wait for a worker when every worker is gone, before the job is given up.
NO_WORKER_GRACE_S = 30.0
# Mode of every file atomic_output writes: results hold addresses and cases, for their owner only.
PRIVATE_MODE = 0o600
_POLL_S = 1.0


def results(client: Client, futures: Sequence[Future], *, job: str) -> list[object]:
    """The futures' results in order; ClusterError (naming `job`) when the cluster cannot finish them.

    A lost worker's tasks are rerun on the others; with no worker left for NO_WORKER_GRACE_S, or tasks that kept
    killing their workers, or a scheduler that stopped answering, the job stops with a clear message.
    """
    from distributed.core import CommClosedError
    from distributed.scheduler import KilledWorker

    out: list[object] = []
    alone_since: float | None = None
    try:
        for future in futures:
            while True:
                try:
                    out.append(future.result(timeout=_POLL_S))
                    break
                except TimeoutError:
                    if client.scheduler_info(n_workers=-1)["workers"]:
                        alone_since = None
                        continue
                    alone_since = alone_since or time.monotonic()
                    if time.monotonic() - alone_since > NO_WORKER_GRACE_S:
                        raise ClusterError(
                            f"every Dask worker is gone (none for {NO_WORKER_GRACE_S:.0f} s): {job} stopped "
                            "unfinished and wrote nothing"
                        ) from None
    except KilledWorker as exc:
        raise ClusterError(
            f"Dask workers kept dying during {job} ({exc}): it stopped unfinished and wrote nothing"
        ) from exc
    except CancelledError as exc:  # the client cancels every future when it loses the scheduler
        raise ClusterError(
            f"the connection to the Dask scheduler was lost during {job} ({exc}): it stopped unfinished and wrote "
            "nothing"
        ) from exc
    except (OSError, CommClosedError) as exc:
        raise ClusterError(
            f"the Dask scheduler stopped answering during {job} ({exc.__class__.__name__}: {exc}): it stopped "
            "unfinished and wrote nothing"
        ) from exc
    return out


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed to `path` when the block completes, removed when it raises.

    The rename is atomic on one file system, so readers see either the previous file or the complete new one. The
    file is private to its owner (mode 0600) whatever the umask and however the caller writes it: the partial is
    created 0600 (opening it for writing keeps the mode) and set to 0600 again before the rename.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        # Where the partial cannot be created, the caller's own write fails with its message.
        with contextlib.suppress(OSError):
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE))
            os.chmod(partial, PRIVATE_MODE)  # a leftover partial of this pid keeps its mode through O_CREAT
        yield partial
        if partial.exists():
            with partial.open("rb") as written:
                os.fsync(written.fileno())
                os.fchmod(written.fileno(), PRIVATE_MODE)
            os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
