"""supervision.intake: registration events → entities and grid tasks, through a transactional outbox.

Accepting an event and writing its outbox row happen in one transaction, so an event the caller was told is
accepted survives any crash afterwards. Processing (geocode, locate, upsert the entity, push the tasks) runs
from the outbox, under `FOR UPDATE SKIP LOCKED`, in its own transaction: a process killed in the middle leaves
the row unrelayed, and the next relay does the work exactly once (tasks are unique per event and duty).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from address_library.match import MATCHED
from address_library.normalize import normalize_with_flags
from address_library.repository import upsert_alias
from address_library.service import INVALID, GeocodeAnswer, Geocoder
from gis import clock
from grids.repository import active_grid_at, grid_community
from supervision.calendar import SHANGHAI
from supervision.errors import AlreadyResolved, EventConflict, InvalidInput, NotFound, OutOfScope
from supervision.routing import default_router
from supervision.tasks import SYSTEM, Actor, NewTask, cancel_entity_tasks, create_tasks, move_entity_tasks
from supervision.uscc import InvalidCreditCode, validate_uscc
from supervision.workflow import Duty

log = logging.getLogger(__name__)

EVENT_KINDS = ("new", "address_change", "scope_change", "deregistration")
EVENT_FIELDS = ("event_id", "kind", "uscc", "name", "address", "business_scope", "occurred_at")
# Below this confidence, or above door level, a registration is not placed without a dispatcher.
PLACE_MIN_CONFIDENCE = 0.8
PLACE_LEVELS = frozenset({"room", "building", "door"})
MAX_TEXT = 500
RELAY_BATCH = 500
# Rows of an import file accepted per transaction: a killed import redoes at most this many rows, and the
# sender of a day's file (a few thousand events) sees its accepted part survive a crash.
IMPORT_CHUNK = 1000
OUTBOX_TOPIC = "registration"

GeocoderSource = Callable[[], Geocoder]


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


# ------------------------------------------------------------------------------------------------ accepting


@dataclass(frozen=True)
class Accepted:
    """The answer to one accepted event: new, or a replay of one already received."""

    event_id: str
    duplicate: bool
    received_at: datetime


def accept_events(conn: Connection, events: Sequence[RegistrationEvent]) -> list[Accepted]:
    """Store events and their outbox rows (in the caller's transaction); replays create nothing new.

    A replay with different content is an EventConflict (an event id names one event, forever).
    """
    if not events:
        return []
    rows = [{**asdict(e), "occurred_at": e.occurred_at.isoformat()} for e in events]
    inserted = {
        r.event_id: r.received_at
        for r in conn.execute(
            text(
                """
                INSERT INTO registration_event
                    (event_id, kind, uscc, name, address, business_scope, occurred_at, received_at)
                SELECT r.event_id, r.kind, r.uscc, r.name, r.address, r.business_scope, r.occurred_at, :now
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
                    event_id text, kind text, uscc text, name text, address text, business_scope text,
                    occurred_at timestamptz)
                ON CONFLICT (event_id) DO NOTHING
                RETURNING event_id, received_at
                """
            ),
            {"rows": json.dumps(rows), "now": clock.now()},
        )
    }
    replays = [e for e in events if e.event_id not in inserted]
    existing: dict[str, Any] = {}
    if replays:
        existing = {
            r.event_id: r
            for r in conn.execute(
                text(
                    "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at, received_at "
                    "FROM registration_event WHERE event_id = ANY(:ids)"
                ),
                {"ids": [e.event_id for e in replays]},
            )
        }
    out: list[Accepted] = []
    seen: set[str] = set()
    for event in events:
        if event.event_id in inserted and event.event_id not in seen:
            seen.add(event.event_id)
            out.append(Accepted(event.event_id, False, inserted[event.event_id]))
            continue
        stored = existing.get(event.event_id)
        if stored is None:  # the same id twice in one batch: the first one was inserted
            stored_event = next(e for e in events if e.event_id == event.event_id)
            if stored_event != event:
                raise EventConflict(f"event {event.event_id} appears twice with different content")
            out.append(Accepted(event.event_id, True, inserted[event.event_id]))
            continue
        if _differs(stored, event):
            raise EventConflict(f"event {event.event_id} was received before with different content")
        out.append(Accepted(event.event_id, True, stored.received_at))
    if inserted:
        conn.execute(
            text("INSERT INTO outbox (topic, payload) SELECT :topic, jsonb_build_object('event_id', id) FROM unnest("
                 "CAST(:ids AS text[])) AS id"),
            {"topic": OUTBOX_TOPIC, "ids": list(inserted)},
        )  # fmt: skip
    return out


def _differs(stored: Any, event: RegistrationEvent) -> bool:
    return (
        stored.kind != event.kind
        or stored.uscc != event.uscc
        or stored.name != event.name
        or stored.address != event.address
        or stored.business_scope != event.business_scope
        or stored.occurred_at != event.occurred_at
    )


# ------------------------------------------------------------------------------------------------ processing


@dataclass(frozen=True)
class Placement:
    """Where an event's address lies: the standard address (if any), the point and the grid."""

    grid_code: str
    town_code: str
    lon: float
    lat: float
    address_id: int | None
    standard_address: str | None


