"""grids.models: tables of the territory (towns, communities, grid versions, grids, workers)."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from gis.schema import metadata
from grids.codes import COMMUNITY_DIGITS, GRID_DIGITS, TOWN_DIGITS

# The cities of the deployment (reference): every distributed table's city_code references one (migration 0019).
city = Table(
    "city",
    metadata,
    Column("code", CHAR(6), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
)

town = Table(
    "town",
    metadata,
    Column("code", String(TOWN_DIGITS), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("name_en", Text),
    Column("population", Integer, nullable=False),
    Column("area_m2", Float, nullable=False),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False),
)

town_repair = Table(
    "town_repair",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code", ondelete="CASCADE"), nullable=False),
    Column("area_before_m2", Float, nullable=False),
    Column("area_after_m2", Float, nullable=False),
    Column("gap_area_added_m2", Float, nullable=False),
    Column("overlap_area_removed_m2", Float, nullable=False),
    Column("note", Text),
)

community = Table(
    "community",
    metadata,
    Column("code", String(COMMUNITY_DIGITS), primary_key=True),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("short_name", Text, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("population", Integer, nullable=False),
    Column("area_m2", Float, nullable=False),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False),
    CheckConstraint("kind IN ('village_committee','residents_committee','special','virtual')", name="kind"),
)

grid_version = Table(
    "grid_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text),
    # Drafts (planning): the version a draft was drawn from, the community or town it redraws, who drew it, its
    # figures, and the fingerprint of the data it was drawn on (a draft whose data changed since is stale).
    Column("base_version_id", Integer, ForeignKey("grid_version.id")),
    Column("area_code", String(COMMUNITY_DIGITS)),
    Column("created_by", Text),
    Column("figures", JSONB),
    Column("fingerprint", Text),
    Column("activated_at", DateTime(timezone=True)),
    Column("retired_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('draft','active','retired')", name="status"),
)

# Only one active version at a time.
Index("uq_grid_version_active", grid_version.c.status, unique=True, postgresql_where=grid_version.c.status == "active")

grid = Table(
    "grid",
    metadata,
    Column("version_id", Integer, ForeignKey("grid_version.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(GRID_DIGITS), primary_key=True),
    Column("community_code", String(COMMUNITY_DIGITS), ForeignKey("community.code"), nullable=False, index=True),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("name", Text),
    Column("population", Integer, nullable=False, server_default="0"),
    Column("address_count", Integer, nullable=False, server_default="0"),
    Column("entity_count", Integer, nullable=False, server_default="0"),
    Column("workload", Integer, nullable=False, server_default="0"),
    Column("worker_count", Integer, nullable=False, server_default="0"),
    Column("area_m2", Float, nullable=False),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False),
)

worker = Table(
    "worker",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("phone", String(20), nullable=False),
    Column("town_code", String(TOWN_DIGITS), ForeignKey("town.code"), nullable=False, index=True),
    Column("version_id", Integer, nullable=False),
    Column("grid_code", String(GRID_DIGITS), nullable=False, index=True),
    Column("capacity", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    ForeignKeyConstraint(["version_id", "grid_code"], ["grid.version_id", "grid.code"], ondelete="CASCADE"),
)
