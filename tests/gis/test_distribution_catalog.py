"""The schema stays ready for Citus: every table is classified, and the catalog shows each one obeys the rules of its
kind (distributed by city_code, reference, local); a table that breaks a rule is named, and the operator's plan
distributes every table after the tables it references."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from api.cli import app
from gis import migrate
from gis.cluster import LocalCluster
from gis.database import make_engine
from gis.distribution import (
    PLACEMENT_BY_TABLE,
    Kind,
    Placement,
    foreign_key_targets,
    tables_of,
    violations,
)
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def empty_engine(empty_db: DatabaseSettings) -> Iterator[Engine]:
    """An engine on a database migrated to head, with no data."""
    result = make_engine(empty_db)
    yield result
    result.dispose()


@pytest.fixture
def scratch(empty_engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back: the bad tables a test creates never outlive it."""
    with empty_engine.connect() as conn:
        transaction = conn.begin()
        yield conn
        transaction.rollback()


def test_the_migrated_schema_obeys_every_rule_of_citus(empty_engine: Engine) -> None:
    with empty_engine.connect() as conn:
        assert violations(conn) == []


def test_the_issue_s_large_tables_are_distributed_and_territory_and_rules_are_reference_tables() -> None:
    distributed = set(tables_of(Kind.DISTRIBUTED))
    assert {"address", "entity", "task", "task_event", "clue", "registration_event"} <= distributed
    assert {"city", "town", "community", "grid", "inspection_item"} <= set(tables_of(Kind.REFERENCE))
    assert {"app_user", "api_key", "user_session"} <= set(tables_of(Kind.LOCAL))


def _with(table: str, kind: Kind) -> Mapping[str, Placement]:
    return {**PLACEMENT_BY_TABLE, table: Placement(table, kind, "a test's table")}


# One case per rule: the DDL of a table that breaks it, how the table is classified, and what the check must say.
BAD_TABLES = [
    pytest.param("CREATE TABLE bad (id bigint PRIMARY KEY)", None, "bad: not classified", id="unclassified"),
    pytest.param(
        "CREATE SCHEMA archive; CREATE TABLE archive.bad (id bigint PRIMARY KEY)",
        None,
        "archive.bad: not classified",
        id="unclassified-in-a-new-schema",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) REFERENCES city, id bigint, PRIMARY KEY (id))",
        Kind.DISTRIBUTED,
        "bad: city_code may be null",
        id="nullable-city",
    ),
    pytest.param(
        "CREATE TABLE bad (id bigint PRIMARY KEY)",
        Kind.DISTRIBUTED,
        "bad: distributed but has no city_code column",
        id="no-city",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint PRIMARY KEY)",
        Kind.DISTRIBUTED,
        "bad: primary key does not include city_code",
        id="primary-key",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, name text, PRIMARY KEY (id, city_code), "
        "CONSTRAINT uq_bad_name UNIQUE (name))",
        Kind.DISTRIBUTED,
        "bad: unique constraint uq_bad_name does not include city_code",
        id="unique-constraint",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, name text, PRIMARY KEY (id, city_code)); "
        "CREATE UNIQUE INDEX uq_bad_live_name ON bad (name) WHERE name <> ''",
        Kind.DISTRIBUTED,
        "bad: unique index uq_bad_live_name does not include city_code",
        id="unique-index",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, PRIMARY KEY (city_code, id))",
        Kind.DISTRIBUTED,
        "bad: primary key has city_code before its own columns, so a lookup by them reads the whole index",
        id="primary-key-led-by-city",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, name text, PRIMARY KEY (id, city_code), "
        "CONSTRAINT uq_bad_name UNIQUE (city_code, name))",
        Kind.DISTRIBUTED,
        "bad: unique constraint uq_bad_name has city_code before its own columns",
        id="unique-constraint-led-by-city",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, name text, PRIMARY KEY (id, city_code)); "
        "CREATE UNIQUE INDEX uq_bad_live_name ON bad (city_code, name) WHERE name <> ''",
        Kind.DISTRIBUTED,
        "bad: unique index uq_bad_live_name has city_code before its own columns",
        id="unique-index-led-by-city",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, task_city char(6), task_id bigint, "
        "PRIMARY KEY (id, city_code), "
        "CONSTRAINT fk_bad_task FOREIGN KEY (task_id, task_city) REFERENCES task (id, city_code))",
        Kind.DISTRIBUTED,
        "bad: foreign key fk_bad_task to task does not pair city_code on both sides",
        id="foreign-key-not-co-located",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id bigint, user_id bigint, PRIMARY KEY (id, city_code), "
        "CONSTRAINT fk_bad_user FOREIGN KEY (user_id) REFERENCES app_user (id))",
        Kind.DISTRIBUTED,
        "bad: foreign key fk_bad_user to local table app_user",
        id="distributed-to-local",
    ),
    pytest.param(
        "CREATE TABLE bad (code text PRIMARY KEY, city_code char(6), uscc varchar(18), "
        "CONSTRAINT fk_bad_entity FOREIGN KEY (uscc, city_code) REFERENCES entity (uscc, city_code))",
        Kind.REFERENCE,
        "bad: reference table with foreign key fk_bad_entity to distributed table entity",
        id="reference-to-distributed",
    ),
    pytest.param(
        "CREATE TABLE bad (code text PRIMARY KEY, user_id bigint, CONSTRAINT fk_bad_user FOREIGN KEY (user_id) "
        "REFERENCES app_user (id))",
        Kind.REFERENCE,
        "bad: reference table with foreign key fk_bad_user to local table app_user",
        id="reference-to-local",
    ),
    pytest.param(
        "CREATE TABLE bad (id bigint PRIMARY KEY, city_code char(6), task_id bigint, "
        "CONSTRAINT fk_bad_task FOREIGN KEY (task_id, city_code) REFERENCES task (id, city_code))",
        Kind.LOCAL,
        "bad: local table with foreign key fk_bad_task to distributed table task",
        id="local-to-distributed",
    ),
    pytest.param(
        "CREATE TABLE bad (city_code char(6) NOT NULL, id integer, PRIMARY KEY (id, city_code))",
        Kind.DISTRIBUTED,
        "bad: id is integer, ids of distributed tables are bigint",
        id="integer-id",
    ),
]


