"""supervision: the sender of every registration event, event ids unique per sender

Every registration event records who sent it (`sender`: the principal's stable owner reference, `key#12` or
`user#5`; `system` for the events loaded by the CLI, the demo and before this revision) and how the audit trail
names them (`sender_name`, e.g. `key:登记系统`). The sender's own id is `source_event_id`, unique per sender; the
stored `event_id` (what tasks and review items refer to) is the source id itself for `system` and the source id
prefixed with the sender (`key#12/E1`) for everyone else, so one client can no longer pre-claim another's ids.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Room for the sender's prefix in front of a 64-character source id (`user#<19 digits>/…`).
    op.alter_column("registration_event", "event_id", type_=sa.String(100), existing_type=sa.String(64))
    op.alter_column("task", "event_id", type_=sa.String(100), existing_type=sa.String(64))
    op.add_column("registration_event", sa.Column("sender", sa.Text(), nullable=False, server_default="system"))
    op.add_column("registration_event", sa.Column("sender_name", sa.Text(), nullable=False, server_default="system"))
    op.add_column("registration_event", sa.Column("source_event_id", sa.String(64), nullable=True))
    op.execute("UPDATE registration_event SET source_event_id = event_id")
    op.alter_column("registration_event", "source_event_id", nullable=False)
    # Every new event states its sender.
    op.alter_column("registration_event", "sender", server_default=None)
    op.alter_column("registration_event", "sender_name", server_default=None)
    op.create_unique_constraint(
        op.f("uq_registration_event_sender"), "registration_event", ["sender", "source_event_id"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_registration_event_sender"), "registration_event", type_="unique")
    op.drop_column("registration_event", "source_event_id")
    op.drop_column("registration_event", "sender_name")
    op.drop_column("registration_event", "sender")
    op.alter_column("task", "event_id", type_=sa.String(64), existing_type=sa.String(100))
    op.alter_column("registration_event", "event_id", type_=sa.String(64), existing_type=sa.String(100))