@dataclass
class ProcessResult:
    """What processing an event did."""

    event_id: str
    outcome: Literal["placed", "review", "ignored", "waiting"]
    task_ids: list[int]
    reason: str | None = None
    # Changes of the same entity that waited for this registration's review and were applied after it.
    followed: list[ProcessResult] = field(default_factory=list)


def relay_pending(
    engine: Engine, geocoder: GeocoderSource, *, batch: int = RELAY_BATCH, limit: int | None = None
) -> int:
    """Process unrelayed outbox rows, a batch per transaction, until none are left (or `limit`); how many."""
    done = 0
    while limit is None or done < limit:
        with engine.connect() as conn:
            # Cheap check first: building the geocoder is the expensive part, and often nothing is waiting.
            waiting = conn.execute(text("SELECT 1 FROM outbox WHERE relayed_at IS NULL LIMIT 1")).first()
        if waiting is None:
            break
        with engine.begin() as conn:
            count = relay_batch(conn, geocoder(), batch=batch if limit is None else min(batch, limit - done))
        done += count
        if count == 0:
            break
    return done


def relay_batch(
    conn: Connection, geocoder: Geocoder, *, batch: int = RELAY_BATCH, event_ids: Sequence[str] = ()
) -> int:
    """Claim up to `batch` outbox rows (skipping rows another relay holds), process their events, mark them."""
    only = " AND payload->>'event_id' = ANY(:ids)" if event_ids else ""
    claimed = conn.execute(
        text(
            f"SELECT id, payload->>'event_id' AS event_id FROM outbox WHERE relayed_at IS NULL AND topic = :topic"  # noqa: S608 - fixed SQL fragments; values are bound
            f"{only} ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
        ),
        {"topic": OUTBOX_TOPIC, "n": batch, "ids": list(event_ids)},
    ).all()
    if not claimed:
        return 0
    events = load_events(conn, [r.event_id for r in claimed])
    process_events(conn, events, geocoder)
    conn.execute(text("UPDATE outbox SET relayed_at = now() WHERE id = ANY(:ids)"), {"ids": [r.id for r in claimed]})
    return len(claimed)


def load_events(conn: Connection, event_ids: Sequence[str]) -> list[RegistrationEvent]:
    """Stored events not processed yet, in the order they occurred."""
    rows = conn.execute(
        text(
            "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at FROM registration_event "
            "WHERE event_id = ANY(:ids) AND processed_at IS NULL ORDER BY occurred_at, received_at, event_id"
        ),
        {"ids": list(event_ids)},
    )
    return [RegistrationEvent(**r._mapping) for r in rows]


