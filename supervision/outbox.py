"""supervision.outbox: the transactional outbox of registration events — accept with an outbox row, then relay.

Accepting an event and writing its outbox row happen in one transaction, so an event the caller was told is
accepted survives any crash afterwards. The relay claims outbox rows under `FOR UPDATE SKIP LOCKED` and
processes their events (`supervision.intake`) in the same transaction as it marks them: a process killed in
the middle leaves the row unrelayed, and the next relay does the work exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from address_library.service import Geocoder
from gis import clock
from supervision.errors import EventConflict
from supervision.events import (
    SYSTEM_SENDER,
    EventSender,
    RegistrationEvent,
    load_events,
    stored_event_id,
    stored_events,
)
from supervision.intake import process_events

RELAY_BATCH = 500
OUTBOX_TOPIC = "registration"

GeocoderSource = Callable[[], Geocoder]


@dataclass(frozen=True)
class Accepted:
    """The answer to one accepted event: new, or a replay of one already received.

    `event_id` is the stored id (`supervision.events.stored_event_id`): what the relay and the reads take.
    """

    event_id: str
    duplicate: bool
    received_at: datetime


def accept_events(
    conn: Connection, events: Sequence[RegistrationEvent], *, sender: EventSender = SYSTEM_SENDER
) -> list[Accepted]:
    """Store `sender`'s events and their outbox rows (in the caller's transaction); replays create nothing new.

    Each event is stored under its sender, with the sender's id as `source_event_id` and a stored id unique per
    sender. A replay (same sender, same id) with different content is an EventConflict (an event id names one of
    the sender's events, forever); another sender's event of the same id is another event.
    """
    if not events:
        return []
    events = [
        replace(
            e,
            event_id=stored_event_id(sender.owner, e.event_id),
            sender=sender.owner,
            sender_name=sender.name,
            source_event_id=e.event_id,
        )
        for e in events
    ]
    rows = [{**asdict(e), "occurred_at": e.occurred_at.isoformat()} for e in events]
    inserted = {
        r.event_id: r.received_at
        for r in conn.execute(
            text(
                """
                INSERT INTO registration_event
                    (event_id, kind, uscc, name, address, business_scope, occurred_at, sender, sender_name,
                     source_event_id, received_at)
                SELECT r.event_id, r.kind, r.uscc, r.name, r.address, r.business_scope, r.occurred_at, r.sender,
                       r.sender_name, r.source_event_id, :now
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
                    event_id text, kind text, uscc text, name text, address text, business_scope text,
                    occurred_at timestamptz, sender text, sender_name text, source_event_id text)
                ON CONFLICT DO NOTHING
                RETURNING event_id, received_at
                """
            ),
            {"rows": json.dumps(rows), "now": clock.now()},
        )
    }
    replays = [e for e in events if e.event_id not in inserted]
    existing = stored_events(conn, [e.event_id for e in replays]) if replays else {}
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
                raise EventConflict(f"event {event.own_id} appears twice with different content")
            out.append(Accepted(event.event_id, True, inserted[event.event_id]))
            continue
        if replace(stored.event, sender_name=event.sender_name) != event:  # a renamed sender resends: the same
            raise EventConflict(f"event {event.own_id} was received before with different content")
        out.append(Accepted(event.event_id, True, stored.received_at))
    if inserted:
        conn.execute(
            text("INSERT INTO outbox (topic, payload) SELECT :topic, jsonb_build_object('event_id', id) FROM unnest("
                 "CAST(:ids AS text[])) AS id"),
            {"topic": OUTBOX_TOPIC, "ids": list(inserted)},
        )  # fmt: skip
    return out


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


def hand_back(conn: Connection, event_ids: Sequence[str]) -> None:
    """Return processed-as-waiting events to the outbox, for a relay that has an address index to process them."""
    ids = list(event_ids)
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
