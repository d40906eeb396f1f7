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
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from gis.distribution import city_code_column
from gis.schema import metadata

entity = Table(
    "entity",
    metadata,
    Column("uscc", String(18), primary_key=True),
    city_code_column(),
    Column("name", Text, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("business_scope", Text, nullable=False),
    Column("industry", Text, nullable=False),
    Column("raw_address", Text, nullable=False),
    Column("address_id", BigInteger),
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
    ForeignKeyConstraint(
        ["address_id", "city_code"], ["address.id", "address.city_code"], name="fk_entity_address_id_address"
    ),
)

entity_licence = Table(
    "entity_licence",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("uscc", String(18), nullable=False, index=True),
    Column("licence", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("issued_on", Date, nullable=False),
    ForeignKeyConstraint(
        ["uscc", "city_code"],
        ["entity.uscc", "entity.city_code"],
        ondelete="CASCADE",
        name="fk_entity_licence_uscc_entity",
    ),
)

# The values of a clue's kind, source and severity columns, and what the pages call them (GET /v1/vocabulary).
CLUE_KIND_LABELS_ZH = {"clue": "线索", "unlicensed": "无照经营"}
CLUE_SOURCE_LABELS_ZH = {"field": "现场上报", "hotline": "热线"}
CLUE_SEVERITY_LABELS_ZH = {"normal": "一般", "severe": "严重"}

clue = Table(
    "clue",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
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
    # Field reports (issue 4): who reported, where it was routed, and the open clues it may duplicate.
    Column("reported_by", Text),
    Column("department_code", String(32), index=True),
    Column("duplicate_candidates", JSONB),
    CheckConstraint("severity IN ('normal','severe')", name="severity"),
)

clue_photo = Table(
    "clue_photo",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("clue_id", BigInteger, nullable=False, index=True),
    # Stored under the photo directory by checksum: the same photo uploaded twice is kept once on disk.
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("filename", Text),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["clue_id", "city_code"], ["clue.id", "clue.city_code"], name="fk_clue_photo_clue_id_clue"),
)

# A grid worker's photos of an inspection (the field page's 拍照取证), stored like clue photos, by checksum.
task_photo = Table(
    "task_photo",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("task_id", BigInteger, nullable=False, index=True),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("filename", Text),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["task_id", "city_code"], ["task.id", "task.city_code"], name="fk_task_photo_task_id_task"),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
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
    # The stored id: the sender's own id for `system`, `<sender>/<source id>` for a key or a user (migration 0015).
    Column("event_id", String(100), primary_key=True),
    city_code_column(),
    # Who sent it: the principal's owner reference (key#12, user#5) or `system`; the audit name of the sender; and
    # the sender's own id. Replaying (sender, source id) finds this row and creates nothing new.
    Column("sender", Text, nullable=False),
    Column("sender_name", Text, nullable=False),
    Column("source_event_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("business_scope", Text, nullable=False, server_default=""),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("processed_at", DateTime(timezone=True)),
    # When the event's first task became visible to the grid (null while it waits in the review queue).
    Column("pushed_at", DateTime(timezone=True)),
    # accepted → placed | review | rejected; the reason says why when it is not placed.
    Column("outcome", String(12), nullable=False, server_default="accepted"),
    Column("reason", Text),
    Column("town_code", String(12), index=True),
    CheckConstraint("kind IN ('new','address_change','scope_change','deregistration')", name="kind"),
    UniqueConstraint("sender", "source_event_id", "city_code", name="uq_registration_event_sender"),
)

task = Table(
    "task",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("kind", String(8), nullable=False, server_default="task"),  # task | clue
    Column("duty", String(24), nullable=False),
    Column("entity_uscc", String(18), index=True),
    Column("clue_id", BigInteger, index=True),
    Column("event_id", String(100)),
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
    # Who must act now: worker:<id>, grid:<code> (waiting for a worker), community:<code>, department:<codes>.
    Column("holder", Text),
    # Set on campaign tasks (e.g. annual_report:2026) so that a rerun adds nobody twice.
    Column("campaign", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["entity_uscc", "city_code"], ["entity.uscc", "entity.city_code"], name="fk_task_entity_uscc_entity"
    ),
    ForeignKeyConstraint(["clue_id", "city_code"], ["clue.id", "clue.city_code"], name="fk_task_clue_id_clue"),
    ForeignKeyConstraint(
        ["event_id", "city_code"],
        ["registration_event.event_id", "registration_event.city_code"],
        name="fk_task_event_id_registration_event",
    ),
)
# Replaying an event, or rerunning a campaign, finds these and creates nothing new.
Index(
    "uq_task_event_duty",
    task.c.event_id,
    task.c.duty,
    task.c.city_code,
    unique=True,
    postgresql_where=task.c.event_id.isnot(None),
)
Index(
    "uq_task_campaign",
    task.c.entity_uscc,
    task.c.duty,
    task.c.campaign,
    task.c.city_code,
    unique=True,
    postgresql_where=task.c.campaign.isnot(None),
)
Index("ix_task_open_worker", task.c.worker_id, postgresql_where=task.c.status.notin_(["closed", "cancelled"]))

task_event = Table(
    "task_event",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("task_id", BigInteger, nullable=False, index=True),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text),
    Column("worker_id", BigInteger),
    Column("distance_m", Float),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    # What held after this event: the holder and the deadline in force. Overdue time is attributed from these.
    Column("holder", Text),
    Column("due_at", DateTime(timezone=True)),
    Column("flagged", Boolean, nullable=False, server_default="false"),
    ForeignKeyConstraint(["task_id", "city_code"], ["task.id", "task.city_code"], name="fk_task_event_task_id_task"),
)
Index("ix_task_event_worker", task_event.c.worker_id)

task_warning = Table(
    "task_warning",
    metadata,
    # One row per task, step and level: the scheduled job can run any number of times.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("task_id", BigInteger, nullable=False, index=True),
    Column("level", String(8), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("holder", Text),
    Column("raised_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("level IN ('due_soon','overdue')", name="level"),
    UniqueConstraint("task_id", "level", "due_at", "city_code", name="uq_task_warning_step"),
    ForeignKeyConstraint(["task_id", "city_code"], ["task.id", "task.city_code"], name="fk_task_warning_task_id_task"),
)

job_run = Table(
    "job_run",
    metadata,
    # The scheduled jobs' log: what ran, when, and what it did.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("job", String(32), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB),
)

outbox = Table(
    "outbox",
    metadata,
    # Written in the intake transaction, relayed after commit: an accepted event is never lost to a crash.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("topic", String(32), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("relayed_at", DateTime(timezone=True), index=True),
)
