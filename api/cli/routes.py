"""api.cli.routes: 检查路线求解（VROOM 格式） (issue 16; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="检查路线求解（VROOM 格式）", no_args_is_help=True)
