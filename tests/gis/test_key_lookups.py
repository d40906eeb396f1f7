"""Lookups by a distributed table's own key (an address by id or full text, an entity by credit code, a task by id, a
registration event by event id) use an index led by that key, as before the tables carried city_code: a key led by
city_code made PostgreSQL read the whole index (1,153 pages for one address of the demo city) or the whole table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

pytestmark = pytest.mark.db

# (the table, the column looked up, a value: the test city's first, or any when the table is empty)
LOOKUPS = [
    pytest.param("address", "id", "SELECT min(id) FROM address", id="address-by-id"),
    pytest.param("address", "full_text", "SELECT min(full_text) FROM address", id="address-by-full-text"),
    pytest.param("entity", "uscc", "SELECT min(uscc) FROM entity", id="entity-by-credit-code"),
    pytest.param("task", "id", "SELECT coalesce(min(id), 1) FROM task", id="task-by-id"),
    pytest.param(
        "registration_event",
        "event_id",
        "SELECT coalesce(min(event_id), 'e-1') FROM registration_event",
        id="event-by-id",
    ),
]


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back, with sequential scans priced out: the test city's tables
    are small enough that the planner would read them whole whatever their keys, so the test asks which index the
    planner finds usable, not whether it prefers it."""
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        yield connection
        transaction.rollback()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _leading_column(conn: Connection, index: str) -> str:
    return str(
        conn.execute(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = i.indkey[0] WHERE i.indexrelid = CAST(:index AS regclass)"
            ),
            {"index": index},
        ).scalar_one()
    )


@pytest.mark.parametrize(("table", "column", "first"), LOOKUPS)
def test_a_lookup_by_its_own_key_uses_an_index_led_by_that_key(
    conn: Connection, table: str, column: str, first: str
) -> None:
    value = conn.execute(text(first)).scalar_one()
    explain = f"EXPLAIN (FORMAT JSON) SELECT * FROM {table} WHERE {column} = :value"  # noqa: S608 - fixed names

    plan = conn.execute(text(explain), {"value": value}).scalar_one()[0]["Plan"]

    nodes = [node for node in _nodes(plan) if node.get("Relation Name") == table or "Index Name" in node]
    assert nodes, plan
    assert all(node["Node Type"] != "Seq Scan" for node in nodes), plan
    indexes = {node["Index Name"] for node in nodes if "Index Name" in node}
    assert indexes, plan
    assert {_leading_column(conn, index) for index in indexes} == {column}, (indexes, plan)
