"""Migration 0016: every alias that existed (taught city-wide by one resolution) becomes an active alias of its
address's community, recorded as taught once by its author."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from gis.database import make_engine
from gis.migrate import alembic_config, upgrade
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db


def test_existing_aliases_become_active_aliases_of_their_address_community(
    db: DatabaseSettings,
) -> None:
    config = alembic_config(db)
    command.downgrade(config, "0015")
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            address_id, community = conn.execute(
                text("SELECT id, community_code FROM address WHERE level = 'door' ORDER BY id LIMIT 1")
            ).one()
            conn.execute(
                text("INSERT INTO address_alias (normalized_text, address_id, raw_text, created_by, created_at) "
                     "VALUES ('旧别名路1号', :a, '旧别名路1号', 'user:old', '2026-01-02T03:04:05+08:00')"),
                {"a": address_id},
            )  # fmt: skip
        upgrade(db)
        with engine.connect() as conn:
            row = (
                conn.execute(text("SELECT * FROM address_alias WHERE normalized_text = '旧别名路1号'")).mappings().one()
            )
            assert (row["scope"], row["state"], row["community_code"]) == ("community", "active", community)
            assert row["taught_by"] == "user:old" and row["updated_at"] == row["created_at"]
            teachings = conn.execute(
                text("SELECT outcome, taught_by, address_id FROM address_alias_teaching WHERE alias_id = :id"),
                {"id": row["id"]},
            ).all()
            assert [tuple(t) for t in teachings] == [("taught", "user:old", address_id)]
    finally:
        engine.dispose()
