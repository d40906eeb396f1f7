"""address history: address.updated_at and one address_history row per add, retire, move or import

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:48:38.328720
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_geospatial_table('address_history',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('address_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('changed_by', sa.Text(), nullable=False),
    sa.Column('old_geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('new_geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('old_status', sa.String(length=8), nullable=True),
    sa.Column('new_status', sa.String(length=8), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("action IN ('add','retire','move','import')", name=op.f('ck_address_history_action')),
    sa.ForeignKeyConstraint(['address_id'], ['address.id'], name=op.f('fk_address_history_address_id_address')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_history'))
    )
    op.create_index(op.f('ix_address_history_address_id'), 'address_history', ['address_id'], unique=False)
    op.add_column('address', sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False))


def downgrade() -> None:
    op.drop_column('address', 'updated_at')
    op.drop_index(op.f('ix_address_history_address_id'), table_name='address_history')
    op.drop_geospatial_table('address_history')
