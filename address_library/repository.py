"""address_library.repository: the SQL of the standard address library (bulk reads for the in-memory indexes)."""

from __future__ import annotations

import io

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
    with raw.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy(_COPY_INDEX_ROWS) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    dtypes = {c: "string" for c in ("level", "full_text", "kind", "town_code", "community_code", "grid_code")}
    dtypes.update({c: "string" for c in COMPONENT_COLUMNS})
    frame = pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values={"parent_id": [""], "road_id": [""]})
    frame["parent_id"] = frame["parent_id"].astype("Int64")
    frame["road_id"] = frame["road_id"].astype("Int64")
    return frame


def library_version(conn: Connection) -> tuple[int, str | None]:
    """(row count, latest change time) of the library: a cheap fingerprint to notice changes."""
    count, latest = conn.execute(text("SELECT count(*), max(created_at)::text FROM address")).one()
    return int(count), latest
