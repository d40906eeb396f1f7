"""address_library.new_addresses: checking new standard addresses against the rules and inserting those that pass.

Rules every new address obeys (the same for `maintenance.add_address` and for each row of
`address_import.import_rows`; reason codes):

- ``bad_text``: the text is empty, over-long or holds control or binary characters;
- ``unknown_town``: the normalized text does not parse to one of the towns;
- ``not_an_address``: the text locates no door, building or room (a road, community or town alone, an
  intersection, a relative location, or an address in another city);
- ``bad_level`` / ``level_mismatch``: the level is not door, building or room, or the text describes another level
  (a building needs 栋/座, a room 室/房/楼/铺);
- ``bad_coordinates``: lon/lat missing or not finite numbers; ``outside_city``: the point lies in no grid of the
  active version; ``outside_town`` / ``outside_community``: the point lies outside the town the text names (or the
  community, when a community rather than a road locates the address);
- ``duplicate_text``: the text belongs to another standard address (retired ones included: their text stays
  theirs, so history can be read back), ``duplicate_in_file``: an earlier row of the same file has it;
- ``unknown_parent`` / ``parent_level`` / ``parent_retired`` / ``parent_town``: the parent does not exist, is not one
  level up (door → building → room), is retired, or lies in another town.

The stored full_text is the normalized text (traditional → simplified, Chinese numerals → digits…), so that the
same address written twice is caught as a duplicate and a re-import finds its rows again.

Each inserted address, and each later change to one, gets its row in address_history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from address_library import repository
from address_library.errors import AddressInputError, Rejection
from address_library.gazetteer import Gazetteer
from address_library.normalize import normalize, normalize_with_flags, validate
from address_library.parse import ParsedAddress, parse_normalized
from grids.placement import GridPlacement

LEVELS = ("door", "building", "room")
PARENT_LEVEL = {"door": None, "building": "door", "room": "building"}
# Two points closer than this (degrees, about 1 cm) are the same point: a re-import of a file is a no-op.
SAME_POINT_DEG = 1e-7


@dataclass(frozen=True)
class NewAddress:
    """One address to add, as given (values are checked by the validation, not here)."""

    full_text: Any
    lon: Any
    lat: Any
    level: Any
    parent_id: int | None = None
    parent_full_text: str | None = None
    row: int = 1
    # Set by a file reader when the row itself is broken (too many or too few fields).
    problem: str | None = None


@dataclass
class Plan:
    """What a batch of new addresses comes to: rows to insert, existing rows equal to given ones, rejections."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # to insert, parents before children
    skipped: list[dict[str, Any]] = field(default_factory=list)  # existing rows equal to a given one
    rejections: list[Rejection] = field(default_factory=list)


def plan_additions(
    conn: Connection, placement: GridPlacement, items: Sequence[NewAddress], gazetteer: Gazetteer
) -> Plan:
    """Validate every item against the rules, the database and each other; what to insert and what to skip."""
    plan = Plan()
    prepared: list[dict[str, Any] | None] = []
    points: list[tuple[float, float]] = []
    for item in items:
        prepared.append(_prepare(item, gazetteer, plan.rejections))
        values = prepared[-1]
        points.append((values["lon"], values["lat"]) if values else (math.nan, math.nan))
    places = place_points(placement, [p[0] for p in points], [p[1] for p in points]) if points else []

    # The library may hold a text in its written form (一坊一巷) or normalized (1坊1巷): both are looked up.
    texts = {v["full_text"] for v in prepared if v} | {v["written_text"] for v in prepared if v}
    given_parents = [str(i.parent_full_text).strip() for i in items if present(i.parent_full_text)]
    parent_texts = {_normalized(t) for t in given_parents} | set(given_parents)
    parent_texts.discard("")
    existing = repository.addresses_by_text(conn, sorted(texts | parent_texts))
    parents_by_id = repository.addresses_by_ids(conn, sorted({i.parent_id for i in items if i.parent_id is not None}))
    road_ids = repository.road_ids_by_name(
        conn, sorted({(v["town_code"], v["road_name"]) for v in prepared if v and v["road_name"]})
    )

    first_row: dict[str, int] = {}
    new_by_text: dict[str, dict[str, Any]] = {}
    rank = {level: n for n, level in enumerate(LEVELS)}
    # Doors first, then buildings, then rooms: a parent given by text in the same file is known before its children.
    levels = [rank[v["level"]] if v else 0 for v in prepared]
    order = sorted(range(len(items)), key=lambda i: (levels[i], i))
    for i in order:
        item, values, place = items[i], prepared[i], places[i]
        if values is None:
            continue
        n_before = len(plan.rejections)

        def reject(reason: str, detail: str, *, _item: NewAddress = item, _text: str = values["full_text"]) -> None:
            plan.rejections.append(Rejection(_item.row, _text, reason, detail))

        check_point(place, values["parsed"], reject, town_code=values["town_code"])
        grid, community, _town = place
        values.update(grid_code=grid, community_code=community)
        values["road_id"] = road_ids.get((values["town_code"], values["road_name"])) if values["road_name"] else None
        text_ = values["full_text"]
        if text_ in first_row:
            reject("duplicate_in_file", f"row {first_row[text_]} has the same address")
            continue
        first_row[text_] = item.row
        parent = _resolve_parent(item, values, existing, parents_by_id, new_by_text, reject)
        values["parent"] = parent
        if len(plan.rejections) > n_before:
            continue
        known = existing.get(text_) or existing.get(values["written_text"])
        if known is not None:
            if _equal(known, values, parent):
                plan.skipped.append(known)
                continue
            state = "retired " if known["status"] != "active" else ""
            reject("duplicate_text", f"{state}address {known['id']} already has this text")
            continue
        new_by_text[text_] = values
        plan.rows.append(values)
    plan.rejections.sort(key=lambda r: (r.row, r.reason_code))
    return plan


