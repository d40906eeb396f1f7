"""planning.inspection_repository: the SQL of double-random plans — plans, strata, candidates, teams and visits."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from psycopg import generators
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus
from sqlalchemy import Connection, text

from grids.repository import active_version_id

# The columns every plan answer reads (never the server seed: it is read only where it may be revealed).
_PLAN_COLUMNS = """
    p.id, p.title, p.department_codes, p.item_codes, p.area, p.town_codes, p.status, p.commitment,
    p.candidates_sha256, p.candidate_count, p.public_value_source, p.public_value_at, p.public_value, p.seed,
    p.load_cap, p.publish_days, p.visit_date, p.created_by, p.created_at, p.drawn_by, p.drawn_at,
    p.cancelled_at, p.cancel_reason
"""


def items(conn: Connection, departments: Sequence[str]) -> list[dict[str, Any]]:
    """Every item (active or not) of these departments, by code."""
    rows = conn.execute(
        text(
            "SELECT code, department_code, name, key, service_minutes, active FROM inspection_item"
            " WHERE department_code = ANY(:departments) ORDER BY code"
        ),
        {"departments": list(departments)},
    )
    return [dict(r._mapping) for r in rows]


def items_by_code(conn: Connection, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The items named, keyed by code (unknown codes are simply absent)."""
    rows = conn.execute(
        text(
            "SELECT code, department_code, name, key, service_minutes, active FROM inspection_item"
            " WHERE code = ANY(:codes)"
        ),
        {"codes": list(codes)},
    )
    return {r.code: dict(r._mapping) for r in rows}


def known_towns(conn: Connection, codes: Sequence[str]) -> set[str]:
    """Which of these town codes exist."""
    rows = conn.execute(text("SELECT code FROM town WHERE code = ANY(:codes)"), {"codes": list(codes)})
    return {r.code for r in rows}


