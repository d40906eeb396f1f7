"""credentials: API key permissions and event kinds, token versions, disabled accounts, login throttling

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Least privilege on upgrade: a hotline key keeps its Open311 requests, every other key only geocodes (operators
    # grant what a key needs with `gridgov apikey grant PREFIX --permission P`, or re-create it).
    op.add_column(
        "api_key",
        sa.Column("permissions", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{geocode}"),
    )
    op.add_column("api_key", sa.Column("event_kinds", postgresql.ARRAY(sa.Text()), nullable=True))
    op.execute("UPDATE api_key SET permissions = '{hotline}' WHERE role = 'hotline'")
    op.create_check_constraint(
        op.f("ck_api_key_permissions"),
        "api_key",
        "cardinality(permissions) >= 1 AND permissions <@ ARRAY['geocode','gis','hotline','intake']::text[]",
    )
    op.create_check_constraint(
        op.f("ck_api_key_event_kinds"), "api_key", "event_kinds IS NULL OR 'intake' = ANY(permissions)"
    )
    # Bumped by a password reset, a disable and a bearer's own revocation: a token of an older version is refused.
    op.add_column("app_user", sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
    # Failed sign-ins per account (`user:<name>`) and per client address (`addr:<ip>`): shared by every process.
    op.create_table(
        "login_throttle",
        sa.Column("subject", sa.Text(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_column("app_user", "token_version")
    op.drop_constraint(op.f("ck_api_key_event_kinds"), "api_key", type_="check")
    op.drop_constraint(op.f("ck_api_key_permissions"), "api_key", type_="check")
    op.drop_column("api_key", "event_kinds")
    op.drop_column("api_key", "permissions")
