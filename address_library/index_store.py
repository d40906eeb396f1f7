"""address_library.index_store: the address index saved as memory-mapped arrays, opened whole or per town.

A store is one directory per library version under a root (`GRIDGOV_INDEX_DIR`): `manifest.json` (format, library
fingerprint, scope, rows, the row range of every town, the size of every file) and `.npy` files that every process
opens with `np.load(mmap_mode="r")`, so the pages are shared by all processes on a machine and opening costs
milliseconds. Rows are sorted by (town code, id): a town is one contiguous range of rows.

- Strings are one UTF-8 blob and int64 offsets; repeated codes (level, town, community, grid) are small ints and a
  vocabulary.
- Hash tables (normalized text → rows, component key → rows) hold stable xxh3 hashes (address_library.index),
  so any process reads them. The anchor tables, territory and grid placement are small and pickled.
- A SHARD geocoder (`open_geocoder(towns=...)`) opens the global tables whole and reads per-row columns only in
  its towns' ranges: reading any other row raises OutsideShard, so it answers exactly as the whole store or not
  at all (`Geocoder.try_geocode_many` gives None).

Writing is atomic (a temporary directory renamed into place); a complete store of the same version is reused; the
newest `KEEP_VERSIONS` of each scope are kept.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection

from address_library.errors import AddressLibraryError
from address_library.index import AddressIndex, HashTable, OutsideShard, stable_hash
from address_library.repository import index_rows, library_version
from address_library.service import Geocoder, SearchOrders, load_territory, search_orders
from gis.settings import project_root
from grids.placement import GridPlacement

__all__ = [
    "FORMAT",
    "IndexSettings",
    "IndexStoreError",
    "OutsideShard",
    "build_store",
    "find_store",
    "open_current",
    "open_geocoder",
    "read_manifest",
    "read_tables",
    "save_store",
]

FORMAT = 1
KEEP_VERSIONS = 2
MANIFEST = "manifest.json"
_PICKLED = "tables.pkl"
_TMP_PREFIX = ".tmp-"


class IndexStoreError(AddressLibraryError):
    """A store that cannot be used: missing, truncated, of another format or of another library version."""


class IndexSettings(BaseSettings):
    """Where index stores live."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    index_dir: Path = Field(default_factory=lambda: project_root() / ".gridgov" / "index")

    def root_beside(self, state_dir: Path) -> Path:
        """GRIDGOV_INDEX_DIR when it is set, else the `index` folder of this state folder (a server's own)."""
        return self.index_dir if "index_dir" in self.model_fields_set else state_dir / "index"


# ---------------------------------------------------------------------------------------------------- columns


def pack_strings(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 blob as uint8, int64 offsets of n + 1): any str, NUL and lone surrogates included."""
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


class StringColumn:
    """A column of str read from a blob and offsets (decoded on each read)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets
        # Decoding straight from a memoryview of the mapped blob copies nothing but the one string read.
        self._buffer = np.ascontiguousarray(blob).data if blob.size else memoryview(b"")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(i)
            return str(self._buffer[self._offsets[i] : self._offsets[i + 1]], "utf-8", "surrogatepass")
        positions = np.arange(len(self))[key]
        return np.array([self[int(p)] for p in positions.tolist()], dtype=object)

    def tolist(self) -> list[str]:
        """Every string (all rows decoded: for small columns and tests)."""
        data = self._blob.tobytes()
        offsets = self._offsets.tolist()
        return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offsets, offsets[1:], strict=False)]


class CodeColumn:
    """A column of repeated strings as small int codes into a vocabulary (one str object per distinct value)."""

    def __init__(self, codes: np.ndarray, vocabulary: np.ndarray) -> None:
        self._codes = codes
        self._vocabulary = vocabulary
        self._values: list[str] = vocabulary.tolist()

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return self._values[self._codes[key]]
        return self._vocabulary[self._codes[key]]


