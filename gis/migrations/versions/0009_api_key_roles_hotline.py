"""accounts: API keys carry a role and scope; the 12345 hotline role

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_ROLES = "role IN ('admin','command_centre','town_leader','dispatcher','grid_worker','department_officer','api_client')"
NEW_ROLES = (
    "role IN ('admin','command_centre','town_leader','dispatcher','grid_worker','department_officer','api_client',"
    "'hotline')"
)


def upgrade() -> None:
    op.add_column('api_key', sa.Column('role', sa.String(length=24), server_default='api_client', nullable=False))
    op.add_column('api_key', sa.Column('scope_code', sa.String(length=32), nullable=True))
    op.create_check_constraint(op.f('ck_api_key_role'), 'api_key', NEW_ROLES)
    op.drop_constraint(op.f('ck_app_user_role'), 'app_user', type_='check')
    op.create_check_constraint(op.f('ck_app_user_role'), 'app_user', NEW_ROLES)


def downgrade() -> None:
    op.execute("DELETE FROM app_user WHERE role = 'hotline'")
    op.drop_constraint(op.f('ck_app_user_role'), 'app_user', type_='check')
    op.create_check_constraint(op.f('ck_app_user_role'), 'app_user', OLD_ROLES)
    op.drop_constraint(op.f('ck_api_key_role'), 'api_key', type_='check')
    op.drop_column('api_key', 'scope_code')
    op.drop_column('api_key', 'role')
