"""planning.models: grid workload figures per version, and the audit of what a plan moved (staffing, grid versions).

`grid_version` itself (grids.models) gains, for drafts, the version it was drawn from, the area it redraws, its
figures and the fingerprint of the data it was drawn on (migration 0010): a draft whose fingerprint no longer matches
is stale and is refused at apply.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import metadata
from grids.codes import GRID_DIGITS

# A grid's workload in hours per month under one standards version: the total and its breakdown (items), computed
# for the active version and for drafts alike; recomputed on demand (`gridgov workload refresh`) and after a change.
grid_workload = Table(
    "grid_workload",
    metadata,
    Column("version_id", Integer, primary_key=True),
    Column("grid_code", String(GRID_DIGITS), primary_key=True),
    Column("standards_version", Text, nullable=False),
    Column("hours", Float, nullable=False),
    Column("items", JSONB, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["version_id", "grid_code"], ["grid.version_id", "grid.code"], ondelete="CASCADE"),
)

# One step of planning that changed the territory or its staff, applied in one transaction by one actor.
planning_batch = Table(
    "planning_batch",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(24), nullable=False, index=True),
    Column("version_id", Integer, ForeignKey("grid_version.id")),
    Column("area_code", String(12)),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("reason", Text, nullable=False),
    Column("summary", JSONB, nullable=False, server_default="{}"),
    CheckConstraint("kind IN ('staffing','grid_apply','grid_rollback','daily_assignment')", name="kind"),
)

# Every object a batch moved from one grid to another: addresses, entities, tasks, clues and workers.
territory_move = Table(
    "territory_move",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batch_id", BigInteger, ForeignKey("planning_batch.id"), nullable=False, index=True),
    Column("object_kind", String(8), nullable=False),
    Column("object_id", Text, nullable=False),
    Column("from_grid", String(GRID_DIGITS)),
    Column("to_grid", String(GRID_DIGITS)),
    CheckConstraint("object_kind IN ('address','entity','task','clue','worker')", name="object_kind"),
)

# A city's own settings of the workload standards, over the packaged file's numbers (one row per setting, with who
# set it and why): today the monthly field capacity of one worker, which a city sets from its own time study, and
# which the synthetic demo city sets to its own scale.
workload_setting = Table(
    "workload_setting",
    metadata,
    Column("key", String(48), primary_key=True),
    Column("value", Float, nullable=False),
    Column("source", Text, nullable=False),
    Column("set_by", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("key IN ('field_hours_per_worker_month')", name="key"),
    CheckConstraint("value > 0", name="value"),
)
