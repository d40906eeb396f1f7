"""api.auth.service: accounts, API keys and sessions in the database (used by the CLI and the HTTP layer)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from api.auth.errors import (
    DuplicateKeyName,
    DuplicateUser,
    InvalidPermission,
    InvalidScope,
    UnknownUser,
)
from api.auth.models import api_key, app_user, user_session
from api.auth.passwords import check_password
from api.auth.ratelimit import DEFAULT_RATE_PER_MINUTE
from api.auth.roles import Principal, Role, parse_role, principal_town, validate_scope
from api.auth.security import (
    generate_api_key,
    generate_session_token,
    hash_password,
    key_prefix,
    keyed_digest,
    password_needs_rehash,
    verify_password,
)
from grids.models import community, town, worker
from supervision.events import EVENT_KINDS
from supervision.permissions import DEFAULT_KEY_PERMISSIONS, KEY_PERMISSIONS, KeyPermission, permits
from supervision.routing import default_router
from supervision.task_states import OPEN_STATUSES

DEMO_USERNAME = "demo"


@dataclass(frozen=True)
class UserRecord:
    """One account as the credential checks need it (never the password hash)."""

    id: int
    username: str
    role: str
    scope: str | None
    town_code: str | None
    # What the user's access tokens carry (`ver`); a token of another version is refused.
    token_version: int = 0
    # An api_client account's permissions (as a key's); None for every other role.
    permissions: frozenset[str] | None = None

    def principal(self) -> Principal:
        """This user as the routers see them (an api_client account limited to its permissions, like a key)."""
        return Principal(
            kind="user",
            name=self.username,
            role=self.role,
            scope=self.scope,
            town_code=self.town_code,
            id=self.id,
            permissions=self.permissions,
        )


@dataclass(frozen=True)
class ApiKeyRecord:
    """One live API key: who it is, its rate limit, and its role and scope (api_client, city-wide, by default)."""

    id: int
    name: str
    prefix: str
    rate_limited: bool
    rate_per_minute: int
    role: str = Role.API_CLIENT.value
    scope: str | None = None
    town_code: str | None = None
    # supervision.permissions.KeyPermission values; geocoding only unless granted more.
    permissions: frozenset[str] = frozenset(p.value for p in DEFAULT_KEY_PERMISSIONS)
    # The registration event kinds an intake key may send; None: every kind.
    event_kinds: frozenset[str] | None = None

    def principal(self) -> Principal:
        """This key as the routers see it, with its permissions and event kinds."""
        return Principal(
            kind="api_key",
            name=self.name,
            role=self.role,
            scope=self.scope,
            town_code=self.town_code,
            id=self.id,
            permissions=self.permissions,
            event_kinds=self.event_kinds,
        )


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: the clear key is shown once and never stored."""

    key: str
    record: ApiKeyRecord


def _check_scope_exists(conn: Connection, role: Role, scope: str | None) -> None:
    if scope is None:
        return
    if role is Role.TOWN_LEADER:
        found = conn.execute(select(town.c.code).where(town.c.code == scope)).first()
        if found is None:
            raise InvalidScope(f"no town with code {scope} (see the town table)")
    elif role is Role.DISPATCHER:
        found = conn.execute(select(community.c.code).where(community.c.code == scope)).first()
        if found is None:
            raise InvalidScope(f"no community with code {scope}")
    elif role is Role.GRID_WORKER:
        found = conn.execute(select(worker.c.id).where(worker.c.id == int(scope))).first()
        if found is None:
            raise InvalidScope(f"no grid worker with id {scope}")


def _resolve_town(conn: Connection, role: str, scope: str | None) -> str | None:
    town_code = principal_town(role, scope)
    if town_code is None and role == Role.GRID_WORKER and scope and scope.isdigit():
        town_code = conn.execute(select(worker.c.town_code).where(worker.c.id == int(scope))).scalar_one_or_none()
    return town_code


