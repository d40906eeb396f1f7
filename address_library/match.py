"""address_library.match: a typed address → the standard address, with a match level and a calibrated confidence.

Steps, cheapest first, each tried only when the previous one found nothing:

0. learned aliases (texts a dispatcher resolved by hand), under the alias rule below;
1. exact text: the normalized query equals a standard address's normalized full text;
2. exact components: the parsed query's anchor (compound, park, road or natural village) and number path
   (door, sub-number, phase, building, unit, floor, room, stall) equal an address's — so 东莞市, 3座 for 3栋,
   a dropped or added community, 全角 digits and 繁體 make no difference;
3. parent: a sub-number, floor, room or shop that the library does not hold resolves to the nearest
   address above it;
4. slips: a typed name the library does not hold is corrected to a held one only when every character that
   differs is an input-method slip (a homophone or a look-alike, address_library.slips); candidates come from
   the sound and bigram indexes (never a full scan). Two equally good candidates give `ambiguous`, never a guess;
   a name that differs in sound and shape is another place;
5. road: the door number is not in the library but the road is: the point is interpolated between the nearest
   door numbers on that road; intersections (A路与B路交叉口) and relative locations (对面, 东侧) also answer at
   road level;
6. community, then town: their representative points.

When nothing finer is found, the text is read again with the slips in generic words put back (璐→路, 洞→栋,
存→村). Every answer records how it was found (`Evidence`); its confidence is the probability, calibrated on
a labelled set with absent addresses (address_library.calibration), that it is right at its stated level. An
address the library does not hold comes back at the finest level that is known, with the part not found named.

The alias rule (issue 17, finding 3: one hostile resolution must not poison the geocoder for every client). An
alias is keyed by its BODY: the normalized typed text without the town and community names it opens with. A query
whose body is an alias's body, and whose opening names nothing but a town and/or a community, is answered by it
only when the query's own evidence agrees:

- a COMMUNITY alias (taught by one resolution, `scope = 'community'`) fires only when the query names the alias's
  town (directly, or through one of its communities) and names no other community. It never fires for the bare
  body (no town named) nor with another town's name. With the alias's community named, its confidence is
  `ALIAS_COMMUNITY_CONFIDENCE` (above the auto-placement threshold, supervision.intake.PLACE_MIN_CONFIDENCE); with
  the town alone, `ALIAS_TOWN_CONFIDENCE` (below it: the registration waits for the community's dispatcher, who
  sees the alias's door as the answer);
- a CITY alias (promoted by the command centre, or confirmed by a second, independent resolution) fires for the
  bare body and for any opening that does not contradict its address's town or community, as the library's own
  text would (confidence from the calibration's exact-text cell);
- suspended and withdrawn aliases answer nothing; several aliases that fit with different addresses answer nothing
  (the other steps answer as if there were no alias).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from address_library.calibration import Calibration, Evidence, shipped
from address_library.gazetteer import default_gazetteer
from address_library.index import AddressIndex, anchors_of, core_token, name_token, numbers_of
from address_library.lexicon import FOLD, fold_homophones
from address_library.match_paths import (
    changed,
    components_of,
    compound_path,
    interpolate,
    overlaps,
    parents,
    unknown_part,
)
from address_library.match_result import (
    AMBIGUOUS,
    EXACT_DOOR,
    MATCHED,
    NOT_FOUND,
    Candidate,
    MatchResult,
    Territory,
    quality,
)
from address_library.normalize import Normalized, normalize_with_flags, validate
from address_library.parse import ParsedAddress, _start, parse_normalized
from address_library.repair import default_repairer, town_first, towns_with_community_at_start
from address_library.repository import AliasEntry
from address_library.slips import SlipLexicon, slip_count, sound_only
from grids.codes import town_of

# The longest road name looked for when the parser split a road that begins with a place name.
MAX_ROAD_CHARS = 16
_FIT_EQUALLY = "several standard addresses fit equally well"
# A community name typed without its town is tried in at most this many towns that have one of that name.
MAX_TOWN_GUESSES = 10
# The confidence of a community alias's answer (see the alias rule above): the query names the alias's community;
# the query names only its town (below supervision.intake.PLACE_MIN_CONFIDENCE, 0.9, on purpose).
ALIAS_COMMUNITY_CONFIDENCE = 0.95
ALIAS_TOWN_CONFIDENCE = 0.8
# An opening of town and community names is at most this long (the longest is well below it).
MAX_PLACE_PREFIX = 24


class Matcher:
    """Matches typed addresses against an AddressIndex."""

    def __init__(self, index: AddressIndex, territory: Territory, calibration: Calibration | None = None) -> None:
        self.index = index
        self.calibration = calibration or shipped()
        self.territory = territory
        self.ids = index.ids
        self.texts = index.full_texts
        self.levels = index.levels
        self.towns = index.towns
        self.communities = index.communities
        self.lons = index.lons
        self.lats = index.lats
        self.grids = index.grids
        # Typed addresses a dispatcher resolved by hand, by body (see the alias rule): checked before anything.
        self.aliases: dict[str, list[AliasEntry]] = {}
        # The library's natural village and park names, for putting back a slip that hid their ending (张屋讨).
        self.names = SlipLexicon(
            {
                n.split("|")[0]
                for kind, n in index.anchor_towns
                if kind in ("village", "park") and len(n.split("|")[0]) >= 3
            }
        )
        self._roads_by_town: dict[str, list[str]] = {}
        for town, road in territory.roads:
            self._roads_by_town.setdefault(town, []).append(road)

    def match(self, text: str) -> MatchResult:
        """Match one typed address (raises AddressInputError for empty, over-long or binary input).

        The confidence of a matched answer is the calibrated probability that it is right at its stated level.
        """
        validate(text)
        normalized = normalize_with_flags(text)
        if not normalized.text:
            return MatchResult(NOT_FOUND, reason="no address left after removing noise")
        return self.calibrated(self._find(normalized))

    def calibrated(self, result: MatchResult) -> MatchResult:
        """The result with its confidence read from the calibration table (matched answers only).

        A community alias's answer keeps the confidence the alias rule gives it (the labelled set has no aliases).
        """
        if result.status != MATCHED or result.evidence is None or result.evidence.path == "alias":
            return result
        return replace(result, confidence=self.calibration.probability(result.evidence))

    def _find(self, normalized: Normalized) -> MatchResult:
        alias = self._alias(normalized.text)
        if alias is not None:
            return alias
        exact = self.index.exact(normalized.text)
        if exact is not None:
            result = self._answer(exact, 1.0, evidence=Evidence("text"))
            return self._relative(result, normalized.relative) if normalized.relative else result
        parsed = parse_normalized(normalized)
        result = self.match_parsed(parsed)
        if quality(result) >= EXACT_DOOR or parsed.outside_dongguan:
            return result  # another city's address stays another city's, whatever a "slip" would make of it
        guessed = self._town_from_community(normalized)
        if guessed is not None:
            return guessed
        # Input-method slips can hide the words the parser reads by (璐 for 路, 洞 for 栋, 居眠委员会, a town or
        # community name): read the text again with them put back, and keep that answer when it is finer.
        repaired = default_repairer().repair(normalized.text, self.names)
        tried = {normalized.text}
        variants = [repaired, fold_homophones(normalized.text), fold_homophones(repaired)]
        variants += [v for v in (town_first(normalized.text), town_first(repaired)) if v]
        for variant in variants:
            if variant in tried:
                continue
            tried.add(variant)
            again = normalize_with_flags(variant)
            retry = self.match_parsed(parse_normalized(Normalized(again.text, normalized.notes, normalized.relative)))
            # Several addresses that fit the text exactly give way only to a whole answer, never to the address
            # above them (a corrected text that lost a number is no better than the honest ambiguity).
            exact_fit = result.reason == _FIT_EQUALLY
            if quality(retry) > quality(result) and (not exact_fit or quality(retry) >= EXACT_DOOR):
                corrected = changed(variant, normalized.text)
                evidence = retry.evidence
                if evidence is not None:
                    evidence = replace(evidence, slips=evidence.slips + corrected)
                reason = retry.reason or "a slip in a place name or a generic word was corrected"
                result = replace(retry, evidence=evidence, reason=reason)
        return result

    def _town_from_community(self, normalized: Normalized) -> MatchResult | None:
        """The text opens with a community name, not a town (三联村…, or 桥头社区… where 桥头 is also a town): the
        one town where it is a door.

        The text is read once per town that has a community of that name, as if the town had been typed; when
        exactly one of them holds the address in that community, that is the answer (its town counts as not
        typed).
        """
        gazetteer = default_gazetteer()
        text = normalized.text
        towns = towns_with_community_at_start(text)
        if not 1 <= len(towns) <= MAX_TOWN_GUESSES:
            return None
        found: list[MatchResult] = []
        for code in towns:
            typed = Normalized(gazetteer.town_names[code] + text, normalized.notes, normalized.relative)
            answer = self.match_parsed(parse_normalized(typed))
            evidence = answer.evidence
            if (
                quality(answer) >= EXACT_DOOR
                and evidence is not None
                and evidence.town == "confirmed"
                and evidence.community == "confirmed"
            ):
                found.append(replace(answer, evidence=replace(evidence, town="missing")))
        return found[0] if len(found) == 1 else None

    def set_aliases(self, aliases: Iterable[AliasEntry]) -> None:
        """Replace the learned aliases (the active rows of address_alias), keyed by their body."""
        by_body: dict[str, list[AliasEntry]] = {}
        for entry in aliases:
            body = alias_body(entry.normalized_text)
            if body is not None:
                by_body.setdefault(body, []).append(entry)
        self.aliases = by_body

    def learn_alias(self, entry: AliasEntry) -> None:
        """Use one more alias (or a changed one: the entry of the same id is replaced)."""
        body = alias_body(entry.normalized_text)
        if body is None:
            return
        kept = [e for e in self.aliases.get(body, []) if e.id != entry.id]
        self.aliases[body] = [*kept, entry]

    def forget_alias(self, alias_id: int) -> None:
        """Stop using an alias (withdrawn or suspended) at once."""
        for body, entries in list(self.aliases.items()):
            kept = [e for e in entries if e.id != alias_id]
            if len(kept) != len(entries):
                if kept:
                    self.aliases[body] = kept
                else:
                    del self.aliases[body]

    def _alias(self, text: str) -> MatchResult | None:
        """The answer of the alias rule (module docstring), or None when no alias fits."""
        if not self.aliases:
            return None
        # A cheap look first (is any ending of the text an alias's body?); the opening is read only on a hit.
        if not any(text[start:] in self.aliases for start in range(min(len(text), MAX_PLACE_PREFIX + 1))):
            return None
        body, town, community = split_opening(text)
        entries = self.aliases.get(body)
        return self._alias_answer(entries, town, community) if entries else None

    def _alias_answer(self, entries: list[AliasEntry], town: str | None, community: str | None) -> MatchResult | None:
        fits: dict[int, tuple[float, AliasEntry, int]] = {}
        for entry in entries:
            position = self._alias_position(entry.address_id)
            if position is None:
                continue
            if entry.scope == "city":
                address_town, address_community = str(self.towns[position]), str(self.communities[position])
                if (town is not None and town != address_town) or (
                    community is not None and community != address_community
                ):
                    continue
                confidence = self.calibration.probability(Evidence("text"))
            else:
                if entry.community_code is None or town != town_of(entry.community_code):
                    continue
                if community is not None and community != entry.community_code:
                    continue
                confidence = ALIAS_COMMUNITY_CONFIDENCE if community is not None else ALIAS_TOWN_CONFIDENCE
            if entry.address_id not in fits or fits[entry.address_id][0] < confidence:
                fits[entry.address_id] = (confidence, entry, position)
        if len(fits) != 1:
            return None
        confidence, entry, position = next(iter(fits.values()))
        evidence = Evidence(
            "text" if entry.scope == "city" else "alias",
            town="none" if town is None else "confirmed",
            community="none" if community is None else "confirmed",
        )
        reason = (
            "matched through an alias confirmed for the whole city"
            if entry.scope == "city"
            else "matched through an alias a dispatcher of its community taught"
        )
        answer = self._answer(position, confidence, reason, evidence)
        return answer if entry.scope != "city" else self.calibrated(answer)

    def _alias_position(self, address_id: int) -> int | None:
        # Through the index's id table, not the per-row ids: a shard finds the row and raises on reading it.
        return self.index.position_of(address_id)

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
        components = components_of(parsed)
        numbers = numbers_of(components)
        anchors = anchors_of(components)
        result = self._by_components(parsed, anchors, numbers, slips=None)
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
        if result.status == MATCHED and result.level in ("community", "town") and (anchors or parsed.remainder):
            missing = unknown_part(parsed, result)
            if missing:
                result = replace(result, reason=f"not in the library: {missing}; answered at {result.level} level")
        return result

    def _known_road(self, parsed: ParsedAddress) -> ParsedAddress:
        """Re-read the road from the library when the parser split a road whose name begins with a place name.

        厚街七路, 同沙生活区路 and 松山湖虚拟三路 start with a town or community name, so the parser takes that part
        for the town or community. The longest run of text ending at the door number that the library holds as a
        road (in the typed town) is the road.
        """
        if not parsed.road or not parsed.door_no:
            return parsed
        if self._holds("road", name_token(parsed.road), parsed.town_code):
            return parsed
        if parsed.natural_village:
            # A village written straight before its road (新屋头兴业路) — unless the library holds the whole as a road.
            whole = parsed.natural_village + parsed.road
            if self._holds("road", name_token(whole), parsed.town_code):
                return replace(parsed, road=whole, natural_village=None, lane=None)
            return parsed
        door = re.search(rf"{re.escape(parsed.door_no)}(?:-{re.escape(parsed.sub_no or '')})?号", parsed.text)
        before = parsed.text[: door.start()] if door is not None else ""
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
        self,
        parsed: ParsedAddress,
        anchors: list[tuple[str, str]],
        numbers: tuple[str, ...],
        *,
        slips: tuple[str, int] | None,
    ) -> MatchResult | None:
        """Look the anchors up with the number path, then with each path above it; `slips` = (how, count)."""
        for kind, name in anchors:
            path = numbers if kind in ("road", "village") else compound_path(numbers)
            # When the typed town holds this name, its number is looked for in that town only: the same number on
            # a namesake road of another town is another place, not a slip in the town.
            own_town = parsed.town_code if parsed.town_code and self._holds(kind, name, parsed.town_code) else None
            how = slips
            for depth, sub_path in enumerate(parents(path, kind)):
                hits = self.index.lookup(kind, name, sub_path)
                if not hits and depth == 0:
                    hits = self._without_phase(kind, name, sub_path)
                    how = ("phase", 0) if hits and slips is None else slips
                if own_town is not None:
                    hits = [h for h in hits if self.towns[h] == own_town]
                if not hits:
                    continue
                return self._decide(parsed, hits, parent=depth > 0, slips=how, dropped=path[len(sub_path) :])
        return None

    def _without_phase(self, kind: str, name: str, path: tuple[str, ...]) -> list[int]:
        """A building typed without its phase (锦华花园3栋 for 锦华花园一期3栋): the hits of the phases that have it."""
        if kind not in ("compound", "park") or len(path) < 4 or path[2] or not path[3]:
            return []
        found = [hits for phase in self.index.anchor_phases.get((kind, name), ())
                 if (hits := self.index.lookup(kind, name, (*path[:2], phase, *path[3:])))]  # fmt: skip
        # Several phases with that building: all of them, and the decision says "ambiguous" (several fit equally).
        return [h for hits in found for h in hits]

    def _decide(
        self,
        parsed: ParsedAddress,
        hits: list[int],
        *,
        parent: bool,
        slips: tuple[str, int] | None,
        dropped: tuple[str, ...],
    ) -> MatchResult:
        hits = sorted(set(hits))
        town = parsed.town_code
        in_town = [h for h in hits if self.towns[h] == town] if town else hits
        if town and not in_town:
            # The typed town holds no such place; other towns do (人民路 is in every town). Almost always a place of
            # the typed town that the library does not know yet: answer at the level that is known, and show what
            # the other towns hold so that a dispatcher can still choose it.
            area = self._area_level(parsed)
            elsewhere = "、".join(sorted({self._town_name(str(self.towns[h])) for h in hits}))
            return replace(
                area,
                reason=f"not in the library of {self._town_name(town)}; held in {elsewhere}",
                candidates=tuple(self._candidate(h) for h in hits[:5]),
            )
        chosen, town_note = in_town, "confirmed" if town else "missing"
        if len(chosen) > 1 and parsed.community_code:
            same_community = [h for h in chosen if self.communities[h] == parsed.community_code]
            if same_community:
                chosen = same_community
        if len(chosen) > 1:
            return MatchResult(
                AMBIGUOUS,
                confidence=round(1.0 / len(chosen), 3),
                reason=_FIT_EQUALLY,
                candidates=tuple(self._candidate(h) for h in chosen[:5]),
            )
        best = chosen[0]
        reason = None
        community_note = self._community_note(parsed, str(self.communities[best]))
        if community_note == "conflict":
            reason = "the typed community differs from the address found"
        path = "components"
        if slips is not None:
            path = slips[0]
            reason = {
                "contained": "text before a known name was ignored",
                "phase": "the phase (期/区) was not typed; the only phase with this building was taken",
            }.get(path, "a slip in a place name was corrected")
        if parent:
            path = "parent"
            reason = f"not in the library: {'/'.join(d for d in dropped if d)}; answered with the address above it"
        note = bool(parsed.remainder) and not parent
        if note and reason is None:
            reason = f"shop or note '{parsed.remainder}' is not part of the standard address"
        evidence = Evidence(path, town_note, community_note, slips[1] if slips else 0, note)
        return self._answer(best, 0.0, reason, evidence)

    @staticmethod
    def _community_note(parsed: ParsedAddress, answer_community: str | None) -> str:
        if not parsed.community_code:
            return "missing"
        return "confirmed" if parsed.community_code == answer_community else "conflict"

    def _fuzzy(
        self, parsed: ParsedAddress, anchors: list[tuple[str, str]], numbers: tuple[str, ...]
    ) -> MatchResult | None:
        """A typed name the library does not hold, corrected only when it is a held name up to input-method slips.

        Candidates come from the sound index and the bigram index. A candidate is a correction when every
        character that differs is a homophone or look-alike slip (address_library.slips); a name that differs in
        sound and shape is another place, so the answer stays at the level that is known. A held name written
        after unplaced text (冬城沙明路, a garbled town glued to the road) is found as well.
        """
        for kind, name in anchors:
            if self._holds(kind, name, parsed.town_code):
                # The library holds this name as typed: what is missing is a number, not a spelling slip, and
                # "correcting" the name would invent a door on another road or compound.
                continue
            probe, lane = name.split("|") if kind == "village" else (name, "")
            scored: list[tuple[int, str, str]] = []
            for candidate in self.index.anchor_candidates(kind, name):
                if candidate == name:
                    continue
                if parsed.town_code and parsed.town_code not in self.index.anchor_towns.get((kind, candidate), ()):
                    # A name with slips that another town holds is most likely a place of the typed town that
                    # the library does not know yet, not a slip.
                    continue
                target, target_lane = candidate.split("|") if kind == "village" else (candidate, "")
                if kind == "village" and lane != target_lane and slip_count(lane, target_lane) is None:
                    continue
                count = slip_count(probe, target)
                if count is not None:
                    how = "slip" if sound_only(probe, target) else "slip_shape"
                    scored.append((count + (lane != target_lane), how, candidate))
                elif overlaps(probe, target) and target in parsed.text:
                    # The held name stands verbatim in the typed text and the parser cut it differently (a
                    # garbled town glued before it, or its first characters read as a town or community).
                    scored.append((abs(len(probe) - len(target)), "contained", candidate))
            if not scored:
                continue
            scored.sort()
            results: list[tuple[int, MatchResult]] = []
            for count, how, candidate in scored[:5]:
                found = self._by_components(parsed, [(kind, candidate)], numbers, slips=(how, count))
                if found is None or found.status != MATCHED or not found.is_door_level:
                    continue
                if how == "contained" and parsed.community_code and found.community_code != parsed.community_code:
                    continue  # a name cut out of a longer text, in another community than the one typed: no evidence
                results.append((count, found))
            if not results:
                continue
            if (
                len(results) > 1
                and results[0][0] == results[1][0]
                and results[0][1].address_id != results[1][1].address_id
            ):
                return MatchResult(
                    AMBIGUOUS,
                    confidence=0.5,
                    reason="two held names fit the typed one equally well",
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
        slips = 0
        held = self.index.anchor_towns.get(("road", road), set())
        towns = [parsed.town_code] if parsed.town_code else sorted(held)
        if parsed.town_code and parsed.town_code not in held:
            towns = []
        if not towns:
            corrected = self._closest_road(road, parsed.town_code)
            if corrected is None:
                return None
            town, road, slips = corrected
            towns = [town]
        if len(towns) != 1:
            return None
        town = towns[0]
        evidence_town = "confirmed" if parsed.town_code == town else "missing" if not parsed.town_code else "conflict"
        door = core_token(components.get("door_no"))
        doors = self.index.road_doors.get((town, road))
        if doors is not None and door.isdigit():
            numbers, positions = doors
            lon, lat = interpolate(int(door), numbers, self.lons[positions], self.lats[positions])
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
                evidence=Evidence("road_door", evidence_town, "none", slips),
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
                evidence=Evidence("road_line", evidence_town, "none", slips),
            )
        return None

    def _town_name(self, town: str) -> str:
        return self.territory.towns[town].name if town in self.territory.towns else ""

    def _road_name(self, town: str, road_token: str) -> str:
        """The standard spelling of a road known by its token in a town."""
        return self.index.road_names.get((town, road_token), road_token)

    def _closest_road(self, road: str, town: str | None) -> tuple[str, str, int] | None:
        """The held road this one is up to input-method slips: (town, road token, slips), or None.

        In the typed town when it holds one; otherwise only when a single town does.
        """
        fits: list[tuple[int, str]] = []
        for candidate in self.index.anchor_candidates("road", road, limit=10):
            count = slip_count(road, candidate)
            if count:
                fits.append((count, candidate))
        if not fits:
            return None
        fits.sort()
        best = [c for n, c in fits if n == fits[0][0]]
        in_town = [c for c in best if town in self.index.anchor_towns.get(("road", c), set())]
        if len(in_town) == 1:
            return str(town), in_town[0], fits[0][0]
        if town is not None or len(best) != 1:
            return None
        towns = sorted(self.index.anchor_towns.get(("road", best[0]), set()))
        return (towns[0], best[0], fits[0][0]) if len(towns) == 1 else None

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
                evidence=Evidence("intersection", "confirmed" if town else "missing"),
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
                evidence=Evidence("community", "confirmed" if parsed.town_code == place.town_code else "missing"),
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
                evidence=Evidence("town"),
            )
        return MatchResult(NOT_FOUND, reason="no known place in Dongguan found in the address")

    def _answer(
        self, position: int, confidence: float, reason: str | None = None, evidence: Evidence | None = None
    ) -> MatchResult:
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
            evidence=evidence,
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
            evidence=Evidence("relative"),
        )


def split_opening(normalized_text: str) -> tuple[str, str | None, str | None]:
    """(body, town code, community code): the text without the town and community names it opens with, and the
    places they name (a community named alone names its town too). A text that opens with no place name, or names
    its town only further on, is all body and names nothing."""
    start = _start(normalized_text, normalized_text.translate(FOLD), default_gazetteer())
    if start is None:
        return normalized_text, None, None
    town, community, pos, skipped = start
    if skipped or town is None or pos == 0:
        return normalized_text, None, None
    return normalized_text[pos:], town, community.code if community is not None else None


def alias_body(normalized_text: str) -> str | None:
    """The body of an alias's text (`split_opening`), or None when less than two characters are left."""
    body = split_opening(normalized_text)[0]
    return body if len(body) >= 2 else None
