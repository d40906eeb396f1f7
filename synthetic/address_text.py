"""synthetic.address_text: the standard text (full_text) of a synthetic address, from its components.

The standard text never carries 广东省/东莞市 and always starts with the full town name. It names the community only
when no road and door number locate the address:

    road door    {town}{road}{door}号 / {town}{road}{door}-{sub}号               长安镇长青路12号, 长安镇长青路12-1号
    village      {town}{community}{village}[{lane}]{door}号                        长安镇乌沙社区北坊三巷12号
    industrial   {town}{community}{park}[{building}[{floor} | {room}]]             虎门镇某某社区第二工业区B栋3楼
    compound     {town}({road}{door}号 | {community}){compound}[{phase}]{building}[{unit}]{room | stall}
                 南城街道某某路88号某某花园二期3栋2单元302室
    market       {town}({road}{door}号 | {community}){market}{building}[{floor}]{stall}

Components are joined in the order village, park, road, lane, door, compound, phase, building, unit, floor, room,
stall, the order synthetic.noise renders them in; every non-empty component appears in full_text.
"""

from __future__ import annotations


def standard_door(door_no: str, sub_no: str | None) -> str:
    """The standard door text: 12号, or 12-1号 for 12号之一."""
    return f"{door_no}-{sub_no}号" if sub_no else f"{door_no}号"


def standard_full_text(
    town_name: str, community_name: str | None, road_name: str | None, parts: dict[str, str | None]
) -> str:
    """The standard address text from its components (community only when the address has no road)."""
    out = [town_name]
    if community_name and not road_name:
        out.append(community_name)
    out.extend(str(parts[key]) for key in ("village", "park") if parts.get(key))
    if road_name:
        out.append(road_name)
    if parts.get("lane"):
        out.append(str(parts["lane"]))
    door = parts.get("door_no")
    if door:
        out.append(standard_door(door, parts.get("sub_no")))
    out.extend(
        str(parts[key]) for key in ("compound", "phase", "building", "unit", "floor", "room", "stall") if parts.get(key)
    )
    return "".join(out)
