"""api.cli.users: `gridgov users`, accounts: create one with a role and a scope (an api_client account with its
permissions), grant an api_client account more, disable, enable or reset the password of one (each revokes its tokens
and sessions at once), ensure the demo account."""

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
    password: Annotated[
        str | None,
        typer.Option(
            help="DISCOURAGED: a password on the command line is seen by every user of the machine (ps, shell "
            "history); kept for scripts and tests. Without it the password is prompted twice, or read with "
            "--password-stdin. At least 12 characters, not the user name, not common, hard to guess (zxcvbn 3/4).",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
    ] = False,
    scope: Annotated[
        str | None,
        typer.Option(
            help="Town code (town_leader), community code (dispatcher), worker id (grid_worker), "
            "department code (department_officer); none for admin and command_centre."
        ),
    ] = None,
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            help="api_client accounts only, repeatable: geocode | gis | intake (geocode when none is given).",
        ),
    ] = None,
) -> None:
    """Create an account (the password is stored as an argon2 hash; prompted unless --password-stdin)."""
    import sys

    from api.auth import service
    from api.auth.errors import AuthError
    from api.auth.passwords import check_password
    from api.auth.roles import parse_role, validate_scope

    if password is not None and password_stdin:
        raise fail("choose one of --password and --password-stdin", code=2)
    try:  # format errors are reported before the database is even started
        parsed = parse_role(role)
        validate_scope(parsed, scope)
        service.validate_user_permissions(parsed, permission)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password, username.strip())
        with connection() as conn:
            user = service.create_user(
                conn, username=username, role=role, scope=scope, password=password, permissions=permission
            )
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    where = f" scope {user.scope}" if user.scope else ""
    granted = f" permissions {','.join(sorted(user.permissions))}" if user.permissions is not None else ""
    typer.echo(f"created user {user.username} ({user.role}{where}){granted}")


@app.command("grant")
def users_grant(
    username: Annotated[str, typer.Argument(help="The api_client account's sign-in name.")],
    permission: Annotated[
        list[str], typer.Option("--permission", help="Repeatable: geocode | gis | intake.", show_default=False)
    ],
) -> None:
    """Grant an api_client account more permissions (its sessions and tokens have them from the next request)."""
    from api.auth import service
    from api.auth.errors import AuthError

    try:
        with connection() as conn:
            granted = service.grant_user(conn, username, permission)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    typer.echo(f"user {username.strip()} now has permissions {','.join(sorted(granted))}")


@app.command("ensure-demo")
def users_ensure_demo() -> None:
    """Create the demo accounts (the command centre's `demo`, and one per role on a loaded city) when no account
    exists, and say how to sign in."""
    from api.auth import service
    from api.auth.errors import AuthError
    from supervision.kpi import ROLE_LABELS_ZH

    try:
        with connection() as conn:
            server = ServerSettings()
            url = f"http://{server.host}:{server.port}/"
            created = service.ensure_demo_users(conn)
    except AuthError as exc:  # a GRIDGOV_DEMO_PASSWORD the password policy refuses
        raise fail(f"GRIDGOV_DEMO_PASSWORD: {exc}", code=2) from exc
    if created is None:
        typer.echo(f"accounts exist; sign in at {url}")
        return
    users, password = created
    typer.echo(f"sign in at {url} (the grid worker's phone page: {url}field)")
    for user in users:
        where = f", scope {user.scope}" if user.scope else ""
        typer.echo(f"  user:     {user.username:<16} {ROLE_LABELS_ZH.get(user.role, user.role)}{where}")
    typer.echo(f"  password: {password}   (the same for each; shown once; set GRIDGOV_DEMO_PASSWORD to choose it)")


@app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="The account's sign-in name.")]) -> None:
    """Disable an account: its sign-ins, bearer tokens and sessions are refused from the next request."""
    _set_active(username, active=False)
    typer.echo(f"disabled user {username.strip()}; its tokens and sessions are revoked")


@app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="The account's sign-in name.")]) -> None:
    """Enable a disabled account again (it signs in anew: its old tokens stay revoked)."""
    _set_active(username, active=True)
    typer.echo(f"enabled user {username.strip()}")


def _set_active(username: str, *, active: bool) -> None:
    from api.auth import service
    from api.auth.errors import AuthError

    try:
        with connection() as conn:
            service.set_user_active(conn, username, active=active)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc


@app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument(help="The account's sign-in name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from the first line of standard input.")
    ] = False,
) -> None:
    """Set a new password (prompted twice, or --password-stdin; never on the command line); revokes the account's
    tokens and sessions at once."""
    import sys

    from api.auth import service
    from api.auth.errors import AuthError
    from api.auth.passwords import check_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:  # the policy is checked before the database is even started
        check_password(password, username)
        with connection() as conn:
            service.reset_password(conn, username, password)
    except AuthError as exc:
        raise fail(str(exc), code=2) from exc
    typer.echo(f"reset the password of {username.strip()}; its tokens and sessions are revoked")
