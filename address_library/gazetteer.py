"""address_library.gazetteer: the town and community names in every form people write them, for longest-match
lookup (built from grids.reference and the alias table).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from address_library.errors import AddressLibraryError
from address_library.lexicon import FOLD, OTHER_PLACES, PLACE_GUARD, STEM_GUARD, alternation
from grids.reference import short_community_name

# The three NBS parks without a polygon of their own (their land lies in neighbouring towns) are not towns here.
PARKS_WITHOUT_TOWN = frozenset({"441900402000", "441900403000", "441900404000"})
_MAX_FORM = 16


@dataclass(frozen=True)
class Place:
    """What one written form of a name points to: a community (or town) and whether the form is a bare stem."""

    code: str
    name: str
    town_code: str
    is_stem: bool = False


class Gazetteer:
    """Town and community names in every form people write them, for longest-match lookup."""

    def __init__(
        self,
        towns: Iterable[tuple[str, str]],
        communities: Iterable[tuple[str, str, str]],
        aliases: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """towns: (code, official name); communities: (code, name, town code); aliases: (alias, canonical, kind)."""
        self.town_names: dict[str, str] = {}
        self.town_at_start: dict[str, str] = {}
        self.town_anywhere: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for code, name in towns:
            self.town_names[code] = name
            by_name[name] = code
            short = _town_short(name)
            self._add_town(name, code, anywhere=True)
            for suffix in ("镇", "街道", "区"):
                self._add_town(short + suffix, code, anywhere=len(short) >= 2)
            self._add_town(short, code, anywhere=False)
        for alias, canonical, kind in aliases:
            if canonical not in by_name:
                raise AddressLibraryError(f"alias {alias!r} names an unknown town {canonical!r}")
            code = by_name[canonical]
            self._add_town(alias, code, anywhere=kind == "old_form")
            if kind == "typo":
                for suffix in ("镇", "街道", "区"):
                    self._add_town(alias + suffix, code, anywhere=True)
        self.community_names: dict[str, tuple[str, str]] = {}
        self.local: dict[str, dict[str, Place | None]] = {code: {} for code in self.town_names}
        self.local_folded: dict[str, dict[str, Place | None]] = {code: {} for code in self.town_names}
        self.city: dict[str, Place | None] = {}
        self.city_folded: dict[str, Place | None] = {}
        for code, name, town_code in communities:
            if town_code not in self.local:
                continue
            short = short_community_name(name)
            self.community_names[code] = (short, town_code)
            stem = community_stem(short)
            forms = {name, short}
            if stem != short:
                for suffix in ("社区", "村", "居委会", "社区居委会", "村委会", "村委", "村民委员会", "居民委员会"):
                    forms.add(stem + suffix)
                forms.update({stem + "管理区", stem + "管区"})
            for form in forms:
                place = Place(code, short, town_code)
                self._add_community(form, place, town_code)
            if stem != short and len(stem) >= 2:
                self._add_community(stem, Place(code, short, town_code, is_stem=True), town_code)
        self.town_anywhere_re = re.compile(alternation(self.town_anywhere))
        self.max_form = min(_MAX_FORM, max(len(k) for k in (*self.town_at_start, *self.city, "")))
        # Per first character, the longest form starting with it: most windows need one or two dict lookups.
        self.longest: dict[str, int] = {}
        for key in (*self.town_at_start, *self.city, *self.city_folded):
            if key:
                self.longest[key[0]] = min(_MAX_FORM, max(self.longest.get(key[0], 0), len(key)))
        taken = [k for k in (*self.town_at_start, *self.city) if len(k) >= 2]
        # A foreign place name that begins a Dongguan name (a community called 中山…) is not evidence.
        self.other_places = _other_places(taken)

    def _add_town(self, form: str, code: str, *, anywhere: bool) -> None:
        if len(form) < 2:
            return
        self.town_at_start.setdefault(form, code)
        if anywhere:
            self.town_anywhere.setdefault(form, code)

    def _add_community(self, form: str, place: Place, town_code: str) -> None:
        for table, key in (
            (self.local[town_code], form),
            (self.city, form),
            (self.local_folded[town_code], form.translate(FOLD)),
            (self.city_folded, form.translate(FOLD)),
        ):
            _put(table, key, place)

    def match_town(self, text: str, pos: int) -> tuple[str, int] | None:
        """The longest town form starting at pos: (town code, end)."""
        if pos >= len(text):
            return None
        longest = self.longest.get(text[pos], 0)
        for end in range(min(len(text), pos + longest), pos + 1, -1):
            code = self.town_at_start.get(text[pos:end])
            if code is not None:
                return code, end
        return None

    def match_community(
        self, text: str, folded: str, pos: int, town_code: str | None, *, stems: bool = True
    ) -> tuple[Place, int] | None:
        """The longest community form starting at pos, exact first, then through the typo fold."""
        exact = self.local[town_code] if town_code else self.city
        tolerant = self.local_folded[town_code] if town_code else self.city_folded
        if pos >= len(text):
            return None
        top = min(len(text), pos + max(self.longest.get(text[pos], 0), self.longest.get(folded[pos], 0)))
        best: tuple[Place, int] | None = None
        # Exact first; a longer form through the fold wins (上沙存 is 上沙村 whole, not the stem 上沙 and a 存).
        for table, source, min_len in ((exact, text, 2), (tolerant, folded, 3)):
            low = max(pos + min_len - 1, best[1] if best else pos)
            for end in range(top, low, -1):
                place = table.get(source[pos:end])
                if place is None:
                    continue
                if place.is_stem and (not stems or STEM_GUARD.match(text, end)):
                    continue
                if PLACE_GUARD.match(text, end):
                    continue
                best = place, end
                break
        return best


def _other_places(taken: list[str]) -> re.Pattern[str]:
    """Another city's name opening an address. One that begins a Dongguan name (a community called 中山…) counts only
    followed by 市 or 省 (中山市莞荣路…): no Dongguan name reads so."""
    shared = [p for p in OTHER_PLACES if any(k.startswith(p) for k in taken)]
    free = [p for p in OTHER_PLACES if p not in shared]
    patterns = [alternation(free)] if free else []
    if shared:
        patterns.append(f"(?:{alternation(shared)})(?:市|省)")
    return re.compile("|".join(patterns) or "(?!)")


def _put(table: dict[str, Place | None], key: str, place: Place) -> None:
    """Record a form; a form two communities share is useless (None), except that a full name beats a stem."""
    if key not in table:
        table[key] = place
        return
    old = table[key]
    if old is None:
        return
    if old.is_stem and not place.is_stem:
        table[key] = place
    elif old.code != place.code and not (place.is_stem and not old.is_stem):
        table[key] = None


def _town_short(name: str) -> str:
    for suffix in ("街道", "镇"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def community_stem(short_name: str) -> str:
    """The bare place word of a community: 新安社区 → 新安, 上沙村 → 上沙; 一村 and 大屏障生活区 stay whole."""
    stem = short_name
    if stem.endswith("社区") and len(stem) > 3:
        stem = stem[:-2]
    while stem.endswith("村") and len(stem) > 2:
        stem = stem[:-1]
    return stem


def read_aliases() -> list[tuple[str, str, str]]:
    """The alias table shipped in address_library/data/aliases.csv as (alias, canonical, kind)."""
    path = resources.files("address_library") / "data" / "aliases.csv"
    with path.open(encoding="utf-8") as handle:
        return [(row["alias"], row["canonical"], row["kind"]) for row in csv.DictReader(handle)]


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The gazetteer of the 33 real towns and their communities (built once, from grids.reference)."""
    from grids.reference import read_communities, read_divisions

    divisions = read_divisions()
    towns = divisions[(divisions["level"] == "town") & ~divisions["code"].isin(PARKS_WITHOUT_TOWN)]
    town_pairs = list(zip(towns["code"].astype(str), towns["name"].astype(str), strict=True))
    communities = read_communities({code for code, _ in town_pairs})
    community_rows = zip(
        communities["code"].astype(str),
        communities["name"].astype(str),
        communities["town_code"].astype(str),
        strict=True,
    )
    return Gazetteer(town_pairs, community_rows, read_aliases())
