"""api.routers.clues: grid workers' field reports (线索) and their photos."""

from __future__ import annotations

import pathlib
from datetime import date, datetime
from typing import Annotated, Literal

import h3
from fastapi import APIRouter, Depends, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from address_library.live import LiveGeocoder
from api.auth.roles import Principal
from api.deps import (
    CurrentScope,
    CurrentViewer,
    Cursor,
    DbEngine,
    GridCode,
    Limit,
    ReadConn,
    TownCode,
    WriteConn,
    actor_of,
    allowed,
    day_window,
    server_settings,
    viewer_of,
)
from api.errors import InvalidRequest
from api.input_guard import FreeText, OneLine, multipart_text_checked
from grids.codes import COMMUNITY_PATTERN
from grids.repository import place_names
from supervision.backdating import check_supplied_time
from supervision.clues import (
    MAX_PHOTO_BYTES,
    ClueDetail,
    ClueFilters,
    ClueReport,
    ClueView,
    StoredPhoto,
    add_photo,
    clue_by_id,
    list_clues,
    photo_file,
    report_clue,
)
from supervision.export import clue_columns, csv_file, every_page
from supervision.paging import Page
from supervision.permissions import Capability
from supervision.privacy import shown

router = APIRouter(tags=["线索"])
ClueId = Annotated[int, Path(ge=1, le=2**63 - 1, description="线索编号")]
ClueReader = Annotated[Principal, Depends(allowed(Capability.CLUE_READ))]
ClueReporter = Annotated[Principal, Depends(allowed(Capability.CLUE_REPORT))]


class ClueBody(BaseModel):
    """一条现场线索：位置（经纬度或地址）、行业、描述、严重程度。"""

    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False, description="经度（WGS84）")
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False, description="纬度（WGS84）")
    address: FreeText | None = Field(default=None, max_length=500, description="地址（无经纬度时）")
    industry: OneLine = Field(min_length=1, max_length=32, description="17 个高频行业之一", examples=["餐饮服务"])
    # Free text: tab and line breaks are text, NUL and the other control characters are refused (422).
    description: FreeText = Field(default="", max_length=2000)
    severity: Literal["normal", "severe"] = "normal"
    reported_at: datetime | None = Field(
        default=None, description="上报时间（默认服务器时间，须带时区；不早于 7 天前，不晚于现在 5 分钟后）"
    )


def photo_dir(request: Request) -> pathlib.Path:
    """Where photos are stored (under the server's state directory)."""
    return server_settings(request).state_dir / "photos"


@router.post("/clues", status_code=201, summary="上报线索")
def post_clue(request: Request, body: ClueBody, principal: ClueReporter, conn: WriteConn) -> ClueDetail:
    """落网格、提示疑似重复（同行业 50 米内 30 天内），普通线索转行业主管部门，严重线索进指挥中心队列，并生成任务。"""
    live: LiveGeocoder = request.app.state.geocoder
    if body.reported_at is not None:  # a late report, within the backdating floor (supervision.backdating)
        check_supplied_time(body.reported_at, "reported_at")
    report = ClueReport(
        industry=body.industry,
        description=body.description,
        severity=body.severity,
        lon=body.lon,
        lat=body.lat,
        address=body.address,
        reported_at=body.reported_at,
    )
    found = report_clue(conn, report, actor=actor_of(principal), geocoder=live.get() if body.lon is None else None)
    return shown(found, viewer_of(principal))


def clue_filters(
    town: TownCode = None,
    community: Annotated[str | None, Query(pattern=COMMUNITY_PATTERN.pattern, description="村（社区）编码")] = None,
    grid: GridCode = None,
    status: Annotated[str | None, Query(max_length=24)] = None,
    industry: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[Literal["normal", "severe"] | None, Query()] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    kind: Annotated[Literal["clue", "unlicensed"] | None, Query()] = None,
    source: Annotated[Literal["field", "hotline", "all"], Query()] = "field",
    h3_cell: Annotated[str | None, Query(alias="h3", pattern=r"^[0-9a-f]{15}$")] = None,
) -> ClueFilters:
    """The clue list's filters, one definition for the JSON list and its CSV export."""
    since, until = day_window(from_, to)
    if h3_cell is not None and not h3.is_valid_cell(h3_cell):
        raise InvalidRequest(f"not an H3 cell: {h3_cell}", field="h3")
    return ClueFilters(
        town=town, community=community, grid=grid, status=status, industry=industry, severity=severity,
        since=since, until=until, kind=kind, source=None if source == "all" else source, h3_cell=h3_cell,
    )  # fmt: skip


Filters = Annotated[ClueFilters, Depends(clue_filters)]


@router.get("/clues", response_model=Page[ClueView], summary="线索列表（本账号范围内）")
def get_clues(
    _: ClueReader,
    scope: CurrentScope,
    viewer: CurrentViewer,
    conn: ReadConn,
    filters: Filters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ClueView]:
    """按镇街、村（社区）、网格、H3 单元、类别、来源（默认现场上报 field；all 为全部）、状态、日期（含首尾，北京时间）筛选，新的在前。"""
    return shown(list_clues(conn, scope, filters, limit=limit, cursor=cursor), viewer)


@router.get(
    "/clues.csv",
    summary="导出线索列表（CSV）",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8（带 BOM）CSV，中文表头"}},
)
def get_clues_csv(
    _: ClueReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn, filters: Filters
) -> Response:
    """与线索列表同样的筛选和范围，全部行（至多 10000 行，超过时请缩小筛选），UTF-8 带 BOM，中文表头。"""
    items = shown(
        every_page(lambda limit, cursor: list_clues(conn, scope, filters, limit=limit, cursor=cursor)), viewer
    )
    towns, _communities = place_names(conn)
    doc = csv_file(clue_columns(towns), items, "线索清单", "clues")
    return Response(doc.body, media_type=doc.media_type, headers=doc.headers)


@router.get("/clues/{clue_id}", summary="一条线索（含照片与任务）")
def get_clue(clue_id: ClueId, _: ClueReader, scope: CurrentScope, viewer: CurrentViewer, conn: ReadConn) -> ClueDetail:
    """线索详情：位置、行业、去向部门、疑似重复、任务与期限、照片。"""
    return shown(clue_by_id(conn, clue_id, scope), viewer)


@router.post(
    "/clues/{clue_id}/photos",
    status_code=201,
    summary="上传线索照片",
    dependencies=[Depends(multipart_text_checked)],
)
async def post_photo(
    request: Request, clue_id: ClueId, file: UploadFile, principal: ClueReporter, db: DbEngine
) -> StoredPhoto:
    """JPEG、PNG 或 WebP，单张不超过 8 MB；内容须与声明的类型一致；按校验和存盘。"""
    data = await file.read(MAX_PHOTO_BYTES + 1)
    with db.begin() as conn:
        return add_photo(
            conn,
            clue_id,
            data,
            declared_type=file.content_type,
            filename=file.filename,
            actor=actor_of(principal),
            photo_dir=photo_dir(request),
        )


@router.get("/photos/{photo_id}", summary="下载线索照片", response_class=FileResponse)
def get_photo(
    request: Request,
    photo_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    _: ClueReader,
    scope: CurrentScope,
    conn: ReadConn,
) -> FileResponse:
    """照片原件（校验和核对无误才返回）。"""
    path, content_type = photo_file(conn, photo_id, scope, photo_dir(request))
    return FileResponse(path, media_type=content_type)