class ShardRows:
    """Which rows a shard holds (its towns' ranges), as one flag per row that every column of the shard shares."""

    def __init__(self, n_rows: int, ranges: Sequence[tuple[int, int]]) -> None:
        flags = np.zeros(n_rows, dtype=bool)
        for start, end in ranges:
            flags[start:end] = True
        # bytes: one row's test is a C-level index (the hot path reads rows one at a time); the array view for many.
        self.flags = flags.tobytes()
        self.array = np.frombuffer(self.flags, dtype=bool)


class ShardColumn:
    """A per-row column of which only some row ranges (the held towns) may be read; others raise OutsideShard."""

    def __init__(self, column: Any, rows: ShardRows) -> None:
        self._column = column
        self._flags = rows.flags
        self._array = rows.array

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            if key < 0 or key >= len(self._flags) or not self._flags[key]:
                raise OutsideShard(int(key))
            return self._column[key]
        one_row = not isinstance(key, slice) and np.ndim(key) == 0  # a 0-d array
        positions = np.atleast_1d(np.arange(len(self._column))[key] if isinstance(key, slice) else np.asarray(key))
        if not positions.size:
            positions = positions.astype(np.intp)
        elif positions.dtype.kind not in "iu":
            raise TypeError(f"a shard column is read by row positions (integers), not {positions.dtype}")
        valid = (positions >= 0) & (positions < len(self._array))
        inside = np.zeros(positions.shape, dtype=bool)
        inside[valid] = self._array[positions[valid]]
        if not inside.all():
            raise OutsideShard(int(positions[~inside].flat[0]))
        return self._column[positions[0] if one_row else positions]


# ---------------------------------------------------------------------------------------------------- writing


def _scope_tag(towns: Sequence[str] | None) -> str:
    if towns is None:
        return "city"
    return "towns-" + format(stable_hash("\x1f".join(towns).encode()) & ((1 << 64) - 1), "016x")


def _version_dir_name(fingerprint: object, towns: Sequence[str] | None) -> str:
    key = json.dumps(_json_fingerprint(fingerprint)).encode()
    return f"v{FORMAT}-{stable_hash(key) & ((1 << 64) - 1):016x}-{_scope_tag(towns)}"


def _json_fingerprint(fingerprint: object) -> Any:
    return list(fingerprint) if isinstance(fingerprint, tuple) else fingerprint


def build_store(conn: Connection, root: Path, *, towns: Collection[str] | None = None, workers: int = 2) -> Path:
    """Build (or reuse) the store of the library as it is now under `root`; towns=None: the whole city.

    A store of some towns answers as if the library held only those towns (a town's own deployment). Two
    processes building at once both finish: the first rename wins and the other reuses its store.
    """
    fingerprint = library_version(conn)
    territory = load_territory(conn)
    scope = None if towns is None else sorted(set(towns))
    if scope is not None:
        unknown = [t for t in scope if t not in territory.towns]
        if unknown or not scope:
            raise IndexStoreError(f"no such town: {', '.join(unknown) or '(none given)'}")
    final = root / _version_dir_name(fingerprint, scope)
    if _is_complete(final, fingerprint):
        _prune(root, final)
        return final
    started = time.perf_counter()
    rows = index_rows(conn)
    if scope is not None:
        rows = rows[rows["town_code"].isin(scope)]
    index = AddressIndex.build(rows, workers=workers)
    placement = GridPlacement.load(conn)
    orders = search_orders(index, territory)
    return _save(root, final, index, territory, placement, orders, fingerprint, scope, time.perf_counter() - started)


def save_store(geocoder: Geocoder, root: Path) -> Path:
    """Save a geocoder built in memory (Geocoder.load) as the whole-city store of its library version under `root`.

    A server that rebuilt its index after a change saves it this way, so that the next start opens it from disk.
    """
    final = root / _version_dir_name(geocoder.fingerprint, None)
    if _is_complete(final, geocoder.fingerprint):
        return final
    index, orders = geocoder.index, geocoder.orders
    return _save(root, final, index, geocoder.territory, geocoder.placement, orders, geocoder.fingerprint, None, 0.0)


