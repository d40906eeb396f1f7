"""address_library.parse_numbers: numbered tokens (12号, 3栋, 2单元, 302室, 3巷, 1街 …) placed into an address's components."""

from __future__ import annotations

import re

from address_library.gazetteer import Place
from address_library.lexicon import FOLD, NAME

# The slot each numbered suffix fills once door numbers, lanes and numbered streets are set aside.
_SLOT = {
    "号楼": "building",
    "栋": "building",
    "座": "building",
    "幢": "building",
    "单元": "unit",
    "梯": "unit",
    "号梯": "unit",
    "楼": "floor",
    "层": "floor",
    "室": "room",
    "房": "room",
    "档": "stall",
    "铺": "stall",
    "号铺": "stall",
    "期": "phase",
    "区": "phase",
}
# A numbered street or lane: 1街, 振兴工业2路, 新安3横街, 中兴2横巷, 富华一路3号巷.
NUMBERED_STREETS = frozenset({"街", "路", "横街", "横巷", "横路", "号巷"})
_BUILDINGS = frozenset({"号楼", "栋", "座", "幢"})
_DIRECTIONS = "东南西北"
# Words for a shop unit written before its number: 商铺26号, 铺位12.
_SHOP_WORDS = ("商铺", "铺位", "档口")
# Compact building+room (38702 = 38栋702, 121506 = 12栋1506): a tower's room is its floor (1–59) and a two-digit
# index, so the four-digit tail is taken when it reads as such, otherwise the three-digit one.
_COMPACT = re.compile(r"(\d{1,2})(\d{3,4})")
_DOOR_LETTER = re.compile(r"\d{1,4}[A-Z]")


class ScanState:
    """Components found so far while scanning the body of one address."""

    __slots__ = (
        "building",
        "community",
        "compound",
        "door",
        "floor",
        "lane",
        "last",
        "park",
        "phase",
        "pois",
        "rest",
        "road",
        "room",
        "segment",
        "stall",
        "sub",
        "town_code",
        "unit",
        "village",
    )

    def __init__(self, town_code: str | None, community: Place | None) -> None:
        self.town_code = town_code
        self.community = community
        self.village: str | None = None
        self.road: str | None = None
        self.segment: str | None = None
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
        self.pois: list[str] = []  # occupant names found by position (after the door), not by their ending
        self.last = "community" if community is not None else ""

    def skip(self, piece: str) -> None:
        """Leave a piece unplaced; it breaks a chain of names (上围村…3组 is not one village)."""
        self.rest.append(piece)
        self.last = "rest"

    @property
    def inside(self) -> bool:
        """Whether a building, unit or floor is known: a plain number after it is a room, not a door."""
        return bool(self.building or self.unit or self.floor)


def place_number(match: re.Match[str], state: ScanState, pending: str) -> None:
    """Place one numbered token; pending is the unsuffixed name written right before it (上围 in 上围3巷)."""
    suffix = match.group("suf")
    token = match.group(0)
    if token.startswith("第"):
        token = token[1:]
    if suffix in ("巷", "弄"):
        _lane(token, state, pending)
        return
    if suffix in NUMBERED_STREETS:
        road_or_lane(pending + token, state)
        return
    if pending.endswith(_SHOP_WORDS) and suffix in ("号", None) and state.stall is None:
        # 商铺26号: a shop unit of the complex named before it.
        pending = pending[:-2]
        if pending:
            _complex(pending, state)
        state.stall = token
        state.last = "stall"
        return
    if pending:
        _place_pending(pending, suffix, state, ends=match.end() == len(match.string))
    if suffix in ("组", "队"):
        _group(token, state)
    elif suffix == "号" or suffix is None:
        _door_or_room(match, state)
    elif suffix == "号楼" and state.building is not None and state.floor is None:
        # 5座3号楼302: a second building word after the building is its floor.
        state.floor = token
        state.last = "floor"
    elif suffix in ("栋", "座", "幢") and state.last == "building" and state.unit is None:
        # 7栋C座: a second building word right after the building names its unit.
        state.unit = token
        state.last = "unit"
    else:
        slot = _SLOT[suffix]
        if getattr(state, slot) is None:
            setattr(state, slot, token)
            state.last = slot
        else:
            state.skip(token)


def _place_pending(pending: str, suffix: str | None, state: ScanState, *, ends: bool) -> None:
    """The unsuffixed name written right before a numbered token: a complex, a natural village, an occupant or rest."""
    if _names_complex(suffix, state, ends=ends) and not misspelt_name(pending):
        # 翡翠山居2栋, 锦龙湾2期, 明珠名轩1506: a name with no suffix of its own, followed by a building, a
        # phase, or (with no road, lane or village to hang on) a bare room number that ends the address, names the
        # building complex. A misspelt suffix (胜德工业元) is left to the matcher's homophone retry.
        _complex(pending, state)
    elif (
        suffix == "号"
        and len(pending) >= 2
        and state.last == "community"
        and not (state.village or state.road or state.lane or state.compound or state.park)
        and not misspelt_name(pending)
    ):
        # 新安社区石岭头12号: a name with no suffix between the community and a door number is a natural village.
        state.village = pending
    elif (
        suffix == "区"
        and state.village is None
        and state.compound is None
        and state.community
        and not misspelt_name(pending)
    ):
        # 石岭头2区8号: a natural village of the community and its numbered area.
        state.village = pending
    else:
        if state.last in ("road", "lane", "door") and suffix in ("室", "房", "楼", "层"):
            # 富华路12号兴旺公寓302房: a name between the door and the room names the building's occupant.
            state.pois.append(pending)
        state.skip(pending)


