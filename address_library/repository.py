"""address_library.repository: the SQL of the standard address library (bulk reads for the in-memory indexes)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

# Component columns of `address`, in the order the indexes use them.
COMPONENT_COLUMNS = (
    "road_name",
    "door_no",
    "sub_no",
    "village",
    "lane",
    "park",
    "compound",
    "phase",
    "building",
    "unit",
    "floor",
    "room",
    "stall",
)

_COPY_INDEX_ROWS = """
COPY (
    SELECT id, level, parent_id, full_text, kind, town_code, community_code, road_id,
           road_name, door_no, sub_no, village, lane, park, compound, phase, building, unit, floor, room, stall,
           grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat
    FROM address WHERE status = 'active' ORDER BY id
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""


def index_rows(conn: Connection) -> pd.DataFrame:
    """Every active standard address with its components and point, read through COPY (millions of rows)."""
    raw = conn.connection.driver_connection
    buffer = io.BytesIO()
    with raw.cursor() as cur, cur.copy(_COPY_INDEX_ROWS) as copy:  # type: ignore[union-attr]
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    dtypes = {c: "string" for c in ("level", "full_text", "kind", "town_code", "community_code", "grid_code")}
    dtypes.update({c: "string" for c in COMPONENT_COLUMNS})
    frame = pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values={"parent_id": [""], "road_id": [""]})
    frame["parent_id"] = frame["parent_id"].astype("Int64")
    frame["road_id"] = frame["road_id"].astype("Int64")
    return frame


def library_version(conn: Connection) -> tuple[int, str | None, int]:
    """(highest id, latest change time, territory version) of the library: a cheap fingerprint to notice changes.

    Every add, retire and move bumps `updated_at`, so a move (same count) or a retirement changes it too. The
    territory version is the sum of the territory counters of `data_version`, which triggers bump on every change
    to towns, communities, grids, grid versions and workers: a grid redrawn or a version activated changes the grid
    placement and the addresses' grids a geocoder (and its saved index store) holds, though no address row need
    change. A worker moved counts too (the counters do not tell the tables apart): a needless rebuild, never a
    stale grid.
    """
    # Rows are never deleted, and every write (a load, an add, a retirement, a move) sets updated_at: the
    # newest updated_at with the highest id is enough, and both come from an index, not a count of millions.
    latest, top_id, territory = conn.execute(
        text(
            "SELECT max(updated_at)::text, max(id), "
            "(SELECT coalesce(sum(version), 0) FROM data_version WHERE layer_group = 'territory') FROM address"
        )
    ).one()
    return int(top_id or 0), latest, int(territory)


@dataclass(frozen=True)
class AliasEntry:
    """One alias the geocoder may use: an active row of address_alias (see address_library.match for the rule)."""

    id: int
    normalized_text: str
    address_id: int
    scope: str  # community / city
    community_code: str | None


def alias_rows(conn: Connection) -> list[AliasEntry]:
    """The aliases the geocoder uses: the active ones (suspended and withdrawn aliases answer nothing)."""
    return [
        AliasEntry(int(r.id), r.normalized_text, int(r.address_id), r.scope, r.community_code)
        for r in conn.execute(text(
            "SELECT id, normalized_text, address_id, scope, community_code FROM address_alias "
            "WHERE state = 'active' ORDER BY id"))
    ]  # fmt: skip


def alias_version(conn: Connection) -> tuple[int, str | None]:
    """(count, latest change) of the alias table: a cheap fingerprint that sees new aliases, promotions,
    suspensions and withdrawals (each sets updated_at)."""
    count, latest = conn.execute(text("SELECT count(*), max(updated_at)::text FROM address_alias")).one()
    return int(count), latest


@dataclass(frozen=True)
class Teaching:
    """What one resolution did to the alias of its typed text.

    `outcome`: taught (a new community alias), confirmed (the same address again; `promoted` when it was a second,
    independent resolver, which makes the alias city-wide) or conflict (another address: the alias is suspended).
    """

    alias_id: int
    outcome: str
    scope: str
    state: str
    promoted: bool = False


