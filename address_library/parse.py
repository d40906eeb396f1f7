"""address_library.parse: normalized address text → its components (town, community, road, door, building, room…)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from address_library.gazetteer import Gazetteer, Place, default_gazetteer
from address_library.lexicon import (
    CROSSING_CHARS,
    FOLD,
    INTERSECTION,
    NAME,
    NUMBER,
    PHASE_WORD,
    PLACE_GUARD,
    RUN,
    SUFFIX_KIND,
)
from address_library.normalize import Normalized, normalize_with_flags


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
    relative: str | None = None
    outside_dongguan: bool = False
    notes: tuple[str, ...] = field(default=())

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


class _State:
    """Components found so far while scanning the body of one address."""

    __slots__ = (
        "community",
        "town_code",
        "village",
        "road",
        "lane",
        "door",
        "sub",
        "park",
        "compound",
        "phase",
        "building",
        "unit",
        "floor",
        "room",
        "stall",
        "rest",
        "last",
    )

    def __init__(self, town_code: str | None, community: Place | None) -> None:
        self.town_code = town_code
        self.community = community
        self.village: str | None = None
        self.road: str | None = None
        self.lane: str | None = None
        self.door: str | None = None
        self.sub: str | None = None
        self.park: str | None = None
        self.compound: str | None = None
        self.phase: str | None = None
        self.building: str | None = None
        self.unit: str | None = None
        self.floor: str | None = None
        self.room: str | None = None
        self.stall: str | None = None
        self.rest: list[str] = []
        self.last = ""


def parse(text: str, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse an address as typed (it is normalized first; normalized text passes through unchanged)."""
    return parse_normalized(normalize_with_flags(text), gazetteer)


def parse_normalized(normalized: Normalized, gazetteer: Gazetteer | None = None) -> ParsedAddress:  # noqa: C901 - the parse is one ordered cascade of component rules
    """Parse the output of normalize_with_flags."""
    gaz = gazetteer or default_gazetteer()
    text = normalized.text
    if not text:
        return ParsedAddress(text=text, relative=normalized.relative, notes=normalized.notes)
    folded = text.translate(FOLD)
    pos = 0
    town_code: str | None = None
    community: Place | None = None
    skipped = ""

    town = gaz.match_town(text, 0)
    place = gaz.match_community(text, folded, 0, None)
    if town is not None and (place is None or town[1] >= place[1]):
        town_code, pos = town
        if PLACE_GUARD.match(text, pos):
            # 东城中路, 长安广场: the town names the road or building, which keeps its full name.
            pos = 0
    elif place is not None:
        community, pos = place
        town_code = community.town_code
    else:
        other = gaz.other_places.match(text)
        if other is not None:
            return ParsedAddress(
                text=text,
                remainder=text,
                outside_dongguan=True,
                relative=normalized.relative,
                notes=normalized.notes,
            )
        found = gaz.town_anywhere_re.search(text)
        if found is not None:
            town_code = gaz.town_anywhere[found.group(0)]
            skipped = text[: found.start()]
            pos = found.end()

    if town_code is not None and pos > 0:
        # Pasted twice: 长安镇长安镇…, 长安镇长安…, 长安镇东莞长安镇…
        while True:
            at = pos + 2 if text.startswith("东莞", pos) else pos
            again = gaz.match_town(text, at)
            if again is None or again[0] != town_code or PLACE_GUARD.match(text, again[1]):
                break
            pos = again[1]
        if community is None:
            found_place = gaz.match_community(text, folded, pos, town_code)
            if found_place is not None:
                community, pos = found_place

    state = _State(town_code, community)
    if skipped:
        state.rest.append(skipped)
    crossing = INTERSECTION.search(text, pos) if not CROSSING_CHARS.isdisjoint(text) else None
    intersection: str | None = None
    if crossing is not None and (crossing.group("b1") or crossing.group("b2")):
        # Whatever precedes the crossing (a community) is read as usual; the crossing is the road level.
        _scan(text[: crossing.start()], folded, pos, state, gaz)
        if state.road is not None:
            state.rest.append(state.road)
        state.road = crossing.group("a")
        intersection = crossing.group("b1") or crossing.group("b2")
        if crossing.end() < len(text):
            state.rest.append(text[crossing.end() :])
    else:
        _scan(text, folded, pos, state, gaz)
    _finish(state, gaz)

    community = state.community
    town_code = state.town_code
    return ParsedAddress(
        text=text,
        town_code=town_code,
        town=gaz.town_names.get(town_code) if town_code else None,
        community_code=community.code if community else None,
        community=community.name if community else None,
        natural_village=state.village,
        road=state.road,
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
        relative=normalized.relative,
        notes=normalized.notes,
    )


