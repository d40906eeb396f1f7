"""planning.directory_service: 一单两库 in the database — item lists, inspector directories, the target directory.

Items and inspectors are imported from the departments' CSV files (all or nothing, idempotent: upsert by code,
`replace` deactivates a department's rows absent from the file, nothing is ever deleted because plans keep
pointing at them). The target directory (检查对象名录) is not stored: `targets` reads the registered entities live,
so a new, changed or closed entity is in (or out of) the next plan without anyone touching a list.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from planning.directory import (
    DirectoryFileError,
    InspectorRow,
    ItemRow,
    Problem,
    inspectors_csv,
    items_csv,
    parse_inspectors,
    parse_items,
)
from supervision.routing import COMMAND_CENTRE, default_router

Target = tuple[str, str, str, str | None, str | None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportSummary:
    """What an import changed: rows created, updated, unchanged, and rows of the department deactivated."""

    created: int
    updated: int
    unchanged: int
    deactivated: int

    @property
    def rows(self) -> int:
        """Rows in the file."""
        return self.created + self.updated + self.unchanged


@functools.lru_cache(maxsize=1)
def department_codes() -> frozenset[str]:
    """The departments that keep item lists and inspectors (every one except the command centre)."""
    return frozenset(d.code for d in default_router().departments() if d.code != COMMAND_CENTRE)


def _check_departments(
    rows: Sequence[ItemRow] | Sequence[InspectorRow],
    existing: dict[str, str],
    department: str | None,
    problems: list[Problem],
) -> None:
    """Unknown departments, rows of another department than the caller's, codes owned by another department."""
    known = department_codes()
    for row in rows:
        if row.department_code not in known:
            problems.append(Problem(row.line, "department_code", f"未知的部门编码“{row.department_code}”"))
        elif department is not None and row.department_code != department:
            problems.append(
                Problem(
                    row.line,
                    "department_code",
                    f"只能导入本部门（{department}）的数据，此行属于“{row.department_code}”",
                )
            )
        owner = existing.get(row.code)
        if owner is not None and owner != row.department_code:
            problems.append(Problem(row.line, "code", f"编号“{row.code}”已属于部门“{owner}”，不能改到其他部门"))


def _serialise_imports(conn: Connection) -> None:
    """Imports of the lists run one at a time (until the caller's transaction ends), so that counts are exact."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridgov.inspection_directory'))"))


def _deactivate(conn: Connection, table: str, departments: Sequence[str], keep: Sequence[str]) -> int:
    """Set active=false on the departments' rows whose code is not in `keep`; their count."""
    sql = {
        "inspection_item": "UPDATE inspection_item SET active = false, updated_at = now() "
        "WHERE department_code = ANY(:departments) AND active AND code <> ALL(:keep)",
        "inspector": "UPDATE inspector SET active = false, updated_at = now() "
        "WHERE department_code = ANY(:departments) AND active AND code <> ALL(:keep)",
    }[table]
    return conn.execute(text(sql), {"departments": list(departments), "keep": list(keep)}).rowcount


# ------------------------------------------------------------------------------------------------------ items


def _item_rows(conn: Connection, department: str | None, *, active_only: bool) -> dict[str, tuple[ItemRow, bool]]:
    result = conn.execute(
        text(
            "SELECT code, department_code, name, basis, key, entity_kinds, industries, licence_only, "
            "service_minutes, source, active FROM inspection_item "
            "WHERE (CAST(:department AS text) IS NULL OR department_code = :department) "
            "AND (active OR NOT :active_only) ORDER BY code"
        ),
        {"department": department, "active_only": active_only},
    )
    return {
        r.code: (
            ItemRow(
                code=r.code,
                department_code=r.department_code,
                name=r.name,
                basis=r.basis,
                key=r.key,
                entity_kinds=tuple(r.entity_kinds),
                industries=tuple(r.industries),
                licence_only=r.licence_only,
                service_minutes=r.service_minutes,
                source=r.source,
            ),
            r.active,
        )
        for r in result
    }


