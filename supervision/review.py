"""supervision.review: the dispatcher's review queue of registrations that could not be placed — list and resolve.

Processing (`supervision.intake`) queues an event whose address it cannot place, with the reason and the
candidates; a dispatcher of the item's town (and community, where it is known) places it on a standard address,
on a point, or on a standard address they add to the library for it (prefilled by `propose_address`), and the flow
continues from there: the entity and its tasks, then the changes that waited for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from address_library.drafts import draft_from_components, draft_from_typed
from address_library.errors import AddressInputError, AddressLibraryError
from address_library.maintenance import add_drafted
from address_library.normalize import normalize_with_flags
from address_library.repository import AliasEntry, Teaching, addresses_by_text, teach_alias
from address_library.service import Geocoder
from gis import clock
from grids.placement import GridPlacement
from grids.repository import active_grid_at
from supervision.audit import Actor
from supervision.entities import Placement
from supervision.errors import AlreadyResolved, InvalidInput, NotFound, OutOfScope
from supervision.events import stored_event, waiting_events
from supervision.intake import ProcessResult, apply_event, process_events
from supervision.outbox import hand_back
from supervision.permissions import Role
from supervision.scope import Scope

# The command centre decides what the whole city's geocoder learns: its resolutions teach city-wide aliases at once.
_PROMOTING_ROLES = frozenset({Role.ADMIN.value, Role.COMMAND_CENTRE.value})


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

    Both ends are checked before anything changes: the item must be one the scope handles (`Scope.handles_review`)
    and the chosen place (the standard address's grid, or the point's) a grid the scope covers — OutOfScope for
    either, so a dispatcher cannot place an item of their community at a door of another town. Choosing a standard
    address teaches the geocoder an alias of the typed text in that address's community only
    (`address_library.repository.teach_alias`; the alias rule is in address_library.match).
    """
    item = _open_item(conn, review_id, actor)
    if (address_id is None) == (lon is None or lat is None):
        raise InvalidInput("give either address_id or lon and lat", field="address_id")
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
        raise OutOfScope(f"the chosen place lies outside {actor.scope.area_label}")
    return _resolve(conn, item, placement, actor=actor, geocoder=geocoder, at=at)[0]


@dataclass(frozen=True)
class AddedResolution:
    """A review item resolved with a standard address added for it: the flow's result, the new address's row
    (as `address_library.repository.address_by_id` reads it) and the alias the typed text now is (None when the
    typed text is the standard text itself, or the alias is suspended by a conflict).
    """

    result: ProcessResult
    address: dict[str, Any]
    alias: AliasEntry | None


def resolve_with_new_address(
    conn: Connection,
    review_id: int,
    *,
    actor: Actor,
    placement: GridPlacement,
    components: Mapping[str, Any],
    lon: float,
    lat: float,
    geocoder: Geocoder | None,
    at: datetime | None = None,
) -> AddedResolution:
    """A dispatcher adds the item's address to the standard library at a point of their area, and places the
    registration on it: one transaction (the caller's) for the address, its history row, the alias, the entity and
    its tasks, and the item.

    The point must lie in a grid the actor's scope covers (OutOfScope otherwise), the components
    make the standard text (`address_library.drafts`), which obeys every rule of a new address (AddressRejected);
    a text already in the library raises DuplicateAddress naming that address. The caller makes the running
    geocoder find the new address after the commit (`LiveGeocoder.learn_address`).
    """
    item = _open_item(conn, review_id, actor)
    grid_code = placement.place([lon], [lat]).grid_code[0]
    if grid_code is None:
        raise InvalidInput(f"({lon}, {lat}) lies in no grid of Dongguan", field="lon")
    if not actor.scope.covers(conn, "grid", grid_code):
        raise OutOfScope(f"the point ({lon}, {lat}) lies outside {actor.scope.area_label}")
    typed = str((item.payload or {}).get("address") or "")
    added = add_drafted(
        conn, placement, draft_from_components(components), lon=lon, lat=lat, changed_by=actor.name,
        note=f"added for review item {review_id} (typed: {typed[:200]})",
    )  # fmt: skip
    place = Placement(str(added["grid_code"]), str(added["town_code"]), lon, lat, int(added["id"]), added["full_text"])
    result, alias = _resolve(conn, item, place, actor=actor, geocoder=geocoder, at=at, added=True)
    return AddedResolution(result, added, alias)


@dataclass(frozen=True)
class ReviewProposal:
    """A new standard address proposed for a review item, to prefill the dispatcher's form."""

    review_id: int
    address: str = field(metadata={"description": "登记的住所原文"})
    reason: str
    components: dict[str, str | None] = field(metadata={"description": "由原文解析出的地址要素，可修改后提交"})
    town_code: str | None
    community_code: str | None
    level: str | None = field(metadata={"description": "door 门牌 / building 楼栋 / room 房间；无法成为标准地址时为空"})
    full_text: str | None = field(metadata={"description": "按这些要素将得到的标准地址全文"})
    existing: dict[str, Any] | None = field(metadata={"description": "标准地址库已有此全文时的那个地址（应直接选用）"})
    suggested: dict[str, Any] | None = field(
        metadata={"description": "地理编码的粗略落点（道路、村（社区）或镇街），供地图定位"}
    )
    candidates: list[dict[str, Any]]


