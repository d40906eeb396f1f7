"""maps.heat.events: the events behind the heatmaps (clues, unlicensed findings, problem inspections), as arrays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from grids.codes import GRID_DIGITS, TOWN_DIGITS
from maps.errors import AggregateError
from maps.heat.aggregate import EVENT_KINDS, Denominators, EventFrame, h3_denominators, parse_unit

# Grid and town codes are padded to their full widths (grids.codes) so that a column of them travels as one
# fixed-width block.
# Findings of these duties are "unlicensed-business findings" (issue 5); any duty's problem is a "problem".
UNLICENSED_DUTIES = ("unlicensed_patrol", "licence_check")
INSPECTION_SOURCE = "inspection"  # the source of task-derived events: a worker on site, not a report
INSPECTION_SOURCE_LABEL_ZH = "检查"
_CLUE_KINDS = ("clue", "unlicensed")
_TASK_KINDS = ("unlicensed", "problem")

# One row per combination of the low-cardinality columns, each carrying its events packed as binary arrays:
# 500,000 rows of strings cost ~2 s through a driver, the same events packed into a few hundred rows a fraction
# of that. Every aggregate of one group sees that group's rows in the same order, so the packed arrays stay
# aligned. Each branch groups its own table, so the planner knows the few groups and hashes rather than sorts.
# A finding on a task born of an unlicensed clue is the same business as that clue: counted once, as the clue.
# The time window is half-open, [since, until). A NULL filter means "no filter".
_EVENTS = text(
    """
SELECT c.kind, c.industry, c.status, c.source, count(*) AS n,
       string_agg(float8send(ST_X(c.geom)), ''::bytea) AS lon,
       string_agg(float8send(ST_Y(c.geom)), ''::bytea) AS lat,
       string_agg(int8send(CAST(floor(extract(epoch FROM c.reported_at)) AS bigint)), ''::bytea) AS at_s,
       string_agg(rpad(coalesce(c.grid_code, ''), CAST(:grid_width AS integer)), '') AS grid_codes,
       string_agg(rpad(coalesce(c.town_code, ''), CAST(:town_width AS integer)), '') AS town_codes
FROM clue c
WHERE c.kind = ANY(CAST(:clue_kinds AS text[]))
  AND c.reported_at >= :since AND c.reported_at < :until
  AND (CAST(:towns AS text[]) IS NULL OR c.town_code = ANY(CAST(:towns AS text[])))
  AND (CAST(:industries AS text[]) IS NULL OR c.industry = ANY(CAST(:industries AS text[])))
  AND (CAST(:statuses AS text[]) IS NULL OR c.status = ANY(CAST(:statuses AS text[])))
  AND (CAST(:sources AS text[]) IS NULL OR c.source = ANY(CAST(:sources AS text[])))
GROUP BY c.kind, c.industry, c.status, c.source
UNION ALL
SELECT f.kind, f.industry, f.status, f.source, count(*) AS n,
       string_agg(float8send(ST_X(f.geom)), ''::bytea),
       string_agg(float8send(ST_Y(f.geom)), ''::bytea),
       string_agg(int8send(CAST(floor(extract(epoch FROM f.at)) AS bigint)), ''::bytea),
       string_agg(rpad(coalesce(f.grid_code, ''), CAST(:grid_width AS integer)), ''),
       string_agg(rpad(coalesce(f.town_code, ''), CAST(:town_width AS integer)), '')
