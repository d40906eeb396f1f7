"""supervision.intake: processing registration events — place each address, then write the entity and its tasks.

Each event's address is geocoded and placed in a grid (`Placement`); a placed event upserts its entity
(`supervision.entities`) and pushes its duty tasks (`supervision.duties`), a change moves or cancels the entity's
open tasks. An address that cannot be placed sends the event to the review queue for a dispatcher
(`supervision.review`); a change of an entity whose registration is still in review waits for it. Events come
from the outbox relay (`supervision.outbox`), which calls `process_events` once per claimed batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, text

from address_library.match import MATCHED
from address_library.service import INVALID, GeocodeAnswer, Geocoder
from gis import clock
from grids.repository import active_grid_at
from supervision.audit import SYSTEM, Actor
from supervision.creation import NewTask, create_tasks
from supervision.duties import duty_tasks, licence_task
from supervision.entities import (
    Placement,
    cancel_entity_tasks,
    change_scope,
    close_entity,
    move_entity_tasks,
    upsert_entities,
)
from supervision.events import RegistrationEvent
from supervision.routing import default_router
from supervision.task_states import OPEN_STATUSES
from supervision.workflow import Duty

# Below this confidence (the calibrated probability that the door is right), or above door level, a registration
# is not placed without a dispatcher.
PLACE_MIN_CONFIDENCE = 0.9
PLACE_LEVELS = frozenset({"room", "building", "door"})

# The grid-version lock (planning.grid_versions): an apply or a rollback of a grid version holds it exclusively
# while it moves addresses, entities and tasks between grids; intake holds it shared while it places entities, so
# a registration either lands before the apply (and is moved by it) or after it (in the new grid), never between.
GRID_VERSION_LOCK = 0x67726964  # "grid"


def hold_grid_versions_shared(conn: Connection) -> None:
    """Wait for any grid-version apply in progress and keep the active version fixed until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": GRID_VERSION_LOCK})


@dataclass
class ProcessResult:
    """What processing an event did."""

    event_id: str
    outcome: Literal["placed", "review", "ignored", "waiting"]
    task_ids: list[int]
    reason: str | None = None
    # Changes of the same entity that waited for this registration's review and were applied after it.
    followed: list[ProcessResult] = field(default_factory=list)


def sender_actor(event: RegistrationEvent) -> Actor:
    """The audit actor of what an event causes: its sender (`key:登记系统`, `user:张三`; `system` for the platform's
    own loads), also when the relay processes it later."""
    return SYSTEM if event.sender_name == SYSTEM.name else Actor(event.sender_name, SYSTEM.role)


def process_events(
    conn: Connection,
    events: Sequence[RegistrationEvent],
    geocoder: Geocoder,
    *,
    actor: Actor | None = None,
    at: datetime | None = None,
) -> list[ProcessResult]:
    """Geocode, place and apply each event in order (an entity's events in the order they occurred).

    New registrations of entities seen once in the batch and unknown so far are applied together, in a few
    set-based statements; every other event (changes, an entity with several events) one by one, in order.
    The audit actor is `actor` when given (a dispatcher resolving a review item), else each event's sender.
    """
    needs_place = [e for e in events if e.kind in ("new", "address_change")]
    answers = geocoder.geocode_many([e.address for e in needs_place])
    if needs_place:
        # The geocoder's grid comes from its in-memory copy of the active version, which an apply may have just
        # replaced: under the grid-version lock, the grid is read again from the database.
        hold_grid_versions_shared(conn)
        answers = current_grids(conn, answers)
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
        results[event.event_id] = apply_event(conn, event, placement, actor=actor or sender_actor(event), at=at)
    return [results[e.event_id] for e in events]


