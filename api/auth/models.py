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
from sqlalchemy.dialects.postgresql import ARRAY

from gis.schema import metadata

# Kept literal here (not imported from roles) so the migration's check constraint reads the same.
ROLE_CHECK = (
    "role IN ('admin','command_centre','town_leader','dispatcher','grid_worker','department_officer','api_client',"
    "'hotline')"
)

PERMISSIONS_CHECK = "cardinality(permissions) >= 1 AND permissions <@ ARRAY['geocode','gis','hotline','intake']::text[]"
# An api_client account carries permissions like a key (hotline excepted: that is a key's role); other accounts none.
USER_PERMISSIONS_CHECK = (
    "(role = 'api_client') = (permissions IS NOT NULL) AND (permissions IS NULL OR "
    "(cardinality(permissions) >= 1 AND permissions <@ ARRAY['geocode','gis','intake']::text[]))"
)
EVENT_KINDS_CHECK = "event_kinds IS NULL OR 'intake' = ANY(permissions)"

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
    # Carried in every access token (`ver`): a password reset, a disable or a bearer's own revocation bumps it, and
    # a token of an older version is refused on its next request, in every process.
    Column("token_version", Integer, nullable=False, server_default="0"),
    # An api_client account's permissions (supervision.permissions.KeyPermission values, as a key's); NULL otherwise.
    Column("permissions", ARRAY(Text)),
    CheckConstraint(ROLE_CHECK, name="role"),
    CheckConstraint(USER_PERMISSIONS_CHECK, name="permissions"),
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
    # What the key may be used for (supervision.permissions.KeyPermission): geocoding only unless granted more.
    Column("permissions", ARRAY(Text), nullable=False, server_default="{geocode}"),
    # The registration event kinds an intake key may send; NULL: every kind.
    Column("event_kinds", ARRAY(Text)),
    CheckConstraint(ROLE_CHECK, name="role"),
    CheckConstraint(PERMISSIONS_CHECK, name="permissions"),
    CheckConstraint(EVENT_KINDS_CHECK, name="event_kinds"),
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

# Failed sign-ins of one account (`user:<name>`) or one client address (`addr:<ip>`) in the current window, and until
# when further attempts are refused (api.auth.throttle). Written only by SQL text (bound parameters).
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True)),
)
