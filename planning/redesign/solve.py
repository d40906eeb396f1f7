"""planning.redesign.solve: `redesign(problem)` — check what is asked, search a plan, assemble and measure it.

Steps: refuse what cannot be met (Infeasible / NothingToPlan with a reason and a Chinese detail); a locked grid keeps
its outline and code, and its head-count unless only another one in [min, max] balances it (then the nearest such:
staff follows work, land does not); start from the current plan; split or merge grids until K; choose head-counts
close to the current ones that make balance cheap; balance by local moves (local_search), and on small areas let CP-SAT search from that plan (cpsat) — `auto` calls
CP-SAT only when the local plan is not balanced (see the measurement in `redesign`) and keeps the better of the two;
assemble grids with inherited codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from planning.errors import Infeasible, NothingToPlan
from planning.redesign import local_search as ls
from planning.redesign.assemble import group_codes, group_geometries
from planning.redesign.figures import figures, grid_rows, polsby_popper
from planning.redesign.problem import Problem, Solution
from planning.redesign.workers import choose_workers

IntArray = NDArray[np.int64]

# The search stops once every grid is within this share of the tolerance (a margin for the undo step).
AIM_SHARE = 0.85
# Price of moving one worker, in hours of work per month as a share of the mean hours per worker.
WORKER_MOVE_COST_SHARE = 0.25
# Areas up to this many units (and grids) are small enough for CP-SAT.
CPSAT_MAX_UNITS = 450
# Local search styles tried in turn (compactness preference, enclosure preference); the best plan is kept.
SEARCH_STYLES = ((20.0, 12.0), (20.0, 0.0), (0.0, 24.0), (60.0, 12.0))
CPSAT_MAX_GROUPS = 12


@dataclass(frozen=True)
class _Setup:
    """What the checks derive from a problem: the counts, the mean and the floor."""

    codes: list[str]
    k: int
    total_workers: int
    mean: float
    pp_floor: float
    locked_workers: dict[str, int]  # head-count of each locked grid (its own when that balances it)


def redesign(problem: Problem) -> Solution:
    """Redraw an area's grids so each is within ±tolerance of the mean hours per worker, moving the fewest addresses."""
    started = time.monotonic()
    deadline = started + max(problem.time_limit_s, 0.1)
    setup = _check(problem)
    layout = ls.layout_of(problem.units, problem.unit_hours, problem.unit_addresses)
    codes = setup.codes
    orig = np.asarray([codes.index(c) for c in problem.units.grid], dtype=np.int64)
    plan = ls.Plan(
        label=orig.copy(),
        workers=np.asarray([setup.locked_workers.get(c, problem.workers[c]) for c in codes], dtype=np.int64),
        locked=np.asarray([c in problem.locked for c in codes], dtype=bool),
    )
    plan = _reach_k(layout, plan, setup)
    home = plan.label.copy()
    current_workers = plan.workers.copy()
    plan = _staff(layout, plan, problem, setup, move_cost_share=WORKER_MOVE_COST_SHARE)
    targets = ls.Targets(
        mean=setup.mean, tolerance=problem.tolerance, aim=AIM_SHARE * problem.tolerance, pp_floor=setup.pp_floor
    )
    notes: list[str] = []
    method = "local"
    if problem.method in ("local", "auto") or not _small(layout, plan):
        best = _local(layout, plan, home, targets, problem, setup, deadline)
    else:
        best = plan
    # Measured on the bench city (benchmarks/bench_redesign.py): on communities of five grids CP-SAT never improved on
    # the local plan within 5 s, at fifty times the time. So `auto` keeps a balanced local plan and calls CP-SAT only
    # to rescue an unbalanced one.
    rescue = problem.method == "auto" and _worst(layout, best, targets) > targets.tolerance
    if (problem.method == "cpsat" or rescue) and _small(layout, plan):
        from planning.redesign.cpsat import solve_cpsat  # OR-Tools loads only when CP-SAT is asked for

        hint = best if problem.method == "auto" else _local(layout, plan, home, targets, problem, setup, deadline)
        found = solve_cpsat(
            layout, plan, home, targets, problem, current_workers=current_workers, hint=hint, deadline=deadline
        )
        if found is not None and (problem.method == "cpsat" or _better(layout, found, best, home, targets)):
            best, method = found, "cpsat"
        elif found is None:
            notes.append("CP-SAT 在时限内未找到可行方案，采用局部调整结果")
            if problem.method == "cpsat":
                best = _local(layout, plan, home, targets, problem, setup, deadline + problem.time_limit_s)
    elif problem.method == "cpsat":
        notes.append(f"区域共 {layout.n} 个单元，超过精确求解上限 {CPSAT_MAX_UNITS}，采用局部调整")
    return _assemble(problem, setup, best, method, started, notes)


