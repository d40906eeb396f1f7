"""address_library.cluster_worker: what a Dask worker runs for the cluster geocoder (the IndexPlugin and its task).

Imported only on the cluster path (it imports `distributed`): the single-machine path never loads it.
"""

from __future__ import annotations

import gc
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Worker, WorkerPlugin, get_worker

from address_library.index_store import IndexStoreError, open_geocoder, read_manifest, read_tables
from address_library.repository import AliasEntry
from address_library.service import ANSWER_FIELDS, Geocoder

# Each job registers its plugin as "<prefix>-<uuid>", so jobs sharing a cluster never replace each other's.
PLUGIN_PREFIX = "gridgov-index"
# Store files with one entry per address row (a shard touches only its towns' ranges of them); the text blobs are
# reached through their offsets; every other file is a table every shard reads whole.
_PER_ROW = frozenset(
    {"ids", "lons", "lats", "parent_ids", "level_codes", "town_codes", "community_codes", "grid_codes"}
)
_BLOBS = {"text_blob": "text_offsets", "normalized_blob": "normalized_offsets"}
_PAGE = 4096

Answer = tuple[object, ...]


class StoreRefused(Exception):
    """A worker cannot use the index store: missing on its disk, or of another library version (the message names
    the worker)."""


class IndexPlugin(WorkerPlugin):
    """What every worker holds: its towns' shard of the index store, opened once from its local disk and kept
    resident, and the whole store (mapped when a row needs it: cheap), both with the active aliases."""

    def __init__(
        self,
        store_dir: str,
        fingerprint: object,
        assignment: dict[str, str],
        aliases: list[AliasEntry],
        *,
        name: str = PLUGIN_PREFIX,
    ) -> None:
        self.name = name
        self.store_dir = store_dir
        self.fingerprint = fingerprint
        self.assignment = assignment
        self.aliases = aliases
        self.towns: frozenset[str] = frozenset()
        self._shard: Geocoder | None = None
        self._whole: Geocoder | None = None
        self._tables: dict[str, Any] | None = None
        self._closed = False

    def setup(self, worker: Worker) -> None:
        """Open this worker's towns and touch their pages; StoreRefused when the store is unusable here."""
        self.towns = frozenset(town for town, held_by in self.assignment.items() if held_by == worker.address)
        # Every worker maps the whole store (cheap: pages are read when used), so the version is checked on each.
        self.whole(worker.address)
        if self.towns:
            self._shard = self._open(worker.address, sorted(self.towns))
            touch_pages(Path(self.store_dir), self.towns)
        _freeze_resident()

    def teardown(self, worker: Worker) -> None:
        """The job is over: its geocoders go, and the collector may walk again what was frozen with them.

        The collector's state is the process's: with several Workers in one process (`processes=False`, never the
        case of a `dask worker` or of the tests' clusters) one job's teardown thaws the others' tables too, which
        costs them speed, not answers.
        """
        self._closed = True  # a task still running on this plugin's geocoders keeps its own references
        self._shard = self._whole = None
        self._tables = None
        gc.unfreeze()
        if any(isinstance(plugin, IndexPlugin) for plugin in worker.plugins.values()):
            _freeze_resident()  # another job's index is still held

    def whole(self, worker: str) -> Geocoder:
        """The whole index (mapped once)."""
        whole = self._whole
        if whole is None:
            if self._closed:
                raise StoreRefused(f"worker {worker}: the job's address index was released")
            whole = self._whole = self._open(worker, None)
        return whole

    def _open(self, worker: str, towns: list[str] | None) -> Geocoder:
        if not Path(self.store_dir).is_dir():
            raise StoreRefused(
                f"worker {worker} has no address index store at {self.store_dir}: copy the store there "
                "(`gridgov index build`) or run the workers on the machine that built it"
            )
        try:
            if self._tables is None:
                self._tables = read_tables(Path(self.store_dir))
            # The shard and the whole index read the same anchor tables, territory and placement: one copy.
            geocoder = open_geocoder(
                Path(self.store_dir), towns=towns, fingerprint=self.fingerprint, freeze=False, tables=self._tables
            )
        except IndexStoreError as exc:
            raise StoreRefused(
                f"worker {worker} cannot use the address index store of library version {self.fingerprint}: "
                f"{exc}; rebuild it there (`gridgov index build`)"
            ) from exc
        geocoder.set_aliases(self.aliases)
        return geocoder

    def answer(self, worker: str, texts: list[str], town: str | None) -> list[Answer]:
        """Answers (ANSWER_FIELDS tuples) in the order of `texts`: from the shard when it holds `town` and can
        answer, from the whole index otherwise."""
        answers: list[Any] = [None] * len(texts)
        shard = self._shard
        if town is not None and town in self.towns and shard is not None:
            answers = shard.try_geocode_many(texts)
        missing = [i for i, a in enumerate(answers) if a is None]
        if missing:
            again = self.whole(worker).try_geocode_many([texts[i] for i in missing])
            for i, a in zip(missing, again, strict=True):
                answers[i] = a
        return [tuple(getattr(a, f) for f in ANSWER_FIELDS) for a in answers]