def misspelt_name(pending: str) -> bool:
    """Whether a suffix shows once homophone slips are folded (胜德工业元, 御林院): the matcher retries those."""
    return NAME.match(pending.translate(FOLD)) is not None


def _names_complex(suffix: str | None, state: ScanState, *, ends: bool) -> bool:
    if suffix in _BUILDINGS or suffix == "期":
        return True
    if state.road or state.lane or state.village or state.door or state.compound or state.park:
        return False
    if suffix == "区":
        return state.community is None
    return suffix is None and ends


def _complex(name: str, state: ScanState) -> None:
    if state.compound is None and state.park is None:
        state.compound = name
        state.last = "compound"
    else:
        state.skip(name)


def _lane(token: str, state: ScanState, pending: str) -> None:
    if len(pending) == 1 and pending in _DIRECTIONS:
        # 西4巷 after a village: the direction is part of the lane's name.
        pending, token = "", pending + token
    if not pending:
        if state.lane is None:
            state.lane = token
        else:
            state.skip(token)
    elif state.road is None and (state.community is not None or state.village is not None):
        # 上围3巷 after a community: a natural village and its numbered lane; 长兴园西3巷: the direction is the lane's.
        if state.village is None:
            if len(pending) >= 4 and pending[-1] in _DIRECTIONS:
                pending, token = pending[:-1], pending[-1] + token
            state.village = pending
        else:
            # 水口村长乐12巷: after a village with a name of its own, the name belongs to the lane.
            token = pending + token
        state.lane = token
    elif state.road is None:
        state.road = pending + token
    elif state.lane is None:
        # 富华路东1巷, 振安大道南2巷: a lane off the road, named after it.
        state.lane = pending + token
    else:
        state.skip(pending + token)
    state.last = "lane"


def road_or_lane(name: str, state: ScanState) -> None:
    """A street name: the road when none is read yet, else the lane, else left over."""
    if state.road is None:
        state.road = name
        state.last = "road"
    elif state.lane is None:
        state.lane = name
        state.last = "lane"
    else:
        state.skip(name)


def _group(token: str, state: ScanState) -> None:
    if state.village is not None and state.last == "village":
        state.village += token
    elif state.village is None:
        state.village = token
    else:
        state.skip(token)
        return
    state.last = "village"


def _door_or_room(match: re.Match[str], state: ScanState) -> None:
    """号 or a bare number: the door on the road, lane or village, or a room once inside a building or complex."""
    ident = match.group("id")
    suffix = match.group("suf")
    bare = suffix is None
    if bare and state.door is None and state.last in ("road", "lane") and _DOOR_LETTER.fullmatch(ident):
        # 富华路26B: right after the road a lettered number is its door, the letter a sub-number (26B → 26, B).
        state.door, state.sub = ident[:-1], ident[-1]
        state.last = "door"
        return
    if bare and not ident.isdigit():
        # 9C, B1203, D: a lettered room, only meaningful inside something.
        if state.room is None and (state.inside or state.compound or state.park or state.door):
            state.room = ident
            state.last = "room"
        else:
            state.skip(match.group(0))
        return
    if state.door is None and not state.inside and not (bare and state.room is None and state.compound):
        if bare and not (state.road or state.lane or state.village):
            state.skip(match.group(0))
            return
        door, _, sub = ident.partition("-")
        state.door = door
        state.sub = sub or None
        state.last = "door"
        return
    if state.room is not None:
        state.skip(match.group(0))
        return
    if bare and state.compound and not state.inside and not state.door:
        compact = _COMPACT.fullmatch(ident)
        if compact is not None and len(ident) >= 5:
            building, room = _split_compact(ident)
            state.building = building
            state.room = room
            state.last = "room"
            return
    if state.inside or state.compound or state.park or (bare and len(ident) >= 3):
        # 12号…302: a bare three-digit number after the door is a flat behind it.
        state.room = ident + "号" if suffix else ident
        state.last = "room"
    else:
        state.skip(match.group(0))


def _split_compact(ident: str) -> tuple[str, str]:
    """38702 → (38, 702), 121506 → (12, 1506)."""
    tail = ident[-4:]
    if len(ident) - 4 >= 1 and 10 <= int(tail[:2]) <= 59 and 1 <= int(tail[2:]) <= 30:
        return ident[:-4], tail
    return ident[:-3], ident[-3:]