def process_events(
    conn: Connection,
    events: Sequence[RegistrationEvent],
    geocoder: Geocoder,
    *,
    actor: Actor = SYSTEM,
    at: datetime | None = None,
) -> list[ProcessResult]:
    """Geocode, place and apply each event in order (an entity's events in the order they occurred).

    New registrations of entities seen once in the batch and unknown so far are applied together, in a few
    set-based statements; every other event (changes, an entity with several events) one by one, in order.
    """
    needs_place = [e for e in events if e.kind in ("new", "address_change")]
    answers = geocoder.geocode_many([e.address for e in needs_place])
    placements = {e.event_id: a for e, a in zip(needs_place, answers, strict=True)}
    per_entity: dict[str, int] = {}
    for event in events:
        per_entity[event.uscc] = per_entity.get(event.uscc, 0) + 1
    known = {
        r[0] for r in conn.execute(text("SELECT uscc FROM entity WHERE uscc = ANY(:u)"), {"u": sorted(per_entity)})
    }
    results: dict[str, ProcessResult] = {}
    fast: list[tuple[RegistrationEvent, Placement]] = []
    for event in events:
        answer = placements.get(event.event_id)
        if answer is None:
            continue
        placement, reason, candidates = _placement(answer)
        if placement is None:
            results[event.event_id] = _to_review(conn, event, reason or "not placed", candidates, answer, at=at)
        elif event.kind == "new" and per_entity[event.uscc] == 1 and event.uscc not in known:
            fast.append((event, placement))
    if fast:
        results.update(_apply_new_batch(conn, fast, actor=actor, at=at))
    for event in events:
        if event.event_id in results:
            continue
        answer = placements.get(event.event_id)
        placement = _placement(answer)[0] if answer is not None else None
        results[event.event_id] = apply_event(conn, event, placement, actor=actor, at=at)
    return [results[e.event_id] for e in events]


def _apply_new_batch(
    conn: Connection, items: Sequence[tuple[RegistrationEvent, Placement]], *, actor: Actor, at: datetime | None
) -> dict[str, ProcessResult]:
    """New registrations of unknown entities, set-based: entities, their duty tasks, the events' outcomes."""
    moment = at or _processing_time()
    router = default_router()
    _upsert_entities(conn, [(e, p, router.needs_licence(e.business_scope), "new") for e, p in items])
    holders = {
        r[0]
        for r in conn.execute(
            text("SELECT DISTINCT uscc FROM entity_licence WHERE uscc = ANY(:u)"), {"u": [e.uscc for e, _ in items]}
        )
    }
    new: list[NewTask] = []
    for event, placement in items:
        new.extend(duty_tasks(conn, event, placement.grid_code, moment, holds=event.uscc in holders))
    create_tasks(conn, new, actor=actor)
    ids: dict[str, list[int]] = {}
    for event_id, task_id in conn.execute(
        text("SELECT event_id, id FROM task WHERE event_id = ANY(:e) ORDER BY id"),
        {"e": [e.event_id for e, _ in items]},
    ):
        ids.setdefault(event_id, []).append(int(task_id))
    conn.execute(_MARK, [_mark_params(e.event_id, "placed", None, p.town_code, pushed=True, at=at) for e, p in items])
    return {e.event_id: ProcessResult(e.event_id, "placed", ids.get(e.event_id, [])) for e, _ in items}


def _placement(answer: GeocodeAnswer) -> tuple[Placement | None, str | None, list[dict[str, Any]]]:
    if answer.status == INVALID:
        return None, f"address unusable: {answer.reason}", []
    candidates = list(answer.candidates)
    if answer.status != MATCHED:
        reason = "ambiguous: several standard addresses fit" if candidates else "no standard address found"
        return None, f"{reason} ({answer.reason})" if answer.reason else reason, candidates
    if answer.level not in PLACE_LEVELS:
        return None, f"matched only at {answer.level} level", candidates
    if answer.confidence < PLACE_MIN_CONFIDENCE:
        return None, f"match confidence {answer.confidence:.2f} is below {PLACE_MIN_CONFIDENCE}", candidates
    if not answer.grid_code or answer.lon is None or answer.lat is None or answer.town_code is None:
        return None, "the matched address lies in no grid", candidates
    return (
        Placement(
            grid_code=answer.grid_code,
            town_code=answer.town_code,
            lon=answer.lon,
            lat=answer.lat,
            address_id=answer.address_id,
            standard_address=answer.standard_address,
        ),
        None,
        [],
    )


