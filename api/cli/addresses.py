"""api.cli.addresses: `gridgov addresses`, maintenance of the standard address library (标准地址库) from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="The standard address library (标准地址库): maintenance.", no_args_is_help=True)


@app.command("import")
def addresses_import(
    file: Annotated[
        Path, typer.Argument(help="CSV (full_text, lon, lat, level[, parent_full_text]) or GeoPackage of points.")
    ],
    changed_by: Annotated[
        str | None, typer.Option(help="Who is recorded in the address history (default: cli:<OS user>).")
    ] = None,
) -> None:
    """Import standard addresses: every row loads, or none (a report lists each rejected row); re-runs are no-ops."""
    import getpass

    from address_library.address_import import import_rows, read_address_file
    from address_library.errors import AddressRejected, MaintenanceError
    from grids.placement import GridPlacement

    try:  # an unreadable file is reported before the database is even started
        rows = read_address_file(file)
    except MaintenanceError as exc:
        raise fail(f"cannot import: {exc}", code=2) from exc
    try:
        with connection() as conn:
            placement = GridPlacement.load(conn)
            report = import_rows(
                conn, placement, rows, changed_by=changed_by or f"cli:{getpass.getuser()}", source=str(file)
            )
    except AddressRejected as exc:
        raise fail(str(exc)) from exc
    except MaintenanceError as exc:
        raise fail(f"import failed: {exc}") from exc
    typer.echo(report.summary())


aliases_app = typer.Typer(
    help="The geocoder's learned aliases (别名): list, show, promote to the whole city, withdraw.", no_args_is_help=True
)
app.add_typer(aliases_app, name="aliases")


def _cli_actor(by: str | None) -> Any:
    import getpass

    from supervision.audit import Actor

    return Actor(by or f"cli:{getpass.getuser()}", "command_centre")


def _supervision_errors() -> Any:
    from supervision.errors import InvalidInput, NotFound, OutOfScope

    return (InvalidInput, NotFound, OutOfScope)


@aliases_app.command("list")
def aliases_list(
    state: Annotated[str | None, typer.Option(help="active, suspended or withdrawn.")] = None,
    scope: Annotated[str | None, typer.Option(help="community or city.")] = None,
    community: Annotated[str | None, typer.Option(help="The community code (12 digits) that taught it.")] = None,
    text_: Annotated[str | None, typer.Option("--text", help="Normalized text containing this.")] = None,
    taught_by: Annotated[str | None, typer.Option(help="Who taught it (as the audit trail names them).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, most recently changed first.")] = 50,
) -> None:
    """List the aliases: id, state, scope, community, who taught it, typed text → standard address."""
    from supervision.aliases import AliasFilters, list_aliases
    from supervision.scope import CITY

    if state not in (None, "active", "suspended", "withdrawn"):
        raise fail(f"unknown state {state!r}: active, suspended or withdrawn", code=2)
    if scope not in (None, "community", "city"):
        raise fail(f"unknown scope {scope!r}: community or city", code=2)
    filters = AliasFilters(state=state, scope=scope, community=community, text=text_, taught_by=taught_by)  # type: ignore[arg-type]
    with connection() as conn:
        page = list_aliases(conn, CITY, filters, limit=limit, cursor=None)
    for a in page.items:
        typer.echo(
            f"{a.id}\t{a.state}\t{a.scope}\t{a.community_code or '-'}\t{a.taught_by or '-'}\t"
            f"{a.normalized_text} → {a.standard_address}"
        )
    typer.echo(f"{page.total} alias(es)")


@aliases_app.command("show")
def aliases_show(alias_id: Annotated[int, typer.Argument(help="The alias id.")]) -> None:
    """Trace one alias: who taught it, when, from which review item, every later resolution, promotion, withdrawal."""
    from supervision.aliases import alias_trace
    from supervision.scope import CITY

    try:
        with connection() as conn:
            trace = alias_trace(conn, alias_id, CITY)
    except _supervision_errors() as exc:
        raise fail(str(exc)) from exc
    a = trace.alias
    typer.echo(f"alias {a.id}: {a.raw_text!r} ({a.normalized_text}) → {a.address_id} {a.standard_address}")
    typer.echo(f"state {a.state}, scope {a.scope}, community {a.community_code or '-'}")
    typer.echo(f"taught by {a.taught_by or '-'} at {a.created_at.isoformat()} (review item {a.review_item_id or '-'})")
    for t in trace.teachings:
        typer.echo(
            f"  {t.taught_at.isoformat()} {t.outcome} by {t.taught_by} → {t.address_id} "
            f"(review item {t.review_item_id or '-'}, community {t.community_code or '-'})"
        )
    if trace.promoted_at is not None:
        typer.echo(f"promoted by {trace.promoted_by} at {trace.promoted_at.isoformat()}: {trace.promote_reason}")
    if trace.withdrawn_at is not None:
        typer.echo(f"withdrawn by {trace.withdrawn_by} at {trace.withdrawn_at.isoformat()}: {trace.withdraw_reason}")


@aliases_app.command("promote")
def aliases_promote(
    alias_id: Annotated[int, typer.Argument(help="The alias id.")],
    reason: Annotated[str, typer.Option(help="Why the whole city should use it (recorded).")],
    by: Annotated[str | None, typer.Option(help="Who is recorded as promoting it (default: cli:<OS user>).")] = None,
) -> None:
    """Make an alias city-wide (a suspended one active again): running servers use it within their next check."""
    from supervision.aliases import promote

    try:
        with connection() as conn:
            trace = promote(conn, alias_id, actor=_cli_actor(by), reason=reason)
    except _supervision_errors() as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"alias {alias_id} is now used city-wide ({trace.alias.normalized_text} → {trace.alias.standard_address})"
    )


@aliases_app.command("withdraw")
def aliases_withdraw(
    alias_id: Annotated[int, typer.Argument(help="The alias id.")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn (recorded).")],
    by: Annotated[str | None, typer.Option(help="Who is recorded as withdrawing it (default: cli:<OS user>).")] = None,
) -> None:
    """Withdraw an alias (its row and history stay): running servers stop using it within their next check."""
    from supervision.aliases import withdraw

    try:
        with connection() as conn:
            withdraw(conn, alias_id, actor=_cli_actor(by), reason=reason)
    except _supervision_errors() as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"alias {alias_id} withdrawn")
