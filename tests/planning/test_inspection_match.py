"""Inspectors matched to drawn visits, pure: two or more per visit, qualified, never conflicted, never over their cap."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.inspection_match import (
    UNMATCHED_REASONS_ZH,
    InspectorInfo,
    Matching,
    Team,
    VisitNeed,
    match,
    order_key,
    town_of_grid,
)

# Two departments with three items each; grids in two towns (a grid's first 9 digits + "000" name its town).
ITEM_DEPARTMENT = {
    "market-01": "market",
    "market-02": "market",
    "market-03": "market",
    "health-01": "health",
    "health-02": "health",
    "health-03": "health",
}
GRIDS = ["441900003001001", "441900003001002", "441900003002001", "441900004001001", "441900004001002"]
USCCS = [f"91441900MA{n:07d}X" for n in range(60)]
SEED = hashlib.sha256(b"seed").digest()


@st.composite
def problems(draw: st.DrawFn) -> tuple[bytes, list[VisitNeed], list[InspectorInfo]]:
    """A random drawn plan: 0-25 visits of one or both departments, 0-14 inspectors with conflicts, caps, homes."""
    seed = draw(st.binary(min_size=32, max_size=32))
    usccs = draw(st.lists(st.sampled_from(USCCS), unique=True, max_size=25))
    visits = [
        VisitNeed(
            uscc=uscc,
            grid_code=draw(st.sampled_from([*GRIDS, None])),
            items=tuple(draw(st.lists(st.sampled_from(sorted(ITEM_DEPARTMENT)), min_size=1, max_size=4, unique=True))),
        )
        for uscc in usccs
    ]
    inspectors = []
    for inspector_id in range(1, draw(st.integers(0, 14)) + 1):
        department = draw(st.sampled_from(["market", "health", "culture"]))
        own = sorted(item for item, dept in ITEM_DEPARTMENT.items() if dept == department)
        inspectors.append(
            InspectorInfo(
                id=inspector_id * 7,
                department=department,
                qualifications=frozenset(draw(st.lists(st.sampled_from(own), unique=True)) if own else []),
                home_grid=draw(st.sampled_from([*GRIDS, None])),
                conflicts=frozenset(draw(st.lists(st.sampled_from(usccs), max_size=2)) if usccs else []),
                recent=frozenset(draw(st.lists(st.sampled_from(usccs), max_size=2)) if usccs else []),
                load_cap=draw(st.sampled_from([0, 1, 2, 3, 20])),
                office=None,
            )
        )
    return seed, visits, inspectors


def departments_of(visit: VisitNeed) -> tuple[str, ...]:
    """The sorted departments whose items the visit carries."""
    return tuple(sorted({ITEM_DEPARTMENT[item] for item in visit.items}))


def check_rules(visits: list[VisitNeed], inspectors: list[InspectorInfo], result: Matching) -> None:
    """Every rule of the issue and of docs/INSPECTIONS_MATCHING.md, asserted on one matching."""
    people = {p.id: p for p in inspectors}
    teams = {t.team_no: t for t in result.teams}
    assert [t.team_no for t in result.teams] == list(range(1, len(result.teams) + 1))
    # Nobody dropped silently, nobody both matched and unmatched.
    assert set(result.assignment) | set(result.unmatched) == {v.uscc for v in visits}
    assert not set(result.assignment) & set(result.unmatched)
    assert set(result.unmatched.values()) <= set(UNMATCHED_REASONS_ZH)
    # An inspector is in at most one team; every team has at least two.
    members = [i for t in result.teams for i in t.inspector_ids]
    assert len(members) == len(set(members))
    assert all(len(t.inspector_ids) >= 2 for t in result.teams)
    for visit in visits:
        if visit.uscc not in result.assignment:
            continue
        team = teams[result.assignment[visit.uscc]]
        crew = [people[i] for i in team.inspector_ids]
        assert team.departments == departments_of(visit)
        assert {p.department for p in crew} == set(team.departments)
        for item in visit.items:
            assert any(p.department == ITEM_DEPARTMENT[item] and item in p.qualifications for p in crew), item
        for p in crew:
            assert visit.uscc not in p.conflicts
            assert visit.uscc not in p.recent
            assert visit.grid_code is None or p.home_grid != visit.grid_code
    # Load caps: each member makes every visit of their team.
    visits_per_team = Counter(result.assignment.values())
    for team in result.teams:
        assert visits_per_team[team.team_no] >= 1
        assert all(visits_per_team[team.team_no] <= people[i].load_cap for i in team.inspector_ids)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_every_rule_holds_on_any_plan(problem: tuple[bytes, list[VisitNeed], list[InspectorInfo]]) -> None:
    """At least two per visit, the visit's departments and items covered, no conflict, no one over their cap."""
    seed, visits, inspectors = problem
    check_rules(visits, inspectors, match(seed, visits, inspectors, ITEM_DEPARTMENT))


