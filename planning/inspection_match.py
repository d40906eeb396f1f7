"""planning.inspection_match: inspectors matched to drawn visits from the draw's seed (pure, stdlib only).

An auditor recomputes it from the seed alone; docs/INSPECTIONS_MATCHING.md documents it step by step. Every
choice is ordered by a key `order(seed, message)` = hex HMAC-SHA256 (key: the 32 seed bytes, message: UTF-8 text),
ascending, never by input order, so shuffling the visits or the inspectors changes nothing.

1. Visits are taken in order of (number of departments, descending; `order(seed, "visit|{uscc}")`): joint visits,
   the hardest to staff, come first.
2. A visit's departments D are the departments of its items (sorted); it may only go to a team of exactly D.
   An inspector may serve a visit (is *eligible*) when their department is in D, their load cap is at least 1,
   and the visit's entity is not in their declared conflicts, not among the entities they visited in the last
   12 months, and the visit's grid is not their home grid.
3. A team may take a visit when its departments are D, every member is eligible for it, every item of the visit is
   covered by a member of the item's department qualified for it, and the team has fewer visits than the least
   load cap of its members (each member makes every visit of their team, so no member exceeds their cap).
4. The choice for one visit, in order (T = the visit's town, the first 9 digits of its grid code + "000"):
   a. the first existing team (by team number) of town T that may take it;
   b. a new team of free (not yet in a team) eligible inspectors whose office is in T;
   c. the first existing team of any town that may take it;
   d. a new team of any free eligible inspectors, those with their office in T first.
   Filling teams up to the load cap before founding another makes few teams with many visits (routes are planned
   per team); the town rule keeps a team's visits near its office.
5. A new team for a visit: per department of D in order, walk its free eligible inspectors by
   `order(seed, "team|{D joined by ','}|{inspector_id}")` (locals first in step d) and take each one qualified for
   an item of that department not yet covered, until all are covered; then, while the team has fewer than two
   members, take the next such inspector (any department of D, same order) qualified for any of the visit's items
   of their department. The team's town is T; its number is the next one (1, 2, …).
6. A visit no step can place is unmatched, with the first reason that holds: `unknown_item` (an item of no known
   department), `no_qualified_inspectors` (even ignoring conflicts and load, the inspectors of D cannot cover
   its items with two members), `all_conflicted` (they could, but not without someone excluded by step 2),
   else `load_cap_reached` (the eligible inspectors are all in teams that are full or cannot take it).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TOWN_PREFIX_DIGITS = 9  # grids.codes: a grid code's first 9 digits and "000" are its town's code
TOWN_SUFFIX = "000"

UNMATCHED_REASONS_ZH: Mapping[str, str] = {
    "unknown_item": "抽查事项不属于任何已知部门",
    "no_qualified_inspectors": "相关部门没有足够的具备该事项资格的执法人员（每户至少两名）",
    "all_conflicted": "具备资格的执法人员均需回避（住所网格、近12个月检查过或申报的利害关系）",
    "load_cap_reached": "可派的执法人员已达本次抽查的检查户数上限",
}


@dataclass(frozen=True)
class VisitNeed:
    """One drawn entity to visit: its credit code, grid, and every item drawn for it (of one or more departments)."""

    uscc: str
    grid_code: str | None
    items: tuple[str, ...]


@dataclass(frozen=True)
class InspectorInfo:
    """An inspector as the matching sees them: department, qualified item codes, where they must not go, their cap.

    `office_town` is the town code of their office; when None, the town of their home grid stands in for it.
    """

    id: int
    department: str
    qualifications: frozenset[str]
    home_grid: str | None
    conflicts: frozenset[str]
    recent: frozenset[str]
    load_cap: int
    office: tuple[float, float] | None
    office_town: str | None = None


@dataclass(frozen=True)
class Team:
    """A team of at least two inspectors covering the departments of every visit it makes."""

    team_no: int
    departments: tuple[str, ...]
    inspector_ids: tuple[int, ...]


@dataclass(frozen=True)
class Matching:
    """The teams, each visit's team number (by credit code), and the visits no team could make, with a reason code."""

    teams: tuple[Team, ...]
    assignment: Mapping[str, int]
    unmatched: Mapping[str, str]


