"""user permissions: an api_client account may do only what it is granted, like an API key

An account of the api_client role had every capability of its role (sending registrations among them), while a key of
the same role is limited to its permissions. Accounts of that role now carry `permissions` too (geocoding only unless
granted more: `gridgov users grant NAME --permission P`); every other role's accounts carry none (NULL). Existing
api_client accounts get `{geocode}`: least privilege on upgrade, as for keys in 0014.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as api.auth.models.USER_PERMISSIONS_CHECK.
USER_PERMISSIONS_CHECK = (
    "(role = 'api_client') = (permissions IS NOT NULL) AND (permissions IS NULL OR "
    "(cardinality(permissions) >= 1 AND permissions <@ ARRAY['geocode','gis','intake']::text[]))"
)


def upgrade() -> None:
    op.add_column("app_user", sa.Column("permissions", postgresql.ARRAY(sa.Text()), nullable=True))
    op.execute("UPDATE app_user SET permissions = '{geocode}' WHERE role = 'api_client'")
    op.create_check_constraint(op.f("ck_app_user_permissions"), "app_user", USER_PERMISSIONS_CHECK)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_app_user_permissions"), "app_user", type_="check")
    op.drop_column("app_user", "permissions")