def current_grids(conn: Connection, answers: Sequence[GeocodeAnswer]) -> list[GeocodeAnswer]:
    """The answers with the grid and town their standard address (or point) has in the database's active version."""
    ids = sorted({a.address_id for a in answers if a.address_id is not None and a.grid_code})
    stored = {
        int(r.id): (r.grid_code, r.town_code)
        for r in conn.execute(
            text("SELECT id, grid_code, town_code FROM address WHERE id = ANY(:ids) AND grid_code IS NOT NULL"),
            {"ids": ids},
        )
    }
    out: list[GeocodeAnswer] = []
    for answer in answers:
        found: tuple[str, str] | None = None
        if answer.address_id is not None and answer.address_id in stored:
            found = stored[answer.address_id]
        elif answer.grid_code and answer.lon is not None and answer.lat is not None:
            found = active_grid_at(conn, answer.lon, answer.lat)
        if found is not None and (found[0], found[1]) != (answer.grid_code, answer.town_code):
            answer = replace(answer, grid_code=found[0], town_code=found[1])
        out.append(answer)
    return out


def _apply_new_batch(
    conn: Connection, items: Sequence[tuple[RegistrationEvent, Placement]], *, actor: Actor | None, at: datetime | None
) -> dict[str, ProcessResult]:
    """New registrations of unknown entities, set-based: entities, their duty tasks, the events' outcomes."""
    moment = at or clock.now()
    router = default_router()
    upsert_entities(conn, [(e, p, router.needs_licence(e.business_scope), "new") for e, p in items])
    holders = {
        r[0]
        for r in conn.execute(
            text("SELECT DISTINCT uscc FROM entity_licence WHERE uscc = ANY(:u)"), {"u": [e.uscc for e, _ in items]}
        )
    }
    # Each event's tasks are created in the name of its sender (or of `actor`), one set-based call per sender.
    per_actor: dict[Actor, list[NewTask]] = {}
    for event, placement in items:
        tasks = duty_tasks(conn, event, placement.grid_code, moment, holds=event.uscc in holders)
        per_actor.setdefault(actor or sender_actor(event), []).extend(tasks)
    for who, new in per_actor.items():
        create_tasks(conn, new, actor=who)
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
    found = f" ({answer.reason})" if answer.reason else ""
    if answer.level not in PLACE_LEVELS:
        return None, f"matched only at {answer.level} level{found}", candidates
    if answer.confidence < PLACE_MIN_CONFIDENCE:
        return None, f"match confidence {answer.confidence:.2f} is below {PLACE_MIN_CONFIDENCE}{found}", candidates
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
        "source_event_id": event.own_id,
        "sender": event.sender,
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
    actor: Actor | None = None,
    at: datetime | None = None,
) -> ProcessResult:
    """Apply one event whose address is placed (or that needs no address): entity, then tasks (pushed `at`).

    The audit actor is `actor` when given, else the event's sender."""
    actor = actor or sender_actor(event)
    router = default_router()
    moment = at or clock.now()
    existing = conn.execute(
        text("SELECT uscc, grid_code, town_code, status, business_scope FROM entity WHERE uscc = :u FOR UPDATE"),
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
    if kind == "deregistration" and existing is not None:
        close_entity(conn, event.uscc)
        cancelled = cancel_entity_tasks(
            conn, event.uscc, actor=actor, note=f"deregistered (event {event.event_id})", at=moment
        )
        _mark(
            conn,
            event.event_id,
            "placed",
            f"cancelled {len(cancelled)} open tasks",
            existing.town_code,
            pushed=False,
            at=at,
        )
        return ProcessResult(event.event_id, "placed", [])
    if kind == "scope_change" and existing is not None:  # a change of an unknown entity became "new" above
        needs = router.needs_licence(event.business_scope)
        change_scope(conn, event.uscc, event.business_scope, needs_licence=needs)
        new: list[NewTask] = []
        open_licence = conn.execute(
            text("SELECT 1 FROM task WHERE entity_uscc = :u AND duty = :duty AND status = ANY(:open)"),
            {"u": event.uscc, "duty": Duty.LICENCE_CHECK.value, "open": list(OPEN_STATUSES)},
        ).first()
        if needs and open_licence is None and existing.status == "open":
            new.append(licence_task(event, existing.grid_code, moment))
        ids = create_tasks(conn, new, actor=actor) if new else []
        _mark(conn, event.event_id, "placed", None, existing.town_code, pushed=bool(ids), at=at)
        return ProcessResult(event.event_id, "placed", ids)

    assert placement is not None
    upsert_entities(conn, [(event, placement, router.needs_licence(event.business_scope), kind)])
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