def _check(problem: Problem) -> _Setup:
    """Refuse what cannot be met; derive K, the worker total, the mean and the Polsby-Popper floor."""
    codes = sorted(problem.current)
    outside = sorted(set(problem.locked) - set(codes))
    if outside:
        raise Infeasible(f"锁定的网格不在本区域内：{'、'.join(outside)}", reason="lock_outside_area")
    hours_total = float(np.sum(problem.unit_hours))
    if int(np.sum(problem.unit_addresses)) == 0 or hours_total <= 0:
        raise NothingToPlan("本区域没有标准地址或工作量，无需调整网格", reason="no_addresses")
    t = problem.total_workers if problem.total_workers is not None else sum(int(problem.workers[c]) for c in codes)
    k = problem.k if problem.k is not None else len(codes)
    lo, hi = problem.min_workers, problem.max_workers
    if k < 1 or k * lo > t or k * hi < t:
        raise Infeasible(
            f"{t} 名网格员无法配置 {k} 个网格（每格 {lo}–{hi} 人）：网格数应在 {-(-t // hi)}–{t // lo} 之间",
            reason="k_out_of_range",
        )
    if k > len(problem.units.geoms):
        raise Infeasible(f"区域只有 {len(problem.units.geoms)} 个单元，划不出 {k} 个网格", reason="k_out_of_range")
    if k < len(problem.locked):
        raise Infeasible(f"锁定了 {len(problem.locked)} 个网格，网格数不能少于锁定数", reason="k_out_of_range")
    mean = problem.mean_hours_per_worker if problem.mean_hours_per_worker else hours_total / t
    tol = problem.tolerance
    hours = {c: float(problem.unit_hours[problem.units.grid == c].sum()) for c in codes}
    locked_workers = {
        c: _locked_head_count(c, hours[c], int(problem.workers[c]), mean, problem) for c in problem.locked
    }
    k_free = k - len(problem.locked)
    t_free = t - sum(locked_workers.values())
    h_free = hours_total - sum(hours[c] for c in problem.locked)
    if k_free == 0:
        if len(problem.locked) < len(codes):
            raise Infeasible("网格数等于锁定数，未锁定的区域无处安放", reason="k_out_of_range")
    elif not k_free * lo <= t_free <= k_free * hi:
        raise Infeasible(
            f"锁定后剩余 {t_free} 名网格员无法配置 {k_free} 个未锁定网格（每格 {lo}–{hi} 人）", reason="k_out_of_range"
        )
    elif abs(h_free / (t_free * mean) - 1.0) > tol:
        raise Infeasible(
            f"锁定后其余网格人均 {h_free / t_free:.1f} 小时/月，偏离均值 {mean:.1f} 超过 ±{tol:.0%}，无法均衡",
            reason="locked_out_of_balance",
        )
    floor = problem.pp_floor
    if floor is None:
        floor = min(polsby_popper(problem.current[c]) for c in codes)
    return _Setup(codes=codes, k=k, total_workers=t, mean=mean, pp_floor=float(floor), locked_workers=locked_workers)


def _locked_head_count(code: str, hours: float, current: int, mean: float, problem: Problem) -> int:
    """A locked grid keeps its outline and code; its head-count stays, or moves the least that balances it."""
    tol = problem.tolerance
    fits = [
        w for w in range(problem.min_workers, problem.max_workers + 1) if abs(hours / (w * mean) - 1.0) <= tol + 1e-9
    ]
    if not fits:
        best = min(range(problem.min_workers, problem.max_workers + 1), key=lambda w: abs(hours / (w * mean) - 1.0))
        raise Infeasible(
            f"锁定网格 {code} 每月 {hours:.1f} 小时，配 {best} 人时人均 {hours / best:.1f} 小时，"
            f"仍偏离均值 {mean:.1f} 超过 ±{tol:.0%}：锁定它就无法均衡",
            reason="locked_out_of_balance",
        )
    return min(fits, key=lambda w: (abs(w - current), w))


