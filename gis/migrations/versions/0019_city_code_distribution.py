"""a database ready for Citus: city_code on the large tables, and keys that include it

The large tables (addresses, entities, tasks, the audit trail, clues, registrations and every table that references
them; gis.distribution classifies them all) carry `city_code`, the 6-digit prefecture code, NOT NULL and referencing
the new reference table `city`. Their primary keys, unique constraints and unique indexes, and the foreign keys
between them, include it: what Citus requires of tables distributed by `city_code` and co-located. It comes LAST in
every key (PRIMARY KEY (id, city_code), UNIQUE (full_text, city_code)): Citus accepts it in any position, and a key led
by city_code cannot serve `WHERE id = :x` (an address by id read the whole index, 1,153 pages on 300,000 addresses).

A new column `city_code` gets its value from `gridgov_city_code()` when an INSERT leaves it out: the single row of
`city`, or a clear error once the table holds several cities (then the caller must pass it). Existing rows take the
city of the row they reference (so that the foreign key holds), else of their town (`left(town_code, 6)`: town codes
are 12-digit and start with the city code), else the seeded city (441900). When every town belongs to the seeded city (every deployment so far), the
column is added with that constant as its default first, which PostgreSQL records without rewriting the table.

`road.id` and `address.road_id` become bigint, like every other id of these tables.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CITY_CODE = "441900"
CITY_NAME = "东莞市"

# The tables distributed by city_code, parents before children: (table, its key columns without city_code, and the
# (columns, parent, parent columns) its city is taken from when it has no town).
DISTRIBUTED: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, ...], str, tuple[str, ...]] | None], ...] = (
    ("address", ("id",), None),
    ("address_history", ("id",), (("address_id",), "address", ("id",))),
    ("address_alias", ("id",), (("address_id",), "address", ("id",))),
    ("address_alias_teaching", ("id",), (("address_id",), "address", ("id",))),
    ("entity", ("uscc",), (("address_id",), "address", ("id",))),
    ("entity_licence", ("id",), (("uscc",), "entity", ("uscc",))),
    ("clue", ("id",), None),
    ("clue_photo", ("id",), (("clue_id",), "clue", ("id",))),
    ("registration_event", ("event_id",), None),
    ("task", ("id",), (("entity_uscc",), "entity", ("uscc",))),
    ("task_event", ("id",), (("task_id",), "task", ("id",))),
    ("task_warning", ("id",), (("task_id",), "task", ("id",))),
    ("task_photo", ("id",), (("task_id",), "task", ("id",))),
    ("review_queue", ("id",), None),
    ("outbox", ("id",), None),
    ("credit_record", ("id",), (("uscc",), "entity", ("uscc",))),
    ("credit_assessment", ("id",), (("uscc",), "entity", ("uscc",))),
    ("inspection_candidate", ("plan_id", "stratum_id", "uscc"), (("uscc",), "entity", ("uscc",))),
    ("inspection_visit", ("id",), (("uscc",), "entity", ("uscc",))),
    ("inspection_result", ("id",), (("visit_id",), "inspection_visit", ("id",))),
    ("territory_move", ("id",), None),
)
WITH_TOWN = {"address", "entity", "clue", "registration_event", "task", "review_queue", "inspection_visit"}

# Foreign keys between distributed tables: (table, name, columns, referenced table, its columns, ON DELETE).
FOREIGN_KEYS: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...], str | None], ...] = (
    ("address", "fk_address_parent_id_address", ("parent_id",), "address", ("id",), None),
    ("address_history", "fk_address_history_address_id_address", ("address_id",), "address", ("id",), None),
    ("address_alias", "fk_address_alias_address_id_address", ("address_id",), "address", ("id",), None),
    (
        "address_alias_teaching",
        "fk_address_alias_teaching_alias_id_address_alias",
        ("alias_id",),
        "address_alias",
        ("id",),
        None,
    ),
    (
        "address_alias_teaching",
        "fk_address_alias_teaching_address_id_address",
        ("address_id",),
        "address",
        ("id",),
        None,
    ),
    ("entity", "fk_entity_address_id_address", ("address_id",), "address", ("id",), None),
    ("entity_licence", "fk_entity_licence_uscc_entity", ("uscc",), "entity", ("uscc",), "CASCADE"),
    ("clue_photo", "fk_clue_photo_clue_id_clue", ("clue_id",), "clue", ("id",), None),
    ("task", "fk_task_entity_uscc_entity", ("entity_uscc",), "entity", ("uscc",), None),
    ("task", "fk_task_clue_id_clue", ("clue_id",), "clue", ("id",), None),
    ("task", "fk_task_event_id_registration_event", ("event_id",), "registration_event", ("event_id",), None),
    ("task_event", "fk_task_event_task_id_task", ("task_id",), "task", ("id",), None),
    ("task_warning", "fk_task_warning_task_id_task", ("task_id",), "task", ("id",), None),
    ("task_photo", "fk_task_photo_task_id_task", ("task_id",), "task", ("id",), None),
    ("credit_record", "fk_credit_record_uscc_entity", ("uscc",), "entity", ("uscc",), "CASCADE"),
    ("credit_assessment", "fk_credit_assessment_uscc_entity", ("uscc",), "entity", ("uscc",), "CASCADE"),
    ("inspection_visit", "fk_inspection_visit_uscc_entity", ("uscc",), "entity", ("uscc",), None),
    (
        "inspection_result",
        "fk_inspection_result_visit_id_inspection_visit",
        ("visit_id",),
        "inspection_visit",
        ("id",),
        "CASCADE",
    ),
    ("inspection_result", "fk_inspection_result_task_id_task", ("task_id",), "task", ("id",), None),
)

# Unique constraints of distributed tables: (table, name, columns without city_code).
UNIQUE_CONSTRAINTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("address", "uq_address_full_text", ("full_text",)),
    ("registration_event", "uq_registration_event_sender", ("sender", "source_event_id")),
    ("task_warning", "uq_task_warning_step", ("task_id", "level", "due_at")),
    ("credit_record", "uq_credit_record_source", ("source", "source_id", "kind")),
    ("inspection_visit", "uq_inspection_visit_entity", ("plan_id", "uscc")),
    ("inspection_result", "uq_inspection_result_item", ("visit_id", "item_code")),
)

# Partial unique indexes of distributed tables: (table, name, columns without city_code, predicate).
UNIQUE_INDEXES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("task", "uq_task_event_duty", ("event_id", "duty"), "event_id IS NOT NULL"),
    ("task", "uq_task_campaign", ("entity_uscc", "duty", "campaign"), "campaign IS NOT NULL"),
    ("address_alias", "uq_address_alias_live_text", ("normalized_text",), "state <> 'withdrawn'"),
)

# The city is read once per transaction and kept in a transaction-local setting: a bulk INSERT pays about 1 µs a row
# for the default instead of about 7 µs for a query of `city` on every row (measured on 300,000 addresses). Any
# change to `city` forgets the kept value, so a transaction that adds a second city cannot default to the first.
CITY_FUNCTION = """
CREATE FUNCTION gridgov_city_code() RETURNS char(6) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kept text := current_setting('gridgov.city_code', true);
    only_code char(6);
    cities bigint;
