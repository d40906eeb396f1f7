"""api.cli.grids: `gridgov grids`, the territory: import boundaries, the repair report, and grid versions (redesign,
apply, rollback, discard, versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from api.cli.common import database_up, fail

app = typer.Typer(help="The territory: towns, communities, grids and grid versions.", no_args_is_help=True)

_SHANGHAI = ZoneInfo("Asia/Shanghai")


@app.command("import")
def grids_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile.")],
    level: Annotated[str, typer.Option(help="town | community | grid")] = "grid",
) -> None:
    """Import boundaries: all features load, or none (a report lists each rejected feature)."""
    from grids.errors import GridsError
    from grids.service import ImportRejected, import_features
    from supervision.territory import relocate_community_points

    if level not in ("town", "community", "grid"):
        raise fail(f"--level must be town, community or grid, not {level!r}", code=2)
    settings = database_up()
    try:
        report = import_features(settings, file, level=level, on_grids_changed=relocate_community_points)
    except ImportRejected as exc:
        raise fail(str(exc)) from exc
    except GridsError as exc:
        raise fail(f"import failed: {exc}") from exc
    typer.echo(report)


@app.command("repair-report")
def grids_repair_report() -> None:
    """Print the stored topology-repair report of the towns."""
    from grids.service import stored_repair_report

    settings = database_up()
    typer.echo(stored_repair_report(settings))


# The grid counts `redesign --grids` accepts (as the API's).
MIN_GRIDS, MAX_GRIDS = 1, 99

# The name the audit trail gives to changes made from the command line.
CLI_ACTOR = "gridgov 命令行"
STATUS_ZH = {"draft": "草案", "active": "生效", "retired": "停用"}
KIND_ZH = {
    "address": "地址",
    "entity": "市场主体",
    "clue": "线索",
    "task": "任务",
    "worker": "网格员",
    "handed_over": "改派任务",
}


@app.command("redesign")
def grids_redesign(
    community: Annotated[str | None, typer.Option("--community", help="Community code (村/社区).")] = None,
    town: Annotated[str | None, typer.Option("--town", help="Town code (镇街): every community of the town.")] = None,
    grids: Annotated[int | None, typer.Option("--grids", help="Number of grids wanted (K), 1 to 99.")] = None,
    lock: Annotated[
        list[str] | None, typer.Option("--lock", help="A grid code kept exactly as it is (repeatable).")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="auto | cpsat | local")] = "auto",
    follow_roads: Annotated[bool, typer.Option("--follow-roads", help="Let boundaries follow roads.")] = False,
    pp_floor: Annotated[
        float | None,
        typer.Option(
            "--pp-floor",
            help="Polsby-Popper floor, 0 to 1 (default: the community's worst grid now, else its town's).",
        ),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Hours per worker within ± this of the mean (0.01 to 0.5).")
    ] = 0.10,
) -> None:
    """Draw a draft grid version for a community or a town with the least disruption; the last line is its id."""
    from api.cli.common import connection
    from planning.errors import PlanningError
    from planning.grid_versions import draw

    if (community is None) == (town is None):
        raise fail("请指定 --community 或 --town 之一", code=2)
    if method not in ("auto", "cpsat", "local"):
        raise fail(f"--method 只能是 auto、cpsat 或 local，而不是 {method!r}", code=2)
    # Checked here, not by typer, so that the refusal is in Chinese like every other.
    if grids is not None and not MIN_GRIDS <= grids <= MAX_GRIDS:
        raise fail(f"--grids 网格数应在 {MIN_GRIDS}–{MAX_GRIDS} 之间，而不是 {grids}", code=2)
    if pp_floor is not None and not 0.0 <= pp_floor <= 1.0:
        raise fail(f"--pp-floor 紧凑度下限应在 0–1 之间，而不是 {pp_floor}", code=2)
    if not 0.01 <= tolerance <= 0.5:
        raise fail(f"--tolerance 允许偏差应在 0.01–0.5 之间，而不是 {tolerance}", code=2)
    try:
        with connection() as conn:
            draft = draw(
                conn,
                community=community,
                town=town,
                k=grids,
                locked=lock or (),
                method=method,
                follow_roads=follow_roads,
                pp_floor=pp_floor,
                tolerance=tolerance,
                actor_name=CLI_ACTOR,
            )
    except PlanningError as exc:
        raise fail(f"已拒绝：{exc}（{exc.reason}）") from exc
    typer.echo(format_figures(draft.figures, version_id=draft.id, base_version_id=draft.base_version_id))
    typer.echo(f"草案已保存，生效请运行：gridgov grids apply {draft.id}")
    typer.echo(str(draft.id))


@app.command("apply")
def grids_apply(version_id: Annotated[int, typer.Argument(help="The draft's id.", metavar="VERSION_ID")]) -> None:
    """Make a draft the active grid version in one transaction (everything of its area moves, audited)."""
    from api.cli.common import connection
    from planning.errors import PlanningError
    from planning.grid_versions import apply

    try:
        with connection() as conn:
            result = apply(conn, version_id, actor_name=CLI_ACTOR)
    except PlanningError as exc:
        raise fail(f"已拒绝：{exc}（{exc.reason}）") from exc
    typer.echo(
        f"网格版本 {result.version_id} 已生效（停用版本 {result.retired_version_id}，批次 {result.batch_id}，"
        f"区域 {result.area_code}）"
    )
    typer.echo(f"调整：{_moved(result.moved)}；用时 {result.seconds:.1f} 秒")


@app.command("discard")
def grids_discard(version_id: Annotated[int, typer.Argument(help="The draft's id.", metavar="VERSION_ID")]) -> None:
    """Discard a draft: its grids go, the version is kept retired with who discarded it."""
    from api.cli.common import connection
    from planning.errors import PlanningError
    from planning.grid_versions import discard

    try:
        with connection() as conn:
            discarded = discard(conn, version_id, actor_name=CLI_ACTOR)
    except PlanningError as exc:
        raise fail(f"已拒绝：{exc}（{exc.reason}）") from exc
    typer.echo(f"草案 {discarded.id}（{discarded.area_code}）已删除")


@app.command("rollback")
def grids_rollback() -> None:
    """Restore the active version's previous version the same way (the rolled-back version is retired)."""
    from api.cli.common import connection
    from planning.errors import PlanningError
    from planning.grid_versions import rollback

    try:
        with connection() as conn:
            result = rollback(conn, actor_name=CLI_ACTOR)
    except PlanningError as exc:
        raise fail(f"已拒绝：{exc}（{exc.reason}）") from exc
    typer.echo(
        f"已回退：网格版本 {result.version_id} 恢复生效（停用版本 {result.retired_version_id}，批次 {result.batch_id}，"
        f"区域 {result.area_code}）"
    )
    typer.echo(f"调整：{_moved(result.moved)}；用时 {result.seconds:.1f} 秒")