def order_key(seed: bytes, message: str) -> str:
    """The hex HMAC-SHA256 of `message` (UTF-8) under the seed: every choice of the matching sorts by it."""
    return hmac.digest(seed, message.encode("utf-8"), "sha256").hex()


def town_of_grid(grid_code: str | None) -> str | None:
    """The town code of a grid code (None for None), as grids.codes lays codes out."""
    return None if not grid_code else grid_code[:TOWN_PREFIX_DIGITS] + TOWN_SUFFIX


@dataclass
class _OpenTeam:
    """A team being filled: members, departments, town, visits so far, and its room (the least member load cap)."""

    team_no: int
    departments: tuple[str, ...]
    town: str | None
    members: list[InspectorInfo]
    cap: int
    visits: int = 0


def _eligible(person: InspectorInfo, visit: VisitNeed, departments: tuple[str, ...]) -> bool:
    """Step 2: may this inspector serve this visit at all (department, cap, no conflict, not their home grid)."""
    return (
        person.department in departments
        and person.load_cap >= 1
        and visit.uscc not in person.conflicts
        and visit.uscc not in person.recent
        and (visit.grid_code is None or person.home_grid != visit.grid_code)
    )


def _covers(members: Iterable[InspectorInfo], visit: VisitNeed, item_department: Mapping[str, str]) -> bool:
    """Every item of the visit has a member of the item's department qualified for it."""
    members = list(members)
    return all(
        any(p.department == item_department[item] and item in p.qualifications for p in members) for item in visit.items
    )


def _useful(person: InspectorInfo, visit: VisitNeed, item_department: Mapping[str, str]) -> bool:
    """The inspector is qualified for at least one of the visit's items of their own department."""
    return any(item_department[item] == person.department and item in person.qualifications for item in visit.items)


def _form_team(
    visit: VisitNeed,
    departments: tuple[str, ...],
    ordered: Sequence[InspectorInfo],
    taken: set[int],
    item_department: Mapping[str, str],
) -> list[InspectorInfo] | None:
    """Step 5: a new team for the visit from `ordered` (the departments' inspectors in the rule's order, locals first
    where the rule says so), skipping those in a team already or not eligible; None when it cannot be formed."""

    def usable(person: InspectorInfo) -> bool:
        return person.id not in taken and _eligible(person, visit, departments)

    members: list[InspectorInfo] = []
    for department in departments:
        uncovered = {item for item in visit.items if item_department[item] == department}
        for person in ordered:
            if not uncovered:
                break
            if person.department == department and person.qualifications & uncovered and usable(person):
                members.append(person)
                uncovered -= person.qualifications
        if uncovered:
            return None
    for person in ordered:
        if len(members) >= 2:
            break
        if person not in members and _useful(person, visit, item_department) and usable(person):
            members.append(person)
    return members if len(members) >= 2 else None


def _office_town(person: InspectorInfo) -> str | None:
    """The town of the inspector's office (their home grid's town when the office town is not known)."""
    return person.office_town or town_of_grid(person.home_grid)


def _may_take(
    team: _OpenTeam, visit: VisitNeed, departments: tuple[str, ...], item_department: Mapping[str, str]
) -> bool:
    """Step 3: the team has room, the right departments, nobody excluded, and covers every item of the visit."""
    return (
        team.departments == departments
        and team.visits < team.cap
        and all(_eligible(p, visit, departments) for p in team.members)
        and _covers(team.members, visit, item_department)
    )


