"""address library: aliases start in the resolver's community, are promoted, traced and withdrawn

Every existing alias was taught city-wide by one resolution: it becomes an active alias of its address's community
(the safe default); the command centre promotes the ones the whole city should use. Each is recorded as taught once
in the new teaching history.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_address_alias", "address_alias", type_="primary")
    op.execute("ALTER TABLE address_alias ADD COLUMN id BIGSERIAL NOT NULL")
    op.create_primary_key("pk_address_alias", "address_alias", ["id"])
    op.add_column("address_alias", sa.Column("scope", sa.String(9), server_default="community", nullable=False))
    op.add_column("address_alias", sa.Column("community_code", sa.String(12), nullable=True))
    op.add_column("address_alias", sa.Column("state", sa.String(9), server_default="active", nullable=False))
    op.add_column("address_alias", sa.Column("taught_by", sa.Text(), nullable=True))
    op.add_column("address_alias", sa.Column("review_item_id", sa.BigInteger(), nullable=True))
    op.add_column("address_alias", sa.Column("promoted_by", sa.Text(), nullable=True))
    op.add_column("address_alias", sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("address_alias", sa.Column("promote_reason", sa.Text(), nullable=True))
    op.add_column("address_alias", sa.Column("withdrawn_by", sa.Text(), nullable=True))
    op.add_column("address_alias", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("address_alias", sa.Column("withdraw_reason", sa.Text(), nullable=True))
    op.add_column(
        "address_alias",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.execute(
        "UPDATE address_alias al SET community_code = a.community_code, taught_by = al.created_by, "
        "updated_at = al.created_at FROM address a WHERE a.id = al.address_id"
    )
    op.create_foreign_key(
        op.f("fk_address_alias_community_code_community"), "address_alias", "community", ["community_code"], ["code"]
    )
    op.create_check_constraint(op.f("ck_address_alias_scope"), "address_alias", "scope IN ('community','city')")
    op.create_check_constraint(
        op.f("ck_address_alias_state"), "address_alias", "state IN ('active','suspended','withdrawn')"
    )
    op.create_check_constraint(
        op.f("ck_address_alias_scoped"), "address_alias", "scope = 'city' OR community_code IS NOT NULL"
    )
    op.create_index(
        "uq_address_alias_live_text",
        "address_alias",
        ["normalized_text"],
        unique=True,
        postgresql_where=sa.text("state <> 'withdrawn'"),
    )
    op.create_index(op.f("ix_address_alias_updated_at"), "address_alias", ["updated_at"], unique=False)
    op.create_table(
        "address_alias_teaching",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alias_id", sa.BigInteger(), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(9), nullable=False),
        sa.Column("taught_by", sa.Text(), nullable=False),
        sa.Column("review_item_id", sa.BigInteger(), nullable=True),
        sa.Column("community_code", sa.String(12), nullable=True),
        sa.Column("taught_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('taught','confirmed','conflict')", name=op.f("ck_address_alias_teaching_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["alias_id"], ["address_alias.id"], name=op.f("fk_address_alias_teaching_alias_id_address_alias")
        ),
        sa.ForeignKeyConstraint(
            ["address_id"], ["address.id"], name=op.f("fk_address_alias_teaching_address_id_address")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_alias_teaching")),
    )
    op.create_index(op.f("ix_address_alias_teaching_alias_id"), "address_alias_teaching", ["alias_id"], unique=False)
    op.execute(
        "INSERT INTO address_alias_teaching (alias_id, address_id, outcome, taught_by, community_code, taught_at) "
        "SELECT id, address_id, 'taught', created_by, community_code, created_at FROM address_alias"
    )


def downgrade() -> None:
    op.drop_table("address_alias_teaching")
    op.execute("DELETE FROM address_alias WHERE state = 'withdrawn'")
    op.drop_index(op.f("ix_address_alias_updated_at"), table_name="address_alias")
    op.drop_index("uq_address_alias_live_text", table_name="address_alias")
    op.drop_constraint(op.f("ck_address_alias_scoped"), "address_alias", type_="check")
    op.drop_constraint(op.f("ck_address_alias_state"), "address_alias", type_="check")
    op.drop_constraint(op.f("ck_address_alias_scope"), "address_alias", type_="check")
    op.drop_constraint(op.f("fk_address_alias_community_code_community"), "address_alias", type_="foreignkey")
    op.drop_constraint("pk_address_alias", "address_alias", type_="primary")
    for column in ("updated_at", "withdraw_reason", "withdrawn_at", "withdrawn_by", "promote_reason", "promoted_at",
                   "promoted_by", "review_item_id", "taught_by", "state", "community_code", "scope", "id"):  # fmt: skip
        op.drop_column("address_alias", column)
    op.create_primary_key("pk_address_alias", "address_alias", ["normalized_text"])
