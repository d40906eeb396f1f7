"""api.cli.staffing: `gridgov staffing`, the staffing plan of a town (plan) and applying it in one step (apply)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

import typer

from api.cli.common import connection, fail

app = typer.Typer(
    help="Staffing (网格员配置): recommended workers per grid and the fewest moves to reach them.", no_args_is_help=True
)

Within = Literal["town", "community", "city"]
TownOption = Annotated[str | None, typer.Option("--town", help="Town code (12 digits, ending 000); omit for the city.")]
WithinOption = Annotated[
    str, typer.Option("--within", help="Where workers may move: town (default), community or city.")
]
# The command line acts as the command centre: the whole city, named in the audit trail.
CLI_ACTOR_NAME = "cli:staffing"


def _within(value: str) -> Within:
    """The --within value, or exit 2 with the choices."""
    if value not in ("town", "community", "city"):
        raise fail(f"--within 只能是 town、community 或 city，而不是 {value}", code=2)
    return value  # type: ignore[return-value]


def _width(text: str) -> int:
    """Columns a string takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _row(cells: list[str], widths: list[int]) -> str:
    """One table line, each cell padded to its column (left for the first, right for figures)."""
    out = []
    for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        pad = " " * max(0, width - _width(cell))
        out.append(cell + pad if i == 0 else pad + cell)
    return "  ".join(out).rstrip()


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A plain text table whose columns line up in a terminal."""
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(_row(r, widths) for r in [header, *rows])


def _figure(value: float | None) -> str:
    """A figure for people: one decimal, "—" for none."""
    return "—" if value is None else f"{value:,.1f}"


@app.command("plan")
def staffing_plan(
    town: TownOption = None,
    within: WithinOption = "town",
    show_all: Annotated[bool, typer.Option("--all", help="List every grid, not only those that change.")] = False,
) -> None:
    """Print the staffing plan (moves, grids that change, totals) and the fingerprint `apply` asks for."""
    from planning import staffing_service
    from planning.errors import PlanningError, PlanNotFound
    from supervision.scope import CITY

    scope_within = _within(within)
    with connection() as conn:
        try:
            plan = staffing_service.plan(conn, scope=CITY, within=scope_within, town_code=town)
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except PlanningError as exc:
            raise fail(str(exc)) from exc
    names = {g.code: g.name or g.code for g in plan.grids}
    if plan.moves:
        typer.echo(f"调动清单（{len(plan.moves)} 人）：")
        typer.echo(
            _table(
                ["网格员", "调出网格", "调入网格", "距离（米）", "移交任务"],
                [
                    [
                        f"{m.worker_name}（{m.worker_id}）",
                        names[m.from_grid],
                        names[m.to_grid],
                        f"{m.distance_m:,.0f}",
                        str(m.open_tasks),
                    ]
                    for m in plan.moves
                ],
            )
        )
    else:
        typer.echo("无需调动：各网格人数已达到方案目标。")
    shown = [g for g in plan.grids if show_all or g.after != g.workers]
    if shown:
        typer.echo("")
        typer.echo("各网格：" if show_all else "人数变化的网格：")
        typer.echo(
            _table(
                ["网格", "编码", "工作量(时/月)", "现有", "建议", "目标", "调整后", "人均(前)", "人均(后)"],
                [
                    [
                        g.name or g.code,
                        g.code,
                        _figure(g.hours),
                        str(g.workers),
                        str(g.recommended),
                        f"{g.target} 缺 {g.short_by} 人（全镇人手不足）" if g.short_by else str(g.target),
                        str(g.after),
                        _figure(g.hours_per_worker_before),
                        _figure(g.hours_per_worker_after),
                    ]
                    for g in shown
                ],
            )
        )
    t = plan.totals
    typer.echo("")
    typer.echo(
        f"范围：{plan.town_code or '全市'}（调动范围 {plan.within}），网格 {t.grids} 个，在岗网格员 {t.workers} 人，"
        f"建议 {t.recommended} 人，工作量 {t.hours:,.1f} 小时/月（标准 {plan.standards_version}，"
        f"每人每月 {plan.capacity_hours:g} 小时）"
    )
    typer.echo(
        f"人数少于建议的网格 {t.understaffed_before} → {t.understaffed_after}，多于建议 {t.overstaffed_before} → "
        f"{t.overstaffed_after}；调动 {t.moves} 人，合计 {t.distance_m / 1000:,.1f} 公里，移交在办任务 "
        f"{t.open_tasks_handed_over} 件；调整后仍缺 {t.shortfall_after} 人"
    )
    typer.echo(f"方案指纹：{plan.fingerprint}")


@app.command("apply")
def staffing_apply(
    fingerprint: Annotated[str, typer.Option("--fingerprint", help="The fingerprint `staffing plan` printed.")],
    town: TownOption = None,
    within: WithinOption = "town",
) -> None:
    """Apply the plan `staffing plan` printed (its fingerprint) in one transaction; refused when it changed."""
    from planning import staffing_service
    from planning.errors import PlanningError, PlanNotFound
    from supervision.audit import Actor
    from supervision.errors import SupervisionError

    scope_within = _within(within)
    try:
        with connection() as conn:
            result = staffing_service.apply(
                conn,
                actor=Actor(CLI_ACTOR_NAME, "command_centre"),
                fingerprint=fingerprint.strip(),
                within=scope_within,
                town_code=town,
            )
    except PlanNotFound as exc:
        raise fail(str(exc), code=2) from exc
    except (PlanningError, SupervisionError) as exc:
        raise fail(f"未应用：{exc}") from exc
    typer.echo(
        f"已应用配员方案（批次 {result.batch_id}）：调动 {len(result.moves)} 名网格员，移交在办任务 "
        f"{result.open_tasks_handed_over} 件，新到网格员接手排队任务 {result.queued_tasks_assigned} 件"
    )
    for m in result.moves:
        typer.echo(f"  {m.worker_name}（{m.worker_id}）：{m.from_grid} → {m.to_grid}")