def import_items(conn: Connection, data: bytes, *, actor: str, department: str | None, replace: bool) -> ImportSummary:
    """Upsert an item-list CSV by code (all or nothing); `department` confines the caller to that department's rows."""
    rows = parse_items(data)
    _serialise_imports(conn)
    current = _item_rows(conn, None, active_only=False)
    problems: list[Problem] = []
    _check_departments(rows, {code: row.department_code for code, (row, _) in current.items()}, department, problems)
    if problems:
        raise DirectoryFileError(sorted(problems, key=lambda p: p.line), what="事项清单")
    created = [r for r in rows if r.code not in current]
    changed = [r for r in rows if r.code in current and current[r.code] != (r, True)]
    columns = "code, department_code, name, basis, key, entity_kinds, industries, licence_only, service_minutes, source"
    params = [
        {
            "code": r.code,
            "department_code": r.department_code,
            "name": r.name,
            "basis": r.basis,
            "key": r.key,
            "entity_kinds": list(r.entity_kinds),
            "industries": list(r.industries),
            "licence_only": r.licence_only,
            "service_minutes": r.service_minutes,
            "source": r.source,
        }
        for r in [*created, *changed]
    ]
    if params:
        conn.execute(
            text(
                f"INSERT INTO inspection_item ({columns}) VALUES (:code, :department_code, :name, :basis, :key, "  # noqa: S608 - fixed column list
                ":entity_kinds, :industries, :licence_only, :service_minutes, :source) "
                "ON CONFLICT (code) DO UPDATE SET department_code = excluded.department_code, name = excluded.name, "
                "basis = excluded.basis, key = excluded.key, entity_kinds = excluded.entity_kinds, "
                "industries = excluded.industries, licence_only = excluded.licence_only, "
                "service_minutes = excluded.service_minutes, source = excluded.source, active = true, "
                "updated_at = now()"
            ),
            params,
        )
    deactivated = 0
    if replace:
        departments = [department] if department else sorted({r.department_code for r in rows})
        deactivated = _deactivate(conn, "inspection_item", departments, [r.code for r in rows])
    # The tables keep updated_at only; who imported what goes to the log.
    summary = ImportSummary(len(created), len(changed), len(rows) - len(created) - len(changed), deactivated)
    log.info("%s imported items (department %s, replace %s): %s", actor, department or "all", replace, summary)
    return summary


def export_items(conn: Connection, department: str | None = None) -> bytes:
    """The active items (of one department, or all) as the CSV `import_items` takes back unchanged."""
    return items_csv(row for row, _ in _item_rows(conn, department, active_only=True).values())


def list_items(
    conn: Connection, department: str | None = None, *, include_inactive: bool = False
) -> list[dict[str, Any]]:
    """The items (of one department, or all), with their state, sorted by code."""
    result = conn.execute(
        text(
            "SELECT code, department_code, name, basis, key, entity_kinds, industries, licence_only, "
            "service_minutes, source, active, updated_at FROM inspection_item "
            "WHERE (CAST(:department AS text) IS NULL OR department_code = :department) "
            "AND (active OR :include_inactive) ORDER BY code"
        ),
        {"department": department, "include_inactive": include_inactive},
    )
    return [dict(r._mapping) for r in result]


def item_departments(conn: Connection) -> dict[str, str]:
    """Every item code (active or not) with its department."""
    return {
        code: department for code, department in conn.execute(text("SELECT code, department_code FROM inspection_item"))
    }


# ------------------------------------------------------------------------------------------------- inspectors


def _inspector_rows(conn: Connection, department: str | None) -> dict[str, InspectorRow]:
    result = conn.execute(
        text(
            "SELECT code, department_code, name, qualifications, home_grid_code, office_name, "
            "ST_X(office_geom) AS lon, ST_Y(office_geom) AS lat, conflicts, load_cap, active FROM inspector "
            "WHERE (CAST(:department AS text) IS NULL OR department_code = :department) ORDER BY code"
        ),
        {"department": department},
    )
    return {
        r.code: InspectorRow(
            code=r.code,
            department_code=r.department_code,
            name=r.name,
            qualifications=tuple(r.qualifications),
            home_grid_code=r.home_grid_code,
            office_name=r.office_name,
            office_lon=float(r.lon),
            office_lat=float(r.lat),
            conflicts=tuple(r.conflicts),
            load_cap=r.load_cap,
            active=r.active,
        )
        for r in result
    }


