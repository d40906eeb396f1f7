"""address_library.drafts: a new standard address drafted from a typed one — its components and standard text.

A dispatcher who adds the address of a registration to the library starts from what the registration typed: the
parse gives the components (town, community, road, door number…), which the dispatcher corrects, and the standard
text is composed from them by the library's one rule (the order `synthetic.address_text` writes the test city in):

    {town}[{community} when no road]{village}{park}{road}{lane}{door}号{compound}{phase}{building}{unit}{floor}{room}{stall}

The composed text is then validated like every new address (`address_library.new_addresses`), which normalizes it:
what is stored is the normalized text. Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from address_library.errors import AddressInputError
from address_library.gazetteer import Gazetteer, default_gazetteer
from address_library.normalize import normalize_with_flags
from address_library.parse import ParsedAddress, parse, parse_normalized

# The components a draft is made of, in the order of the standard text (town and community are names).
COMPONENT_FIELDS = (
    "town",
    "community",
    "village",
    "park",
    "road",
    "lane",
    "door_no",
    "sub_no",
    "compound",
    "phase",
    "building",
    "unit",
    "floor",
    "room",
    "stall",
)
# Their Chinese labels (the review page's form).
COMPONENT_LABELS_ZH = {
    "town": "镇街",
    "community": "村（社区）",
    "village": "自然村/坊",
    "park": "工业区",
    "road": "道路",
    "lane": "巷",
    "door_no": "门牌号",
    "sub_no": "附号",
    "compound": "小区/市场",
    "phase": "期",
    "building": "楼栋",
    "unit": "单元",
    "floor": "楼层",
    "room": "房间",
    "stall": "档口/铺位",
}
# The parsed components under their draft names (the parse calls the village natural_village).
_PARSED_NAMES = {"village": "natural_village"}
_AFTER_DOOR = ("compound", "phase", "building", "unit", "floor", "room", "stall")
_ROOM_PARTS = ("floor", "room", "stall")
_BUILDING_PARTS = ("building", "unit")


@dataclass(frozen=True)
class Draft:
    """A new standard address as drafted: components, codes the parse found, level, standard text, parent's text.

    `full_text` is the normalized standard text the address would be stored under (None when the components hold
    no town); `parent_text` the standard text of the address one level up (a building's door, a room's building).
    """

    components: dict[str, str | None]
    town_code: str | None
    community_code: str | None
    level: str | None
    full_text: str | None
    parent_text: str | None


def components_of(parsed: ParsedAddress) -> dict[str, str | None]:
    """The draft components of a parsed address (every COMPONENT_FIELDS key; None when absent)."""
    return {name: getattr(parsed, _PARSED_NAMES.get(name, name)) for name in COMPONENT_FIELDS}


def clean_components(components: Mapping[str, Any]) -> dict[str, str | None]:
    """Every COMPONENT_FIELDS key, stripped; blanks and unknown keys dropped (None)."""
    out: dict[str, str | None] = {}
    for name in COMPONENT_FIELDS:
        value = components.get(name)
        text = str(value).strip() if value is not None else ""
        out[name] = text or None
    return out


def level_of(components: Mapping[str, str | None]) -> str | None:
    """The finest level the components describe: room, building, door, or None (a road or place alone)."""
    if any(components.get(k) for k in _ROOM_PARTS):
        return "room"
    if any(components.get(k) for k in _BUILDING_PARTS):
        return "building"
    if components.get("door_no") or components.get("compound") or components.get("park"):
        return "door"
    return None


def standard_text(components: Mapping[str, str | None]) -> str:
    """The standard text of the components, as written (not yet normalized): '' without a town.

    The community is written only when no road locates the address; the door is 12号, or 12-1号 with a sub-number.
    """
    town = components.get("town")
    if not town:
        return ""
    out = [town]
    road = components.get("road")
    if components.get("community") and not road:
        out.append(str(components["community"]))
    out.extend(str(components[k]) for k in ("village", "park") if components.get(k))
    if road:
        out.append(road)
    if components.get("lane"):
        out.append(str(components["lane"]))
    door = components.get("door_no")
    if door:
        door = door.removesuffix("号")
        sub = components.get("sub_no")
        out.append(f"{door}-{sub}号" if sub else f"{door}号")
    out.extend(str(components[k]) for k in _AFTER_DOOR if components.get(k))
    return "".join(out)


def parent_components(components: Mapping[str, str | None]) -> dict[str, str | None] | None:
    """The components of the address one level up (a room's building, a building's door); None for a door."""
    level = level_of(components)
    if level == "room":
        return {**components, **dict.fromkeys(_ROOM_PARTS)}
    if level == "building":
        return {**components, **dict.fromkeys(_BUILDING_PARTS)}
    return None


def draft_from_components(components: Mapping[str, Any], gazetteer: Gazetteer | None = None) -> Draft:
    """The draft of edited components: its level, its normalized standard text, and the codes that text parses to.

    AddressInputError when the composed text cannot be an address at all (over-long, control characters).
    """
    gaz = gazetteer or default_gazetteer()
    clean = clean_components(components)
    written = standard_text(clean)
    if not written:
        return Draft(clean, None, None, level_of(clean), None, None)
    normalized = normalize_with_flags(written)
    parsed = parse_normalized(normalized, gaz)
    parent = parent_components(clean)
    parent_text = _normalized_or_none(standard_text(parent)) if parent is not None else None
    return Draft(clean, parsed.town_code, parsed.community_code, level_of(clean), normalized.text, parent_text)


def draft_from_typed(
    typed: str,
    *,
    town_code: str | None = None,
    community_code: str | None = None,
    gazetteer: Gazetteer | None = None,
) -> Draft:
    """The draft of a typed address: its parsed components, the town and community filled in from the best-known
    place (`town_code`, `community_code`: the geocoder's coarse answer) when the text does not name them.
    """
    gaz = gazetteer or default_gazetteer()
    try:
        parsed = parse(typed, gaz)
    except AddressInputError:
        parsed = ParsedAddress()
    components = components_of(parsed)
    known_town = parsed.town_code or town_code
    if not components["town"] and known_town:
        components["town"] = gaz.town_names.get(known_town)
    if not components["community"] and community_code and not components["road"]:
        name, community_town = gaz.community_names.get(community_code, (None, None))
        if community_town == known_town:
            components["community"] = name
    return draft_from_components(components, gaz)


def _normalized_or_none(text: str) -> str | None:
    try:
        return normalize_with_flags(text).text or None
    except AddressInputError:
        return None
