"""api.routers.kpi: who the caller is (/v1/me), and the dashboard's figures at each level of the drill-down
(city, town, community, grid, department) with their trends."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth.roles import Principal
from api.deps import CurrentPrincipal, CurrentScope, ReadConn, allowed, check_day, day_window
from supervision.calendar import today
from supervision.kpi import MAX_TREND_DAYS, ROLE_LABELS_ZH, Area, Kpi, Trend, caller_area, kpi, trend
from supervision.permissions import MOVE_RULES, MOVE_TARGETS, Capability
from supervision.stats import StatsWindow

router = APIRouter(tags=["指挥中心指标"])
DEFAULT_DAYS = 30
StatsReader = Annotated[Principal, Depends(allowed(Capability.STATS_READ))]
KpiLevelQuery = Annotated[
    Literal["city", "town", "community", "grid", "department"],
    Query(description="层级：全市、镇街、村（社区）、网格、部门"),
]
KpiCode = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="单位编码（全市不填）")]


class Me(BaseModel):
    """当前账号：名称、类型、角色（含中文名）、范围、能力及可做的任务流转。"""

    name: str
    kind: Literal["user", "api_key"]
    role: str
    role_label: str = Field(description="角色中文名")
    scope: str | None = Field(description="账号范围字符串（镇街、村（社区）编码，网格员编号或部门编号）")
    town_code: str | None
    area: Area
    capabilities: list[str] = Field(description="本角色的能力（supervision.permissions.Capability）")
    task_moves: list[str] | None = Field(description="可流转到的状态；null 为状态机允许的任何流转；[] 为不能流转")
    task_move_rules: dict[str, list[str]] | None = Field(
        default=None,
        description="按任务当前状态可流转到的状态（持有者规则）；null 为状态机允许的任何流转；未列出的状态不能流转",
    )


@router.get("/me", summary="当前账号（角色、范围、能力）")
def get_me(principal: CurrentPrincipal, conn: ReadConn) -> Me:
    """当前凭据是谁：角色与中文名、范围及其中文名称、能力、可做的任务流转。"""
    # What this credential may do: its role's table, narrowed by a key's or an api_client account's permissions.
    capabilities = sorted(c.value for c in Capability if principal.may(c))
    moves: list[str] | None
    rules: dict[str, list[str]] | None
    if not principal.may(Capability.TASK_TRANSITION):
        moves, rules = [], {}
    else:
        targets = MOVE_TARGETS.get(principal.role)
        moves = None if targets is None else sorted(s.value for s in targets)
        by_status = MOVE_RULES.get(principal.role)
        rules = None if by_status is None else {s.value: sorted(t.value for t in to) for s, to in by_status.items()}
    return Me(
        name=principal.name,
        kind=principal.kind,
        role=principal.role,
        role_label=ROLE_LABELS_ZH.get(principal.role, principal.role),
        scope=principal.scope,
        town_code=principal.town_code,
        area=caller_area(conn, principal.area),
        capabilities=capabilities,
        task_moves=moves,
        task_move_rules=rules,
    )


@router.get(
    "/kpi", summary="指挥中心指标：一个单位及其下级单位的数字", responses={403: {"description": "不在本账号范围内"}}
)
def get_kpi(
    _: StatsReader,
    scope: CurrentScope,
    conn: ReadConn,
    level: KpiLevelQuery = "city",
    code: KpiCode = None,
    from_: Annotated[date | None, Query(alias="from", description="起始日（含，北京时间）；默认近 30 天")] = None,
    to: Annotated[date | None, Query(description="截止日（含）；默认今天")] = None,
) -> Kpi:
    """推送与办结任务数、完成率、按时率、在办与逾期、线索上报与办结、线索办结率、持证率；种子系统的总体数字；下级单位；范围。

    与 /v1/stats 同一口径；全市只对全市范围的账号开放，部门人员请用 level=department。
    """
    since, until = day_window(from_, to, default_days=DEFAULT_DAYS)
    assert since is not None and until is not None
    return kpi(conn, scope, level=level, code=code, window=StatsWindow(since=since, until=until))


@router.get("/kpi/trend", summary="指挥中心指标的逐日趋势", responses={403: {"description": "不在本账号范围内"}})
def get_kpi_trend(
    _: StatsReader,
    scope: CurrentScope,
    conn: ReadConn,
    level: KpiLevelQuery = "city",
    code: KpiCode = None,
    days: Annotated[int, Query(ge=1, le=MAX_TREND_DAYS, description="天数（截至 to）")] = DEFAULT_DAYS,
    to: Annotated[date | None, Query(description="截止日（含，北京时间）；默认今天")] = None,
) -> Trend:
    """逐日（北京时间）：推送任务数、其中已办结数、当日到期未按期办结数、线索上报数、其中已办结数。"""
    last = check_day(to, "to") or today()
    return trend(conn, scope, level=level, code=code, first=last - timedelta(days=days - 1), last=last)
