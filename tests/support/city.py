"""tests.support.city: named lookups over the test city (a door with workers, a worker elsewhere, the busiest town).

Each lookup takes a Connection and returns one frozen record; it fails the test when the city holds no such place,
so that a story never runs against a place it did not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

# Doors (road doors unless asked otherwise) of active addresses, with their grid's active workers; the optional
# conditions are bound parameters (a NULL leaves the condition out).
_DOOR = text(
    """
    SELECT a.id, a.full_text, a.grid_code, a.community_code, a.town_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat,
           c.name AS community_name, t.name AS town_name,
           ARRAY(SELECT w.id FROM worker w WHERE w.grid_code = a.grid_code AND w.active ORDER BY w.id) AS worker_ids
    FROM address a JOIN community c ON c.code = a.community_code JOIN town t ON t.code = a.town_code
    WHERE a.level = 'door' AND a.kind = :kind AND a.status = 'active'
      AND (SELECT count(*) FROM worker w WHERE w.grid_code = a.grid_code AND w.active) >= :min_workers
      AND (CAST(:town AS text) IS NULL OR a.town_code = :town)
      AND (CAST(:not_town AS text) IS NULL OR a.town_code <> :not_town)
      AND (CAST(:not_community AS text) IS NULL OR a.community_code <> :not_community)
      AND (CAST(:not_grid AS text) IS NULL OR a.grid_code <> :not_grid)
    ORDER BY a.id LIMIT 1
    """
)


@dataclass(frozen=True)
class Door:
    """A road door of the standard address library, its places, and its grid's active workers (lowest id first)."""

    id: int
    full_text: str
    grid_code: str
    community_code: str
    town_code: str
    lon: float
    lat: float
    community_name: str
    town_name: str
    worker_ids: tuple[int, ...]

    @property
    def worker_id(self) -> int:
        """The first active worker of the door's grid."""
        return self.worker_ids[0]


@dataclass(frozen=True)
class Worker:
    """An active grid worker and the grid, community and town they work in."""

    id: int
    grid_code: str
    community_code: str
    town_code: str


@dataclass(frozen=True)
class Town:
    """A town by code and name."""

    code: str
    name: str


def _door(
    conn: Connection,
    *,
    min_workers: int = 1,
    town: str | None = None,
    not_town: str | None = None,
    not_community: str | None = None,
    not_grid: str | None = None,
    kind: str = "road_door",
) -> Door:
    params = {
        "kind": kind,
        "min_workers": min_workers,
        "town": town,
        "not_town": not_town,
        "not_community": not_community,
        "not_grid": not_grid,
    }
    row = conn.execute(_DOOR, params).mappings().first()
    assert row is not None, f"the test city has no road door with {params}"
    return Door(**{**row, "worker_ids": tuple(row["worker_ids"])})


def a_door_with_workers(conn: Connection, min_workers: int = 1) -> Door:
    """The first road door whose grid has at least `min_workers` active workers."""
    return _door(conn, min_workers=min_workers)


def a_village_door_with_workers(conn: Connection) -> Door:
    """The first door of a natural village (its text names the community) whose grid has an active worker."""
    return _door(conn, kind="village")


def a_door_in_a_neighbour_community(conn: Connection, door: Door) -> Door:
    """A door with a worker in another community (and grid) of the same town as `door`."""
    return _door(conn, town=door.town_code, not_community=door.community_code, not_grid=door.grid_code)


def a_door_in_another_town(conn: Connection, town_code: str) -> Door:
    """A door with a worker in any town but `town_code`."""
    return _door(conn, not_town=town_code)


def a_worker(conn: Connection, *, town_code: str | None = None, not_town: str | None = None) -> Worker:
    """The active worker of lowest id in `town_code`, or outside `not_town` (either, both or neither)."""
    row = (
        conn.execute(
            text(
                "SELECT w.id, w.grid_code, g.community_code, g.town_code FROM worker w "
                "JOIN grid g ON g.code = w.grid_code AND g.version_id = w.version_id WHERE w.active "
                "AND (CAST(:town AS text) IS NULL OR g.town_code = :town) "
                "AND (CAST(:not_town AS text) IS NULL OR g.town_code <> :not_town) ORDER BY w.id LIMIT 1"
            ),
            {"town": town_code, "not_town": not_town},
        )
        .mappings()
        .first()
    )
    assert row is not None, f"the test city has no active worker in {town_code or 'any town'} outside {not_town}"
    return Worker(**row)


def busiest_town(conn: Connection) -> Town:
    """The town with the most clues (ties to the lowest code)."""
    row = conn.execute(
        text(
            "SELECT t.code, t.name FROM clue c JOIN town t ON t.code = c.town_code "
            "GROUP BY t.code, t.name ORDER BY count(*) DESC, t.code LIMIT 1"
        )
    ).one()
    return Town(code=row.code, name=row.name)


def another_town(conn: Connection, town_code: str) -> Town:
    """The town of lowest code other than `town_code`."""
    row = conn.execute(
        text("SELECT code, name FROM town WHERE code <> :t ORDER BY code LIMIT 1"), {"t": town_code}
    ).one()
    return Town(code=row.code, name=row.name)
