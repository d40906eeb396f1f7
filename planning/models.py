"""planning.models: grid workload figures per version, and the audit of what a plan moved (staffing, grid versions).

`grid_version` itself (grids.models) gains, for drafts, the version it was drawn from, the area it redraws, its
figures and the fingerprint of the data it was drawn on (migration 0010): a draft whose fingerprint no longer matches
is stale and is refused at apply.
"""

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
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gis.distribution import city_code_column
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
    city_code_column(),
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

# ------------------------------------------------------------------ inspection planning (双随机、一公开, issue 16)
# 一单两库: each department's inspection items (the 抽查事项清单) and its inspectors (执法检查人员名录). The third
# list, the target directory, is not stored: it is the registered entities an item applies to, read when needed,
# so new, changed and closed entities follow without a manual step.
inspection_item = Table(
    "inspection_item",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("code", String(48), nullable=False, unique=True),
    Column("department_code", String(32), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("basis", Text, nullable=False),
    # 重点检查事项 (key) are never capped; 一般检查事项 (general) keep the class ratios within their bounds.
    Column("key", Boolean, nullable=False, server_default="false"),
    # Which entities the item applies to: their kinds, industries (any of these words; empty: every industry), and
    # whether only entities whose scope needs a licence.
    Column("entity_kinds", ARRAY(String(12)), nullable=False, server_default="{company,individual}"),
    Column("industries", ARRAY(Text), nullable=False, server_default="{}"),
    Column("licence_only", Boolean, nullable=False, server_default="false"),
    Column("service_minutes", Integer, nullable=False, server_default="30"),
    Column("source", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("service_minutes BETWEEN 1 AND 480", name="service_minutes"),
)

inspector = Table(
    "inspector",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("department_code", String(32), nullable=False, index=True),
    Column("name", Text, nullable=False),
    # The item codes this inspector is qualified for.
    Column("qualifications", ARRAY(String(48)), nullable=False, server_default="{}"),
    Column("home_grid_code", String(GRID_DIGITS)),
    Column("office_name", Text, nullable=False),
    Column("office_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    # Declared conflicts of interest: the credit codes of entities this inspector must never be sent to.
    Column("conflicts", ARRAY(String(18)), nullable=False, server_default="{}"),
    Column("load_cap", Integer),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("username", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("load_cap IS NULL OR load_cap > 0", name="load_cap"),
)

# What a credit class is computed from, beside the entity's own state (annual report, licences): inspection findings,
# penalties, substantiated clues and hotline reports; open until resolved.
credit_record = Table(
    "credit_record",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("uscc", String(18), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_id", Text),
    Column("department_code", String(32)),
    Column("detail", Text, nullable=False, server_default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("recorded_by", Text, nullable=False),
    CheckConstraint("kind IN ('finding','penalty','clue','hotline')", name="kind"),
    CheckConstraint("source IN ('inspection','task','clue','import')", name="source"),
    UniqueConstraint("source", "source_id", "kind", "city_code", name="uq_credit_record_source"),
    ForeignKeyConstraint(
        ["uscc", "city_code"],
        ["entity.uscc", "entity.city_code"],
        ondelete="CASCADE",
        name="fk_credit_record_uscc_entity",
    ),
)

# Every computed class with its reasons (the history); entity.credit_class holds the latest. Internal: never published.
credit_assessment = Table(
    "credit_assessment",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("uscc", String(18), nullable=False),
    Column("credit_class", String(1), nullable=False),
    Column("previous_class", String(1)),
    Column("reasons", JSONB, nullable=False),
    Column("rules_version", Text, nullable=False),
    Column("run_id", BigInteger, ForeignKey("job_run.id")),
    Column("assessed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("credit_class IN ('A','B','C','D')", name="credit_class"),
    ForeignKeyConstraint(
        ["uscc", "city_code"],
        ["entity.uscc", "entity.city_code"],
        ondelete="CASCADE",
        name="fk_credit_assessment_uscc_entity",
    ),
)
Index("ix_credit_assessment_uscc_at", credit_assessment.c.uscc, credit_assessment.c.assessed_at.desc())

# A city's own sampling ratios per credit class, for one item or for every item ('*'), over the packaged rules.
inspection_ratio_setting = Table(
    "inspection_ratio_setting",
    metadata,
    Column("item_code", String(48), primary_key=True),
    Column("credit_class", String(1), primary_key=True),
    Column("ratio", Numeric(6, 5), nullable=False),
    Column("source", Text, nullable=False),
    Column("set_by", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("credit_class IN ('A','B','C','D')", name="credit_class"),
    CheckConstraint("ratio > 0 AND ratio <= 1", name="ratio"),
)

# A double-random plan: its candidates are fixed and its commitment published before the draw (status committed);
# the draw with the announced public value reveals the server seed (drawn). The server seed stays secret until then.
inspection_plan = Table(
    "inspection_plan",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("department_codes", ARRAY(String(32)), nullable=False),
    Column("item_codes", ARRAY(String(48)), nullable=False),
    Column("area", JSONB, nullable=False),
    Column("area_geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
    Column("town_codes", ARRAY(String(12)), nullable=False),
    Column("status", String(12), nullable=False),
    Column("server_seed", LargeBinary, nullable=False),
    Column("commitment", String(64), nullable=False),
    Column("candidates_sha256", String(64), nullable=False),
    Column("candidate_count", Integer, nullable=False),
    Column("public_value_source", Text, nullable=False),
    Column("public_value_at", DateTime(timezone=True), nullable=False),
    Column("public_value", Text),
    Column("seed", String(64)),
    Column("load_cap", Integer, nullable=False),
    Column("publish_days", Integer, nullable=False, server_default="20"),
    Column("visit_date", Date),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("drawn_by", Text),
    Column("drawn_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    # The account that cancelled (credentialed answers only: the reason is published, the canceller is not).
    Column("cancelled_by", Text),
    CheckConstraint("status IN ('committed','drawn','cancelled')", name="status"),
    CheckConstraint("load_cap > 0", name="load_cap"),
    CheckConstraint("publish_days BETWEEN 0 AND 60", name="publish_days"),
)

# A stratum is one credit class × one item. Its public id never names the class (the class is internal).
inspection_stratum = Table(
    "inspection_stratum",
    metadata,
    Column("plan_id", BigInteger, ForeignKey("inspection_plan.id", ondelete="CASCADE"), primary_key=True),
    Column("stratum_id", String(64), primary_key=True),
    Column("item_code", String(48), nullable=False),
    Column("credit_class", String(1), nullable=False),
    Column("ratio", Numeric(6, 5), nullable=False),
    Column("size", Integer, nullable=False),
    Column("n", Integer, nullable=False),
)

inspection_candidate = Table(
    "inspection_candidate",
    metadata,
    Column("plan_id", BigInteger, primary_key=True),
    Column("stratum_id", String(64), primary_key=True),
    Column("uscc", String(18), primary_key=True),
    city_code_column(),
    Column("selected", Boolean, nullable=False, server_default="false"),
    ForeignKeyConstraint(
        ["plan_id", "stratum_id"],
        ["inspection_stratum.plan_id", "inspection_stratum.stratum_id"],
        ondelete="CASCADE",
    ),
)

# A team of inspectors (at least two, covering the departments of its visits), formed from the draw's seed.
inspection_team = Table(
    "inspection_team",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("plan_id", BigInteger, ForeignKey("inspection_plan.id", ondelete="CASCADE"), nullable=False),
    Column("team_no", Integer, nullable=False),
    Column("department_codes", ARRAY(String(32)), nullable=False),
    Column("inspector_ids", ARRAY(BigInteger), nullable=False),
    Column("office_name", Text, nullable=False),
    Column("office_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    UniqueConstraint("plan_id", "team_no", name="uq_inspection_team_no"),
)

# One entity drawn for one or more items (of one or more departments): one visit, one team (进一次门、查多项事).
inspection_visit = Table(
    "inspection_visit",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("plan_id", BigInteger, ForeignKey("inspection_plan.id", ondelete="CASCADE"), nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
    Column("town_code", String(12)),
    Column("grid_code", String(GRID_DIGITS)),
    Column("item_codes", ARRAY(String(48)), nullable=False),
    Column("department_codes", ARRAY(String(32)), nullable=False),
    Column("team_id", BigInteger, ForeignKey("inspection_team.id", ondelete="SET NULL"), index=True),
    Column("unmatched_reason", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    # Business hours, minutes after midnight, and the time the visit takes (the sum of its items' service minutes).
    Column("window_start", Integer, nullable=False),
    Column("window_end", Integer, nullable=False),
    Column("service_minutes", Integer, nullable=False),
    Column("status", String(12), nullable=False, server_default="planned"),
    CheckConstraint("status IN ('planned','done')", name="status"),
    CheckConstraint("window_start >= 0 AND window_end <= 1440 AND window_start < window_end", name="window"),
    UniqueConstraint("plan_id", "uscc", "city_code", name="uq_inspection_visit_entity"),
    ForeignKeyConstraint(
        ["uscc", "city_code"], ["entity.uscc", "entity.city_code"], name="fk_inspection_visit_uscc_entity"
    ),
)

# A team's day: its visits in order, from its office and back, with the times the solver planned.
inspection_route = Table(
    "inspection_route",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("plan_id", BigInteger, ForeignKey("inspection_plan.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("team_id", BigInteger, ForeignKey("inspection_team.id", ondelete="CASCADE"), nullable=False),
    Column("day", Integer, nullable=False),
    Column("visit_ids", ARRAY(BigInteger), nullable=False),
    Column("steps", JSONB, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("distance_m", Integer, nullable=False),
    Column("travel_source", String(12), nullable=False),
    Column("manual", Boolean, nullable=False, server_default="false"),
    Column("solved_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("travel_source IN ('road','straight','matrix')", name="travel_source"),
    UniqueConstraint("team_id", "day", name="uq_inspection_route_day"),
)

# What the inspectors found, per item of a visit; published (entity name, credit code, item, outcome) by publish_due.
inspection_result = Table(
    "inspection_result",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("visit_id", BigInteger, nullable=False),
    Column("item_code", String(48), nullable=False),
    Column("outcome", String(12), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("task_id", BigInteger),
    Column("publish_due", Date, nullable=False),
    Column("published_at", DateTime(timezone=True)),
    CheckConstraint("outcome IN ('ok','problem','not_found')", name="outcome"),
    UniqueConstraint("visit_id", "item_code", "city_code", name="uq_inspection_result_item"),
    ForeignKeyConstraint(
        ["visit_id", "city_code"],
        ["inspection_visit.id", "inspection_visit.city_code"],
        ondelete="CASCADE",
        name="fk_inspection_result_visit_id_inspection_visit",
    ),
    ForeignKeyConstraint(
        ["task_id", "city_code"], ["task.id", "task.city_code"], name="fk_inspection_result_task_id_task"
    ),
)