def _prepare(item: NewAddress, gazetteer: Gazetteer, rejections: list[Rejection]) -> dict[str, Any] | None:
    """Text, level and coordinates of one item checked on their own; its components, or None when unusable."""
    text_ = str(item.full_text) if present(item.full_text) else None
    n_before = len(rejections)

    def reject(reason: str, detail: str) -> None:
        rejections.append(Rejection(item.row, text_, reason, detail))

    if item.problem is not None:
        reject("malformed_row", item.problem)
        return None
    lon, lat = coordinates(item.lon, item.lat, reject)
    level = str(item.level).strip() if present(item.level) else ""
    if level not in LEVELS:
        reject("bad_level", f"level must be door, building or room, not {level or '(empty)'!r}")
    if text_ is None:
        reject("bad_text", "the address text is empty")
        return None
    try:
        validate(text_)
    except AddressInputError as exc:
        reject("bad_text", str(exc))
        return None
    normalized = normalize_with_flags(text_)
    parsed = parse_normalized(normalized, gazetteer)
    if parsed.outside_dongguan:
        reject("not_an_address", "the address lies in another city")
    elif parsed.town_code is None:
        reject("unknown_town", f"{normalized.text or text_!r} names none of the towns of Dongguan")
    elif parsed.intersection or parsed.relative or normalized.relative:
        reject("not_an_address", "an intersection or relative location is not a standard address")
    elif parsed.level not in LEVELS:
        reject("not_an_address", f"the text locates only a {parsed.level or 'nothing'}, not a door, building or room")
    elif level in LEVELS and parsed.level != level:
        reject("level_mismatch", f"the text describes a {parsed.level}, not a {level}")
    if len(rejections) > n_before or lon is None or lat is None:
        return None
    return {
        "full_text": normalized.text,
        "written_text": validate(text_),
        "level": level,
        "lon": lon,
        "lat": lat,
        "parsed": parsed,
        "town_code": parsed.town_code,
        "kind": _kind(parsed),
        "road_name": parsed.road,
        "door_no": parsed.door_no,
        "sub_no": parsed.sub_no,
        "village": parsed.natural_village,
        "lane": parsed.lane,
        "park": parsed.park,
        "compound": parsed.compound,
        "phase": parsed.phase,
        "building": parsed.building,
        "unit": parsed.unit,
        "floor": parsed.floor,
        "room": parsed.room,
        "stall": parsed.stall,
    }


def _resolve_parent(
    item: NewAddress,
    values: dict[str, Any],
    existing: Mapping[str, dict[str, Any]],
    parents_by_id: Mapping[int, dict[str, Any]],
    new_by_text: Mapping[str, dict[str, Any]],
    reject: Any,
) -> dict[str, Any] | None:
    """The parent (an existing row, or a new row of the same file) after checking it; None for none."""
    wanted = PARENT_LEVEL[values["level"]]
    parent: dict[str, Any] | None = None
    if item.parent_id is not None:
        parent = parents_by_id.get(item.parent_id)
        if parent is None:
            reject("unknown_parent", f"no standard address with id {item.parent_id}")
            return None
    elif present(item.parent_full_text):
        written = str(item.parent_full_text).strip()
        key = _normalized(written)
        parent = new_by_text.get(key) or existing.get(key) or existing.get(written)
        if parent is None:
            reject(
                "unknown_parent", f"no standard address {key!r} in the library or among the accepted rows of the file"
            )
            return None
    if parent is None:
        return None
    if parent["level"] != wanted:
        expected = f"a {wanted}" if wanted else "no parent (a door is the top level)"
        reject("parent_level", f"the parent is a {parent['level']}; a {values['level']} takes {expected}")
    if parent.get("status", "active") != "active":
        reject("parent_retired", f"the parent {parent['full_text']} is retired")
    if parent["town_code"] != values["town_code"]:
        reject("parent_town", f"the parent {parent['full_text']} lies in another town")
    return parent