FROM (
    SELECT w.kind, coalesce(en.industry, c.industry, '') AS industry, t.status, CAST(:inspection AS text) AS source,
           coalesce(en.geom, e.geom, c.geom) AS geom, e.at, t.grid_code, t.town_code
    FROM task_event e
    JOIN task t ON t.id = e.task_id
    LEFT JOIN entity en ON en.uscc = t.entity_uscc
    LEFT JOIN clue c ON c.id = t.clue_id
    JOIN unnest(CAST(:task_kinds AS text[])) AS w(kind) ON w.kind = 'problem'
        OR (w.kind = 'unlicensed' AND t.duty = ANY(CAST(:unlicensed_duties AS text[]))
            AND c.kind IS DISTINCT FROM 'unlicensed')
    WHERE e.to_status = 'inspected_problem'
      AND e.at >= :since AND e.at < :until
      AND (CAST(:towns AS text[]) IS NULL OR t.town_code = ANY(CAST(:towns AS text[])))
      AND (CAST(:industries AS text[]) IS NULL OR coalesce(en.industry, c.industry) = ANY(CAST(:industries AS text[])))
      AND (CAST(:statuses AS text[]) IS NULL OR t.status = ANY(CAST(:statuses AS text[])))
      AND (CAST(:sources AS text[]) IS NULL OR CAST(:inspection AS text) = ANY(CAST(:sources AS text[])))
) f
WHERE f.geom IS NOT NULL
GROUP BY f.kind, f.industry, f.status, f.source
"""
)


def _optional(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else [str(v) for v in values]


def _code_column(groups: Sequence[Any], column: str, width: int) -> pd.Categorical:
    """A column of fixed-width codes packed per group, as one categorical column (-1 where a code is missing)."""
    names: dict[str, int] = {}
    parts: list[np.ndarray] = []
    for g in groups:
        packed: str = getattr(g, column)
        raw = packed.encode("utf-8")
        digits = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width) - 48 if len(raw) == width * g.n else None
        if digits is not None and bool((digits <= 9).all()):
            # Administrative codes are all digits: as integers they factorize several times faster than bytes.
            values = np.zeros(g.n, dtype=np.int64)
            for column_digits in digits.T:
                values = values * 10 + column_digits
            unique_i, inverse = np.unique(values, return_inverse=True)
            local = [str(u).zfill(width) for u in unique_i]
        elif digits is not None:
            unique, inverse = np.unique(np.frombuffer(raw, dtype=f"S{width}"), return_inverse=True)
            local = [u.decode("utf-8").strip() for u in unique]
        else:  # a code with non-ASCII characters breaks the byte width; slice characters instead
            sliced = [packed[i : i + width].strip() for i in range(0, len(packed), width)]
            unique_s, inverse = np.unique(np.array(sliced, dtype=str), return_inverse=True)
            local = [str(u) for u in unique_s]
        remap = np.array([names.setdefault(code, len(names)) if code else -1 for code in local], dtype=np.int32)
        parts.append(remap[inverse])
    codes = np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(names), dtype=object))


def load_events(
    conn: Connection,
    *,
    town_codes: Sequence[str] | None,
    since: datetime,
    until: datetime,
    industries: Sequence[str] | None,
    statuses: Sequence[str] | None,
    sources: Sequence[str] | None,
    kinds: Sequence[str],
) -> EventFrame:
    """Point events of the given kinds reported in [since, until), filtered (None = all), as an EventFrame.

    Kinds: ``clue`` (clue rows of kind clue), ``unlicensed`` (clue rows of kind unlicensed, plus inspections that
    found a problem on an unlicensed patrol or a licence check), ``problem`` (inspections that found a problem, any
    duty). Inspection events sit at the entity's position, else the worker's, else the clue's; their status is the
    task's current status and their source is ``inspection``. Asking for ``unlicensed`` and ``problem`` together
    yields a finding once under each kind.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise AggregateError("since and until must be timezone-aware")
    if since >= until:
        raise AggregateError(
            f"the time window is empty or reversed: since {since.isoformat()} >= until {until.isoformat()}"
        )
    unknown = sorted(set(kinds) - set(EVENT_KINDS))
    if unknown or not kinds:
        raise AggregateError(f"kinds must be a non-empty subset of {', '.join(EVENT_KINDS)}; got {list(kinds)}")
    params = {
        "clue_kinds": [k for k in _CLUE_KINDS if k in kinds],
        "task_kinds": [k for k in _TASK_KINDS if k in kinds],
        "since": since,
        "until": until,
        "towns": _optional(town_codes),
        "industries": _optional(industries),
        "statuses": _optional(statuses),
        "sources": _optional(sources),
        "inspection": INSPECTION_SOURCE,
        "unlicensed_duties": list(UNLICENSED_DUTIES),
        "grid_width": GRID_DIGITS,
        "town_width": TOWN_DIGITS,
    }
    groups = conn.execute(_EVENTS, params).all()
    if not groups:
        return EventFrame.empty()
    sizes = np.array([g.n for g in groups], dtype=np.int64)

    def packed(column: str, dtype: str) -> np.ndarray:
        return np.frombuffer(b"".join(bytes(getattr(g, column)) for g in groups), dtype=dtype).astype(dtype[1:])

    def repeated(column: str) -> pd.Categorical:
        labels = np.array([getattr(g, column) or "" for g in groups], dtype=object)
        categories, group_codes = np.unique(labels, return_inverse=True)
        codes = np.repeat(group_codes.astype(np.int32), sizes)
        present = [c for c in categories if c]
        if len(present) < len(categories):  # "" stands for a missing value: code -1
            remap = np.array([-1 if c == "" else present.index(c) for c in categories], dtype=np.int32)
            codes = remap[codes]
        return pd.Categorical.from_codes(codes, categories=pd.Index(present, dtype=object))

    return EventFrame(
        lon=packed("lon", ">f8"),
        lat=packed("lat", ">f8"),
        reported_at_s=packed("at_s", ">i8"),
        kind=repeated("kind"),
        industry=repeated("industry"),
        status=repeated("status"),
        source=repeated("source"),
        town_code=_code_column(groups, "town_codes", TOWN_DIGITS),
        grid_code=_code_column(groups, "grid_codes", GRID_DIGITS),
    )