@app.command("versions")
def grids_versions(
    status: Annotated[str | None, typer.Option("--status", help="draft | active | retired")] = None,
) -> None:
    """List the grid versions (newest first): id, status, area, base version, author, created, stale drafts."""
    from api.cli.common import connection
    from planning.grid_versions import versions

    if status is not None and status not in STATUS_ZH:
        raise fail(f"--status 只能是 draft、active 或 retired，而不是 {status!r}", code=2)
    with connection() as conn:
        rows = versions(conn, status=status)
    typer.echo(f"{'编号':<6}{'状态':<6}{'区域':<14}{'基础版本':<8}{'创建时间':<18}{'创建者':<14}说明")
    for v in rows:
        note = "已过期：" + "；".join(v.stale_reasons) if v.stale else v.name
        created = v.created_at.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{v.id:<8}{STATUS_ZH.get(v.status, v.status):<6}{v.area_code or '全市':<16}"
            f"{v.base_version_id if v.base_version_id is not None else '-'!s:<12}{created:<22}"
            f"{v.created_by or '-':<14}{note}"
        )


@app.command("relocate")
def grids_relocate(
    version: Annotated[
        int | None,
        typer.Option("--version", help="The grid version (default: the active one; another only with --dry-run)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address (default: GRIDGOV_DASK_SCHEDULER; none: this machine)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the moves, write nothing.")] = False,
) -> None:
    """Recompute the grid of every address and entity in a grid version, in one transaction; print moves per town."""
    from api.cli.common import connection
    from gis.distributed import ClusterError, connect, scheduler_address
    from supervision.errors import NotFound
    from supervision.relocation import NotActive, relocate_version

    address = scheduler_address(scheduler)
    try:
        client = connect(address) if address is not None else None
    except ClusterError as exc:
        raise fail(str(exc), code=2) from exc
    try:
        with connection() as conn:
            report = relocate_version(conn, version_id=version, client=client, dry_run=dry_run)
    except (NotFound, NotActive) as exc:
        raise fail(str(exc), code=2) from exc
    except ClusterError as exc:
        raise fail(f"relocation on the cluster failed, nothing written: {exc}", code=2) from exc
    finally:
        if client is not None:
            client.close()
    verb = "would move" if dry_run else "moved"
    typer.echo(f"grid version {report.version_id}: {verb} {report.addresses:,} addresses, {report.entities:,} entities")
    if report.by_town:
        typer.echo(f"{'town':<14}{'addresses':>10}{'entities':>10}")
        for town, moves in report.by_town.items():
            typer.echo(f"{town:<14}{moves.addresses:>10,}{moves.entities:>10,}")
    if report.uncovered_addresses:
        typer.echo(f"{report.uncovered_addresses:,} addresses lie in no grid of version {report.version_id}")


