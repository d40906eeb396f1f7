"""batch jobs owned by the principal's id, files with a retention period

Batch geocoding jobs were held in the serving process's memory, owned by the key's or user's display name (two keys
of the same name shared them), and their files stayed on disk forever. They now live in `geocode_batch_job`, owned by
the principal's stable reference (`key#12`, `user#5`), with the instant their files expire and the instant the
cleanup removed them. No job row existed before this revision, so there is nothing to carry over: files of jobs
from before it are removed by the cleanup once they are older than the retention period.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "geocode_batch_job",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("address_column", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("by_status", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued','running','done','failed')", name=op.f("ck_geocode_batch_job_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geocode_batch_job")),
    )
    op.create_index(op.f("ix_geocode_batch_job_owner"), "geocode_batch_job", ["owner"], unique=False)
    op.create_index(op.f("ix_geocode_batch_job_expires_at"), "geocode_batch_job", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_geocode_batch_job_expires_at"), table_name="geocode_batch_job")
    op.drop_index(op.f("ix_geocode_batch_job_owner"), table_name="geocode_batch_job")
    op.drop_table("geocode_batch_job")