def _check_inspector_references(conn: Connection, rows: Sequence[InspectorRow], problems: list[Problem]) -> None:
    """Qualifications that are no item of the inspector's department, grids not in the active version, offices
    outside the city."""
    item_department = item_departments(conn)
    grids = sorted({r.home_grid_code for r in rows if r.home_grid_code})
    active_grids = set(
        conn.execute(
            text(
                "SELECT g.code FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "WHERE v.status = 'active' AND g.code = ANY(:codes)"
            ),
            {"codes": grids},
        ).scalars()
    )
    outside = set(
        conn.execute(
            text(
                "SELECT t.i FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY "
                "AS t(lon, lat, i) WHERE NOT EXISTS (SELECT 1 FROM town "
                "WHERE ST_Covers(town.geom, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)))"
            ),
            {"lons": [r.office_lon for r in rows], "lats": [r.office_lat for r in rows]},
        ).scalars()
    )
    for index, row in enumerate(rows, start=1):
        for code in row.qualifications:
            owner = item_department.get(code)
            if owner is None:
                problems.append(Problem(row.line, "qualifications", f"事项“{code}”不存在（请先导入事项清单）"))
            elif owner != row.department_code:
                problems.append(Problem(row.line, "qualifications", f"事项“{code}”属于部门“{owner}”，不是本部门事项"))
        if row.home_grid_code and row.home_grid_code not in active_grids:
            problems.append(Problem(row.line, "home_grid_code", f"网格“{row.home_grid_code}”不在现行网格版本中"))
        if index in outside:
            problems.append(
                Problem(row.line, "office_lon", f"办公地点（{row.office_lon}，{row.office_lat}）不在东莞市范围内")
            )


def import_inspectors(
    conn: Connection, data: bytes, *, actor: str, department: str | None, replace: bool
) -> ImportSummary:
    """Upsert an inspector-directory CSV by code (all or nothing), like `import_items`."""
    rows = parse_inspectors(data)
    _serialise_imports(conn)
    current = _inspector_rows(conn, None)
    problems: list[Problem] = []
    _check_departments(rows, {code: row.department_code for code, row in current.items()}, department, problems)
    _check_inspector_references(conn, rows, problems)
    if problems:
        raise DirectoryFileError(sorted(problems, key=lambda p: (p.line, p.column)), what="执法人员名录")
    created = [r for r in rows if r.code not in current]
    changed = [r for r in rows if r.code in current and current[r.code] != r]
    params = [
        {
            "code": r.code,
            "department_code": r.department_code,
            "name": r.name,
            "qualifications": list(r.qualifications),
            "home_grid_code": r.home_grid_code,
            "office_name": r.office_name,
            "lon": r.office_lon,
            "lat": r.office_lat,
            "conflicts": list(r.conflicts),
            "load_cap": r.load_cap,
            "active": r.active,
        }
        for r in [*created, *changed]
    ]
    if params:
        conn.execute(
            text(
                "INSERT INTO inspector (code, department_code, name, qualifications, home_grid_code, office_name, "
                "office_geom, conflicts, load_cap, active) VALUES (:code, :department_code, :name, :qualifications, "
                ":home_grid_code, :office_name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :conflicts, :load_cap, "
                ":active) ON CONFLICT (code) DO UPDATE SET department_code = excluded.department_code, "
                "name = excluded.name, qualifications = excluded.qualifications, "
                "home_grid_code = excluded.home_grid_code, office_name = excluded.office_name, "
                "office_geom = excluded.office_geom, conflicts = excluded.conflicts, load_cap = excluded.load_cap, "
                "active = excluded.active, updated_at = now()"
            ),
            params,
        )
    deactivated = 0
    if replace:
        departments = [department] if department else sorted({r.department_code for r in rows})
        deactivated = _deactivate(conn, "inspector", departments, [r.code for r in rows])
    summary = ImportSummary(len(created), len(changed), len(rows) - len(created) - len(changed), deactivated)
    log.info("%s imported inspectors (department %s, replace %s): %s", actor, department or "all", replace, summary)
    return summary


def export_inspectors(conn: Connection, department: str | None = None) -> bytes:
    """Every inspector (of one department, or all; inactive ones marked 否) as the CSV `import_inspectors` takes."""
    return inspectors_csv(_inspector_rows(conn, department).values())


def list_inspectors(conn: Connection, department: str | None = None) -> list[dict[str, Any]]:
    """The inspectors (of one department, or all) with their office point, sorted by code."""
    result = conn.execute(
        text(
            "SELECT id, code, department_code, name, qualifications, home_grid_code, office_name, "
            "ST_X(office_geom) AS office_lon, ST_Y(office_geom) AS office_lat, conflicts, load_cap, active, "
            "updated_at FROM inspector WHERE (CAST(:department AS text) IS NULL OR department_code = :department) "
            "ORDER BY code"
        ),
        {"department": department},
    )
    return [dict(r._mapping) for r in result]


# ------------------------------------------------------------------------------------------ target directory

