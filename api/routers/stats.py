"""api.routers.stats: the supervision figures per town, community, grid and department; the department list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine, text

from api.auth.deps import CurrentPrincipal
from api.auth.roles import OutOfScope, Role, allowed_town_codes
from api.deps import engine
from api.routers.clues import SHANGHAI, day_window
from supervision.routing import default_router
from supervision.stats import StatsWindow, headline, unit_stats

router = APIRouter(tags=["统计"])
WriteEngine = Annotated[Engine, Depends(engine)]
DEFAULT_DAYS = 30
# Roles that read figures at all; API clients send registrations and geocode, nothing more.
READERS = frozenset(
    {
        Role.ADMIN.value,
        Role.COMMAND_CENTRE.value,
        Role.TOWN_LEADER.value,
        Role.DISPATCHER.value,
        Role.GRID_WORKER.value,
        Role.DEPARTMENT_OFFICER.value,
    }
)


def _check_scope(principal: Any, level: str, code: str | None) -> None:
    """Each role reads only its own part: a town, a community, a grid, a department."""
    role, scope = principal.role, principal.scope
    if role not in READERS:
        raise OutOfScope(f"a {role} cannot read statistics")
    if role in (Role.ADMIN, Role.COMMAND_CENTRE):
        return
    if role == Role.DEPARTMENT_OFFICER:
        if level != "department" or code != scope:
            raise OutOfScope("a department officer reads only their department's figures (level=department&code=…)")
        return
    if level == "department":
        raise OutOfScope("department figures are for the command centre and the department itself")
    if code is None:
        if role != Role.TOWN_LEADER:
            raise OutOfScope("name the community or grid (code=…) within your area")
        return
    if role == Role.TOWN_LEADER and not code.startswith(str(scope)[:9]):
        raise OutOfScope(f"{code} is outside your town")
    if role == Role.DISPATCHER and (level == "town" or not code.startswith(str(scope))):
        raise OutOfScope(f"{code} is outside your community")


@router.get("/stats", summary="统计：任务完成率、按时率、逾期清单、线索办结率、持证率")
def get_stats(
    principal: CurrentPrincipal,
    db: WriteEngine,
    level: Annotated[Literal["town", "community", "grid", "department"], Query()] = "town",
    code: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[date | None, Query(alias="from", description="起始日（含，北京时间）；默认近 30 天")] = None,
    to: Annotated[date | None, Query(description="截止日（含）；默认今天")] = None,
) -> dict[str, Any]:
    """按镇街、村（社区）、网格或部门统计：推送与完成任务数、完成率、按时率、逾期清单（逾期时间归责到当时的责任人）、线索上报与办结、持证率。"""
    if principal.role == Role.GRID_WORKER and code is not None:
        with db.connect() as conn:
            grid = conn.execute(
                text("SELECT grid_code FROM worker WHERE id = :w"), {"w": int(principal.scope or 0)}
            ).scalar_one_or_none()
        if level != "grid" or code != grid:
            raise OutOfScope(f"{code} is not your grid")
    else:
        _check_scope(principal, level, code)
    today = datetime.now(SHANGHAI).date()
    until_day = to or today
    since_day = from_ or (until_day - timedelta(days=DEFAULT_DAYS - 1))
    since, until = day_window(since_day, until_day)
    assert since is not None and until is not None
    towns = allowed_town_codes(principal) if principal.role != Role.DEPARTMENT_OFFICER else None
    window = StatsWindow(since=since, until=until)
    with db.connect() as conn:
        out = unit_stats(conn, level=level, code=code, window=window, town_codes=towns)
        out["headline"] = headline(conn, window=window, town_codes=towns)
    return out


@router.get("/departments", summary="许可与监管部门（谁审批、谁监管）")
def get_departments() -> dict[str, Any]:
    """部门编号与名称；部门人员账号的范围即其部门编号。"""
    return {"items": [{"code": d.code, "name": d.name} for d in default_router().departments()]}
