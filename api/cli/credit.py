"""api.cli.credit: 信用分级分类：重算、查看与抽查比例 (issue 16; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="信用分级分类：重算、查看与抽查比例", no_args_is_help=True)
