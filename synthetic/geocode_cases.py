"""synthetic.geocode_cases: labelled addresses for judging and calibrating the geocoder, beyond the registrations.

Two sets the entity registrations do not hold:

- **IME slips**: a library address as people type it (the usual noise), then one or two characters anywhere in it
  replaced by what a pinyin or shape input method offers instead: a common character (GB2312 level 1) with the
  same reading, or one from the look-alike list. Town, community, road endings, 号, 栋, 单元 are all fair game.
- **Absent addresses**: what the library does not hold, typed the same way. A compound of a new name, a road of a
  new name, a door number the road does not have, a building number the compound does not have, a compound typed
  with a community it is not in, a road or compound that only another town holds (人民路 is in every town; the
  typed town's may be new). New names come from the same vocabularies as the library's (synthetic.names) and
  are checked only to be new: a new name may sound or look like a held one, as new roads and compounds do.

Each case carries its truth at every level, so an answer is judged at the level it states: a door answer must be
the address meant (or an address above it), a road answer must name the road, a community or town answer the
community or town. An absent address has no door to be right about.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from address_library.slips import lookalikes, primary_reading
from grids.codes import town_of
from synthetic import names
from synthetic.noise import render_raw_address

ABSENT_KINDS = (
    "new_compound",
    "new_road",
    "missing_door",
    "missing_building",
    "wrong_community",
    "road_of_another_town",
    "compound_of_another_town",
)


@dataclass(frozen=True)
class GeocodeCase:
    """One typed address and what a right answer is at each level."""

    text: str
    kind: str  # "ime_slip", an absent kind, or the noise kinds of a registration joined by "|"
    absent: bool
    truth_id: int | None  # the address meant; for missing_building, the compound address it hangs on
    town_code: str
    communities: frozenset[str]  # a community answer naming one of these is right
    road: str | None  # the road a road answer must name (library spelling); None when no road is known
    grid_code: str | None  # the grid of the address meant (in-library cases)


@lru_cache(maxsize=1)
def _common_by_reading() -> dict[str, tuple[str, ...]]:
    """GB2312 level-1 characters (the 3,755 most common) grouped by their usual toneless reading."""
    groups: dict[str, list[str]] = {}
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                char = bytes((hi, lo)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            groups.setdefault(primary_reading(char), []).append(char)
    return {k: tuple(v) for k, v in groups.items()}


def slip_character(char: str, rng: random.Random) -> str | None:
    """A character an input method could give instead of `char` (None when it offers none)."""
    same_sound = [c for c in _common_by_reading().get(primary_reading(char), ()) if c != char]
    same_shape = sorted(lookalikes(char))
    if same_shape and (not same_sound or rng.random() < 0.3):
        return rng.choice(same_shape)
    return rng.choice(same_sound) if same_sound else None


def add_slips(text: str, rng: random.Random, count: int) -> str:
    """`text` with `count` of its Chinese characters (anywhere) replaced by input-method slips."""
    chars = list(text)
    spots = [i for i, c in enumerate(chars) if "\u4e00" <= c <= "\u9fff"]
    rng.shuffle(spots)
    done = 0
    for i in spots:
        if done == count:
            break
        slip = slip_character(chars[i], rng)
        if slip is not None:
            chars[i] = slip
            done += 1
    return "".join(chars)


class CaseMaker:
    """Draws cases from the library's rows (address_library.repository.index_rows) and the place names."""

    def __init__(self, rows: pd.DataFrame, towns: Mapping[str, str], communities: Mapping[str, str], seed: int) -> None:
        self.rows = rows.reset_index(drop=True).copy()
        for column in self.rows.columns:
            if self.rows[column].dtype == "string":
                self.rows[column] = self.rows[column].replace("", pd.NA)
        self.towns = dict(towns)
        self.communities = dict(communities)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.by_id = dict(zip(self.rows["id"].astype(int), range(len(self.rows)), strict=True))
        self.compounds = {str(n) for n in self.rows["compound"].dropna().unique()}
        self.roads = {str(n) for n in self.rows["road_name"].dropna().unique()}
        doors: dict[tuple[str, str], set[str]] = {}
        buildings: dict[int, set[str]] = {}
        for town, road, door in self.rows[["town_code", "road_name", "door_no"]].dropna().itertuples(index=False):
            doors.setdefault((town, road), set()).add(str(door))
        for parent, building in self.rows[["parent_id", "building"]].dropna().itertuples(index=False):
            buildings.setdefault(int(parent), set()).add(str(building))
        self.doors = doors
        self.buildings = buildings
        self.compound_communities: dict[tuple[str, str], set[str]] = {}
        for town, compound, community in (
            self.rows[["town_code", "compound", "community_code"]].dropna().itertuples(index=False)
        ):
            self.compound_communities.setdefault((town, compound), set()).add(community)
        self.communities_of_town: dict[str, list[str]] = {}
        for code in sorted(self.communities):
            self.communities_of_town.setdefault(town_of(code), []).append(code)

    # ------------------------------------------------------------------ helpers

    def _record(self, position: int) -> dict[str, Any]:
        row = self.rows.iloc[position].to_dict()
        return {str(k): (None if pd.isna(v) else v) for k, v in row.items()}

    def _render(self, row: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        town = self.towns.get(str(row["town_code"]), "")
        community = self.communities.get(str(row["community_code"]), "")
        return render_raw_address(row, town, community, self.rng)

    def _pick(self, mask: pd.Series, count: int) -> list[int]:
        positions = np.flatnonzero(mask.to_numpy())
        if len(positions) == 0:
            return []
        chosen = self.np_rng.choice(positions, size=min(count, len(positions)), replace=False)
        return sorted(int(p) for p in chosen)

    def _new_name(self, make: Any, held: set[str]) -> str:
        # Only the very name must be new: a new road may well sound or look like a held one (竹永路 beside 宁永路),
        # and the geocoder must not take it for a slip of it with confidence.
        for _ in range(200):
            name = make()
            if name not in held:
                return name
        raise RuntimeError("no new name left to invent")

    def _case(self, text: str, kind: str, row: Mapping[str, Any], *, absent: bool, truth_id: int | None = None,
              road: str | None = None, extra_communities: Iterable[str] = ()) -> GeocodeCase:  # fmt: skip
        return GeocodeCase(
            text=text,
            kind=kind,
            absent=absent,
            truth_id=truth_id,
            town_code=str(row["town_code"]),
            communities=frozenset({str(row["community_code"]), *extra_communities}),
            road=road,
            grid_code=None if absent else (str(row["grid_code"]) if row.get("grid_code") else None),
        )

    # ------------------------------------------------------------------ sets

    def slips(self, count: int) -> list[GeocodeCase]:
        """Library addresses typed with one (80%) or two input-method slips anywhere."""
        out = []
        for position in self._pick(self.rows["id"].notna(), count):
            row = self._record(position)
            text, _ = self._render(row)
            slipped = add_slips(text, self.rng, 1 if self.rng.random() < 0.8 else 2)
            out.append(self._case(slipped, "ime_slip", row, absent=False, truth_id=int(row["id"]),
                                  road=row.get("road_name")))  # fmt: skip
        return out

    def retyped(self, count: int) -> list[GeocodeCase]:
        """Library addresses in forms the registrations lack, in equal parts: the phase (一期) left out, the town and
        community written after the rest, the label of a form field (住址：, 收货地址) in front."""
        out: list[GeocodeCase] = []
        phased = self.rows["phase"].notna() & self.rows["building"].notna()
        for position in self._pick(phased, count // 3):
            row = self._record(position)
            text, _ = self._render({**row, "phase": None, "full_text": None})
            out.append(self._case(text, "phase_dropped", row, absent=False, truth_id=int(row["id"]),
                                  road=row.get("road_name")))  # fmt: skip
        for position in self._pick(self.rows["road_name"].notna() & self.rows["door_no"].notna(), count // 3):
            row = self._record(position)
            town = self.towns.get(str(row["town_code"]), "")
            text, _ = self._render({**row, "full_text": None})
            body = text.split(town, 1)[1] if town and town in text else text
            community = self.communities.get(str(row["community_code"]), "")
            tail = self.rng.choice((f"，{town}", f" {town}{community}", f"({town}{community})", f"，广东东莞{town}"))
            out.append(self._case(body + tail, "town_last", row, absent=False, truth_id=int(row["id"]),
                                  road=row.get("road_name")))  # fmt: skip
        for position in self._pick(self.rows["id"].notna(), count - 2 * (count // 3)):
            row = self._record(position)
            text, _ = self._render(row)
            label = self.rng.choice(("住址：", "地址:", "收货地址：", "家住", "现住", "送到", "详细地址 "))
            out.append(self._case(label + text, "form_label", row, absent=False, truth_id=int(row["id"]),
                                  road=row.get("road_name")))  # fmt: skip
        return out

    def absent(self, count: int) -> list[GeocodeCase]:
        """Addresses the library does not hold, `count` in all, in equal parts of each absent kind."""
        per_kind = -(-count // len(ABSENT_KINDS))
        out = [
            *self._new_compounds(per_kind),
            *self._new_roads(per_kind),
            *self._missing_doors(per_kind),
            *self._missing_buildings(per_kind),
            *self._wrong_communities(per_kind),
            *self._elsewhere("road_name", per_kind),
            *self._elsewhere("compound", per_kind),
        ]
        self.rng.shuffle(out)
        return out[:count]

    def _new_compounds(self, count: int) -> list[GeocodeCase]:
        out = []
        compounds = self.rows["compound"].notna()
        for position in self._pick(compounds, count):
            row = self._record(position)
            stem = names.community_stem(self.communities.get(str(row["community_code"]), ""))
            row["compound"] = self._new_name(lambda s=stem: names.compound_name(self.np_rng, s), self.compounds)
            row["road_name"] = row["door_no"] = row["sub_no"] = None
            row.pop("full_text", None)
            text, _ = self._render(row)
            out.append(self._case(text, "new_compound", row, absent=True))
        return out

    def _new_roads(self, count: int) -> list[GeocodeCase]:
        out = []
        roads = self.rows["road_name"].notna() & self.rows["door_no"].notna() & self.rows["compound"].isna()
        for position in self._pick(roads, count):
            row = self._record(position)
            stem = names.community_stem(self.communities.get(str(row["community_code"]), ""))
            kind = self.rng.choice(("路", "路", "街", "大道"))
            row["road_name"] = self._new_name(lambda s=stem, k=kind: names.road_base(self.np_rng, s) + k,
                                              self.roads)  # fmt: skip
            row.pop("full_text", None)
            text, _ = self._render(row)
            out.append(self._case(text, "new_road", row, absent=True))
        return out

    def _missing_doors(self, count: int) -> list[GeocodeCase]:
        out = []
        roads = (
            self.rows["road_name"].notna()
            & self.rows["door_no"].notna()
            & self.rows["compound"].isna()
            & (self.rows["level"] == "door")
        )
        for position in self._pick(roads, count):
            row = self._record(position)
            held = self.doors.get((row["town_code"], row["road_name"]), set())
            numbers = [int(d) for d in (str(x).rstrip("号") for x in held) if d.isdigit()]
            top = max(numbers, default=0)
            door = top + self.rng.choice((2, 4, 6, 10, 20, 40, 100))
            while str(door) in held or f"{door}号" in held:
                door += 2
            row["door_no"] = str(door)
            row["sub_no"] = None
            row.pop("full_text", None)
            text, _ = self._render(row)
            out.append(self._case(text, "missing_door", row, absent=True, road=row["road_name"]))
        return out

    def _missing_buildings(self, count: int) -> list[GeocodeCase]:
        out = []
        buildings = (self.rows["level"] == "building") & self.rows["parent_id"].notna() & self.rows["building"].notna()
        for position in self._pick(buildings, count):
            row = self._record(position)
            parent = int(row["parent_id"])
            held = self.buildings.get(parent, set())
            number = len(held) + self.rng.randint(3, 30)
            while any(str(number) in str(b) for b in held):
                number += 1
            row["building"] = f"{number}栋"
            row.pop("full_text", None)
            text, _ = self._render(row)
            parent_row = self._record(self.by_id[parent]) if parent in self.by_id else row
            out.append(self._case(text, "missing_building", parent_row, absent=True, truth_id=parent,
                                  road=row.get("road_name")))  # fmt: skip
        return out

    def _wrong_communities(self, count: int) -> list[GeocodeCase]:
        out: list[GeocodeCase] = []
        compounds = self.rows["compound"].notna() & (self.rows["level"] == "door")
        for position in self._pick(compounds, count * 2):
            if len(out) == count:
                break
            row = self._record(position)
            town, compound = str(row["town_code"]), str(row["compound"])
            holders = self.compound_communities.get((town, compound), set())
            others = [c for c in self.communities_of_town.get(town, []) if c not in holders]
            if not others:
                continue
            typed = self.rng.choice(others)
            community_name = self.communities[typed]
            text = f"{self.towns.get(town, '')}{community_name}{compound}"
            # Truth: the compound is not known in the typed community; its town and the typed community are.
            out.append(self._case(text, "wrong_community", {**row, "community_code": typed}, absent=True,
                                  extra_communities=holders))  # fmt: skip
        return out

    def _elsewhere(self, column: str, count: int) -> list[GeocodeCase]:
        """A held road (with its door) or compound typed in a town that holds no road or compound of that name."""
        kind = "road_of_another_town" if column == "road_name" else "compound_of_another_town"
        held = self.rows[column].notna() & (self.rows["level"] == "door")
        if column == "road_name":
            held &= self.rows["door_no"].notna() & self.rows["compound"].isna()
        towns_of = self.rows[held].groupby(column)["town_code"].agg(set).to_dict()
        towns = sorted(self.towns)
        out: list[GeocodeCase] = []
        for position in self._pick(held, count):
            row = self._record(position)
            others = [t for t in towns if t not in towns_of.get(row[column], set()) and t in self.communities_of_town]
            if not others:
                continue
            town = self.rng.choice(others)
            community = self.rng.choice(self.communities_of_town[town])
            moved = {**row, "town_code": town, "community_code": community, "full_text": None}
            if column == "road_name":
                moved["grid_code"] = None
            text, _ = self._render(moved)
            out.append(self._case(text, kind, moved, absent=True))
        return out