def _to_review(
    conn: Connection,
    event: RegistrationEvent,
    reason: str,
    candidates: list[dict[str, Any]],
    answer: GeocodeAnswer,
    *,
    at: datetime | None = None,
) -> ProcessResult:
    town, community = answer.town_code, answer.community_code
    payload = {
        "event_id": event.event_id,
        "kind": event.kind,
        "uscc": event.uscc,
        "name": event.name,
        "address": event.address,
        "community_code": community,
        "candidates": candidates,
    }
    conn.execute(
        text(
            "INSERT INTO review_queue (kind, reason, payload, town_code) "
            "SELECT 'registration', :reason, CAST(:payload AS jsonb), :town "
            "WHERE NOT EXISTS (SELECT 1 FROM review_queue WHERE kind = 'registration' AND resolved_at IS NULL "
            "AND payload->>'event_id' = :event_id)"
        ),
        {
            "reason": reason,
            "payload": json.dumps(payload, ensure_ascii=False),
            "town": town,
            "event_id": event.event_id,
        },
    )
    _mark(conn, event.event_id, "review", reason, town, pushed=False, at=at)
    return ProcessResult(event.event_id, "review", [], reason)


def apply_event(
    conn: Connection,
    event: RegistrationEvent,
    placement: Placement | None,
    *,
    actor: Actor = SYSTEM,
    at: datetime | None = None,
) -> ProcessResult:
    """Apply one event whose address is placed (or that needs no address): entity, then tasks (pushed `at`)."""
    router = default_router()
    moment = at or _processing_time()
    existing = conn.execute(
        text("SELECT uscc, grid_code, status, business_scope FROM entity WHERE uscc = :u FOR UPDATE"),
        {"u": event.uscc},
    ).first()
    if existing is None and event.kind != "new":
        pending = _pending_registration_review(conn, event.uscc)
        if pending is not None:
            # The entity's registration waits for a dispatcher: so does its change, applied in order after it.
            reason = f"waits for review item {pending}: the registration of this entity is not placed yet"
            _mark(conn, event.event_id, "waiting", reason, None, pushed=False, at=at)
            return ProcessResult(event.event_id, "waiting", [], reason)
    kind = event.kind
    if kind in ("address_change", "scope_change") and existing is None:
        # The change of an entity we never heard of: register it from this event, so nothing is lost.
        kind = "new" if placement is not None else "unknown"
    if kind == "unknown" or (kind == "deregistration" and existing is None):
        reason = "no entity with this credit code"
        _mark(conn, event.event_id, "ignored", reason, None, pushed=False, at=at)
        return ProcessResult(event.event_id, "ignored", [], reason)
    if kind == "deregistration":
        conn.execute(text("UPDATE entity SET status = 'closed' WHERE uscc = :u"), {"u": event.uscc})
        cancelled = cancel_entity_tasks(
            conn, event.uscc, actor=actor, note=f"deregistered (event {event.event_id})", at=moment
        )
        town = conn.execute(text("SELECT town_code FROM entity WHERE uscc = :u"), {"u": event.uscc}).scalar()
        _mark(conn, event.event_id, "placed", f"cancelled {len(cancelled)} open tasks", town, pushed=False, at=at)
        return ProcessResult(event.event_id, "placed", [])
    if kind == "scope_change":
        needs = router.needs_licence(event.business_scope)
        conn.execute(
            text("UPDATE entity SET business_scope = :s, needs_licence = :n, industry = :i WHERE uscc = :u"),
            {"s": event.business_scope, "n": needs, "i": industry_of(event.business_scope), "u": event.uscc},
        )
        new: list[NewTask] = []
        open_licence = conn.execute(
            text(
                "SELECT 1 FROM task WHERE entity_uscc = :u AND duty = 'licence_check' "
                "AND status NOT IN ('closed','cancelled')"
            ),
            {"u": event.uscc},
        ).first()
        if needs and open_licence is None and existing is not None and existing.status == "open":
            new.append(_licence_task(event, existing.grid_code, moment))
        ids = create_tasks(conn, new, actor=actor) if new else []
        town = conn.execute(text("SELECT town_code FROM entity WHERE uscc = :u"), {"u": event.uscc}).scalar()
        _mark(conn, event.event_id, "placed", None, town, pushed=bool(ids), at=at)
        return ProcessResult(event.event_id, "placed", ids)

    assert placement is not None
    _upsert_entities(conn, [(event, placement, router.needs_licence(event.business_scope), kind)])
    if kind == "address_change" and existing is not None:
        moved = move_entity_tasks(
            conn,
            event.uscc,
            placement.grid_code,
            actor=actor,
            note=f"address changed to {placement.standard_address or event.address} (event {event.event_id})",
            at=moment,
        )
        ids = create_tasks(
            conn,
            [NewTask(Duty.ADDRESS_CHECK, placement.grid_code, moment, event.uscc, event_id=event.event_id,
                     note="check the new address")],
            actor=actor,
        )  # fmt: skip
        _mark(conn, event.event_id, "placed", f"moved {len(moved)} open tasks", placement.town_code, pushed=True, at=at)
        return ProcessResult(event.event_id, "placed", ids + moved)
    ids = create_tasks(conn, duty_tasks(conn, event, placement.grid_code, moment), actor=actor)
    _mark(conn, event.event_id, "placed", None, placement.town_code, pushed=True, at=at)
    return ProcessResult(event.event_id, "placed", ids)


