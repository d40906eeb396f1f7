"""supervision.review: the dispatcher's review queue of registrations that could not be placed — list and resolve.

Processing (`supervision.intake`) queues an event whose address it cannot place, with the reason and the
candidates; a dispatcher of the item's town (and community, where it is known) places it on a standard address
or a point, and the flow continues from there: the entity and its tasks, then the changes that waited for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from address_library.normalize import normalize_with_flags
from address_library.repository import upsert_alias
from address_library.service import Geocoder
from gis import clock
from grids.repository import active_grid_at
from supervision.audit import Actor
from supervision.entities import Placement
from supervision.errors import AlreadyResolved, InvalidInput, NotFound, OutOfScope
from supervision.events import stored_event, waiting_events
from supervision.intake import ProcessResult, apply_event, process_events
from supervision.outbox import hand_back
from supervision.scope import Scope


@dataclass(frozen=True)
class ReviewItem:
    """待核队列的一项：原因、登记内容（含候选标准地址）、何时进入、何时由谁如何处理。"""

    id: int
    kind: str = field(metadata={"description": "registration（登记事件）"})
    reason: str = field(metadata={"description": "无法落点或有歧义的原因"})
    payload: dict[str, Any] = field(metadata={"description": "登记事件及候选标准地址"})
    town_code: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: dict[str, Any] | None = field(metadata={"description": "处理结果：标准地址或位置、网格、任务"})


def list_review(
    conn: Connection,
    *,
    scope: Scope,
    open_only: bool = True,
    limit: int = 100,
) -> list[ReviewItem]:
    """Registrations waiting for a dispatcher: the items the caller's scope handles (Scope.handles_review)."""
    where, params = scope.review_sql()
    clauses = ["kind = 'registration'", where]
    params = {**params, "limit": limit}
    if open_only:
        clauses.append("resolved_at IS NULL")
    rows = conn.execute(
        text(
            "SELECT id, kind, reason, payload, town_code, created_at, resolved_at, resolved_by, resolution "  # noqa: S608 - fixed SQL fragments; values are bound
            f"FROM review_queue WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit"
        ),
        params,
    ).mappings()
    return [ReviewItem(**r) for r in rows]


def resolve_review(
    conn: Connection,
    review_id: int,
    *,
    actor: Actor,
    geocoder: Geocoder | None,
    address_id: int | None = None,
    lon: float | None = None,
    lat: float | None = None,
    at: datetime | None = None,
) -> ProcessResult:
    """A dispatcher places a queued registration (a standard address or a point); the flow continues from there.

    Both the item and the chosen place must lie in the actor's scope: the item one the scope handles
    (`Scope.handles_review`), the place a grid the scope covers. Choosing a standard address teaches the geocoder:
    the typed text becomes an alias of that address.
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
    if not actor.scope.handles_review(item.town_code, (item.payload or {}).get("community_code")):
        raise OutOfScope(f"review item {review_id} is outside your area")
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
    if not actor.scope.covers(conn, "grid", placement.grid_code):
        raise InvalidInput(f"the chosen place lies outside {actor.scope.area_label}", field="address_id")
    event = stored_event(conn, payload["event_id"])
    if event is None:
        raise NotFound(f"the event of review item {review_id} is gone")
    result = apply_event(conn, event, placement, actor=actor, at=at)
    waiting = waiting_events(conn, event.uscc) if result.outcome == "placed" else []
    if waiting and geocoder is not None:
        result.followed = process_events(conn, waiting, geocoder, actor=actor, at=at)
    elif waiting:
        # No address index in this process yet: hand the changes back to the outbox, whose relay has one.
        hand_back(conn, [e.event_id for e in waiting])
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