@pytest.mark.parametrize(("ddl", "kind", "expected"), BAD_TABLES)
def test_a_table_that_breaks_a_rule_is_named_with_the_rule(
    scratch: Connection, ddl: str, kind: Kind | None, expected: str
) -> None:
    for statement in ddl.split("; "):
        scratch.execute(text(statement))
    placements = PLACEMENT_BY_TABLE if kind is None else _with("bad", kind)

    found = violations(scratch, placements)

    assert any(v.startswith(expected) for v in found), found
    assert all(v.startswith(expected.split(":")[0] + ": ") for v in found), found


def test_a_unique_credit_code_across_cities_is_named_on_the_entity_table(scratch: Connection) -> None:
    # Tempting for cross-city lookups, but Citus cannot enforce a uniqueness that spans shards.
    scratch.execute(text("CREATE UNIQUE INDEX uq_entity_uscc_anywhere ON entity (uscc)"))

    assert violations(scratch) == ["entity: unique index uq_entity_uscc_anywhere does not include city_code"]


def test_rows_inserted_without_a_city_take_the_single_city_and_several_cities_require_one(
    scratch: Connection,
) -> None:
    scratch.execute(text("INSERT INTO outbox (topic, payload) VALUES ('t', '{}')"))
    assert scratch.execute(text("SELECT city_code FROM outbox")).scalar_one() == "441900"

    scratch.execute(text("INSERT INTO city (code, name) VALUES ('440300', '深圳市')"))
    scratch.execute(text("INSERT INTO outbox (city_code, topic, payload) VALUES ('440300', 't', '{}')"))
    savepoint = scratch.begin_nested()
    with pytest.raises(DBAPIError, match="city_code must be given: the city table holds 2 cities"):
        scratch.execute(text("INSERT INTO outbox (topic, payload) VALUES ('t', '{}')"))
    savepoint.rollback()
    assert scratch.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 2