def create_user(
    conn: Connection,
    *,
    username: str,
    role: str,
    scope: str | None,
    password: str,
    permissions: Collection[str] | None = None,
) -> UserRecord:
    """Create an account after checking the role, the scope (format and existence), the permissions (an api_client
    account's only: geocoding unless granted more) and the password policy."""
    parsed = parse_role(role)
    scope = validate_scope(parsed, scope)
    granted = validate_user_permissions(parsed, permissions)
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        raise InvalidScope("the user name must be 1-64 characters without spaces")
    check_password(password, username)
    _check_scope_exists(conn, parsed, scope)
    try:
        with conn.begin_nested():
            user_id = conn.execute(
                insert(app_user)
                .values(
                    username=username,
                    password_hash=hash_password(password),
                    role=parsed.value,
                    scope_code=scope,
                    permissions=sorted(granted) if granted is not None else None,
                )
                .returning(app_user.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise DuplicateUser(f"user {username!r} already exists") from exc
    town_code = _resolve_town(conn, parsed.value, scope)
    return UserRecord(user_id, username, parsed.value, scope, town_code, permissions=granted)


def validate_user_permissions(role: Role, permissions: Collection[str] | None) -> frozenset[str] | None:
    """An account's permissions: an api_client's (checked like a key's; geocoding when none is chosen; `hotline` is
    a key's role, never an account's), None for every other role (InvalidPermission when some were given)."""
    chosen = [name for name in permissions or () if name.strip()]
    if role is not Role.API_CLIENT:
        if chosen:
            raise InvalidPermission(
                f"--permission limits an api_client account; a {role.value} account has its role's rights"
            )
        return None
    if any(name.strip() == KeyPermission.HOTLINE.value for name in chosen):
        raise InvalidPermission("permission hotline is for API keys of role hotline, never for an account")
    granted, _ = validate_permissions(role, chosen, None)
    return granted


def grant_user(conn: Connection, username: str, permissions: Collection[str]) -> frozenset[str]:
    """Add permissions to an api_client account; its permissions now. Its sessions and tokens carry them from the
    next request (the user row is read on every request)."""
    row = conn.execute(
        select(app_user.c.id, app_user.c.role, app_user.c.permissions).where(app_user.c.username == username.strip())
    ).first()
    if row is None:
        raise UnknownUser(f"no user named {username.strip()!r}")
    if not [name for name in permissions if name.strip()]:
        raise InvalidPermission("name at least one --permission to grant")
    if row.role != Role.API_CLIENT.value:
        raise InvalidPermission(f"user {username.strip()!r} is a {row.role}: only api_client accounts take permissions")
    added = validate_user_permissions(Role.API_CLIENT, permissions) or frozenset()
    merged = frozenset(row.permissions or ()) | added
    conn.execute(update(app_user).where(app_user.c.id == row.id).values(permissions=sorted(merged)))
    return merged


def _permissions(value: list[str] | None) -> frozenset[str] | None:
    return frozenset(value) if value is not None else None


# What a credential check reads of an account (never the password hash, but for the sign-in itself).
_USER_COLUMNS = (
    app_user.c.id,
    app_user.c.username,
    app_user.c.role,
    app_user.c.scope_code,
    app_user.c.token_version,
    app_user.c.permissions,
)


def _user_record(conn: Connection, row: Any) -> UserRecord:
    """The UserRecord of a row of _USER_COLUMNS, its town resolved."""
    town_code = _resolve_town(conn, row.role, row.scope_code)
    return UserRecord(
        row.id, row.username, row.role, row.scope_code, town_code, row.token_version, _permissions(row.permissions)
    )


def count_users(conn: Connection) -> int:
    """How many accounts exist."""
    return int(conn.execute(select(func.count()).select_from(app_user)).scalar_one())


# The demo city's people, one account per role, so that every journey of the dashboard and the field page can be
# walked by hand after `make run`: (username, role), the scope chosen where the demo city has the most work.
DEMO_ACCOUNTS: tuple[tuple[str, Role], ...] = (
    (DEMO_USERNAME, Role.COMMAND_CENTRE),
    ("demo_town", Role.TOWN_LEADER),
    ("demo_dispatcher", Role.DISPATCHER),
    ("demo_worker", Role.GRID_WORKER),
    ("demo_officer", Role.DEPARTMENT_OFFICER),
)


def _busiest(conn: Connection, sql: str, params: dict[str, object]) -> str | None:
    """The first value of a query that ranks units by their open work (None when there is none)."""
    value = conn.execute(text(sql), {"open": list(OPEN_STATUSES), **params}).scalar()
    return None if value is None else str(value)


def demo_scopes(conn: Connection) -> dict[Role, str]:
    """Where the demo's scoped accounts look: the town, community, worker and department with the most open work.

    Empty when the database holds no city yet (then only the command centre's account is made).
    """
    # A town with registrations waiting for review comes first (the dispatcher's journey resolves one: an item of no
    # known community is every dispatcher's of its town), and in it a community with items of its own, then the
    # most open tasks.
    town_code = _busiest(
        conn,
        "SELECT coalesce((SELECT r.town_code FROM review_queue r WHERE r.resolved_at IS NULL "
        "AND r.town_code IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1), "
        "(SELECT t.town_code FROM task t WHERE t.status = ANY(:open) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1), "
        "(SELECT min(code) FROM town))",
        {},
    )
    if town_code is None:
        return {}
    community_code = _busiest(
        conn,
        "SELECT coalesce((SELECT r.payload->>'community_code' FROM review_queue r WHERE r.resolved_at IS NULL "
        "AND r.town_code = :town AND r.payload->>'community_code' IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 "
        "LIMIT 1), (SELECT t.community_code FROM task t WHERE t.status = ANY(:open) AND t.town_code = :town "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1), (SELECT min(code) FROM community WHERE town_code = :town))",
        {"town": town_code},
    )
    worker_id = _busiest(
        conn,
        "SELECT w.id FROM worker w WHERE w.active AND w.grid_code LIKE :community || '%' ORDER BY "
        "(SELECT count(*) FROM task t WHERE t.worker_id = w.id AND t.status = ANY(:open)) DESC, w.id LIMIT 1",
        {"community": community_code},
    )
    department = (
        _busiest(
            conn,
            "SELECT d FROM task t, unnest(string_to_array(t.department_codes, ',')) d WHERE t.status = ANY(:open) "
            "GROUP BY d ORDER BY count(*) DESC, d LIMIT 1",
            {},
        )
        or next(iter(default_router().departments())).code
    )
    scopes = {Role.TOWN_LEADER: town_code, Role.DEPARTMENT_OFFICER: department}
    if community_code is not None:
        scopes[Role.DISPATCHER] = community_code
    if worker_id is not None:
        scopes[Role.GRID_WORKER] = worker_id
    return scopes


