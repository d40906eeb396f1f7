"""supervision.worker_roster: the active grid workers of a grid or a community, with their open workload.

What a dispatcher picks from when they assign a task: only workers of the caller's area (Scope.covers), each with
the number of open tasks they hold and their capacity, so the lightest-loaded worker can be chosen by eye.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from grids.codes import COMMUNITY_DIGITS
from supervision.errors import InvalidInput, OutOfScope
from supervision.scope import Scope
from supervision.task_states import OPEN_STATUSES


@dataclass(frozen=True)
class RosterWorker:
    """一名在岗网格员：编号、姓名、所在网格与村（社区）、在办任务数与承载量。"""

    id: int
    name: str
    grid_code: str
    community_code: str
    open_tasks: int = field(metadata={"description": "在办任务数"})
    capacity: int = field(metadata={"description": "承载量（同时在办的任务上限）"})


_ROSTER = text(
    """
    SELECT w.id, w.name, w.grid_code, left(w.grid_code, :community_digits) AS community_code, w.capacity,
           (SELECT count(*) FROM task t WHERE t.worker_id = w.id AND t.status = ANY(:open)) AS open_tasks
    FROM worker w JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'
    WHERE w.active
      AND (CAST(:grid AS text) IS NULL OR w.grid_code = :grid)
      AND (CAST(:community AS text) IS NULL OR left(w.grid_code, :community_digits) = :community)
    ORDER BY w.grid_code, w.id
    """
)


def workers_of(
    conn: Connection, scope: Scope, *, grid: str | None = None, community: str | None = None
) -> list[RosterWorker]:
    """The active workers of `grid` or `community` (a dispatcher's own community when neither is given).

    OutOfScope for a grid or community the caller's scope does not cover; InvalidInput when a city-wide caller names
    neither (the city's roster is no list to pick from).
    """
    if grid is None and community is None:
        if scope.kind != "community" or not scope.code:
            raise InvalidInput("name a grid or a community", field="community")
        community = scope.code
    for level, code in (("grid", grid), ("community", community)):
        if code is not None and not scope.covers(conn, level, code):
            raise OutOfScope(f"the workers of {level} {code} are outside {scope.area_label}")
    rows = conn.execute(
        _ROSTER,
        {"grid": grid, "community": community, "open": list(OPEN_STATUSES), "community_digits": COMMUNITY_DIGITS},
    ).mappings()
    return [RosterWorker(**r) for r in rows]