def teach_alias(
    conn: Connection,
    *,
    normalized_text: str,
    address_id: int,
    raw_text: str,
    taught_by: str,
    community_code: str,
    review_item_id: int | None = None,
    city: bool = False,
) -> Teaching:
    """Record a resolution of a typed text (normalized) to a standard address, in the caller's transaction.

    A text with no live alias gets one in `community_code` (the resolver's community: the address's). The same text
    resolved again to the same address by a different resolver promotes a community alias to the city; by the same
    resolver it is only recorded. Resolved to a different address, it is a conflict: the alias is suspended (used by
    no geocoder) until the command centre promotes or withdraws it. Every resolution is a row of
    address_alias_teaching; no row is ever deleted.

    With `city` (a resolution by the command centre, which is the authority that promotes aliases), a new alias is
    city-wide at once and a community alias it confirms is promoted.
    """
    row = conn.execute(
        text("SELECT id, address_id, scope, state FROM address_alias "
             "WHERE normalized_text = :n AND state <> 'withdrawn' FOR UPDATE"),
        {"n": normalized_text},
    ).first()  # fmt: skip
    promoted = False
    if row is None:
        alias_id = int(
            conn.execute(
                text(
                    "INSERT INTO address_alias (normalized_text, address_id, raw_text, created_by, created_at, scope, "
                    "community_code, state, taught_by, review_item_id, updated_at, promoted_by, promoted_at, "
                    "promote_reason) VALUES (:n, :a, :r, :b, now(), :scope, :c, 'active', :b, :item, "
                    "clock_timestamp(), :pb, CASE WHEN :city THEN now() END, :why) RETURNING id"
                ),
                {"n": normalized_text, "a": address_id, "r": raw_text, "b": taught_by, "c": community_code,
                 "item": review_item_id, "scope": "city" if city else "community", "pb": taught_by if city else None,
                 "city": city,
                 "why": f"resolved by the command centre (review item {review_item_id})" if city else None},
            ).scalar_one()
        )  # fmt: skip
        outcome, scope, state = "taught", "city" if city else "community", "active"
    elif int(row.address_id) == address_id:
        alias_id, scope, state = int(row.id), row.scope, row.state
        outcome = "confirmed"
        teachers = set(conn.execute(
            text("SELECT taught_by FROM address_alias_teaching WHERE alias_id = :id AND address_id = :a "
                 "AND outcome <> 'conflict'"),
            {"id": alias_id, "a": address_id},
        ).scalars())  # fmt: skip
        if scope == "community" and state == "active" and (city or taught_by not in teachers):
            conn.execute(
                text("UPDATE address_alias SET scope = 'city', promoted_by = :b, promoted_at = now(), "
                     "promote_reason = :why, updated_at = clock_timestamp() WHERE id = :id"),
                {"id": alias_id, "b": taught_by,
                 "why": f"{'confirmed by the command centre' if city else 'second independent resolution'} "
                        f"(review item {review_item_id})"},
            )  # fmt: skip
            scope, promoted = "city", True
    else:
        alias_id, scope, state, outcome = int(row.id), row.scope, "suspended", "conflict"
        conn.execute(
            text("UPDATE address_alias SET state = 'suspended', updated_at = clock_timestamp() WHERE id = :id"),
            {"id": alias_id},
        )
    conn.execute(
        text(
            "INSERT INTO address_alias_teaching (alias_id, address_id, outcome, taught_by, review_item_id, "
            "community_code, taught_at) VALUES (:id, :a, :o, :b, :item, :c, now())"
        ),
        {"id": alias_id, "a": address_id, "o": outcome, "b": taught_by, "item": review_item_id, "c": community_code},
    )
    return Teaching(alias_id, outcome, scope, state, promoted)


def promote_alias(conn: Connection, alias_id: int, *, by: str, reason: str) -> bool:
    """The command centre's decision: the alias is used city-wide (a suspended one is active again). False when
    there is no such alias or it was withdrawn."""
    done = conn.execute(
        text("UPDATE address_alias SET scope = 'city', state = 'active', promoted_by = :b, promoted_at = now(), "
             "promote_reason = :why, updated_at = clock_timestamp() WHERE id = :id AND state <> 'withdrawn'"),
        {"id": alias_id, "b": by, "why": reason},
    )  # fmt: skip
    return bool(done.rowcount)


def withdraw_alias(conn: Connection, alias_id: int, *, by: str, reason: str) -> bool:
    """The alias is used no more (its row stays, with who withdrew it and why). False when there is no such alias
    or it was withdrawn already."""
    done = conn.execute(
        text("UPDATE address_alias SET state = 'withdrawn', withdrawn_by = :b, withdrawn_at = now(), "
             "withdraw_reason = :why, updated_at = clock_timestamp() WHERE id = :id AND state <> 'withdrawn'"),
        {"id": alias_id, "b": by, "why": reason},
    )  # fmt: skip
    return bool(done.rowcount)


# ---------------------------------------------------------------------------------------------- maintenance SQL

# The columns a maintenance read returns for one address (point as lon, lat).
_ADDRESS_SELECT = """
SELECT id, level, parent_id, full_text, kind, town_code, community_code, road_id, road_name, door_no, sub_no,
       village, lane, park, compound, phase, building, unit, floor, room, stall, grid_code, status,
       created_at, updated_at, ST_X(geom) AS lon, ST_Y(geom) AS lat
FROM address
"""


def lock_for_changes(conn: Connection) -> None:
    """Serialize library writers for this transaction (readers are not blocked) and sync the id sequence.

    The synthetic loader writes explicit ids, so the sequence may lag behind max(id); under the lock no other
    writer can race between the check and the insert.
    """
    conn.execute(text("LOCK TABLE address IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('address', 'id'), m, true) "
            "FROM (SELECT max(id) AS m FROM address) s WHERE m IS NOT NULL"
        )
    )


def address_by_id(conn: Connection, address_id: int) -> dict[str, Any] | None:
    """One address with its components, status and point, or None."""
    row = conn.execute(text(_ADDRESS_SELECT + " WHERE id = :id"), {"id": address_id}).mappings().first()
    return dict(row) if row else None


