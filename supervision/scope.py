"""supervision.scope: the one Scope type: where a caller may look and act, taken from their credential only.

A scope is the whole city, a town, a community, a grid worker's grids, a department, or nothing. It answers both
questions every endpoint asks:

- "may this caller see this object?" (`sees` for a town, community or grid code; `covers` for the figures of a unit;
  `Scope.task_sql` checked against the one row read by id);
- "filter this query" (`towns` for the map, the address library, heatmaps and figures; `task_sql` and `clue_sql`
  for tasks, clues and their history, and later tiles and streams).

The map area and the task area differ on purpose: a dispatcher sees their whole town on the map but only their
community's tasks; a department officer sees the whole city's map but only the tasks routed to their department.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from grids.codes import community_sql, town_of, within
from supervision.errors import NotFound, OutOfScope

ScopeKind = Literal["city", "town", "community", "worker", "department", "none"]
_AREA_LABELS = {
    "town": "your town",
    "community": "your community",
    "worker": "your grids",
    "department": "your department",
}
# The kinds whose map area is the whole city.
_CITY_MAP: frozenset[str] = frozenset({"city", "department"})


@dataclass(frozen=True)
class Scope:
    """Where a caller may look and act.

    `code` is the town, community, worker id or department code of the scope; `town` is a worker's town, resolved
    from their worker row when the credential is checked (a town's or a community's is read from its code).
    """

    kind: ScopeKind
    code: str | None = None
    town: str | None = None

    @property
    def area_label(self) -> str:
        """The scope's area in words, for error messages: your town, your community, your grids…"""
        return _AREA_LABELS.get(self.kind, "your area")

    # -------------------------------------------------------------------------------------- map area (territory)

    @property
    def towns(self) -> frozenset[str] | None:
        """The towns whose map, addresses, heatmaps and figures this scope sees; None means the whole city.

        A territorial scope whose town could not be resolved (a worker id with no worker row) sees no town.
        """
        if self.kind in _CITY_MAP:
            return None
        if self.kind in ("town", "community") and self.code:
            return frozenset({town_of(self.code)})
        if self.kind == "worker" and self.town:
            return frozenset({self.town})
        return frozenset()

    def sees(self, code: str | None) -> bool:
        """Whether a town, community or grid code lies within the towns this scope sees.

        An object of no known place (None) is seen only by a scope whose map is the whole city.
        """
        towns = self.towns
        return towns is None or (code is not None and town_of(code) in towns)

    def map_town(self, town: str | None) -> str | None:
        """The town a map view shows: the one asked for, or by default the scope's own (None: the whole city).

        OutOfScope for a town outside the scope, checked before anything is read, so that an answer never tells
        an outsider whether a town exists.
        """
        towns = self.towns
        if town is None:
            if towns is None:
                return None
            if len(towns) != 1:
                raise OutOfScope("your credential gives no town")
            return next(iter(towns))
        if not self.sees(town):
            raise OutOfScope(f"{town} is outside your area")
        return town

    # ---------------------------------------------------------------------------------------- work (tasks, clues)

    def task_sql(self, alias: str = "t", *, held: bool = False) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment over a task alias (town_code, community_code, grid_code, department_codes), bound.

        `held`: the alias is a real task row (it has worker_id), so a worker also sees the tasks handed to them
        from a neighbouring grid of their community (planning's daily assignment); rows made up to stand for a
        grid's or an event's tasks leave it False and are judged by their grid alone.
        """
        if self.kind == "city":
            return "TRUE", {}
        if self.kind == "town":
            return f"{alias}.town_code = :scope_code", {"scope_code": self.code}
        if self.kind == "community":
            return f"{alias}.community_code = :scope_code", {"scope_code": self.code}
        if self.kind == "worker":
            # Their grid's tasks, and the tasks handed to them from a neighbouring grid (planning's daily assignment).
            grid, params = self._worker_grid_sql(alias)
            return (f"({grid} OR {alias}.worker_id = :scope_worker)" if held else grid), params
        if self.kind == "department":
            return f":scope_code = ANY(string_to_array({alias}.department_codes, ','))", {"scope_code": self.code}
        return "FALSE", {}

    def _worker_grid_sql(self, alias: str) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment: the row lies in the grid of this worker scope's active worker row."""
        return (
            f"{alias}.grid_code IN (SELECT w.grid_code FROM worker w WHERE w.id = :scope_worker AND w.active)",  # noqa: S608 - fixed SQL fragments; values are bound
            {"scope_worker": self.worker_id if self.worker_id is not None else -1},
        )

    def clue_sql(self, alias: str = "c") -> tuple[str, dict[str, Any]]:
        """A WHERE fragment over a clue alias (town_code, grid_code, department_code): a department sees its clues."""
        if self.kind == "department":
            return f"{alias}.department_code = :scope_code", {"scope_code": self.code}
        if self.kind == "community":
            return f"{community_sql(alias + '.grid_code')} = :scope_code", {"scope_code": self.code}
        if self.kind == "worker":
            return self._worker_grid_sql(alias)
        return self.task_sql(alias)

    def review_sql(self) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment over review_queue: the items this scope handles (see `handles_review`), bound."""
        if self.kind == "city":
            return "TRUE", {}
        if self.kind == "town":
            return "town_code = :scope_code", {"scope_code": self.code}
        if self.kind == "community" and self.code:
            return (
                "town_code = :scope_town AND (payload->>'community_code' = :scope_code "
                "OR payload->>'community_code' IS NULL)",
                {"scope_town": town_of(self.code), "scope_code": self.code},
            )
        return "FALSE", {}

    def handles_review(self, town_code: str | None, community_code: str | None) -> bool:
        """Whether this scope handles a review item of this town and (when known) community.

        The city handles every item; a town its own; a community's dispatcher their town's items of their community
        or of no known community. An item of no known town is the command centre's.
        """
        if self.kind == "city":
            return True
        if town_code is None or not self.code:
            return False
        if self.kind == "town":
            return town_code == self.code
        if self.kind == "community":
            return town_code == town_of(self.code) and community_code in (None, self.code)
        return False

    def covers(self, conn: Connection, level: str, code: str | None) -> bool:
        """Whether the caller may act on, or read the figures of, a town, community, grid or department.

        `code` None means "every unit of the level within my area": only the city and a town may ask that.
        """
        if self.kind == "city":
            return True
        if level == "department":
            return self.kind == "department" and code == self.code
        if code is None:
            return self.kind == "town"
        if self.kind == "town":
            return self.code is not None and within(code, self.code)
        if self.kind == "community":
            return level != "town" and self.code is not None and within(code, self.code)
        if self.kind == "worker":
            return level == "grid" and code in self.worker_grids(conn)
        return False

    @property
    def worker_id(self) -> int | None:
        """The worker of a worker scope (None for any other scope or a malformed id)."""
        if self.kind != "worker" or not self.code or not self.code.isdigit():
            return None
        return int(self.code)

    def worker_grids(self, conn: Connection) -> frozenset[str]:
        """The grids of a worker scope (their active worker row); empty for any other scope."""
        if self.worker_id is None:
            return frozenset()
        rows = conn.execute(text("SELECT grid_code FROM worker WHERE id = :w AND active"), {"w": self.worker_id})
        return frozenset(r[0] for r in rows)


def visible_row(conn: Connection, sql: str, params: dict[str, Any], *, what: str) -> dict[str, Any]:
    """The one row `sql` reads by id, whose column `visible` is the scope's condition; NotFound or OutOfScope.

    Reads by id take the same scope fragment as the lists (`task_sql`, `clue_sql`), so a list and a read by id
    can never disagree; the row comes back without `visible`.
    """
    row = conn.execute(text(sql), params).mappings().first()
    if row is None:
        raise NotFound(f"no {what}")
    if not row["visible"]:
        raise OutOfScope(f"{what} is outside your area")
    return {k: v for k, v in row.items() if k != "visible"}


CITY = Scope("city")
NOWHERE = Scope("none")
