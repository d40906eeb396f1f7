"""supervision.open311: Open311 GeoReport v2 over clues — the 12345 hotline's work orders.

- A service is a clue industry (`service_code` a stable ASCII code, `service_name` the Chinese industry).
- A service request is a clue with source `hotline`, made by `supervision.clues.report_clue`, which routes it
  (ordinary → the industry's department) and pushes its task in the caller's transaction: nothing half-created.
- Its status is its task's: `closed` once the task is closed or cancelled, `open` before; `status_notes` says
  where it stands in Chinese; `expected_datetime` is the task's deadline; `agency_responsible` the department.
- The caller's name, phone and e-mail, and any media_url, are kept with the clue for the staff who handle it
  (after a marker in its description) and are never published back: the view cuts the description there.
- A hotline reads back only the requests submitted under its own name (the clue's `reported_by`), so a key that
  replaces a revoked one of the same name keeps its history, and another hotline sees none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping, text

from address_library.service import Geocoder
from supervision.audit import Actor
from supervision.clues import MAX_DESCRIPTION, ClueReport, report_clue
from supervision.errors import InvalidInput, NotFound, RoutingError
from supervision.privacy import CALLER_MARKER
from supervision.routing import default_router
from supervision.scope import CITY
from supervision.workflow import STATUS_LABELS_ZH, TERMINAL, Status

ROLE = "hotline"
# Stable codes for the clue industries (supervision/data/clue_industries.csv); an industry added to the file
# without a code here is served under its Chinese name.
SERVICE_CODES: Mapping[str, str] = {
    "餐饮服务": "catering",
    "食品销售": "food_sales",
    "食品小作坊": "food_workshop",
    "烟草制品零售": "tobacco_retail",
    "药品零售": "drug_retail",
    "医疗诊所": "clinic",
    "美容美发": "beauty_salon",
    "互联网上网服务": "internet_cafe",
    "歌舞娱乐": "karaoke_dance",
    "旅馆住宿": "lodging",
    "废旧物资回收": "scrap_recycling",
    "机动车维修": "vehicle_repair",
    "成品油零售": "fuel_retail",
    "危险化学品经营": "hazardous_chemicals",
    "校外培训": "tutoring",
    "出版物零售": "publication_retail",
    "五金塑胶加工作坊": "metal_plastic_workshop",
}
# Everything after this marker in a hotline clue's description is the caller's contact: never published.
PRIVATE_MARKER = CALLER_MARKER
MAX_CONTACT_CHARS = 200
MAX_LIST = 1000


@dataclass(frozen=True)
class Service:
    """一类可受理的诉求：线索行业。"""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


@dataclass(frozen=True)
class Caller:
    """The hotline caller's contact: kept for the staff, never published."""

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class NewServiceRequest:
    """A POST requests as the specification names its fields (location: lat/long or address_string)."""

    service_code: str
    description: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    media_url: str | None = None
    caller: Caller = Caller()


@dataclass(frozen=True)
class ServiceRequest:
    """一条热线诉求的公开视图（不含来电人信息）。"""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    lat: float
    long: float


@dataclass(frozen=True)
class RequestFilters:
    """The filters of GET requests: ids, service code, a window of request times, a status."""

    ids: Sequence[int] | None = None
    service_code: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: Literal["open", "closed"] | None = None


def service_code(industry: str) -> str:
    """The Open311 code of a clue industry."""
    return SERVICE_CODES.get(industry, industry)


def services() -> list[Service]:
    """Every clue industry as an Open311 service, grouped by the department that handles it."""
    router = default_router()
    found = []
    for industry in router.clue_industries():
        department = router.department(router.department_for_industry(industry)).name
        found.append(
            Service(
                service_code=service_code(industry),
                service_name=industry,
                description=f"{industry}无证无照经营等线索，由{department}处理。",
                metadata=False,
                type="realtime",
                keywords=f"{industry},无证经营,线索",
                group=department,
            )
        )
    return found


def industry_of(code: str) -> str:
    """The industry of a service code (the Chinese name is accepted too); NotFound naming the valid codes."""
    for industry in default_router().clue_industries():
        if code in (service_code(industry), industry):
            return industry
    raise NotFound(f"unknown service_code {code!r}; see services.json")


