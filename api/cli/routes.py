"""api.cli.routes: `gridgov routes` — solve a VROOM JSON problem (solve), or a drawn plan's team days (plan)."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="检查路线求解（VROOM 格式）与抽查计划的每日路线", no_args_is_help=True)

# The command line acts as the command centre: the whole city, named as such.
CLI_ACTOR_NAME = "cli:routes"
MAX_PROBLEM_BYTES = 10 * 1024 * 1024


def _width(text: str) -> int:
    """Columns a string takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A plain text table whose columns line up in a terminal."""
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


@app.command("solve")
def solve_problem(
    problem: Annotated[Path, typer.Argument(help="VROOM 问题 JSON 文件（- 为标准输入）", allow_dash=True)],
    out: Annotated[Path | None, typer.Option("--out", help="解写入此文件（默认标准输出）")] = None,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", help="求解时限（秒，最多 30；覆盖问题中的 options.max_seconds）")
    ] = None,
) -> None:
    """Solve a VROOM JSON problem; write VROOM's JSON solution. Unassigned jobs are listed (exit 1 unless
    options.allow_unassigned)."""
    from planning.errors import PlanningError, RouteInfeasible
    from planning.route_service import solve_vroom

    raw = sys.stdin.buffer.read(MAX_PROBLEM_BYTES + 1) if str(problem) == "-" else _read(problem)
    if len(raw) > MAX_PROBLEM_BYTES:
        raise fail("问题文件超过 10 MB", code=2)
    try:
        payload: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"问题文件不是合法的 JSON：{exc}", code=2) from exc
    if max_seconds is not None and isinstance(payload, dict):
        payload.setdefault("options", {})
        if isinstance(payload["options"], dict):
            payload["options"]["max_seconds"] = max_seconds
    with connection() as conn:
        try:
            answer, _unassigned = solve_vroom(conn, payload)
        except RouteInfeasible as exc:
            for item in exc.unassigned:
                typer.echo(f"未安排：任务 {item['id']}（{item['reason']}）{item['detail']}", err=True)
            raise fail(str(exc)) from exc
        except PlanningError as exc:
            raise fail(str(exc), code=2) from exc
    text = json.dumps(answer, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        summary = answer["summary"]
        typer.echo(
            f"已写入 {out}：{summary['routes']} 条路线，行驶 {summary['duration'] / 60:.0f} 分钟，"
            f"未安排 {summary['unassigned']} 个"
        )


def _read(path: Path) -> bytes:
    """A problem file's bytes (at most one byte over the limit), or exit 2 when it cannot be read."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_PROBLEM_BYTES + 1)
    except OSError as exc:
        raise fail(f"读不了 {path}：{exc.strerror}", code=2) from exc


@app.command("plan")
def solve_plan(
    plan_id: Annotated[int, typer.Argument(help="抽查计划编号")],
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="求解时限（秒，各检查组分摊，最多 30）")] = 2.0,
) -> None:
    """Plan a drawn plan's team days on the roads (replacing any) and print them as a table."""
    from planning.errors import PlanningError, PlanNotFound
    from planning.route_service import solve_plan_routes
    from supervision.scope import CITY

    if not 0 < max_seconds <= 30:
        raise fail("--max-seconds 须在 0 到 30 之间", code=2)
    with connection() as conn:
        try:
            routes = solve_plan_routes(conn, plan_id, scope=CITY, actor=CLI_ACTOR_NAME, max_seconds=max_seconds)
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except PlanningError as exc:
            raise fail(str(exc)) from exc
    rows: list[list[str]] = []
    for team in routes.teams:
        for day in team.days:
            for order, stop in enumerate(day.stops, start=1):
                rows.append(
                    [
                        f"第{team.team_no}组",
                        day.date,
                        str(order),
                        stop.arrival,
                        stop.departure,
                        stop.window_text,
                        stop.name,
                        "、".join(stop.items),
                    ]
                )
    if rows:
        typer.echo(_table(["检查组", "日期", "顺序", "到达", "离开", "营业时间", "检查对象", "检查事项"], rows))
    for team in routes.teams:
        for day in team.days:
            typer.echo(
                f"第{team.team_no}组 {day.date}：{day.leave} 出发，{day.back} 返回，{len(day.stops)} 站，"
                f"行驶 {day.travel_s / 60:.0f} 分钟、{day.distance_m / 1000:.1f} 公里"
            )
    for missing in routes.unassigned:
        typer.echo(f"未排入：{missing.name}（{missing.uscc}）{missing.detail}")
    typer.echo(f"共 {routes.figures['days']} 个组日、{routes.figures['stops']} 站，未排入 {len(routes.unassigned)} 个")