def propose_address(conn: Connection, review_id: int, *, scope: Scope, geocoder: Geocoder | None) -> ReviewProposal:
    """The parsed components of an item's typed address, the standard text they make, and the geocoder's coarse
    place for it: what the form to add it to the library starts from (NotFound, OutOfScope like a resolution).
    """
    row = conn.execute(
        text("SELECT id, reason, payload, town_code FROM review_queue WHERE id = :id AND kind = 'registration'"),
        {"id": review_id},
    ).first()
    if row is None:
        raise NotFound(f"no review item {review_id}")
    payload = row.payload or {}
    if not scope.handles_review(row.town_code, payload.get("community_code")):
        raise OutOfScope(f"review item {review_id} is outside your area")
    typed = str(payload.get("address") or "")
    answer = None
    if geocoder is not None and typed:
        try:
            answer = geocoder.geocode(typed)
        except AddressLibraryError:
            answer = None
    town = (answer.town_code if answer else None) or row.town_code
    community = (answer.community_code if answer else None) or payload.get("community_code")
    draft = draft_from_typed(typed, town_code=town, community_code=community)
    existing = addresses_by_text(conn, [draft.full_text]).get(draft.full_text) if draft.full_text else None
    suggested = None
    if answer is not None and answer.lon is not None and answer.lat is not None:
        suggested = {"lon": answer.lon, "lat": answer.lat, "level": answer.level, "status": answer.status,
                     "standard_address": answer.standard_address, "grid_code": answer.grid_code}  # fmt: skip
    return ReviewProposal(
        review_id=review_id,
        address=typed,
        reason=row.reason,
        components=draft.components,
        town_code=draft.town_code or town,
        community_code=draft.community_code or community,
        level=draft.level,
        full_text=draft.full_text,
        existing=None
        if existing is None
        else {"address_id": existing["id"], "standard_address": existing["full_text"], "status": existing["status"]},
        suggested=suggested,
        candidates=list(payload.get("candidates") or []),
    )


def _open_item(conn: Connection, review_id: int, actor: Actor) -> Any:
    """The open item, locked, if the actor's scope handles it (NotFound, AlreadyResolved, OutOfScope otherwise)."""
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
    return item


def _resolve(
    conn: Connection,
    item: Any,
    placement: Placement,
    *,
    actor: Actor,
    geocoder: Geocoder | None,
    at: datetime | None,
    added: bool = False,
) -> tuple[ProcessResult, AliasEntry | None]:
    """The flow after a placement: the entity and its tasks, the changes that waited, the alias, the item closed.

    Returns the flow's result and the alias now in use for the typed text (None when none is).
    """
    payload = item.payload
    event = stored_event(conn, payload["event_id"])
    if event is None:
        raise NotFound(f"the event of review item {item.id} is gone")
    result = apply_event(conn, event, placement, actor=actor, at=at)
    waiting = waiting_events(conn, event.uscc) if result.outcome == "placed" else []
    if waiting and geocoder is not None:
        result.followed = process_events(conn, waiting, geocoder, actor=actor, at=at)
    elif waiting:
        # No address index in this process yet: hand the changes back to the outbox, whose relay has one.
        hand_back(conn, [e.event_id for e in waiting])
    alias: AliasEntry | None = None
    teaching: Teaching | None = None
    if placement.address_id is not None:
        normalized = _normalized(event.address)
        # A typed text that normalizes to the standard text itself is found by the exact path: no alias needed.
        if normalized and normalized != placement.standard_address:
            community = conn.execute(
                text("SELECT community_code FROM address WHERE id = :id"), {"id": placement.address_id}
            ).scalar_one()
            teaching = teach_alias(
                conn, normalized_text=normalized, address_id=placement.address_id, raw_text=event.address,
                taught_by=actor.name, community_code=community, review_item_id=int(item.id),
                city=actor.role in _PROMOTING_ROLES,
            )  # fmt: skip
            if teaching.state == "active":
                alias = AliasEntry(teaching.alias_id, normalized, placement.address_id, teaching.scope, community)
            if geocoder is not None:
                if alias is not None:
                    geocoder.learn_alias(alias)
                else:
                    geocoder.forget_alias(teaching.alias_id)
    resolution: dict[str, Any] = {"address_id": placement.address_id, "lon": placement.lon, "lat": placement.lat,
                  "grid_code": placement.grid_code, "task_ids": result.task_ids}  # fmt: skip
    if added:
        resolution["added_address"] = True
    if teaching is not None:
        resolution["alias"] = {"id": teaching.alias_id, "outcome": teaching.outcome, "scope": teaching.scope,
                               "state": teaching.state}  # fmt: skip
    conn.execute(
        text(
            "UPDATE review_queue SET resolved_at = :now, resolved_by = :by, resolution = CAST(:res AS jsonb) "
            "WHERE id = :id"
        ),
        {"now": clock.now(), "id": item.id, "by": actor.name, "res": json.dumps(resolution, ensure_ascii=False)},
    )
    return result, alias


def _normalized(typed: str) -> str | None:
    """The normalized typed text, or None when it is no usable text."""
    try:
        return normalize_with_flags(typed).text or None
    except AddressInputError:
        return None
