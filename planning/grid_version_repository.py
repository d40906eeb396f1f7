"""planning.grid_version_repository: all SQL of grid-version drafts — read the area, write a draft, switch versions.

Every statement is set-based and bound; the service (`planning.grid_versions`) decides the order and the rules.
Points (addresses, entities, clues) are placed by the locator's rule: the lowest code among the grids of the
version that cover the point (`min(code)` over `ST_Covers`), so a point on a shared edge lands where
`grids.locate` would put it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from grids.codes import grid_number
from supervision.intake import GRID_VERSION_LOCK
from supervision.task_states import OPEN_STATUSES, WORKER_HELD

AreaLevel = Literal["community", "town"]


@dataclass(frozen=True)
class Area:
    """A community or a town a draft redraws, with the communities it holds (WGS84 geometries)."""

    level: AreaLevel
    code: str
    name: str
    town_code: str
    community_codes: tuple[str, ...]
    community_names: Mapping[str, str]
    community_geoms: Mapping[str, BaseGeometry]


@dataclass(frozen=True)
class GridRow:
    """One grid of a version as the redesign reads it (WGS84 geometry and its stored WKB, kept byte for byte)."""

    code: str
    community_code: str
    town_code: str
    name: str | None
    wkb: bytes
    geom: BaseGeometry
    population: int
    worker_count: int


@dataclass(frozen=True)
class VersionRow:
    """A grid_version row."""

    id: int
    name: str
    status: str
    created_at: datetime
    base_version_id: int | None
    area_code: str | None
    created_by: str | None
    figures: dict[str, Any] | None
    fingerprint: str | None
    activated_at: datetime | None
    retired_at: datetime | None


@dataclass(frozen=True)
class NewGrid:
    """A grid of a draft's area: its code, community, name, WKB geometry (WGS84 multipolygon) and figures."""

    code: str
    community_code: str
    town_code: str
    name: str | None
    wkb: bytes
    area_m2: float
    worker_count: int
    population: int | None  # None: apportioned from the base version's grids by area


# ------------------------------------------------------------------------------------------------------- locks


def lock_versions(conn: Connection) -> None:
    """Take the grid-version lock exclusively (intake waits; nothing is placed in a grid while versions switch)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GRID_VERSION_LOCK})


def lock_versions_shared(conn: Connection) -> None:
    """Take the grid-version lock shared: the active version cannot change until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": GRID_VERSION_LOCK})


# -------------------------------------------------------------------------------------------------------- reads


def community_area(conn: Connection, code: str) -> Area | None:
    """The community `code` as an area (None when unknown)."""
    row = conn.execute(
        text("SELECT code, name, town_code, ST_AsBinary(geom) AS wkb FROM community WHERE code = :code"),
        {"code": code},
    ).first()
    if row is None:
        return None
    return Area(
        level="community",
        code=row.code,
        name=row.name,
        town_code=row.town_code,
        community_codes=(row.code,),
        community_names={row.code: row.name},
        community_geoms={row.code: shapely.from_wkb(bytes(row.wkb))},
    )


def town_area(conn: Connection, code: str) -> Area | None:
    """The town `code` and all its communities as an area (None when unknown)."""
    name = conn.execute(text("SELECT name FROM town WHERE code = :code"), {"code": code}).scalar_one_or_none()
    if name is None:
        return None
    rows = conn.execute(
        text("SELECT code, name, ST_AsBinary(geom) AS wkb FROM community WHERE town_code = :code ORDER BY code"),
        {"code": code},
    ).all()
    return Area(
        level="town",
        code=code,
        name=str(name),
        town_code=code,
        community_codes=tuple(r.code for r in rows),
        community_names={r.code: r.name for r in rows},
        community_geoms={r.code: shapely.from_wkb(bytes(r.wkb)) for r in rows},
    )


def active_version(conn: Connection, *, for_update: bool = False) -> VersionRow | None:
    """The active grid version."""
    suffix = " FOR UPDATE" if for_update else ""
    row = conn.execute(text(_VERSION_SELECT + " WHERE status = 'active'" + suffix)).first()
    return None if row is None else _version(row)


def version(conn: Connection, version_id: int, *, for_update: bool = False) -> VersionRow | None:
    """One grid version by id."""
    suffix = " FOR UPDATE" if for_update else ""
    row = conn.execute(text(_VERSION_SELECT + " WHERE id = :id" + suffix), {"id": version_id}).first()
    return None if row is None else _version(row)


def versions(conn: Connection, *, status: str | None = None) -> list[VersionRow]:
    """Every grid version (or those of one status), newest first."""
    rows = conn.execute(
        text(_VERSION_SELECT + " WHERE CAST(:status AS text) IS NULL OR status = :status ORDER BY id DESC"),
        {"status": status},
    ).all()
    return [_version(r) for r in rows]


