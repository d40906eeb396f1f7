"""planning.redesign.cpsat: an exact model of a small area's redesign, solved by OR-Tools CP-SAT.

Booleans x[u, g] put each free unit in one free grid; a root unit per grid (one of its own units, near its centre)
never leaves it. Balance: the integer-scaled hours of each grid lie within ±tolerance of the mean times its
head-count, itself a variable in [min, max] with the free total fixed. Contiguity: a single-commodity flow per grid
from its root, where every other unit of the grid consumes one unit of flow, and flow runs only between units of the
grid. Objective: keep addresses at home (weighted), keep boundaries short (edge length shared inside a grid), move
few workers. Polsby-Popper is not linear: it is verified on the result, and a plan under the floor is refused.

Deterministic: one search worker, limited by deterministic time (and by wall time as a safety net).
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from planning.redesign import local_search as ls
from planning.redesign.problem import Problem

IntArray = NDArray[np.int64]

# Metres of shared boundary one address kept at home is worth in the objective.
ADDRESS_WEIGHT_M = 20.0
# A worker moved is worth this share of a worker's addresses (same price as the local method's).
WORKER_MOVE_SHARE = 0.25
# Balance is asked a little inside the tolerance, so the integer scaling of hours cannot push a grid over it.
_INSIDE_TOLERANCE = 0.97
_HOURS_SCALE_TOTAL = 1_000_000
# How many unit edges beyond its current territory a grid may reach.
REACH_HOPS = 4
_ASSEMBLY_RESERVE_S = 0.3


def solve_cpsat(
    layout: ls.Layout,
    plan: ls.Plan,
    home: IntArray,
    targets: ls.Targets,
    problem: Problem,
    *,
    current_workers: IntArray,
    hint: ls.Plan | None,
    deadline: float,
) -> ls.Plan | None:
    """The best plan CP-SAT proves or finds before the deadline, or None (infeasible, no time, or under the floor)."""
    remaining = deadline - time.monotonic()
    free_groups = [g for g in range(plan.groups) if not plan.locked[g]]
    free_units = [int(u) for u in np.flatnonzero(~plan.locked[plan.label])]
    if remaining < 0.05 or not free_groups or not free_units:
        return None
    hinted = hint.label if hint is not None else home
    model = _Model(layout, free_units, free_groups, home, hinted)
    model.balance(plan, targets, problem)
    model.contiguity()
    model.objective(home, current_workers, problem)
    if hint is not None:
        model.hint(hint)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = int(problem.seed)
    # Leave room for assembling the grids after the search, so the whole redesign keeps its time limit.
    budget = remaining - _ASSEMBLY_RESERVE_S
    if budget < 0.05:
        return None
    solver.parameters.max_deterministic_time = 0.8 * budget
    solver.parameters.max_time_in_seconds = budget
    status = solver.solve(model.m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    label = plan.label.copy()
    for u in free_units:
        label[u] = next(g for g in model.allowed[u] if solver.boolean_value(model.x[u, g]))
    workers = plan.workers.copy()
    for g in free_groups:
        workers[g] = int(solver.value(model.w[g]))
    found = ls.Plan(label, workers, plan.locked.copy())
    return found if _acceptable(layout, found, plan, targets) else None


class _Model:
    """The CP-SAT model of one area: assignment, head-counts, balance, contiguity and the objective.

    A unit may only join a grid whose home (or hinted) territory lies within REACH_HOPS edges of it: a redesign with
    the least disruption moves boundaries, it does not teleport land across the area, and the model stays small.
    """

    def __init__(
        self, layout: ls.Layout, free_units: list[int], free_groups: list[int], home: IntArray, hinted: IntArray
    ) -> None:
        self.layout, self.units, self.groups = layout, free_units, free_groups
        self.home, self.hinted = home, hinted
        self.m = cp_model.CpModel()
        inside = set(free_units)
        self.allowed = _reach(layout, free_units, free_groups, home, hinted, inside)
        self.x = {(u, g): self.m.new_bool_var(f"x{u}_{g}") for u in free_units for g in self.allowed[u]}
        for u in free_units:
            self.m.add_exactly_one(self.x[u, g] for g in self.allowed[u])
        self.arcs = [
            (int(a), int(b), float(length))
            for (a, b), length in zip(layout.edges.tolist(), layout.edge_length.tolist(), strict=True)
            if int(a) in inside and int(b) in inside
        ]
        self.w: dict[int, cp_model.IntVar] = {}
        self.roots: dict[int, int] = {}
        self.flows: dict[tuple[int, int, int], cp_model.IntVar] = {}

    def members(self, g: int) -> list[int]:
        """Units that may belong to group g."""
        return [u for u in self.units if (u, g) in self.x]

    def balance(self, plan: ls.Plan, targets: ls.Targets, problem: Problem) -> None:
        """Head-count variables with the free total fixed; each grid's scaled hours within the band of its count."""
        layout, m, x = self.layout, self.m, self.x
        total_hours = float(layout.hours[self.units].sum())
        scale = _HOURS_SCALE_TOTAL / max(total_hours, 1e-9)
        scaled = np.round(layout.hours * scale).astype(np.int64)
        t_free = int(plan.workers[self.groups].sum())
        self.w = {g: m.new_int_var(problem.min_workers, problem.max_workers, f"w{g}") for g in self.groups}
        m.add(sum(self.w.values()) == t_free)
        tol = targets.tolerance * _INSIDE_TOLERANCE
        lo_per_worker = int(np.ceil((1.0 - tol) * targets.mean * scale))
        hi_per_worker = int(np.floor((1.0 + tol) * targets.mean * scale))
        for g in self.groups:
            load = sum(int(scaled[u]) * x[u, g] for u in self.members(g))
            m.add(load >= lo_per_worker * self.w[g])
            m.add(load <= hi_per_worker * self.w[g])
            self.roots[g] = _root(layout, self.home, g, self.hinted)
            m.add(x[self.roots[g], g] == 1)

    def contiguity(self) -> None:
        """Single-commodity flow per grid from its root: every other unit of the grid consumes one unit of flow."""
        m, x = self.m, self.x
        for g in self.groups:
            members = self.members(g)
            n = len(members)
            flow_in: dict[int, list[cp_model.IntVar]] = {u: [] for u in members}
            flow_out: dict[int, list[cp_model.IntVar]] = {u: [] for u in members}
            for a, b, _ in self.arcs:
                if (a, g) not in x or (b, g) not in x:
                    continue
                for s, t in ((a, b), (b, a)):
                    f = m.new_int_var(0, n, f"f{g}_{s}_{t}")
                    m.add(f <= n * x[s, g])
                    m.add(f <= n * x[t, g])
                    flow_out[s].append(f)
                    flow_in[t].append(f)
                    self.flows[g, s, t] = f
            for u in members:
                if u != self.roots[g]:
                    m.add(sum(flow_in[u]) - sum(flow_out[u]) == x[u, g])

    def objective(self, home: IntArray, current_workers: IntArray, problem: Problem) -> None:
        """Maximise addresses kept at home (weighted) + boundary shared inside grids - workers moved (priced)."""
        layout, m, x = self.layout, self.m, self.x
        terms: list[cp_model.LinearExprT] = []
        for u in self.units:
            g_home = int(home[u])
            if (u, g_home) in x and layout.addresses[u] > 0:
                terms.append(round(ADDRESS_WEIGHT_M * float(layout.addresses[u])) * x[u, g_home])
        self.same: dict[tuple[int, int, int], cp_model.IntVar] = {}
        for a, b, length in self.arcs:
            for g in self.groups:
                if (a, g) not in x or (b, g) not in x:
                    continue
                same = m.new_bool_var(f"s{a}_{b}_{g}")
                m.add_implication(same, x[a, g])
                m.add_implication(same, x[b, g])
                self.same[a, b, g] = same
                terms.append(max(1, round(length)) * same)
        t_free = sum(int(current_workers[g]) for g in self.groups)
        addresses_per_worker = float(layout.addresses[self.units].sum()) / max(t_free, 1)
        price = max(1, round(WORKER_MOVE_SHARE * addresses_per_worker * ADDRESS_WEIGHT_M))
        self.moved: dict[int, cp_model.IntVar] = {}
        for g in self.groups:
            d = m.new_int_var(0, problem.max_workers, f"d{g}")
            m.add(d >= self.w[g] - int(current_workers[g]))
            m.add(d >= int(current_workers[g]) - self.w[g])
            self.moved[g] = d
            terms.append(-price * d)
        m.maximize(sum(terms))

    def hint(self, plan: ls.Plan) -> None:
        """Start the search from a known plan (the local method's), flows included, so it is a complete solution."""
        label = plan.label
        for (u, g), var in self.x.items():
            self.m.add_hint(var, int(label[u]) == g)
        for g in self.groups:
            self.m.add_hint(self.w[g], int(plan.workers[g]))
        for (a, b, g), var in self.same.items():
            self.m.add_hint(var, int(label[a]) == g and int(label[b]) == g)
        flow = self._tree_flows(label)
        for key, var in self.flows.items():
            self.m.add_hint(var, flow.get(key, 0))

    def _tree_flows(self, label: IntArray) -> dict[tuple[int, int, int], int]:
        """Flows of a breadth-first tree from each root over its grid's units (each arc carries its subtree size)."""
        flow: dict[tuple[int, int, int], int] = {}
        for g in self.groups:
            root = self.roots[g]
            if int(label[root]) != g:
                continue
            parent = {root: -1}
            order = [root]
            for u in order:
                for v in self.layout.neighbours(u)[0].tolist():
                    if v not in parent and int(label[v]) == g and (g, u, v) in self.flows:
                        parent[v] = u
                        order.append(v)
            size = dict.fromkeys(order, 1)
            for v in reversed(order[1:]):
                size[parent[v]] += size[v]
                flow[g, parent[v], v] = size[v]
        return flow


