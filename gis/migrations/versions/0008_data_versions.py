"""maps: data versions per group of tables and town, bumped by triggers, for the vector tile cache

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, group, how a row names its town): 'town_code' a column of that name, 'code' the town table's own code,
# 'all' a change that concerns every town (the active grid version).
WATCHED = (
    ("town", "territory", "code"),
    ("community", "territory", "town_code"),
    ("grid", "territory", "town_code"),
    ("worker", "territory", "town_code"),
    ("grid_version", "territory", "all"),
    ("entity", "entities", "town_code"),
    ("task", "tasks", "town_code"),
    ("clue", "clues", "town_code"),
)

# A statement notes the towns it touched (old and new rows alike) for its transaction; nothing is locked but the
# transaction's own rows of data_version_pending.
NOTE_FUNCTION = """
CREATE FUNCTION data_version_note() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' OR TG_ARGV[1] = 'all' THEN
        INSERT INTO data_version_pending (xact, layer_group, town_code)
        VALUES (txid_current(), TG_ARGV[0], '') ON CONFLICT DO NOTHING;
    ELSIF TG_ARGV[1] = 'code' THEN
        INSERT INTO data_version_pending (xact, layer_group, town_code)
        SELECT DISTINCT txid_current(), TG_ARGV[0], coalesce(r.code, '') FROM changed_rows r
        ON CONFLICT DO NOTHING;
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO data_version_pending (xact, layer_group, town_code)
            SELECT DISTINCT txid_current(), TG_ARGV[0], coalesce(r.code, '') FROM old_rows r
            ON CONFLICT DO NOTHING;
        END IF;
    ELSE
        INSERT INTO data_version_pending (xact, layer_group, town_code)
        SELECT DISTINCT txid_current(), TG_ARGV[0], coalesce(r.town_code, '') FROM changed_rows r
        ON CONFLICT DO NOTHING;
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO data_version_pending (xact, layer_group, town_code)
            SELECT DISTINCT txid_current(), TG_ARGV[0], coalesce(r.town_code, '') FROM old_rows r
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN NULL;
END
$fn$
"""

# At commit (deferred), the first firing bumps every counter the transaction noted, in one statement sorted by
# key: writers take those row locks in one order and only while committing, so they never deadlock on them.
FLUSH_FUNCTION = """
CREATE FUNCTION data_version_flush() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    WITH mine AS (
        DELETE FROM data_version_pending WHERE xact = txid_current() RETURNING layer_group, town_code
    )
    INSERT INTO data_version AS d (layer_group, town_code, version)
    SELECT DISTINCT layer_group, town_code, 1 FROM mine ORDER BY layer_group, town_code
    ON CONFLICT (layer_group, town_code) DO UPDATE SET version = d.version + 1;
    RETURN NULL;
END
$fn$
"""


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("layer_group", sa.Text(), nullable=False),
        sa.Column("town_code", sa.String(length=12), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("layer_group", "town_code", name=op.f("pk_data_version")),
    )
    op.create_table(
        "data_version_pending",
        sa.Column("xact", sa.BigInteger(), nullable=False),
        sa.Column("layer_group", sa.Text(), nullable=False),
        sa.Column("town_code", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("xact", "layer_group", "town_code", name=op.f("pk_data_version_pending")),
    )
    op.execute(NOTE_FUNCTION)
    op.execute(FLUSH_FUNCTION)
    op.execute(
        "CREATE CONSTRAINT TRIGGER data_version_flush AFTER INSERT ON data_version_pending "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION data_version_flush()"
    )
    for table, group, town in WATCHED:
        args = f"'{group}', '{town}'"
        if town == "all":
            op.execute(
                f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION data_version_note({args})"
            )
            continue
        op.execute(
            f"CREATE TRIGGER {table}_data_version_insert AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION data_version_note({args})"
        )
        op.execute(
            f"CREATE TRIGGER {table}_data_version_update AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION data_version_note({args})"
        )
        op.execute(
            f"CREATE TRIGGER {table}_data_version_delete AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION data_version_note({args})"
        )
        op.execute(
            f"CREATE TRIGGER {table}_data_version_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION data_version_note({args})"
        )


def downgrade() -> None:
    for table, _group, town in WATCHED:
        suffixes = ("",) if town == "all" else ("_insert", "_update", "_delete", "_truncate")
        for suffix in suffixes:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version{suffix} ON {table}")
    op.execute("DROP TRIGGER IF EXISTS data_version_flush ON data_version_pending")
    op.drop_table("data_version_pending")
    op.drop_table("data_version")
    op.execute("DROP FUNCTION IF EXISTS data_version_flush()")
    op.execute("DROP FUNCTION IF EXISTS data_version_note()")
