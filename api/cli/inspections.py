"""api.cli.inspections: `gridgov inspections` — plan a double-random inspection (publish its commitment), draw it with
the announced public value, show, list and cancel plans. The command line acts as the command centre."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="双随机抽查计划：建立（公布承诺）、摇号、查看、撤销", no_args_is_help=True)

CLI_ACTOR_NAME = "cli:inspections"
# The command line names no public value: by default it is announced at the draw itself (on the spot).
DEFAULT_PUBLIC_VALUE_SOURCE = "摇号时当场公布的公开随机数"
STATUS_ZH = {"committed": "已公布承诺", "drawn": "已摇号", "cancelled": "已撤销"}


def _secret_key() -> str:
    """The app's secret (the one the server uses): it seals a plan's server seed until the draw."""
    from gis.settings import ServerSettings

    return ServerSettings().resolved_secret_key()


def _ratios(values: list[str]) -> dict[str, Decimal]:
    """--ratio A=0.03 … → {class: ratio}, or exit 2 naming the bad one."""
    out: dict[str, Decimal] = {}
    for value in values:
        cls, sep, number = value.partition("=")
        try:
            if not sep:
                raise InvalidOperation
            out[cls.strip().upper()] = Decimal(number.strip())
        except InvalidOperation as exc:
            raise fail(f"--ratio 应写成 类别=比例，如 A=0.03，而不是 {value}", code=2) from exc
    return out


def _moment(value: str | None) -> datetime:
    """--public-value-at as an instant (Asia/Shanghai when no offset is given); now by default."""
    from gis import clock
    from supervision.calendar import SHANGHAI

    if value is None:
        return clock.now()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--public-value-at 应为 ISO 时间，如 2026-12-02T20:30+08:00，而不是 {value}", code=2) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def _strata_lines(strata: list[dict[str, Any]]) -> list[str]:
    """One line per stratum: public id, class (internal), size, ratio, n, and the selected count once drawn."""
    header = "分层编号  信用类别  候选户数  比例  应抽户数"
    return [header, *(f"{s['id']}  {s['credit_class']}  {s['size']}  {s['ratio']}  {s['n']}" for s in strata)]


@app.command("plan")
def plan(
    department: Annotated[list[str], typer.Option("--department", help="部门编码（可重复：联合抽查）")],
    town: Annotated[list[str] | None, typer.Option("--town", help="镇街编码（可重复）")] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="网格编码（可重复；与 --town 二选一）")] = None,
    item: Annotated[list[str] | None, typer.Option("--item", help="抽查事项编码（可重复；默认部门全部事项）")] = None,
    ratio: Annotated[list[str] | None, typer.Option("--ratio", help="按信用类别的比例，如 A=0.03（可重复）")] = None,
    public_value_source: Annotated[
        str, typer.Option("--public-value-source", help="公开随机数的来源")
    ] = DEFAULT_PUBLIC_VALUE_SOURCE,
    public_value_at: Annotated[
        str | None, typer.Option("--public-value-at", help="公开随机数的公布时间（ISO；默认现在）")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="计划名称")] = None,
    load_cap: Annotated[int, typer.Option("--load-cap", help="每名执法人员的检查户数上限")] = 20,
) -> None:
    """Create a plan: fix the candidates, print the commitment, the candidates' SHA-256, the strata; the id last."""
    from planning import inspection_plans
    from planning.errors import PlanningError
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    request = inspection_plans.PlanRequest(
        departments=tuple(department),
        items=tuple(item) if item else None,
        towns=tuple(town) if town else None,
        grids=tuple(grid) if grid else None,
        ratios=_ratios(ratio or []) or None,
        public_value_source=public_value_source,
        public_value_at=_moment(public_value_at),
        title=title,
        load_cap=load_cap,
    )
    with connection() as conn:
        try:
            created = inspection_plans.create_plan(
                conn, request, actor=CLI_ACTOR_NAME, scope=CITY, secret_key=_secret_key()
            )
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc)) from exc
        view = inspection_plans.plan_view(conn, created.id, CITY)
    typer.echo(f"抽查计划：{view['title']}（{'、'.join(view['departments'])}）")
    typer.echo(f"承诺 SHA-256(服务器种子)：{view['commitment']}")
    typer.echo(f"候选名单 SHA-256：{view['candidates_sha256']}（{view['candidate_count']} 行）")
    typer.echo(f"公开随机数：{view['public_value_source']}，公布时间 {view['public_value_at']:%Y-%m-%d %H:%M}")
    if not view["public_value_announced"]:
        # Shown publicly too (public_value_announced: false): an auditor trusts an announced value more.
        typer.echo("注意：公开随机数未事先公布（摇号时当场给出）；用 --public-value-at 事先公布来源与时间更可信")
    for line in _strata_lines(view["strata"]):
        typer.echo(line)
    typer.echo(f"公开页面：{view['public_url']}；摇号：gridgov inspections draw {created.id} --public-value …")
    typer.echo(str(created.id))


