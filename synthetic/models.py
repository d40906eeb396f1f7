"""synthetic.models: ground truth of the synthetic city, kept apart from product tables (schema `synthetic`)."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Column, Date, DateTime, Float, Integer, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import metadata

SCHEMA = "synthetic"

entity_truth = Table(
    "entity_truth",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("address_id", BigInteger, nullable=False),
    Column("noise", Text, nullable=False),
    schema=SCHEMA,
)

hotspot = Table(
    "hotspot",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("industry", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("radius_m", Float, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("n_clues", Integer, nullable=False),
    Column("geom", Geometry("POINT", srid=4326), nullable=False),
    schema=SCHEMA,
)

demo_load = Table(
    "demo_load",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scale", String(8), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("load_date", Date, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("seconds", Float, nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("note", Text),
    schema=SCHEMA,
)
