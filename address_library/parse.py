"""address_library.parse: normalized address text → its components (town, community, road, door, building, room…)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from address_library.errors import AddressInputError
from address_library.gazetteer import Gazetteer, Place, default_gazetteer
from address_library.lexicon import (
    COMPOUND_SUFFIXES,
    CROSSING_CHARS,
    FOLD,
    GATE,
    GENERIC_ROAD_WORDS,
    HIGHWAY,
    INNER_RELATIVE,
    INTERSECTION,
    LANE_LI,
    NAME,
    NAMED_NUMBER,
    NUMBER,
    PARK_SUFFIXES,
    PHASE_WORD,
    PLACE_GUARD,
    POI_END,
    POI_SUFFIXES,
    RELATIVE_CHARS,
    ROAD_DAO,
    ROAD_SEGMENT,
    RUN,
    SUFFIX_KIND,
    URBAN_AREA,
    VILLAGE_THEN_ROAD,
    alternation,
)
from address_library.normalize import Normalized, normalize_with_flags
from address_library.parse_numbers import ScanState, misspelt_name, place_number, road_or_lane


@dataclass(frozen=True)
class ParsedAddress:
    """The components of one address, each as written in the normalized text (None when absent)."""

    text: str = ""
    town_code: str | None = None
    town: str | None = None
    community_code: str | None = None
    community: str | None = None
    natural_village: str | None = None
    road: str | None = None
    road_segment: str | None = None
    lane: str | None = None
    door_no: str | None = None
    sub_no: str | None = None
    park: str | None = None
    compound: str | None = None
    phase: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    stall: str | None = None
    remainder: str | None = None
    intersection: str | None = None
    pois: tuple[str, ...] = field(default=())
    relative: str | None = None
    outside_dongguan: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def poi(self) -> str | None:
        """The first named shop, factory, company or landmark the address mentions (None when there is none)."""
        return self.pois[0] if self.pois else None

    @property
    def level(self) -> str | None:
        """The finest level present: room, building, door, road, community or town (None when nothing is known)."""
        if self.room or self.stall or self.floor:
            return "room"
        if self.building or self.unit:
            return "building"
        if self.door_no or self.compound or self.park:
            return "door"
        if self.road:
            return "road"
        if self.community_code or self.natural_village:
            return "community"
        if self.town_code:
            return "town"
        return None


def parse(text: str, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse an address as typed (it is normalized first; normalized text passes through unchanged)."""
    return parse_normalized(normalize_with_flags(text), gazetteer)


