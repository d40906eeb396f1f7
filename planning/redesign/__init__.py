"""planning.redesign: redraw an area's grids for balanced workload with the least disruption (pure, no database).

`build_units` cuts the current grids into small units, `unit_work` places the hours and addresses on them, and
`redesign(Problem)` answers a `Solution` (new grids, head-counts, figures); `town_redesign` runs every community of a
town at the town's mean. See solve.py for the steps and local_search.py / cpsat.py for the two methods.
"""

from planning.redesign.problem import Figures, Method, Problem, Solution
from planning.redesign.solve import redesign
from planning.redesign.town import town_redesign, union_figures
from planning.redesign.units import Units, build_units, unit_work

__all__ = [
    "Figures",
    "Method",
    "Problem",
    "Solution",
    "Units",
    "build_units",
    "redesign",
    "town_redesign",
    "union_figures",
    "unit_work",
]
