"""supervision.events: the registration event — its validation, and its stored row read back.

`parse_event` checks one event as the registration system sends it (JSON object or CSV row; the credit code's
GB 32100 check character); the readers give back stored events and how one was received and processed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis import clock
from supervision.errors import InvalidInput, NotFound, OutOfScope
from supervision.scope import CITY, Scope
from supervision.uscc import InvalidCreditCode, validate_uscc

EVENT_KINDS = ("new", "address_change", "scope_change", "deregistration")
EVENT_FIELDS = ("event_id", "kind", "uscc", "name", "address", "business_scope", "occurred_at")
MAX_TEXT = 500


@dataclass(frozen=True)
class RegistrationEvent:
    """One registration event as the registration system sends it (validated)."""

    event_id: str
    kind: str
    uscc: str
    name: str
    address: str
    business_scope: str
    occurred_at: datetime


def parse_event(raw: Mapping[str, Any]) -> RegistrationEvent:
    """Validate one event (JSON object or CSV row); InvalidInput names the field and the reason."""
    values: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        value = raw.get(name)
        if isinstance(value, str):
            value = value.strip()
        if name != "business_scope" and (value is None or value == ""):
            raise InvalidInput(f"{name} is missing", field=name)
        values[name] = value if value is not None else ""
    event_id = str(values["event_id"])
    if len(event_id) > 64:
        raise InvalidInput("event_id is longer than 64 characters", field="event_id")
    if values["kind"] not in EVENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EVENT_KINDS)}", field="kind")
    try:
        uscc = validate_uscc(str(values["uscc"]))
    except InvalidCreditCode as exc:
        raise InvalidInput(str(exc), field="uscc") from None
    for name in ("name", "address", "business_scope"):
        if not isinstance(values[name], str):
            raise InvalidInput(f"{name} must be text", field=name)
        if len(values[name]) > MAX_TEXT:
            raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters", field=name)
    occurred_at = _parse_time(values["occurred_at"], "occurred_at")
    return RegistrationEvent(
        event_id=event_id,
        kind=str(values["kind"]),
        uscc=uscc,
        name=values["name"],
        address=values["address"],
        business_scope=values["business_scope"],
        occurred_at=occurred_at,
    )


def _parse_time(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{field} is not an ISO 8601 time", field=field) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (e.g. +08:00)", field=field)
    if moment > clock.now().replace(microsecond=0) + _FUTURE_SLACK:
        raise InvalidInput(f"{field} is in the future", field=field)
    return moment


_FUTURE_SLACK = timedelta(minutes=5)


_EVENT_SELECT = (
    "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at, received_at FROM registration_event "
)


@dataclass(frozen=True)
class StoredEvent:
    """A stored event, and when the platform received it."""

    event: RegistrationEvent
    received_at: datetime


def _read_stored(conn: Connection, where: str, params: dict[str, Any]) -> list[StoredEvent]:
    """Stored events matching a fixed WHERE (and ORDER BY) fragment; values bound through `params`."""
    out: list[StoredEvent] = []
    for r in conn.execute(text(_EVENT_SELECT + where), params).mappings():
        fields = dict(r)
        received_at = fields.pop("received_at")
        out.append(StoredEvent(RegistrationEvent(**fields), received_at))
    return out


def _read_events(conn: Connection, where: str, params: dict[str, Any]) -> list[RegistrationEvent]:
    """The events alone of `_read_stored`."""
    return [s.event for s in _read_stored(conn, where, params)]


def load_events(conn: Connection, event_ids: Sequence[str]) -> list[RegistrationEvent]:
    """Stored events not processed yet, in the order they occurred."""
    return _read_events(
        conn,
        "WHERE event_id = ANY(:ids) AND processed_at IS NULL ORDER BY occurred_at, received_at, event_id",
        {"ids": list(event_ids)},
    )


def waiting_events(conn: Connection, uscc: str) -> list[RegistrationEvent]:
    """The changes of an entity that wait for its registration, in the order they occurred."""
    return _read_events(conn, "WHERE uscc = :u AND outcome = 'waiting' ORDER BY occurred_at, event_id", {"u": uscc})


def registration_status(conn: Connection, event_id: str, scope: Scope = CITY) -> dict[str, Any]:
    """How an event was received and processed: outcome, reason, times, its tasks and its review item.

    NotFound for an unknown event, OutOfScope for one placed outside the scope's map.
    """
    row = (
        conn.execute(
            text(
                "SELECT event_id, kind, uscc, outcome, reason, received_at, processed_at, pushed_at, town_code, "
                "ARRAY(SELECT id FROM task WHERE event_id = e.event_id ORDER BY id) AS task_ids, "
                "(SELECT max(id) FROM review_queue r WHERE r.kind = 'registration' "
                " AND r.payload->>'event_id' = e.event_id) AS review_id "
                "FROM registration_event e WHERE event_id = :e"
            ),
            {"e": event_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no registration event {event_id}")
    if not scope.sees(row["town_code"]):
        raise OutOfScope(f"event {event_id} is outside your area")
    return {**row, "task_ids": list(row["task_ids"])}


def stored_event(conn: Connection, event_id: str) -> RegistrationEvent | None:
    """One stored event, processed or not; None when there is no such event."""
    events = _read_events(conn, "WHERE event_id = :e", {"e": event_id})
    return events[0] if events else None


def stored_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
    """Stored events by id, processed or not, with when each was received; ids never stored are absent."""
    return {s.event.event_id: s for s in _read_stored(conn, "WHERE event_id = ANY(:ids)", {"ids": list(event_ids)})}
