"""address_library.match: a typed address → the standard address, with a match level and an honest confidence.

Steps, cheapest first, each tried only when the previous one found nothing:

1. exact text: the normalized query equals a standard address's normalized full text;
2. exact components: the parsed query's anchor (compound, park, road or natural village) and number path
   (door, sub-number, phase, building, unit, floor, room, stall) equal an address's — so 东莞市, 3座 for 3栋,
   a dropped or added community, 全角 digits and 繁體 make no difference;
3. parent: a sub-number, floor, room or shop that the library does not hold resolves to the nearest
   address above it (confidence < 0.9);
4. fuzzy anchor: a misspelt anchor name is looked up through the anchor bigram index (never a full scan) and
   scored with rapidfuzz, then steps 2–3 run with the corrected name; two near-equal candidates give
   `ambiguous`, never a guess;
5. road: the door number is not in the library but the road is: the point is interpolated between the nearest
   door numbers on that road; intersections (A路与B路交叉口) and relative locations (对面, 东侧) also answer at
   road level;
6. community, then town: their representative points.

Confidence bands: ≥ 0.95 exact or exact-by-components with the town confirmed; 0.90–0.95 exact components
without a town, or one fuzzy correction confirmed by the town and the full number path; 0.80–0.89 parent
addresses, conflicting towns, shop notes; ≤ 0.7 road, ≤ 0.4 community, ≤ 0.3 town. The accuracy benchmark
measures that the ≥ 0.9 band is right at least 99.5 % of the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from address_library.index import AddressIndex, anchors_of, core_token, name_token, numbers_of
from address_library.lexicon import fold_homophones
from address_library.normalize import Normalized, normalize_with_flags, validate
from address_library.parse import ParsedAddress, parse_normalized

MATCHED = "matched"
AMBIGUOUS = "ambiguous"
NOT_FOUND = "not_found"

# A fuzzy anchor must score at least this (rapidfuzz 0–100) to be considered, and beat the runner-up by this.
FUZZY_MIN_SCORE = 70.0
FUZZY_MARGIN = 8.0
# The longest road name looked for when the parser split a road that begins with a place name.
MAX_ROAD_CHARS = 16
# A door number beyond the road's known range is placed at most this far past its end door.
MAX_EXTRAPOLATION_M = 30.0
METRES_PER_DEGREE = 111_320.0
# Characters that tell roads of one series apart: ordinals and directions.
SERIES_CHARACTERS = frozenset("一二三四五六七八九十百零0123456789东西南北中上下前后横纵内外新旧大小")


@dataclass(frozen=True)
class Candidate:
    """One standard address that could be meant."""

    address_id: int
    standard_address: str
    level: str
    town_code: str


@dataclass(frozen=True)
class Place:
    """A named area's representative point (community, town, road)."""

    name: str
    lon: float
    lat: float
    town_code: str | None = None


@dataclass(frozen=True)
class MatchResult:
    """What the matcher found for one query."""

    status: str
    level: str | None = None
    confidence: float = 0.0
    address_id: int | None = None
    standard_address: str | None = None
    lon: float | None = None
    lat: float | None = None
    town_code: str | None = None
    community_code: str | None = None
    reason: str | None = None
    candidates: tuple[Candidate, ...] = ()

    @property
    def is_door_level(self) -> bool:
        """True for room, building and door answers."""
        return self.level in ("room", "building", "door")


@dataclass
class Territory:
    """Representative points of towns, communities and roads, for the coarse answers."""

    towns: dict[str, Place] = field(default_factory=dict)
    communities: dict[str, Place] = field(default_factory=dict)
    # (town_code, road name) → road polyline vertices (lon, lat), for intersections and door-less roads.
    roads: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