def _reach(
    layout: ls.Layout,
    units: list[int],
    groups: list[int],
    home: IntArray,
    hinted: IntArray,
    inside: set[int],
) -> dict[int, list[int]]:
    """Groups each free unit may join: those whose home or hinted territory is within REACH_HOPS edges of it."""
    allowed: dict[int, set[int]] = {u: set() for u in units}
    group_set = set(groups)
    for g in groups:
        frontier = [u for u in units if int(home[u]) == g or int(hinted[u]) == g]
        seen = set(frontier)
        for _ in range(REACH_HOPS):
            nxt = []
            for u in frontier:
                for v in layout.neighbours(u)[0].tolist():
                    if v in inside and v not in seen:
                        seen.add(v)
                        nxt.append(v)
            frontier = nxt
        for u in seen:
            allowed[u].add(g)
    return {u: sorted(allowed[u] & group_set) for u in units}


def _root(layout: ls.Layout, home: IntArray, group: int, hinted: IntArray) -> int:
    """The unit of a group nearest its centre that the group keeps in the hint too (so the hint stays feasible)."""
    members = np.flatnonzero(home == group)
    kept = members[hinted[members] == group]
    pool = kept if len(kept) else members
    weights = layout.area[members]
    centre = (layout.centroid[members] * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1e-12)
    distance = np.hypot(*(layout.centroid[pool] - centre).T)
    return int(pool[int(np.argmin(distance))])


def _acceptable(layout: ls.Layout, found: ls.Plan, start: ls.Plan, targets: ls.Targets) -> bool:
    """Every free group connected, and at or above the Polsby-Popper floor unless it kept its own compactness."""
    area0, perimeter0 = ls.group_shape(layout, start.label, start.groups)
    area, perimeter = ls.group_shape(layout, found.label, found.groups)
    pp0, pp = ls.polsby_popper(area0, perimeter0), ls.polsby_popper(area, perimeter)
    for g in range(found.groups):
        if found.locked[g]:
            continue
        if len(ls.components(layout, found.label, g)) != 1:
            return False
        if pp[g] < targets.pp_floor - 1e-9 and pp[g] < pp0[g] - 1e-12:
            return False
    return True
