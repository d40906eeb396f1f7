"""api.cli.credit: `gridgov credit` — recompute and show credit classes (信用分级分类), read and set the sampling ratios."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from api.cli.common import connection, fail

app = typer.Typer(help="信用分级分类：重算、查看与抽查比例", no_args_is_help=True)

ACTOR = "cli:credit"


@app.command("recompute")
def credit_recompute(
    uscc: Annotated[str | None, typer.Option("--uscc", help="只重算这一个市场主体（统一社会信用代码）")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="评定依据的日期 YYYY-MM-DD（默认今天）")] = None,
) -> None:
    """按现行规则重算信用类别（全市或一个市场主体）；只有类别或理由变化的才写入历史。"""
    from planning.credit_service import recompute
    from planning.errors import PlanningError
    from supervision.calendar import today

    try:
        day = date.fromisoformat(as_of) if as_of else today()
    except ValueError:
        raise fail(f"日期格式不对：{as_of}（应为 YYYY-MM-DD）") from None
    try:
        with connection() as conn:
            summary = recompute(conn, as_of=day, actor=ACTOR, uscc=uscc)
    except PlanningError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"评定日期 {summary.as_of.isoformat()}  规则版本 {summary.rules_version}  批次 {summary.run_id}")
    typer.echo(f"评定 {summary.entities:,} 户，类别或理由有变化 {summary.changed:,} 户")
    typer.echo("  ".join(f"{cls} 类 {n:,}" for cls, n in summary.by_class.items()))
    for move, n in summary.moves.items():
        typer.echo(f"  {move}  {n:,} 户")


@app.command("show")
def credit_show(uscc: Annotated[str, typer.Argument(help="统一社会信用代码")]) -> None:
    """显示一个市场主体的信用类别、理由、未消除的记录与评定历史。"""
    from planning.credit_service import credit_of
    from planning.errors import PlanningError

    try:
        with connection() as conn:
            view = credit_of(conn, uscc)
    except PlanningError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{view.name}（{view.uscc}）  {view.credit_class} 类 {view.class_label_zh}")
    when = view.assessed_at.isoformat(timespec="minutes") if view.assessed_at else "尚未按规则评定（按现有记录测算）"
    typer.echo(f"评定时间：{when}")
    typer.echo("理由：")
    for reason in view.reasons:
        typer.echo(f"  - {reason['label_zh']}（{reason['points']} 分）：{reason['detail_zh']}")
    if view.open_records:
        typer.echo("未消除的记录：")
        for rec in view.open_records:
            typer.echo(f"  - {rec.recorded_at:%Y-%m-%d} {rec.kind} {rec.source}/{rec.source_id or ''} {rec.detail}")
    typer.echo("历史：")
    if not view.history:
        typer.echo("  （无）")
    for item in view.history:
        codes = "、".join(str(r["label_zh"]) for r in item.reasons)
        typer.echo(f"  {item.assessed_at:%Y-%m-%d %H:%M}  {item.previous_class or '—'} → {item.credit_class}  {codes}")


@app.command("ratios")
def credit_ratios() -> None:
    """列出各信用类别的抽查比例：默认、下限、一般事项上限、现行，以及本市的设置。"""
    from planning.credit import CLASS_LABELS_ZH
    from planning.ratios import CLASSES, ratio_overview

    with connection() as conn:
        overview = ratio_overview(conn)
    rules = overview.rules
    typer.echo(f"抽查比例规则 {rules.version}（优先级：计划指定事项 > 计划指定类别 > 本市事项 > 本市全部事项 > 默认）")
    typer.echo(f"{'类别':<14}{'默认':>8}{'下限':>8}{'一般事项上限':>12}{'现行':>8}")
    for cls in CLASSES:
        typer.echo(
            f"{cls} {CLASS_LABELS_ZH[cls]:<10}{rules.default[cls]:>10}{rules.floor[cls]:>10}"
            f"{rules.general_cap[cls]:>12}{overview.effective[cls]:>10}"
        )
    typer.echo("本市设置：" if overview.settings else "本市设置：无（全部按默认）")
    for s in overview.settings:
        item = "全部事项" if s.item_code == "*" else s.item_code
        typer.echo(f"  {item}  {s.credit_class} 类  {s.ratio}  依据：{s.source}  （{s.set_by}，{s.set_at:%Y-%m-%d}）")


def _ratio(text: str) -> Decimal:
    """The ratio as an exact decimal, or exit 1."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise fail(f"比例不是数字：{text}") from None


