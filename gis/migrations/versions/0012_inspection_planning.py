"""planning: inspection planning (双随机、一公开): items, inspectors, credit records and classes, plans, strata,
candidates, teams, visits, routes and results

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inspection_item",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("key", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "entity_kinds",
            postgresql.ARRAY(sa.String(length=12)),
            server_default="{company,individual}",
            nullable=False,
        ),
        sa.Column("industries", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("licence_only", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("service_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("service_minutes BETWEEN 1 AND 480", name=op.f("ck_inspection_item_service_minutes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_item")),
        sa.UniqueConstraint("code", name=op.f("uq_inspection_item_code")),
    )
    op.create_index(op.f("ix_inspection_item_department_code"), "inspection_item", ["department_code"], unique=False)
    op.create_geospatial_table(
        "inspection_plan",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("department_codes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("item_codes", postgresql.ARRAY(sa.String(length=48)), nullable=False),
        sa.Column("area", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "area_geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("town_codes", postgresql.ARRAY(sa.String(length=12)), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("server_seed", sa.LargeBinary(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("candidates_sha256", sa.String(length=64), nullable=False),
        sa.Column("candidate_count", sa.Integer(), nullable=False),
        sa.Column("public_value_source", sa.Text(), nullable=False),
        sa.Column("public_value_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_value", sa.Text(), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("load_cap", sa.Integer(), nullable=False),
        sa.Column("publish_days", sa.Integer(), server_default="20", nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.Text(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('committed','drawn','cancelled')", name=op.f("ck_inspection_plan_status")),
        sa.CheckConstraint("load_cap > 0", name=op.f("ck_inspection_plan_load_cap")),
        sa.CheckConstraint("publish_days BETWEEN 0 AND 60", name=op.f("ck_inspection_plan_publish_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_plan")),
    )
    op.create_table(
        "inspection_ratio_setting",
        sa.Column("item_code", sa.String(length=48), nullable=False),
        sa.Column("credit_class", sa.String(length=1), nullable=False),
        sa.Column("ratio", sa.Numeric(precision=6, scale=5), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("credit_class IN ('A','B','C','D')", name=op.f("ck_inspection_ratio_setting_credit_class")),
        sa.CheckConstraint("ratio > 0 AND ratio <= 1", name=op.f("ck_inspection_ratio_setting_ratio")),
        sa.PrimaryKeyConstraint("item_code", "credit_class", name=op.f("pk_inspection_ratio_setting")),
    )
    op.create_geospatial_table(
        "inspector",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("qualifications", postgresql.ARRAY(sa.String(length=48)), server_default="{}", nullable=False),
        sa.Column("home_grid_code", sa.String(length=15), nullable=True),
        sa.Column("office_name", sa.Text(), nullable=False),
        sa.Column(
            "office_geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("conflicts", postgresql.ARRAY(sa.String(length=18)), server_default="{}", nullable=False),
        sa.Column("load_cap", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("load_cap IS NULL OR load_cap > 0", name=op.f("ck_inspector_load_cap")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector")),
        sa.UniqueConstraint("code", name=op.f("uq_inspector_code")),
    )
    op.create_index(op.f("ix_inspector_department_code"), "inspector", ["department_code"], unique=False)
    op.create_table(
        "inspection_stratum",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("stratum_id", sa.String(length=64), nullable=False),
        sa.Column("item_code", sa.String(length=48), nullable=False),
        sa.Column("credit_class", sa.String(length=1), nullable=False),
        sa.Column("ratio", sa.Numeric(precision=6, scale=5), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["inspection_plan.id"],
            name=op.f("fk_inspection_stratum_plan_id_inspection_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "stratum_id", name=op.f("pk_inspection_stratum")),
    )
    op.create_geospatial_table(
        "inspection_team",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("team_no", sa.Integer(), nullable=False),
        sa.Column("department_codes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("inspector_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("office_name", sa.Text(), nullable=False),
        sa.Column(
            "office_geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["inspection_plan.id"],
            name=op.f("fk_inspection_team_plan_id_inspection_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_team")),
        sa.UniqueConstraint("plan_id", "team_no", name="uq_inspection_team_no"),
    )
    op.create_table(
        "inspection_candidate",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("stratum_id", sa.String(length=64), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("selected", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id", "stratum_id"],
            ["inspection_stratum.plan_id", "inspection_stratum.stratum_id"],
            name=op.f("fk_inspection_candidate_plan_id_inspection_stratum"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "stratum_id", "uscc", name=op.f("pk_inspection_candidate")),
    )
    op.create_table(
        "inspection_route",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("visit_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("travel_source", sa.String(length=12), nullable=False),
        sa.Column("manual", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "travel_source IN ('road','straight','matrix')", name=op.f("ck_inspection_route_travel_source")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["inspection_plan.id"],
            name=op.f("fk_inspection_route_plan_id_inspection_plan"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["inspection_team.id"],
            name=op.f("fk_inspection_route_team_id_inspection_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_route")),
        sa.UniqueConstraint("team_id", "day", name="uq_inspection_route_day"),
    )
    op.create_index(op.f("ix_inspection_route_plan_id"), "inspection_route", ["plan_id"], unique=False)
    op.create_table(
        "credit_assessment",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("credit_class", sa.String(length=1), nullable=False),
        sa.Column("previous_class", sa.String(length=1), nullable=True),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rules_version", sa.Text(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credit_class IN ('A','B','C','D')", name=op.f("ck_credit_assessment_credit_class")),
        sa.ForeignKeyConstraint(["run_id"], ["job_run.id"], name=op.f("fk_credit_assessment_run_id_job_run")),
        sa.ForeignKeyConstraint(
            ["uscc"], ["entity.uscc"], name=op.f("fk_credit_assessment_uscc_entity"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_assessment")),
    )
    op.create_index(
        "ix_credit_assessment_uscc_at",
        "credit_assessment",
        ["uscc", sa.literal_column("assessed_at DESC")],
        unique=False,
    )
    op.create_table(
        "credit_record",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('finding','penalty','clue','hotline')", name=op.f("ck_credit_record_kind")),
        sa.CheckConstraint("source IN ('inspection','task','clue','import')", name=op.f("ck_credit_record_source")),
        sa.ForeignKeyConstraint(
            ["uscc"], ["entity.uscc"], name=op.f("fk_credit_record_uscc_entity"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_record")),
        sa.UniqueConstraint("source", "source_id", "kind", name="uq_credit_record_source"),
    )
    op.create_index(op.f("ix_credit_record_uscc"), "credit_record", ["uscc"], unique=False)
    op.create_geospatial_table(
        "inspection_visit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("town_code", sa.String(length=12), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("item_codes", postgresql.ARRAY(sa.String(length=48)), nullable=False),
        sa.Column("department_codes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("unmatched_reason", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("window_end", sa.Integer(), nullable=False),
        sa.Column("service_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="planned", nullable=False),
        sa.CheckConstraint("status IN ('planned','done')", name=op.f("ck_inspection_visit_status")),
        sa.CheckConstraint(
            "window_start >= 0 AND window_end <= 1440 AND window_start < window_end",
            name=op.f("ck_inspection_visit_window"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["inspection_plan.id"],
            name=op.f("fk_inspection_visit_plan_id_inspection_plan"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["inspection_team.id"],
            name=op.f("fk_inspection_visit_team_id_inspection_team"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["uscc"], ["entity.uscc"], name=op.f("fk_inspection_visit_uscc_entity")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_visit")),
        sa.UniqueConstraint("plan_id", "uscc", name="uq_inspection_visit_entity"),
    )
    op.create_index(op.f("ix_inspection_visit_team_id"), "inspection_visit", ["team_id"], unique=False)
    op.create_index(op.f("ix_inspection_visit_uscc"), "inspection_visit", ["uscc"], unique=False)
    op.create_table(
        "inspection_result",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=False),
        sa.Column("item_code", sa.String(length=48), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("publish_due", sa.Date(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("outcome IN ('ok','problem','not_found')", name=op.f("ck_inspection_result_outcome")),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_inspection_result_task_id_task")),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["inspection_visit.id"],
            name=op.f("fk_inspection_result_visit_id_inspection_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_result")),
        sa.UniqueConstraint("visit_id", "item_code", name="uq_inspection_result_item"),
    )


def downgrade() -> None:
    op.drop_table("inspection_result")
    op.drop_index(op.f("ix_inspection_visit_uscc"), table_name="inspection_visit")
    op.drop_index(op.f("ix_inspection_visit_team_id"), table_name="inspection_visit")
    op.drop_geospatial_table("inspection_visit")
    op.drop_index(op.f("ix_credit_record_uscc"), table_name="credit_record")
    op.drop_table("credit_record")
    op.drop_index("ix_credit_assessment_uscc_at", table_name="credit_assessment")
    op.drop_table("credit_assessment")
    op.drop_index(op.f("ix_inspection_route_plan_id"), table_name="inspection_route")
    op.drop_table("inspection_route")
    op.drop_table("inspection_candidate")
    op.drop_geospatial_table("inspection_team")
    op.drop_table("inspection_stratum")
    op.drop_index(op.f("ix_inspector_department_code"), table_name="inspector")
    op.drop_geospatial_table("inspector")
    op.drop_table("inspection_ratio_setting")
    op.drop_geospatial_table("inspection_plan")
    op.drop_index(op.f("ix_inspection_item_department_code"), table_name="inspection_item")
    op.drop_table("inspection_item")
