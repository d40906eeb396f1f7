"""maps.models: the data versions the tile cache reads (one counter per group of tables and town).

Triggers (migration 0008) collect the towns a transaction touched in `data_version_pending` and, at commit,
bump their counters in `data_version` in one sorted statement, so that concurrent writers never deadlock on them.
A town_code of '' stands for the whole city (a row of no town, a truncation, a new grid version).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text

from gis.schema import metadata

data_version = Table(
    "data_version",
    metadata,
    Column("layer_group", Text, primary_key=True),
    Column("town_code", String(12), primary_key=True),
    Column("version", BigInteger, nullable=False, server_default="0"),
)

data_version_pending = Table(
    "data_version_pending",
    metadata,
    Column("xact", BigInteger, primary_key=True),
    Column("layer_group", Text, primary_key=True),
    Column("town_code", String(12), primary_key=True),
)
