"""synthetic.addresses: the standard address library (标准地址库) of the synthetic city, deterministic per seed.

One row per door, building or room, shared out over the communities by population; each row's text is rendered
by synthetic.address_text, its point and its unit's plan come from synthetic.address_sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from address_library.repository import COMPONENT_COLUMNS
from grids.reference import short_community_name
from synthetic.address_sites import (
    Anchors,
    Community,
    Unit,
    cluster,
    door_numbers,
    interior_points,
    plan_units,
    pull_inside,
    road_pieces,
    sample_anchors,
)
from synthetic.address_text import standard_full_text
from synthetic.communities import allocate
from synthetic.names import (
    ROOM_STYLE_WEIGHTS,
    ROOM_STYLES,
    community_stem,
    lane_names,
    pick,
    room_label,
    unique_name,
    village_chain,
)
from synthetic.roads import generate_roads

ADDRESS_COLUMNS = [
    "id", "level", "parent_id", "full_text", "town_code", "community_code", "road_id", "road_name", "door_no",
    "sub_no", "village", "lane", "park", "compound", "phase", "building", "unit", "floor", "room", "stall", "kind",
    "x", "y",
]  # fmt: skip
# The address components below the road, as the library stores them.
COMPONENTS = tuple(c for c in COMPONENT_COLUMNS if c != "road_name")
KINDS = ("road_door", "compound", "market", "industrial", "village")
# Row shares per community kind, in KINDS order. Residents' committees are the built-up cores (compounds,
# shops); village committees are where the 握手楼 lanes and the factory zones are.
KIND_MIX: dict[str, tuple[float, ...]] = {
    "residents_committee": (0.26, 0.50, 0.08, 0.06, 0.10),
    "village_committee": (0.18, 0.14, 0.05, 0.25, 0.38),
    "special": (0.30, 0.30, 0.05, 0.30, 0.05),
    "virtual": (0.30, 0.40, 0.05, 0.20, 0.05),
}
# How tightly a community follows its kind's mix (Dirichlet concentration); lower means more variety.
MIX_CONCENTRATION = 30.0
ROAD_ATTACHED_COMPOUND_P = {"residents_committee": 0.7, "village_committee": 0.4}
ROAD_ATTACHED_MARKET_P = 0.6
SUB_DOOR_P = 0.06


@dataclass(frozen=True)
class AddressLibrary:
    """The road network and the standard addresses built on it (both in the metric CRS)."""

    roads: gpd.GeoDataFrame
    addresses: pd.DataFrame


def generate_library(communities: gpd.GeoDataFrame, seed: int, n_target: int) -> AddressLibrary:
    """Roads then addresses for the given communities; the same seed gives the same library."""
    roads = generate_roads(communities, seed)
    return AddressLibrary(roads=roads, addresses=generate_addresses(communities, roads, seed, n_target))


# --- row accumulation ---------------------------------------------------------------------------------------------


class _Rows:
    """Column lists of the library under construction; row index + 1 becomes the id."""

    def __init__(self) -> None:
        self.level: list[str] = []
        self.parent: list[int] = []
        self.kind: list[str] = []
        self.community: list[int] = []
        self.anchor: list[int] = []
        self.x: list[float] = []
        self.y: list[float] = []
        self.parts: dict[str, list[str | None]] = {c: [] for c in COMPONENTS}

    def __len__(self) -> int:
        return len(self.level)

    def add(
        self,
        xy: np.ndarray,
        *,
        level: str,
        kind: str,
        community: int,
        parent: int = -1,
        anchor: int = -1,
        values: Mapping[str, str | None | list[str | None]] | None = None,
    ) -> int:
        """Append len(xy) rows; scalar values are repeated, list values are taken row by row. Returns the first index."""
        n = len(xy)
        start = len(self.level)
        self.level.extend([level] * n)
        self.kind.extend([kind] * n)
        self.community.extend([community] * n)
        self.parent.extend([parent] * n)
        self.anchor.extend([anchor] * n)
        self.x.extend(xy[:, 0].tolist())
        self.y.extend(xy[:, 1].tolist())
        values = values or {}
        for key, column in self.parts.items():
            value = values.get(key)
            column.extend(value if isinstance(value, list) else [value] * n)
        return start


# --- emission -----------------------------------------------------------------------------------------------------


def _unit_rows(
    ctx: Community, unit: Unit, rows: _Rows, gate: np.ndarray, centre: np.ndarray, angle: float, anchor: int
) -> None:
    """The door, building and room rows of one compound, market or park."""
    rng = ctx.rng
    geom = ctx.geom
    name_key = "park" if unit.kind == "industrial" else "compound"
    door = rows.add(
        gate[None, :], level="door", kind=unit.kind, community=ctx.idx, anchor=anchor, values={name_key: unit.name}
    )
    if not unit.buildings:
        return
    spacing = 40.0 if unit.kind == "industrial" else 28.0
    b_xy = pull_inside(geom, cluster(centre, len(unit.buildings), spacing, angle), gate)
    room_style = pick(rng, ROOM_STYLES, ROOM_STYLE_WEIGHTS)
    units_per_building = int(rng.choice([0, 0, 1, 2, 2, 3, 4])) if unit.kind == "compound" else 0
    stall_style = "档" if rng.random() < 0.7 else "铺"
    for b, xy in zip(unit.buildings, b_xy, strict=True):
        labels: dict[str, str | None | list[str | None]] = {name_key: unit.name, "building": b.label, "phase": b.phase}
        bid = rows.add(
            xy[None, :], level="building", kind=unit.kind, community=ctx.idx, parent=door, anchor=anchor, values=labels
        )
        if b.rooms == 0:
            continue
        r_xy = pull_inside(geom, xy + rng.normal(0.0, 2.0, size=(b.rooms, 2)), xy)
        values = _room_values(rng, unit.kind, b.rooms, room_style, units_per_building, stall_style)
        rows.add(
            r_xy,
            level="room",
            kind=unit.kind,
            community=ctx.idx,
            parent=bid,
            anchor=anchor,
            values={**labels, **values},
        )


def _room_values(
    rng: np.random.Generator, kind: str, n: int, room_style: str, units: int, stall_style: str
) -> dict[str, str | None | list[str | None]]:
    if kind == "industrial":
        if n <= 6:
            floor_labels: list[str | None] = [f"{f}楼" for f in range(1, n + 1)]
            return {"floor": floor_labels}
        floors = int(rng.integers(3, 7))
        return {"room": _pick_rooms(rng, n, 1, floors, max(2, -(-n // floors)), 1, "房")[1]}
    if kind == "market":
        floors = int(rng.integers(1, 4))
        per_floor = -(-n // floors)
        stalls: list[str | None] = [f"{i % per_floor + 1}{stall_style}" for i in range(n)]
        floor_values: list[str | None] = [f"{i // per_floor + 1}楼" for i in range(n)] if floors > 1 else [None] * n
        return {"floor": floor_values, "stall": stalls}
    shops = min(n, int(rng.integers(1, 7))) if rng.random() < 0.25 else 0
    unit_labels, rooms = _pick_rooms(
        rng, n - shops, max(units, 1), int(rng.integers(6, 34)), int(rng.integers(2, 5)), 2 if shops else 1, room_style
    )
    nothing: list[str | None] = [None]
    stall: list[str | None] = [*(f"{i + 1}铺" for i in range(shops)), *(nothing * (n - shops))]
    room: list[str | None] = nothing * shops + rooms
    unit_values: list[str | None] = nothing * shops + (unit_labels if units else nothing * (n - shops))
    return {"stall": stall, "room": room, "unit": unit_values}


def _pick_rooms(
    rng: np.random.Generator, n: int, units: int, floors: int, per_floor: int, first_floor: int, style: str
) -> tuple[list[str | None], list[str | None]]:
    """n distinct (unit, room) labels of a building, in reading order."""
    floors = max(floors, -(-n // (units * per_floor)))
    slots = np.sort(rng.choice(units * floors * per_floor, size=n, replace=False))
    unit_idx, rest = np.divmod(slots, floors * per_floor)
    floor_idx, room_idx = np.divmod(rest, per_floor)
    unit_labels: list[str | None] = [f"{u + 1}单元" for u in unit_idx.tolist()]
    rooms: list[str | None] = [
        room_label(f + first_floor, r + 1, style) for f, r in zip(floor_idx.tolist(), room_idx.tolist(), strict=True)
    ]
    return unit_labels, rooms


def _door_labels(rng: np.random.Generator, count: int) -> tuple[list[str | None], list[str | None]]:
    """count village door rows: numbers 1, 2, 3 … with the odd 12-1, 12-2 sub-door."""
    doors: list[str | None] = []
    subs: list[str | None] = []
    number = 0
    while len(doors) < count:
        number += 1 + int(rng.random() < 0.1)
        doors.append(str(number))
        subs.append(None)
        if rng.random() < SUB_DOOR_P:
            for sub in range(1, min(int(rng.integers(1, 3)), count - len(doors)) + 1):
                doors.append(str(number))
                subs.append(str(sub))
    return doors, subs


def _village_rows(ctx: Community, budget: int, rows: _Rows) -> None:
    """Village chains without a road: natural village / 坊 / 组 / 围, then lane, then door."""
    rng = ctx.rng
    if budget <= 0:
        return
    n_villages = int(np.clip(budget // 220 + 1, 1, 10))
    shares = allocate(budget, rng.dirichlet(np.full(n_villages, 3.0)))
    for vb in shares.tolist():
        if vb <= 0:
            continue
        head, style = village_chain(rng, ctx.stem)
        if head in ctx.village_names:
            head = unique_name(
                ctx.village_names, lambda _a: village_chain(rng, ctx.stem)[0], lambda n: f"{ctx.stem}{n}坊"
            )
            style = "ordinal"
        ctx.village_names.add(head)
        centre = interior_points(ctx.geom, 1, rng)[0]
        angle = float(rng.uniform(0.0, np.pi))
        u = np.array([np.cos(angle), np.sin(angle)])
        v = np.array([-u[1], u[0]])
        sizes: list[int] = []
        while sum(sizes) < vb:
            sizes.append(min(int(rng.integers(5, 36)), vb - sum(sizes)))
        if style == "none":
            sizes = [vb]
        names = lane_names(rng, style, len(sizes))
        for j, (lane, size) in enumerate(zip(names, sizes, strict=True)):
            doors, subs = _door_labels(rng, size)
            i = np.arange(size, dtype=float)
            if style == "none":
                along, across = (i % 12) * 9.0, (i // 12) * 14.0
            else:
                along, across = i * 6.0, np.full(size, (j - len(sizes) / 2) * 18.0) + np.where(i % 2 == 0, 4.0, -4.0)
            xy = centre + np.outer(along - along.mean(), u) + np.outer(across, v) + rng.normal(0.0, 1.5, (size, 2))
            xy = pull_inside(ctx.geom, xy, centre)
            chain: dict[str, str | None | list[str | None]] = {
                "village": head,
                "lane": lane,
                "door_no": doors,
                "sub_no": subs,
            }
            rows.add(xy, level="door", kind="village", community=ctx.idx, values=chain)


def _community_rows(ctx: Community, budget: int, rows: _Rows, anchors: Anchors, road_geoms: np.ndarray) -> None:
    rng = ctx.rng
    if budget <= 0:
        return
    mix = np.asarray(KIND_MIX.get(ctx.kind, KIND_MIX["residents_committee"]))
    b_road, b_compound, b_market, b_park, b_village = allocate(budget, rng.dirichlet(mix * MIX_CONCENTRATION)).tolist()
    has_roads = len(ctx.part_geoms) > 0
    if not has_roads:
        b_village += b_road
        b_road = 0

    compounds = plan_units(ctx, b_compound, "compound")
    markets = plan_units(ctx, b_market, "market")
    parks = plan_units(ctx, b_park, "industrial")
    road_doors: list[int] = []  # sub-door count of every numbered road door
    while sum(road_doors) + len(road_doors) < b_road:
        left = b_road - sum(road_doors) - len(road_doors) - 1
        road_doors.append(min(int(rng.integers(1, 4)), left) if rng.random() < SUB_DOOR_P else 0)
    p_compound = ROAD_ATTACHED_COMPOUND_P.get(ctx.kind, 0.5)
    for unit in compounds:
        unit.on_road = has_roads and rng.random() < p_compound
    for unit in markets:
        unit.on_road = has_roads and rng.random() < ROAD_ATTACHED_MARKET_P
    on_road = [u for u in compounds + markets if u.on_road]
    placed = sample_anchors(ctx, len(on_road) + len(road_doors), road_geoms, anchors)
    # Compounds and markets take the first anchors; doors that found no place go to the village lanes instead.
    for unit in on_road[len(placed.ids) :]:
        unit.on_road = False
    door_slots = range(len(on_road), len(placed.ids))
    dropped = road_doors[len(door_slots) :]
    b_village += sum(dropped) + len(dropped)

    for slot, subs in zip(door_slots, road_doors, strict=False):
        xy = placed.xy[slot] + np.outer(np.arange(subs + 1) * 3.0, placed.tangent[slot])
        xy = pull_inside(ctx.geom, xy, placed.xy[slot])
        sub_no: list[str | None] = [None, *[str(k) for k in range(1, subs + 1)]]
        rows.add(
            xy, level="door", kind="road_door", community=ctx.idx, anchor=placed.ids[slot], values={"sub_no": sub_no}
        )

    slot = 0
    for unit in compounds + markets + parks:
        if unit.on_road:
            gate = placed.xy[slot]
            outward = placed.outward[slot]
            centre = gate + outward * rng.uniform(40.0, 120.0)
            angle = float(np.arctan2(placed.tangent[slot][1], placed.tangent[slot][0]))
            anchor = placed.ids[slot]
            slot += 1
        else:
            gate = interior_points(ctx.geom, 1, rng)[0]
            direction = rng.uniform(0.0, 2 * np.pi)
            centre = gate + rng.uniform(20.0, 60.0) * np.array([np.cos(direction), np.sin(direction)])
            angle = float(rng.uniform(0.0, np.pi))
            anchor = -1
        _unit_rows(ctx, unit, rows, gate, pull_inside(ctx.geom, centre[None, :], gate)[0], angle, anchor)

    _village_rows(ctx, b_village, rows)


def generate_addresses(
    communities: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, seed: int, n_target: int
) -> pd.DataFrame:
    """The standard address library: exactly ADDRESS_COLUMNS, ids 1..N, rows shared out by community population.

    Residents' committees get more compounds and shops, village committees more village lanes and industrial
    parks. Every point lies strictly inside its community polygon; rooms sit around their building, buildings
    around their door. The same inputs and seed give an identical frame.
    """
    comms = communities.sort_values("code").reset_index(drop=True)
    shorts = (
        comms["short_name"].astype(str).tolist()
        if "short_name" in comms.columns
        else [short_community_name(str(name)) for name in comms["name"]]
    )
    road_geoms = roads.geometry.to_numpy()
    road_names = roads["name"].astype(str).tolist()
    pieces = (
        road_pieces(comms, roads)
        if len(roads)
        else [(np.empty(0, dtype=object), np.empty(0, dtype=np.int64))] * len(comms)
    )
    budgets = allocate(n_target, comms["population"].to_numpy(dtype=float) + 1.0)
    rows = _Rows()
    anchors = Anchors()
    town_names: dict[str, set[str]] = {}
    for idx, comm in enumerate(comms.itertuples(index=False)):
        geom = comm.geometry
        shapely.prepare(geom)
        ctx = Community(
            idx=idx,
            stem=community_stem(shorts[idx]),
            kind=str(comm.kind),
            geom=geom,
            rng=np.random.default_rng([seed, 0xADD, idx]),
            part_geoms=pieces[idx][0],
            part_roads=pieces[idx][1],
            town_names=town_names.setdefault(str(comm.town_code), set()),
        )
        _community_rows(ctx, int(budgets[idx]), rows, anchors, road_geoms)
    return _frame(rows, anchors, comms, shorts, road_names, roads["id"].to_numpy(), seed)


def _frame(
    rows: _Rows,
    anchors: Anchors,
    comms: gpd.GeoDataFrame,
    shorts: list[str],
    road_names: list[str],
    road_ids: np.ndarray,
    seed: int,
) -> pd.DataFrame:
    numbers = door_numbers(anchors, seed)
    anchor = np.asarray(rows.anchor, dtype=np.int64)
    anchor_road = np.asarray(anchors.road, dtype=np.int64)
    has_road = anchor >= 0
    road_idx = np.where(has_road, anchor_road[np.where(has_road, anchor, 0)] if len(anchor_road) else -1, -1)
    door_no = rows.parts["door_no"]
    for i in np.flatnonzero(has_road).tolist():
        door_no[i] = str(numbers[anchor[i]])
    community = np.asarray(rows.community, dtype=np.int64)
    town_names = comms["town_name"].astype(str).to_numpy()[community]
    community_names = np.asarray(shorts, dtype=object)[community]
    row_road_names: list[str | None] = [road_names[r] if r >= 0 else None for r in road_idx.tolist()]
    part_columns = list(rows.parts.values())
    keys = list(rows.parts.keys())
    full_text = [
        standard_full_text(town, comm, road, dict(zip(keys, values, strict=True)))
        for town, comm, road, *values in zip(town_names, community_names, row_road_names, *part_columns, strict=True)
    ]
    parent = np.asarray(rows.parent, dtype=np.int64)
    keep = _drop_duplicates(full_text, parent)
    frame = pd.DataFrame(
        {
            "level": rows.level,
            "full_text": full_text,
            "town_code": comms["town_code"].astype(str).to_numpy()[community],
            "community_code": comms["code"].astype(str).to_numpy()[community],
            "road_id": pd.array(np.where(road_idx >= 0, road_ids[np.maximum(road_idx, 0)], 0), dtype="Int64"),
            # Optional components stay object columns holding None, not pandas' str dtype with NaN.
            "road_name": pd.Series(row_road_names, dtype=object),
            **{key: pd.Series(values, dtype=object) for key, values in rows.parts.items()},
            "kind": rows.kind,
            "x": np.asarray(rows.x, dtype=float),
            "y": np.asarray(rows.y, dtype=float),
        }
    )
    frame.loc[road_idx < 0, "road_id"] = pd.NA
    new_index = np.cumsum(keep) - 1
    parent_new = np.where(parent >= 0, new_index[np.maximum(parent, 0)] + 1, 0)
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    frame.insert(2, "parent_id", pd.Series(parent_new, dtype="Int64"))
    frame.loc[parent < 0, "parent_id"] = pd.NA
    frame = frame.loc[keep].reset_index(drop=True)
    frame["id"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return frame[ADDRESS_COLUMNS]


def _drop_duplicates(full_text: list[str], parent: np.ndarray) -> np.ndarray:
    """Rows to keep: the first of any repeated text, and never a row whose parent was dropped."""
    keep = ~pd.Series(full_text).duplicated(keep="first").to_numpy()
    if keep.all():
        return keep
    for i in range(len(keep)):
        if keep[i] and parent[i] >= 0 and not keep[parent[i]]:
            keep[i] = False
    return keep
