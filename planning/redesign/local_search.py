"""planning.redesign.local_search: balance a plan by moving boundary units between neighbouring grids.

A plan is a label (group index) per unit plus a head-count per group. Starting from the current plan, each step
moves one unit across a cut edge, from its group to the neighbour's, when the donor stays connected (a search of the
donor's units without it), both groups keep Polsby-Popper above the floor (or do not get worse), and the imbalance
falls. The imbalance of a group is the squared excess of its deviation (hours per worker against the mean) beyond the
aim, plus a faint pull towards the mean so chains of neighbours can pass work along. Among the improving moves the
one with the best gain per address moved away from home wins (a move back home is preferred), weighted towards
moves that keep both grids compact and towards units the receiver already half surrounds, so a boundary advances
evenly instead of sending out tendrils. A move that would notch a grid under the floor may take a run of its
neighbours along the same boundary with it (the boundary shifts as a whole). When every group is inside the aim,
needless moves are undone: a moved unit goes back home whenever balance stays within the band.

Polsby-Popper is kept incrementally: a group's perimeter is the sum of its units' perimeters minus twice the edges
inside it (units are noded exactly), so no polygon is built during the search.

K different from now: split the most loaded group (the best of twelve directions of growth from one end, both sides
connected) or merge the lightest adjacent pair, one group at a time, then balance. Deterministic.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planning.redesign.units import Units

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Pull towards the mean inside the aim (lets a chain of groups pass work along without forcing needless moves).
_INSIDE_PULL = 0.01
# Improving moves examined for contiguity and compactness per step.
_CANDIDATES_PER_STEP = 200
_SPLIT_DIRECTIONS = 12
# Weight of compactness under the floor against the balance penalty: a move may dent a grid's outline for a while
# (the first unit of a row leaves a notch; the rest of the row removes it) when it buys enough balance.
_SHAPE_WEIGHT = 0.05
# Longest run of units moved together along a boundary in one step.
_ROW_MAX = 12
_SPLIT_COMPACTNESS_WEIGHT = 0.2


@dataclass(frozen=True)
class Layout:
    """The fixed arrays of a problem: per-unit work, size and the adjacency (as CSR lists)."""

    hours: FloatArray
    addresses: IntArray
    area: FloatArray
    perimeter: FloatArray
    centroid: FloatArray
    edges: IntArray
    edge_length: FloatArray
    ptr: IntArray
    nbr: IntArray
    nbr_length: FloatArray

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.hours)

    def neighbours(self, u: int) -> tuple[IntArray, FloatArray]:
        """Units sharing an edge with u and the length of each shared edge."""
        s, e = int(self.ptr[u]), int(self.ptr[u + 1])
        return self.nbr[s:e], self.nbr_length[s:e]


def layout_of(units: Units, hours: FloatArray, addresses: IntArray) -> Layout:
    """The search arrays of a set of units and their work."""
    n = len(units.geoms)
    e = units.edges
    both = np.concatenate([e, e[:, ::-1]]) if len(e) else np.zeros((0, 2), dtype=np.int64)
    lengths = np.concatenate([units.edge_length_m, units.edge_length_m])
    order = np.lexsort((both[:, 1], both[:, 0])) if len(both) else np.zeros(0, dtype=np.int64)
    both, lengths = both[order], lengths[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, both[:, 0] + 1, 1)
    return Layout(
        hours=np.asarray(hours, dtype=np.float64),
        addresses=np.asarray(addresses, dtype=np.int64),
        area=units.area_m2,
        perimeter=units.perimeter_m,
        centroid=units.centroid_xy,
        edges=e,
        edge_length=units.edge_length_m,
        ptr=np.cumsum(ptr),
        nbr=both[:, 1].astype(np.int64),
        nbr_length=lengths,
    )


@dataclass
class Plan:
    """A plan being improved: the group of each unit, each group's head-count and whether it is locked."""

    label: IntArray
    workers: IntArray
    locked: BoolArray

    @property
    def groups(self) -> int:
        """Number of groups."""
        return len(self.workers)

    def copy(self) -> Plan:
        """An independent copy."""
        return Plan(self.label.copy(), self.workers.copy(), self.locked.copy())


