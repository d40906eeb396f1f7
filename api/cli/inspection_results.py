"""api.cli.inspection_results: 检查结果录入与公示 (issue 16; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="检查结果录入与公示", no_args_is_help=True)