_VERSION_SELECT = (
    "SELECT id, name, status, created_at, base_version_id, area_code, created_by, figures, fingerprint, "
    "activated_at, retired_at FROM grid_version"
)


def _version(row: Any) -> VersionRow:
    return VersionRow(
        id=int(row.id),
        name=row.name,
        status=row.status,
        created_at=row.created_at,
        base_version_id=row.base_version_id,
        area_code=row.area_code,
        created_by=row.created_by,
        figures=row.figures,
        fingerprint=row.fingerprint,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
    )


def grids_of(conn: Connection, version_id: int, community_codes: Collection[str]) -> list[GridRow]:
    """The grids of these communities in one version, by code."""
    rows = conn.execute(
        text(
            "SELECT code, community_code, town_code, name, ST_AsBinary(geom) AS wkb, population, worker_count "
            "FROM grid WHERE version_id = :v AND community_code = ANY(:c) ORDER BY code"
        ),
        {"v": version_id, "c": sorted(community_codes)},
    ).all()
    return [
        GridRow(
            code=r.code,
            community_code=r.community_code,
            town_code=r.town_code,
            name=r.name,
            wkb=bytes(r.wkb),
            geom=shapely.from_wkb(bytes(r.wkb)),
            population=int(r.population),
            worker_count=int(r.worker_count),
        )
        for r in rows
    ]


def worst_polsby_popper(conn: Connection, version_id: int, town_code: str) -> float | None:
    """The lowest Polsby-Popper compactness (4πA/P², in metres) of a town's grids in one version (None: no grid)."""
    value = conn.execute(
        text(
            "SELECT min(4 * pi() * ST_Area(m) / (ST_Perimeter(m) ^ 2)) FROM ("
            " SELECT ST_Transform(geom, 4547) AS m FROM grid WHERE version_id = :v AND town_code = :t) s "
            "WHERE ST_Perimeter(m) > 0"
        ),
        {"v": version_id, "t": town_code},
    ).scalar_one()
    return None if value is None else float(value)


def active_workers_by_grid(conn: Connection, version_id: int, community_codes: Collection[str]) -> dict[str, int]:
    """Active workers per grid of these communities in one version (grids without any are absent)."""
    rows = conn.execute(
        text(
            "SELECT grid_code, count(*) FROM worker WHERE version_id = :v AND active "
            "AND left(grid_code, 12) = ANY(:c) GROUP BY grid_code"
        ),
        {"v": version_id, "c": sorted(community_codes)},
    ).all()
    return {str(code): int(n) for code, n in rows}


def used_grid_numbers(conn: Connection, community_codes: Collection[str]) -> dict[str, set[int]]:
    """The grid numbers each community has used in ANY version: a retired code is never given to a new grid."""
    rows = conn.execute(
        text("SELECT DISTINCT community_code, code FROM grid WHERE community_code = ANY(:c)"),
        {"c": sorted(community_codes)},
    ).all()
    used: dict[str, set[int]] = {c: set() for c in community_codes}
    for community_code, code in rows:
        used.setdefault(community_code, set()).add(grid_number(code))
    return used


# ------------------------------------------------------------------------------------------------- fingerprint

# What a draft depended on, per part, each an md5 of an ordered aggregate: the area's addresses (id, point,
# status), its entities (credit code, address, status, point), its active workers (id and grid), and the base
# version. One statement, index-driven (community_code, grid_code), cheap even for a town. Open tasks are not part
# of it: tasks open and close every hour, and an apply moves them with their entity whatever their number, so a
# draft would otherwise go stale before anyone could look at it.
_FINGERPRINT = text(
    """
    SELECT
      (SELECT md5(coalesce(string_agg(a.id::text || ':' || a.status || ':' || a.geom::text, ',' ORDER BY a.id), ''))
         FROM address a WHERE a.community_code = ANY(:c)) AS addresses,
      (SELECT md5(coalesce(string_agg(e.uscc || ':' || coalesce(e.address_id::text, '-') || ':' || e.status || ':'
                                      || coalesce(e.geom::text, '-') || ':' || coalesce(e.grid_code, '-'),
                                      ',' ORDER BY e.uscc), ''))
         FROM entity e WHERE left(e.grid_code, 12) = ANY(:c)) AS entities,
      (SELECT md5(coalesce(string_agg(w.id::text || ':' || w.grid_code, ',' ORDER BY w.id), ''))
         FROM worker w WHERE w.version_id = :v AND w.active AND left(w.grid_code, 12) = ANY(:c)) AS workers
    """
)

FINGERPRINT_PARTS = ("base", "addresses", "entities", "workers")


