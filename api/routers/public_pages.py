"""api.routers.public_pages: the public notice pages of double-random inspections (双随机抽查公示), HTML, no credential.

`/public/inspections/page` lists every plan; `/public/inspections/{id}/page` shows one: the commitment and the public
value's source and time before the draw; after it the public value, server seed, seed and each stratum's selected
credit codes, the links to `candidates.csv` and the JSON, how to check the draw, and the published results. The
same facts as `GET /public/inspections/{id}` (planning.inspection_plans.public_view), never a credit class, an
inspector, a person or a note. No script and no inline style (a strict Content-Security-Policy holds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.routers.public_inspections import PlanId, PublicConn
from maps.page import TITLE, render_page
from planning import inspection_plans
from planning.errors import PlanNotFound
from planning.inspection_results import PLAN_STATUS_LABELS_ZH
from supervision.calendar import SHANGHAI
from supervision.routing import RoutingError, default_router

router = APIRouter(tags=["公开"])

# No script runs and nothing but our own stylesheet and icon loads: the strict policy issue 17 brings to every page,
# already held here (the pages have no script and no inline style).
_CACHE = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
}


def _department_name(code: str) -> str:
    """A department's Chinese name (its code when the list does not know it)."""
    try:
        return default_router().department(code).name
    except RoutingError:
        return code


def _local(moment: datetime | None) -> str:
    """An instant as Dongguan reads it (年-月-日 时:分), or a dash."""
    return "—" if moment is None else moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _plan_context(plan: dict[str, Any]) -> dict[str, Any]:
    """The public view of a plan with names, local times and the status in Chinese, for the template."""
    return {
        **plan,
        "department_names": [_department_name(c) for c in plan["departments"]],
        "status_zh": PLAN_STATUS_LABELS_ZH.get(plan["status"], plan["status"]),
        "created_local": _local(plan["created_at"]),
        "public_value_at_local": _local(plan["public_value_at"]),
        "drawn_local": _local(plan["drawn_at"]),
        "cancelled_local": _local(plan["cancelled_at"]),
    }


@router.get("/inspections/page", response_class=HTMLResponse, summary="双随机抽查公示目录", include_in_schema=False)
def index_page(conn: PublicConn) -> HTMLResponse:
    """Every plan, newest first, with its status and a link to its notice."""
    plans = [_plan_context(p) for p in inspection_plans.public_list(conn)]
    html = render_page("public_inspections.html", title=f"双随机抽查公示 · {TITLE}", plans=plans)
    return HTMLResponse(html, headers=_CACHE)


@router.get(
    "/inspections/{plan_id}/page", response_class=HTMLResponse, summary="抽查计划公示页", include_in_schema=False
)
def plan_page(plan_id: PlanId, conn: PublicConn) -> HTMLResponse:
    """One plan's notice: commitment, draw, how to check it, and the published results (404 for an unknown plan)."""
    try:
        plan = _plan_context(inspection_plans.public_view(conn, plan_id))
    except PlanNotFound:
        missing = render_page("public_inspection_missing.html", title=f"没有该抽查计划 · {TITLE}", plan_id=plan_id)
        return HTMLResponse(missing, status_code=404, headers=_CACHE)
    items = {i["code"]: i["name"] for i in plan["items"]}
    for item in plan["items"]:
        item["department_name"] = _department_name(item["department"])
    for stratum in plan["strata"]:
        stratum["item_name"] = items.get(stratum["id"].split("/")[0], "")
    for result in plan["results"]:
        result["published_local"] = _local(datetime.fromisoformat(result["published_at"]))
    html = render_page("public_inspection.html", title=f"{plan['title']} · 双随机抽查公示", plan=plan)
    return HTMLResponse(html, headers=_CACHE)
