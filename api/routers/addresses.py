"""api.routers.addresses: maintenance of the standard address library (add, retire, move, read with history).

Only the city-wide managers (admin, command_centre) change the library; every other credential may read an
address within its area. After a change the live geocoder is rebuilt in a background thread, so /v1/geocode
answers with the change within seconds (the geocoder's own fingerprint check is the safety net for changes made
by other processes, such as `gridgov addresses import`).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from address_library import maintenance
from address_library.live import IndexRefresher
from address_library.normalize import MAX_ADDRESS_CHARS
from api.auth.roles import Principal
from api.deps import CurrentScope, DbEngine, ReadConn, allowed, viewer_of
from grids.placement import GridPlacement, PlacementCache
from supervision.errors import OutOfScope
from supervision.permissions import Capability
from supervision.privacy import PersonalField, shown_value

router = APIRouter(tags=["标准地址维护"])

# Notes are free text, but never control characters (PostgreSQL refuses NUL; the rest is noise in a log).
NOTE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
MAX_NOTE_CHARS = 500
MAX_ID = 2**63 - 1

AddressId = Annotated[int, Path(ge=1, le=MAX_ID, description="标准地址编号（address_id）", examples=[12345])]
Note = Annotated[
    str | None,
    Field(max_length=MAX_NOTE_CHARS, pattern=NOTE_PATTERN, description="变更说明，记入历史", examples=["实地核查"]),
]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="经度（WGS84）", examples=[113.7518])]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="纬度（WGS84）", examples=[23.0205])]

FORBIDDEN = {"description": "无权修改标准地址库（仅系统管理员、市指挥中心）"}
NOT_FOUND = {"description": "没有这个标准地址"}
REJECTED = {"description": "校验未通过：未知镇街、点位不在东莞网格内或不在所写镇街内、地址重复、上级地址不符等"}
CONFLICT = {"description": "该地址已注销，不能再注销或移动"}


class NewAddressBody(BaseModel):
    """新增一个标准地址：地址全文、坐标、级别，及上级地址（楼栋的门牌、房间的楼栋）。"""

    full_text: str = Field(
        min_length=1,
        max_length=MAX_ADDRESS_CHARS,
        description="标准地址全文（以镇街开头）",
        examples=["长安镇长青路12号"],
    )
    lon: Lon
    lat: Lat
    level: Literal["door", "building", "room"] = Field(description="door 门牌 / building 楼栋 / room 房间")
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="上级标准地址编号（门牌不填）")
    note: Note = None


class RetireBody(BaseModel):
    """注销一个标准地址（其下楼栋、房间一并注销；记录保留）。"""

    note: Note = None


class MoveBody(BaseModel):
    """移动一个标准地址的点位（同点的下级地址一并移动），并重新落入网格。"""

    lon: Lon
    lat: Lat
    note: Note = None


class HistoryEntry(BaseModel):
    """一次变更：动作、时间、操作人、前后点位与状态。"""

    action: str = Field(description="add 新增 / retire 注销 / move 移动 / import 导入")
    changed_at: datetime
    changed_by: str
    old_lon: float | None
    old_lat: float | None
    new_lon: float | None
    new_lat: float | None
    old_status: str | None
    new_status: str | None
    note: str | None


class AddressDetails(BaseModel):
    """一个标准地址及其全部变更历史。"""

    id: int
    level: str
    parent_id: int | None
    full_text: str
    kind: str
    status: str = Field(description="active 有效 / retired 已注销")
    lon: float
    lat: float
    grid_code: str | None
    community_code: str
    town_code: str
    road_name: str | None
    door_no: str | None
    sub_no: str | None
    village: str | None
    lane: str | None
    park: str | None
    compound: str | None
    phase: str | None
    building: str | None
    unit: str | None
    floor: str | None
    room: str | None
    stall: str | None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]


class ChangeResult(BaseModel):
    """变更结果：变更后的地址，以及一并变更的全部地址编号（本身在前）。"""

    changed_ids: list[int]
    address: AddressDetails


# Who may change the library (address.maintain) and read it (address.read, within the caller's towns).
Maintainer = Annotated[Principal, Depends(allowed(Capability.ADDRESS_MAINTAIN))]
AddressReader = Annotated[Principal, Depends(allowed(Capability.ADDRESS_READ))]


@router.get(
    "/addresses/{address_id}",
    response_model=AddressDetails,
    summary="查看标准地址及其变更历史",
    responses={403: {"description": "该地址不在本账号辖区内"}, 404: NOT_FOUND},
)
def get_address(address_id: AddressId, principal: AddressReader, scope: CurrentScope, conn: ReadConn) -> Any:
    """一个标准地址（含已注销的）的组成、点位、网格，以及新增、移动、注销、导入的全部历史（操作人按隐私规则脱敏）。"""
    found = maintenance.address_with_history(conn, address_id)
    if not scope.sees(str(found["town_code"])):
        raise OutOfScope(f"address {address_id} is outside your area")
    return _shown(found, principal)


def _shown(details: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """An address's details with each history entry's `changed_by` as the principal may see it (the rule of task
    histories: supervision.privacy's REPORTER, the address's town as its place)."""
    viewer = viewer_of(principal)
    place = str(details["town_code"])
    history = [
        {
            **entry,
            "changed_by": shown_value(
                viewer,
                PersonalField.REPORTER,
                entry["changed_by"],
                place=place,
                own=entry["changed_by"] == viewer.account,
            ),
        }
        for entry in details["history"]
    ]
    return {**details, "history": history}


@router.post(
    "/addresses",
    response_model=ChangeResult,
    status_code=201,
    summary="新增标准地址",
    responses={403: FORBIDDEN, 422: REJECTED},
)
def add_address(request: Request, body: NewAddressBody, principal: Maintainer, db: DbEngine) -> Any:
    """校验后新增一个标准地址：地址须解析到东莞的镇街，点位须在东莞网格内且在所写镇街内，全文不得重复，上级地址须存在且高一级。"""
    with db.begin() as conn:
        new_id = maintenance.add_address(
            conn,
            placement(request, conn),
            full_text=body.full_text,
            lon=body.lon,
            lat=body.lat,
            level=body.level,
            parent_id=body.parent_id,
            changed_by=principal.audit_name,
            note=body.note,
        )
        details = maintenance.address_with_history(conn, new_id)
    refresh_geocoder(request)
    return {"changed_ids": [new_id], "address": _shown(details, principal)}


@router.post(
    "/addresses/{address_id}/retire",
    response_model=ChangeResult,
    summary="注销标准地址",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
def retire_address(
    request: Request, address_id: AddressId, body: RetireBody, principal: Maintainer, db: DbEngine
) -> Any:
    """注销一个标准地址及其下全部有效的楼栋和房间；记录保留（状态 retired），地理编码不再返回它。"""
    with db.begin() as conn:
        ids = maintenance.retire_address(conn, address_id, changed_by=principal.audit_name, note=body.note)
        details = maintenance.address_with_history(conn, address_id)
    refresh_geocoder(request)
    return {"changed_ids": ids, "address": _shown(details, principal)}


@router.post(
    "/addresses/{address_id}/move",
    response_model=ChangeResult,
    summary="移动标准地址点位",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 422: REJECTED},
)
def move_address(request: Request, address_id: AddressId, body: MoveBody, principal: Maintainer, db: DbEngine) -> Any:
    """把标准地址移到新点位（须在东莞网格内、且仍在地址所写镇街内），重新确定网格、村（社区）；历史保留新旧点位。"""
    with db.begin() as conn:
        ids = maintenance.move_address(
            conn,
            placement(request, conn),
            address_id,
            lon=body.lon,
            lat=body.lat,
            changed_by=principal.audit_name,
            note=body.note,
        )
        details = maintenance.address_with_history(conn, address_id)
    refresh_geocoder(request)
    return {"changed_ids": ids, "address": _shown(details, principal)}


# ------------------------------------------------------------------------------------------------ app-held caches

_state_lock = threading.Lock()


def placement(request: Request, conn: Connection) -> GridPlacement:
    """The application's active grids in memory (grids.placement.PlacementCache, one per application)."""
    state = request.app.state
    with _state_lock:
        cache: PlacementCache | None = getattr(state, "placement_cache", None)
        if cache is None:
            cache = state.placement_cache = PlacementCache()
    return cache.get(conn)


def refresh_geocoder(request: Request) -> None:
    """Schedule a rebuild of the application's live geocoder (one refresher per application)."""
    state = request.app.state
    with _state_lock:
        refresher: IndexRefresher | None = getattr(state, "address_refresher", None)
        if refresher is None or refresher.live is not state.geocoder:
            refresher = IndexRefresher(state.geocoder)
            state.address_refresher = refresher
    refresher.request()