def check_point(
    place: tuple[str | None, str | None, str | None], parsed: ParsedAddress, reject: Any, *, town_code: str | None
) -> None:
    grid, community, town = place
    if grid is None:
        reject("outside_city", "the point lies in no grid of Dongguan")
        return
    if town_code and town != town_code:
        reject("outside_town", f"the point lies in town {town}, not in {parsed.town or town_code} ({town_code})")
    elif parsed.community_code and not parsed.road and community != parsed.community_code:
        reject(
            "outside_community",
            f"the point lies in community {community}, not in {parsed.community} ({parsed.community_code})",
        )


def place_points(
    placement: GridPlacement, lon: Sequence[float], lat: Sequence[float]
) -> list[tuple[str | None, str | None, str | None]]:
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    finite = np.isfinite(lon_a) & np.isfinite(lat_a)
    # Points that are not numbers are already rejected; they are placed at (0, 0), outside every grid.
    placed = placement.place(np.where(finite, lon_a, 0.0), np.where(finite, lat_a, 0.0))
    return [
        (placed.grid_code[i], placed.community_code[i], placed.town_code[i]) if finite[i] else (None, None, None)
        for i in range(len(lon_a))
    ]


def coordinates(lon: Any, lat: Any, reject: Any) -> tuple[float | None, float | None]:
    values: list[float | None] = []
    for name, raw in (("lon", lon), ("lat", lat)):
        try:
            value = float(raw) if present(raw) and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value):
            reject("bad_coordinates", f"{name} must be a number, not {raw!r}")
            value = None
        values.append(value)
    return values[0], values[1]


def _kind(parsed: ParsedAddress) -> str:
    if parsed.stall:
        return "market"
    if parsed.compound:
        return "compound"
    if parsed.park:
        return "industrial"
    if parsed.natural_village and not parsed.road:
        return "village"
    return "road_door"


def _equal(known: Mapping[str, Any], values: Mapping[str, Any], parent: Mapping[str, Any] | None) -> bool:
    """Whether an existing address is the row given again (a re-import): same text, level, point and parent."""
    parent_id = parent.get("id") if parent is not None else None
    return (
        known["status"] == "active"
        and known["level"] == values["level"]
        and same_point(known["lon"], known["lat"], values["lon"], values["lat"])
        and known["parent_id"] == parent_id
    )


def same_point(lon_a: float, lat_a: float, lon_b: float, lat_b: float) -> bool:
    return abs(lon_a - lon_b) <= SAME_POINT_DEG and abs(lat_a - lat_b) <= SAME_POINT_DEG


def _normalized(text_: str) -> str:
    """The normalized text, or the text itself when it cannot be normalized (it then matches nothing)."""
    try:
        return normalize(text_)
    except AddressInputError:
        return text_


def present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(str(value).strip())


def insert_addresses(
    conn: Connection, rows: Iterable[dict[str, Any]], *, action: str, changed_by: str, note: str | None
) -> list[int]:
    """Insert validated rows (parents first, so a row's parent from the same file has its id) with history."""
    ids: list[int] = []
    history: list[dict[str, Any]] = []
    for values in rows:
        parent = values["parent"]
        record = {k: v for k, v in values.items() if k not in ("parsed", "parent", "written_text")}
        record["parent_id"] = parent["id"] if parent is not None else None
        values["id"] = repository.insert_address(conn, record)
        ids.append(values["id"])
        history.append(
            history_row(
                {"id": values["id"]}, action, changed_by, note, new_lon=values["lon"], new_lat=values["lat"],
                old_status=None, new_status="active",
            )
        )  # fmt: skip
    repository.insert_history(conn, history)
    return ids


_KEEP = object()


def history_row(
    current: Mapping[str, Any],
    action: str,
    changed_by: str,
    note: str | None,
    *,
    new_lon: float | None = None,
    new_lat: float | None = None,
    old_status: object = _KEEP,
    new_status: object = _KEEP,
) -> dict[str, Any]:
    """One history row; the old point and status are the current ones, the new ones default to unchanged."""
    old_lon, old_lat = current.get("lon"), current.get("lat")
    status = current.get("status")
    return {
        "address_id": int(current["id"]),
        "action": action,
        "changed_by": changed_by,
        "old_lon": old_lon,
        "old_lat": old_lat,
        "new_lon": new_lon if new_lon is not None else old_lon,
        "new_lat": new_lat if new_lat is not None else old_lat,
        "old_status": status if old_status is _KEEP else old_status,
        "new_status": status if new_status is _KEEP else new_status,
        "note": note,
    }
