"""address_library.match_result: what the matcher answers — status, level, the address, its evidence — and how
two answers compare (a finer level first, then a whole number path over the address above it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from address_library.calibration import Evidence

MATCHED = "matched"
AMBIGUOUS = "ambiguous"
NOT_FOUND = "not_found"


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
    evidence: Evidence | None = None

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


EXACT_DOOR = (10, 1)
_LEVEL_RANK = {"room": 10, "building": 10, "door": 10, "road": 6, "community": 4, "town": 2}
# An ambiguous answer (several addresses fit exactly) says more than the town alone, less than the community.
_AMBIGUOUS_RANK = 3


def quality(result: MatchResult) -> tuple[int, int]:
    """How good an answer is: its level first, then a whole number path over the address above it."""
    whole = int(result.evidence is not None and result.evidence.path != "parent" and not result.evidence.note)
    return rank(result), whole


def rank(result: MatchResult) -> int:
    """How fine an answer is: door-level answers beat road, community and town ones; ambiguity ranks last."""
    if result.status == AMBIGUOUS:
        return _AMBIGUOUS_RANK if result.candidates else 0
    return _LEVEL_RANK.get(result.level or "", 0) if result.status == MATCHED else 0
