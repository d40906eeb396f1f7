"""api.cli.users: `gridgov users`, accounts: create one with a role and a scope, ensure the demo account."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import connection, fail
from gis.settings import ServerSettings

app = typer.Typer(help="Accounts: users with a role and a scope.", no_args_is_help=True)


@app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Sign-in name.")],
    role: Annotated[
        str,
        typer.Option(
            help="admin | command_centre | town_leader | dispatcher | grid_worker | department_officer | api_client"
        ),
    ],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters.")],
    scope: Annotated[
        str | None,
        typer.Option(
            help="Town code (town_leader), community code (dispatcher), worker id (grid_worker), "
            "department code (department_officer); none for admin and command_centre."
        ),
    ] = None,
) -> None:
    """Create an account (the password is stored as an argon2 hash)."""
    from api.auth import service
    from api.auth.errors import AuthError
    from api.auth.roles import parse_role, validate_scope

    try:  # format errors are reported before the database is even started
        validate_scope(parse_role(role), scope)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    try:
        with connection() as conn:
            user = service.create_user(conn, username=username, role=role, scope=scope, password=password)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    where = f" scope {user.scope}" if user.scope else ""
    typer.echo(f"created user {user.username} ({user.role}{where})")


@app.command("ensure-demo")
def users_ensure_demo() -> None:
    """Create the demo accounts (the command centre's `demo`, and one per role on a loaded city) when no account
    exists, and say how to sign in."""
    from api.auth import service
    from supervision.kpi import ROLE_LABELS_ZH

    with connection() as conn:
        server = ServerSettings()
        url = f"http://{server.host}:{server.port}/"
        created = service.ensure_demo_users(conn)
    if created is None:
        typer.echo(f"accounts exist; sign in at {url}")
        return
    users, password = created
    typer.echo(f"sign in at {url} (the grid worker's phone page: {url}field)")
    for user in users:
        where = f", scope {user.scope}" if user.scope else ""
        typer.echo(f"  user:     {user.username:<16} {ROLE_LABELS_ZH.get(user.role, user.role)}{where}")
    typer.echo(f"  password: {password}   (the same for each; shown once; set GRIDGOV_DEMO_PASSWORD to choose it)")
