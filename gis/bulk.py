"""gis.bulk: fast bulk writes through COPY, and geometry encoding for it."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely
from psycopg import sql
from sqlalchemy import Connection, Table

STORAGE_SRID = 4326


def ewkb_hex(geoms: Sequence[object] | np.ndarray, srid: int = STORAGE_SRID) -> np.ndarray:
    """Encode shapely geometries as hex EWKB with their SRID, the text form COPY accepts for geometry."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), srid)
    return np.asarray(shapely.to_wkb(arr, hex=True, include_srid=True), dtype=object)


def qualified_name(table: Table) -> sql.Composed:
    """The schema-qualified, quoted name of a table (the one place identifiers are composed)."""
    if table.schema:
        return sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
    return sql.SQL("{}").format(sql.Identifier(table.name))


def copy_frame(conn: Connection, table: Table, frame: pd.DataFrame, *, chunk_rows: int = 200_000) -> int:
    """COPY a DataFrame into `table` (its column names must be the table's); returns the row count.

    Runs on the caller's connection and transaction, so a failure later rolls the rows back too.
    Missing values (None/NaN/NA) are written as NULL.
    """
    unknown = set(frame.columns) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"columns not in {table.name}: {sorted(unknown)}")
    raw = conn.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N')").format(
        qualified_name(table), sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    )
    total = 0
    with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
        for start in range(0, len(frame), chunk_rows):
            chunk = frame.iloc[start : start + chunk_rows]
            buffer = io.StringIO()
            chunk.to_csv(buffer, header=False, index=False, na_rep="\\N")
            copy.write(buffer.getvalue())
            total += len(chunk)
    return total