class _Pools:
    """The inspectors of a department set in the order of step 5, split into those whose office is in a town and the
    others (and the two joined, locals first); computed once per set and town (the HMACs are the cost)."""

    def __init__(self, seed: bytes, inspectors: Sequence[InspectorInfo]) -> None:
        self._seed = seed
        self._inspectors = inspectors
        self._office_towns = {p.id: _office_town(p) for p in inspectors}
        self._orders: dict[tuple[str, ...], list[InspectorInfo]] = {}
        self._splits: dict[tuple[tuple[str, ...], str | None], tuple[list[InspectorInfo], list[InspectorInfo]]] = {}

    def ordered(self, departments: tuple[str, ...]) -> list[InspectorInfo]:
        """The departments' inspectors by `order(seed, "team|{departments}|{id}")`."""
        if departments not in self._orders:
            label = ",".join(departments)
            self._orders[departments] = sorted(
                (p for p in self._inspectors if p.department in departments),
                key=lambda p: order_key(self._seed, f"team|{label}|{p.id}"),
            )
        return self._orders[departments]

    def split(self, departments: tuple[str, ...], town: str | None) -> tuple[list[InspectorInfo], list[InspectorInfo]]:
        """(those with their office in the town, all of them with those first), each part in the order of `ordered`."""
        if (departments, town) not in self._splits:
            everyone = self.ordered(departments)
            local = [p for p in everyone if self._office_towns[p.id] == town]
            self._splits[departments, town] = (local, local + [p for p in everyone if self._office_towns[p.id] != town])
        return self._splits[departments, town]


class _Free:
    """How many free inspectors (in no team yet, load cap at least 1) are qualified for each item, city-wide and per
    office town: a necessary condition of step 5, checked before any walk, so that once the inspectors are used up
    every further visit is settled in constant time instead of a walk past every inspector (an over-subscribed
    city-wide plan would otherwise take minutes)."""

    def __init__(self, inspectors: Sequence[InspectorInfo]) -> None:
        self._everywhere: dict[tuple[str, str], int] = {}
        self._in_town: dict[tuple[str | None, str, str], int] = {}
        for person in inspectors:
            self._count(person, 1)

    def _count(self, person: InspectorInfo, step: int) -> None:
        if person.load_cap < 1:
            return
        town = _office_town(person)
        for item in person.qualifications:
            key = (person.department, item)
            self._everywhere[key] = self._everywhere.get(key, 0) + step
            self._in_town[town, *key] = self._in_town.get((town, *key), 0) + step

    def take(self, members: Iterable[InspectorInfo]) -> None:
        """These inspectors now form a team: no longer free."""
        for person in members:
            self._count(person, -1)

    def may_form(self, visit: VisitNeed, item_department: Mapping[str, str], town: str | None, *, local: bool) -> bool:
        """False when step 5 surely fails from the free inspectors (of the town when `local`): an item of the visit
        no free inspector of its department is qualified for, or fewer than two qualifications in all (two useful
        members are needed)."""
        total = 0
        for item in visit.items:
            key = (item_department[item], item)
            count = self._in_town.get((town, *key), 0) if local else self._everywhere.get(key, 0)
            if count == 0:
                return False
            total += count
        return total >= 2


class _Reasons:
    """Step 6 without walking every inspector for every visit: per item list, the inspectors of its departments with
    a load cap who are useful and who are qualified per item (computed once), and, per visit, the few excluded by
    step 2 found through indexes by home grid and by entity (conflicts and recent visits)."""

    def __init__(self, inspectors: Sequence[InspectorInfo], item_department: Mapping[str, str]) -> None:
        self._inspectors = inspectors
        self._item_department = item_department
        self._by_items: dict[tuple[str, ...], tuple[bool, frozenset[int], dict[str, list[int]]]] = {}
        self._by_home: dict[str, set[int]] = {}
        self._by_entity: dict[str, set[int]] = {}
        for person in inspectors:
            if person.home_grid is not None:
                self._by_home.setdefault(person.home_grid, set()).add(person.id)
            for uscc in person.conflicts | person.recent:
                self._by_entity.setdefault(uscc, set()).add(person.id)

    def _of_items(
        self, visit: VisitNeed, departments: tuple[str, ...]
    ) -> tuple[bool, frozenset[int], dict[str, list[int]]]:
        """(staffable ignoring conflicts and load, ids of the useful, ids qualified per item) for the visit's items."""
        if visit.items not in self._by_items:
            pool = [p for p in self._inspectors if p.department in departments and p.load_cap >= 1]
            useful = [p for p in pool if _useful(p, visit, self._item_department)]
            qualified = {
                item: [p.id for p in useful if p.department == self._item_department[item] and item in p.qualifications]
                for item in visit.items
            }
            staffable = len(useful) >= 2 and all(qualified.values())
            self._by_items[visit.items] = (staffable, frozenset(p.id for p in useful), qualified)
        return self._by_items[visit.items]

    def reason(self, visit: VisitNeed, departments: tuple[str, ...]) -> str:
        """Why a visit stays unmatched: the first of step 6's reasons that holds."""
        staffable, useful, qualified = self._of_items(visit, departments)
        if not staffable:
            return "no_qualified_inspectors"
        excluded = self._by_entity.get(visit.uscc, set())
        if visit.grid_code is not None:
            excluded = excluded | self._by_home.get(visit.grid_code, set())
        if not excluded:
            return "load_cap_reached"
        if len(useful) - len(excluded & useful) < 2 or not all(
            any(i not in excluded for i in ids) for ids in qualified.values()
        ):
            return "all_conflicted"
        return "load_cap_reached"