def _reach_k(layout: ls.Layout, plan: ls.Plan, setup: _Setup) -> ls.Plan:
    """Split the most loaded free grid, or merge the lightest adjacent free pair, until there are K grids."""
    while plan.groups < setup.k:
        hours = ls.group_hours(layout, plan.label, plan.groups)
        sizes = np.bincount(plan.label, minlength=plan.groups)
        order = sorted(
            (g for g in range(plan.groups) if not plan.locked[g] and sizes[g] >= 2), key=lambda g: (-hours[g], g)
        )
        if not order:
            raise Infeasible(f"没有可再拆分的网格，无法划出 {setup.k} 个网格", reason="k_out_of_range")
        plan = ls.split(layout, plan, order[0])
    while plan.groups > setup.k:
        try:
            plan = ls.merge_lightest(layout, plan, setup.pp_floor)
        except ValueError as error:
            raise Infeasible(
                f"没有相邻的未锁定网格可以合并，无法减到 {setup.k} 个网格", reason="k_out_of_range"
            ) from error
    return plan


def _staff(layout: ls.Layout, plan: ls.Plan, problem: Problem, setup: _Setup, *, move_cost_share: float) -> ls.Plan:
    """Head-counts of the free groups chosen for cheap balance near the current ones; locked groups keep theirs."""
    free = ~plan.locked
    if not free.any():
        return plan
    hours = ls.group_hours(layout, plan.label, plan.groups)
    t_free = setup.total_workers - int(plan.workers[plan.locked].sum())
    chosen = choose_workers(
        hours[free],
        np.clip(plan.workers[free], problem.min_workers, problem.max_workers),
        t_free,
        setup.mean,
        problem.tolerance,
        min_workers=problem.min_workers,
        max_workers=problem.max_workers,
        move_cost_hours=move_cost_share * setup.mean,
    )
    workers = plan.workers.copy()
    workers[free] = chosen
    return ls.Plan(plan.label.copy(), workers, plan.locked.copy())


def _local(
    layout: ls.Layout,
    plan: ls.Plan,
    home: IntArray,
    targets: ls.Targets,
    problem: Problem,
    setup: _Setup,
    deadline: float,
) -> ls.Plan:
    """Local moves in a few styles (each is fast); re-staffed at no price per worker when they stall; the best plan.

    Best: balanced first, then the most addresses at home, then the lower worst deviation.
    """
    tried: list[ls.Plan] = []
    for compact, enclosed in SEARCH_STYLES:
        style = replace(targets, compact_preference=compact, enclosed_preference=enclosed)
        found = ls.balance(layout, plan, home, style, deadline=deadline)
        if _worst(layout, found, targets) > targets.tolerance:
            restaffed = _staff(layout, found, problem, setup, move_cost_share=0.0)
            found = ls.balance(layout, restaffed, home, style, deadline=deadline)
        tried.append(found)
        if time.monotonic() > deadline:
            break
    return min(tried, key=lambda p: _rank(layout, p, home, targets))


def _rank(layout: ls.Layout, plan: ls.Plan, home: IntArray, targets: ls.Targets) -> tuple[bool, int, float]:
    """Sort key of plans: balanced first, then more addresses kept, then smaller worst deviation."""
    worst = _worst(layout, plan, targets)
    return (worst > targets.tolerance, -int(layout.addresses[plan.label == home].sum()), worst)


def _worst(layout: ls.Layout, plan: ls.Plan, targets: ls.Targets) -> float:
    """Largest |deviation| over all groups."""
    return float(np.max(np.abs(ls.deviations(layout, plan, targets.mean))))


def _small(layout: ls.Layout, plan: ls.Plan) -> bool:
    """Whether CP-SAT is worth trying on this area."""
    return layout.n <= CPSAT_MAX_UNITS and int((~plan.locked).sum()) <= CPSAT_MAX_GROUPS


