"""gis.backup_manifest: what a backup records — its manifest, and the exact row count and checksum of every table.

The manifest names the schema revision, the exact row count and a checksum of every table of the project's schemas,
the software versions and the sha256 of the dump. Checksums are read in one canonical session, so that both ends of
a backup compare them anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from gis.errors import BackupInvalid

FORMAT = "gridgov-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.dump"
PROJECT_SCHEMAS = ("public", "synthetic")
CHECKSUM_METHOD = "md5 of the md5s of every row's text, sorted (TimeZone UTC, DateStyle ISO)"
# A row's text depends on these session settings; both ends of a backup fix them, so checksums compare anywhere.
CANONICAL_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
)
# Sorting the row hashes (not the rows by key) makes the checksum independent of the server's collation.
TABLE_STATE = sql.SQL(
    "SELECT count(*), md5(coalesce(string_agg(row_md5, '' ORDER BY row_md5 COLLATE \"C\"), '')) "
    "FROM (SELECT md5(t::text) AS row_md5 FROM {table} AS t) AS hashed"
)
PROJECT_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class TableState:
    """The exact row count and the row checksum of one table."""

    rows: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, read from the same snapshot as its dump."""

    created_at: str
    database: str
    schema_revision: str | None
    gridgov_version: str
    postgresql_version: str
    postgis_version: str | None
    extensions: dict[str, str]
    pg_dump_version: str
    dump_bytes: int
    dump_sha256: str
    tables: dict[str, TableState]

    @property
    def total_rows(self) -> int:
        """Rows in all tables."""
        return sum(state.rows for state in self.tables.values())

    def to_json(self) -> bytes:
        """The manifest as written into the backup file."""
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "database": self.database,
            "schema_revision": self.schema_revision,
            "gridgov_version": self.gridgov_version,
            "postgresql_version": self.postgresql_version,
            "postgis_version": self.postgis_version,
            "extensions": self.extensions,
            "pg_dump_version": self.pg_dump_version,
            "dump": {
                "name": DUMP_NAME,
                "format": "pg_dump custom",
                "bytes": self.dump_bytes,
                "sha256": self.dump_sha256,
            },
            "checksum_method": CHECKSUM_METHOD,
            "total_rows": self.total_rows,
            "tables": {name: {"rows": state.rows, "md5": state.md5} for name, state in self.tables.items()},
        }
        return json.dumps(document, indent=2, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Read a manifest; BackupInvalid when it is not one of ours or of a format this gridgov does not read."""
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupInvalid(f"{MANIFEST_NAME} is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupInvalid(f"{MANIFEST_NAME} is not a gridgov backup manifest")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise BackupInvalid(f"backup format version {version!r}; this gridgov reads version {FORMAT_VERSION}")
        try:
            dump = document["dump"]
            return cls(
                created_at=str(document["created_at"]),
                database=str(document["database"]),
                schema_revision=None if document["schema_revision"] is None else str(document["schema_revision"]),
                gridgov_version=str(document["gridgov_version"]),
                postgresql_version=str(document["postgresql_version"]),
                postgis_version=None if document["postgis_version"] is None else str(document["postgis_version"]),
                extensions={str(k): str(v) for k, v in document["extensions"].items()},
                pg_dump_version=str(document["pg_dump_version"]),
                dump_bytes=int(dump["bytes"]),
                dump_sha256=str(dump["sha256"]),
                tables={
                    str(name): TableState(rows=int(state["rows"]), md5=str(state["md5"]))
                    for name, state in document["tables"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupInvalid(f"{MANIFEST_NAME} lacks or garbles {exc}") from None


def _canonical_session(conn: psycopg.Connection[Any]) -> None:
    for name, value in CANONICAL_SETTINGS:
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def project_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, table) of every table of the project's schemas, without the extensions' own (spatial_ref_sys)."""
    return [(str(s), str(t)) for s, t in conn.execute(PROJECT_TABLES, (list(PROJECT_SCHEMAS),))]


def table_states(conn: psycopg.Connection[Any]) -> dict[str, TableState]:
    """`schema.table` → exact row count and row checksum, for every project table (in the connection's snapshot)."""
    _canonical_session(conn)
    states = {}
    for schema, table in project_tables(conn):
        row = conn.execute(TABLE_STATE.format(table=sql.Identifier(schema, table))).fetchone()
        assert row is not None  # an aggregate always answers one row
        states[f"{schema}.{table}"] = TableState(rows=int(row[0]), md5=str(row[1]))
    return states