@app.command("draw")
def draw_plan(
    plan_id: Annotated[int, typer.Argument(help="抽查计划编号")],
    public_value: Annotated[str, typer.Option("--public-value", help="公开随机数（原样逐字使用）")],
) -> None:
    """Draw a plan with the announced public value; print the seed, the counts and the teams."""
    from planning import inspection_plans
    from planning.errors import PlanningError, PlanNotFound
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    with connection() as conn:
        try:
            drawn = inspection_plans.draw(
                conn, plan_id, public_value, actor=CLI_ACTOR_NAME, scope=CITY, secret_key=_secret_key()
            )
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc)) from exc
        view = inspection_plans.plan_view(conn, plan_id, CITY)
    typer.echo(f"公开随机数：{view['public_value']}")
    typer.echo(f"种子：{drawn.seed}")
    stages = drawn.timings
    typer.echo(
        f"用时：读取与核对候选名单 {stages['read_s']:.2f} 秒，抽取 {stages['select_s']:.2f} 秒，"
        f"组成检查与匹配检查组 {stages['teams_s']:.2f} 秒，保存 {stages['store_s']:.2f} 秒"
    )
    selected = sum(len(s["selected"]) for s in view["strata"])
    typer.echo(f"抽中 {selected} 项（{drawn.visits} 户，{drawn.teams} 个检查组，{drawn.unmatched} 户未能组队）")
    for gap in view["unmatched"]:
        typer.echo(f"未能组队 {gap['count']} 户：{gap['reason_zh']}（{gap['reason']}）")
    for team in view["teams"]:
        members = "、".join(f"{p['name']}（{p['department']}）" for p in team["inspectors"])
        count = sum(1 for v in view["visits"] if v["team_id"] == team["id"])
        typer.echo(f"第 {team['team_no']} 组  {count} 户  {team['office']['name']}  {members}")
    for visit in view["visits"]:
        if visit["team_id"] is None:
            typer.echo(f"未能组队：{visit['uscc']} {visit['name']}：{visit['unmatched_reason_zh']}")


@app.command("show")
def show(plan_id: Annotated[int, typer.Argument(help="抽查计划编号")]) -> None:
    """Print a plan: status, commitment, public value and seed once drawn, strata, teams and visits."""
    from planning import inspection_plans
    from planning.errors import PlanNotFound
    from supervision.scope import CITY

    with connection() as conn:
        try:
            view = inspection_plans.plan_view(conn, plan_id, CITY)
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
    typer.echo(f"{view['id']}  {view['title']}  {STATUS_ZH[view['status']]}")
    typer.echo(f"承诺：{view['commitment']}")
    typer.echo(f"候选名单 SHA-256：{view['candidates_sha256']}（{view['candidate_count']} 行）")
    if view["status"] == "drawn":
        typer.echo(f"公开随机数：{view['public_value']}  种子：{view['seed']}")
    if view["cancel_reason"]:
        typer.echo(f"撤销原因：{view['cancel_reason']}")
    for line in _strata_lines(view["strata"]):
        typer.echo(line)
    for visit in view["visits"]:
        team = next((t["team_no"] for t in view["teams"] if t["id"] == visit["team_id"]), None)
        where = f"第 {team} 组" if team else f"未能组队（{visit['unmatched_reason_zh']}）"
        typer.echo(f"{visit['uscc']}  {visit['name']}  {'、'.join(visit['items'])}  {where}")


@app.command("list")
def list_plans() -> None:
    """Print every plan, newest first: id, status, title, public value time."""
    from planning import inspection_plans
    from supervision.scope import CITY

    with connection() as conn:
        rows = inspection_plans.list_plans(conn, CITY)
    if not rows:
        typer.echo("还没有抽查计划")
    for row in rows:
        typer.echo(
            f"{row['id']}  {STATUS_ZH[row['status']]}  {row['title']}  "
            f"公开随机数公布于 {row['public_value_at']:%Y-%m-%d %H:%M}  候选 {row['candidate_count']} 行"
        )


@app.command("cancel")
def cancel(
    plan_id: Annotated[int, typer.Argument(help="抽查计划编号")],
    reason: Annotated[str, typer.Option("--reason", help="撤销原因（公开）")],
) -> None:
    """Cancel a plan before its draw (kept and shown publicly as cancelled)."""
    from planning import inspection_plans
    from planning.errors import PlanningError, PlanNotFound
    from supervision.errors import SupervisionError
    from supervision.scope import CITY

    with connection() as conn:
        try:
            inspection_plans.cancel(conn, plan_id, reason, actor=CLI_ACTOR_NAME, scope=CITY)
        except PlanNotFound as exc:
            raise fail(str(exc), code=2) from exc
        except (PlanningError, SupervisionError) as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"已撤销抽查计划 {plan_id}")