def parse_normalized(normalized: Normalized, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse the output of normalize_with_flags."""
    gaz = gazetteer or default_gazetteer()
    text = normalized.text
    if not text:
        return ParsedAddress(text=text, relative=normalized.relative, notes=normalized.notes)
    folded = text.translate(FOLD)
    start = _start(text, folded, gaz)
    if start is None:
        return ParsedAddress(
            text=text, remainder=text, outside_dongguan=True, relative=normalized.relative, notes=normalized.notes
        )
    town_code, community, pos, skipped = start
    state = ScanState(town_code, community)
    if skipped:
        state.skip(skipped)
    crossing = INTERSECTION.search(text, pos) if not CROSSING_CHARS.isdisjoint(text) else None
    intersection: str | None = None
    if crossing is not None and (crossing.group("b1") or crossing.group("b2")):
        # Whatever precedes the crossing (a community) is read as usual; the crossing is the road level, and what
        # follows it (a compound, its buildings) is read with no road, since a crossing has no door numbers.
        _scan(text, folded, pos, crossing.start(), state, gaz)
        if state.road is not None:
            state.skip(state.road)
        state.road = None
        _scan(text, folded, crossing.end(), len(text), state, gaz)
        if state.road is not None:
            state.skip(state.road)
        state.road = crossing.group("a")
        intersection = crossing.group("b1") or crossing.group("b2")
    else:
        _scan(text, folded, pos, len(text), state, gaz)
    _finish(text, state, gaz)
    pois = _notes_into(normalized.notes)

    community_place = state.community
    town_code = state.town_code
    return ParsedAddress(
        text=text,
        town_code=town_code,
        town=gaz.town_names.get(town_code) if town_code else None,
        community_code=community_place.code if community_place else None,
        community=community_place.name if community_place else None,
        natural_village=state.village,
        road=state.road,
        road_segment=state.segment,
        lane=state.lane,
        door_no=state.door,
        sub_no=state.sub,
        park=state.park,
        compound=state.compound,
        phase=state.phase,
        building=state.building,
        unit=state.unit,
        floor=state.floor,
        room=state.room,
        stall=state.stall,
        remainder="".join(state.rest) or None,
        intersection=intersection,
        pois=tuple(dict.fromkeys((*state.pois, *_pois(state.rest), *pois))),
        relative=normalized.relative,
        notes=normalized.notes,
    )


def _start(text: str, folded: str, gaz: Gazetteer) -> tuple[str | None, Place | None, int, str] | None:
    """Town and community at the start: (town code, community, where the body starts, skipped text before a town
    found further on); None for an address outside Dongguan."""
    town_code: str | None = None
    community: Place | None = None
    skipped = ""
    pos = 0
    town = gaz.match_town(text, 0)
    place = gaz.match_community(text, folded, 0, None)
    if town is not None and (place is None or town[1] >= place[1]):
        town_code, pos = town
        pos = _after_town(text, folded, pos, town_code, gaz)
    elif place is not None:
        community, pos = place
        town_code = community.town_code
    else:
        if gaz.other_places.match(text) is not None:
            return None
        found = gaz.town_anywhere_re.search(text)
        if found is not None:
            town_code = gaz.town_anywhere[found.group(0)]
            skipped = text[: found.start()]
            pos = found.end()
        elif (unknown := _UNKNOWN_TOWN.match(text)) is not None:
            # 乐安镇锦华花园: a word ending in 镇 at the start is a town, even one we cannot read; it is not part
            # of the name that follows.
            skipped = unknown.group(0)
            pos = unknown.end()

    if town_code is not None and pos > 0:
        # Pasted twice: 长安镇长安镇…, 长安镇长安…, 长安镇东莞长安镇…
        while True:
            at = pos + 2 if text.startswith("东莞", pos) else pos
            again = gaz.match_town(text, at)
            if again is None or again[0] != town_code or PLACE_GUARD.match(text, again[1]):
                break
            place = gaz.match_community(text, folded, at, town_code)
            if place is not None and place[1] > again[1]:
                break  # 石排石排村, 望牛墩镇望牛墩社区: the community named after its town, not the town again
            pos = again[1]
        if community is None:
            found_place = gaz.match_community(text, folded, pos, town_code)
            if found_place is not None:
                community, pos = found_place
    return town_code, community, pos, skipped


def _after_town(text: str, folded: str, pos: int, town_code: str, gaz: Gazetteer) -> int:
    """Where the body starts after a town form ending at pos."""
    suffixed = text.endswith(_TOWN_SUFFIXES, 0, pos)
    guard = PLACE_GUARD.match(text, pos)
    if (
        suffixed
        and guard is not None
        and text.endswith("镇", 0, pos)
        and _ONE_CHAR_ROAD.match(text, pos)
        and gaz.match_town(text, pos) is None
    ):
        # 虎门镇口路: no road has a one-character name; 镇 starts the road's name (镇口路).
        return pos - 1
    if not suffixed and PLACE_GUARD.match(text, pos) and gaz.match_community(text, folded, pos, town_code) is None:
        # 东城中路, 长安广场: a bare town name names the road or building, which keeps its full name; written with
        # its 镇/街道 (大朗镇巷头…) the town is the town.
        return 0
    if suffixed and text.startswith("区", pos) and not text.endswith("区", 0, pos) and not PLACE_GUARD.match(text, pos):
        # 南城街道区…: a district word typed after the town's own suffix.
        return pos + 1
    return pos


_TOWN_SUFFIXES = ("镇", "街道", "区")
_ONE_CHAR_ROAD = re.compile(r"[^0-9A-Z](?:路|街|大道)(?![0-9A-Z]*[路街])")
_UNKNOWN_TOWN = re.compile(r"[^0-9A-Z镇]{2,3}镇")
# A short numbered street written after the market, park or village group it belongs to (锦绣市场二街,
# 新屋组五街, 振兴工业区四路). After a village or community name it is the road's own name (一村七路).
_PLACE_THEN_STREET = re.compile(
    rf"(.+(?:{alternation((*PARK_SUFFIXES, *COMPOUND_SUFFIXES, '组'))}))([一二三四五六七八九十]{{1,3}}[街路])"
)


def _scan(text: str, folded: str, pos: int, end: int, state: ScanState, gaz: Gazetteer) -> None:
    """Read the components in text[pos:end], left to right."""
    pending = ""  # a name with no suffix of its own (上围 in 上围3巷), waiting for what follows it
    relative = not RELATIVE_CHARS.isdisjoint(text)
    while pos < end:
        if relative and (word := INNER_RELATIVE.match(text, pos, end)) is not None:
            # 华润超市后面兴华街2号, 新安社区旁X花园: the name before the word is the landmark the address is placed by;
            # what follows is read as usual.
            if pending:
                state.pois.append(pending)
                pending = ""
            pos = word.end()
            continue
        number = NUMBER.match(text, pos, end)
        if number is not None and not (number.group("suf") is None and NAMED_NUMBER.match(text, pos)):
            place_number(number, state, pending)
            pending = ""
            pos = number.end()
            continue
        run = RUN.match(text, pos, end)
        if run is None:  # a stray '-' or '第'
            state.skip(text[pos])
            pos += 1
            continue
        stop = run.end()
        if relative and (word := INNER_RELATIVE.search(text, pos + 1, stop)) is not None:
            stop = word.start()
        if pending:
            state.skip(pending)
        pending = _names(text, folded, pos, stop, state, gaz)
        pos = stop
    if pending:
        if state.last == "community" and pending in POI_SUFFIXES:
            # 新安公园, 新安小学: a bare word for a landmark after the community names the community's landmark.
            state.pois.append(pending)
        elif (
            state.last == "community"
            and state.village is None
            and state.compound is None
            and not misspelt_name(pending)
        ) or (state.village is None and _CLAN_HAMLET.fullmatch(pending)):
            # 新安社区石岭头: a name with no suffix right after the community is one of its natural villages; so is
            # a clan hamlet (陈屋) that ends the address.
            state.village = pending
            state.last = "village"
        else:
            if state.last in _OCCUPANT_AFTER:
                # 富华路12号兴旺便利店: what follows the door, room or road and is no address part names the occupant.
                state.pois.append(pending)
            state.skip(pending)


_OCCUPANT_AFTER = frozenset({"door", "room", "floor", "stall", "building", "unit", "road", "lane"})
# A clan hamlet: a surname and 屋 (陈屋, 李屋); only whole, since 屋 also begins names (王屋洲路).
_CLAN_HAMLET = re.compile(r"[^0-9A-Z]{1,2}屋")


def _names(text: str, folded: str, p: int, end: int, state: ScanState, gaz: Gazetteer) -> str:  # noqa: C901 - one ordered cascade of name rules
    """Take the named components (community, village, park, road, compound) out of text[p:end]; return the rest."""
    while p < end:
        if state.community is None:
            # Out of place (after a road or door: 富华路新安社区, 长青路12号新安社区) only a full community name
            # counts, or a bare stem that fills the whole run (长青路12号新安).
            place = gaz.match_community(text, folded, p, state.town_code, stems=False)
            if place is None or place[1] > end:
                place = gaz.match_community(text, folded, p, state.town_code)
                if place is not None and place[1] != end:
                    place = None
            if place is not None:
                state.community, p = place
                state.last = "community"
                if state.town_code is None:
                    state.town_code = place[0].town_code
                continue
        if state.compound and not state.phase and PHASE_WORD.match(text, p, end):
            state.phase = text[p : p + 2]
            state.last = "phase"
            p += 2
            continue
        if text.startswith("厂房", p) and state.park and not state.building:
            state.building = "厂房"
            state.last = "building"
            p += 2
            continue
        if (
            state.last in ("", "community")
            and not (state.road or state.village or state.compound or state.park)
            and (area := URBAN_AREA.match(text, p, end)) is not None
            and not PLACE_GUARD.match(text, area.end())
        ):
            # X镇新城区…: the town's urban area, an old area word that no standard address carries.
            p = area.end()
            continue
        if state.last in ("community", "park", "village") and not state.phase and PHASE_WORD.match(text, p, end):
            # 新安南区振安路: a quarter of the community or park, not the start of the road's name.
            state.phase = text[p : p + 2]
            state.last = "phase"
            p += 2
            continue
        highway = HIGHWAY.match(text, p, end)
        if highway is not None:
            road_or_lane(highway.group(0), state)
            p = highway.end()
            continue
        if state.last == "road" and state.segment is None:
            segment = ROAD_SEGMENT.match(text, p, end)
            if segment is not None:
                state.segment = segment.group(0)
                p = segment.end()
                continue
        lane = LANE_LI.match(text, p) or ROAD_DAO.match(text, p)
        if lane is not None and lane.end() == end:
            road_or_lane(lane.group(0), state)
            p = end
            continue
        match = NAME.match(text, p, end)
        if match is None:
            break
        name = match.group(0)
        kind = SUFFIX_KIND[match.group(2)]
        street = _PLACE_THEN_STREET.fullmatch(name) if kind == "road" else None
        p = match.end()
        if kind == "road" and text.startswith("路口", p - 1):
            p += 1  # 富华路口: the road's crossing, a place on the road
            if POI_END.search(name, 0, len(name) - 1):
                state.pois.append(name[:-1])  # 华润超市路口: the crossing by a landmark, not a road
                continue
        if street is not None:
            rest = _names(text, folded, match.start(), match.start() + len(street.group(1)), state, gaz)
            if rest:
                state.skip(rest)
            road_or_lane(street.group(2), state)
        elif kind != "road" or not _village_before_road(name, folded[match.start() : p], state, gaz):
            _place_name(name, kind, state)
    return text[p:end]


def _village_before_road(name: str, folded: str, state: ScanState, gaz: Gazetteer) -> bool:
    """新屋头兴业路 right after the town or community: the village and its road (see VILLAGE_THEN_ROAD). Read
    through the homophone fold (陈屋存X路 is 陈屋村 and X路); a town's own name in front names the road (横沥X路)."""
    if state.road or state.village or state.compound or state.park or state.last not in ("", "community"):
        return False
    split = VILLAGE_THEN_ROAD.fullmatch(folded)
    if split is None or split.group(2).startswith(GENERIC_ROAD_WORDS):
        return False
    cut = split.end(1)
    if name[:cut] in gaz.town_at_start:
        return False
    state.village = name[:cut]
    state.last = "village"
    road_or_lane(name[cut:], state)
    return True


def _place_name(name: str, kind: str, state: ScanState) -> None:
    if kind == "road":
        road_or_lane(name, state)
        return
    if kind == "village" and state.village is not None and state.last == "village":
        state.village += name  # 上围村三组: one chain of villages
        return
    slot = {"village": "village", "park": "park"}.get(kind, "compound")
    if getattr(state, slot) is None:
        setattr(state, slot, name)
        state.last = kind
    else:
        state.skip(name)


def _finish(text: str, state: ScanState, gaz: Gazetteer) -> None:
    """Village-chain lanes, and the community read back from a name that starts with it."""
    if (
        state.village is not None
        and state.road is not None
        and state.road.endswith(("街", "巷"))
        and not state.compound
        and not state.park
        and state.road + (state.lane or "") in text
    ):
        # In a village chain a 街/巷 is the lane the doors hang on (陈屋村兴华街3巷5号), not a town road.
        state.lane = state.road + (state.lane or "")
        state.road = None
    if state.community is None and state.town_code is not None:
        for name in (state.village, state.park, state.compound):
            if not name:
                continue
            folded = name.translate(FOLD)
            table = gaz.local[state.town_code]
            for end in range(min(len(name), gaz.max_form), 1, -1):
                place = table.get(name[:end]) or gaz.local_folded[state.town_code].get(folded[:end])
                if place is not None:
                    state.community = place
                    return


def _poi(piece: str) -> str | None:
    """The POI a leftover piece of text names (兴旺便利店, 明珠广场南门 → 明珠广场), or None."""
    name = GATE.sub("", piece)
    return name if len(name) >= 2 and (name != piece or POI_END.search(name)) else None


def _pois(rest: list[str]) -> tuple[str, ...]:
    return tuple(poi for piece in rest if (poi := _poi(piece)) is not None)


def _notes_into(notes: tuple[str, ...]) -> tuple[str, ...]:
    """The shops and landmarks bracketed notes name (（华润万家超市）, （振安公交站旁））. A note is never read
    into the number path: （一楼） is as often a delivery remark as a floor."""
    pois: list[str] = []
    for note in notes:
        try:
            text = normalize_with_flags(note).text
        except AddressInputError:
            continue
        floor = _NOTE_FLOOR.search(text)
        if floor is not None:
            text = text[: floor.start()]
        if text.endswith(("楼上", "楼下")) and len(text) >= 4:
            pois.append(text[:-2])  # 兴旺美发楼上: the shop the flat is above
            continue
        poi = _poi(text.removesuffix("旁")) if text else None
        if poi is not None:
            pois.append(poi)
    return tuple(pois)


_NOTE_FLOOR = re.compile(r"(?<![0-9A-Z-])\d{1,2}[楼层]$")
