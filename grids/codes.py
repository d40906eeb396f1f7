"""grids.codes: the code hierarchy town → community → grid, in one place.

Codes follow the national statistical division codes: a town is 12 digits ending in ``000`` (441900003000), a
community (village or residential community) is 12 digits sharing the town's first 9 (441900003001), and a grid is
its community's 12 digits and 3 more (441900003001002). Every other module asks this one how a code is laid out.
"""

from __future__ import annotations

import re
from typing import Literal

Level = Literal["town", "community", "grid"]

TOWN_PREFIX_DIGITS = 9
TOWN_DIGITS = 12  # a town code is as long as a community code: its prefix and TOWN_SUFFIX
COMMUNITY_DIGITS = 12
GRID_DIGITS = 15
GRID_NUMBER_DIGITS = GRID_DIGITS - COMMUNITY_DIGITS
TOWN_SUFFIX = "000"

TOWN_PATTERN = re.compile(r"^\d{9}000$")
COMMUNITY_PATTERN = re.compile(r"^\d{12}$")
GRID_PATTERN = re.compile(r"^\d{15}$")


def town_of(code: str) -> str:
    """The town code of a town, community (12 digits) or grid (15 digits) code."""
    return code[:TOWN_PREFIX_DIGITS] + TOWN_SUFFIX


def community_of(grid_code: str) -> str:
    """The community code of a grid code (its first 12 digits)."""
    return grid_code[:COMMUNITY_DIGITS]


def grid_code(community_code: str, number: int) -> str:
    """The code of a community's grid number `number` (1..999): the community code and 3 digits."""
    return f"{community_code}{number:0{GRID_NUMBER_DIGITS}d}"


def grid_number(grid_code: str) -> int:
    """A grid's number within its community (the digits after the community code)."""
    return int(grid_code[COMMUNITY_DIGITS:])


def child_prefix(parent_code: str, child_level: Level) -> str:
    """What the code of every `child_level` unit inside `parent_code` begins with.

    A community shares its town's first 9 digits (not its 000); a grid begins with its community's whole code.
    """
    return parent_code[:TOWN_PREFIX_DIGITS] if child_level == "community" else parent_code


def is_town(code: str) -> bool:
    """Whether `code` is laid out as a town code (12 digits ending in 000)."""
    return bool(TOWN_PATTERN.fullmatch(code))


def is_community(code: str) -> bool:
    """Whether `code` is laid out as a community code (12 digits not ending in 000)."""
    return bool(COMMUNITY_PATTERN.fullmatch(code)) and not code.endswith(TOWN_SUFFIX)


def level_of(code: str) -> Level | None:
    """The level a code's layout names (None when it is no territorial code)."""
    if GRID_PATTERN.fullmatch(code):
        return "grid"
    if is_town(code):
        return "town"
    if is_community(code):
        return "community"
    return None


def within(code: str, area: str) -> bool:
    """Whether the unit `code` lies inside the unit `area` (a town holds its communities and grids)."""
    if is_town(area):
        return code[:TOWN_PREFIX_DIGITS] == area[:TOWN_PREFIX_DIGITS]
    return code.startswith(area)


def community_sql(grid_column: str) -> str:
    """The SQL expression of the community code of a grid-code column (a fixed fragment, never a value)."""
    return f"left({grid_column}, {COMMUNITY_DIGITS})"
