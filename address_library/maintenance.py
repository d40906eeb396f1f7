"""address_library.maintenance: single changes to the standard address library — add, retire, move — each kept in
address_history, and an address read back with its history.

Retiring an address retires its active descendants too (the buildings of a demolished door, the rooms of a building):
a standard room under a retired building would be answered by the geocoder with a point that no longer exists. Each
descendant gets its own history row. Rows are never deleted. Moving an address moves the descendants that share its
point (rooms are stored at their building's point); descendants with their own point stay where they are.

A new address obeys the rules of address_library.new_addresses; a file of them is imported by
address_library.address_import.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from address_library import repository
from address_library.drafts import Draft, standard_text
from address_library.errors import AddressNotFound, AddressRejected, AddressStateError, DuplicateAddress, Rejection
from address_library.gazetteer import Gazetteer, default_gazetteer
from address_library.new_addresses import (
    PARENT_LEVEL,
    NewAddress,
    check_point,
    coordinates,
    history_row,
    insert_addresses,
    place_points,
    plan_additions,
    same_point,
)
from address_library.normalize import normalize_with_flags
from address_library.parse import parse_normalized
from grids.placement import GridPlacement

# ------------------------------------------------------------------------------------------------------ add


def add_address(
    conn: Connection,
    placement: GridPlacement,
    *,
    full_text: str,
    lon: float,
    lat: float,
    level: str,
    parent_id: int | None = None,
    changed_by: str,
    note: str | None = None,
    gazetteer: Gazetteer | None = None,
) -> int:
    """Validate and add one standard address; its id (AddressRejected listing every problem otherwise)."""
    item = NewAddress(full_text=full_text, lon=lon, lat=lat, level=level, parent_id=parent_id)
    repository.lock_for_changes(conn)
    plan = plan_additions(conn, placement, [item], gazetteer or default_gazetteer())
    if plan.rejections:
        raise AddressRejected(plan.rejections)
    if plan.skipped:
        existing = plan.skipped[0]
        raise AddressRejected(
            [Rejection(1, existing["full_text"], "duplicate_text", f"address {existing['id']} already has this text")]
        )
    ids = insert_addresses(conn, plan.rows, action="add", changed_by=changed_by, note=note)
    return ids[0]


def add_drafted(
    conn: Connection,
    placement: GridPlacement,
    draft: Draft,
    *,
    lon: float,
    lat: float,
    changed_by: str,
    note: str | None = None,
    gazetteer: Gazetteer | None = None,
) -> dict[str, Any]:
    """Add a drafted address at (lon, lat) under the parent its text implies (when the library holds it); the new
    row as `repository.address_by_id` reads it.

    DuplicateAddress when its standard text is already in the library (any status): the caller is pointed at that
    address instead; AddressRejected for everything else the rules refuse.
    """
    if draft.full_text is None or draft.level is None:
        detail = "the components name no town, or no door, building or room"
        raise AddressRejected([Rejection(1, draft.full_text, "not_an_address", detail)])
    repository.lock_for_changes(conn)
    # The library may hold the text as written (一坊一巷) or normalized (1坊1巷): both are looked up.
    written = standard_text(draft.components)
    texts = repository.addresses_by_text(conn, sorted({draft.full_text, written}))
    known = texts.get(draft.full_text) or texts.get(written)
    if known is not None:
        raise DuplicateAddress(int(known["id"]), str(known["full_text"]), str(known["status"]))
    parent = (
        repository.addresses_by_text(conn, [draft.parent_text]).get(draft.parent_text) if draft.parent_text else None
    )
    # Only a parent that fits (active, one level up, same town) is linked; anything else leaves the address alone.
    fits = parent is not None and (
        parent["status"] == "active"
        and parent["level"] == PARENT_LEVEL[draft.level]
        and parent["town_code"] == draft.town_code
    )
    parent_id = int(parent["id"]) if parent is not None and fits else None
    new_id = add_address(
        conn, placement, full_text=draft.full_text, lon=lon, lat=lat, level=draft.level, parent_id=parent_id,
        changed_by=changed_by, note=note, gazetteer=gazetteer,
    )  # fmt: skip
    added = repository.address_by_id(conn, new_id)
    assert added is not None
    return added


# ------------------------------------------------------------------------------------------------------ retire


def retire_address(conn: Connection, address_id: int, *, changed_by: str, note: str | None = None) -> list[int]:
    """Retire an address and its active descendants (kept, status 'retired'); the ids retired, itself first."""
    repository.lock_for_changes(conn)
    current = _active(conn, address_id, "retire")
    descendants = repository.active_descendants(conn, address_id)
    ids = [address_id, *(int(d["id"]) for d in descendants)]
    repository.set_status(conn, ids, "retired")
    history = [history_row(current, "retire", changed_by, note, new_status="retired")]
    history += [
        history_row(
            d, "retire", changed_by, f"retired with {current['full_text']} ({address_id})", new_status="retired"
        )
        for d in descendants
    ]
    repository.insert_history(conn, history)
    return ids


# ------------------------------------------------------------------------------------------------------ move


def move_address(
    conn: Connection,
    placement: GridPlacement,
    address_id: int,
    *,
    lon: float,
    lat: float,
    changed_by: str,
    note: str | None = None,
    gazetteer: Gazetteer | None = None,
) -> list[int]:
    """Move an address (and the descendants sharing its point) to (lon, lat), re-placed in its grid; ids moved."""
    repository.lock_for_changes(conn)
    current = _active(conn, address_id, "move")
    text_ = str(current["full_text"])
    problems: list[Rejection] = []

    def reject(reason: str, detail: str) -> None:
        problems.append(Rejection(1, text_, reason, detail))

    lon_f, lat_f = coordinates(lon, lat, reject)
    if lon_f is None or lat_f is None:
        raise AddressRejected(problems)
    parsed = parse_normalized(normalize_with_flags(text_), gazetteer or default_gazetteer())
    place = place_points(placement, [lon_f], [lat_f])[0]
    check_point(place, parsed, reject, town_code=str(current["town_code"]))
    if problems:
        raise AddressRejected(problems)
    grid, community, town = place
    assert grid is not None and community is not None and town is not None
    sharing = [
        d
        for d in repository.active_descendants(conn, address_id)
        if same_point(d["lon"], d["lat"], current["lon"], current["lat"])
    ]
    ids = [address_id, *(int(d["id"]) for d in sharing)]
    repository.set_point(conn, ids, lon=lon_f, lat=lat_f, grid_code=grid, community_code=community, town_code=town)
    history = [history_row(current, "move", changed_by, note, new_lon=lon_f, new_lat=lat_f)]
    history += [
        history_row(d, "move", changed_by, f"moved with {text_} ({address_id})", new_lon=lon_f, new_lat=lat_f)
        for d in sharing
    ]
    repository.insert_history(conn, history)
    return ids


def address_with_history(conn: Connection, address_id: int) -> dict[str, Any]:
    """One address (any status) with its history, oldest change first; AddressNotFound otherwise."""
    current = repository.address_by_id(conn, address_id)
    if current is None:
        raise AddressNotFound(f"no standard address with id {address_id}")
    return {**current, "history": repository.history_of(conn, address_id)}


def _active(conn: Connection, address_id: int, verb: str) -> dict[str, Any]:
    current = repository.address_by_id(conn, address_id)
    if current is None:
        raise AddressNotFound(f"no standard address with id {address_id}")
    if current["status"] != "active":
        raise AddressStateError(f"address {address_id} is {current['status']}; only an active address can {verb}")
    return current