# Entities: grid.entity_count of the active grid version, summed up the hierarchy; residents: each level's own
# population figure. Spelled out whole so that no SQL is ever assembled.
_AREA_DENOMINATORS = {
    "grid": text(
        """
SELECT g.code, g.entity_count AS entities, g.population AS residents
FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
"""
    ),
    "community": text(
        """
SELECT c.code, coalesce(sum(g.entity_count), 0) AS entities, c.population AS residents
FROM community c
LEFT JOIN (grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active') ON g.community_code = c.code
GROUP BY c.code, c.population
"""
    ),
    "town": text(
        """
SELECT t.code, coalesce(sum(g.entity_count), 0) AS entities, t.population AS residents
FROM town t
LEFT JOIN (grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active') ON g.town_code = t.code
GROUP BY t.code, t.population
"""
    ),
}
_OPEN_ENTITY_POINTS = text(
    """
SELECT count(*) AS n, string_agg(float8send(ST_X(geom)), ''::bytea) AS lon,
       string_agg(float8send(ST_Y(geom)), ''::bytea) AS lat
FROM entity WHERE status = 'open' AND geom IS NOT NULL AND (CAST(:town AS text) IS NULL OR town_code = :town)
"""
)
_ADDRESS_POINTS_BY_GRID = text(
    """
SELECT grid_code, count(*) AS n, string_agg(float8send(ST_X(geom)), ''::bytea) AS lon,
       string_agg(float8send(ST_Y(geom)), ''::bytea) AS lat
FROM address WHERE status = 'active' AND grid_code IS NOT NULL AND (CAST(:town AS text) IS NULL OR town_code = :town)
GROUP BY grid_code
"""
)
_GRID_POPULATION = text(
    "SELECT g.code, g.population FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
)


def _floats(packed: bytes | None) -> np.ndarray:
    return np.frombuffer(bytes(packed or b""), dtype=">f8").astype(np.float64)


def load_denominators(conn: Connection, unit: str, town: str | None = None) -> Denominators:
    """Registered entities and residents of every unit of the city (grid, community, town or h3:7..h3:10).

    Areas take grid.entity_count (summed over a community's or town's grids) and each level's population. H3
    cells count open entities by position and share each grid's population among its cells by address points
    (maps.heat.aggregate.apportioned_h3_population); that reads every entity and address, so cache the result. With
    a town, H3 cells count only that town's entities and residents: a cell on the town's edge is measured by the
    same people whose clues the town's view counts.
    """
    kind, resolution = parse_unit(unit)
    if kind != "h3":
        rows = conn.execute(_AREA_DENOMINATORS[kind]).all()
        index = pd.Index([r.code for r in rows], dtype=object, name="code")
        return Denominators(
            entities=pd.Series([float(r.entities) for r in rows], index=index, dtype=np.float64),
            residents=pd.Series([float(r.residents) for r in rows], index=index, dtype=np.float64),
        )
    assert resolution is not None
    entities = conn.execute(_OPEN_ENTITY_POINTS, {"town": town}).one()
    by_grid = conn.execute(_ADDRESS_POINTS_BY_GRID, {"town": town}).all()
    population = {r.code: float(r.population) for r in conn.execute(_GRID_POPULATION)}
    address_lon = np.concatenate([_floats(r.lon) for r in by_grid]) if by_grid else np.empty(0)
    address_lat = np.concatenate([_floats(r.lat) for r in by_grid]) if by_grid else np.empty(0)
    address_grid = np.repeat(np.array([r.grid_code for r in by_grid], dtype=object), [r.n for r in by_grid])
    return h3_denominators(
        _floats(entities.lon), _floats(entities.lat), address_lon, address_lat, address_grid, population, resolution
    )


def study_grids(conn: Connection, town: str | None) -> tuple[list[str], list[Any], np.ndarray]:
    """The active grids of a town (or the city): codes, lightly simplified shapes, registered entities."""
    rows = conn.execute(
        text(
            "SELECT g.code, ST_AsBinary(ST_SimplifyPreserveTopology(g.geom, 0.00002)) AS wkb, g.entity_count "
            "FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "WHERE CAST(:town AS text) IS NULL OR g.town_code = :town ORDER BY g.code"
        ),
        {"town": town},
    ).all()
    geoms = list(shapely.from_wkb([bytes(r.wkb) for r in rows])) if rows else []
    return [r.code for r in rows], geoms, np.array([r.entity_count for r in rows], dtype=float)