def _better(layout: ls.Layout, found: ls.Plan, best: ls.Plan, home: IntArray, targets: ls.Targets) -> bool:
    """Balanced beats unbalanced; between balanced plans, more addresses at home wins."""
    ok_found = _worst(layout, found, targets) <= targets.tolerance
    ok_best = _worst(layout, best, targets) <= targets.tolerance
    if ok_found != ok_best:
        return ok_found
    kept_found = int(layout.addresses[found.label == home].sum())
    kept_best = int(layout.addresses[best.label == home].sum())
    return kept_found > kept_best


def _relaxed_floor_hint(problem: Problem, setup: _Setup, *, layout_plan: ls.Plan) -> str:
    """A Chinese hint when the compactness floor is what blocks balance: the floor a quick search without it reaches."""
    if setup.pp_floor <= 0.0:
        return ""
    layout = ls.layout_of(problem.units, problem.unit_hours, problem.unit_addresses)
    targets = ls.Targets(mean=setup.mean, tolerance=problem.tolerance, aim=AIM_SHARE * problem.tolerance, pp_floor=0.0)
    home = np.asarray([setup.codes.index(c) for c in problem.units.grid], dtype=np.int64)
    start = ls.Plan(home.copy(), layout_plan.workers.copy(), layout_plan.locked.copy())
    if start.groups != len(setup.codes):
        return ""
    found = ls.balance(layout, start, home, targets, deadline=time.monotonic() + 1.0)
    if _worst(layout, found, targets) > problem.tolerance:
        return ""
    area, perimeter = ls.group_shape(layout, found.label, found.groups)
    reached = float(ls.polsby_popper(area, perimeter)[~found.locked].min())
    return f"；紧凑度下限 {setup.pp_floor:.2f} 限制了调整，放宽到 {reached:.2f} 可以达到均衡（--pp-floor）"


def _assemble(
    problem: Problem, setup: _Setup, plan: ls.Plan, method: str, started: float, notes: list[str]
) -> Solution:
    """Codes, polygons, head-counts and figures of the final plan; refuse it when it is not balanced."""
    codes = setup.codes
    locked_code: list[str | None] = [None] * plan.groups
    for g in range(plan.groups):
        if plan.locked[g]:
            # Locked groups never move a unit, so the group is exactly its grid's units.
            locked_code[g] = str(problem.units.grid[np.flatnonzero(plan.label == g)[0]])
    group_code = group_codes(
        problem.units, problem.unit_addresses, plan.label, locked_code, codes, list(problem.new_codes)
    )
    grids = group_geometries(problem.units, plan.label, group_code, problem.current)
    workers = {group_code[g]: int(plan.workers[g]) for g in range(plan.groups)}
    unit_grid = np.asarray([group_code[int(g)] for g in plan.label], dtype=object)
    before = grid_rows(
        codes,
        problem.units.grid,
        problem.unit_hours,
        problem.unit_addresses,
        problem.current,
        {c: int(problem.workers[c]) for c in codes},
        setup.mean,
        problem.locked,
    )
    after = grid_rows(
        sorted(grids),
        unit_grid,
        problem.unit_hours,
        problem.unit_addresses,
        grids,
        workers,
        setup.mean,
        problem.locked,
    )
    figs = figures(
        before=before,
        after=after,
        unit_before=problem.units.grid,
        unit_after=unit_grid,
        unit_addresses=problem.unit_addresses,
        tolerance=problem.tolerance,
        mean=setup.mean,
        pp_floor=setup.pp_floor,
        method=method,
        seconds=time.monotonic() - started,
        notes=notes,
    )
    if not figs.balanced:
        relaxed = _relaxed_floor_hint(problem, setup, layout_plan=plan)
        raise Infeasible(
            f"在 {problem.time_limit_s:.0f} 秒内未找到每格人均工作量都在均值 ±{problem.tolerance:.0%} 内的方案"
            f"（最好结果偏差 {figs.max_deviation_after:.1%}）{relaxed}",
            reason="no_balanced_plan",
        )
    return Solution(grids=grids, workers=workers, unit_grid=unit_grid, figures=figs)
