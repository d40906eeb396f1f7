"""planning: a city's own settings of the workload standards (the monthly field capacity of one worker)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workload_setting",
        sa.Column("key", sa.String(length=48), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("key IN ('field_hours_per_worker_month')", name=op.f("ck_workload_setting_key")),
        sa.CheckConstraint("value > 0", name=op.f("ck_workload_setting_value")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_workload_setting")),
    )


def downgrade() -> None:
    op.drop_table("workload_setting")
