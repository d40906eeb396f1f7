"""planning: grid workload per version, drafts' provenance and figures, the audit of planning moves

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("grid_version", sa.Column("base_version_id", sa.Integer(), nullable=True))
    op.add_column("grid_version", sa.Column("area_code", sa.String(length=12), nullable=True))
    op.add_column("grid_version", sa.Column("created_by", sa.Text(), nullable=True))
    op.add_column("grid_version", sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("grid_version", sa.Column("fingerprint", sa.Text(), nullable=True))
    op.add_column("grid_version", sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("grid_version", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_grid_version_base_version_id_grid_version"), "grid_version", "grid_version", ["base_version_id"], ["id"]
    )
    op.create_table(
        "grid_workload",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("standards_version", sa.Text(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id", "grid_code"],
            ["grid.version_id", "grid.code"],
            name=op.f("fk_grid_workload_version_id_grid"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "grid_code", name=op.f("pk_grid_workload")),
    )
    op.create_table(
        "planning_batch",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("area_code", sa.String(length=12), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint(
            "kind IN ('staffing','grid_apply','grid_rollback','daily_assignment')", name=op.f("ck_planning_batch_kind")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["grid_version.id"], name=op.f("fk_planning_batch_version_id_grid_version")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planning_batch")),
    )
    op.create_index(op.f("ix_planning_batch_kind"), "planning_batch", ["kind"], unique=False)
    op.create_table(
        "territory_move",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("object_kind", sa.String(length=8), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("from_grid", sa.String(length=15), nullable=True),
        sa.Column("to_grid", sa.String(length=15), nullable=True),
        sa.CheckConstraint(
            "object_kind IN ('address','entity','task','clue','worker')", name=op.f("ck_territory_move_object_kind")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["planning_batch.id"], name=op.f("fk_territory_move_batch_id_planning_batch")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_territory_move")),
    )
    op.create_index(op.f("ix_territory_move_batch_id"), "territory_move", ["batch_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_territory_move_batch_id"), table_name="territory_move")
    op.drop_table("territory_move")
    op.drop_index(op.f("ix_planning_batch_kind"), table_name="planning_batch")
    op.drop_table("planning_batch")
    op.drop_table("grid_workload")
    op.drop_constraint(op.f("fk_grid_version_base_version_id_grid_version"), "grid_version", type_="foreignkey")
    for column in ("retired_at", "activated_at", "fingerprint", "figures", "created_by", "area_code", "base_version_id"):
        op.drop_column("grid_version", column)