@app.command("set-ratio")
def credit_set_ratio(
    item: Annotated[str, typer.Option("--item", help="检查事项编码；* 为全部事项")],
    credit_class: Annotated[str, typer.Option("--class", help="信用类别 A、B、C、D")],
    ratio: Annotated[str, typer.Option("--ratio", help="比例，(0, 1] 之间，最多 5 位小数，如 0.02")],
    source: Annotated[str, typer.Option("--source", help="依据，如年度抽查工作计划的文号")],
) -> None:
    """设置本市的一条抽查比例（超出范围、低于下限或一般事项高于上限时拒绝）。"""
    from planning.errors import PlanningError
    from planning.ratios import set_ratio

    value = _ratio(ratio)
    try:
        with connection() as conn:
            set_ratio(conn, item_code=item, credit_class=credit_class, ratio=value, source=source, actor=ACTOR)
    except PlanningError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"已设置：{'全部事项' if item == '*' else item} {credit_class} 类抽查比例 {value.normalize()}")


@app.command("clear-ratio")
def credit_clear_ratio(
    item: Annotated[str, typer.Option("--item", help="检查事项编码；* 为全部事项")],
    credit_class: Annotated[str, typer.Option("--class", help="信用类别 A、B、C、D")],
) -> None:
    """删除本市的一条抽查比例设置（恢复为上一级：全部事项的设置或默认）。"""
    from planning.ratios import clear_ratio

    with connection() as conn:
        removed = clear_ratio(conn, item, credit_class)
    if not removed:
        raise fail(f"没有这条设置：{'全部事项' if item == '*' else item} {credit_class} 类")
    typer.echo(f"已删除：{'全部事项' if item == '*' else item} {credit_class} 类的设置")


@app.command("record")
def credit_record(
    uscc: Annotated[str, typer.Option("--uscc", help="统一社会信用代码")],
    kind: Annotated[
        str, typer.Option("--kind", help="类型：finding 检查发现问题、penalty 行政处罚、clue 线索、hotline 热线")
    ],
    source_id: Annotated[
        str, typer.Option("--source-id", help="来源编号（如处罚决定书文号）；同一编号重复登记不重复计入")
    ],
    detail: Annotated[str, typer.Option("--detail", help="说明")],
    department: Annotated[str | None, typer.Option("--department", help="记录部门编码")] = None,
    source: Annotated[
        str, typer.Option("--source", help="来源：import 导入（默认）、inspection、task、clue")
    ] = "import",
) -> None:
    """登记一条信用记录（如部门的行政处罚）；下次重算（每月或按需）时计入信用类别。"""
    from planning.credit_service import RECORD_KINDS, record
    from planning.errors import PlanningError

    try:
        with connection() as conn:
            stored = record(
                conn,
                uscc=uscc,
                kind=kind,
                source=source,
                source_id=source_id,
                department_code=department,
                detail=detail,
                actor=ACTOR,
            )
    except PlanningError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"已登记：{stored.uscc} {RECORD_KINDS[stored.kind]}（{stored.source}/{stored.source_id}），记录编号 {stored.id}"
    )


@app.command("resolve")
def credit_resolve(
    kind: Annotated[str, typer.Option("--kind", help="类型：finding、penalty、clue、hotline")],
    source_id: Annotated[str, typer.Option("--source-id", help="登记时的来源编号")],
    source: Annotated[str, typer.Option("--source", help="来源：import（默认）、inspection、task、clue")] = "import",
) -> None:
    """消除一条信用记录（已整改、信用修复或撤销）；下次重算时不再计入。"""
    from planning.credit_service import resolve_record
    from planning.errors import PlanningError

    try:
        with connection() as conn:
            stored = resolve_record(conn, source=source, source_id=source_id, kind=kind)
    except PlanningError as exc:
        raise fail(str(exc)) from exc
    assert stored.resolved_at is not None
    typer.echo(f"已消除：{stored.uscc} 的记录 {stored.id}（{stored.resolved_at:%Y-%m-%d %H:%M}）")