class Matcher:
    """Matches typed addresses against an AddressIndex."""

    def __init__(self, index: AddressIndex, territory: Territory) -> None:
        self.index = index
        self.territory = territory
        self.ids = index.ids
        self.texts = index.full_texts
        self.levels = index.levels
        self.towns = index.towns
        self.communities = index.communities
        self.lons = index.lons
        self.lats = index.lats
        self.grids = index.grids
        # Typed addresses a dispatcher resolved by hand (normalized text → address id): checked before anything.
        self.aliases: dict[str, int] = {}
        self._positions_by_id: dict[int, int] | None = None
        self._roads_by_town: dict[str, list[str]] = {}
        for town, road in territory.roads:
            self._roads_by_town.setdefault(town, []).append(road)

    # ------------------------------------------------------------------ entry points

    def match(self, text: str) -> MatchResult:
        """Match one typed address (raises AddressInputError for empty, over-long or binary input)."""
        validate(text)
        normalized = normalize_with_flags(text)
        if not normalized.text:
            return MatchResult(NOT_FOUND, reason="no address left after removing noise")
        alias = self._alias_position(normalized.text)
        if alias is not None:
            return self._answer(alias, 1.0, "matched through an alias a dispatcher confirmed")
        exact = self.index.exact(normalized.text)
        if exact is not None:
            result = self._answer(exact, 1.0)
            return self._relative(result, normalized.relative) if normalized.relative else result
        result = self.match_parsed(parse_normalized(normalized))
        if result.status == MATCHED and result.is_door_level:
            return result
        folded = fold_homophones(normalized.text)
        if folded == normalized.text:
            return result
        # Homophone slips can hide the very suffix that tells a village (存) or a compound (花元) apart: parse the
        # folded text too, and keep that answer when it is finer — at a confidence below 0.9.
        retry = self.match_parsed(parse_normalized(Normalized(folded, normalized.notes, normalized.relative)))
        if _rank(retry) > _rank(result):
            return replace(
                retry,
                confidence=min(retry.confidence, 0.88),
                reason=retry.reason or "a homophone slip in a place name was corrected",
            )
        return result

    def set_aliases(self, aliases: dict[str, int]) -> None:
        """Replace the learned aliases (normalized text → address id)."""
        self.aliases = dict(aliases)

    def _alias_position(self, normalized_text: str) -> int | None:
        address_id = self.aliases.get(normalized_text)
        if address_id is None:
            return None
        if self._positions_by_id is None:
            self._positions_by_id = {int(i): p for p, i in enumerate(self.ids.tolist())}
        return self._positions_by_id.get(address_id)

    def match_normalized_exact(self, normalized_text: str) -> int | None:
        """The exact path alone: the row position whose normalized full text is this one, or None."""
        return self.index.exact(normalized_text)

    def match_parsed(self, parsed: ParsedAddress) -> MatchResult:
        """Steps 2–6 for a parsed query."""
        if parsed.outside_dongguan:
            return MatchResult(NOT_FOUND, reason="outside_dongguan: the address names another city")
        if parsed.intersection and parsed.road:
            crossing = self._intersection(parsed)
            if crossing is not None:
                return crossing
        parsed = self._known_road(parsed)
        components = _components(parsed)
        numbers = numbers_of(components)
        anchors = anchors_of(components)
        result = self._by_components(parsed, anchors, numbers, fuzzy_score=None)
        if result is None:
            probes = anchors
            if not probes and parsed.remainder:
                # A name the parser could not classify (a misspelt compound suffix, say): try it as each kind.
                remainder = name_token(parsed.remainder)
                probes = [(kind, remainder) for kind in ("compound", "park", "road")]
            result = self._fuzzy(parsed, probes, numbers)
        if result is None:
            result = self._road_level(parsed, components)
        if result is None:
            result = self._area_level(parsed)
        if parsed.relative and result.status == MATCHED and result.is_door_level:
            result = self._relative(result, parsed.relative)
        return result

    # ------------------------------------------------------------------ steps

    def _known_road(self, parsed: ParsedAddress) -> ParsedAddress:
        """Re-read the road from the library when the parser split a road whose name begins with a place name.

        厚街七路, 同沙生活区路 and 松山湖虚拟三路 start with a town or community name, so the parser takes that part
        for the town or community. The longest run of text ending at the door number that the library holds as a
        road (in the typed town) is the road.
        """
        if not parsed.road or not parsed.door_no or parsed.natural_village:
            return parsed
        if self._holds("road", name_token(parsed.road), parsed.town_code):
            return parsed
        door_at = parsed.text.find(f"{parsed.door_no}号")
        before = parsed.text[:door_at] if door_at > 0 else ""
        for length in range(min(len(before), MAX_ROAD_CHARS), 1, -1):
            written = before[-length:]
            if self._holds("road", name_token(written), parsed.town_code):
                return replace(parsed, road=written, lane=None)
        return parsed

    def _holds(self, kind: str, token: str, town_code: str | None) -> bool:
        """Whether the library holds this anchor name in the typed town (anywhere when no town was typed)."""
        towns = self.index.anchor_towns.get((kind, token), set())
        return bool(towns) and (town_code is None or town_code in towns)

    def _by_components(
        self, parsed: ParsedAddress, anchors: list[tuple[str, str]], numbers: tuple[str, ...], fuzzy_score: float | None
    ) -> MatchResult | None:
        for kind, name in anchors:
            path = numbers if kind in ("road", "village") else _compound_path(numbers)
            # When the typed town holds this name, its number is looked for in that town only: the same number on
            # a namesake road of another town is another place, not a slip in the town.
            own_town = parsed.town_code if parsed.town_code and self._holds(kind, name, parsed.town_code) else None
            for depth, sub_path in enumerate(_parents(path, kind)):
                hits = self.index.lookup(kind, name, sub_path)
                if own_town is not None:
                    hits = [h for h in hits if self.towns[h] == own_town]
                if not hits:
                    continue
                return self._decide(
                    parsed, hits, parent=depth > 0, fuzzy_score=fuzzy_score, dropped=path[len(sub_path) :]
                )
        return None

    def _decide(
        self,
        parsed: ParsedAddress,
        hits: list[int],
        *,
        parent: bool,
        fuzzy_score: float | None,
        dropped: tuple[str, ...],
    ) -> MatchResult:
        hits = sorted(set(hits))
        town = parsed.town_code
        in_town = [h for h in hits if self.towns[h] == town] if town else hits
        if town and not in_town:
            # The typed town disagrees with every candidate: maybe a slip, maybe another place. Never ≥ 0.9.
            chosen, town_note = hits, "town_conflict"
        else:
            chosen, town_note = in_town, "town_confirmed" if town else "town_missing"
        if len(chosen) > 1 and parsed.community_code:
            same_community = [h for h in chosen if self.communities[h] == parsed.community_code]
            if same_community:
                chosen = same_community
        if len(chosen) > 1:
            return MatchResult(
                AMBIGUOUS,
                confidence=round(1.0 / len(chosen), 3),
                reason=f"{len(chosen)} standard addresses fit equally well",
                candidates=tuple(self._candidate(h) for h in chosen[:5]),
            )
        best = chosen[0]
        confidence = {"town_confirmed": 0.97, "town_missing": 0.93, "town_conflict": 0.8}[town_note]
        reason = None if town_note != "town_conflict" else "the typed town differs from the address found"
        if fuzzy_score is not None:
            strong = town_note == "town_confirmed" and not parent
            confidence = (0.9 + 0.05 * (fuzzy_score - FUZZY_MIN_SCORE) / (100 - FUZZY_MIN_SCORE)) if strong else 0.82
            reason = f"a place name was corrected (similarity {fuzzy_score:.0f})"
        if parent:
            confidence = min(confidence, 0.86)
            reason = f"not in the library: {'/'.join(d for d in dropped if d)}; answered with the address above it"
        if parsed.remainder and not parent:
            confidence = min(confidence, 0.88)
            reason = reason or f"shop or note '{parsed.remainder}' is not part of the standard address"
        return self._answer(best, confidence, reason)

    def _fuzzy(
        self, parsed: ParsedAddress, anchors: list[tuple[str, str]], numbers: tuple[str, ...]
    ) -> MatchResult | None:
        for kind, name in anchors:
            if self._holds(kind, name, parsed.town_code):
                # The library holds this name as typed: what is missing is a number, not a spelling slip, and
                # "correcting" the name would invent a door on another road or compound.
                continue
            scored: list[tuple[float, str]] = []
            probe = name.split("|")[0] if kind == "village" else name
            for candidate in self.index.anchor_candidates(kind, name):
                if candidate == name or (kind == "road" and _series_variant(name, candidate)):
                    continue
                target = candidate.split("|")[0] if kind == "village" else candidate
                score = float(fuzz.ratio(probe, target))
                if len(target) >= 3 and target in probe:
                    # A garbled prefix glued to the name (冬城沙明路): the name itself is intact.
                    score = max(score, 90.0)
                if kind == "village":
                    lane_q, lane_c = name.split("|")[1], candidate.split("|")[1]
                    if lane_q != lane_c:
                        score -= 15.0
                if score >= FUZZY_MIN_SCORE:
                    towns = self.index.anchor_towns.get((kind, candidate), set())
                    if parsed.town_code and parsed.town_code not in towns:
                        score -= 10.0
                    scored.append((score, candidate))
            if not scored:
                continue
            scored.sort(key=lambda sc: (-sc[0], sc[1]))
            results: list[tuple[float, MatchResult]] = []
            for score, candidate in scored[:5]:
                found = self._by_components(parsed, [(kind, candidate)], numbers, fuzzy_score=score)
                if found is not None and found.status == MATCHED:
                    results.append((score, found))
            if not results:
                continue
            if (
                len(results) > 1
                and results[0][0] - results[1][0] < FUZZY_MARGIN
                and results[0][1].address_id != results[1][1].address_id
            ):
                return MatchResult(
                    AMBIGUOUS,
                    confidence=0.5,
                    reason="two similar place names fit",
                    candidates=tuple(
                        Candidate(r.address_id or 0, r.standard_address or "", r.level or "", r.town_code or "")
                        for _, r in results[:2]
                    ),
                )
            return results[0][1]
        return None

    def _road_level(self, parsed: ParsedAddress, components: dict[str, Any]) -> MatchResult | None:
        road = name_token(components.get("road"))
        if not road:
            return None
        towns = [parsed.town_code] if parsed.town_code else sorted(self.index.anchor_towns.get(("road", road), set()))
        if not towns:
            corrected = self._closest_road(road, parsed.town_code)
            if corrected is None:
                return None
            road, towns = corrected[1], [corrected[0]]
        if len(towns) != 1:
            return None
        town = towns[0]
        door = core_token(components.get("door_no"))
        doors = self.index.road_doors.get((town, road))
        if doors is not None and door.isdigit():
            numbers, positions = doors
            lon, lat = _interpolate(int(door), numbers, self.lons[positions], self.lats[positions])
            nearest = positions[int(np.argmin(np.abs(numbers - int(door))))]
            return MatchResult(
                MATCHED,
                level="road",
                confidence=0.65,
                lon=lon,
                lat=lat,
                town_code=town,
                community_code=str(self.communities[nearest]),
                standard_address=f"{self._town_name(town)}{self._road_name(town, road)}{door}号",
                reason=f"door {door} is not in the library; placed between the nearest numbers on "
                f"{self._road_name(town, road)}",
            )
        line = self.territory.roads.get((town, road))
        if line is not None:
            mid = line[len(line) // 2]
            return MatchResult(
                MATCHED,
                level="road",
                confidence=0.5,
                lon=float(mid[0]),
                lat=float(mid[1]),
                town_code=town,
                standard_address=f"{self._town_name(town)}{self._road_name(town, road)}",
                reason="road found, no door number to place on it",
            )
        return None

    def _town_name(self, town: str) -> str:
        return self.territory.towns[town].name if town in self.territory.towns else ""

    def _road_name(self, town: str, road_token: str) -> str:
        """The standard spelling of a road known by its token in a town."""
        return self.index.road_names.get((town, road_token), road_token)

    def _closest_road(self, road: str, town: str | None) -> tuple[str, str] | None:
        best: tuple[float, str] | None = None
        for candidate in self.index.anchor_candidates("road", road, limit=10):
            score = float(fuzz.ratio(road, candidate))
            if score >= 80 and (best is None or score > best[0]):
                best = (score, candidate)
        if best is None:
            return None
        towns = sorted(self.index.anchor_towns.get(("road", best[1]), set()))
        if town in towns:
            return town, best[1]
        return (towns[0], best[1]) if len(towns) == 1 else None

    def _intersection(self, parsed: ParsedAddress) -> MatchResult | None:
        town = parsed.town_code
        first, second = name_token(parsed.road), name_token(parsed.intersection)
        towns = [town] if town else sorted(self.index.anchor_towns.get(("road", first), set()))
        for t in towns:
            a, b = self.territory.roads.get((t, first)), self.territory.roads.get((t, second))
            if a is None or b is None:
                continue
            # The closest pair of vertices of the two roads: exact enough for "at the crossing of".
            d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
            i, j = np.unravel_index(int(np.argmin(d)), d.shape)
            lon, lat = (a[i] + b[j]) / 2
            return MatchResult(
                MATCHED,
                level="road",
                confidence=0.7,
                lon=float(lon),
                lat=float(lat),
                town_code=t,
                standard_address=f"{self._town_name(t)}{self._road_name(t, first)}与{self._road_name(t, second)}交叉口",
                reason="intersection: answered at the crossing of the two roads",
            )
        return None

    def _area_level(self, parsed: ParsedAddress) -> MatchResult:
        if parsed.community_code and parsed.community_code in self.territory.communities:
            place = self.territory.communities[parsed.community_code]
            return MatchResult(
                MATCHED,
                level="community",
                confidence=0.4,
                lon=place.lon,
                lat=place.lat,
                town_code=place.town_code,
                community_code=parsed.community_code,
                standard_address=place.name,
                reason="only the community could be identified",
            )
        if parsed.town_code and parsed.town_code in self.territory.towns:
            place = self.territory.towns[parsed.town_code]
            return MatchResult(
                MATCHED,
                level="town",
                confidence=0.3,
                lon=place.lon,
                lat=place.lat,
                town_code=parsed.town_code,
                standard_address=place.name,
                reason="only the town could be identified",
            )
        return MatchResult(NOT_FOUND, reason="no known place in Dongguan found in the address")

    # ------------------------------------------------------------------ shaping

    def _answer(self, position: int, confidence: float, reason: str | None = None) -> MatchResult:
        return MatchResult(
            MATCHED,
            level=str(self.levels[position]),
            confidence=round(confidence, 3),
            address_id=int(self.ids[position]),
            standard_address=str(self.texts[position]),
            lon=float(self.lons[position]),
            lat=float(self.lats[position]),
            town_code=str(self.towns[position]),
            community_code=str(self.communities[position]),
            reason=reason,
        )

    def _candidate(self, position: int) -> Candidate:
        return Candidate(
            int(self.ids[position]), str(self.texts[position]), str(self.levels[position]), str(self.towns[position])
        )

    @staticmethod
    def _relative(result: MatchResult, relative: str) -> MatchResult:
        return MatchResult(
            MATCHED,
            level="road",
            confidence=min(result.confidence, 0.6),
            address_id=None,
            standard_address=result.standard_address,
            lon=result.lon,
            lat=result.lat,
            town_code=result.town_code,
            community_code=result.community_code,
            reason=f"relative location '{relative}': near, not at, this address",
        )


_LEVEL_RANK = {"room": 5, "building": 5, "door": 5, "road": 3, "community": 2, "town": 1}


def _rank(result: MatchResult) -> int:
    """How fine an answer is: door-level answers beat road, community and town ones; ambiguity ranks last."""
    return _LEVEL_RANK.get(result.level or "", 0) if result.status == MATCHED else 0


def _series_variant(typed: str, candidate: str) -> bool:
    """True when two road names differ only in ordinals or directions (三新三路/三新四路, 上角路/上角南路).

    Roads of one series are different roads; a name that differs from a held one only there is another (perhaps
    new) road of the series, never a typing slip to correct.
    """
    opcodes = SequenceMatcher(None, typed, candidate, autojunk=False).get_opcodes()
    changed = [typed[i1:i2] + candidate[j1:j2] for op, i1, i2, j1, j2 in opcodes if op != "equal"]
    return bool(changed) and all(set(part) <= SERIES_CHARACTERS for part in changed)


def _components(parsed: ParsedAddress) -> dict[str, Any]:
    return {
        "road": parsed.road,
        "natural_village": parsed.natural_village,
        "lane": parsed.lane,
        "park": parsed.park,
        "compound": parsed.compound,
        "door_no": parsed.door_no,
        "sub_no": parsed.sub_no,
        "phase": parsed.phase,
        "building": parsed.building,
        "unit": parsed.unit,
        "floor": parsed.floor,
        "room": parsed.room,
        "stall": parsed.stall,
    }


def _compound_path(numbers: tuple[str, ...]) -> tuple[str, ...]:
    return ("", "", *numbers[2:]) if len(numbers) > 2 else ()


def _parents(path: tuple[str, ...], kind: str) -> list[tuple[str, ...]]:
    """The path, then its ancestors: drop the finest number each time (keep the door for roads and villages)."""
    out = [path]
    current = list(path)
    floor_keep = 1 if kind in ("road", "village") else 3
    while len(current) > floor_keep:
        current.pop()
        while current and not current[-1]:
            current.pop()
        if len(current) < floor_keep:
            break
        out.append(tuple(current))
    if kind in ("compound", "park") and path:
        out.append(())
    seen: list[tuple[str, ...]] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def _interpolate(door: int, numbers: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """The point of door number `door` between its nearest neighbours on the same side (odd/even) of a road."""
    same_side = (numbers % 2) == (door % 2)
    if same_side.sum() >= 2:
        numbers, lon, lat = numbers[same_side], lon[same_side], lat[same_side]
    if len(numbers) == 1:
        return float(lon[0]), float(lat[0])
    k = int(np.searchsorted(numbers, door))
    k = min(max(k, 1), len(numbers) - 1)
    n0, n1 = numbers[k - 1], numbers[k]
    t = 0.0 if n1 == n0 else float(np.clip((door - n0) / (n1 - n0), -0.5, 1.5))
    if 0.0 <= t <= 1.0:
        return float(lon[k - 1] + t * (lon[k] - lon[k - 1])), float(lat[k - 1] + t * (lat[k] - lat[k - 1]))
    # Beyond the last known number: a short step past the end door, never far along a sparse road (where the
    # next building may already stand in another town).
    end, other = (k, k - 1) if t > 1.0 else (k - 1, k)
    d_lon = (lon[end] - lon[other]) * np.cos(np.radians(lat[end]))
    d_lat = lat[end] - lat[other]
    segment_m = float(np.hypot(d_lon, d_lat)) * METRES_PER_DEGREE
    overshoot = (t - 1.0) if t > 1.0 else -t
    step = min(overshoot, MAX_EXTRAPOLATION_M / segment_m) if segment_m > 0 else 0.0
    return float(lon[end] + step * (lon[end] - lon[other])), float(lat[end] + step * (lat[end] - lat[other]))