@settings(max_examples=150, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_shuffling_the_inputs_changes_nothing(
    problem: tuple[bytes, list[VisitNeed], list[InspectorInfo]], shuffler: random.Random
) -> None:
    """The matching depends on the seed and the data only: the order of the rows read from the database is irrelevant."""
    seed, visits, inspectors = problem
    first = match(seed, visits, inspectors, ITEM_DEPARTMENT)
    shuffler.shuffle(visits)
    shuffler.shuffle(inspectors)
    assert match(seed, visits, inspectors, ITEM_DEPARTMENT) == first


@settings(max_examples=150, deadline=None)
@given(problems())
def test_unmatched_reasons_tell_the_truth(problem: tuple[bytes, list[VisitNeed], list[InspectorInfo]]) -> None:
    """A visit said to lack qualified inspectors lacks them; one said to be conflicted would be staffed alone
    without the conflicts; one said to hit the load cap would be staffed alone."""
    seed, visits, inspectors = problem
    result = match(seed, visits, inspectors, ITEM_DEPARTMENT)
    for visit in visits:
        reason = result.unmatched.get(visit.uscc)
        if reason is None:
            continue
        alone = match(seed, [visit], inspectors, ITEM_DEPARTMENT)
        unconflicted = [
            InspectorInfo(p.id, p.department, p.qualifications, None, frozenset(), frozenset(), p.load_cap, None)
            for p in inspectors
        ]
        alone_unconflicted = match(seed, [visit], unconflicted, ITEM_DEPARTMENT)
        if reason == "no_qualified_inspectors":
            assert visit.uscc in alone_unconflicted.unmatched
        elif reason == "all_conflicted":
            assert alone.unmatched == {visit.uscc: "all_conflicted"}
            assert visit.uscc in alone_unconflicted.assignment
        else:
            assert reason == "load_cap_reached"
            assert visit.uscc in alone.assignment


def officer(
    inspector_id: int, department: str, *, home: str | None = None, cap: int = 20, office_town: str | None = None
) -> InspectorInfo:
    """A fully qualified inspector of a department with no conflicts."""
    items = frozenset(item for item, dept in ITEM_DEPARTMENT.items() if dept == department)
    return InspectorInfo(inspector_id, department, items, home, frozenset(), frozenset(), cap, None, office_town)


def test_a_joint_visit_is_one_visit_made_by_one_team_of_both_departments() -> None:
    """进一次门、查多项事: the market and health items of one shop are checked by one team holding both departments."""
    shop = VisitNeed(USCCS[0], GRIDS[0], ("market-01", "health-02"))
    people = [officer(1, "market"), officer(2, "market"), officer(3, "health"), officer(4, "health")]
    result = match(SEED, [shop], people, ITEM_DEPARTMENT)
    (team,) = result.teams
    assert team.departments == ("health", "market")
    assert result.assignment == {shop.uscc: 1}
    assert {p.department for p in people if p.id in team.inspector_ids} == {"market", "health"}


def test_teams_fill_up_to_the_load_cap_before_another_is_formed() -> None:
    """Seven shops and a cap of three: three teams (3 + 3 + 1 visits), not seven teams of one visit each."""
    shops = [VisitNeed(uscc, GRIDS[0], ("market-01",)) for uscc in USCCS[:7]]
    people = [officer(i, "market", home=GRIDS[3], cap=3) for i in range(1, 11)]
    result = match(SEED, shops, people, ITEM_DEPARTMENT)
    assert sorted(Counter(result.assignment.values()).values()) == [1, 3, 3]
    assert all(len(t.inspector_ids) == 2 for t in result.teams)


def test_a_team_is_formed_from_inspectors_whose_office_is_in_the_visits_town() -> None:
    """Local inspectors first: a shop in town 003 gets the two inspectors whose office is in town 003."""
    town_003, town_004 = town_of_grid(GRIDS[0]), town_of_grid(GRIDS[3])
    people = [officer(i, "market", office_town=town_004) for i in range(1, 9)] + [
        officer(20, "market", office_town=town_003),
        officer(21, "market", home=GRIDS[1]),  # no office town known: the home grid's town (003) stands in
    ]
    result = match(SEED, [VisitNeed(USCCS[0], GRIDS[0], ("market-02",))], people, ITEM_DEPARTMENT)
    assert result.teams[0].inspector_ids == (20, 21)


def test_the_inspector_living_in_the_grid_a_declared_conflict_and_a_recent_visitor_stay_away() -> None:
    """Recusal: of five inspectors, the three who must recuse themselves are never sent; the other two are."""
    shop = VisitNeed(USCCS[0], GRIDS[0], ("market-01",))
    people = [
        officer(1, "market", home=GRIDS[0]),
        InspectorInfo(2, "market", frozenset({"market-01"}), None, frozenset({shop.uscc}), frozenset(), 20, None),
        InspectorInfo(3, "market", frozenset({"market-01"}), None, frozenset(), frozenset({shop.uscc}), 20, None),
        officer(4, "market"),
        officer(5, "market"),
    ]
    result = match(SEED, [shop], people, ITEM_DEPARTMENT)
    assert result.teams[0].inspector_ids == (4, 5)


@pytest.mark.parametrize(
    ("people", "reason"),
    [
        ([officer(1, "market")], "no_qualified_inspectors"),
        ([officer(1, "market"), officer(2, "health")], "no_qualified_inspectors"),
        ([officer(1, "market"), officer(2, "market", home=GRIDS[0])], "all_conflicted"),
        ([officer(1, "market", cap=0), officer(2, "market")], "no_qualified_inspectors"),
    ],
)
def test_a_visit_that_cannot_be_staffed_is_listed_with_its_reason(people: list[InspectorInfo], reason: str) -> None:
    """Never dropped silently: the visit is unmatched with a reason code that has a Chinese explanation."""
    shop = VisitNeed(USCCS[0], GRIDS[0], ("market-01",))
    result = match(SEED, [shop], people, ITEM_DEPARTMENT)
    assert result.unmatched == {shop.uscc: reason}
    assert UNMATCHED_REASONS_ZH[reason]


def test_once_every_inspector_is_at_their_cap_the_rest_wait_with_load_cap_reached() -> None:
    """Two inspectors with a cap of two: the first two shops are visited, the third waits for the next plan."""
    shops = [VisitNeed(uscc, GRIDS[0], ("market-01",)) for uscc in USCCS[:3]]
    result = match(SEED, shops, [officer(1, "market", cap=2), officer(2, "market", cap=2)], ITEM_DEPARTMENT)
    assert len(result.assignment) == 2
    assert list(result.unmatched.values()) == ["load_cap_reached"]


def test_an_item_of_no_known_department_is_not_guessed() -> None:
    """An item code the caller did not map to a department leaves the visit unmatched (unknown_item)."""
    shop = VisitNeed(USCCS[0], GRIDS[0], ("tax-01",))
    assert match(SEED, [shop], [officer(1, "market"), officer(2, "market")], ITEM_DEPARTMENT).unmatched == {
        shop.uscc: "unknown_item"
    }


def test_an_auditor_recomputes_the_order_keys_from_the_documented_messages() -> None:
    """order_key is HMAC-SHA256(seed, UTF-8 message) in hex, as docs/INSPECTIONS_MATCHING.md says."""
    expected = hmac.new(SEED, f"visit|{USCCS[0]}".encode(), hashlib.sha256).hexdigest()
    assert order_key(SEED, f"visit|{USCCS[0]}") == expected
    # And the matching follows them: of ten equal inspectors, the team is the two with the smallest keys.
    people = [officer(i, "market") for i in range(1, 11)]
    result = match(SEED, [VisitNeed(USCCS[0], GRIDS[0], ("market-01",))], people, ITEM_DEPARTMENT)
    firsts = sorted(range(1, 11), key=lambda i: order_key(SEED, f"team|market|{i}"))[:2]
    assert result.teams[0].inspector_ids == tuple(sorted(firsts))


def test_another_seed_forms_other_teams() -> None:
    """The seed matters: over a few seeds, the same shop is visited by different pairs of inspectors."""
    people = [officer(i, "market") for i in range(1, 21)]
    shop = VisitNeed(USCCS[0], GRIDS[0], ("market-01",))
    pairs = {match(bytes([n]) * 32, [shop], people, ITEM_DEPARTMENT).teams[0].inspector_ids for n in range(10)}
    assert len(pairs) > 5


def test_the_same_entity_twice_is_refused() -> None:
    """A caller bug (one entity in two visits) is refused rather than matched twice."""
    shop = VisitNeed(USCCS[0], GRIDS[0], ("market-01",))
    with pytest.raises(ValueError, match="one visit"):
        match(SEED, [shop, shop], [officer(1, "market"), officer(2, "market")], ITEM_DEPARTMENT)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(GRIDS), st.sampled_from([("market-01",), ("health-01",), ("health-02", "market-03")])
        ),
        max_size=40,
    ),
    st.integers(1, 6),
)
def test_with_enough_free_inspectors_teams_are_as_few_as_the_cap_allows(
    visits_spec: list[tuple[str, tuple[str, ...]]], cap: int
) -> None:
    """No recusal in the way: each town's visits of one department set fill ⌈visits / cap⌉ teams, no more."""
    visits = [VisitNeed(USCCS[n], grid, items) for n, (grid, items) in enumerate(visits_spec)]
    towns = sorted({town_of_grid(g) for g in GRIDS})
    people = [
        officer(100_000 * t + 1000 * d + n, department, cap=cap, office_town=town)
        for t, town in enumerate(towns)
        for d, department in enumerate(("market", "health"))
        for n in range(2 * len(visits) + 2)
    ]
    result = match(SEED, visits, people, ITEM_DEPARTMENT)
    assert not result.unmatched
    groups = Counter((town_of_grid(v.grid_code), departments_of(v)) for v in visits)
    assert len(result.teams) == sum(-(-count // cap) for count in groups.values())
    # ... and every member of a team has their office in the town of its visits.
    teams = {t.team_no: t for t in result.teams}
    office = {p.id: p.office_town for p in people}
    for visit in visits:
        assert {office[i] for i in teams[result.assignment[visit.uscc]].inspector_ids} == {
            town_of_grid(visit.grid_code)
        }


# ------------------------------------------------------------------ the documented procedure, written out plainly


def _key(seed: bytes, message: str) -> str:
    """order(seed, message) as docs/INSPECTIONS_MATCHING.md defines it."""
    return hmac.new(seed, message.encode(), hashlib.sha256).hexdigest()


def _may_serve(p: InspectorInfo, v: VisitNeed, depts: tuple[str, ...]) -> bool:
    """Rule 2: department, load cap, no declared conflict, no recent visit, not the home grid."""
    return (
        p.department in depts
        and p.load_cap >= 1
        and v.uscc not in p.conflicts
        and v.uscc not in p.recent
        and (v.grid_code is None or p.home_grid != v.grid_code)
    )


def _covered(crew: list[InspectorInfo], v: VisitNeed) -> bool:
    """Every item of the visit has a member of its department qualified for it."""
    return all(any(p.department == ITEM_DEPARTMENT[i] and i in p.qualifications for p in crew) for i in v.items)


def _useful_to(p: InspectorInfo, v: VisitNeed) -> bool:
    """Qualified for one of the visit's items of their department."""
    return any(ITEM_DEPARTMENT[i] == p.department and i in p.qualifications for i in v.items)


def _new_team(v: VisitNeed, depts: tuple[str, ...], pool: list[InspectorInfo], taken: set[int]) -> list[InspectorInfo]:
    """Rule 5, walking the whole pool every time."""
    crew: list[InspectorInfo] = []
    for dept in depts:
        uncovered = {i for i in v.items if ITEM_DEPARTMENT[i] == dept}
        for p in pool:
            serves = p.id not in taken and _may_serve(p, v, depts)
            if uncovered and p.department == dept and p.qualifications & uncovered and serves:
                crew.append(p)
                uncovered -= p.qualifications
        if uncovered:
            return []
    for p in pool:
        if len(crew) < 2 and p not in crew and _useful_to(p, v) and p.id not in taken and _may_serve(p, v, depts):
            crew.append(p)
    return crew if len(crew) >= 2 else []


def reference_match(seed: bytes, visits: list[VisitNeed], people: list[InspectorInfo]) -> Matching:
    """docs/INSPECTIONS_MATCHING.md step by step, the slow obvious way (every team and inspector walked per visit)."""
    teams: list[dict] = []  # type: ignore[type-arg]
    taken: set[int] = set()
    assignment: dict[str, int] = {}
    unmatched: dict[str, str] = {}
    order = sorted(
        visits, key=lambda v: (-len({ITEM_DEPARTMENT.get(i) for i in v.items}), _key(seed, f"visit|{v.uscc}"))
    )
    for v in order:
        if not v.items or any(i not in ITEM_DEPARTMENT for i in v.items):
            unmatched[v.uscc] = "unknown_item"
            continue
        depts = tuple(sorted({ITEM_DEPARTMENT[i] for i in v.items}))
        town = town_of_grid(v.grid_code)
        ranked = sorted(
            (p for p in people if p.department in depts), key=lambda p: _key(seed, f"team|{','.join(depts)}|{p.id}")
        )
        local = [p for p in ranked if (p.office_town or town_of_grid(p.home_grid)) == town]
        others = [p for p in ranked if p not in local]

        def takes(t: dict, v: VisitNeed = v, depts: tuple[str, ...] = depts) -> bool:  # type: ignore[type-arg]
            crew = t["crew"]
            room = t["visits"] < min(p.load_cap for p in crew)
            return t["depts"] == depts and room and all(_may_serve(p, v, depts) for p in crew) and _covered(crew, v)

        team = next((t for t in teams if t["town"] == town and takes(t)), None)
        crew = [] if team else _new_team(v, depts, local, taken)
        if team is None and not crew:
            team = next((t for t in teams if takes(t)), None)
            crew = [] if team else _new_team(v, depts, local + others, taken)
        if team is None and crew:
            team = {"no": len(teams) + 1, "depts": depts, "town": town, "crew": crew, "visits": 0}
            teams.append(team)
            taken.update(p.id for p in crew)
        if team is None:
            pool = [p for p in people if p.department in depts and p.load_cap >= 1]
            useful = [p for p in pool if _useful_to(p, v)]
            eligible = [p for p in useful if _may_serve(p, v, depts)]
            if not (len(useful) >= 2 and _covered(useful, v)):
                unmatched[v.uscc] = "no_qualified_inspectors"
            elif not (len(eligible) >= 2 and _covered(eligible, v)):
                unmatched[v.uscc] = "all_conflicted"
            else:
                unmatched[v.uscc] = "load_cap_reached"
            continue
        team["visits"] += 1
        assignment[v.uscc] = team["no"]
    return Matching(
        teams=tuple(Team(t["no"], t["depts"], tuple(sorted(p.id for p in t["crew"]))) for t in teams),
        assignment=assignment,
        unmatched=unmatched,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_the_matching_is_the_documented_procedure(problem: tuple[bytes, list[VisitNeed], list[InspectorInfo]]) -> None:
    """An auditor walking docs/INSPECTIONS_MATCHING.md by hand (every team and inspector looked at for every visit)
    gets the same teams, the same assignments and the same reasons as the matching's shortcuts."""
    seed, visits, inspectors = problem
    assert match(seed, visits, inspectors, ITEM_DEPARTMENT) == reference_match(seed, visits, inspectors)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.integers(2, 9), st.integers(1, 4))
def test_inspectors_running_out_are_the_documented_procedure_too(seed: bytes, people: int, cap: int) -> None:
    """Many more visits than a few inspectors can take, some of them conflicted: the same result as by hand."""
    visits = [VisitNeed(u, GRIDS[n % len(GRIDS)], (sorted(ITEM_DEPARTMENT)[n % 6],)) for n, u in enumerate(USCCS)]
    staff = [
        officer(
            i, ("market", "health")[i % 2], home=GRIDS[i % len(GRIDS)], cap=cap, office_town=town_of_grid(GRIDS[i % 5])
        )
        for i in range(1, people + 1)
    ]
    assert match(seed, visits, staff, ITEM_DEPARTMENT) == reference_match(seed, visits, staff)


def test_a_whole_city_plan_far_beyond_its_inspectors_lists_every_visit_left_over() -> None:
    """20,000 shops for 300 inspectors with a cap of 20 (150 teams of two): 3,000 are visited, each of the other
    17,000 is listed as waiting for the load cap — the plan answers instead of hanging the server."""
    grids = [f"4419000{t:02d}{g:03d}{k:03d}" for t in (3, 4) for g in range(1, 4) for k in range(1, 4)]
    shops = [VisitNeed(f"91441900MA{n:07d}X", grids[n % len(grids)], ("market-01",)) for n in range(20_000)]
    staff = [officer(i, "market", cap=20, office_town=town_of_grid(grids[i % len(grids)])) for i in range(1, 301)]
    result = match(SEED, shops, staff, ITEM_DEPARTMENT)
    assert len(result.teams) == 150
    assert len(result.assignment) == 3_000
    assert Counter(result.assignment.values()) == dict.fromkeys(range(1, 151), 20)
    assert len(result.unmatched) == 17_000
    assert set(result.unmatched.values()) == {"load_cap_reached"}
    assert set(result.assignment) | set(result.unmatched) == {s.uscc for s in shops}
