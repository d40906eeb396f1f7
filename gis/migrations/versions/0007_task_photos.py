"""supervision tasks: photos of an inspection

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('task_photo',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.Text(), nullable=True),
    sa.Column('uploaded_by', sa.Text(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_task_photo_task_id_task')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_photo'))
    )
    op.create_index(op.f('ix_task_photo_task_id'), 'task_photo', ['task_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_task_photo_task_id'), table_name='task_photo')
    op.drop_table('task_photo')