def _moved(moved: dict[str, int]) -> str:
    return "，".join(f"{KIND_ZH.get(kind, kind)} {n}" for kind, n in moved.items())


def format_figures(figures: dict[str, Any], *, version_id: int, base_version_id: int | None) -> str:
    """A draft's figures before → after, in Chinese, as `gridgov grids redesign` prints them."""
    area = figures.get("area", {})
    lines = [
        f"网格调整草案 {version_id}：{area.get('name', '')}（{area.get('code', '')}），基于网格版本 {base_version_id}"
    ]
    tolerance = float(figures.get("tolerance", 0.10))
    rows = [
        (
            "每人工作量最大偏差",
            f"{_pct(figures.get('max_deviation_before'))} → {_pct(figures.get('max_deviation_after'))}",
        ),
        (
            "最差紧凑度 (Polsby-Popper)",
            f"{_num(figures.get('worst_pp_before'))} → {_num(figures.get('worst_pp_after'))}",
        ),
        (
            "地址保留比例",
            f"{_pct(figures.get('share_addresses_kept'))}（调整 {figures.get('addresses_moved', 0)} 个地址，"
            f"{figures.get('units_moved', 0)} 个单元）",
        ),
        (
            "网格编号",
            f"保留 {len(figures.get('codes_kept', []))} 个，新增 {len(figures.get('codes_new', []))} 个"
            f"{_codes(figures.get('codes_new', []))}，撤销 {len(figures.get('codes_retired', []))} 个"
            f"{_codes(figures.get('codes_retired', []))}",
        ),
        ("锁定网格", "、".join(figures.get("locked", [])) or "无"),
        ("均衡（±" + f"{tolerance:.0%}" + "）", "是" if figures.get("balanced") else "否"),
        (
            "求解",
            f"{figures.get('method', '')}，求解 {float(figures.get('seconds', 0.0)):.1f} 秒，"
            f"共 {float(figures.get('draw_seconds', 0.0)):.1f} 秒",
        ),
    ]
    lines.extend(f"  {label}：{value}" for label, value in rows)
    lines.extend(f"  说明：{note}" for note in figures.get("notes", []))
    lines.append(f"  {'网格':<16}{'工时/月':>8}{'人数':>5}{'每人工时':>9}{'偏差':>8}{'紧凑度':>7}{'地址':>7}")
    lines.extend(
        f"  {g.get('code', ''):<18}{float(g.get('hours', 0.0)):>10.1f}{int(g.get('workers', 0)):>6}"
        f"{float(g.get('hours_per_worker', 0.0)):>12.1f}{_pct(g.get('deviation'), signed=True):>10}"
        f"{_num(g.get('polsby_popper')):>9}{int(g.get('addresses', 0)):>8}"
        for g in figures.get("grids_after", [])
    )
    return "\n".join(lines)


def _pct(value: object, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{float(value):+.1%}" if signed else f"{float(value):.1%}"  # type: ignore[arg-type]


def _num(value: object) -> str:
    return "-" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


def _codes(codes: list[str]) -> str:
    return f"（{'、'.join(codes)}）" if codes else ""