def _pending_registration_review(conn: Connection, uscc: str) -> int | None:
    """The open review item of an entity's registration, if a dispatcher has yet to place it."""
    found = conn.execute(
        text(
            "SELECT id FROM review_queue WHERE kind = 'registration' AND resolved_at IS NULL "
            "AND payload->>'uscc' = :u ORDER BY id LIMIT 1"
        ),
        {"u": uscc},
    ).scalar()
    return int(found) if found is not None else None


def _waiting_events(conn: Connection, uscc: str) -> list[RegistrationEvent]:
    """The changes of an entity that wait for its registration, in the order they occurred."""
    return [
        RegistrationEvent(**r._mapping)
        for r in conn.execute(
            text(
                "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at FROM registration_event "
                "WHERE uscc = :u AND outcome = 'waiting' ORDER BY occurred_at, event_id"
            ),
            {"u": uscc},
        )
    ]


def duty_tasks(
    conn: Connection, event: RegistrationEvent, grid_code: str, pushed_at: datetime, *, holds: bool | None = None
) -> list[NewTask]:
    """The "4+2" duties that apply to a newly registered entity, one task each (`holds`: it has a licence)."""
    tasks = [
        NewTask(Duty.ADDRESS_CHECK, grid_code, pushed_at, event.uscc, event_id=event.event_id),
        NewTask(Duty.OPENING_CHECK, grid_code, pushed_at, event.uscc, event_id=event.event_id),
    ]
    router = default_router()
    if router.needs_licence(event.business_scope):
        tasks.append(_licence_task(event, grid_code, pushed_at))
        if holds is None:
            holds = (
                conn.execute(text("SELECT 1 FROM entity_licence WHERE uscc = :u"), {"u": event.uscc}).first()
                is not None
            )
        if holds:
            tasks.append(NewTask(Duty.LICENCE_DISPLAY, grid_code, pushed_at, event.uscc, event_id=event.event_id))
    return tasks


def _licence_task(event: RegistrationEvent, grid_code: str, pushed_at: datetime) -> NewTask:
    """The licence check, routed to every department whose licence the scope needs (one joint case)."""
    departments = default_router().departments_for_scope(event.business_scope)
    licences = "、".join(r.licence for r in default_router().requirements(event.business_scope))
    return NewTask(
        Duty.LICENCE_CHECK,
        grid_code,
        pushed_at,
        event.uscc,
        event_id=event.event_id,
        department_codes=departments,
        note=f"needs {licences}" + (" (joint case)" if len(departments) > 1 else ""),
    )


def industry_of(business_scope: str) -> str:
    """The entity's industry: the first high-frequency clue industry its scope names, else its first scope item."""
    for industry in default_router().clue_industries():
        if industry in business_scope:
            return industry
    first = business_scope.replace("；", ";").split(";")[0].strip()
    return first[:24] or "未分类"


