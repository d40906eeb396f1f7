"""api.cli.assign: `gridgov assign daily`, the morning's assignment of open tasks by deadline and hours, by hand."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="Assign open tasks to grid workers (also run each working morning by `gridgov serve`).",
                  no_args_is_help=True)  # fmt: skip


@app.callback()
def assign() -> None:
    """Assign open tasks to grid workers."""


@app.command("daily")
def assign_daily(
    on: Annotated[
        str | None, typer.Option("--date", help="Day planned, YYYY-MM-DD (default: today, Shanghai).")
    ] = None,
    town: Annotated[str | None, typer.Option(help="Only this town (its code); default the whole city.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and print, write nothing.")] = False,
) -> None:
    """Each open task to a worker of its grid with room before its deadline, else a neighbouring grid's (audited)."""
    from planning.daily_service import assign_daily as run
    from planning.errors import PlanningError
    from supervision.audit import Actor
    from supervision.calendar import today

    try:
        day = date.fromisoformat(on) if on else today()
    except ValueError as exc:
        raise fail(f"日期格式应为 YYYY-MM-DD：{on}", code=2) from exc
    try:
        with connection() as conn:
            s = run(conn, on=day, town_code=town, dry_run=dry_run, actor=Actor("cli:assign", "command_centre"))
    except PlanningError as exc:
        raise fail(f"{exc}（{exc.reason}）", code=2) from exc
    title = "每日分派（试算，未写入）" if dry_run else "每日分派"
    typer.echo(f"{title} {s.on.isoformat()}{' 镇街 ' + s.town_code if s.town_code else ' 全市'}")
    rows = [
        ("网格员", f"{s.workers:,}"),
        ("每人每日外勤工时", f"{s.hours_per_day:.2f} 小时"),
        ("待分派任务", f"{s.tasks:,}"),
        ("跟进中（留给原网格员）", f"{s.carried:,}"),
        ("改派" if not dry_run else "将改派", f"{s.changed:,}"),
        ("其中交相邻网格" if not dry_run else "其中将交相邻网格", f"{s.crossed_now:,}"),
        ("保持原网格员", f"{s.kept:,}"),
        ("由相邻网格办理（含以前分派）", f"{s.crossed:,}"),
        ("预计逾期", f"{s.overflow:,}（共 {s.late_days:,} 个工作日）"),
        ("留在网格队列", f"{s.unplaced:,}"),
        ("网格员工时（最多／平均）", f"{s.max_worker_hours:.2f} / {s.mean_worker_hours:.2f} 小时"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"  {key.ljust(width, '　')}  {value}")
    if s.lenders:
        typer.echo("  本次交出任务最多的网格：" + "，".join(f"{grid}（{n}）" for grid, n in s.lenders))
    if s.batch_id is not None:
        typer.echo(f"  记录批次 planning_batch #{s.batch_id}")
