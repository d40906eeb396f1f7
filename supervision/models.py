"""supervision.models: market entities (市场主体), licences, clues, the review queue, and the task workflow."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
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

# ---------------------------------------------------------------------------------------------- the workflow

registration_event = Table(
    "registration_event",
    metadata,
    # The sender's id: replaying an event finds this row and creates nothing new.
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("business_scope", Text, nullable=False, server_default=""),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("processed_at", DateTime(timezone=True)),
    # accepted → placed | review | rejected; the reason says why when it is not placed.
    Column("outcome", String(12), nullable=False, server_default="accepted"),
    Column("reason", Text),
    Column("town_code", String(12), index=True),
    CheckConstraint("kind IN ('new','address_change','scope_change','deregistration')", name="kind"),
)

task = Table(
    "task",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False, server_default="task"),  # task | clue
    Column("duty", String(24), nullable=False),
    Column("entity_uscc", String(18), ForeignKey("entity.uscc"), index=True),
    Column("clue_id", BigInteger, ForeignKey("clue.id"), index=True),
    Column("event_id", String(64), ForeignKey("registration_event.event_id")),
    Column("town_code", String(12), ForeignKey("town.code"), nullable=False, index=True),
    Column("community_code", String(12), nullable=False, index=True),
    Column("grid_code", String(15), nullable=False, index=True),
    Column("worker_id", BigInteger, index=True),
    Column("department_codes", Text),  # comma-separated: one joint case may involve several departments
    Column("status", String(24), nullable=False, index=True),
    Column("pushed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("due_at", DateTime(timezone=True)),
    Column("warn_at", DateTime(timezone=True)),
    Column("calendar_provisional", Boolean, nullable=False, server_default="false"),
    Column("closed_at", DateTime(timezone=True)),
    # Optimistic locking: a transition names the version it saw; a stale one answers 409.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("flagged", Boolean, nullable=False, server_default="false"),
)

task_event = Table(
    "task_event",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger, ForeignKey("task.id"), nullable=False, index=True),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text),
    Column("worker_id", BigInteger),
    Column("distance_m", Float),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
)

outbox = Table(
    "outbox",
    metadata,
    # Written in the intake transaction, relayed after commit: an accepted event is never lost to a crash.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", String(32), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("relayed_at", DateTime(timezone=True), index=True),
)
