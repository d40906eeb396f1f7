"""supervision.events: the registration event — its validation, and its stored row read back.

`parse_event` checks one event as the registration system sends it (JSON object or CSV row; the credit code's
GB 32100 check character); the readers give back stored events and how one was received and processed.
"""

from __future__ import annotations

import os
import re
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
    """One registration event as the registration system sends it (validated).

    Once accepted (`supervision.outbox.accept_events`), `event_id` is the stored id (unique platform-wide: see
    `stored_event_id`), `source_event_id` the sender's own id, and `sender`/`sender_name` who sent it.
    """

    event_id: str
    kind: str
    uscc: str
    name: str
    address: str
    business_scope: str
    occurred_at: datetime
    sender: str = "system"
    sender_name: str = "system"
    source_event_id: str = ""

    @property
    def own_id(self) -> str:
        """The id the sender gave the event (what every answer to the sender shows)."""
        return self.source_event_id or self.event_id


@dataclass(frozen=True)
class EventSender:
    """Who sends events: the principal's stable owner reference (key#12, user#5) and its audit name (key:登记系统).

    `system` is the platform itself: the CLI's file loads, the demo, and every event stored before senders were.
    """

    owner: str
    name: str


SYSTEM_SENDER = EventSender("system", "system")
# A system id shaped like another sender's stored id (`key#3/E1`) would take that id from them: refused.
_FOREIGN_SHAPE = re.compile(r"^(key|user)[#:][^/]*/")


def stored_event_id(sender: str, source_event_id: str) -> str:
    """The stored id of a sender's event: its own id for `system`, `<sender>/<id>` for a key or a user.

    Injective over (sender, id), so ids are unique per sender and no sender can pre-claim another's.
    """
    if sender == SYSTEM_SENDER.owner:
        if _FOREIGN_SHAPE.match(source_event_id):
            raise InvalidInput("event_id may not start with a key or user reference", field="event_id")
        return source_event_id
    return f"{sender}/{source_event_id}"


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

# How far back a sender may date an event: a registration system's outage, not a rewrite of history.
MAX_AGE_VARIABLE = "GRIDGOV_REGISTRATION_MAX_AGE_DAYS"
DEFAULT_MAX_AGE = timedelta(days=30)


def max_event_age() -> timedelta:
    """GRIDGOV_REGISTRATION_MAX_AGE_DAYS days (default 30; malformed or out of 1..3660 → the default)."""
    raw = os.environ.get(MAX_AGE_VARIABLE, "").strip()
    try:
        days = float(raw) if raw else 0.0
    except ValueError:
        days = 0.0
    return timedelta(days=days) if 1 <= days <= 3660 else DEFAULT_MAX_AGE


def check_recent(event: RegistrationEvent) -> RegistrationEvent:
    """The event itself when it occurred within `max_event_age()` of now; InvalidInput naming occurred_at.

    (Its future side is `parse_event`'s: at most 5 minutes ahead of the platform clock.) Applied to what senders
    post over the API; the CLI's file loads of a backlog are staff's and keep their dates.
    """
    oldest = clock.now() - max_event_age()
    if event.occurred_at < oldest:
        raise InvalidInput(
            f"occurred_at ({event.occurred_at.isoformat()}) is more than {max_event_age().days} days in the past",
            field="occurred_at",
        )
    return event


_EVENT_SELECT = (
    "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at, sender, sender_name, source_event_id, "
    "received_at FROM registration_event "
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
    """How an event (by stored id) was received and processed: outcome, reason, times, its tasks and review item.

    `event_id` of the answer is the sender's own id, `sender` who sent it. NotFound for an unknown event,
    OutOfScope for one the scope may not read: a town the events placed in it; a community the events whose tasks are
    its own (one without tasks, waiting in review, by its town); a grid worker the events whose tasks are in their
    grid; a department the events whose tasks were routed to it (never the city's registrations at large).
    """
    where, params = scope.task_sql("t")
    sql = (
        "SELECT e.source_event_id AS event_id, e.sender, e.kind, e.uscc, e.outcome, e.reason, e.received_at, "  # noqa: S608 - fixed SQL fragments; values are bound
        "e.processed_at, e.pushed_at, e.town_code, "
        "ARRAY(SELECT id FROM task WHERE event_id = e.event_id ORDER BY id) AS task_ids, "
        "(SELECT max(id) FROM review_queue r WHERE r.kind = 'registration' "
        " AND r.payload->>'event_id' = e.event_id) AS review_id, "
        f"EXISTS (SELECT 1 FROM task t WHERE t.event_id = e.event_id AND {where}) AS routed "
        "FROM registration_event e WHERE e.event_id = :e"
    )
    row = conn.execute(text(sql), {"e": event_id, **params}).mappings().first()
    if row is None:
        raise NotFound(f"no registration event {event_id}")
    fields = dict(row)
    routed = fields.pop("routed")
    if scope.kind in ("department", "worker"):
        visible = routed
    elif scope.kind == "community":  # its tasks' community; an event without tasks (in review) by its town
        visible = routed or (not row["task_ids"] and scope.sees(row["town_code"]))
    else:
        visible = scope.sees(row["town_code"])
    if not visible:
        raise OutOfScope(f"event {row['event_id']} is outside your area")
    return {**fields, "task_ids": list(row["task_ids"])}


def find_event(conn: Connection, own_id: str, *, sender: str | None = None) -> str:
    """The stored id of an event named by its sender's own id: `sender`'s event when a sender is given (a key reads
    back only what it sent); otherwise the event stored under that very id, or the one sender's event of that id.

    NotFound when there is none; InvalidInput naming `sender` when several senders used the id.
    """
    if sender is not None:
        stored = stored_event_id(sender, own_id) if sender != SYSTEM_SENDER.owner else own_id
        if conn.execute(text("SELECT 1 FROM registration_event WHERE event_id = :e"), {"e": stored}).first():
            return stored
        raise NotFound(f"no registration event {own_id}")
    rows = conn.execute(
        text(
            "SELECT event_id FROM registration_event WHERE event_id = :e OR source_event_id = :e "
            "ORDER BY event_id = :e DESC, event_id LIMIT 2"
        ),
        {"e": own_id},
    ).all()
    if not rows:
        raise NotFound(f"no registration event {own_id}")
    if rows[0].event_id == own_id or len(rows) == 1:
        return str(rows[0].event_id)
    raise InvalidInput(f"several senders sent an event {own_id}: name the sender (?sender=key#…)", field="sender")


def stored_event(conn: Connection, event_id: str) -> RegistrationEvent | None:
    """One stored event, processed or not; None when there is no such event."""
    events = _read_events(conn, "WHERE event_id = :e", {"e": event_id})
    return events[0] if events else None


def stored_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
    """Stored events by id, processed or not, with when each was received; ids never stored are absent."""
    return {s.event.event_id: s for s in _read_stored(conn, "WHERE event_id = ANY(:ids)", {"ids": list(event_ids)})}