def ensure_demo_users(conn: Connection) -> tuple[list[UserRecord], str] | None:
    """Create the demo accounts when no account exists: ([users], the one password), else None.

    The command centre's `demo`, and one account per scoped role where the demo city has the most work (a town
    leader, a dispatcher, a grid worker, a department officer) when a city is loaded. The password is
    GRIDGOV_DEMO_PASSWORD when set, otherwise generated; it is returned once and never stored in clear.
    """
    if count_users(conn) > 0:
        return None
    password = os.environ.get("GRIDGOV_DEMO_PASSWORD") or secrets.token_urlsafe(12)
    scopes = demo_scopes(conn)
    users = []
    for username, role in DEMO_ACCOUNTS:
        if role is Role.COMMAND_CENTRE or role in scopes:
            scope = scopes.get(role)
            users.append(create_user(conn, username=username, role=role.value, scope=scope, password=password))
    return users, password


def authenticate(conn: Connection, username: str, password: str) -> UserRecord | None:
    """The active user with this name and password, or None (a wrong name and a wrong password look alike)."""
    row = conn.execute(
        select(*_USER_COLUMNS, app_user.c.password_hash)
        .where(app_user.c.username == username.strip())
        .where(app_user.c.active.is_(True))
    ).first()
    if not verify_password(row.password_hash if row is not None else None, password) or row is None:
        return None
    values: dict[str, object] = {"last_login_at": func.now()}
    if password_needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    conn.execute(update(app_user).where(app_user.c.id == row.id).values(**values))
    return _user_record(conn, row)


