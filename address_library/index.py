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

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from address_library.normalize import normalize
from address_library.parse import fold_homophones

# Numbered components in the order they refine an address.
NUMBER_FIELDS = ("door_no", "sub_no", "phase", "building", "unit", "floor", "room", "stall")
# Anchor kinds, in the order a query tries them (the most specific first).
ANCHOR_KINDS = ("compound", "park", "road", "village")

_UNIT_SUFFIX = re.compile(r"(?:号楼|号院|单元|栋|座|幢|楼|层|室|房|号|期|区|档|铺|#)$")
_LEADING = re.compile(r"^第")

Key = tuple[str, str, tuple[str, ...]]  # (anchor kind, anchor name, numbers)


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


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text}


@dataclass
class AddressIndex:
    """Standard addresses in memory: rows, component keys, anchor n-grams, door numbers per road."""

    rows: pd.DataFrame
    by_text: dict[str, int] = field(default_factory=dict)
    by_key: dict[Key, list[int]] = field(default_factory=dict)
    anchor_towns: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    anchor_grams: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    road_doors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: pd.DataFrame) -> AddressIndex:
        """Index the rows of `address_library.repository.index_rows` (positions, not ids, are stored)."""
        rows = rows.reset_index(drop=True)
        index = cls(rows=rows)
        index.by_text = {normalize(t): i for i, t in enumerate(rows["full_text"].tolist())}
        by_key: dict[Key, list[int]] = defaultdict(list)
        anchor_towns: dict[tuple[str, str], set[str]] = defaultdict(set)
        doors: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
        for i, row in enumerate(records):
            numbers = numbers_of(row)
            for kind, name in anchors_of(row):
                # A compound or park address is found by its own name without the road it stands on.
                key_numbers = numbers if kind in ("road", "village") else _without_door(numbers, row)
                by_key[(kind, name, key_numbers)].append(i)
                anchor_towns[(kind, name)].add(str(row["town_code"]))
            road = name_token(row.get("road_name"))
            door = core_token(row.get("door_no"))
            if road and door.isdigit() and row["level"] == "door" and not core_token(row.get("sub_no")):
                doors[(str(row["town_code"]), road)].append((int(door), i))
        index.by_key = dict(by_key)
        index.anchor_towns = dict(anchor_towns)
        grams: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        for kind, name in anchor_towns:
            for gram in _bigrams(name.split("|")[0] if kind == "village" else name):
                grams[kind][gram].append((kind, name))
        index.anchor_grams = {k: dict(v) for k, v in grams.items()}
        for key, pairs in doors.items():
            pairs.sort()
            index.road_doors[key] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        has_parent = rows["parent_id"].notna().to_numpy()
        parent_pos = pd.Index(rows["id"].to_numpy()).get_indexer(
            rows["parent_id"][has_parent].astype("int64").to_numpy()
        )
        kids: dict[int, list[int]] = defaultdict(list)
        for child, parent in zip(np.flatnonzero(has_parent).tolist(), parent_pos.tolist(), strict=True):
            if parent >= 0:
                kids[parent].append(child)
        index.children = dict(kids)
        return index

    def __len__(self) -> int:
        return len(self.rows)

    def anchor_candidates(self, kind: str, name: str, limit: int = 30) -> list[str]:
        """Names of `kind` sharing the most bigrams with `name` (the blocking step of the fuzzy path)."""
        table = self.anchor_grams.get(kind, {})
        probe = name.split("|")[0] if kind == "village" else name
        counts: dict[str, int] = defaultdict(int)
        for gram in _bigrams(probe):
            for _, candidate in table.get(gram, ()):
                counts[candidate] += 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [name for name, _ in ranked[:limit]]

    def lookup(self, kind: str, name: str, numbers: tuple[str, ...]) -> list[int]:
        """Row positions with exactly this anchor and number path."""
        return self.by_key.get((kind, name, numbers), [])


def _without_door(numbers: tuple[str, ...], row: Mapping[str, object]) -> tuple[str, ...]:
    """The number path of a compound or park address without the road door it may also carry."""
    trimmed = ("", "", *numbers[2:]) if len(numbers) > 2 else ()
    return trimmed
