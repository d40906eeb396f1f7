"""api.cli.inspection_results: `gridgov inspection-results` — record an item's result of a drawn visit, publish the
results that are due (or a plan's now). The command line acts as the command centre."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="检查结果：录入、公示", no_args_is_help=True)

CLI_ACTOR_NAME = "cli:inspection-results"


@app.command("record")
def record(
    visit_id: Annotated[int, typer.Argument(help="检查户编号")],
    item: Annotated[str, typer.Option("--item", help="抽查事项编码")],
    outcome: Annotated[
        str, typer.Option("--outcome", help="ok 未发现问题；problem 发现问题（已责令整改）；not_found 查无下落")
    ],
    note: Annotated[str, typer.Option("--note", help="检查备注（内部，不公示）")] = "",
) -> None:
    """Record one item's result; print it, its publication day and the grid task it started."""
    from planning import inspection_results
    from planning.errors import PlanningError, PlanNotFound
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    with connection() as conn:
        try:
            result = inspection_results.record_result(
                conn, visit_id, item_code=item, outcome=outcome, note=note, actor=CLI_ACTOR_NAME, scope=CITY
            )
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"检查户 {result.visit_id}（{result.uscc}）事项「{result.item_name}」：{result.outcome_zh}")
    typer.echo(f"最迟公示日期：{result.publish_due:%Y-%m-%d}")
    if result.task_id is not None:
        typer.echo(f"已生成网格任务 {result.task_id}")
    typer.echo("该户各事项均已录入，检查完成" if result.visit_status == "done" else "该户尚有事项未录入结果")


@app.command("publish")
def publish(
    plan: Annotated[
        int | None, typer.Option("--plan", help="立即公示该计划已录入的全部结果；不填为公示到期的结果")
    ] = None,
) -> None:
    """Publish the results due today, or every recorded result of one plan now."""
    from gis import clock
    from planning import inspection_results
    from planning.errors import PlanningError, PlanNotFound
    from supervision.calendar import SHANGHAI
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    with connection() as conn:
        try:
            if plan is None:
                count = inspection_results.publish_due_results(conn, clock.now().astimezone(SHANGHAI).date())
            else:
                count = inspection_results.publish_plan(conn, plan, actor=CLI_ACTOR_NAME, scope=CITY)
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc)) from exc
    where = f"抽查计划 {plan} " if plan is not None else "到期"
    typer.echo(f"已公示{where}检查结果 {count} 条")