def _save(
    root: Path,
    final: Path,
    index: AddressIndex,
    territory: Any,
    placement: GridPlacement,
    orders: SearchOrders,
    fingerprint: object,
    scope: list[str] | None,
    build_s: float,
) -> Path:
    """Write the store into a temporary folder and rename it to `final` (or reuse the one another process wrote)."""
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f"{_TMP_PREFIX}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        _write(temporary, index, territory, placement, orders, fingerprint, scope, build_s)
        try:
            os.rename(temporary, final)
        except OSError:
            if not _is_complete(final, fingerprint):  # an incomplete leftover: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(temporary, final)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    _prune(root, final)
    return final


def _write(
    directory: Path,
    index: AddressIndex,
    territory: Any,
    placement: GridPlacement,
    orders: SearchOrders,
    fingerprint: object,
    scope: list[str] | None,
    build_s: float,
) -> None:
    arrays: dict[str, np.ndarray] = {}
    towns = np.asarray(index.towns)
    for name, column in (("level", index.levels), ("town", index.towns), ("community", index.communities),
                         ("grid", index.grids)):  # fmt: skip
        values = np.asarray(column, dtype=object)
        vocabulary, codes = np.unique(values.astype(str), return_inverse=True)
        arrays[f"{name}_codes"] = codes.astype(np.int32 if len(vocabulary) > 32_000 else np.int16)
        arrays[f"{name}_vocab_blob"], arrays[f"{name}_vocab_offsets"] = pack_strings(vocabulary.tolist())
    arrays["ids"] = np.asarray(index.ids, dtype=np.int64)
    arrays["lons"] = np.asarray(index.lons, dtype=np.float64)
    arrays["lats"] = np.asarray(index.lats, dtype=np.float64)
    arrays["parent_ids"] = np.asarray(index.parent_ids, dtype=np.int64)
    arrays["text_blob"], arrays["text_offsets"] = pack_strings(np.asarray(index.full_texts).tolist())
    arrays["normalized_blob"], arrays["normalized_offsets"] = pack_strings(cast(Iterable[str], index.normalized_texts))
    for name, table in (("by_text", index.by_text), ("by_key", index.by_key)):
        assert table is not None
        arrays[f"{name}_hashes"], arrays[f"{name}_positions"] = table.arrays
    assert index.sorted_ids is not None and index.id_positions is not None
    arrays["sorted_ids"], arrays["id_positions"] = index.sorted_ids, index.id_positions
    arrays["reverse_positions"] = orders.reverse_positions.astype(np.int64)
    arrays["town_offset"] = orders.town_offset
    arrays["order_by_text"] = orders.by_text.astype(np.int64)
    arrays["order_by_body"] = orders.by_body.astype(np.int64)
    files: dict[str, int] = {}
    for name, array in arrays.items():
        path = directory / f"{name}.npy"
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        files[path.name] = path.stat().st_size
    tables = {
        "anchor_towns": index.anchor_towns,
        "anchor_grams": index.anchor_grams,
        "anchor_phases": index.anchor_phases,
        "anchor_sounds": index.anchor_sounds,
        "anchor_masks": index.anchor_masks,
        "road_doors": index.road_doors,
        "road_names": index.road_names,
        "territory": territory,
        "placement": placement,
    }
    with (directory / _PICKLED).open("wb") as handle:
        pickle.dump(tables, handle, protocol=pickle.HIGHEST_PROTOCOL)
    files[_PICKLED] = (directory / _PICKLED).stat().st_size
    ranges: dict[str, list[int]] = {}
    if len(towns):
        codes = towns.astype(str)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        ranges = {str(codes[s]): [int(s), int(e)] for s, e in zip(starts, ends, strict=True)}
    manifest = {
        "format": FORMAT,
        "fingerprint": _json_fingerprint(fingerprint),
        "built_at": time.time(),
        "build_s": round(build_s, 3),
        "city_code": "441900",
        "rows": len(index),
        "scope": "city" if scope is None else scope,
        "towns": ranges,
        "files": files,
    }
    with (directory / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, ensure_ascii=False, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def _prune(root: Path, keep: Path) -> None:
    """Keep the newest KEEP_VERSIONS complete stores of each scope (and `keep`); drop the rest and old leftovers."""
    by_scope: dict[str, list[tuple[float, Path]]] = {}
    for directory in root.iterdir():
        if directory.name.startswith(_TMP_PREFIX):
            # A temporary directory an interrupted build left (an hour old at least: a build may be running).
            if time.time() - directory.stat().st_mtime > 3600:
                shutil.rmtree(directory, ignore_errors=True)
            continue
        if not directory.is_dir() or not directory.name.startswith("v"):
            continue
        scope = directory.name.split("-", 2)[-1]
        try:
            built = float(read_manifest(directory)["built_at"])
        except IndexStoreError:
            built = 0.0
        by_scope.setdefault(scope, []).append((built, directory))
    for stores in by_scope.values():
        stores.sort(reverse=True)
        for _, directory in stores[KEEP_VERSIONS:]:
            if directory != keep:
                shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- reading


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a store, checked for format and the presence and size of every file."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"{directory}: no readable manifest ({exc.__class__.__name__})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise IndexStoreError(f"{directory}: store format {found}, this version reads format {FORMAT}")
    for name, size in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != size:
            raise IndexStoreError(f"{directory}: {name} is missing or truncated")
    return manifest


def _is_complete(directory: Path, fingerprint: object) -> bool:
    try:
        manifest = read_manifest(directory)
    except IndexStoreError:
        return False
    return bool(manifest["fingerprint"] == _json_fingerprint(fingerprint))


def find_store(root: Path, fingerprint: object) -> Path | None:
    """The complete whole-city store of that library version under `root`, or None."""
    directory = root / _version_dir_name(fingerprint, None)
    return directory if _is_complete(directory, fingerprint) else None


def _load(directory: Path, name: str) -> np.ndarray:
    path = directory / f"{name}.npy"
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:  # an empty array cannot be mapped
        array = np.load(path, allow_pickle=False)
    # A plain ndarray view of the mapping: np.memmap's Python-level __getitem__ costs on every scalar read.
    return array.view(np.ndarray)


def _unpickle(path: Path) -> dict[str, Any]:
    """The pickled tables (written by build_store on this machine), with the cyclic collector paused.

    Unpickling creates hundreds of thousands of tuples and sets; without the pause the collector walks them again
    and again while they are created (a third of the load time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        with path.open("rb") as handle:
            return dict(pickle.load(handle))
    finally:
        if enabled:
            gc.enable()


def _vocabulary(directory: Path, name: str) -> np.ndarray:
    strings = StringColumn(_load(directory, f"{name}_vocab_blob"), _load(directory, f"{name}_vocab_offsets"))
    return np.array(strings.tolist(), dtype=object)


def read_tables(directory: Path) -> dict[str, Any]:
    """The store's pickled tables (anchor tables, territory, grid placement): read once, they may serve every
    geocoder a process opens on this store (open_geocoder's `tables`), as geocoders only read them."""
    try:
        return _unpickle(directory / _PICKLED)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise IndexStoreError(f"{directory}: unreadable store ({exc.__class__.__name__}: {exc})") from exc


def open_geocoder(
    directory: Path,
    *,
    towns: Collection[str] | None = None,
    fingerprint: object = None,
    freeze: bool = True,
    tables: Mapping[str, Any] | None = None,
) -> Geocoder:
    """A geocoder over a store: everything it holds (towns=None), or a SHARD that reads only these towns' rows.

    `fingerprint`, when given, must be the store's library version (IndexStoreError otherwise). Aliases are not in
    the store: give them with Geocoder.set_aliases. `freeze` moves every object alive now out of the collector's
    reach (gc.freeze), which suits a process that lives for one job; a long-lived process (a Dask worker) passes
    False, or it would freeze its own objects, cyclic garbage included, on every job. `tables`: this store's
    read_tables, shared with another geocoder of the process (read from the store when not given).
    """
    manifest = read_manifest(directory)
    if fingerprint is not None and manifest["fingerprint"] != _json_fingerprint(fingerprint):
        raise IndexStoreError(
            f"{directory}: the store is of library version {manifest['fingerprint']}, "
            f"not {_json_fingerprint(fingerprint)}"
        )
    try:
        if tables is None:
            tables = read_tables(directory)
        columns: dict[str, Any] = {
            "ids": _load(directory, "ids"),
            "lons": _load(directory, "lons"),
            "lats": _load(directory, "lats"),
            "parent_ids": _load(directory, "parent_ids"),
            "full_texts": StringColumn(_load(directory, "text_blob"), _load(directory, "text_offsets")),
            "normalized_texts": StringColumn(
                _load(directory, "normalized_blob"), _load(directory, "normalized_offsets")
            ),
        }
        for name, field_name in (("level", "levels"), ("town", "towns"), ("community", "communities"),
                                 ("grid", "grids")):  # fmt: skip
            columns[field_name] = CodeColumn(_load(directory, f"{name}_codes"), _vocabulary(directory, name))
        held: frozenset[str] | None = None
        if towns is not None:
            held = frozenset(towns)
            ranges = [tuple(manifest["towns"][t]) for t in held if t in manifest["towns"]]
            rows = ShardRows(len(columns["ids"]), ranges)
            columns = {name: ShardColumn(column, rows) for name, column in columns.items()}
        index = AddressIndex(
            **columns,
            by_text=HashTable.from_sorted(_load(directory, "by_text_hashes"), _load(directory, "by_text_positions")),
            by_key=HashTable.from_sorted(_load(directory, "by_key_hashes"), _load(directory, "by_key_positions")),
            anchor_towns=tables["anchor_towns"],
            anchor_grams=tables["anchor_grams"],
            anchor_phases=tables["anchor_phases"],
            anchor_sounds=tables["anchor_sounds"],
            anchor_masks=tables["anchor_masks"],
            road_doors=tables["road_doors"],
            road_names=tables["road_names"],
            sorted_ids=_load(directory, "sorted_ids"),
            id_positions=_load(directory, "id_positions"),
        )
        orders = SearchOrders(
            _load(directory, "reverse_positions"),
            _load(directory, "town_offset"),
            _load(directory, "order_by_text"),
            _load(directory, "order_by_body"),
        )
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise IndexStoreError(f"{directory}: unreadable store ({exc.__class__.__name__}: {exc})") from exc
    fingerprint_value = manifest["fingerprint"]
    geocoder = Geocoder(
        index,
        tables["territory"],
        tables["placement"],
        tuple(fingerprint_value) if isinstance(fingerprint_value, list) else fingerprint_value,
        orders=orders,
        towns_held=held,
    )
    if freeze:
        # The tables live as long as the geocoder: full collections need not walk them (as after Geocoder.load).
        gc.freeze()
    return geocoder


def open_current(
    conn: Connection, root: Path, *, workers: int = 1, unsaved: Callable[[OSError], None] | None = None
) -> Geocoder:
    """The geocoder of the library as it is now, from its store under `root` (built and saved first if missing).

    A store that cannot be read is built again. Aliases are read from the database (they are not in the store).
    When the store cannot be written (`root` not writable, disk full) the OSError propagates, unless `unsaved` is
    given: it is called with the error and the geocoder is built in memory instead (Geocoder.load).
    """
    try:
        fingerprint = library_version(conn)
        directory = find_store(root, fingerprint) or build_store(conn, root, workers=workers)
        try:
            geocoder = open_geocoder(directory)
        except IndexStoreError:
            shutil.rmtree(directory, ignore_errors=True)
            geocoder = open_geocoder(build_store(conn, root, workers=workers))
    except OSError as exc:
        if unsaved is None:
            raise
        unsaved(exc)
        return Geocoder.load(conn, workers=max(workers, 1))
    geocoder.reload_aliases(conn)
    return geocoder