BEGIN
    IF kept <> '' THEN
        RETURN kept;
    END IF;
    SELECT min(code), count(*) INTO only_code, cities FROM city;
    IF cities = 1 THEN
        PERFORM set_config('gridgov.city_code', only_code, true);
        RETURN only_code;
    END IF;
    RAISE EXCEPTION 'city_code must be given: the city table holds % cities', cities
        USING HINT = 'a deployment of several cities passes city_code on every insert into a distributed table';
END
$$;
CREATE FUNCTION gridgov_city_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('gridgov.city_code', '', true);
    RETURN NULL;
END
$$;
CREATE TRIGGER city_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON city
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_city_changed();
"""


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def _single_city() -> bool:
    """Whether every town (if any) belongs to the seeded city: then every row's city is that one."""
    others = op.get_bind().execute(
        sa.text("SELECT count(*) FROM town WHERE left(code, 6) <> :city"), {"city": CITY_CODE}
    )
    return others.scalar_one() == 0


def _add_city_code(single: bool) -> None:
    for table, _, parent in DISTRIBUTED:
        if single:
            # A constant default is recorded in the catalog: no table rewrite, no scan for NOT NULL.
            op.execute(f"ALTER TABLE {table} ADD COLUMN city_code char(6) NOT NULL DEFAULT '{CITY_CODE}'")
        else:
            op.execute(f"ALTER TABLE {table} ADD COLUMN city_code char(6)")
            # The referenced row's city first, so that the foreign key holds; then the row's own town.
            if parent is not None:
                columns, parent_table, parent_columns = parent
                match = " AND ".join(f"c.{c} = p.{pc}" for c, pc in zip(columns, parent_columns, strict=True))
                from_parent = f"UPDATE {table} c SET city_code = p.city_code FROM {parent_table} p WHERE "  # noqa: S608
                op.execute(f"{from_parent}{match}")
            from_town = f"UPDATE {table} SET city_code = left(town_code, 6) WHERE city_code IS NULL AND "  # noqa: S608
            if table in WITH_TOWN:
                op.execute(f"{from_town}town_code IS NOT NULL")
            seeded = f"UPDATE {table} SET city_code = '{CITY_CODE}' WHERE city_code IS NULL"  # noqa: S608
            op.execute(seeded)
            op.execute(f"ALTER TABLE {table} ALTER COLUMN city_code SET NOT NULL")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN city_code SET DEFAULT gridgov_city_code()")
        op.create_foreign_key(f"fk_{table}_city_code_city", table, "city", ["city_code"], ["code"])


