"""tests.support.grid_areas: communities of the test city a grid redesign can work on (a few staffed grids), with
the grid that can be locked (its workload per worker nearest the community's mean)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from planning import grid_versions
from planning.errors import PlanningError
from planning.workload_service import grid_workloads

# Communities of the active version with 3 to 5 grids, every grid staffed by at least two active workers and
# holding addresses, so that one more grid (K + 1) can still be staffed two to a grid.
_COMMUNITIES = text(
    """
    WITH g AS (
        SELECT g.code, g.community_code, g.town_code,
               (SELECT count(*) FROM worker w WHERE w.version_id = g.version_id AND w.grid_code = g.code AND w.active)
                 AS workers,
               (SELECT count(*) FROM address a WHERE a.grid_code = g.code AND a.status = 'active') AS addresses
        FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
    )
    SELECT community_code, town_code, array_agg(code ORDER BY code) AS grid_codes,
           array_agg(workers ORDER BY code) AS workers
    FROM g
    WHERE (CAST(:town AS text) IS NULL OR town_code = :town)
      AND (CAST(:not_town AS text) IS NULL OR town_code <> :not_town)
    GROUP BY community_code, town_code
    HAVING count(*) BETWEEN 3 AND 5 AND min(workers) >= 2 AND min(addresses) > 0
       AND sum(workers) >= 2 * (count(*) + 1)
    ORDER BY community_code LIMIT 60
    """
)
# How close to the community's mean workload per worker the grid to lock must be (the redesign allows ±10%).
LOCK_DEVIATION = 0.05


@dataclass(frozen=True)
class RedesignArea:
    """A community to redraw: its town, its grids (lowest code first), its active workers and a grid to lock."""

    community_code: str
    town_code: str
    grid_codes: tuple[str, ...]
    workers: int
    lock: str
    others: tuple[str, ...]


def a_community_to_redesign(
    conn: Connection, *, town_code: str | None = None, not_town: str | None = None, locked: bool = True
) -> RedesignArea:
    """The community of lowest code (in `town_code`, or outside `not_town`) with 3-5 staffed grids that the redesign
    can draw with one grid more (K + 1) and, when `locked`, the grid nearest the mean workload per worker locked.

    Each candidate is tried for real (planning.grid_versions.draw) in a transaction rolled back at once, so a story
    never starts from an area the solver cannot balance.
    """
    rows = conn.execute(_COMMUNITIES, {"town": town_code, "not_town": not_town}).mappings().all()
    for row in rows:
        codes = tuple(row["grid_codes"])
        workers = dict(zip(codes, (int(n) for n in row["workers"]), strict=True))
        hours = {code: load.hours for code, load in grid_workloads(conn, grid_codes=codes).items()}
        if set(hours) != set(codes) or sum(hours.values()) <= 0:
            continue
        mean = sum(hours.values()) / sum(workers.values())
        deviation = {code: abs(hours[code] / workers[code] / mean - 1) for code in codes}
        lock = min(codes, key=lambda code: (deviation[code], code))
        if locked and deviation[lock] > LOCK_DEVIATION:
            continue
        if not _drawable(conn, row["community_code"], len(codes) + 1, [lock] if locked else []):
            continue
        others = tuple(code for code in codes if code != lock)
        return RedesignArea(row["community_code"], row["town_code"], codes, sum(workers.values()), lock, others)
    raise AssertionError(f"the test city has no community of 3-5 staffed grids in {town_code} outside {not_town}")


def _drawable(conn: Connection, community_code: str, k: int, locks: list[str]) -> bool:
    """Whether the redesign draws this community with K grids and these locks (tried, then rolled back)."""
    trial = conn.begin_nested()
    try:
        grid_versions.draw(conn, community=community_code, k=k, locked=locks, actor_name="test:probe")
        return True
    except PlanningError:
        return False
    finally:
        trial.rollback()
