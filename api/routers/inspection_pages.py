"""api.routers.inspection_pages: the inspection planning page (/inspections, /inspections/{plan_id}) and the route
sheets to print (/inspections/{plan_id}/print), behind the sign-in and the inspection.read capability."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from api.auth.deps import optional_principal
from api.auth.roles import Principal
from api.deps import DbEngine
from api.routers.pages import refused_page, sign_in_first, wants_html
from gis import clock
from maps.page import page_config, render_forbidden, render_page
from maps.settings import MapSettings
from planning import inspection_plans, route_service, staffing_service
from planning.errors import PlanNotFound
from planning.inspection_results import PLAN_STATUS_LABELS_ZH
from supervision.errors import OutOfScope
from supervision.permissions import Capability
from supervision.routing import default_router

router = APIRouter(tags=["双随机抽查"])

PlanId = Annotated[int, Path(ge=1, le=2**62, description="抽查计划编号")]
PageCaller = Annotated[Principal | None, Depends(optional_principal)]
# The command centre plans for every department; it is no department of inspections itself.
_NOT_INSPECTING = frozenset({"command_centre"})


def _departments(principal: Principal) -> list[dict[str, str]]:
    """The departments the caller may plan and read on the page: an officer their own, others every department."""
    everyone = [asdict(d) for d in default_router().departments() if d.code not in _NOT_INSPECTING]
    if principal.area.kind == "department":
        return [d for d in everyone if d["code"] == principal.area.code]
    return everyone


def _may_plan(principal: Principal, departments: list[str] | None) -> bool:
    """Whether the page offers planning (and, on a plan, its draw, routes and moves): the command centre for any
    plan, an officer only for a plan of their own department alone (joint plans are the command centre's)."""
    if not principal.may(Capability.INSPECTION_PLAN):
        return False
    return departments is None or principal.area.kind != "department" or departments == [principal.area.code]


def _config(
    request: Request, principal: Principal, db: DbEngine, plan_id: int | None, departments: list[str] | None
) -> dict[str, Any]:
    """What the page's module needs: map settings (WGS84 outlines), departments, towns, rights and the plan."""
    settings: MapSettings = request.app.state.map_settings
    config = page_config(settings)
    if config["coords"] != "wgs84":  # the page draws WGS84 GeoJSON: outlines only unless the basemap is WGS84 too
        config = {**config, "basemap": "none", "tileUrl": None, "coords": "wgs84"}
    with db.connect() as conn:
        towns = [asdict(choice) for choice in staffing_service.town_choices(conn, principal.area)]
    return {
        **config,
        "planId": plan_id,
        "departments": _departments(principal),
        "ownDepartment": principal.area.code if principal.area.kind == "department" else None,
        "towns": towns,
        "canPlan": _may_plan(principal, departments),
        "planStatuses": PLAN_STATUS_LABELS_ZH,
        "now": clock.now().isoformat(),
    }


def _page(
    request: Request,
    principal: Principal,
    db: DbEngine,
    plan_id: int | None,
    *,
    departments: list[str] | None = None,
    status: int = 200,
) -> Response:
    """The planning page, opened on a plan (of these departments) or on the form to make one."""
    title = f"双随机抽查计划 {plan_id}" if plan_id else "双随机抽查规划"
    config = _config(request, principal, db, plan_id, departments)
    html = render_page("inspections.html", title=title, config=config, user=principal.name)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-cache"})


def _plan_or_refusal(request: Request, principal: Principal, db: DbEngine, plan_id: int) -> dict[str, Any] | Response:
    """The plan as its API gives it, or the answer for a plan the caller may not see (the 403 page) or that does
    not exist (404: the page says so in Chinese from the API's answer, with the plans the caller may see)."""
    try:
        with db.connect() as conn:
            return inspection_plans.plan_view(conn, plan_id, principal.area)
    except OutOfScope:
        if not wants_html(request):
            raise
        return HTMLResponse(
            render_forbidden(user=principal.name), status_code=403, headers={"Cache-Control": "no-store"}
        )
    except PlanNotFound:
        if not wants_html(request):
            raise
        return _page(request, principal, db, plan_id, status=404)


@router.get("/inspections", response_class=HTMLResponse, summary="双随机抽查规划", include_in_schema=False)
def inspections_page(request: Request, principal: PageCaller, db: DbEngine) -> Response:
    """The plan form (departments, items, area on the map, ratios, public value), the preview and the plans made."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.INSPECTION_READ):
        return refusal
    return _page(request, principal, db, None)


@router.get("/inspections/{plan_id}", response_class=HTMLResponse, summary="双随机抽查计划", include_in_schema=False)
def inspection_plan_page(request: Request, plan_id: PlanId, principal: PageCaller, db: DbEngine) -> Response:
    """One plan: its commitment, the draw, the selected entities coloured by team, the teams and their routes."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.INSPECTION_READ):
        return refusal
    plan = _plan_or_refusal(request, principal, db, plan_id)
    if isinstance(plan, Response):
        return plan
    return _page(request, principal, db, plan_id, departments=list(plan["departments"]))


def _sheet(team: dict[str, Any], day: dict[str, Any], plan: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One team-day's route sheet: the team's inspectors, office, times and stops (`names`: departments' names)."""
    items = {i["code"]: i["name"] for i in plan["items"]}
    members: list[dict[str, Any]] = next((t["inspectors"] for t in plan["teams"] if t["id"] == team["team_id"]), [])
    return {
        "team_no": team["team_no"],
        "date": day["date"],
        "departments": [names.get(d, d) for d in team["departments"]],
        "inspectors": [
            {"name": m["name"], "code": m["code"], "department": names.get(m["department"], m["department"])}
            for m in members
        ],
        "office": team["office"]["name"],
        "start": day["leave"],
        "end": day["back"],
        "minutes": round(day["duration_s"] / 60),
        "km": f"{day['distance_m'] / 1000:.1f}",
        "stops": [
            {
                "arrival": stop["arrival"],
                "name": stop["name"],
                "uscc": stop["uscc"],
                "address": stop["address"] or "（登记地址不详）",
                "items": [items.get(code, code) for code in stop["items"]],
                "hours": stop["window_text"],
            }
            for stop in day["stops"]
        ],
    }


@router.get("/inspections/{plan_id}/print", response_class=HTMLResponse, summary="打印路线单", include_in_schema=False)
def route_sheets_page(request: Request, plan_id: PlanId, principal: PageCaller, db: DbEngine) -> Response:
    """The route sheets of a plan, one per team-day with a page break between them, for the teams to carry."""
    if principal is None:
        return sign_in_first(request)
    if refusal := refused_page(request, principal, Capability.INSPECTION_READ):
        return refusal
    plan = _plan_or_refusal(request, principal, db, plan_id)
    if isinstance(plan, Response):
        return plan
    with db.connect() as conn:
        routes = route_service.plan_routes(conn, plan_id, scope=principal.area).as_dict()
    departments = {d.code: d.name for d in default_router().departments()}
    html = render_page(
        "inspection_print.html",
        title=f"路线单 · {plan['title']}",
        plan=plan,
        sheets=[
            _sheet(team, day, plan, departments)
            for team in sorted(routes["teams"], key=lambda t: t["team_no"])
            for day in team["days"]
        ],
        user=principal.name,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