def _upsert_entities(conn: Connection, items: Sequence[tuple[RegistrationEvent, Placement, bool, str]]) -> None:
    """Insert or update entities from events; a change event keeps the scope it does not change."""
    rows = [
        {
            "uscc": event.uscc,
            "name": event.name,
            # The second character of a credit code says the kind: 1 enterprise, 2 individual business (个体工商户).
            "entity_kind": "individual" if event.uscc[1] == "2" else "company",
            "scope": event.business_scope or "未登记经营范围",
            "industry": industry_of(event.business_scope),
            "raw": event.address,
            "address_id": placement.address_id,
            "town": placement.town_code,
            "grid": placement.grid_code,
            "registered_on": event.occurred_at.astimezone(SHANGHAI).date().isoformat(),
            "needs": needs_licence,
            "lon": placement.lon,
            "lat": placement.lat,
            "is_new": kind == "new",
        }
        for event, placement, needs_licence, kind in items
    ]
    conn.execute(
        text(
            """
            INSERT INTO entity (uscc, name, kind, business_scope, industry, raw_address, address_id, town_code,
                                grid_code, status, registered_on, needs_licence, geom)
            SELECT r.uscc, r.name, r.entity_kind, r.scope, r.industry, r.raw, r.address_id, r.town, r.grid, 'open',
                   r.registered_on, r.needs, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
                uscc text, name text, entity_kind text, scope text, industry text, raw text, address_id bigint,
                town text, grid text, registered_on date, needs boolean, lon float8, lat float8, is_new boolean)
            ON CONFLICT (uscc) DO UPDATE SET name = EXCLUDED.name, raw_address = EXCLUDED.raw_address,
                address_id = EXCLUDED.address_id, town_code = EXCLUDED.town_code, grid_code = EXCLUDED.grid_code,
                geom = EXCLUDED.geom,
                status = CASE WHEN :is_new THEN 'open' ELSE entity.status END,
                business_scope = CASE WHEN :is_new THEN EXCLUDED.business_scope ELSE entity.business_scope END,
                industry = CASE WHEN :is_new THEN EXCLUDED.industry ELSE entity.industry END,
                needs_licence = CASE WHEN :is_new THEN EXCLUDED.needs_licence ELSE entity.needs_licence END
            """
        ),
        {"rows": json.dumps(rows, ensure_ascii=False), "is_new": all(r["is_new"] for r in rows)},
    )


_MARK = text(
    "UPDATE registration_event SET outcome = :o, reason = :r, town_code = COALESCE(:t, town_code), "
    "processed_at = CAST(:at AS timestamptz), "
    "pushed_at = CASE WHEN :p THEN CAST(:at AS timestamptz) ELSE pushed_at END "
    "WHERE event_id = :e"
)


def _mark_params(
    event_id: str, outcome: str, reason: str | None, town: str | None, *, pushed: bool, at: datetime | None
) -> dict[str, Any]:
    return {"o": outcome, "r": reason, "t": town, "p": pushed, "e": event_id, "at": at or clock.now()}


def _mark(
    conn: Connection,
    event_id: str,
    outcome: str,
    reason: str | None,
    town: str | None,
    *,
    pushed: bool,
    at: datetime | None = None,
) -> None:
    """Record the event's outcome, and when it was processed and its task pushed (the platform clock, or `at`)."""
    conn.execute(_MARK, _mark_params(event_id, outcome, reason, town, pushed=pushed, at=at))


def _processing_time() -> datetime:
    return clock.now()


def registration_status(conn: Connection, event_id: str) -> dict[str, Any]:
    """How an event was received and processed: outcome, reason, times, its tasks and its review item."""
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
    return {**row, "task_ids": list(row["task_ids"])}


# ------------------------------------------------------------------------------------------------ review queue