def match(
    seed: bytes,
    visits: Sequence[VisitNeed],
    inspectors: Sequence[InspectorInfo],
    item_department: Mapping[str, str],
) -> Matching:
    """Teams of inspectors for the drawn visits, from the draw's seed (see the module docstring for the rules).

    Near-linear in the visits: open teams are kept per department set and per town, free inspectors are counted per
    item (`_Free`) so a team is looked for only where one could be formed, and a reason costs a few set lookups.
    """
    if len({v.uscc for v in visits}) != len(visits):
        raise ValueError("each entity may appear in one visit only")
    if len({p.id for p in inspectors}) != len(inspectors):
        raise ValueError("each inspector may appear once only")

    def visit_rank(visit: VisitNeed) -> tuple[int, str]:
        departments = {item_department.get(item) for item in visit.items}
        return -len(departments), order_key(seed, f"visit|{visit.uscc}")

    pools = _Pools(seed, inspectors)
    free = _Free(inspectors)
    reasons = _Reasons(inspectors, item_department)
    taken: set[int] = set()
    teams: list[_OpenTeam] = []
    # Teams with room, by department set (and by set and town), in team-number order (a full team takes no more).
    open_teams: dict[tuple[str, ...], list[_OpenTeam]] = {}
    open_in_town: dict[tuple[tuple[str, ...], str | None], list[_OpenTeam]] = {}
    assignment: dict[str, int] = {}
    unmatched: dict[str, str] = {}
    for visit in sorted(visits, key=visit_rank):
        if not visit.items or any(item not in item_department for item in visit.items):
            unmatched[visit.uscc] = "unknown_item"
            continue
        departments = tuple(sorted({item_department[item] for item in visit.items}))
        town = town_of_grid(visit.grid_code)
        room = open_teams.setdefault(departments, [])
        room_here = open_in_town.setdefault((departments, town), [])
        team = next((t for t in room_here if _may_take(t, visit, departments, item_department)), None)
        members: list[InspectorInfo] | None = None
        if team is None:
            local, everyone = pools.split(departments, town)
            if free.may_form(visit, item_department, town, local=True):
                members = _form_team(visit, departments, local, taken, item_department)
            if members is None:
                team = next((t for t in room if _may_take(t, visit, departments, item_department)), None)
                if team is None and free.may_form(visit, item_department, town, local=False):
                    members = _form_team(visit, departments, everyone, taken, item_department)
        if team is None and members is not None:
            team = _OpenTeam(
                team_no=len(teams) + 1,
                departments=departments,
                town=town,
                members=members,
                cap=min(p.load_cap for p in members),
            )
            teams.append(team)
            room.append(team)
            room_here.append(team)
            taken.update(p.id for p in members)
            free.take(members)
        if team is None:
            unmatched[visit.uscc] = reasons.reason(visit, departments)
            continue
        team.visits += 1
        assignment[visit.uscc] = team.team_no
        if team.visits >= team.cap:
            room.remove(team)
            open_in_town[departments, team.town].remove(team)
    return Matching(
        teams=tuple(Team(t.team_no, t.departments, tuple(sorted(p.id for p in t.members))) for t in teams),
        assignment=assignment,
        unmatched=unmatched,
    )
