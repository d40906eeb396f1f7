"""api.cli.workload: `gridgov workload`, grid workloads in hours per month — recompute and store them, or show a unit's."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(
    help="Workload (工作量): hours per month per grid, from the workload standards.", no_args_is_help=True
)


def _level_of(code: str) -> str | None:
    """The level a code names by its form: 15 digits a grid, 12 ending in 000 a town, 12 others a community."""
    if len(code) == 15 and code.isdigit():
        return "grid"
    if len(code) == 12 and code.isdigit():
        return "town" if code.endswith("000") else "community"
    return None


def _hours(value: float | None) -> str:
    """Hours with one decimal, or a dash when there is none."""
    return "—" if value is None else f"{value:,.1f}"


@app.command("refresh")
def workload_refresh(
    version: Annotated[int | None, typer.Option(help="Grid version id (default: the active version).")] = None,
) -> None:
    """Recompute and store every grid's workload of a version in one pass (the demo load runs this too)."""
    from planning.errors import PlanningError
    from planning.workload_service import city_standards, grid_workloads, refresh

    with connection() as conn:
        standards = city_standards(conn)
        started = time.perf_counter()
        try:
            written = refresh(conn, version_id=version, standards=standards)
        except PlanningError as exc:
            raise fail(str(exc), code=2) from exc
        total = sum(w.hours for w in grid_workloads(conn, version_id=version, standards=standards).values())
    typer.echo(
        f"已计算 {written:,} 个网格的工作量（工时标准 {standards.version}），合计每月 {_hours(total)} 小时，"
        f"用时 {time.perf_counter() - started:.1f} 秒"
    )


@app.command("show")
def workload_show(
    code: Annotated[str, typer.Argument(help="Grid (15 digits), community (12) or town (12, ending in 000) code.")],
    version: Annotated[
        int | None, typer.Option(help="Grid version id (default: the active version; a draft too).")
    ] = None,
) -> None:
    """Print a unit's hours per month, workers and breakdown (and its grids) as a Chinese table."""
    from planning.errors import PlanningError
    from planning.workload_service import unit_workload
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    level = _level_of(code)
    if level is None:
        raise fail(f"编码格式不对：{code}（网格 15 位，村（社区）、镇街 12 位）", code=2)
    with connection() as conn:
        try:
            unit = unit_workload(conn, CITY, level=level, code=code, version_id=version)
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc), code=2) from exc
    typer.echo(
        f"{unit.name}（{unit.code}）  网格版本 {unit.version_id}（{unit.version_status}）  工时标准 {unit.standards_version}"
    )
    typer.echo(
        f"每月工作量 {_hours(unit.workload.hours)} 小时  网格员 {unit.workers} 人  每人 {_hours(unit.hours_per_worker)} 小时"
        f"  承载量 {_hours(unit.capacity_hours)} 小时  建议 {unit.recommended_workers} 人"
    )
    typer.echo("")
    typer.echo(f"{'项目':<14}{'每月件数':>12}{'每件分钟':>10}{'每月小时':>10}")
    for item in unit.workload.items:
        if item.count or item.hours:
            typer.echo(f"{item.label_zh:<14}{item.count:>12,.2f}{item.minutes_each:>10.1f}{item.hours:>10.2f}")
    if unit.worker_loads:
        typer.echo("")
        typer.echo(f"{'网格员':<12}{'每月小时':>10}{'本人在办':>8}{'其中小时':>10}")
        for worker in unit.worker_loads:
            typer.echo(
                f"{worker.name:<12}{worker.hours:>10.1f}{worker.own_open_tasks:>8.0f}{worker.own_open_hours:>10.1f}"
            )
    if unit.level != "grid":
        typer.echo("")
        typer.echo(f"{'网格':<17}{'每月小时':>10}{'人数':>6}{'每人小时':>10}{'建议人数':>8}")
        for grid in unit.grids:
            typer.echo(
                f"{grid.code:<17}{grid.hours:>10.1f}{grid.workers:>6}{_hours(grid.hours_per_worker):>10}"
                f"{grid.recommended_workers:>8}"
            )


@app.command("capacity")
def workload_capacity(
    hours: Annotated[
        float | None, typer.Option(help="One worker's field hours a month for these duties (the city's own figure).")
    ] = None,
    source: Annotated[str, typer.Option(help="Where the figure comes from (a time study, a decision).")] = "",
    clear: Annotated[bool, typer.Option(help="Go back to the standards file's figure.")] = False,
) -> None:
    """Show or set the monthly field capacity of one worker that recommended head-counts divide by."""
    from planning.workload import load_standards
    from planning.workload_service import capacity_setting, set_capacity
    from supervision.errors import InvalidInput

    with connection() as conn:
        if clear or hours is not None:
            try:
                set_capacity(conn, None if clear else hours, source=source, actor_name="cli:workload")
            except InvalidInput as exc:
                raise fail(str(exc), code=2) from exc
        setting = capacity_setting(conn)
    standards = load_standards()
    if setting is None:
        typer.echo(
            f"每人每月外勤承载量 {standards.field_hours_per_worker_month:g} 小时（工时标准 {standards.version} 的默认值）"
        )
    else:
        typer.echo(
            f"每人每月外勤承载量 {setting.hours:g} 小时（本市设定，依据：{setting.source}；{setting.set_by} "
            f"于 {setting.set_at:%Y-%m-%d %H:%M} 设定；工时标准默认 {standards.field_hours_per_worker_month:g} 小时）"
        )
