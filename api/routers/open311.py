"""api.routers.open311: Open311 GeoReport v2 for the 12345 hotline's work orders (services, requests).

Mounted at /open311/v2 without the project's credential dependency: the specification's `api_key` parameter (query
string or form field; `X-API-Key` is accepted too) is the credential, checked here with the same key lookup
(api.auth.deps.resolve_principal). Choices where the specification leaves room:

- `services` and a service's definition are public, as the specification says (the clue industries);
- `requests` (GET and POST) need an `api_key` whose role may submit or read service requests (the `hotline` role);
  a missing, unknown or unentitled key answers 403, as the specification's error list does ("403 - Invalid
  api_key"); a key over its rate limit answers 429;
- a request without a location or without a service code answers 400; an unknown service code 404;
- a caller reads only its own requests; any other id answers 404;
- every error is the specification's: JSON `[{"code": 400, "description": "…"}]`, XML
  `<errors><error><code>400</code><description>…</description></error></errors>`.

The POST runs in one transaction of its own (the clue and its task, or nothing), so that an error answered in the
specification's format can never leave half a request behind.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from address_library.live import LiveGeocoder
from api.auth.deps import resolve_principal
from api.auth.roles import Principal
from api.deps import FIRST_YEAR, LAST_YEAR
from api.input_guard import control_character, describe, multipart_problem
from gis import clock
from supervision import open311
from supervision.calendar import SHANGHAI
from supervision.errors import InvalidInput, NotFound, OutOfScope, SupervisionError
from supervision.permissions import Capability

router = APIRouter(tags=["12345 热线（Open311）"])

# Checked by _answer (an unknown format answers 404 in JSON), not by FastAPI, so that every refusal has the
# specification's error format.
Fmt = Annotated[str, Path(description="json 或 xml")]
FORMATS = ("json", "xml")
MAX_WINDOW = timedelta(days=90)
# The one jurisdiction served (the specification's jurisdiction_id is optional on a single-city endpoint).
JURISDICTIONS = frozenset({"dongguan", "441900"})
Jurisdiction = Annotated[str | None, Query(description="可省略；dongguan 或 441900")]
# A service request id: ASCII digits only ("²".isdigit() is true, int("²") is not a number).
REQUEST_ID = re.compile(r"[0-9]{1,18}")
# What XML 1.0 cannot carry (C0 controls other than tab, LF and CR; surrogates; U+FFFE and U+FFFF): replaced on
# output, so that a row stored before its input was checked can never make an answer unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Open311Error(Exception):
    """An answer in the specification's error format: an HTTP status and its description."""

    def __init__(self, code: int, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(description)


# ----------------------------------------------------------------------------------------------- rendering


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _w3c(value)
    return _NOT_XML.sub("\ufffd", str(value))


def _w3c(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _json_value(value: Any) -> Any:
    return _w3c(value) if isinstance(value, datetime) else value


def _render(fmt: str, root: str, item: str, records: Iterable[dict[str, Any]], status: int = 200) -> Response:
    """A list of records as a JSON array, or as <root><item>…</item></root> XML."""
    rows = list(records)
    if fmt == "xml":
        top = ET.Element(root)
        for record in rows:
            element = ET.SubElement(top, item)
            for key, value in record.items():
                ET.SubElement(element, key).text = _text(value)
        body = ET.tostring(top, encoding="utf-8", xml_declaration=True)
        return Response(body, status_code=status, media_type="text/xml; charset=utf-8")
    return JSONResponse([{k: _json_value(v) for k, v in r.items()} for r in rows], status_code=status)


def _error(fmt: str, code: int, description: str) -> Response:
    return _render(fmt, "errors", "error", [{"code": code, "description": description}], status=code)


def _answer(fmt: str, produce: Callable[[], Response]) -> Response:
    """Run `produce`, turning the workflow's refusals into the specification's error answers."""
    if fmt not in FORMATS:
        return _error("json", 404, f"format {fmt!r} is not offered; use .json or .xml")
    try:
        return produce()
    except Open311Error as exc:
        return _error(fmt, exc.code, exc.description)
    except NotFound as exc:
        return _error(fmt, 404, str(exc))
    except OutOfScope as exc:
        return _error(fmt, 403, str(exc))
    except (InvalidInput, SupervisionError) as exc:
        return _error(fmt, 400, str(exc))


# ------------------------------------------------------------------------------------------------ credential


def _check_jurisdiction(jurisdiction_id: str | None) -> None:
    if jurisdiction_id and jurisdiction_id.strip().lower() not in JURISDICTIONS:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id!r} not found; this endpoint serves dongguan")


def _caller(request: Request, api_key: str | None, capability: Capability) -> Principal:
    """The key's principal if its role has `capability`; Open311Error 403 (429 over the rate limit) otherwise."""
    key = api_key or request.headers.get("X-API-Key")
    if not key:
        raise Open311Error(403, "api_key required")
    try:
        principal = resolve_principal(request, header_key=key, query_key=None, bearer=None, session_token=None)
    except HTTPException as exc:
        if exc.status_code == 429:
            raise Open311Error(429, str(exc.detail)) from None
        raise Open311Error(403, "invalid api_key") from None
    if principal is None or not principal.may(capability):
        raise Open311Error(403, "this api_key may not use service requests")
    return principal


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


# ------------------------------------------------------------------------------------------------- services


@router.get("/services.{fmt}", summary="服务列表（线索行业）")
def get_services(fmt: Fmt, jurisdiction_id: Jurisdiction = None) -> Response:
    """Every clue industry as a service (public, as the specification says)."""

    def produce() -> Response:
        _check_jurisdiction(jurisdiction_id)
        records = [
            {
                "service_code": s.service_code,
                "service_name": s.service_name,
                "description": s.description,
                "metadata": s.metadata,
                "type": s.type,
                "keywords": s.keywords,
                "group": s.group,
            }
            for s in open311.services()
        ]
        return _render(fmt, "services", "service", records)

    return _answer(fmt, produce)


@router.get("/services/{service_code}.{fmt}", summary="服务定义")
def get_service_definition(
    fmt: Fmt, service_code: Annotated[str, Path()], jurisdiction_id: Jurisdiction = None
) -> Response:
    """A service's definition: no extra attributes (metadata false); 404 for an unknown code."""

    def produce() -> Response:
        _check_jurisdiction(jurisdiction_id)
        code = open311.service_code(open311.industry_of(service_code))
        if fmt == "xml":
            top = ET.Element("service_definition")
            ET.SubElement(top, "service_code").text = code
            ET.SubElement(top, "attributes")
            return Response(
                ET.tostring(top, encoding="utf-8", xml_declaration=True), media_type="text/xml; charset=utf-8"
            )
        return JSONResponse({"service_code": code, "attributes": []})

    return _answer(fmt, produce)


# ------------------------------------------------------------------------------------------------- requests


def _number(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None


@router.post("/requests.{fmt}", summary="提交诉求（生成热线线索及其任务）")
def post_request(
    request: Request,
    fmt: Fmt,
    api_key: Annotated[str | None, Form(description="API 密钥（hotline 角色）")] = None,
    service_code: Annotated[str | None, Form(description="服务代码（services 中的 service_code）")] = None,
    lat: Annotated[str | None, Form(description="纬度（WGS84）")] = None,
    long: Annotated[str | None, Form(description="经度（WGS84）")] = None,
    address_string: Annotated[str | None, Form(description="地址（无经纬度时用项目地址库定位）")] = None,
    description: Annotated[str | None, Form(description="诉求内容")] = None,
    media_url: Annotated[str | None, Form(description="附件地址（只留存，不公开）")] = None,
    email: Annotated[str | None, Form()] = None,
    phone: Annotated[str | None, Form()] = None,
    first_name: Annotated[str | None, Form()] = None,
    last_name: Annotated[str | None, Form()] = None,
    jurisdiction_id: Annotated[str | None, Form()] = None,
    form_problem: Annotated[str | None, Depends(multipart_problem)] = None,
) -> Response:
    """Create a service request: a clue with source hotline, routed, with its task, in one transaction."""

    def produce() -> Response:
        if form_problem is not None:  # any multipart text field, the ones named below or not
            raise Open311Error(400, form_problem)
        _check_text(
            api_key=api_key, service_code=service_code, lat=lat, long=long, address_string=address_string,
            description=description, media_url=media_url, email=email, phone=phone, first_name=first_name,
            last_name=last_name, jurisdiction_id=jurisdiction_id,
        )  # fmt: skip
        principal = _caller(request, api_key or request.query_params.get("api_key"), Capability.SERVICE_REQUEST_SUBMIT)
        _check_jurisdiction(jurisdiction_id)
        if not service_code:
            raise Open311Error(400, "service_code required")
        new = open311.NewServiceRequest(
            service_code=service_code,
            description=description or "",
            lat=_number(lat, "lat"),
            long=_number(long, "long"),
            address_string=address_string,
            media_url=media_url,
            caller=open311.Caller(first_name=first_name, last_name=last_name, phone=phone, email=email),
        )
        live: LiveGeocoder = request.app.state.geocoder
        # The geocoder only for a request placed by its address (built on first use, so not for a refusal).
        geocoder = live.get() if new.lat is None and new.long is None and new.address_string else None
        with _engine(request).begin() as conn:
            made = open311.submit(conn, new, submitter=principal.audit_name, geocoder=geocoder)
        record = {
            "service_request_id": made.service_request_id,
            "service_notice": made.service_notice,
            "account_id": None,
        }
        return _render(fmt, "service_requests", "request", [record], status=201)

    return _answer(fmt, produce)


def _check_text(**fields: str | None) -> None:
    """Open311Error 400 for a form field holding a control character (tab, newline and CR are text)."""
    for name, value in fields.items():
        found = control_character(value)
        if found is not None:
            raise Open311Error(400, f"{name} holds a control character ({describe(found)})")


def _when(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Open311Error(400, f"{name} is not a W3C date-time (e.g. 2026-12-01T00:00:00+08:00)") from None
    # Far dates would overflow the window's arithmetic (a year 1 or 9999 is never a request's date).
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise Open311Error(400, f"{name} must fall in the years {FIRST_YEAR} to {LAST_YEAR}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


def _ids(value: str) -> Sequence[int]:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > open311.MAX_LIST or not all(REQUEST_ID.fullmatch(p) for p in parts):
        raise Open311Error(400, "service_request_id must be a comma-separated list of at most 1000 numbers")
    return [int(p) for p in parts]


def _filters(
    ids: str | None, service_code: str | None, start_date: str | None, end_date: str | None, status: str | None
) -> open311.RequestFilters:
    """The specification's GET requests parameters; the window defaults to the last 90 days and spans at most 90."""
    if ids:
        return open311.RequestFilters(ids=_ids(ids))
    start, end = _when(start_date, "start_date"), _when(end_date, "end_date")
    if start is None and end is None:
        end = clock.now()
    if start is None and end is not None:
        start = end - MAX_WINDOW
    if end is None and start is not None:
        end = start + MAX_WINDOW
    assert start is not None and end is not None
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > MAX_WINDOW:
        raise Open311Error(400, "start_date and end_date may span at most 90 days")
    statuses = {s.strip() for s in (status or "").split(",") if s.strip()}
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status is open or closed")
    chosen: Literal["open", "closed"] | None = None
    if len(statuses) == 1:
        chosen = "open" if "open" in statuses else "closed"
    return open311.RequestFilters(service_code=service_code or None, start=start, end=end, status=chosen)


def _public(found: Iterable[open311.ServiceRequest]) -> list[dict[str, Any]]:
    """The published fields of each request, in the specification's order (the caller's contact is never one)."""
    return [
        {
            "service_request_id": r.service_request_id,
            "status": r.status,
            "status_notes": r.status_notes,
            "service_name": r.service_name,
            "service_code": r.service_code,
            "description": r.description,
            "agency_responsible": r.agency_responsible,
            "service_notice": r.service_notice,
            "requested_datetime": r.requested_datetime,
            "updated_datetime": r.updated_datetime,
            "expected_datetime": r.expected_datetime,
            "address": r.address,
            "address_id": None,
            "zipcode": None,
            "lat": r.lat,
            "long": r.long,
            "media_url": None,
        }
        for r in found
    ]


@router.get("/requests.{fmt}", summary="诉求列表（本密钥提交的）")
def get_requests(
    request: Request,
    fmt: Fmt,
    api_key: Annotated[str | None, Query(description="API 密钥（hotline 角色）")] = None,
    service_request_id: Annotated[str | None, Query(description="诉求编号，逗号分隔")] = None,
    service_code: Annotated[str | None, Query()] = None,
    start_date: Annotated[str | None, Query()] = None,
    end_date: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(description="open 或 closed")] = None,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """The caller's requests (by ids, or by service, window of the last 90 days by default, status), newest first."""

    def produce() -> Response:
        principal = _caller(request, api_key, Capability.SERVICE_REQUEST_READ)
        _check_jurisdiction(jurisdiction_id)
        filters = _filters(service_request_id, service_code, start_date, end_date, status)
        with _engine(request).connect() as conn:
            found = open311.list_requests(conn, filters, submitter=principal.audit_name)
        return _render(fmt, "service_requests", "request", _public(found))

    return _answer(fmt, produce)


@router.get("/requests/{service_request_id}.{fmt}", summary="诉求详情与办理状态")
def get_request(
    request: Request,
    fmt: Fmt,
    service_request_id: Annotated[str, Path()],
    api_key: Annotated[str | None, Query(description="API 密钥（hotline 角色）")] = None,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """One of the caller's requests with its status as the workflow moves it; 404 for any other."""

    def produce() -> Response:
        principal = _caller(request, api_key, Capability.SERVICE_REQUEST_READ)
        _check_jurisdiction(jurisdiction_id)
        if not REQUEST_ID.fullmatch(service_request_id):
            raise Open311Error(404, f"no service request {service_request_id}")
        with _engine(request).connect() as conn:
            found = open311.read_request(conn, int(service_request_id), submitter=principal.audit_name)
        return _render(fmt, "service_requests", "request", _public([found]))

    return _answer(fmt, produce)
