"""api.cli.inspection_lists: 检查事项清单与检查人员名录：CSV 导入导出 (issue 16; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="检查事项清单与检查人员名录：CSV 导入导出", no_args_is_help=True)
