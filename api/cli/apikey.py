"""api.cli.apikey: `gridgov apikey`, API keys for programs: create one (shown once), list them, grant, revoke one.

A key carries permissions (geocode, gis, hotline, intake): geocoding only unless more are chosen. An intake key may be
limited to registration event kinds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api.auth.ratelimit import DEFAULT_RATE_PER_MINUTE
from api.cli.common import connection, fail
from gis.settings import ServerSettings

if TYPE_CHECKING:
    from api.auth.service import ApiKeyRecord

app = typer.Typer(help="API keys for programs (sent as X-API-Key).", no_args_is_help=True)


@app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (shown in lists).")],
    no_rate_limit: Annotated[bool, typer.Option("--no-rate-limit", help="Exempt this key from rate limiting.")] = False,
    rate_per_minute: Annotated[
        int, typer.Option(help="Requests per minute allowed to this key.")
    ] = DEFAULT_RATE_PER_MINUTE,
    role: Annotated[
        str, typer.Option(help="The key's role, as for accounts (api_client; hotline for the 12345 hotline; …).")
    ] = "api_client",
    scope: Annotated[
        str | None, typer.Option(help="The scope the role needs (a town code for town_leader, …).")
    ] = None,
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            help="What the key may do, repeatable: geocode (the default), gis (tiles, OGC), hotline (Open311, "
            "hotline keys only; their default), intake (registrations).",
        ),
    ] = None,
    event_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--event-kind",
            help="Limit an intake key to these registration event kinds (repeatable): new, address_change, "
            "scope_change, deregistration.",
        ),
    ] = None,
) -> None:
    """Create an API key of a role with its permissions and print it once (only its HMAC digest is stored)."""
    from api.auth import service
    from api.auth.errors import AuthError
    from api.auth.roles import parse_role

    try:  # permission errors are reported before the database is even started
        service.validate_permissions(parse_role(role), permission, event_kind)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    try:
        with connection() as conn:
            new = service.create_api_key(
                conn,
                ServerSettings().resolved_secret_key(),
                name=name,
                rate_limited=not no_rate_limit,
                rate_per_minute=rate_per_minute,
                role=role,
                scope=scope,
                permissions=permission,
                event_kinds=event_kind,
            )
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    limit = "no rate limit" if no_rate_limit else f"{rate_per_minute} requests/minute"
    typer.echo(new.key)
    who = new.record.role + (f" {new.record.scope}" if new.record.scope else "")
    typer.secho(
        f"API key {new.record.prefix}… for {new.record.name}, role {who}, {_may(new.record)} ({limit}); "
        "it is shown only this once",
        err=True,
    )


def _may(record: ApiKeyRecord) -> str:
    """What a key may do, as lists show it: `permissions geocode,intake` and the event kinds it is limited to."""
    text = "permissions " + ",".join(sorted(record.permissions))
    if record.event_kinds is not None:
        text += " kinds " + ",".join(sorted(record.event_kinds))
    return text


@app.command("list")
def apikey_list() -> None:
    """List the keys by prefix (never the keys themselves)."""
    from api.auth import service

    with connection() as conn:
        keys = service.list_api_keys(conn)
    for record, created_at, revoked_at in keys:
        limit = f"{record.rate_per_minute}/min" if record.rate_limited else "unlimited"
        state = f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "active"
        who = record.role + (f" {record.scope}" if record.scope else "")
        typer.echo(
            f"{record.prefix}…  {record.name}  {who}  {_may(record)}  {limit}  created {created_at:%Y-%m-%d %H:%M}  "
            f"{state}"
        )


@app.command("grant")
def apikey_grant(
    prefix: Annotated[str, typer.Argument(help="The key's first 8 characters (gg_…).")],
    permission: Annotated[
        list[str], typer.Option("--permission", help="A permission to add (repeatable): geocode, gis, hotline, intake.")
    ],
) -> None:
    """Add permissions to a live key (after an upgrade left it geocoding only); effective on its next request."""
    from api.auth import service
    from api.auth.errors import AuthError

    try:
        with connection() as conn:
            count = service.grant_api_key(conn, prefix, permission)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    if count == 0:
        raise fail(f"no active key with prefix {prefix}")
    typer.echo(f"granted {', '.join(permission)} to {count} key(s) with prefix {prefix}")


@app.command("revoke")
def apikey_revoke(prefix: Annotated[str, typer.Argument(help="The key's first 8 characters (gg_…).")]) -> None:
    """Revoke a key: every server process refuses it from its next request."""
    from api.auth import service

    with connection() as conn:
        count = service.revoke_api_key(conn, prefix)
    if count == 0:
        raise fail(f"no active key with prefix {prefix}")
    typer.echo(f"revoked {count} key(s) with prefix {prefix}")