def find_token_user(conn: Connection, username: str, token_version: int) -> UserRecord | None:
    """The active user a bearer token of this version names, or None (disabled, reset or revoked since)."""
    row = conn.execute(
        select(*_USER_COLUMNS)
        .where(app_user.c.username == username)
        .where(app_user.c.active.is_(True))
        .where(app_user.c.token_version == token_version)
    ).first()
    return None if row is None else _user_record(conn, row)


def _revoke_user_credentials(conn: Connection, user_id: int) -> None:
    """Every bearer token (a new token version) and every browser session of the user stop working now."""
    conn.execute(update(app_user).where(app_user.c.id == user_id).values(token_version=app_user.c.token_version + 1))
    conn.execute(
        update(user_session)
        .where(user_session.c.user_id == user_id)
        .where(user_session.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def _user_id(conn: Connection, username: str) -> int:
    found = conn.execute(select(app_user.c.id).where(app_user.c.username == username.strip())).scalar()
    if found is None:
        raise UnknownUser(f"no user named {username.strip()!r}")
    return int(found)


def set_user_active(conn: Connection, username: str, *, active: bool) -> None:
    """Disable (or enable again) an account; disabling revokes its tokens and sessions at once."""
    user_id = _user_id(conn, username)
    conn.execute(update(app_user).where(app_user.c.id == user_id).values(active=active))
    _revoke_user_credentials(conn, user_id)


def reset_password(conn: Connection, username: str, password: str) -> None:
    """Set a new password (checked against the policy) and revoke the user's tokens and sessions at once."""
    user_id = _user_id(conn, username)
    check_password(password, username)
    conn.execute(update(app_user).where(app_user.c.id == user_id).values(password_hash=hash_password(password)))
    _revoke_user_credentials(conn, user_id)


def revoke_user_tokens(conn: Connection, user_id: int) -> None:
    """A signed-in user's own revocation: their bearer tokens and sessions stop working on the next request."""
    _revoke_user_credentials(conn, user_id)


def create_api_key(
    conn: Connection,
    secret_key: str,
    *,
    name: str,
    rate_limited: bool = True,
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    role: str = Role.API_CLIENT.value,
    scope: str | None = None,
    permissions: Collection[str] | None = None,
    event_kinds: Collection[str] | None = None,
) -> NewApiKey:
    """A new API key of a role (checked like an account's, scope included); only its prefix and HMAC digest are stored.

    A hotline key's name must be free among the active keys (DuplicateKeyName otherwise): the requests a hotline
    submitted are owned by its key's name, so one name is one hotline operator; a replacement key of the same name
    (after `apikey revoke`) carries that history over.
    """
    if not name.strip():
        raise InvalidScope("an API key needs a --name")
    if rate_per_minute < 1:
        raise InvalidScope("--rate-per-minute must be at least 1")
    parsed = parse_role(role)
    scope = validate_scope(parsed, scope)
    granted, kinds = validate_permissions(parsed, permissions, event_kinds)
    _check_scope_exists(conn, parsed, scope)
    if parsed is Role.HOTLINE:
        _check_hotline_name_free(conn, name.strip())
    key = generate_api_key()
    key_id = conn.execute(
        insert(api_key)
        .values(
            name=name.strip(),
            prefix=key_prefix(key),
            digest=keyed_digest(secret_key, key),
            rate_limited=rate_limited,
            rate_per_minute=rate_per_minute,
            role=parsed.value,
            scope_code=scope,
            permissions=sorted(granted),
            event_kinds=sorted(kinds) if kinds is not None else None,
        )
        .returning(api_key.c.id)
    ).scalar_one()
    record = ApiKeyRecord(
        key_id,
        name.strip(),
        key_prefix(key),
        rate_limited,
        rate_per_minute,
        parsed.value,
        scope,
        _resolve_town(conn, parsed.value, scope),
        granted,
        kinds,
    )
    return NewApiKey(key, record)


def default_permissions(role: Role) -> frozenset[str]:
    """What a key of this role may do when none is chosen: a hotline key its Open311 requests, others geocoding."""
    if role is Role.HOTLINE:
        return frozenset({KeyPermission.HOTLINE.value})
    return frozenset(p.value for p in DEFAULT_KEY_PERMISSIONS)


def validate_permissions(
    role: Role, permissions: Collection[str] | None, event_kinds: Collection[str] | None
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The permissions and event kinds of a key of `role`, or InvalidPermission.

    Refused: an unknown permission; one that grants this role nothing (`hotline` is for hotline keys only, and a
    hotline key can only use `hotline`); event kinds without `intake`, or unknown to intake.
    """
    choices = ", ".join(p.value for p in KeyPermission)
    granted: set[str] = set()
    for name in permissions or ():
        try:
            permission = KeyPermission(name.strip())
        except ValueError:
            raise InvalidPermission(f"unknown permission {name!r}; choose from {choices}") from None
        if not any(permits(role.value, capability) for capability in KEY_PERMISSIONS[permission]):
            raise InvalidPermission(
                f"permission {permission.value} gives a {role.value} key nothing"
                + ("; a hotline key takes --permission hotline" if role is Role.HOTLINE else "")
                + ("; hotline is for keys of role hotline" if permission is KeyPermission.HOTLINE else "")
            )
        granted.add(permission.value)
    if not granted:
        granted = set(default_permissions(role))
    if event_kinds is None or not list(event_kinds):
        return frozenset(granted), None
    if KeyPermission.INTAKE.value not in granted:
        raise InvalidPermission("--event-kind limits what an intake key sends: it needs --permission intake")
    kinds = {kind.strip() for kind in event_kinds}
    unknown = sorted(kinds - set(EVENT_KINDS))
    if unknown:
        raise InvalidPermission(f"unknown event kind {unknown[0]!r}; choose from {', '.join(EVENT_KINDS)}")
    return frozenset(granted), frozenset(kinds)


def grant_api_key(conn: Connection, prefix: str, permissions: Collection[str]) -> int:
    """Add permissions to the live keys with this prefix (checked against each key's role); the number changed."""
    rows = conn.execute(
        select(api_key.c.id, api_key.c.role, api_key.c.permissions)
        .where(api_key.c.prefix == prefix)
        .where(api_key.c.revoked_at.is_(None))
    ).all()
    for row in rows:
        added, _ = validate_permissions(parse_role(row.role), permissions, None)
        merged = sorted(set(row.permissions) | added)
        conn.execute(update(api_key).where(api_key.c.id == row.id).values(permissions=merged))
    if rows:
        _notify_key_change(conn)
    return len(rows)


def _notify_key_change(conn: Connection) -> None:
    """Every server process empties its key cache when this transaction commits (api.auth.revocation)."""
    conn.execute(text("SELECT pg_notify('gridgov_auth', 'key')"))


def _check_hotline_name_free(conn: Connection, name: str) -> None:
    """DuplicateKeyName when an active key holds `name` (two creations at once are serialised on the name)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('api_key.name:' || :name))"), {"name": name})
    taken = conn.execute(
        select(api_key.c.prefix).where(api_key.c.name == name).where(api_key.c.revoked_at.is_(None)).limit(1)
    ).scalar()
    if taken is not None:
        raise DuplicateKeyName(
            f"an active API key named {name!r} exists ({taken}…): a hotline's requests belong to its key's name, so "
            f"revoke that key first (gridgov apikey revoke {taken}), then create its replacement"
        )


def find_api_key(conn: Connection, digest: str) -> ApiKeyRecord | None:
    """The live (unrevoked) key with this digest, or None."""
    row = conn.execute(
        select(
            api_key.c.id,
            api_key.c.name,
            api_key.c.prefix,
            api_key.c.rate_limited,
            api_key.c.rate_per_minute,
            api_key.c.role,
            api_key.c.scope_code,
            api_key.c.permissions,
            api_key.c.event_kinds,
        )
        .where(api_key.c.digest == digest)
        .where(api_key.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    town_code = _resolve_town(conn, row.role, row.scope_code)
    return ApiKeyRecord(
        row.id,
        row.name,
        row.prefix,
        row.rate_limited,
        row.rate_per_minute,
        row.role,
        row.scope_code,
        town_code,
        frozenset(row.permissions),
        frozenset(row.event_kinds) if row.event_kinds is not None else None,
    )


def list_api_keys(conn: Connection) -> list[tuple[ApiKeyRecord, datetime, datetime | None]]:
    """Every key with its creation and revocation times, oldest first."""
    rows = conn.execute(
        select(
            api_key.c.id,
            api_key.c.name,
            api_key.c.prefix,
            api_key.c.rate_limited,
            api_key.c.rate_per_minute,
            api_key.c.role,
            api_key.c.scope_code,
            api_key.c.permissions,
            api_key.c.event_kinds,
            api_key.c.created_at,
            api_key.c.revoked_at,
        ).order_by(api_key.c.id)
    ).all()
    return [
        (
            ApiKeyRecord(
                r.id,
                r.name,
                r.prefix,
                r.rate_limited,
                r.rate_per_minute,
                r.role,
                r.scope_code,
                None,
                frozenset(r.permissions),
                frozenset(r.event_kinds) if r.event_kinds is not None else None,
            ),
            r.created_at,
            r.revoked_at,
        )
        for r in rows
    ]


def revoke_api_key(conn: Connection, prefix: str) -> int:
    """Revoke the live keys with this prefix; the number revoked."""
    result = conn.execute(
        update(api_key)
        .where(api_key.c.prefix == prefix)
        .where(api_key.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    _notify_key_change(conn)
    return int(result.rowcount or 0)


def create_session(conn: Connection, secret_key: str, user: UserRecord, *, hours: float) -> str:
    """A new browser session for the user; returns the cookie token (only its digest is stored)."""
    token = generate_session_token()
    conn.execute(
        insert(user_session).values(
            token_digest=keyed_digest(secret_key, token),
            user_id=user.id,
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )
    )
    return token


def find_session_user(conn: Connection, secret_key: str, token: str) -> UserRecord | None:
    """The active user of a live (unexpired, unrevoked) session, or None."""
    row = conn.execute(
        select(*_USER_COLUMNS)
        .join(user_session, user_session.c.user_id == app_user.c.id)
        .where(user_session.c.token_digest == keyed_digest(secret_key, token))
        .where(user_session.c.revoked_at.is_(None))
        .where(user_session.c.expires_at > func.now())
        .where(app_user.c.active.is_(True))
    ).first()
    return None if row is None else _user_record(conn, row)


def revoke_session(conn: Connection, secret_key: str, token: str) -> bool:
    """Sign a session out; whether a live session was revoked."""
    result = conn.execute(
        update(user_session)
        .where(user_session.c.token_digest == keyed_digest(secret_key, token))
        .where(user_session.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return bool(result.rowcount)
