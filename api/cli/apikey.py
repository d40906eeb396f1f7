"""api.cli.apikey: `gridgov apikey`, API keys for programs: create one (shown once), list them, revoke one."""

from __future__ import annotations

from typing import Annotated

import typer

from api.auth.ratelimit import DEFAULT_RATE_PER_MINUTE
from api.cli.common import connection, fail
from gis.settings import ServerSettings

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
) -> None:
    """Create an API key of a role and print it once (only its HMAC digest is stored)."""
    from api.auth import service
    from api.auth.errors import AuthError

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
            )
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    limit = "no rate limit" if no_rate_limit else f"{rate_per_minute} requests/minute"
    typer.echo(new.key)
    who = new.record.role + (f" {new.record.scope}" if new.record.scope else "")
    typer.secho(
        f"API key {new.record.prefix}… for {new.record.name}, role {who} ({limit}); it is shown only this once",
        err=True,
    )


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
        typer.echo(f"{record.prefix}…  {record.name}  {who}  {limit}  created {created_at:%Y-%m-%d %H:%M}  {state}")


@app.command("revoke")
def apikey_revoke(prefix: Annotated[str, typer.Argument(help="The key's first 8 characters (gg_…).")]) -> None:
    """Revoke a key (servers stop accepting it within the key cache time, 60 s by default)."""
    from api.auth import service

    with connection() as conn:
        count = service.revoke_api_key(conn, prefix)
    if count == 0:
        raise fail(f"no active key with prefix {prefix}")
    typer.echo(f"revoked {count} key(s) with prefix {prefix}")