def fingerprint_parts(conn: Connection, *, base_version_id: int, community_codes: Collection[str]) -> dict[str, str]:
    """The fingerprint of an area's data, part by part (base version, addresses, entities, workers)."""
    row = conn.execute(_FINGERPRINT, {"c": sorted(community_codes), "v": base_version_id}).one()
    return {
        "base": str(base_version_id),
        "addresses": row.addresses,
        "entities": row.entities,
        "workers": row.workers,
    }


def encode_fingerprint(parts: Mapping[str, str]) -> str:
    """The stored form: `part=value;…` (readable part by part, so a refusal can say what changed)."""
    return ";".join(f"{k}={parts[k]}" for k in FINGERPRINT_PARTS)


def decode_fingerprint(stored: str | None) -> dict[str, str]:
    """The parts of a stored fingerprint (empty for none)."""
    if not stored:
        return {}
    return dict(item.split("=", 1) for item in stored.split(";") if "=" in item)


# ------------------------------------------------------------------------------------------------------ drafts


def insert_draft(
    conn: Connection,
    *,
    name: str,
    note: str,
    base_version_id: int,
    area_code: str,
    created_by: str,
    created_at: datetime,
    figures: Mapping[str, Any],
    fingerprint: str,
) -> int:
    """A new grid_version row in status 'draft'; its id."""
    return int(
        conn.execute(
            text(
                "INSERT INTO grid_version (name, status, created_at, note, base_version_id, area_code, created_by, "
                "figures, fingerprint) VALUES (:name, 'draft', :at, :note, :base, :area, :by, CAST(:figures AS jsonb), "
                ":fingerprint) RETURNING id"
            ),
            {
                "name": name,
                "at": created_at,
                "note": note,
                "base": base_version_id,
                "area": area_code,
                "by": created_by,
                "figures": json.dumps(figures, ensure_ascii=False),
                "fingerprint": fingerprint,
            },
        ).scalar_one()
    )


def drafts_of_area(conn: Connection, area_code: str) -> list[int]:
    """The ids of the drafts of one area (community or town code), oldest first."""
    rows = conn.execute(
        text("SELECT id FROM grid_version WHERE status = 'draft' AND area_code = :a ORDER BY id"), {"a": area_code}
    ).scalars()
    return [int(i) for i in rows]


def discard_draft(conn: Connection, version_id: int, *, at: datetime, actor: str) -> None:
    """Delete a draft's grids and workloads and keep its row, retired, with who discarded it and when (the audit)."""
    conn.execute(text("DELETE FROM grid_workload WHERE version_id = :v"), {"v": version_id})
    conn.execute(text("DELETE FROM grid WHERE version_id = :v"), {"v": version_id})
    conn.execute(
        text(
            "UPDATE grid_version SET status = 'retired', retired_at = :at, name = name || '（草案已删除）', "
            "note = coalesce(note, '') || :note, "
            "figures = coalesce(figures, '{}'::jsonb) || jsonb_build_object('discarded_by', CAST(:actor AS text), "
            "'discarded_at', CAST(:at AS timestamptz)) WHERE id = :v"
        ),
        {"v": version_id, "at": at, "actor": actor, "note": f"；草案由 {actor} 删除"},
    )


def copy_grids_except(conn: Connection, *, from_version: int, to_version: int, community_codes: Collection[str]) -> int:
    """Copy every grid of a version but those of these communities (and their stored workloads) into another."""
    copied = conn.execute(
        text(
            "INSERT INTO grid (version_id, code, community_code, town_code, name, population, address_count, "
            "entity_count, workload, worker_count, area_m2, geom) "
            "SELECT :to, g.code, g.community_code, g.town_code, g.name, g.population, g.address_count, "
            "g.entity_count, g.workload, "
            # The stored count goes stale when workers move (staffing does not touch it): count them now.
            "(SELECT count(*) FROM worker w WHERE w.version_id = :from AND w.grid_code = g.code AND w.active), "
            "g.area_m2, g.geom FROM grid g WHERE g.version_id = :from AND NOT (g.community_code = ANY(:c))"
        ),
        {"from": from_version, "to": to_version, "c": sorted(community_codes)},
    ).rowcount
    # Outside the area the grids and their points are the same, and so is their workload.
    conn.execute(
        text(
            "INSERT INTO grid_workload (version_id, grid_code, standards_version, hours, items, computed_at) "
            "SELECT :to, grid_code, standards_version, hours, items, computed_at FROM grid_workload "
            "WHERE version_id = :from AND NOT (left(grid_code, 12) = ANY(:c))"
        ),
        {"from": from_version, "to": to_version, "c": sorted(community_codes)},
    )
    return int(copied)