def _freeze_resident() -> None:
    """Take what the worker holds now (the index tables above all: millions of objects alive for the whole job) out
    of the cyclic collector's walks, after a full collection so no garbage is frozen with it.

    Without this every full collection walks the tables again: 8 % of a worker's geocoding time, measured. Dask's
    own objects alive now are frozen too; those that die still go by reference counting, and cyclic garbage among
    them waits for the teardown's gc.unfreeze.
    """
    gc.collect()
    gc.freeze()


def touch_pages(directory: Path, towns: frozenset[str]) -> int:
    """Read one byte of every page a shard of `towns` uses (its rows' ranges, the shared tables), so they are
    resident before the first task; the bytes touched."""
    manifest = read_manifest(directory)
    ranges = [tuple(manifest["towns"][town]) for town in sorted(towns) if town in manifest["towns"]]
    touched = 0
    for file_name in manifest["files"]:
        name = file_name.removesuffix(".npy")
        if name == file_name or name in _BLOBS.values():
            continue  # the pickled tables are in memory already; offsets are touched with their blob
        array = np.load(directory / file_name, mmap_mode="r", allow_pickle=False)
        if name in _PER_ROW:
            spans = [(start, end) for start, end in ranges]
        elif name in _BLOBS:
            offsets = np.load(directory / f"{_BLOBS[name]}.npy", mmap_mode="r", allow_pickle=False)
            touched += sum(_touch(offsets[start : end + 1]) for start, end in ranges)
            spans = [(int(offsets[start]), int(offsets[end])) for start, end in ranges]
        else:
            spans = [(0, len(array))]
        touched += sum(_touch(array[start:end]) for start, end in spans)
    return touched


def _touch(part: np.ndarray) -> int:
    raw = np.ascontiguousarray(part).reshape(-1).view(np.uint8) if part.size else np.zeros(0, np.uint8)
    int(raw[::_PAGE].sum())
    return int(raw.size)


def answer_part(packed_texts: bytes, town: str | None, plugin_name: str) -> bytes:
    """A task: the answers to a part of a window, on whichever worker runs it.

    Texts and answers travel pickled as one bytes object each: Dask walks a list argument element by element to
    find keys in it, which cost about 25 µs a row (more than geocoding it) for a list of 10,000 texts.
    `plugin_name` is the job's IndexPlugin (ClusterIndex.plugin_name).
    """
    worker = get_worker()
    plugin = worker.plugins.get(plugin_name)
    if not isinstance(plugin, IndexPlugin):
        raise StoreRefused(f"worker {worker.address} has no address index loaded (plugin {plugin_name} missing)")
    texts = pickle.loads(packed_texts)
    return pickle.dumps(plugin.answer(worker.address, texts, town), protocol=pickle.HIGHEST_PROTOCOL)
