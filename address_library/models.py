"""address_library.models: the road network and the standard address library (标准地址库)."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
)

from gis.schema import metadata
from grids.codes import COMMUNITY_DIGITS, GRID_DIGITS, TOWN_DIGITS

road = Table(
    "road",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=True), nullable=False),
)

address = Table(
    "address",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("level", String(8), nullable=False),
    Column("parent_id", BigInteger, ForeignKey("address.id"), index=True),
    Column("full_text", Text, nullable=False, unique=True),
    Column("kind", String(12), nullable=False),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("community_code", String(COMMUNITY_DIGITS), ForeignKey("community.code"), nullable=False, index=True),
    Column("road_id", Integer, ForeignKey("road.id")),
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
)

# One row per change to the library (add, retire, move, import): who, when, and the point and status before/after.
address_history = Table(
    "address_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("address_id", BigInteger, ForeignKey("address.id"), nullable=False, index=True),
    Column("action", String(8), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("changed_by", Text, nullable=False),
    Column("old_geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("new_geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("old_status", String(8)),
    Column("new_status", String(8)),
    Column("note", Text),
    CheckConstraint("action IN ('add','retire','move','import')", name="action"),
)

address_alias = Table(
    "address_alias",
    metadata,
    # A typed address a dispatcher resolved by hand: the same text (normalized) matches this address at once.
    Column("normalized_text", Text, primary_key=True),
    Column("address_id", BigInteger, ForeignKey("address.id"), nullable=False, index=True),
    Column("raw_text", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