def insert_area_grids(conn: Connection, version_id: int, grids: Sequence[NewGrid], *, base_version_id: int) -> None:
    """Insert a draft's area grids; a grid without a population gets the base grids' by share of their area."""
    conn.execute(
        text(
            "INSERT INTO grid (version_id, code, community_code, town_code, name, population, worker_count, area_m2, "
            "geom) VALUES (:v, :code, :community, :town, :name, coalesce(:population, 0), :workers, :area_m2, "
            "ST_Multi(ST_SetSRID(ST_GeomFromWKB(:wkb), 4326)))"
        ),
        [
            {
                "v": version_id,
                "code": g.code,
                "community": g.community_code,
                "town": g.town_code,
                "name": g.name,
                "population": g.population,
                "workers": g.worker_count,
                "area_m2": g.area_m2,
                "wkb": g.wkb,
            }
            for g in grids
        ],
    )
    # The planner's figures of `grid` must know the new version's rows, or locating points in it scans them all.
    conn.execute(text("ANALYZE grid"))
    apportion = [g.code for g in grids if g.population is None]
    if apportion:
        conn.execute(
            text(
                """
                UPDATE grid n SET population = p.population FROM (
                  SELECT n2.code, round(coalesce(sum(o.population * ST_Area(ST_Intersection(n2.geom, o.geom))
                                                     / nullif(ST_Area(o.geom), 0)), 0))::int AS population
                  FROM grid n2 JOIN grid o ON o.version_id = :base AND o.community_code = n2.community_code
                   AND ST_Intersects(n2.geom, o.geom)
                  WHERE n2.version_id = :v AND n2.code = ANY(:codes) GROUP BY n2.code) p
                WHERE n.version_id = :v AND n.code = p.code
                """
            ),
            {"v": version_id, "base": base_version_id, "codes": apportion},
        )


def count_draft_points(conn: Connection, version_id: int, community_codes: Collection[str]) -> None:
    """A draft's area grids' address and entity counts, placed spatially (lowest covering code wins)."""
    conn.execute(
        text(
            """
            UPDATE grid g SET address_count = coalesce(c.n_addr, 0), entity_count = coalesce(c.n_ent, 0),
                              workload = coalesce(c.n_addr, 0) + coalesce(c.n_ent, 0)
            FROM (SELECT g2.code, a.n AS n_addr, e.n AS n_ent FROM grid g2
                  LEFT JOIN (SELECT code, count(*) AS n FROM (
                      SELECT (SELECT min(g3.code) FROM grid g3 WHERE g3.version_id = :v AND ST_Covers(g3.geom, x.geom))
                             AS code FROM address x WHERE x.community_code = ANY(:c)) s GROUP BY code) a ON a.code = g2.code
                  LEFT JOIN (SELECT code, count(*) AS n FROM (
                      SELECT coalesce((SELECT min(g3.code) FROM grid g3
                                       WHERE g3.version_id = :v AND ST_Covers(g3.geom, x.geom)), x.grid_code) AS code
                      FROM entity x WHERE left(x.grid_code, 12) = ANY(:c)) s GROUP BY code) e ON e.code = g2.code
                  WHERE g2.version_id = :v AND g2.community_code = ANY(:c)) c
            WHERE g.version_id = :v AND g.code = c.code
            """
        ),
        {"v": version_id, "c": sorted(community_codes)},
    )


def set_figures(conn: Connection, version_id: int, figures: Mapping[str, Any]) -> None:
    """Store a version's figures (JSON)."""
    conn.execute(
        text("UPDATE grid_version SET figures = CAST(:f AS jsonb) WHERE id = :id"),
        {"f": json.dumps(figures, ensure_ascii=False), "id": version_id},
    )


def set_fingerprint(conn: Connection, version_id: int, fingerprint: str) -> None:
    """Store a version's data fingerprint."""
    conn.execute(text("UPDATE grid_version SET fingerprint = :f WHERE id = :id"), {"f": fingerprint, "id": version_id})


# ------------------------------------------------------------------------------------------- switching versions


def switch_active(conn: Connection, *, retire: int, activate: int, at: datetime) -> None:
    """Retire the active version and activate another (in this order: one active version at a time)."""
    conn.execute(
        text("UPDATE grid_version SET status = 'retired', retired_at = :at WHERE id = :id"), {"id": retire, "at": at}
    )
    conn.execute(
        text("UPDATE grid_version SET status = 'active', activated_at = :at, retired_at = NULL WHERE id = :id"),
        {"id": activate, "at": at},
    )


