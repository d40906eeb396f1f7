"""api.routers.workers: the grid workers a dispatcher may assign a task to, with their open workload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.auth.roles import Principal
from api.deps import CurrentScope, GridCode, ReadConn, allowed
from grids.codes import COMMUNITY_PATTERN
from supervision.permissions import Capability
from supervision.worker_roster import RosterWorker, workers_of

router = APIRouter(tags=["网格员"])
WorkerManager = Annotated[Principal, Depends(allowed(Capability.WORKER_MANAGE))]
CommunityCode = Annotated[str | None, Query(pattern=COMMUNITY_PATTERN.pattern, description="村（社区）编码（12 位）")]


class WorkerList(BaseModel):
    """在岗网格员（按网格、编号排序）。"""

    items: list[RosterWorker]


@router.get(
    "/workers",
    response_model=WorkerList,
    summary="可分派的网格员（本账号范围内）",
    responses={403: {"description": "该网格或村（社区）不在本账号范围内"}},
)
def get_workers(
    _: WorkerManager, scope: CurrentScope, conn: ReadConn, grid: GridCode = None, community: CommunityCode = None
) -> WorkerList:
    """某网格或某村（社区）的在岗网格员，含在办任务数与承载量；调度员默认本村（社区）。"""
    return WorkerList(items=workers_of(conn, scope, grid=grid, community=community))
