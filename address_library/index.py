"""address_library.index: the in-memory match index over the standard address library.

Every standard address is reachable by a *component key*: the anchor it hangs from (a compound, an industrial
park, a road, or a natural village with its lane), then its numbers (door, sub-number, phase, building, unit,
floor, room, stall) reduced to their core token (3栋, 3座, 3幢 and 3号楼 are all building "3"). The same
reduction applied to a parsed query gives the same key, so writing habits do not matter; town and community
are kept beside the key, not in it, because people drop or garble them more than anything else.

Anchors are also indexed by their character bigrams, so a misspelt road or compound finds its few candidates
without a scan of the library (the "n-gram index" of the fuzzy path). Door numbers per road are kept sorted
for the road-level fallback (interpolation between the nearest numbers).
"""

from __future__ import annotations

import multiprocessing
import re
import struct
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xxhash

from address_library.lexicon import fold_homophones
from address_library.normalize import normalize
from address_library.slips import phonetic_keys

# Numbered components in the order they refine an address.
NUMBER_FIELDS = ("door_no", "sub_no", "phase", "building", "unit", "floor", "room", "stall")
# Anchor kinds, in the order a query tries them (the most specific first).
ANCHOR_KINDS = ("compound", "park", "road", "village")

_UNIT_SUFFIX = re.compile(r"(?:号楼|号院|单元|号梯|栋|座|幢|楼|层|室|房|号|期|区|档|铺|梯|#)$")
_LEADING = re.compile(r"^第")


@lru_cache(maxsize=1 << 20)
def _core_text(text: str) -> str:
    text = normalize(text) if not text.isascii() else text
    text = _LEADING.sub("", text)
    return _UNIT_SUFFIX.sub("", text).upper()


@lru_cache(maxsize=1 << 20)
def _name_text(text: str) -> str:
    # Homophone slips are folded on both sides, so 袁屋存 finds 袁屋村 and 东和花元 finds 东和花园.
    return fold_homophones(normalize(text))


def core_token(value: object) -> str:
    """The core of a numbered component: '3栋' → '3', 'A1座' → 'A1', '第6栋' → '6', '一期' → '1', None → ''."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    if not text or text == "<NA>":
        return ""
    return _core_text(text)


def name_token(value: object) -> str:
    """The comparable form of a name (road, compound, park, village): normalized text, '' when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    if not text or text == "<NA>":
        return ""
    return _name_text(text)


def numbers_of(components: Mapping[str, object]) -> tuple[str, ...]:
    """The number path of an address or a query: core tokens of NUMBER_FIELDS, trailing blanks dropped."""
    numbers = [core_token(components.get(f)) for f in NUMBER_FIELDS]
    while numbers and not numbers[-1]:
        numbers.pop()
    return tuple(numbers)


def anchors_of(components: Mapping[str, object]) -> list[tuple[str, str]]:
    """Every (kind, name) anchor an address or query names, most specific first."""
    out: list[tuple[str, str]] = []
    for kind in ANCHOR_KINDS:
        if kind == "road":
            name = name_token(components.get("road_name", components.get("road")))
        elif kind == "village":
            village = name_token(components.get("village", components.get("natural_village")))
            lane = name_token(components.get("lane"))
            name = f"{village}|{lane}" if village or lane else ""
        else:
            name = name_token(components.get(kind))
        if name:
            out.append((kind, name))
    return out


class OutsideShard(Exception):
    """A row of a town this shard geocoder does not hold was read: only the whole index can answer this query.

    Deliberately not an AddressLibraryError, so that geocode_many does not turn it into an answer.
    """

    def __init__(self, position: int) -> None:
        super().__init__(f"row {position} belongs to a town this shard does not hold")
        self.position = position


class RowColumn(Protocol):
    """A per-row column of the index: a numpy array in memory, or a column of a memory-mapped store."""

    def __getitem__(self, key: Any) -> Any: ...

    def __len__(self) -> int: ...


def encode_key(parts: tuple[object, ...]) -> bytes:
    """A canonical, prefix-free byte encoding of a key of str and tuples of str (distinct keys, distinct bytes).

    Every str is its UTF-8 (lone surrogates kept) behind its byte length; a tuple is its length and its items.
    """
    out = bytearray()
    _encode_into(out, parts)
    return bytes(out)


