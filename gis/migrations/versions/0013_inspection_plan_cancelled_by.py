"""planning: who cancelled an inspection plan, kept apart from its published reason

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inspection_plan", sa.Column("cancelled_by", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("inspection_plan", "cancelled_by")