def insert_batch(
    conn: Connection, *, kind: str, version_id: int, area_code: str, actor: str, at: datetime, reason: str
) -> int:
    """A planning_batch row (its summary filled at the end); its id."""
    return int(
        conn.execute(
            text(
                "INSERT INTO planning_batch (kind, version_id, area_code, actor, at, reason) "
                "VALUES (:kind, :v, :area, :actor, :at, :reason) RETURNING id"
            ),
            {"kind": kind, "v": version_id, "area": area_code, "actor": actor, "at": at, "reason": reason},
        ).scalar_one()
    )


def finish_batch(conn: Connection, batch_id: int, summary: Mapping[str, Any]) -> None:
    """Store what a batch moved."""
    conn.execute(
        text("UPDATE planning_batch SET summary = CAST(:s AS jsonb) WHERE id = :id"),
        {"s": json.dumps(summary, ensure_ascii=False), "id": batch_id},
    )


def retired_code_map(
    conn: Connection, *, old_version: int, new_version: int, community_codes: Collection[str]
) -> dict[str, str]:
    """Each grid code of the area that the new version no longer has → the new grid holding most of its addresses.

    A grid without addresses goes to the new grid it overlaps most by area. Read before addresses move.
    """
    retired = [
        str(r[0])
        for r in conn.execute(
            text(
                "SELECT o.code FROM grid o WHERE o.version_id = :old AND o.community_code = ANY(:c) "
                "AND NOT EXISTS (SELECT 1 FROM grid n WHERE n.version_id = :new AND n.code = o.code) ORDER BY o.code"
            ),
            {"old": old_version, "new": new_version, "c": sorted(community_codes)},
        )
    ]
    if not retired:
        return {}
    by_addresses = conn.execute(
        text(
            """
            SELECT DISTINCT ON (old_code) old_code, new_code FROM (
              SELECT a.grid_code AS old_code,
                     (SELECT min(g.code) FROM grid g WHERE g.version_id = :new AND ST_Covers(g.geom, a.geom)) AS new_code,
                     count(*) AS n
              FROM address a WHERE a.grid_code = ANY(:retired) GROUP BY 1, 2) s
            WHERE new_code IS NOT NULL ORDER BY old_code, n DESC, new_code
            """
        ),
        {"new": new_version, "retired": retired},
    ).all()
    mapping = {str(o): str(n) for o, n in by_addresses}
    missing = [code for code in retired if code not in mapping]
    if missing:
        by_area = conn.execute(
            text(
                """
                SELECT DISTINCT ON (o.code) o.code, n.code FROM grid o
                JOIN grid n ON n.version_id = :new AND n.community_code = o.community_code
                 AND ST_Intersects(o.geom, n.geom)
                WHERE o.version_id = :old AND o.code = ANY(:missing)
                ORDER BY o.code, ST_Area(ST_Intersection(o.geom, n.geom)) DESC, n.code
                """
            ),
            {"old": old_version, "new": new_version, "missing": missing},
        ).all()
        mapping.update({str(o): str(n) for o, n in by_area})
    return mapping


@dataclass(frozen=True)
class WorkerRow:
    """A worker of the area: id, grid, whether active, and their open tasks (for choosing whom to move)."""

    id: int
    grid_code: str
    active: bool
    open_tasks: int


def area_workers(conn: Connection, version_id: int, community_codes: Collection[str]) -> list[WorkerRow]:
    """Every worker of the area's grids in one version (locked for update), by id."""
    rows = conn.execute(
        text(
            """
            SELECT w.id, w.grid_code, w.active,
                   (SELECT count(*) FROM task t WHERE t.worker_id = w.id AND t.status = ANY(:open)) AS open_tasks
            FROM worker w WHERE w.version_id = :v AND left(w.grid_code, 12) = ANY(:c) ORDER BY w.id FOR UPDATE OF w
            """
        ),
        {"v": version_id, "c": sorted(community_codes), "open": list(OPEN_STATUSES)},
    ).all()
    return [WorkerRow(int(r.id), str(r.grid_code), bool(r.active), int(r.open_tasks)) for r in rows]


def move_workers_to_version(
    conn: Connection, *, old_version: int, new_version: int, grid_of: Mapping[int, str]
) -> None:
    """Every worker of the old version joins the new one; those in `grid_of` into that grid (their FK needs it)."""
    if grid_of:
        conn.execute(
            text(
                "UPDATE worker w SET version_id = :new, grid_code = m.grid_code FROM "
                "(SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:codes AS text[])) AS grid_code) m "
                "WHERE w.id = m.id"
            ),
            {"new": new_version, "ids": list(grid_of), "codes": list(grid_of.values())},
        )
    conn.execute(
        text("UPDATE worker SET version_id = :new WHERE version_id = :old"), {"new": new_version, "old": old_version}
    )


