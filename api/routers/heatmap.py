"""api.routers.heatmap: heat layers and hotspots for town leaders — the page, its JSON, and its exports.

A town leader sees only their own town (403 for any other); the command centre sees the whole city (`city`)
and any town. Dates are inclusive days in Asia/Shanghai, the last 30 days by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from api.auth.deps import optional_principal
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, TownCode, allowed, day_window, require
from api.routers.pages import sign_in_first
from grids.codes import TOWN_PATTERN
from maps.errors import AggregateError
from maps.export import hotspots_csv, hotspots_geojson, offline_html
from maps.heat.heatmap import aggregate_table, heat_layers, hotspot_collection
from maps.heat.schemas import AggregateTable, HeatLayers, HotspotCollection
from maps.page import HEATMAP_H3_RESOLUTION, render_heatmap
from maps.repository import Bounds, town_extent
from supervision.calendar import today
from supervision.permissions import Capability
from supervision.routing import default_router
from supervision.scope import Scope
from supervision.workflow import Status as TaskStatus

DEFAULT_DAYS = 30
CITY = "city"
TOWN_OR_CITY = f"^({TOWN_PATTERN.pattern[1:-1]}|{CITY})$"

router = APIRouter(tags=["热力图与热点"])
pages_router = APIRouter(tags=["页面"])
Kind = Literal["clue", "unlicensed", "problem", "all"]
Unit = Literal["grid", "h3:7", "h3:8", "h3:9", "h3:10"]
Method = Literal["gi_star", "rate"]
Per = Literal["residents", "entities"]
Source = Literal["field", "hotline", "inspection"]
AggregateUnit = Literal["town", "community", "grid", "h3:7", "h3:8", "h3:9", "h3:10"]
Status = Annotated[TaskStatus | None, Query(description="线索或检查任务的状态")]


@dataclass(frozen=True)
class EventQuery:
    """The filters every heatmap endpoint shares: the window (Shanghai days), industry, kind, status and source."""

    since: datetime
    until: datetime
    industry: str | None
    kind: str
    status: str | None
    source: str | None

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of maps.heatmap's heat_layers, hotspot_collection and aggregate_table."""
        return {
            "since": self.since, "until": self.until, "industry": self.industry, "kind": self.kind,
            "status": self.status, "source": self.source,
        }  # fmt: skip


def event_query(
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    industry: Annotated[str | None, Query(max_length=32)] = None,
    kind: Kind = "clue",
    status: Status = None,
    source: Source | None = None,
) -> EventQuery:
    """The shared filters of a request; a reversed window is refused (422)."""
    since, until = window(from_, to)
    return EventQuery(since, until, industry or None, kind, status.value if status else None, source)


Events = Annotated[EventQuery, Depends(event_query)]


def window(since: date | None, until: date | None) -> tuple[datetime, datetime]:
    """Inclusive Shanghai days, the last 30 by default; a reversed window is refused (422)."""
    start, end = day_window(since, until, default_days=DEFAULT_DAYS)
    assert start is not None and end is not None
    return start, end


# Heatmaps are for the command centre and town leaders (and the community dispatchers of a town): heatmap.read.
HeatmapReader = Annotated[Principal, Depends(allowed(Capability.HEATMAP_READ))]


def scoped_place(conn: Connection, scope: Scope, town: str | None) -> tuple[str | None, str, Bounds]:
    """The town to show (None = the whole city), its name and extent: the scope decides first, then 422 if unknown."""
    shown = scope.map_town(None if town == CITY else town)
    found = town_extent(conn, shown)
    if found is None:
        raise AggregateError(f"unknown town {shown}")
    return shown, *found


@router.get("/heatmap", summary="热力与六边形图层（含图例、本期与上期对比）")
def get_heatmap(
    _: HeatmapReader,
    scope: CurrentScope,
    db: DbEngine,
    events: Events,
    town: TownCode = None,
    res: Annotated[int, Query(description="H3 分辨率 7–10")] = 9,
) -> HeatLayers:
    """热力点（超过 5 万点时改为按 H3 汇总的加权点）、H3 六边形分级图与图例、本期与上期对比。"""
    with db.connect() as conn:
        place = scoped_place(conn, scope, town)[0]
        return heat_layers(conn, town=place, resolution=res, **events.filters())