def group_hours(layout: Layout, label: IntArray, groups: int) -> FloatArray:
    """Hours per month of each group."""
    return np.bincount(label, weights=layout.hours, minlength=groups).astype(np.float64)


def group_shape(layout: Layout, label: IntArray, groups: int) -> tuple[FloatArray, FloatArray]:
    """(area, perimeter) of each group from its units (perimeter = units' perimeters - 2 x inner edges)."""
    area = np.asarray(np.bincount(label, weights=layout.area, minlength=groups), dtype=np.float64)
    perimeter = np.asarray(np.bincount(label, weights=layout.perimeter, minlength=groups), dtype=np.float64)
    if len(layout.edges):
        a, b = label[layout.edges[:, 0]], label[layout.edges[:, 1]]
        inner = a == b
        perimeter -= 2.0 * np.bincount(a[inner], weights=layout.edge_length[inner], minlength=groups)
    return area, perimeter


def polsby_popper(area: FloatArray | float, perimeter: FloatArray | float) -> FloatArray:
    """Compactness 4πA/P² (1 for a disc)."""
    p = np.asarray(perimeter, dtype=np.float64)
    return np.where(p > 0, 4.0 * math.pi * np.asarray(area, dtype=np.float64) / np.maximum(p, 1e-12) ** 2, 0.0)


def connected_without(layout: Layout, label: IntArray, group: int, removed: int) -> bool:
    """Whether the group's units stay edge-connected once `removed` leaves it (and it keeps at least one unit)."""
    members = np.flatnonzero(label == group)
    if len(members) <= 1:
        return False
    start = next(int(v) for v in members if v != removed)
    seen = {removed, start}
    stack = [start]
    while stack:
        u = stack.pop()
        nbrs, _ = layout.neighbours(u)
        for v in nbrs.tolist():
            if v not in seen and label[v] == group:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(members)


def _connected(layout: Layout, label: IntArray, group: int) -> bool:
    """Whether a group's units are edge-connected (and it has any)."""
    members = np.flatnonzero(label == group)
    if len(members) == 0:
        return False
    seen = {int(members[0])}
    stack = [int(members[0])]
    while stack:
        for v in layout.neighbours(stack.pop())[0].tolist():
            if v not in seen and label[v] == group:
                seen.add(v)
                stack.append(v)
    return len(seen) == len(members)