def active_grids(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """Grid code → town code for those of these codes in the active grid version."""
    rows = conn.execute(
        text("SELECT code, town_code FROM grid WHERE version_id = :version AND code = ANY(:codes)"),
        {"version": active_version_id(conn), "codes": list(codes)},
    )
    return {r.code: r.town_code for r in rows}


def polygon_towns(conn: Connection, polygon_wkt: str) -> tuple[list[str], float]:
    """The towns a polygon touches, and the part of its area (m²) that lies outside every town (outside the city)."""
    row = conn.execute(
        text(
            """
            WITH p AS (SELECT ST_GeomFromText(:wkt, 4326) AS g),
                 t AS (SELECT town.code, town.geom FROM town, p WHERE ST_Intersects(town.geom, p.g))
            SELECT coalesce((SELECT array_agg(code ORDER BY code) FROM t), '{}') AS towns,
                   ST_Area(ST_Difference(p.g, coalesce((SELECT ST_Union(geom) FROM t),
                                                       ST_GeomFromText('POLYGON EMPTY', 4326)))::geography)
                       AS outside_m2
            FROM p
            """
        ),
        {"wkt": polygon_wkt},
    ).one()
    return list(row.towns), float(row.outside_m2 or 0.0)


def insert_plan(conn: Connection, values: Mapping[str, Any]) -> int:
    """A new plan row (status committed); its id."""
    params = dict(values)
    return int(
        conn.execute(
            text(
                """
                INSERT INTO inspection_plan (title, department_codes, item_codes, area, area_geom, town_codes, status,
                    server_seed, commitment, candidates_sha256, candidate_count, public_value_source,
                    public_value_at, load_cap, publish_days, visit_date, created_by, created_at)
                VALUES (:title, :department_codes, :item_codes, CAST(:area AS jsonb),
                    ST_Multi(ST_GeomFromText(:area_wkt, 4326)), :town_codes, 'committed', :server_seed, :commitment,
                    :candidates_sha256, :candidate_count, :public_value_source, :public_value_at, :load_cap,
                    :publish_days, :visit_date, :created_by, :created_at)
                RETURNING id
                """
            ),
            params,
        ).scalar_one()
    )


def insert_strata(conn: Connection, plan_id: int, strata: Iterable[Mapping[str, Any]]) -> None:
    """The plan's strata (public id, item, class, ratio, size, n)."""
    rows = [{"plan_id": plan_id, **s} for s in strata]
    conn.execute(
        text(
            "INSERT INTO inspection_stratum (plan_id, stratum_id, item_code, credit_class, ratio, size, n)"
            " VALUES (:plan_id, :stratum_id, :item_code, :credit_class, :ratio, :size, :n)"
        ),
        rows,
    )


def copy_candidates(conn: Connection, plan_id: int, rows: Iterable[tuple[str, str]]) -> int:
    """COPY the plan's candidates (stratum id, credit code) in; the row count."""
    buffer = io.StringIO()
    count = 0
    for stratum_id, uscc in rows:
        buffer.write(f"{plan_id}\t{stratum_id}\t{uscc}\n")
        count += 1
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY inspection_candidate (plan_id, stratum_id, uscc) FROM STDIN") as copy:  # type: ignore[union-attr]
        copy.write(buffer.getvalue())
    return count


def plan(conn: Connection, plan_id: int, *, for_update: bool = False) -> dict[str, Any] | None:
    """One plan's row (without the server seed), locked for the rest of the transaction when `for_update`."""
    lock = " FOR UPDATE" if for_update else ""
    statement = f"SELECT {_PLAN_COLUMNS} FROM inspection_plan p WHERE p.id = :id{lock}"  # noqa: S608 - fixed SQL fragments; values are bound
    row = conn.execute(text(statement), {"id": plan_id})
    found = row.one_or_none()
    return dict(found._mapping) if found else None


def server_seed(conn: Connection, plan_id: int) -> bytes:
    """The secret server seed of a plan (revealed publicly only once the plan is drawn)."""
    return bytes(
        conn.execute(text("SELECT server_seed FROM inspection_plan WHERE id = :id"), {"id": plan_id}).scalar_one()
    )


def plans(
    conn: Connection, *, department: str | None = None, town: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Plans, newest first, optionally only those carrying a department or touching a town."""
    rows = conn.execute(
        text(
            f"""
            SELECT {_PLAN_COLUMNS} FROM inspection_plan p
            WHERE (CAST(:department AS text) IS NULL OR :department = ANY(p.department_codes))
              AND (CAST(:town AS text) IS NULL OR :town = ANY(p.town_codes))
            ORDER BY p.created_at DESC, p.id DESC
            LIMIT :limit
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {"department": department, "town": town, "limit": limit},
    )
    return [dict(r._mapping) for r in rows]


def strata(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """A plan's strata sorted by public id, each with its selected credit codes (empty before the draw)."""
    rows = conn.execute(
        text(
            """
            SELECT s.stratum_id, s.item_code, s.credit_class, s.ratio, s.size, s.n,
                   coalesce(array_agg(c.uscc ORDER BY c.uscc) FILTER (WHERE c.selected), '{}') AS selected
            FROM inspection_stratum s
            LEFT JOIN inspection_candidate c ON c.plan_id = s.plan_id AND c.stratum_id = s.stratum_id AND c.selected
            WHERE s.plan_id = :plan_id
            GROUP BY s.stratum_id, s.item_code, s.credit_class, s.ratio, s.size, s.n
            ORDER BY s.stratum_id
            """
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


def candidates(conn: Connection, plan_id: int) -> list[tuple[str, str]]:
    """A plan's candidates as (stratum id, credit code), in the canonical order of the published list."""
    rows = conn.execute(
        text(
            "SELECT stratum_id, uscc FROM inspection_candidate WHERE plan_id = :plan_id"
            ' ORDER BY stratum_id COLLATE "C", uscc COLLATE "C"'
        ),
        {"plan_id": plan_id},
    )
    return [(r[0], r[1]) for r in rows]


def candidate_runs(conn: Connection, plan_id: int) -> dict[str, bytes]:
    """Each stratum's stored credit codes as one UTF-8 text, newline-separated, in no particular order.

    One row per stratum: 1.35 million candidates arrive as a few long values (a row each, or a COPY line each, costs
    seconds at that scale), and the caller sorts them; no quoting of any kind, so the bytes are the codes'.
    """
    rows = conn.execute(
        text(
            "SELECT stratum_id, convert_to(string_agg(uscc, E'\\n'), 'UTF8') FROM inspection_candidate"
            " WHERE plan_id = :plan_id GROUP BY stratum_id"
        ),
        {"plan_id": plan_id},
    )
    return {r[0]: bytes(r[1]) for r in rows}


def stratum_sizes(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """A plan's strata (id, item, n) without their selections: what a draw needs."""
    rows = conn.execute(
        text("SELECT stratum_id, item_code, n FROM inspection_stratum WHERE plan_id = :plan_id ORDER BY stratum_id"),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


_MARK_SELECTED = (
    b"UPDATE inspection_candidate SET selected = true WHERE plan_id = $1::bigint AND (stratum_id, uscc) IN"
    b" (SELECT x.stratum_id, x.uscc FROM unnest($2::text[], $3::text[]) AS x(stratum_id, uscc))"
)


def _text_array(values: Iterable[str]) -> bytes:
    """A text[] literal with every element quoted (backslashes and quotes escaped), UTF-8."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return ("{" + ",".join(quoted) + "}").encode()


@contextmanager
def marking_selected(conn: Connection, plan_id: int, chosen: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Mark the drawn candidates selected while the caller goes on: the UPDATE is sent, the body runs (it must not
    use the connection), and leaving waits for the server and raises its error if it had one.

    Tens of thousands of rows take the server about as long as matching the teams takes Python: side by side, a
    full-scale draw saves that much of its budget.
    """
    if not chosen:
        yield
        return
    raw = conn.connection.driver_connection
    pgconn = raw.pgconn  # type: ignore[union-attr]
    params = [str(plan_id).encode(), _text_array(s for s, _ in chosen), _text_array(u for _, u in chosen)]
    pgconn.send_query_params(_MARK_SELECTED, params)
    raw.wait(generators.send(pgconn))  # type: ignore[union-attr]
    try:
        yield
    finally:
        # Always read the answer, so the connection is free again whatever the body did.
        results = raw.wait(generators.fetch_many(pgconn))  # type: ignore[union-attr]
    for result in results:
        if result.status != ExecStatus.COMMAND_OK:
            raise error_from_result(result, encoding=raw.info.encoding)  # type: ignore[union-attr]


class DrawnEntity(NamedTuple):
    """A drawn entity as a visit needs it: kind, industry, place and point (EWKB hex, as stored)."""

    uscc: str
    kind: str
    industry: str | None
    town_code: str | None
    grid_code: str | None
    geom: str | None


def entities(conn: Connection, usccs: Sequence[str]) -> dict[str, DrawnEntity]:
    """The drawn entities, keyed by credit code (plain tuples: tens of thousands at a city's scale)."""
    rows = conn.execute(
        text("SELECT uscc, kind, industry, town_code, grid_code, geom FROM entity WHERE uscc = ANY(:usccs)"),
        {"usccs": list(usccs)},
    )
    make = DrawnEntity._make
    return {row[0]: make(row) for row in rows}


def inspectors(conn: Connection, departments: Sequence[str]) -> list[dict[str, Any]]:
    """The active inspectors of these departments with what matching needs (office as lon/lat, and its town)."""
    rows = conn.execute(
        text(
            """
            SELECT id, code, name, department_code, qualifications, home_grid_code, office_name,
                   ST_X(office_geom) AS office_lon, ST_Y(office_geom) AS office_lat, conflicts, load_cap,
                   (SELECT t.code FROM town t WHERE ST_Covers(t.geom, inspector.office_geom) LIMIT 1) AS office_town
            FROM inspector WHERE active AND department_code = ANY(:departments) ORDER BY id
            """
        ),
        {"departments": list(departments)},
    )
    return [dict(r._mapping) for r in rows]


def insert_teams(conn: Connection, plan_id: int, teams: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """The plan's teams (number, departments, members, office) in one statement; team number → team id."""
    if not teams:
        return {}
    # Arrays of arrays cannot be unnested row by row: the departments and members travel as joined text.
    rows = conn.execute(
        text(
            """
            INSERT INTO inspection_team (plan_id, team_no, department_codes, inspector_ids, office_name, office_geom)
            SELECT :plan_id, x.team_no, string_to_array(x.departments, ';'),
                   CAST(string_to_array(x.members, ';') AS bigint[]), x.office_name,
                   ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326)
            FROM unnest(CAST(:team_no AS int[]), CAST(:departments AS text[]), CAST(:members AS text[]),
                        CAST(:office_name AS text[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                 AS x(team_no, departments, members, office_name, lon, lat)
            RETURNING team_no, id
            """
        ),
        {
            "plan_id": plan_id,
            "team_no": [t["team_no"] for t in teams],
            "departments": [";".join(t["departments"]) for t in teams],
            "members": [";".join(str(i) for i in t["inspector_ids"]) for t in teams],
            "office_name": [t["office_name"] for t in teams],
            "lon": [t["office"][0] for t in teams],
            "lat": [t["office"][1] for t in teams],
        },
    )
    return {int(r.team_no): int(r.id) for r in rows}


# Text that COPY's text format and an array literal both take as is (no quoting, no escape): the codes of items,
# departments, grids and reasons, credit codes and EWKB hex. Anything else goes through psycopg's own row writer.
_PLAIN = re.compile(r"[A-Za-z0-9_./:-]*")
COPY_CHUNK_ROWS = 2_000
_VISIT_COLUMNS = (
    "plan_id, uscc, town_code, grid_code, item_codes, department_codes, team_id, unmatched_reason, geom,"
    " window_start, window_end, service_minutes"
)


def _visit_line(plan_id: int, v: Mapping[str, Any]) -> str | None:
    """A visit as one line of COPY text, or None when a value would need quoting."""
    texts = (v["uscc"], v["town_code"] or "", v["grid_code"] or "", v["unmatched_reason"] or "", v["geom"] or "")
    codes = (*v["item_codes"], *v["department_codes"])
    if not all(_PLAIN.fullmatch(t) for t in texts) or not all(c and _PLAIN.fullmatch(c) for c in codes):
        return None
    fields = [
        str(plan_id),
        v["uscc"],
        v["town_code"],
        v["grid_code"],
        "{" + ",".join(v["item_codes"]) + "}",
        "{" + ",".join(v["department_codes"]) + "}",
        v["team_id"],
        v["unmatched_reason"],
        v["geom"],
        v["window_start"],
        v["window_end"],
        v["service_minutes"],
    ]
    return "\t".join("\\N" if f is None else str(f) for f in fields) + "\n"


def insert_visits(conn: Connection, plan_id: int, visits: Sequence[Mapping[str, Any]]) -> None:
    """The plan's visits (one per drawn entity, with its point as `entities` read it), with their team or the reason
    none could be formed: one COPY (tens of thousands of rows at a city's scale, written as text when plain)."""
    if not visits:
        return
    odd: list[Mapping[str, Any]] = []
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY inspection_visit ({_VISIT_COLUMNS}) FROM STDIN") as copy:  # type: ignore[union-attr]
        # Sent in chunks as they are formed: the server checks and stores one while the next is written.
        lines: list[str] = []
        for v in visits:
            line = _visit_line(plan_id, v)
            if line is None:
                odd.append(v)
                continue
            lines.append(line)
            if len(lines) == COPY_CHUNK_ROWS:
                copy.write("".join(lines))
                lines = []
        copy.write("".join(lines))
        for v in odd:
            copy.write_row(
                (
                    plan_id,
                    v["uscc"],
                    v["town_code"],
                    v["grid_code"],
                    list(v["item_codes"]),
                    list(v["department_codes"]),
                    v["team_id"],
                    v["unmatched_reason"],
                    v["geom"],
                    v["window_start"],
                    v["window_end"],
                    v["service_minutes"],
                )
            )


def mark_drawn(conn: Connection, plan_id: int, *, public_value: str, seed_hex: str, actor: str, at: datetime) -> None:
    """The plan drawn: its public value, seed, who drew it and when."""
    conn.execute(
        text(
            """
            UPDATE inspection_plan SET status = 'drawn', public_value = :public_value, seed = :seed,
                drawn_by = :actor, drawn_at = :at
            WHERE id = :id
            """
        ),
        {"id": plan_id, "public_value": public_value, "seed": seed_hex, "actor": actor, "at": at},
    )


def mark_cancelled(conn: Connection, plan_id: int, *, reason: str, at: datetime) -> None:
    """The plan cancelled before its draw (kept, and shown publicly as cancelled)."""
    conn.execute(
        text(
            "UPDATE inspection_plan SET status = 'cancelled', cancelled_at = :at, cancel_reason = :reason WHERE id = :id"
        ),
        {"id": plan_id, "reason": reason, "at": at},
    )


def teams(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """A plan's teams with their members (code, name, department, home grid) and office."""
    rows = conn.execute(
        text(
            """
            SELECT t.id, t.team_no, t.department_codes, t.office_name,
                   ST_X(t.office_geom) AS office_lon, ST_Y(t.office_geom) AS office_lat,
                   coalesce(json_agg(json_build_object('id', i.id, 'code', i.code, 'name', i.name,
                                                       'department', i.department_code,
                                                       'home_grid', i.home_grid_code) ORDER BY m.ord)
                            FILTER (WHERE i.id IS NOT NULL), '[]') AS inspectors
            FROM inspection_team t
            CROSS JOIN LATERAL unnest(t.inspector_ids) WITH ORDINALITY AS m(inspector_id, ord)
            LEFT JOIN inspector i ON i.id = m.inspector_id
            WHERE t.plan_id = :plan_id
            GROUP BY t.id
            ORDER BY t.team_no
            """
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]


def visits(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """A plan's visits with the entity's name and point, ordered by team then credit code."""
    rows = conn.execute(
        text(
            """
            SELECT v.id, v.uscc, e.name, v.grid_code, v.town_code, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat,
                   v.item_codes, v.department_codes, v.team_id, v.window_start, v.window_end, v.service_minutes,
                   v.status, v.unmatched_reason
            FROM inspection_visit v JOIN entity e ON e.uscc = v.uscc
            WHERE v.plan_id = :plan_id
            ORDER BY v.team_id NULLS LAST, v.uscc
            """
        ),
        {"plan_id": plan_id},
    )
    return [dict(r._mapping) for r in rows]