# The entities an item applies to: open, of one of its kinds, of one of its industries (a word contained in the
# entity's industry; none = every industry), holding a licence-bound scope when the item says so. Whether an item
# applies depends on (industry, kind, needs_licence) alone, and the city has a few hundred such classes: they are
# matched to the items first (industry words as LIKE patterns, % _ \ escaped), then the entities of the area are
# hash-joined to the matched classes — one pass over the entities however many items are asked for.
_TARGETS = """
WITH it AS MATERIALIZED (
    SELECT code, entity_kinds, licence_only, cardinality(industries) = 0 AS any_industry,
           ARRAY(SELECT '%' || replace(replace(replace(w, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'
                 FROM unnest(industries) AS w) AS patterns
    FROM inspection_item WHERE active AND code = ANY(:items)
), classes AS MATERIALIZED (
    SELECT DISTINCT e.industry, e.kind, e.needs_licence FROM entity e WHERE e.status = 'open' AND ({area})
), applies AS MATERIALIZED (
    SELECT c.industry, c.kind, c.needs_licence, it.code
    FROM classes c JOIN it
      ON c.kind = ANY(it.entity_kinds)
     AND (it.any_industry OR c.industry LIKE ANY(it.patterns))
     AND (NOT it.licence_only OR c.needs_licence)
)
SELECT {columns}
FROM entity e JOIN applies a
  ON a.industry = e.industry AND a.kind = e.kind AND a.needs_licence = e.needs_licence
WHERE e.status = 'open' AND ({area})
{tail}
"""
_AREA = {
    "towns": "e.town_code = ANY(:towns)",
    "grids": "e.grid_code = ANY(:grids)",
    "polygon": "ST_Covers(ST_GeomFromText(:polygon, 4326), e.geom)",
}
# Byte order (the order of Python's sorted()), and cheaper than the database's locale collation.
_ORDER = 'ORDER BY a.code COLLATE "C", e.uscc COLLATE "C"'


def _query(
    columns: str,
    tail: str,
    item_codes: Sequence[str],
    towns: Sequence[str] | None,
    grids: Sequence[str] | None,
    polygon_wkt: str | None,
) -> tuple[Any, dict[str, Any]]:
    """The target query with the area's condition (any of towns / grids / polygon; none = the whole city)."""
    given = {"towns": towns, "grids": grids, "polygon": polygon_wkt}
    parts = [_AREA[name] for name, value in given.items() if value is not None]
    area = " OR ".join(f"({p})" for p in parts) if parts else "TRUE"
    params: dict[str, Any] = {
        "items": list(item_codes),
        "towns": list(towns or []),
        "grids": list(grids or []),
        "polygon": polygon_wkt,
    }
    return text(_TARGETS.format(area=area, columns=columns, tail=tail)), params


def targets(
    conn: Connection,
    *,
    item_codes: Sequence[str],
    towns: Sequence[str] | None = None,
    grids: Sequence[str] | None = None,
    polygon_wkt: str | None = None,
) -> list[Target]:
    """The target directory: (item_code, uscc, credit_class, town_code, grid_code) of every open entity an active
    item applies to in the area, sorted by item code then credit code."""
    sql, params = _query(
        "a.code, e.uscc, e.credit_class, e.town_code, e.grid_code", _ORDER, item_codes, towns, grids, polygon_wkt
    )
    result = conn.execute(sql, params)
    return [(r[0], r[1], r[2], r[3], r[4]) for r in result]


def target_counts(
    conn: Connection,
    item_codes: Sequence[str],
    *,
    towns: Sequence[str] | None = None,
    grids: Sequence[str] | None = None,
    polygon_wkt: str | None = None,
) -> dict[tuple[str, str], int]:
    """How many targets each (item, credit class) has in the area (only the pairs that have any)."""
    sql, params = _query("a.code, e.credit_class, count(*)", "GROUP BY 1, 2", item_codes, towns, grids, polygon_wkt)
    result = conn.execute(sql, params)
    return {(r[0], r[1]): int(r[2]) for r in result}


def target_entity_count(
    conn: Connection,
    item_codes: Sequence[str],
    *,
    towns: Sequence[str] | None = None,
    grids: Sequence[str] | None = None,
    polygon_wkt: str | None = None,
) -> int:
    """How many distinct entities the items apply to in the area (one visit each, however many items)."""
    sql, params = _query("count(DISTINCT e.uscc)", "", item_codes, towns, grids, polygon_wkt)
    return int(conn.execute(sql, params).scalar_one())


def target_export_rows(
    conn: Connection, item_codes: Sequence[str], *, towns: Sequence[str] | None = None
) -> list[tuple[str, str, str, str | None, str | None]]:
    """(item_code, uscc, name, town_code, grid_code) of the targets, for the directory export (no credit class)."""
    sql, params = _query("a.code, e.uscc, e.name, e.town_code, e.grid_code", _ORDER, item_codes, towns, None, None)
    result = conn.execute(sql, params)
    return [(r[0], r[1], r[2], r[3], r[4]) for r in result]
