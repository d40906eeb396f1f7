"""address_library.cluster_geocode: the bulk geocoder on a Dask cluster, with the single-machine path's output.

The driver (the process that reads and writes the CSV) and the workers share one thing: the memory-mapped index
store (address_library.index_store), at the same path on every machine. `prepare_cluster` makes sure the store of
the library's current version exists, packs the towns onto the workers and registers the `IndexPlugin`, which opens
each worker's towns from its local disk once and keeps them resident. `geocode_csv_on_cluster` then streams the file
in windows: each window's rows are grouped by the town a cheap first parse reads at the opening of the text, each
group goes to the worker holding its town, rows with no town go to any worker (which answers from the whole index),
and the answers are written back in input order while the next windows are already being geocoded.

A shard answers exactly as the whole index would, or says it cannot (a row that needs a town the shard does not
hold); such rows are answered by the same worker from the whole index. So the output is the single-machine output,
row for row, whatever the cheap parse guessed and whichever worker answered (a lost worker's tasks are rerun
elsewhere). Dask is imported only inside functions: nothing here imports it unless a cluster is used.
"""

from __future__ import annotations

import contextlib
import heapq
import pickle
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

from address_library.batch import CHUNK_ROWS, BatchReport, read_table, write_table
from address_library.repository import AliasEntry
from gis.distributed import ClusterError, results

if TYPE_CHECKING:
    from distributed import Client, Future
    from sqlalchemy import Connection

# Rows read, geocoded and written as one unit: memory stays bounded whatever the file's size.
WINDOW_ROWS = 100_000
# Windows submitted beyond the one being written: while the driver collects and writes one window, the workers
# always have a whole window queued (with one, they idled whenever a window's parts ended before the driver's write).
WINDOWS_AHEAD = 2
# Rows of one task: big enough that scheduling costs little beside matching, small enough to spread a window.
PART_ROWS = 10_000

Answer = tuple[object, ...]  # one answer in ANSWER_FIELDS order


# ---------------------------------------------------------------------------------------------- the cheap town parse


@lru_cache(maxsize=1)
def _town_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    from address_library.gazetteer import default_gazetteer

    forms = default_gazetteer().town_at_start
    ordered = sorted(forms, key=lambda form: (-len(form), form))
    # The country, province and city the text may open with carry no town; then the longest town form.
    pattern = re.compile(
        r"[\s\u3000]*(?:中华人民共和国|中国)?(?:广东省|广东)?(?:东莞市|东莞)?[\s\u3000]*("
        + "|".join(re.escape(form) for form in ordered)
        + ")"
    )
    return pattern, dict(forms)


def cheap_town(text: str) -> str | None:
    """The code of the town named at the opening of a raw address text, or None: one regex, no normalization.

    Only a routing hint: a wrong or missing guess costs a second look, never a different answer.
    """
    pattern, forms = _town_pattern()
    found = pattern.match(text)
    return forms[found.group(1)] if found else None


# ---------------------------------------------------------------------------------------------- towns onto workers


def pack_towns(sizes: Mapping[str, int], workers: Sequence[str]) -> dict[str, str]:
    """Town → worker, packing the towns by their row count: largest first, each onto the least loaded worker (LPT).

    LPT keeps the heaviest worker within 4/3 of the best possible packing, so the memory and work of each worker
    stay close to an even share. Ties are broken by the worker's order, so the packing is the same on each run.
    """
    if not workers:
        raise ClusterError("the Dask cluster has no workers to hold the address index")
    load: list[tuple[int, int, str]] = [(0, i, worker) for i, worker in enumerate(workers)]
    heapq.heapify(load)
    assignment: dict[str, str] = {}
    for town, rows in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        held, order, worker = heapq.heappop(load)
        assignment[town] = worker
        heapq.heappush(load, (held + rows, order, worker))
    return assignment


# ---------------------------------------------------------------------------------------------- the driver side


@dataclass(frozen=True)
class ClusterIndex:
    """The index as the cluster holds it: the store, its version, and which worker holds which town."""

    store_dir: Path
    fingerprint: object
    assignment: dict[str, str]
    # The job's own name for its IndexPlugin: two jobs on one cluster each keep their version, aliases and packing.
    plugin_name: str


def prepare_cluster(client: Client, conn: Connection, index_root: Path) -> ClusterIndex:
    """Make sure the store of the library's current version exists under `index_root` (built when not), pack the
    towns onto the cluster's workers and register the IndexPlugin (ClusterError when a worker refuses it)."""
    from address_library.index_store import build_store, find_store
    from address_library.repository import alias_rows, library_version

    fingerprint = library_version(conn)
    store_dir = find_store(index_root, fingerprint) or build_store(conn, index_root)
    return register_index(client, store_dir, fingerprint, alias_rows(conn))


