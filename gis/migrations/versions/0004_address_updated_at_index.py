"""Index address.updated_at: the geocoder's change check reads max(updated_at) every few seconds.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the index."""
    op.create_index("ix_address_updated_at", "address", ["updated_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_address_updated_at", table_name="address")