@router.get("/aggregates", summary="按 H3、网格、村（社区）或镇街汇总：数量与比率")
def get_aggregates(
    _: HeatmapReader,
    scope: CurrentScope,
    db: DbEngine,
    events: Events,
    unit: AggregateUnit = "grid",
    town: TownCode = None,
) -> AggregateTable:
    """每个单元的数量、每个登记主体与每千常住人口的比率（未平滑）及小数字标记 small_n，数量多的在前。"""
    with db.connect() as conn:
        place = scoped_place(conn, scope, town)[0]
        return aggregate_table(conn, town=place, unit=unit, **events.filters())


@router.get("/hotspots", summary="热点分析（Gi*，FDR 校正；趋势分类）")
def get_hotspots(
    _: HeatmapReader,
    scope: CurrentScope,
    db: DbEngine,
    events: Events,
    town: TownCode = None,
    unit: Unit = "grid",
    method: Method = "gi_star",
    per: Per = "residents",
) -> HotspotCollection:
    """GeoJSON：每个网格或 H3 单元的 code、count、rate、z、p、class（hot_99…cold_99）与 emerging（趋势类别）。

    method=gi_star：计数的 Getis-Ord Gi*；method=rate：按常住人口（per=residents，每千人）或登记主体
    （per=entities）的经验贝叶斯比率检验，邻域超出全市正常波动才显著。rate 为经验贝叶斯平滑后的比率。
    """
    with db.connect() as conn:
        place = scoped_place(conn, scope, town)[0]
        return hotspot_collection(conn, town=place, unit=unit, method=method, per=per, **events.filters())


@pages_router.get("/towns/{code}/heatmap", response_class=HTMLResponse, include_in_schema=False)
def heatmap_page(
    request: Request,
    code: Annotated[str, Path(pattern=TOWN_OR_CITY)],
    principal: Annotated[Principal | None, Depends(optional_principal)],
    db: DbEngine,
) -> Response:
    """The town leader's page: heat, hexagons and hotspots over the town's outlines."""
    if principal is None:
        return sign_in_first(request)
    require(principal, Capability.HEATMAP_READ)
    with db.connect() as conn:
        town, name, bounds = scoped_place(conn, principal.area, code)
    html = render_heatmap(
        town_code=town,
        place_name=name,
        bounds_lon_lat=bounds,
        industries=default_router().clue_industries(),
        today=today().isoformat(),
        user=principal.name,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@pages_router.get("/towns/{code}/heatmap/export.{fmt}", include_in_schema=False)
def heatmap_export(
    code: Annotated[str, Path(pattern=TOWN_OR_CITY)],
    fmt: Annotated[str, Path(pattern=r"^(html|geojson|csv)$")],
    _: HeatmapReader,
    scope: CurrentScope,
    db: DbEngine,
    events: Events,
    method: Method = "gi_star",
    unit: Unit = "grid",
    per: Per = "residents",
) -> Response:
    """The hotspots as a standalone offline HTML map, GeoJSON or CSV, with the page's filters."""
    since, until = events.since, events.until
    with db.connect() as conn:
        town, name, bounds = scoped_place(conn, scope, code)
        spots = hotspot_collection(conn, town=town, unit=unit, method=method, per=per, **events.filters())
        layers = (
            heat_layers(conn, town=town, resolution=HEATMAP_H3_RESOLUTION, **events.filters())
            if fmt == "html"
            else None
        )
    stem = f"heatmap-{code}-{since.date().isoformat()}-{(until - timedelta(days=1)).date().isoformat()}"
    if fmt == "geojson":
        return Response(hotspots_geojson(spots), media_type="application/geo+json",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.geojson"'})  # fmt: skip
    if fmt == "csv":
        return Response(hotspots_csv(spots), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'})  # fmt: skip
    assert layers is not None
    html = offline_html(
        title=f"{name} 线索热点（{since.date()} 至 {(until - timedelta(days=1)).date()}）",
        bounds_lon_lat=bounds,
        hotspots=spots,
        hexagons=layers.hexagons,
        heat_points=layers.heat.points,
    )
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.html"'})  # fmt: skip