def _scan(text: str, folded: str, pos: int, state: _State, gaz: Gazetteer) -> None:
    """Read the components after town and community, left to right."""
    n = len(text)
    pending = ""  # a name with no suffix of its own (上围 in 上围3巷), waiting for what follows it
    while pos < n:
        number = NUMBER.match(text, pos)
        if number is not None:
            pending = _number(number, state, pending)
            pos = number.end()
            continue
        run = RUN.match(text, pos)
        if run is None:  # a stray '-' or '第'
            state.rest.append(text[pos])
            pos += 1
            continue
        if pending:
            state.rest.append(pending)
            pending = ""
        end = run.end()
        if state.community is None:
            # Out of place (after the door, 长青路12号新安社区) only a full community name counts, or a bare stem
            # that fills the whole run (长青路12号新安).
            place = gaz.match_community(text, folded, pos, state.town_code, stems=False)
            if place is None:
                place = gaz.match_community(text, folded, pos, state.town_code)
                if place is not None and place[1] != end:
                    place = None
            if place is not None:
                state.community, pos = place
                if state.town_code is None:
                    state.town_code = state.community.town_code
                if pos >= end:
                    continue
        pending = _names(text[pos:end], state)
        pos = end
    if pending:
        state.rest.append(pending)


def _names(run: str, state: _State) -> str:
    """Take the named components (village, park, road, compound) out of a run of characters; return what is left."""
    p = 0
    n = len(run)
    while p < n:
        if state.compound and not state.phase and PHASE_WORD.match(run, p):
            state.phase = run[p : p + 2]
            state.last = "phase"
            p += 2
            continue
        if run.startswith("厂房", p) and state.park and not state.building:
            state.building = "厂房"
            state.last = "building"
            p += 2
            continue
        match = NAME.match(run, p)
        if match is None:
            break
        name = match.group(0)
        kind = SUFFIX_KIND[match.group(2)]
        p = match.end()
        if kind == "road":
            if state.road is None:
                state.road = name
            elif state.lane is None:
                state.lane = name
            else:
                state.rest.append(name)
        elif kind == "village":
            if state.village is None:
                state.village = name
            elif state.last == "village":
                state.village += name
            else:
                state.rest.append(name)
        elif kind == "park":
            if state.park is None:
                state.park = name
            else:
                state.rest.append(name)
        elif state.compound is None:
            state.compound = name
        else:
            state.rest.append(name)
        state.last = kind
    return run[p:]


def _number(match: re.Match[str], state: _State, pending: str) -> str:  # noqa: C901 - the forms of a house number, tried in order
    """Place one numbered token (12号, 3栋, 2单元, 302室, 3巷 …); return the pending name still unplaced."""
    ident = match.group("id")
    suffix = match.group("suf")
    token = match.group(0)
    if token.startswith("第"):
        token = token[1:]
    if suffix in ("巷", "弄"):
        if pending:
            if state.road is None and (state.community is not None or state.village is not None):
                # 上围3巷 after a community: a natural village and its numbered lane.
                if state.village is None:
                    state.village = pending
                else:
                    state.rest.append(pending)
                state.lane = token
            elif state.road is None:
                state.road = pending + token
            else:
                state.rest.append(pending + token)
            state.last = "lane"
            return ""
        if state.lane is None:
            state.lane = token
        else:
            state.rest.append(token)
        state.last = "lane"
        return ""
    if pending:
        state.rest.append(pending)
    if suffix in ("组", "队"):
        if state.village is not None and state.last == "village":
            state.village += token
        elif state.village is None:
            state.village = token
        else:
            state.rest.append(token)
        state.last = "village"
        return ""
    if suffix == "号" or suffix is None:
        has_inside = state.building or state.unit or state.floor
        if suffix is None and not ident.isdigit():
            state.rest.append(token)
        elif state.door is None and not has_inside and not (suffix is None and state.room is None and state.compound):
            if suffix is None and not (state.road or state.lane or state.village):
                state.rest.append(token)
                return ""
            door, _, sub = ident.partition("-")
            state.door = door
            state.sub = sub or None
            state.last = "door"
        elif state.room is None and (has_inside or state.compound or state.park):
            state.room = ident + "号" if suffix else ident
            state.last = "room"
        else:
            state.rest.append(token)
        return ""
    slot = {
        "号楼": "building",
        "栋": "building",
        "座": "building",
        "幢": "building",
        "单元": "unit",
        "楼": "floor",
        "层": "floor",
        "室": "room",
        "房": "room",
        "档": "stall",
        "铺": "stall",
        "号铺": "stall",
        "期": "phase",
        "区": "phase",
    }[suffix]
    if getattr(state, slot) is None:
        setattr(state, slot, token)
    else:
        state.rest.append(token)
    state.last = slot
    return ""


def _finish(state: _State, gaz: Gazetteer) -> None:
    """Village-chain lanes, and the community read back from a name that starts with it."""
    if (
        state.village is not None
        and state.road is not None
        and state.road.endswith(("街", "巷"))
        and not state.compound
        and not state.park
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