def submit(
    conn: Connection, request: NewServiceRequest, *, submitter: str, geocoder: Geocoder | None
) -> ServiceRequest:
    """Make the request's clue (source hotline) and its task in the caller's transaction; its public view.

    InvalidInput without a location or a description, NotFound for an unknown service code.
    """
    industry = industry_of(request.service_code)
    if request.lat is None or request.long is None:
        if request.lat is not None or request.long is not None:
            raise InvalidInput("lat and long go together", field="lat")
        if not (request.address_string and request.address_string.strip()):
            raise InvalidInput("location required: send lat and long, or address_string", field="lat")
    description, private = request.description.strip(), _private_block(request)
    if not description:
        raise InvalidInput("description required", field="description")
    if len(description) + len(private) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is longer than {MAX_DESCRIPTION - len(private)} characters", field="description"
        )
    clue = report_clue(
        conn,
        ClueReport(
            industry=industry,
            description=description + private,
            lon=request.long,
            lat=request.lat,
            address=request.address_string.strip() if request.address_string else None,
            source="hotline",
        ),
        # The hotline reports anywhere in the city; its own credential has no area (it reads nothing else).
        actor=Actor(submitter, ROLE, CITY),
        geocoder=geocoder,
    )
    return read_request(conn, clue.id, submitter=submitter)


def _private_block(request: NewServiceRequest) -> str:
    caller = request.caller
    name = "".join(p for p in (caller.last_name, caller.first_name) if p)
    lines = [
        f"{label}：{value.strip()[:MAX_CONTACT_CHARS]}"
        for label, value in (
            ("姓名", name),
            ("电话", caller.phone),
            ("邮箱", caller.email),
            ("附件", request.media_url),
        )
        if value and value.strip()
    ]
    return PRIVATE_MARKER + "；".join(lines) if lines else ""


_REQUEST_SQL = """
    SELECT c.id, c.industry, c.description, c.address, c.reported_at, c.department_code,
           ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, t.status AS task_status, t.due_at,
           greatest(c.reported_at, (SELECT max(e.at) FROM task_event e WHERE e.task_id = t.id)) AS updated_at
    FROM clue c
    LEFT JOIN LATERAL (SELECT * FROM task WHERE task.clue_id = c.id ORDER BY task.id LIMIT 1) t ON TRUE
    WHERE c.source = 'hotline' AND c.reported_by = :submitter
"""


def read_request(conn: Connection, request_id: int, *, submitter: str) -> ServiceRequest:
    """One of the submitter's requests; NotFound for any other (never saying whose it is)."""
    row = (
        conn.execute(text(_REQUEST_SQL + " AND c.id = :id"), {"submitter": submitter, "id": request_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no service request {request_id}")
    return _view(row)


def list_requests(
    conn: Connection, filters: RequestFilters, *, submitter: str, limit: int = MAX_LIST
) -> list[ServiceRequest]:
    """The submitter's requests matching the filters, newest first."""
    sql = _REQUEST_SQL
    params: dict[str, Any] = {"submitter": submitter, "limit": limit}
    if filters.ids is not None:
        sql += " AND c.id = ANY(:ids)"
        params["ids"] = list(filters.ids)
    if filters.service_code is not None:
        sql += " AND c.industry = :industry"
        params["industry"] = industry_of(filters.service_code)
    if filters.start is not None:
        sql += " AND c.reported_at >= :start"
        params["start"] = filters.start
    if filters.end is not None:
        sql += " AND c.reported_at <= :end"
        params["end"] = filters.end
    if filters.status is not None:
        sql += " AND (coalesce(t.status, c.status) IN ('closed', 'cancelled')) = :closed"
        params["closed"] = filters.status == "closed"
    rows = conn.execute(text(sql + " ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit"), params).mappings()
    return [_view(r) for r in rows]


def _view(row: RowMapping) -> ServiceRequest:
    router = default_router()
    status = Status(row["task_status"]) if row["task_status"] else Status.PUSHED
    closed = status in TERMINAL
    try:
        agency: str | None = router.department(row["department_code"]).name if row["department_code"] else None
    except RoutingError:  # a department code no longer in the shipped list: show the code itself
        agency = row["department_code"]
    due: datetime | None = None if closed else row["due_at"]
    if closed:
        notice = STATUS_LABELS_ZH[status]
    elif due is not None:
        notice = f"已受理，由{agency or '指挥中心'}办理，办理期限 {due.date().isoformat()}"
    else:
        notice = f"已受理，由{agency or '指挥中心'}办理"
    return ServiceRequest(
        service_request_id=str(row["id"]),
        status="closed" if closed else "open",
        status_notes=STATUS_LABELS_ZH[status] if closed else f"办理中：{STATUS_LABELS_ZH[status]}",
        service_name=row["industry"],
        service_code=service_code(row["industry"]),
        description=row["description"].split(PRIVATE_MARKER, 1)[0],
        agency_responsible=agency,
        service_notice=notice,
        requested_datetime=row["reported_at"],
        updated_datetime=row["updated_at"],
        expected_datetime=due,
        address=row["address"],
        lat=float(row["lat"]),
        long=float(row["lon"]),
    )
