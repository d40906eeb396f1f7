"""address_library.models: the road network and the standard address library (标准地址库)."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from gis.distribution import city_code_column
from gis.schema import metadata
from grids.codes import COMMUNITY_DIGITS, GRID_DIGITS, TOWN_DIGITS

road = Table(
    "road",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=True), nullable=False),
)

address = Table(
    "address",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("level", String(8), nullable=False),
    Column("parent_id", BigInteger, index=True),
    Column("full_text", Text, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("community_code", String(COMMUNITY_DIGITS), ForeignKey("community.code"), nullable=False, index=True),
    Column("road_id", BigInteger, ForeignKey("road.id")),
    Column("road_name", Text),
    Column("door_no", Text),
    Column("sub_no", Text),
    Column("village", Text),
    Column("lane", Text),
    Column("park", Text),
    Column("compound", Text),
    Column("phase", Text),
    Column("building", Text),
    Column("unit", Text),
    Column("floor", Text),
    Column("room", Text),
    Column("stall", Text),
    Column("grid_code", String(GRID_DIGITS), index=True),
    Column("status", String(8), nullable=False, server_default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Bumped by every add, retire and move: max(updated_at) is part of the library's change fingerprint.
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
    CheckConstraint("level IN ('door','building','room')", name="level"),
    UniqueConstraint("full_text", "city_code", name="uq_address_full_text"),
    ForeignKeyConstraint(
        ["parent_id", "city_code"], ["address.id", "address.city_code"], name="fk_address_parent_id_address"
    ),
)

# One row per change to the library (add, retire, move, import): who, when, and the point and status before/after.
address_history = Table(
    "address_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("address_id", BigInteger, nullable=False, index=True),
    Column("action", String(8), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("changed_by", Text, nullable=False),
    Column("old_geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("new_geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("old_status", String(8)),
    Column("new_status", String(8)),
    Column("note", Text),
    CheckConstraint("action IN ('add','retire','move','import')", name="action"),
    ForeignKeyConstraint(
        ["address_id", "city_code"],
        ["address.id", "address.city_code"],
        name="fk_address_history_address_id_address",
    ),
)

address_alias = Table(
    "address_alias",
    metadata,
    # A typed address a dispatcher resolved by hand: the same text (normalized) matches this address — within the
    # alias's community until it is promoted to the city (address_library.match: the alias rule). Rows are never
    # deleted: a withdrawn alias keeps its row, and at most one row per text is not withdrawn.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("normalized_text", Text, nullable=False),
    Column("address_id", BigInteger, nullable=False, index=True),
    Column("raw_text", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("scope", String(9), nullable=False, server_default="community"),
    Column("community_code", String(COMMUNITY_DIGITS), ForeignKey("community.code")),
    Column("state", String(9), nullable=False, server_default="active"),
    Column("taught_by", Text),
    Column("review_item_id", BigInteger),
    Column("promoted_by", Text),
    Column("promoted_at", DateTime(timezone=True)),
    Column("promote_reason", Text),
    Column("withdrawn_by", Text),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("withdraw_reason", Text),
    # Set by every change (teaching, promotion, suspension, withdrawal): the geocoders' alias fingerprint reads it.
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    CheckConstraint("scope IN ('community','city')", name="scope"),
    CheckConstraint("state IN ('active','suspended','withdrawn')", name="state"),
    CheckConstraint("scope = 'city' OR community_code IS NOT NULL", name="scoped"),
    ForeignKeyConstraint(
        ["address_id", "city_code"], ["address.id", "address.city_code"], name="fk_address_alias_address_id_address"
    ),
)
Index(
    "uq_address_alias_live_text",
    address_alias.c.normalized_text,
    address_alias.c.city_code,
    unique=True,
    postgresql_where=address_alias.c.state != "withdrawn",
)

address_alias_teaching = Table(
    "address_alias_teaching",
    metadata,
    # Each resolution that taught an alias, confirmed it (the same text, the same address) or contradicted it.
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    city_code_column(),
    Column("alias_id", BigInteger, nullable=False, index=True),
    Column("address_id", BigInteger, nullable=False),
    Column("outcome", String(9), nullable=False),
    Column("taught_by", Text, nullable=False),
    Column("review_item_id", BigInteger),
    Column("community_code", String(COMMUNITY_DIGITS)),
    Column("taught_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("outcome IN ('taught','confirmed','conflict')", name="outcome"),
    ForeignKeyConstraint(
        ["alias_id", "city_code"],
        ["address_alias.id", "address_alias.city_code"],
        name="fk_address_alias_teaching_alias_id_address_alias",
    ),
    ForeignKeyConstraint(
        ["address_id", "city_code"],
        ["address.id", "address.city_code"],
        name="fk_address_alias_teaching_address_id_address",
    ),
)

geocode_batch_job = Table(
    "geocode_batch_job",
    metadata,
    # A batch geocoding job: owned by the principal's stable reference (key#12, user#5), never a display name; its
    # input and result files are removed by the cleanup once `expires_at` has passed (then `purged_at` is set).
    Column("id", Text, primary_key=True),
    Column("owner", Text, nullable=False, index=True),
    Column("address_column", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("rows_done", Integer, nullable=False, server_default="0"),
    Column("rows_total", Integer),
    Column("error", Text),
    Column("by_status", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("purged_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('queued','running','done','failed')", name="status"),
)