def _encode_into(out: bytearray, value: object) -> None:
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        out += b"s" + struct.pack("<I", len(data)) + data
    elif isinstance(value, tuple):
        out += b"t" + struct.pack("<I", len(value))
        for item in value:
            _encode_into(out, item)
    else:
        raise TypeError(f"an index key holds str and tuples only, not {type(value).__name__}")


def stable_hash(data: bytes) -> int:
    """xxh3-64 of the bytes as a signed int64: the same in every process (unlike hash(), which is salted)."""
    value = xxhash.xxh3_64_intdigest(data)
    return value - (1 << 64) if value >= 1 << 63 else value


def key_hash(kind: str, name: str, numbers: tuple[str, ...]) -> int:
    """The stable hash of a component key (anchor kind, anchor name, number path)."""
    return stable_hash(encode_key((kind, name, numbers)))


def text_hash(text: str) -> int:
    """The stable hash of a normalized full text."""
    return stable_hash(text.encode("utf-8", "surrogatepass"))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text}


@dataclass
class AddressIndex:
    """Standard addresses in memory: rows, component keys, anchor n-grams, door numbers per road."""

    # Per-row columns (positions are rows sorted by town code, then id, so that a town is one range of rows).
    ids: RowColumn  # int64 address.id per position
    full_texts: RowColumn  # str: the stored standard text
    levels: RowColumn  # str (shared str objects): door / building / room
    towns: RowColumn
    communities: RowColumn
    grids: RowColumn  # '' when the address has no grid
    lons: RowColumn
    lats: RowColumn
    parent_ids: RowColumn  # int64, -1 for none
    # Hash tables as sorted numpy arrays (12 bytes an entry instead of ~150 for a dict of Python objects):
    # 3 M addresses stay within the memory budget. Text hits are verified against the text itself.
    by_text: HashTable | None = None
    by_key: HashTable | None = None
    anchor_towns: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    anchor_grams: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    # (compound or park, name) → its phases (期/区): a building typed without its phase is looked for in each.
    anchor_phases: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # (kind, phonetic key) → anchor names of that sound: a name with homophone slips anywhere finds its candidates.
    anchor_sounds: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # (kind, name with one character masked) → anchor names: a look-alike slip anywhere finds its candidates too.
    anchor_masks: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    road_doors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (town_code, road token) → the road's standard spelling: tokens fold homophones (旺隆路 → 旺龙路), answers must not.
    road_names: dict[tuple[str, str], str] = field(default_factory=dict)
    normalized_texts: RowColumn = field(default_factory=list)
    # Address ids sorted, and the position of each: finds an address's row without reading the per-row ids.
    sorted_ids: np.ndarray | None = None
    id_positions: np.ndarray | None = None

    @classmethod
    def build(cls, rows: pd.DataFrame, *, workers: int = 2) -> AddressIndex:
        """Index the rows of `address_library.repository.index_rows` (positions, not ids, are stored).

        Components repeat a lot (栋 numbers, road names), so each distinct value is reduced to its token once
        and the tokens are spread back by position; the full texts are normalized on `workers` processes.
        """
        rows = rows.sort_values(["town_code", "id"], kind="stable").reset_index(drop=True)
        full_texts = rows["full_text"].to_numpy(dtype=object)
        town, level = _shared(rows["town_code"]), _shared(rows["level"])
        index = cls(
            ids=rows["id"].to_numpy(dtype=np.int64),
            full_texts=full_texts,
            levels=level,
            towns=town,
            communities=_shared(rows["community_code"]),
            grids=_shared(rows["grid_code"].fillna("")),
            lons=rows["lon"].to_numpy(dtype=float),
            lats=rows["lat"].to_numpy(dtype=float),
            parent_ids=rows["parent_id"].fillna(-1).to_numpy(dtype=np.int64),
        )
        normalized = normalize_many(full_texts.tolist(), workers=workers)
        # Most standard texts are already normal: keep one string object for both.
        index.normalized_texts = [o if o == n else n for o, n in zip(full_texts.tolist(), normalized, strict=True)]
        index.by_text = HashTable.build([text_hash(t) for t in index.normalized_texts], np.arange(len(full_texts)))
        numbers = _numbers_by_row(rows)
        anchors = {
            "compound": _tokens(rows["compound"], name_token),
            "park": _tokens(rows["park"], name_token),
            "road": _tokens(rows["road_name"], name_token),
            "village": _village_tokens(rows),
        }
        key_hashes: list[int] = []
        key_positions: list[int] = []
        anchor_towns: dict[tuple[str, str], set[str]] = defaultdict(set)
        phases: dict[tuple[str, str], set[str]] = defaultdict(set)
        for kind in ANCHOR_KINDS:
            names = anchors[kind]
            for i in np.flatnonzero(names != "").tolist():
                name = names[i]
                # A compound or park address is found by its own name without the road it stands on.
                key_numbers = numbers[i] if kind in ("road", "village") else _without_door(numbers[i], {})
                if kind in ("compound", "park") and len(key_numbers) > 2 and key_numbers[2]:
                    phases[(kind, name)].add(key_numbers[2])
                key_hashes.append(key_hash(kind, name, key_numbers))
                key_positions.append(i)
                anchor_towns[(kind, name)].add(town[i])
        index.by_key = HashTable.build(key_hashes, np.array(key_positions, dtype=np.int64))
        del key_hashes, key_positions
        index.anchor_towns = dict(anchor_towns)
        index.anchor_phases = {k: tuple(sorted(v)) for k, v in phases.items()}
        grams: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        for kind, name in anchor_towns:
            for gram in _bigrams(name.split("|")[0] if kind == "village" else name):
                grams[kind][gram].append((kind, name))
        index.anchor_grams = {k: dict(v) for k, v in grams.items()}
        sounds: dict[tuple[str, str], list[str]] = defaultdict(list)
        for kind, name in anchor_towns:
            for key in phonetic_keys(name.split("|")[0] if kind == "village" else name):
                sounds[(kind, key)].append(name)
        index.anchor_sounds = dict(sounds)
        masks: dict[tuple[str, str], list[str]] = defaultdict(list)
        for kind, name in anchor_towns:
            probe = name.split("|")[0] if kind == "village" else name
            for i in range(len(probe)):
                masks[(kind, probe[:i] + "\0" + probe[i + 1 :])].append(name)
        index.anchor_masks = dict(masks)
        door = _tokens(rows["door_no"], core_token)
        sub = _tokens(rows["sub_no"], core_token)
        doors: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        road = anchors["road"]
        road_names = rows["road_name"].to_numpy(dtype=object)
        for i in np.flatnonzero(road != "").tolist():
            index.road_names.setdefault((town[i], road[i]), str(road_names[i]))
        for i in np.flatnonzero((road != "") & (level == "door") & (sub == "")).tolist():
            if door[i].isdigit():
                doors[(town[i], road[i])].append((int(door[i]), i))
        for road_key, pairs in doors.items():
            pairs.sort()
            index.road_doors[road_key] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        ids = np.asarray(index.ids)
        index.id_positions = np.argsort(ids, kind="stable").astype(np.int64)
        index.sorted_ids = ids[index.id_positions]
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def anchor_candidates(self, kind: str, name: str, limit: int = 30) -> list[str]:
        """Names of `kind` sharing the most bigrams with `name` (the blocking step of the fuzzy path)."""
        table = self.anchor_grams.get(kind, {})
        probe = name.split("|")[0] if kind == "village" else name
        counts: dict[str, int] = defaultdict(int)
        for gram in _bigrams(probe):
            for _, candidate in table.get(gram, ()):
                counts[candidate] += 1
        ranked = [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
        same_sound = {n for key in phonetic_keys(probe) for n in self.anchor_sounds.get((kind, key), ())}
        for i in range(len(probe)):
            same_sound.update(self.anchor_masks.get((kind, probe[:i] + "\0" + probe[i + 1 :]), ()))
        return [*sorted(n for n in same_sound if n not in ranked), *ranked]

    def lookup(self, kind: str, name: str, numbers: tuple[str, ...]) -> list[int]:
        """Row positions with exactly this anchor and number path."""
        if self.by_key is None:
            return []
        return self.by_key.get(key_hash(kind, name, numbers))

    def exact(self, normalized_text: str) -> int | None:
        """The position whose normalized full text is exactly this one, or None."""
        if self.by_text is None:
            return None
        for position in self.by_text.get(text_hash(normalized_text)):
            if self.normalized_texts[position] == normalized_text:
                return position
        return None

    def position_of(self, address_id: int) -> int | None:
        """The row position of an address id, or None when the index does not hold it."""
        if self.sorted_ids is None or self.id_positions is None:
            return None
        k = int(np.searchsorted(self.sorted_ids, address_id))
        if k == len(self.sorted_ids) or int(self.sorted_ids[k]) != address_id:
            return None
        return int(self.id_positions[k])


def _without_door(numbers: tuple[str, ...], row: Mapping[str, object]) -> tuple[str, ...]:
    """The number path of a compound or park address without the road door it may also carry."""
    return ("", "", *numbers[2:]) if len(numbers) > 2 else ()


def _tokens(column: pd.Series, reduce: Callable[[object], str]) -> np.ndarray:
    """`reduce` applied once per distinct value of a column, spread back to every row (object array)."""
    codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
    reduced = np.array([reduce(u) for u in uniques] + [""], dtype=object)
    return reduced[codes]


def _village_tokens(rows: pd.DataFrame) -> np.ndarray:
    village = _tokens(rows["village"], name_token)
    lane = _tokens(rows["lane"], name_token)
    has = (village != "") | (lane != "")
    out = np.full(len(rows), "", dtype=object)
    out[has] = [f"{v}|{ln}" for v, ln in zip(village[has], lane[has], strict=True)]
    return out


def _numbers_by_row(rows: pd.DataFrame) -> list[tuple[str, ...]]:
    columns = [_tokens(rows[f], core_token).tolist() for f in NUMBER_FIELDS]
    out: list[tuple[str, ...]] = []
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # millions of rows, a few thousand distinct paths
    for values in zip(*columns, strict=True):
        n = len(values)
        while n and not values[n - 1]:
            n -= 1
        path = tuple(values[:n])
        out.append(shared.setdefault(path, path))
    return out


def _normalize_chunk(texts: list[str]) -> list[str]:
    return [normalize(t) for t in texts]


def normalize_many(texts: list[str], *, workers: int = 2) -> list[str]:
    """normalize() over many texts, on `workers` forked processes when there are enough to be worth it."""
    if workers <= 1 or len(texts) < 200_000 or "fork" not in multiprocessing.get_all_start_methods():
        return _normalize_chunk(texts)
    size = -(-len(texts) // (workers * 4))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return [t for part in pool.map(_normalize_chunk, chunks) for t in part]


def _shared(column: pd.Series) -> np.ndarray:
    """An object array of a column whose repeated values are one str object each (codes, levels)."""
    codes, uniques = pd.factorize(column.astype(object))
    return np.array([*uniques, ""], dtype=object)[codes]


class HashTable:
    """A read-only multimap from 64-bit hashes to row positions, as two sorted numpy arrays."""

    def __init__(self, hashes: np.ndarray, positions: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._positions = positions[order].astype(np.int32)

    @classmethod
    def from_sorted(cls, hashes: np.ndarray, positions: np.ndarray) -> HashTable:
        """From arrays already sorted by hash (a saved table: nothing is copied, memory maps stay mapped)."""
        table = cls.__new__(cls)
        table._hashes, table._positions = hashes, positions
        return table

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(hashes sorted, positions): what a saved table is made of."""
        return self._hashes, self._positions

    @classmethod
    def build(cls, hashes: list[int], positions: np.ndarray) -> HashTable:
        """From Python hashes (any int: reduced to int64) and their positions."""
        return cls(np.array(hashes, dtype=np.int64), np.asarray(positions))

    def get(self, key_hash: int) -> list[int]:
        """Positions stored under this hash (usually zero or one)."""
        h = np.int64(key_hash)
        lo = int(np.searchsorted(self._hashes, h, side="left"))
        if lo == len(self._hashes) or self._hashes[lo] != h:
            return []
        hi = int(np.searchsorted(self._hashes, h, side="right"))
        return self._positions[lo:hi].tolist()

    def __len__(self) -> int:
        return len(self._hashes)