def addresses_by_text(conn: Connection, full_texts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The addresses (any status) whose full_text is one of these, by text."""
    if not full_texts:
        return {}
    rows = conn.execute(
        text(_ADDRESS_SELECT + " WHERE full_text = ANY(:texts)"), {"texts": list(full_texts)}
    ).mappings()
    return {r["full_text"]: dict(r) for r in rows}


def addresses_by_ids(conn: Connection, address_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The addresses (any status) of these ids, by id."""
    if not address_ids:
        return {}
    rows = conn.execute(text(_ADDRESS_SELECT + " WHERE id = ANY(:ids)"), {"ids": list(address_ids)}).mappings()
    return {int(r["id"]): dict(r) for r in rows}


def road_ids_by_name(conn: Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Road ids of (town code, road name) pairs that exist (the lowest id when a name repeats in a town)."""
    if not pairs:
        return {}
    rows = conn.execute(
        text(
            "SELECT town_code, name, min(id) FROM road "
            "WHERE (town_code, name) IN (SELECT * FROM unnest(CAST(:towns AS text[]), CAST(:names AS text[]))) "
            "GROUP BY town_code, name"
        ),
        {"towns": [t for t, _ in pairs], "names": [n for _, n in pairs]},
    )
    return {(str(t), str(n)): int(i) for t, n, i in rows}


_INSERT_ADDRESS = """
INSERT INTO address (level, parent_id, full_text, kind, town_code, community_code, road_id, road_name, door_no,
                     sub_no, village, lane, park, compound, phase, building, unit, floor, room, stall, grid_code,
                     status, geom, created_at, updated_at)
VALUES (:level, :parent_id, :full_text, :kind, :town_code, :community_code, :road_id, :road_name, :door_no,
        :sub_no, :village, :lane, :park, :compound, :phase, :building, :unit, :floor, :room, :stall, :grid_code,
        'active', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), clock_timestamp(), clock_timestamp())
RETURNING id
"""


def insert_address(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert one active address (components, codes, lon/lat) and return its id."""
    return int(conn.execute(text(_INSERT_ADDRESS), dict(values)).scalar_one())


def set_status(conn: Connection, address_ids: Sequence[int], status: str) -> None:
    """Set the status of these addresses and bump their updated_at."""
    conn.execute(
        text("UPDATE address SET status = :status, updated_at = clock_timestamp() WHERE id = ANY(:ids)"),
        {"status": status, "ids": list(address_ids)},
    )


def set_point(
    conn: Connection,
    address_ids: Sequence[int],
    *,
    lon: float,
    lat: float,
    grid_code: str,
    community_code: str,
    town_code: str,
) -> None:
    """Move these addresses to one point with its grid, community and town; bump their updated_at."""
    conn.execute(
        text(
            "UPDATE address SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), grid_code = :grid, "
            "community_code = :community, town_code = :town, updated_at = clock_timestamp() WHERE id = ANY(:ids)"
        ),
        {"lon": lon, "lat": lat, "grid": grid_code, "community": community_code, "town": town_code,
         "ids": list(address_ids)},
    )  # fmt: skip


def active_descendants(conn: Connection, address_id: int) -> list[dict[str, Any]]:
    """The active children, grandchildren… of an address (buildings of a door, rooms of a building), by id."""
    ids = conn.execute(
        text(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM address WHERE parent_id = :id "
            "UNION SELECT a.id FROM address a JOIN tree t ON a.parent_id = t.id) "
            "SELECT id FROM tree"
        ),
        {"id": address_id},
    ).scalars()
    found = addresses_by_ids(conn, [int(i) for i in ids])
    return [found[i] for i in sorted(found) if found[i]["status"] == "active"]


_INSERT_HISTORY = """
INSERT INTO address_history (address_id, action, changed_at, changed_by, old_geom, new_geom, old_status, new_status,
                             note)
VALUES (:address_id, :action, clock_timestamp(), :changed_by,
        CASE WHEN CAST(:old_lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:old_lon, :old_lat), 4326) END,
        CASE WHEN CAST(:new_lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:new_lon, :new_lat), 4326) END,
        :old_status, :new_status, :note)
"""


def insert_history(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append history rows: address_id, action, changed_by, old/new lon/lat (or None), old/new status, note."""
    if rows:
        conn.execute(text(_INSERT_HISTORY), [dict(r) for r in rows])


def history_of(conn: Connection, address_id: int) -> list[dict[str, Any]]:
    """The history of one address, oldest first (points as lon/lat)."""
    rows = conn.execute(
        text(
            "SELECT id, action, changed_at, changed_by, ST_X(old_geom) AS old_lon, ST_Y(old_geom) AS old_lat, "
            "ST_X(new_geom) AS new_lon, ST_Y(new_geom) AS new_lat, old_status, new_status, note "
            "FROM address_history WHERE address_id = :id ORDER BY changed_at, id"
        ),
        {"id": address_id},
    ).mappings()
    return [dict(r) for r in rows]
