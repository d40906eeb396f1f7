"""api.cli.inspection_lists: `gridgov inspection-lists` — 检查事项清单与检查人员名录：CSV 导入导出，检查对象统计."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="检查事项清单与检查人员名录：CSV 导入导出", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="CSV 文件（UTF-8，可带 BOM；或 GB18030）", exists=True, dir_okay=False)]
DepartmentOpt = Annotated[
    str | None, typer.Option("--department", help="只导入、导出该部门的行（其他部门的行使整个文件被拒绝）")
]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="停用文件所涉部门中文件里没有的行（不删除）")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="写入此文件；缺省输出到标准输出")]
ACTOR = "cli"


def _import(kind: str, path: Path, department: str | None, replace: bool) -> None:
    """Import one file, print what changed, or every bad line and exit 1."""
    from planning.directory_service import department_codes, import_inspectors, import_items
    from planning.errors import PlanningError

    if department is not None and department not in department_codes():
        raise fail(f"未知的部门编码“{department}”")
    run = import_items if kind == "items" else import_inspectors
    try:
        with connection() as conn:
            summary = run(conn, path.read_bytes(), actor=ACTOR, department=department, replace=replace)
    except PlanningError as exc:
        raise fail(str(exc).replace("；第", "\n  第").replace("：第", "：\n  第", 1)) from exc
    what = "事项" if kind == "items" else "检查人员"
    typer.echo(
        f"已导入{what} {summary.rows} 行：新增 {summary.created}，修改 {summary.updated}，"
        f"未变 {summary.unchanged}，停用 {summary.deactivated}"
    )


def _export(data: bytes, out: Path | None) -> None:
    if out is None:
        typer.echo(data.decode("utf-8-sig"), nl=False)
    else:
        out.write_bytes(data)
        rows = data.count(b"\n") - 1
        typer.echo(f"已写入 {out}（{rows} 行）", err=True)


@app.command("import-items")
def import_items_command(file: FileArg, replace: ReplaceOpt = False, department: DepartmentOpt = None) -> None:
    """导入检查事项清单：按事项编号新增或修改；全部行无误才写入，同一文件再导入一次不做任何改动。"""
    _import("items", file, department, replace)


@app.command("export-items")
def export_items_command(department: DepartmentOpt = None, out: OutOpt = None) -> None:
    """导出在用的检查事项（格式与导入相同）。"""
    from planning.directory_service import export_items

    with connection() as conn:
        data = export_items(conn, department)
    _export(data, out)


@app.command("import-inspectors")
def import_inspectors_command(file: FileArg, replace: ReplaceOpt = False, department: DepartmentOpt = None) -> None:
    """导入检查人员名录：资格须为本部门已有事项，居住地网格须在现行版本中，办公地点须在市内。"""
    _import("inspectors", file, department, replace)


@app.command("export-inspectors")
def export_inspectors_command(department: DepartmentOpt = None, out: OutOpt = None) -> None:
    """导出检查人员名录（离岗人员 active 为“否”；格式与导入相同）。"""
    from planning.directory_service import export_inspectors

    with connection() as conn:
        data = export_inspectors(conn, department)
    _export(data, out)


@app.command("targets")
def targets_command(
    item: Annotated[list[str], typer.Option("--item", help="事项编号（可重复）")],
    town: Annotated[str | None, typer.Option("--town", help="镇街编码；缺省为全市")] = None,
) -> None:
    """检查对象名录统计：各事项在镇街（或全市）内按信用等级的对象数（实时读取登记主体）。"""
    from planning.directory_service import item_departments, target_counts

    with connection() as conn:
        known = item_departments(conn)
        unknown = [c for c in item if c not in known]
        if unknown:
            raise fail(f"未知的检查事项：{'、'.join(unknown)}")
        counts = target_counts(conn, sorted(set(item)), towns=[town] if town else None)
    typer.echo(f"{'事项':<28}{'A':>8}{'B':>8}{'C':>8}{'D':>8}{'合计':>8}")
    for code in sorted(set(item)):
        per_class = [counts.get((code, c), 0) for c in "ABCD"]
        typer.echo(f"{code:<30}" + "".join(f"{n:>8}" for n in per_class) + f"{sum(per_class):>9}")
    typer.echo(f"合计 {sum(counts.values())} 个检查对象（{town or '全市'}）")
