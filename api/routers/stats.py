"""api.routers.stats: the supervision figures per town, community, grid and department; the department list."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.auth.roles import Principal
from api.deps import CurrentScope, ReadConn, allowed, day_window
from supervision.errors import OutOfScope
from supervision.export import MAX_CSV_ROWS, bounded, csv_file, overdue_columns
from supervision.permissions import Capability
from supervision.routing import Department, default_router
from supervision.stats import StatsReport, StatsWindow, stats_report, unit_stats

router = APIRouter(tags=["统计"])
DEFAULT_DAYS = 30


@router.get("/stats", summary="统计：任务完成率、按时率、逾期清单、线索办结率、持证率")
def get_stats(
    _: Annotated[Principal, Depends(allowed(Capability.STATS_READ))],
    scope: CurrentScope,
    conn: ReadConn,
    level: Annotated[Literal["town", "community", "grid", "department"], Query()] = "town",
    code: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[date | None, Query(alias="from", description="起始日（含，北京时间）；默认近 30 天")] = None,
    to: Annotated[date | None, Query(description="截止日（含）；默认今天")] = None,
) -> StatsReport:
    """按镇街、村（社区）、网格或部门统计：推送与完成任务数、完成率、按时率、逾期清单（逾期时间归责到当时的责任人）、线索上报与办结、持证率。"""
    since, until = day_window(from_, to, default_days=DEFAULT_DAYS)
    assert since is not None and until is not None
    # Each scope reads only its own part: a town, a community, a grid, a department.
    if not scope.covers(conn, level, code):
        raise OutOfScope(f"you may not read the figures of {level} {code or '(all)'}")
    return stats_report(
        conn, level=level, code=code, window=StatsWindow(since=since, until=until), town_codes=scope.towns
    )


@router.get(
    "/stats/overdue.csv",
    summary="导出逾期清单（CSV）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8（带 BOM）CSV，中文表头"}},
)
def get_overdue_csv(
    _: Annotated[Principal, Depends(allowed(Capability.STATS_READ))],
    scope: CurrentScope,
    conn: ReadConn,
    level: Annotated[Literal["town", "community", "grid", "department"], Query()] = "town",
    code: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """与 /v1/stats 同一范围的逾期清单（最久的在前，至多 10000 行），含逾期时间按责任方的归属。"""
    since, until = day_window(None, None, default_days=DEFAULT_DAYS)
    assert since is not None and until is not None
    if not scope.covers(conn, level, code):
        raise OutOfScope(f"you may not read the overdue list of {level} {code or '(all)'}")
    report = unit_stats(
        conn, level=level, code=code, window=StatsWindow(since=since, until=until), town_codes=scope.towns,
        overdue_limit=MAX_CSV_ROWS + 1,
    )  # fmt: skip
    doc = csv_file(overdue_columns(), bounded(report.overdue), "逾期清单", "overdue")
    return Response(doc.body, media_type=doc.media_type, headers=doc.headers)


class DepartmentList(BaseModel):
    """许可与监管部门（编号与名称）。"""

    items: list[Department]


@router.get(
    "/departments",
    summary="许可与监管部门（谁审批、谁监管）",
    dependencies=[Depends(allowed(Capability.DEPARTMENT_READ))],
)
def get_departments() -> DepartmentList:
    """部门编号与名称；部门人员账号的范围即其部门编号。"""
    return DepartmentList(items=list(default_router().departments()))
