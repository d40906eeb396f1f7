"""supervision.models: market entities (市场主体), their licences, clues and the review queue."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import metadata

entity = Table(
    "entity",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("business_scope", Text, nullable=False),
    Column("industry", Text, nullable=False),
    Column("raw_address", Text, nullable=False),
    Column("address_id", BigInteger, ForeignKey("address.id")),
    Column("town_code", String(12), ForeignKey("town.code"), index=True),
    Column("grid_code", String(15), index=True),
    Column("status", String(8), nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("annual_report_filed_on", Date),
    Column("needs_licence", Boolean, nullable=False, server_default="false"),
    Column("credit_class", String(1), nullable=False, server_default="B"),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True)),
    CheckConstraint("kind IN ('company','individual')", name="kind"),
    CheckConstraint("status IN ('open','closed')", name="status"),
)

entity_licence = Table(
    "entity_licence",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("uscc", String(18), ForeignKey("entity.uscc", ondelete="CASCADE"), nullable=False, index=True),
    Column("licence", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("issued_on", Date, nullable=False),
)

clue = Table(
    "clue",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(12), nullable=False, server_default="clue"),
    Column("industry", Text, nullable=False, index=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("severity", String(8), nullable=False, server_default="normal"),
    Column("status", String(24), nullable=False, server_default="closed"),
    Column("source", String(12), nullable=False, server_default="field"),
    Column("reported_at", DateTime(timezone=True), nullable=False, index=True),
    Column("address", Text),
    Column("town_code", String(12), ForeignKey("town.code"), index=True),
    Column("grid_code", String(15), index=True),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
    CheckConstraint("severity IN ('normal','severe')", name="severity"),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("town_code", String(12)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("resolution", JSONB),
)
