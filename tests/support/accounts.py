"""tests.support.accounts: the one way tests make users and API keys and sign in with them."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from api.auth import service
from api.auth.ratelimit import DEFAULT_RATE_PER_MINUTE

PASSWORD = "correct horse battery staple"


def make_users(conn: Connection, users: Mapping[str, tuple[str, str | None]], password: str = PASSWORD) -> None:
    """Create one account per entry, `{username: (role, scope)}`, all with the same password.

    Examples
    --------
    >>> make_users(conn, {"centre": ("command_centre", None), "leader": ("town_leader", town_code)})
    """
    for username, (role, scope) in users.items():
        service.create_user(conn, username=username, role=role, scope=scope, password=password)


def make_api_key(
    conn: Connection,
    secret: str,
    name: str,
    rate_limited: bool = False,
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    *,
    permissions: Collection[str] = ("geocode",),
    event_kinds: Collection[str] | None = None,
) -> str:
    """A new API key (role api_client) with `permissions` (geocoding only unless the test says what else it needs:
    "gis", "intake"), exempt from the rate limit unless asked; returns the key itself."""
    return service.create_api_key(
        conn,
        secret,
        name=name,
        rate_limited=rate_limited,
        rate_per_minute=rate_per_minute,
        permissions=permissions,
        event_kinds=event_kinds,
    ).key


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign in over /v1/auth/token and return the Authorization header of the access token."""
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def api_key_headers(key: str) -> dict[str, str]:
    """The header a program sends its API key in."""
    return {"X-API-Key": key}
