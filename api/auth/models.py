"""api.auth.models: the tables of accounts, API keys and browser sessions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

# Kept literal here (not imported from roles) so the migration's check constraint reads the same.
ROLE_CHECK = (
    "role IN ('admin','command_centre','town_leader','dispatcher','grid_worker','department_officer','api_client',"
    "'hotline')"
)

app_user = Table(
    "app_user",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True),
    # argon2id, self-describing ($argon2id$v=19$m=...): parameters can be raised without a migration.
    Column("password_hash", Text, nullable=False),
    Column("role", String(24), nullable=False),
    Column("scope_code", String(32)),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_login_at", DateTime(timezone=True)),
    CheckConstraint(ROLE_CHECK, name="role"),
)

api_key = Table(
    "api_key",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    # The first 8 characters of the key, so that lists and logs can name a key without revealing it.
    Column("prefix", String(8), nullable=False),
    # HMAC-SHA-256(secret_key, key) in hex: a fast keyed digest, looked up by equality on every request.
    Column("digest", String(64), nullable=False, unique=True),
    Column("rate_limited", Boolean, nullable=False, server_default="true"),
    Column("rate_per_minute", Integer, nullable=False, server_default="600"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    # A key has a role like an account (api_client by default: registration systems, GIS tools; hotline: the 12345
    # hotline's Open311 client), and the scope that role needs.
    Column("role", String(24), nullable=False, server_default="api_client"),
    Column("scope_code", String(32)),
    CheckConstraint(ROLE_CHECK, name="role"),
)

user_session = Table(
    "user_session",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # HMAC-SHA-256 of the cookie's token: a leaked table does not let anyone sign in.
    Column("token_digest", String(64), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