def set_worker_grids(conn: Connection, grid_of: Mapping[int, str]) -> None:
    """Put these workers in these grids of their (current) version."""
    if not grid_of:
        return
    conn.execute(
        text(
            "UPDATE worker w SET grid_code = m.grid_code FROM "
            "(SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:codes AS text[])) AS grid_code) m "
            "WHERE w.id = m.id"
        ),
        {"ids": list(grid_of), "codes": list(grid_of.values())},
    )


def record_moves(
    conn: Connection, batch_id: int, kind: str, moves: Sequence[tuple[str, str | None, str | None]]
) -> None:
    """territory_move rows: (object id, from grid, to grid) of one kind of object."""
    if not moves:
        return
    conn.execute(
        text(
            "INSERT INTO territory_move (batch_id, object_kind, object_id, from_grid, to_grid) "
            "SELECT :b, :k, m.id, m.f, m.t FROM (SELECT unnest(CAST(:ids AS text[])) AS id, "
            "unnest(CAST(:froms AS text[])) AS f, unnest(CAST(:tos AS text[])) AS t) m"
        ),
        {
            "b": batch_id,
            "k": kind,
            "ids": [m[0] for m in moves],
            "froms": [m[1] for m in moves],
            "tos": [m[2] for m in moves],
        },
    )


def worker_moves_of_batch(conn: Connection, batch_id: int) -> dict[int, str]:
    """The grid each worker a batch moved was in before it (their first recorded move's origin)."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT ON (object_id) object_id, from_grid FROM territory_move "
            "WHERE batch_id = :b AND object_kind = 'worker' ORDER BY object_id, id"
        ),
        {"b": batch_id},
    ).all()
    return {int(r.object_id): str(r.from_grid) for r in rows if r.from_grid is not None}


def last_batch(conn: Connection, *, kind: str, version_id: int) -> int | None:
    """The latest batch of a kind for a version."""
    found = conn.execute(
        text("SELECT max(id) FROM planning_batch WHERE kind = :k AND version_id = :v"), {"k": kind, "v": version_id}
    ).scalar()
    return None if found is None else int(found)


# The three point tables move the same way: re-located in the new version by the locator's rule, each move recorded
# in territory_move in the same statement. Addresses bump updated_at so live geocoders rebuild their index.
_RELOCATE_ADDRESSES = text(
    """
    WITH s AS (
      SELECT a.id, a.grid_code AS old_code,
             (SELECT min(g.code) FROM grid g WHERE g.version_id = :v AND ST_Covers(g.geom, a.geom)) AS new_code
      FROM address a WHERE a.community_code = ANY(:c)),
    u AS (
      UPDATE address a SET grid_code = s.new_code, updated_at = clock_timestamp() FROM s
      WHERE a.id = s.id AND s.new_code IS NOT NULL AND a.grid_code IS DISTINCT FROM s.new_code
      RETURNING a.id, s.old_code, s.new_code)
    INSERT INTO territory_move (batch_id, object_kind, object_id, from_grid, to_grid)
    SELECT :b, 'address', u.id::text, u.old_code, u.new_code FROM u
    """
)

_RELOCATE_ENTITIES = text(
    """
    WITH s AS (
      SELECT e.uscc, e.grid_code AS old_code,
             coalesce((SELECT min(g.code) FROM grid g WHERE g.version_id = :v AND ST_Covers(g.geom, e.geom)),
                      a.grid_code) AS new_code
      FROM entity e LEFT JOIN address a ON a.id = e.address_id WHERE left(e.grid_code, 12) = ANY(:c)),
    u AS (
      UPDATE entity e SET grid_code = s.new_code FROM s
      WHERE e.uscc = s.uscc AND s.new_code IS NOT NULL AND e.grid_code IS DISTINCT FROM s.new_code
      RETURNING e.uscc, s.old_code, s.new_code)
    INSERT INTO territory_move (batch_id, object_kind, object_id, from_grid, to_grid)
    SELECT :b, 'entity', u.uscc, u.old_code, u.new_code FROM u
    """
)

_RELOCATE_CLUES = text(
    """
    WITH s AS (
      SELECT c.id, c.grid_code AS old_code,
             (SELECT min(g.code) FROM grid g WHERE g.version_id = :v AND ST_Covers(g.geom, c.geom)) AS new_code
      FROM clue c WHERE left(c.grid_code, 12) = ANY(:c)),
    u AS (
      UPDATE clue c SET grid_code = s.new_code FROM s
      WHERE c.id = s.id AND s.new_code IS NOT NULL AND c.grid_code IS DISTINCT FROM s.new_code
      RETURNING c.id, s.old_code, s.new_code)
    INSERT INTO territory_move (batch_id, object_kind, object_id, from_grid, to_grid)
    SELECT :b, 'clue', u.id::text, u.old_code, u.new_code FROM u
    """
)


def relocate_points(
    conn: Connection, *, batch_id: int, version_id: int, community_codes: Collection[str]
) -> dict[str, int]:
    """Re-locate the area's addresses, entities and clues in a version (moves recorded); counts by kind."""
    params = {"b": batch_id, "v": version_id, "c": sorted(community_codes)}
    return {
        "address": int(conn.execute(_RELOCATE_ADDRESSES, params).rowcount),
        "entity": int(conn.execute(_RELOCATE_ENTITIES, params).rowcount),
        "clue": int(conn.execute(_RELOCATE_CLUES, params).rowcount),
    }