def list_review(
    conn: Connection,
    *,
    town_codes: frozenset[str] | None,
    community_code: str | None = None,
    open_only: bool = True,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Registrations waiting for a dispatcher (in the caller's towns, or community where it is known)."""
    clauses = ["kind = 'registration'"]
    params: dict[str, Any] = {"limit": limit}
    if open_only:
        clauses.append("resolved_at IS NULL")
    if town_codes is not None:
        clauses.append("town_code = ANY(:towns)")
        params["towns"] = sorted(town_codes)
    if community_code is not None:
        clauses.append("(payload->>'community_code' = :community OR payload->>'community_code' IS NULL)")
        params["community"] = community_code
    rows = conn.execute(
        text(
            "SELECT id, kind, reason, payload, town_code, created_at, resolved_at, resolved_by, resolution "  # noqa: S608 - fixed SQL fragments; values are bound
            f"FROM review_queue WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit"
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def resolve_review(
    conn: Connection,
    review_id: int,
    *,
    actor: Actor,
    geocoder: Geocoder | None,
    address_id: int | None = None,
    lon: float | None = None,
    lat: float | None = None,
    town_codes: frozenset[str] | None = None,
    community_code: str | None = None,
    at: datetime | None = None,
) -> ProcessResult:
    """A dispatcher places a queued registration (a standard address or a point); the flow continues from there.

    Both the item and the chosen place must lie in the caller's area: its towns (`town_codes`) and, for a
    community's dispatcher, its community (`community_code`; an item whose community is unknown may be placed by
    any dispatcher of its town, inside their own community). Choosing a standard address teaches the geocoder: the
    typed text becomes an alias of that address.
    """
    item = conn.execute(
        text("SELECT id, payload, town_code, resolved_at FROM review_queue WHERE id = :id AND kind = 'registration' "
             "FOR UPDATE"),
        {"id": review_id},
    ).first()  # fmt: skip
    if item is None:
        raise NotFound(f"no review item {review_id}")
    if item.resolved_at is not None:
        raise AlreadyResolved(f"review item {review_id} was resolved already")
    if town_codes is not None and item.town_code is not None and item.town_code not in town_codes:
        raise OutOfScope(f"review item {review_id} is outside your area")
    item_community = (item.payload or {}).get("community_code")
    if community_code is not None and item_community is not None and item_community != community_code:
        raise OutOfScope(f"review item {review_id} is outside your community")
    if (address_id is None) == (lon is None or lat is None):
        raise InvalidInput("give either address_id or lon and lat", field="address_id")
    payload = item.payload
    if address_id is not None:
        row = conn.execute(
            text(
                "SELECT a.id, a.full_text, a.town_code, a.grid_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat "
                "FROM address a WHERE a.id = :id AND a.status = 'active'"
            ),
            {"id": address_id},
        ).first()
        if row is None or row.grid_code is None:
            raise InvalidInput(f"no active standard address {address_id} in a grid", field="address_id")
        placement = Placement(row.grid_code, row.town_code, row.lon, row.lat, row.id, row.full_text)
    else:
        assert lon is not None and lat is not None
        grid = active_grid_at(conn, lon, lat)
        if grid is None:
            raise InvalidInput(f"({lon}, {lat}) lies in no grid", field="lon")
        placement = Placement(grid[0], grid[1], lon, lat, None, None)
    if town_codes is not None and placement.town_code not in town_codes:
        raise InvalidInput("the chosen place lies outside your area", field="address_id")
    if community_code is not None and grid_community(conn, placement.grid_code) != community_code:
        raise InvalidInput("the chosen place lies outside your community", field="address_id")
    events = [
        RegistrationEvent(**r._mapping)
        for r in conn.execute(
            text(
                "SELECT event_id, kind, uscc, name, address, business_scope, occurred_at FROM registration_event "
                "WHERE event_id = :e"
            ),
            {"e": payload["event_id"]},
        )
    ]
    if not events:
        raise NotFound(f"the event of review item {review_id} is gone")
    event = events[0]
    result = apply_event(conn, event, placement, actor=actor, at=at)
    waiting = _waiting_events(conn, event.uscc) if result.outcome == "placed" else []
    if waiting and geocoder is not None:
        result.followed = process_events(conn, waiting, geocoder, actor=actor, at=at)
    elif waiting:
        # No address index in this process yet: hand the changes back to the outbox, whose relay has one.
        ids = [e.event_id for e in waiting]
        conn.execute(
            text(
                "UPDATE registration_event SET outcome = 'accepted', reason = NULL, processed_at = NULL "
                "WHERE event_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        conn.execute(
            text("UPDATE outbox SET relayed_at = NULL WHERE topic = :topic AND payload->>'event_id' = ANY(:ids)"),
            {"topic": OUTBOX_TOPIC, "ids": ids},
        )  # the event keeps its one outbox row
    if placement.address_id is not None:
        normalized = normalize_with_flags(event.address).text
        if normalized:
            upsert_alias(
                conn, normalized_text=normalized, address_id=placement.address_id, raw_text=event.address,
                created_by=actor.name,
            )  # fmt: skip
            if geocoder is not None:
                geocoder.learn_alias(normalized, placement.address_id)
    conn.execute(
        text(
            "UPDATE review_queue SET resolved_at = :now, resolved_by = :by, resolution = CAST(:res AS jsonb) "
            "WHERE id = :id"
        ),
        {
            "now": clock.now(),
            "id": review_id,
            "by": actor.name,
            "res": json.dumps(
                {"address_id": placement.address_id, "lon": placement.lon, "lat": placement.lat,
                 "grid_code": placement.grid_code, "task_ids": result.task_ids},
                ensure_ascii=False,
            ),
        },
    )  # fmt: skip
    return result


# ------------------------------------------------------------------------------------------------ files


@dataclass(frozen=True)
class RejectedRow:
    """A row of an import file that was not accepted, and why."""

    line: int
    event_id: str | None
    field: str | None
    reason: str


def read_event_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a CSV or JSON-lines file; a string instead of a row is a line that does not parse."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if first.lstrip().startswith("{"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"not valid JSON: {exc.msg}"
                    continue
                yield number, value if isinstance(value, dict) else "a JSON line must be an object"
            return
        reader = csv.DictReader(handle)
        missing = [f for f in EVENT_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path.name}: the header lacks {', '.join(missing)}", field="header")
        for row in reader:
            yield reader.line_num, dict(row)


@dataclass
class ImportReport:
    """What an import did: accepted, replays, rejected rows with their reasons."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.accepted:,} events accepted, {self.duplicates:,} already received, {len(self.rejected):,} rejected"
        )


def import_events(
    engine: Engine,
    rows: Iterable[tuple[int, dict[str, Any] | str]],
    *,
    chunk: int = IMPORT_CHUNK,
    source: str = "import",
) -> ImportReport:
    """Accept the rows of a file in chunks (each chunk one transaction); rejected rows are reported and queued."""
    report = ImportReport()
    pending: list[RegistrationEvent] = []
    lines: list[int] = []

    def flush() -> None:
        if not pending:
            return
        with engine.begin() as conn:
            try:
                with conn.begin_nested():
                    outcomes = accept_events(conn, pending)
            except EventConflict:
                outcomes = []
                for line, event in zip(lines, pending, strict=True):
                    try:
                        with conn.begin_nested():
                            outcomes.extend(accept_events(conn, [event]))
                    except EventConflict as exc:
                        _reject(conn, report, RejectedRow(line, event.event_id, "event_id", str(exc)), source)
            for outcome in outcomes:
                if outcome.duplicate:
                    report.duplicates += 1
                else:
                    report.accepted += 1
        pending.clear()
        lines.clear()

    for line, row in rows:
        if isinstance(row, str):
            with engine.begin() as conn:
                _reject(conn, report, RejectedRow(line, None, None, row), source)
            continue
        try:
            event = parse_event(row)
        except InvalidInput as exc:
            with engine.begin() as conn:
                event_id = row.get("event_id")
                _reject(conn, report, RejectedRow(line, str(event_id) if event_id else None, exc.field, str(exc)),
                        source, row)  # fmt: skip
            continue
        pending.append(event)
        lines.append(line)
        if len(pending) >= chunk:
            flush()
    flush()
    return report


def _reject(
    conn: Connection, report: ImportReport, rejected: RejectedRow, source: str, row: Mapping[str, Any] | None = None
) -> None:
    """Report a rejected row and keep it in the review queue: nothing is dropped silently."""
    report.rejected.append(rejected)
    payload = {"source": source, "line": rejected.line, "field": rejected.field, "row": dict(row or {})}
    # A replayed file does not queue the same rejected row twice.
    conn.execute(
        text(
            "INSERT INTO review_queue (kind, reason, payload) "
            "SELECT 'registration_rejected', :r, CAST(:p AS jsonb) WHERE NOT EXISTS ("
            "SELECT 1 FROM review_queue WHERE kind = 'registration_rejected' AND resolved_at IS NULL "
            "AND reason = :r AND payload = CAST(:p AS jsonb))"
        ),
        {"r": rejected.reason, "p": json.dumps(payload, ensure_ascii=False, default=str)},
    )


def format_rejections(rejected: Sequence[RejectedRow], *, limit: int = 20) -> str:
    """The first rejected rows, one per line, for the terminal."""
    out = io.StringIO()
    for r in rejected[:limit]:
        out.write(f"  line {r.line}: {r.event_id or '-'}: {r.reason}\n")
    if len(rejected) > limit:
        out.write(f"  … and {len(rejected) - limit:,} more\n")
    return out.getvalue()