def test_a_foreign_key_between_distributed_tables_refuses_a_row_of_another_city(scratch: Connection) -> None:
    scratch.execute(text("INSERT INTO city (code, name) VALUES ('440300', '深圳市')"))
    clue_id = scratch.execute(
        text(
            "INSERT INTO clue (city_code, industry, reported_at, geom) "
            "VALUES ('441900', '餐饮', now(), ST_SetSRID(ST_MakePoint(113.75, 23.02), 4326)) RETURNING id"
        )
    ).scalar_one()
    with pytest.raises(DBAPIError, match="fk_clue_photo_clue_id_clue"):
        scratch.execute(
            text(
                "INSERT INTO clue_photo (city_code, clue_id, sha256, size_bytes, content_type, uploaded_by) "
                "VALUES ('440300', :clue, repeat('a', 64), 1, 'image/jpeg', 'test')"
            ),
            {"clue": clue_id},
        )


def test_every_row_of_the_test_city_carries_the_city_of_its_town(engine: Engine) -> None:
    with engine.connect() as conn:
        for table in ("address", "entity", "clue", "task", "registration_event"):
            wrong = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE city_code <> left(town_code, 6)")  # noqa: S608 - fixed names
            ).scalar_one()
            assert wrong == 0, table
        assert conn.execute(text("SELECT count(*) FROM address")).scalar_one() > 0


def test_the_migration_goes_down_and_up_again_on_the_test_city_keeping_every_row(
    pg_cluster: LocalCluster, template_city: str
) -> None:
    name = f"d_{uuid.uuid4().hex[:12]}"
    pg_cluster.clone_database(name, template_city)
    settings = DatabaseSettings(database_url=pg_cluster.url(name))
    engine = make_engine(settings)
    count = (
        "SELECT (SELECT count(*) FROM address), (SELECT count(*) FROM entity), (SELECT count(*) FROM task), "
        "(SELECT count(*) FROM task_event), (SELECT count(*) FROM registration_event), "
        "(SELECT count(*) FROM entity_licence), (SELECT count(*) FROM clue)"
    )
    try:
        with engine.connect() as conn:
            before = conn.execute(text(count)).one()
        command.downgrade(migrate.alembic_config(settings), "0018")
        with engine.connect() as conn:
            assert "city_code" not in {c["name"] for c in sa.inspect(conn).get_columns("address")}
            assert sa.inspect(conn).get_pk_constraint("entity")["constrained_columns"] == ["uscc"]
            assert conn.execute(text(count)).one() == before
        migrate.upgrade(settings)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_pk_constraint("entity")["constrained_columns"] == ["uscc", "city_code"]
            assert conn.execute(text(count)).one() == before
            assert violations(conn) == []
    finally:
        engine.dispose()
        pg_cluster.drop_database(name)


def test_an_operator_prints_the_citus_plan_reference_tables_first_and_each_table_after_those_it_references(
    empty_db: DatabaseSettings, empty_engine: Engine
) -> None:
    result = CliRunner().invoke(app, ["db", "citus-plan"], env={"GRIDGOV_DATABASE_URL": empty_db.database_url})

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("SELECT ")]
    order = [line.split("'")[1] for line in lines]
    assert sorted(order) == sorted((*tables_of(Kind.REFERENCE), *tables_of(Kind.DISTRIBUTED)))
    assert all("create_reference_table" in line for line in lines[: len(tables_of(Kind.REFERENCE))])
    assert "create_distributed_table('address', 'city_code')" in lines[len(tables_of(Kind.REFERENCE))]
    assert "create_distributed_table('task_event', 'city_code', colocate_with => 'address')" in result.output
    with empty_engine.connect() as conn:
        targets = foreign_key_targets(conn)
    for table, referenced in targets.items():
        for target in referenced & set(order):
            if table in order:
                assert order.index(target) < order.index(table), (table, target)
    for table in tables_of(Kind.LOCAL):
        assert f"'{table}'" not in result.output


def test_the_citus_plan_is_refused_while_a_table_is_unclassified(
    empty_db: DatabaseSettings, empty_engine: Engine
) -> None:
    with empty_engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray (id bigint PRIMARY KEY)"))
    try:
        result = CliRunner().invoke(app, ["db", "citus-plan"], env={"GRIDGOV_DATABASE_URL": empty_db.database_url})
    finally:
        with empty_engine.begin() as conn:
            conn.execute(text("DROP TABLE stray"))

    assert result.exit_code == 1
    assert "stray: not classified in gis.distribution" in result.output
    assert "create_distributed_table" not in result.output