def components(layout: Layout, label: IntArray, group: int) -> list[list[int]]:
    """The edge-connected pieces of a group (largest hours first, then lowest unit)."""
    members = np.flatnonzero(label == group).tolist()
    seen: set[int] = set()
    pieces: list[list[int]] = []
    for s in members:
        if s in seen:
            continue
        piece, stack = [s], [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in layout.neighbours(u)[0].tolist():
                if v not in seen and label[v] == group:
                    seen.add(v)
                    piece.append(v)
                    stack.append(v)
        pieces.append(sorted(piece))
    pieces.sort(key=lambda p: (-float(layout.hours[p].sum()), p[0]))
    return pieces


@dataclass(frozen=True)
class Targets:
    """What balanced means for a search: the mean, the aim inside the tolerance, the compactness floor."""

    mean: float
    tolerance: float
    aim: float
    pp_floor: float
    compact_preference: float = 20.0  # weight of the change in compactness in a move's priority
    enclosed_preference: float = 12.0  # weight of how much of a unit the receiver already surrounds


def _penalty(ratio: FloatArray, aim: float) -> FloatArray:
    """Imbalance of groups whose hours/target ratio is `ratio`."""
    dev = ratio - 1.0
    excess = np.maximum(np.abs(dev) - aim, 0.0)
    return np.asarray(excess**2 + _INSIDE_PULL * dev**2, dtype=np.float64)


def deviations(layout: Layout, plan: Plan, mean: float) -> FloatArray:
    """Hours per worker of each group against the mean, as a signed share."""
    hours = group_hours(layout, plan.label, plan.groups)
    return np.asarray(hours / (np.maximum(plan.workers, 1) * mean) - 1.0, dtype=np.float64)


def balance(layout: Layout, plan: Plan, home: IntArray, targets: Targets, *, deadline: float) -> Plan:
    """Move boundary units until every free group is within the aim and above the floor, then undo needless moves."""
    state = _Search(layout, plan.copy(), targets)
    while time.monotonic() < deadline and not state.balanced() and state.step(home, mode="balance"):
        pass
    # Shape repair: compactness back above the floor without leaving the band.
    while time.monotonic() < deadline and state.below_floor() and state.step(home, mode="shape"):
        pass
    return _undo_needless(layout, state.plan, home, targets, deadline=deadline)


class _Search:
    """The mutable state of a local search: labels, per-group sums and each unit's edge length to each group."""

    def __init__(self, layout: Layout, plan: Plan, targets: Targets) -> None:
        self.layout, self.plan, self.targets = layout, plan, targets
        g_count = plan.groups
        self.hours = group_hours(layout, plan.label, g_count)
        self.area, self.perimeter = group_shape(layout, plan.label, g_count)
        self.target = np.maximum(plan.workers, 1) * targets.mean
        self.to_group = np.zeros((layout.n, g_count))
        if len(layout.edges):
            e0, e1, length = layout.edges[:, 0], layout.edges[:, 1], layout.edge_length
            np.add.at(self.to_group, (e0, plan.label[e1]), length)
            np.add.at(self.to_group, (e1, plan.label[e0]), length)
            free_unit = ~plan.locked[plan.label]
            self.free_edge = free_unit[e0] & free_unit[e1]
        else:
            self.free_edge = np.zeros(0, dtype=bool)
        self._pp_start = polsby_popper(self.area, self.perimeter)

    def deviation(self) -> FloatArray:
        """Signed deviation of each group."""
        return np.asarray(self.hours / self.target - 1.0, dtype=np.float64)

    def balanced(self) -> bool:
        """Every free group within the aim and at or above the floor."""
        free = ~self.plan.locked
        return bool(np.max(np.abs(self.deviation()[free]), initial=0.0) <= self.targets.aim) and not self.below_floor()

    def below_floor(self) -> bool:
        """Some free group under the Polsby-Popper floor."""
        pp = polsby_popper(self.area, self.perimeter)
        return bool(np.any((pp < self.targets.pp_floor - 1e-9) & ~self.plan.locked))

    def step(self, home: IntArray, *, mode: str) -> bool:
        """Make the best admissible move of this mode; False when there is none."""
        layout, label, t = self.layout, self.plan.label, self.targets
        self._pp_start = polsby_popper(self.area, self.perimeter)
        e0, e1 = layout.edges[:, 0], layout.edges[:, 1]
        cut = self.free_edge & (label[e0] != label[e1])
        if not cut.any():
            return False
        pairs = np.unique(
            np.column_stack([np.concatenate([e0[cut], e1[cut]]), np.concatenate([label[e1[cut]], label[e0[cut]]])]),
            axis=0,
        )
        unit, to = pairs[:, 0], pairs[:, 1]
        frm = label[unit]
        h = layout.hours[unit]
        dev_f, dev_t = self.hours[frm] / self.target[frm], self.hours[to] / self.target[to]
        new_f, new_t = (self.hours[frm] - h) / self.target[frm], (self.hours[to] + h) / self.target[to]
        balance_gain = _penalty(dev_f, t.aim) + _penalty(dev_t, t.aim) - _penalty(new_f, t.aim) - _penalty(new_t, t.aim)
        au, pu = layout.area[unit], layout.perimeter[unit]
        area_f, area_t = self.area[frm] - au, self.area[to] + au
        per_f = self.perimeter[frm] - pu + 2.0 * self.to_group[unit, frm]
        per_t = self.perimeter[to] + pu - 2.0 * self.to_group[unit, to]
        pp_f0, pp_t0 = (
            polsby_popper(self.area[frm], self.perimeter[frm]),
            polsby_popper(self.area[to], self.perimeter[to]),
        )
        pp_f, pp_t = polsby_popper(area_f, per_f), polsby_popper(area_t, per_t)
        shape_gain = (
            _shortfall(pp_f0, t.pp_floor)
            + _shortfall(pp_t0, t.pp_floor)
            - _shortfall(pp_f, t.pp_floor)
            - _shortfall(pp_t, t.pp_floor)
        )
        if mode == "balance":
            gain = balance_gain + _SHAPE_WEIGHT * shape_gain
            ok = gain > 1e-12
        else:
            band = 0.5 * (t.aim + t.tolerance)
            worst_before = np.maximum(np.abs(dev_f - 1.0), np.abs(dev_t - 1.0))
            worst_after = np.maximum(np.abs(new_f - 1.0), np.abs(new_t - 1.0))
            gain = shape_gain
            ok = (gain > 1e-9) & (worst_after <= np.maximum(band, worst_before))
        if not ok.any():
            return False
        # Among admissible moves, prefer those that leave both grids more compact (a tie-breaker, never a filter).
        gain = gain * np.exp(t.compact_preference * np.clip(pp_f + pp_t - pp_f0 - pp_t0, -1.0, 1.0))
        # Units already half-surrounded by the receiver go first: the boundary advances evenly, without tendrils.
        enclosed = self.to_group[unit, to] / np.maximum(layout.perimeter[unit], 1e-9)
        gain = gain * np.exp(t.enclosed_preference * enclosed)
        unit, to, frm, gain = unit[ok], to[ok], frm[ok], gain[ok]
        addr = layout.addresses[unit].astype(np.float64)
        priority = np.where(
            home[unit] == to, gain * (1.0 + addr), np.where(home[unit] == frm, gain / (1.0 + addr), gain)
        )
        for i in np.lexsort((unit, -priority))[:_CANDIDATES_PER_STEP].tolist():
            u, a, b = int(unit[i]), int(frm[i]), int(to[i])
            if self.keeps_shape(u, a, b):
                if connected_without(layout, label, a, u):
                    self.move(u, a, b)
                    return True
            elif mode == "balance" and self.move_row(u, a, b):
                return True
        return False

    def move_row(self, u: int, a: int, b: int) -> bool:
        """Move u with a run of its neighbours along the a|b boundary, so the boundary shifts instead of notching.

        Units join the run one at a time (the one sharing most boundary with b and the run), until both grids are
        compact enough and the donor is still connected; the run is kept when it still lowers the imbalance, else
        undone.
        """
        layout, label = self.layout, self.plan.label
        aim = self.targets.aim
        before = float(
            _penalty(np.asarray([self.hours[a] / self.target[a], self.hours[b] / self.target[b]]), aim).sum()
        )
        run = [u]
        self.move(u, a, b)
        while True:
            after = float(
                _penalty(np.asarray([self.hours[a] / self.target[a], self.hours[b] / self.target[b]]), aim).sum()
            )
            if after >= before - 1e-12:
                break
            if self.compact(a, b, self.shape_before) and _connected(layout, label, a):
                return True
            if len(run) >= _ROW_MAX:
                break
            nxt = self._next_in_row(run, a, b)
            if nxt < 0:
                break
            run.append(nxt)
            self.move(nxt, a, b)
        for v in reversed(run):
            self.move(v, b, a)
        return False

    def _next_in_row(self, run: list[int], a: int, b: int) -> int:
        """The unit of a, touching the run, that shares the most boundary with b (and the run); -1 if none."""
        layout, label = self.layout, self.plan.label
        best, best_len = -1, 0.0
        for r in run:
            nbrs, _ = layout.neighbours(r)
            for v in nbrs.tolist():
                if label[v] != a:
                    continue
                to_b = float(self.to_group[v, b])
                if to_b > best_len + 1e-9 or (abs(to_b - best_len) <= 1e-9 and 0 <= v < best):
                    best, best_len = v, to_b
        return best

    @property
    def shape_before(self) -> FloatArray:
        """Polsby-Popper of each group when the current step began."""
        return self._pp_start

    def compact(self, a: int, b: int, pp_start: FloatArray) -> bool:
        """Groups a and b at or above the floor now, or no less compact than when the step began."""
        pp = polsby_popper(self.area[[a, b]], self.perimeter[[a, b]])
        floor = self.targets.pp_floor
        return bool(np.all((pp >= floor - 1e-9) | (pp >= pp_start[[a, b]] - 1e-12)))

    def keeps_shape(self, u: int, a: int, b: int) -> bool:
        """Both groups stay at or above the floor after u moves from a to b, or get no less compact."""
        layout = self.layout
        area_a = self.area[a] - layout.area[u]
        per_a = self.perimeter[a] - layout.perimeter[u] + 2.0 * self.to_group[u, a]
        area_b = self.area[b] + layout.area[u]
        per_b = self.perimeter[b] + layout.perimeter[u] - 2.0 * self.to_group[u, b]
        old = polsby_popper(self.area[[a, b]], self.perimeter[[a, b]])
        new = polsby_popper(np.asarray([area_a, area_b]), np.asarray([per_a, per_b]))
        floor = self.targets.pp_floor
        return bool(np.all((new >= floor - 1e-9) | (new >= old - 1e-12)))

    def move(self, u: int, a: int, b: int) -> None:
        """Move unit u from group a to group b, keeping every sum current."""
        layout = self.layout
        nbrs, lengths = layout.neighbours(u)
        to_a = float(self.to_group[u, a])
        to_b = float(self.to_group[u, b])
        self.area[a] -= layout.area[u]
        self.area[b] += layout.area[u]
        self.perimeter[a] += -layout.perimeter[u] + 2.0 * to_a
        self.perimeter[b] += layout.perimeter[u] - 2.0 * to_b
        self.hours[a] -= layout.hours[u]
        self.hours[b] += layout.hours[u]
        np.add.at(self.to_group, (nbrs, np.full(len(nbrs), a)), -lengths)
        np.add.at(self.to_group, (nbrs, np.full(len(nbrs), b)), lengths)
        self.plan.label[u] = b


def _shortfall(pp: FloatArray, floor: float) -> FloatArray:
    """How far compactness falls under the floor (0 above it)."""
    return np.maximum(floor - pp, 0.0)


def _undo_needless(layout: Layout, plan: Plan, home: IntArray, targets: Targets, *, deadline: float) -> Plan:
    """Send moved units back home (most addresses first) while every group stays within the band and the floor."""
    state = _Search(layout, plan, targets)
    label = plan.label
    band = 0.5 * (targets.aim + targets.tolerance)
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        moved = np.flatnonzero((label != home) & ~plan.locked[home])
        for u in sorted(moved.tolist(), key=lambda v: (-int(layout.addresses[v]), v)):
            a, b = int(label[u]), int(home[u])
            if state.to_group[u, b] <= 0:
                continue
            dev = state.deviation()
            new_a = (state.hours[a] - layout.hours[u]) / state.target[a] - 1.0
            new_b = (state.hours[b] + layout.hours[u]) / state.target[b] - 1.0
            if max(abs(new_a), abs(new_b)) > max(band, abs(dev[a]), abs(dev[b])):
                continue
            if not state.keeps_shape(u, a, b):
                continue
            if not connected_without(layout, label, a, u):
                continue
            state.move(u, a, b)
            changed = True
    return state.plan


def split(layout: Layout, plan: Plan, group: int) -> Plan:
    """Split a group in two connected halves of about equal hours (the best of twelve growth directions)."""
    members = np.flatnonzero(plan.label == group)
    if len(members) < 2:
        raise ValueError("a group of one unit cannot be split")
    member_set = set(members.tolist())
    total = float(layout.hours[members].sum())
    weight = layout.hours + (1e-9 + (total <= 0)) * layout.area  # weightless land is split by area
    total_w = float(weight[members].sum())
    best: tuple[float, list[int]] | None = None
    for i in range(_SPLIT_DIRECTIONS):
        angle = math.pi * 2 * i / _SPLIT_DIRECTIONS
        proj = layout.centroid[:, 0] * math.cos(angle) + layout.centroid[:, 1] * math.sin(angle)
        side = _grow(layout, members, member_set, proj, weight, 0.5 * total_w)
        trial = plan.label.copy()
        new = plan.groups
        trial[[u for u in members.tolist() if u not in side]] = new
        # Pieces of the far side cut off by the growth rejoin the near side, so both stay connected.
        pieces = components(layout, trial, new)
        if not pieces:
            continue
        for piece in pieces[1:]:
            trial[piece] = group
        if not (trial == group).any():
            continue
        area, perimeter = group_shape(layout, trial, new + 1)
        pp = polsby_popper(area[[group, new]], perimeter[[group, new]])
        near = float(weight[trial == group].sum())
        score = abs(near - 0.5 * total_w) / max(total_w, 1e-12) + _SPLIT_COMPACTNESS_WEIGHT * (1.0 - float(pp.min()))
        if best is None or score < best[0] - 1e-12:
            best = (score, np.flatnonzero(trial == new).tolist())
    if best is None:
        raise ValueError("no split keeps both halves connected")
    label = plan.label.copy()
    label[best[1]] = plan.groups
    w = int(plan.workers[group])
    workers = np.concatenate([plan.workers, [w // 2]]).astype(np.int64)
    workers[group] = w - w // 2
    return Plan(label, workers, np.concatenate([plan.locked, [False]]))


def _grow(
    layout: Layout, members: IntArray, member_set: set[int], proj: FloatArray, weight: FloatArray, half: float
) -> set[int]:
    """Units reached from the lowest-projection member, growing along the direction, until half the weight."""
    start = int(members[np.argmin(proj[members])])
    side: set[int] = set()
    heap: list[tuple[float, int]] = [(float(proj[start]), start)]
    queued = {start}
    held = 0.0
    while heap and held < half:
        _, u = heapq.heappop(heap)
        side.add(u)
        held += float(weight[u])
        for v in layout.neighbours(u)[0].tolist():
            if v in member_set and v not in queued:
                queued.add(v)
                heapq.heappush(heap, (float(proj[v]), v))
    if len(side) == len(members):
        side.discard(max(side, key=lambda v: (float(proj[v]), v)))
    return side


def merge_lightest(layout: Layout, plan: Plan, pp_floor: float) -> Plan:
    """Merge the adjacent pair of free groups with the fewest hours together (a compact merge preferred)."""
    label = plan.label
    g_count = plan.groups
    hours = group_hours(layout, label, g_count)
    area, perimeter = group_shape(layout, label, g_count)
    a, b = label[layout.edges[:, 0]], label[layout.edges[:, 1]]
    pairs = {(int(min(x, y)), int(max(x, y))) for x, y in zip(a.tolist(), b.tolist(), strict=True) if x != y}
    pairs = {(x, y) for x, y in pairs if not plan.locked[x] and not plan.locked[y]}
    if not pairs:
        raise ValueError("no two free grids are adjacent")
    shared: dict[tuple[int, int], float] = {}
    for x, y, length in zip(a.tolist(), b.tolist(), layout.edge_length.tolist(), strict=True):
        key = (min(x, y), max(x, y))
        if key in pairs:
            shared[key] = shared.get(key, 0.0) + length

    def rank(p: tuple[int, int]) -> tuple[bool, float, tuple[int, int]]:
        pp = float(polsby_popper(area[p[0]] + area[p[1]], perimeter[p[0]] + perimeter[p[1]] - 2.0 * shared[p]))
        return (pp < pp_floor, float(hours[p[0]] + hours[p[1]]), p)

    keep, gone = min(sorted(pairs), key=rank)
    new_label = label.copy()
    new_label[new_label == gone] = keep
    new_label[new_label > gone] -= 1
    workers = plan.workers.copy()
    workers[keep] = workers[keep] + workers[gone]
    return Plan(new_label, np.delete(workers, gone), np.delete(plan.locked, gone))