@dataclass(frozen=True)
class MovedTask:
    """An open task that took its entity's (or clue's) new grid."""

    id: int
    old_grid: str
    new_grid: str
    status: str
    holder: str | None
    worker_id: int | None
    due_at: datetime | None


def relocate_open_tasks(
    conn: Connection, *, community_codes: Collection[str], retired: Mapping[str, str], at: datetime
) -> list[MovedTask]:
    """Open tasks of the area take their entity's or clue's grid (a task of neither: its grid's successor).

    A task waiting in its old grid's queue (holder grid:<old>) now waits in the new grid's queue.
    """
    rows = conn.execute(
        text(
            """
            WITH m AS (SELECT unnest(CAST(:olds AS text[])) AS old_code, unnest(CAST(:news AS text[])) AS new_code),
            s AS (
              SELECT t.id, t.grid_code AS old_code,
                     coalesce(CASE WHEN left(e.grid_code, 12) = ANY(:c) THEN e.grid_code END,
                              CASE WHEN left(k.grid_code, 12) = ANY(:c) THEN k.grid_code END,
                              m.new_code, t.grid_code) AS new_code
              FROM task t
              LEFT JOIN entity e ON e.uscc = t.entity_uscc
              LEFT JOIN clue k ON k.id = t.clue_id
              LEFT JOIN m ON m.old_code = t.grid_code
              WHERE t.community_code = ANY(:c) AND t.status = ANY(:open)
              FOR UPDATE OF t)
            UPDATE task t SET grid_code = s.new_code,
                   holder = CASE WHEN t.holder = 'grid:' || s.old_code THEN 'grid:' || s.new_code ELSE t.holder END,
                   version = t.version + 1, updated_at = :at
            FROM s WHERE t.id = s.id AND s.new_code <> s.old_code
            RETURNING t.id, s.old_code, s.new_code, t.status, t.holder, t.worker_id, t.due_at
            """
        ),
        {
            "c": sorted(community_codes),
            "open": list(OPEN_STATUSES),
            "olds": list(retired),
            "news": list(retired.values()),
            "at": at,
        },
    ).all()
    return sorted(
        (MovedTask(int(r.id), r.old_code, r.new_code, r.status, r.holder, r.worker_id, r.due_at) for r in rows),
        key=lambda t: t.id,
    )


def tasks_to_hand_over(conn: Connection, community_codes: Collection[str]) -> list[tuple[int, int | None]]:
    """(task, worker) of open worker-held tasks of the area whose worker is not of the task's grid, or queued ones."""
    rows = conn.execute(
        text(
            """
            SELECT t.id, t.worker_id FROM task t
            WHERE t.community_code = ANY(:c) AND t.status = ANY(:held)
              AND (t.worker_id IS NULL
                   OR NOT EXISTS (SELECT 1 FROM worker w JOIN grid_version v ON v.id = w.version_id
                                  AND v.status = 'active' WHERE w.id = t.worker_id AND w.active
                                  AND w.grid_code = t.grid_code))
            ORDER BY t.id
            """
        ),
        {"c": sorted(community_codes), "held": sorted(WORKER_HELD)},
    ).all()
    return [(int(r.id), None if r.worker_id is None else int(r.worker_id)) for r in rows]


def refresh_grid_counts(conn: Connection, version_id: int, community_codes: Collection[str]) -> None:
    """Address, entity, workload (legacy: addresses + entities) and worker counts of the area's grids."""
    conn.execute(
        text(
            """
            UPDATE grid g SET address_count = c.n_addr, entity_count = c.n_ent, workload = c.n_addr + c.n_ent,
                              worker_count = c.n_workers
            FROM (SELECT g2.code,
                         (SELECT count(*) FROM address a WHERE a.grid_code = g2.code) AS n_addr,
                         (SELECT count(*) FROM entity e WHERE e.grid_code = g2.code) AS n_ent,
                         (SELECT count(*) FROM worker w WHERE w.version_id = :v AND w.grid_code = g2.code AND w.active)
                           AS n_workers
                  FROM grid g2 WHERE g2.version_id = :v AND g2.community_code = ANY(:c)) c
            WHERE g.version_id = :v AND g.code = c.code
            """
        ),
        {"v": version_id, "c": sorted(community_codes)},
    )