def _drop_keys() -> None:
    for table, name, *_ in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    for table, name, _ in UNIQUE_CONSTRAINTS:
        op.drop_constraint(name, table, type_="unique")
    for table, name, *_ in UNIQUE_INDEXES:
        op.drop_index(name, table_name=table)
    for table, _, _ in DISTRIBUTED:
        op.drop_constraint(f"pk_{table}", table, type_="primary")


def _create_keys(tail: tuple[str, ...]) -> None:
    """The keys with `tail` (city_code, or nothing on downgrade) after their own columns: a key led by its own columns
    serves lookups by them (`WHERE id = :x`) without the city."""
    for table, key, _ in DISTRIBUTED:
        op.create_primary_key(f"pk_{table}", table, [*key, *tail])
    for table, name, columns in UNIQUE_CONSTRAINTS:
        op.create_unique_constraint(name, table, [*columns, *tail])
    for table, name, columns, where in UNIQUE_INDEXES:
        op.create_index(name, table, [*columns, *tail], unique=True, postgresql_where=sa.text(where))
    for table, name, columns, target, target_columns, ondelete in FOREIGN_KEYS:
        op.create_foreign_key(name, table, target, [*columns, *tail], [*target_columns, *tail], ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "city",
        sa.Column("code", sa.CHAR(6), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_city")),
        sa.UniqueConstraint("name", name=op.f("uq_city_name")),
    )
    op.execute(
        sa.text("INSERT INTO city (code, name) VALUES (:code, :name)").bindparams(code=CITY_CODE, name=CITY_NAME)
    )
    single = _single_city()
    if not single:
        # Towns of other cities: each city of a town becomes a row (named by its code until renamed).
        op.execute(
            "INSERT INTO city (code, name) SELECT DISTINCT left(code, 6), left(code, 6) FROM town "
            "ON CONFLICT DO NOTHING"
        )
    op.execute(CITY_FUNCTION)
    _add_city_code(single)
    _drop_keys()
    _create_keys(("city_code",))
    op.alter_column("address", "road_id", type_=sa.BigInteger(), existing_type=sa.Integer())
    op.alter_column("road", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
    op.execute("ALTER SEQUENCE IF EXISTS road_id_seq AS bigint")


def downgrade() -> None:
    op.execute("ALTER SEQUENCE IF EXISTS road_id_seq AS integer")
    op.alter_column("road", "id", type_=sa.Integer(), existing_type=sa.BigInteger())
    op.alter_column("address", "road_id", type_=sa.Integer(), existing_type=sa.BigInteger())
    _drop_keys()
    _create_keys(())
    for table, _, _ in DISTRIBUTED:
        op.drop_column(table, "city_code")
    op.drop_table("city")
    op.execute("DROP FUNCTION gridgov_city_changed()")
    op.execute("DROP FUNCTION gridgov_city_code()")
