"""tests.support.accounts: the one way tests make users and API keys and sign in with them."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from api.auth import service
from api.auth.ratelimit import DEFAULT_RATE_PER_MINUTE

PASSWORD = "correct horse battery staple"


def make_users(
    conn: Connection,
    users: Mapping[str, tuple[str, str | None]],
    password: str = PASSWORD,
    *,
    permissions: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Create one account per entry, `{username: (role, scope)}`, all with the same password; an api_client account
    gets the `permissions` named for it (geocoding only unless the test says what else it uses: "gis", "intake").

    Examples
    --------
    >>> make_users(conn, {"centre": ("command_centre", None), "leader": ("town_leader", town_code)})
    >>> make_users(conn, {"system": ("api_client", None)}, permissions={"system": ["intake"]})
    """
    for username, (role, scope) in users.items():
        granted = (permissions or {}).get(username)
        service.create_user(conn, username=username, role=role, scope=scope, password=password, permissions=granted)


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
