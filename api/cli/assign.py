"""api.cli.assign: (being written — issue 15)."""

from __future__ import annotations

import typer

app = typer.Typer(help="(issue 15)", no_args_is_help=True)