def register_index(client: Client, store_dir: Path, fingerprint: object, aliases: list[AliasEntry]) -> ClusterIndex:
    """Pack the store's towns onto the workers by their row count and register the IndexPlugin on every worker,
    which opens the store at `store_dir` on its own disk (ClusterError naming the worker when it cannot)."""
    from address_library.cluster_worker import PLUGIN_PREFIX, IndexPlugin, StoreRefused
    from address_library.index_store import IndexStoreError, read_manifest

    try:
        towns = read_manifest(store_dir)["towns"]
    except IndexStoreError as exc:
        raise ClusterError(f"the address index store cannot be read here: {exc}") from exc
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    assignment = pack_towns({town: end - start for town, (start, end) in towns.items()}, workers)
    index = ClusterIndex(store_dir, fingerprint, assignment, f"{PLUGIN_PREFIX}-{uuid.uuid4().hex}")
    plugin = IndexPlugin(str(store_dir), fingerprint, assignment, aliases, name=index.plugin_name)
    try:
        client.register_plugin(plugin, name=index.plugin_name)
    except StoreRefused as exc:
        release_cluster(client, index)  # the workers that accepted it let it go
        raise ClusterError(str(exc)) from exc
    return index


def release_cluster(client: Client, index: ClusterIndex) -> None:
    """Unregister the job's IndexPlugin: the workers let its index go (a shared cluster gets its memory back);
    other jobs' plugins stay."""
    with contextlib.suppress(Exception):  # the cluster may be gone already; nothing is left to release then
        client.unregister_worker_plugin(index.plugin_name)


def geocode_csv_on_cluster(
    client: Client,
    index: ClusterIndex,
    input_path: Path,
    output_path: Path,
    *,
    column: str = "address",
    window_rows: int = WINDOW_ROWS,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Geocode `column` of every row of `input_path` into `output_path` on the cluster: the same bytes as
    address_library.batch.geocode_csv. ClusterError when the cluster cannot finish (workers lost for good)."""
    started = time.perf_counter()
    with read_table(input_path, column, chunk_rows=min(CHUNK_ROWS, window_rows)) as table:
        windows = _windows(table.chunks, window_rows)
        answered = _answered(client, index, windows)
        n_rows, counts = write_table(output_path, table.header, answered, progress)
    return BatchReport(rows=n_rows, by_status=dict(counts), seconds=time.perf_counter() - started)


def _windows(
    chunks: Iterator[tuple[list[list[str]], list[str]]], window_rows: int
) -> Iterator[tuple[list[list[str]], list[str]]]:
    rows: list[list[str]] = []
    texts: list[str] = []
    for chunk_rows, chunk_texts in chunks:
        rows.extend(chunk_rows)
        texts.extend(chunk_texts)
        if len(rows) >= window_rows:
            yield rows, texts
            rows, texts = [], []
    if rows:
        yield rows, texts


@dataclass
class _Window:
    rows: list[list[str]]
    parts: list[tuple[list[int], Future]]


def _submit(client: Client, index: ClusterIndex, rows: list[list[str]], texts: list[str]) -> _Window:
    """Group a window's rows by their cheap town and submit each group, in parts, to the worker holding it."""
    from address_library.cluster_worker import answer_part

    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        groups[cheap_town(text)].append(i)
    parts: list[tuple[list[int], Future]] = []
    for town, positions in groups.items():
        held_by = index.assignment.get(town) if town is not None else None
        for start in range(0, len(positions), PART_ROWS):
            part = positions[start : start + PART_ROWS]
            future = client.submit(
                answer_part,
                pickle.dumps([texts[i] for i in part], protocol=pickle.HIGHEST_PROTOCOL),
                town,
                index.plugin_name,
                workers=[held_by] if held_by else None,
                allow_other_workers=True if held_by else None,  # the holder first; any worker if it is lost
                pure=False,
            )
            parts.append((part, future))
    return _Window(rows, parts)


def _answered(
    client: Client, index: ClusterIndex, windows: Iterator[tuple[list[list[str]], list[str]]]
) -> Iterator[tuple[list[list[str]], list[Answer]]]:
    """(rows, answers) chunks in input order; the next windows are geocoding while this one is written."""
    in_flight: list[_Window] = []
    try:
        for rows, texts in windows:
            in_flight.append(_submit(client, index, rows, texts))
            if len(in_flight) > WINDOWS_AHEAD:
                yield from _collect(client, in_flight.pop(0))
        while in_flight:
            yield from _collect(client, in_flight.pop(0))
    finally:
        for window in in_flight:
            client.cancel([future for _, future in window.parts])


def _collect(client: Client, window: _Window) -> Iterator[tuple[list[list[str]], list[Answer]]]:
    from address_library.cluster_worker import StoreRefused

    try:
        # Lost workers' tasks are rerun on the others; gis.distributed.results gives up when none is left.
        packed = results(client, [future for _, future in window.parts], job="the geocode")
    except StoreRefused as exc:
        raise ClusterError(str(exc)) from exc
    results_of_parts: list[list[Answer]] = [pickle.loads(cast(bytes, part)) for part in packed]
    answers: list[Answer] = [()] * len(window.rows)
    for (positions, _), part in zip(window.parts, results_of_parts, strict=True):
        for i, answer in zip(positions, part, strict=True):
            answers[i] = answer
    for start in range(0, len(window.rows), CHUNK_ROWS):
        yield window.rows[start : start + CHUNK_ROWS], answers[start : start + CHUNK_ROWS]