def recount_workers(conn: Connection, version_id: int) -> int:
    """Set the worker count of every grid of a version to its active workers (one statement); how many changed."""
    changed = conn.execute(
        text(
            """
            UPDATE grid g SET worker_count = c.n
            FROM (SELECT g2.code, count(w.id) AS n FROM grid g2
                  LEFT JOIN worker w ON w.version_id = g2.version_id AND w.grid_code = g2.code AND w.active
                  WHERE g2.version_id = :v GROUP BY g2.code) c
            WHERE g.version_id = :v AND g.code = c.code AND g.worker_count IS DISTINCT FROM c.n
            """
        ),
        {"v": version_id},
    ).rowcount
    return int(changed)


def grid_centroids(conn: Connection, version_id: int, codes: Collection[str]) -> dict[str, tuple[float, float]]:
    """(lon, lat) of a point inside each grid (ST_PointOnSurface: inside even for a crescent)."""
    rows = conn.execute(
        text(
            "SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM grid "
            "WHERE version_id = :v AND code = ANY(:codes)) s"
        ),
        {"v": version_id, "codes": sorted(codes)},
    ).all()
    return {str(r.code): (float(r.lon), float(r.lat)) for r in rows}


def planned_workers(conn: Connection, version_id: int, community_codes: Collection[str]) -> dict[str, int]:
    """The worker count each grid of the area was drawn with (a draft's plan)."""
    rows = conn.execute(
        text("SELECT code, worker_count FROM grid WHERE version_id = :v AND community_code = ANY(:c)"),
        {"v": version_id, "c": sorted(community_codes)},
    ).all()
    return {str(code): int(n) for code, n in rows}


# ---------------------------------------------------------------------------------------------------- comparison


def features(conn: Connection, version_id: int, community_codes: Collection[str]) -> list[dict[str, Any]]:
    """GeoJSON features (WGS84) of the area's grids of one version, with code, name, community and counts."""
    rows = conn.execute(
        text(
            "SELECT code, name, community_code, address_count, entity_count, worker_count, area_m2, "
            "ST_AsGeoJSON(geom, 7) AS geometry FROM grid WHERE version_id = :v AND community_code = ANY(:c) "
            "ORDER BY code"
        ),
        {"v": version_id, "c": sorted(community_codes)},
    ).all()
    return [
        {
            "type": "Feature",
            "id": r.code,
            "geometry": json.loads(r.geometry),
            "properties": {
                "code": r.code,
                "name": r.name,
                "community_code": r.community_code,
                "address_count": int(r.address_count),
                "entity_count": int(r.entity_count),
                "worker_count": int(r.worker_count),
                "area_m2": round(float(r.area_m2), 1),
            },
        }
        for r in rows
    ]


def moved_pieces(
    conn: Connection,
    *,
    base_version_id: int,
    version_id: int,
    community_codes: Collection[str],
    min_area_m2: float = 1.0,
) -> list[dict[str, Any]]:
    """The pieces of the area whose grid changed between two versions (WGS84), with from/to codes and addresses."""
    rows = conn.execute(
        text(
            """
            SELECT o.code AS from_code, n.code AS to_code,
                   ST_AsGeoJSON(ST_CollectionExtract(ST_Intersection(o.geom, n.geom), 3), 7) AS geometry,
                   ST_Area(ST_Intersection(o.geom, n.geom)::geography) AS area_m2,
                   (SELECT count(*) FROM address a WHERE a.community_code = o.community_code
                     AND ST_Covers(o.geom, a.geom) AND ST_Covers(n.geom, a.geom)) AS addresses
            FROM grid o JOIN grid n ON n.version_id = :v AND n.community_code = o.community_code
             AND o.code <> n.code AND ST_Intersects(o.geom, n.geom)
            WHERE o.version_id = :base AND o.community_code = ANY(:c)
            ORDER BY o.code, n.code
            """
        ),
        {"v": version_id, "base": base_version_id, "c": sorted(community_codes)},
    ).all()
    return [
        {
            "type": "Feature",
            "geometry": json.loads(r.geometry),
            "properties": {
                "from_code": r.from_code,
                "to_code": r.to_code,
                "area_m2": round(float(r.area_m2), 1),
                "addresses": int(r.addresses),
                "label": f"从 {r.from_code} 调入 {r.to_code}",
            },
        }
        for r in rows
        if r.area_m2 is not None and float(r.area_m2) >= min_area_m2
    ]
