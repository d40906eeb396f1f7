"""api.cli.inspections: 双随机抽查计划：建立与摇号 (issue 16; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="双随机抽查计划：建立与摇号", no_args_is_help=True)
