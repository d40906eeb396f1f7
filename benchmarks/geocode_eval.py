"""benchmarks.geocode_eval: the labelled set that judges and calibrates the geocoder, and the judge itself.

Three sources, all on the demo city: the synthetic entities' registrations (noisy library addresses, truth in
`synthetic.entity_truth`), input-method slips of library addresses, and absent addresses
(synthetic.geocode_cases). In-library and absent cases are mixed 4:1. Towns are split in two by code: the
calibration is fitted on one half (`FIT`) and checked on the other (`CHECK`), so the reliability table and the
expected calibration error describe addresses the fit never saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, text

from address_library.match import MATCHED, Matcher, MatchResult
from address_library.repository import index_rows
from address_library.service import Geocoder
from grids.repository import place_names
from synthetic.geocode_cases import CaseMaker, GeocodeCase

FIT, CHECK = "fit", "check"
SLIP_CASES = 12_000
RETYPED_CASES = 6_000
ABSENT_SHARE = 0.25  # absent cases per in-library case: 4:1
SEED = 20261206


@dataclass(frozen=True)
class Judged:
    """One case, the matcher's answer and whether it is right at its stated level."""

    case: GeocodeCase
    result: MatchResult
    right: bool


def half_of(town_code: str, towns: list[str]) -> str:
    """FIT for every other town by code, CHECK for the rest."""
    return FIT if towns.index(town_code) % 2 == 0 else CHECK


def registrations(engine: Engine) -> list[GeocodeCase]:
    """The synthetic entities' registered addresses with their truth (noise kinds joined by '|')."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.raw_address, t.address_id, coalesce(t.noise, 'clean'), a.town_code, a.community_code, "
                "a.road_name, a.grid_code FROM entity e JOIN synthetic.entity_truth t ON t.uscc = e.uscc "
                "JOIN address a ON a.id = t.address_id ORDER BY e.uscc"
            )
        ).all()
    return [GeocodeCase(r[0], r[2], False, int(r[1]), r[3], frozenset({r[4]}), r[5] or None, r[6]) for r in rows]


def cases(engine: Engine, *, slips: int = SLIP_CASES) -> tuple[list[GeocodeCase], list[GeocodeCase], list[str]]:
    """(in-library cases, absent cases, town codes in order): registrations and slips, and absent addresses 4:1."""
    in_library = registrations(engine)
    with engine.connect() as conn:
        rows = index_rows(conn)
        towns, communities = place_names(conn)
    maker = CaseMaker(rows, towns, communities, seed=SEED)
    in_library += maker.slips(slips)
    in_library += maker.retyped(RETYPED_CASES)
    absent = maker.absent(int(len(in_library) * ABSENT_SHARE))
    return in_library, absent, sorted(towns)


class Judge:
    """Decides whether an answer is right at the level it states."""

    def __init__(self, matcher: Matcher) -> None:
        self.parent = dict(zip(matcher.ids.tolist(), matcher.index.parent_ids.tolist(), strict=True))

    def ancestors(self, address_id: int) -> set[int]:
        """The address and every address above it."""
        out = {address_id}
        parent = self.parent.get(address_id, -1)
        while parent is not None and parent >= 0 and parent not in out:
            out.add(int(parent))
            parent = self.parent.get(int(parent), -1)
        return out

    def right(self, case: GeocodeCase, result: MatchResult) -> bool:
        """Right at the stated level: the address meant or one above it; its road; its community; its town."""
        if result.status != MATCHED:
            return False
        if result.is_door_level:
            return case.truth_id is not None and result.address_id in self.ancestors(case.truth_id)
        if result.level == "road":
            return (
                case.road is not None
                and result.town_code == case.town_code
                and case.road in (result.standard_address or "")
            )
        if result.level == "community":
            return result.community_code in case.communities
        return result.town_code == case.town_code


def judge(geocoder: Geocoder, batch: list[GeocodeCase]) -> Iterator[Judged]:
    """Match every case (through the geocoder's own path, learned additions included) and judge it."""
    referee = Judge(geocoder.matcher)
    for case in batch:
        result = geocoder.matcher.match(case.text)
        yield Judged(case, result, referee.right(case, result))
