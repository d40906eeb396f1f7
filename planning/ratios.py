"""planning.ratios: the sampling ratio of every item × credit class, from the rules file, the city and the request.

Precedence, first found wins: the request's ratio for the item and class, the request's ratio for the class, the
city's setting for the item (`inspection_ratio_setting`), the city's setting for every item (item code '*'), the
rules file's default (`planning/data/inspection_rules.toml`). Every ratio is checked the same way wherever it comes
from: inside (0, 1], at most 5 decimal places (the column is NUMERIC(6,5)), not below the class floor (no class is
exempt), not above the class cap on a general item (key items are never capped). Decimal only: the draw takes
n = ⌈ratio × size⌉ exactly.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gis import clock
from planning.errors import InvalidPlan
from planning.models import inspection_item, inspection_ratio_setting

CLASSES: tuple[str, ...] = ("A", "B", "C", "D")
EVERY_ITEM = "*"
MAX_PLACES = 5
RULES_PATH = Path(__file__).resolve().parent / "data" / "inspection_rules.toml"


@dataclass(frozen=True)
class RatioRules:
    """The ratios of the rules file: its version, the default, the floor and the general-item cap of every class."""

    version: str
    default: Mapping[str, Decimal]
    floor: Mapping[str, Decimal]
    general_cap: Mapping[str, Decimal]


@dataclass(frozen=True)
class ItemRef:
    """An inspection item as the ratios see it: its code and whether it is a key item (重点检查事项, uncapped)."""

    code: str
    key: bool


@dataclass(frozen=True)
class RatioSetting:
    """One of the city's own ratios (item code or '*' for every item), with who set it, why and when."""

    item_code: str
    credit_class: str
    ratio: Decimal
    source: str
    set_by: str
    set_at: datetime


def _class_table(raw: Mapping[str, Any], name: str) -> dict[str, Decimal]:
    """One per-class table of the file, every class present and written as an exact decimal string."""
    table = raw.get(name)
    if not isinstance(table, Mapping):
        raise ValueError(f"inspection_rules.toml: [ratios.{name}] is missing")
    out: dict[str, Decimal] = {}
    for cls in CLASSES:
        value = table.get(cls)
        if not isinstance(value, str):
            raise ValueError(f"inspection_rules.toml: [ratios.{name}] {cls} must be a decimal string")
        out[cls] = Decimal(value)
    return out


def load_rules(path: Path | None = None) -> RatioRules:
    """The ratio rules of the packaged file (or of `path`), checked: floor ≤ default ≤ cap, all inside (0, 1]."""
    raw = tomllib.loads((path or RULES_PATH).read_text(encoding="utf-8"))
    ratios = raw.get("ratios")
    if not isinstance(ratios, Mapping):
        raise ValueError("inspection_rules.toml: [ratios] is missing")
    rules = RatioRules(
        version=str(raw["version"]),
        default=_class_table(ratios, "default"),
        floor=_class_table(ratios, "floor"),
        general_cap=_class_table(ratios, "general_cap"),
    )
    for cls in CLASSES:
        if not (0 < rules.floor[cls] <= rules.default[cls] <= rules.general_cap[cls] <= 1):
            raise ValueError(f"inspection_rules.toml: class {cls} needs 0 < floor ≤ default ≤ general_cap ≤ 1")
    return rules


def _item_label(item_code: str) -> str:
    """How an error names the item ('*' is every item)."""
    return "全部事项" if item_code == EVERY_ITEM else f"事项 {item_code}"


def as_ratio(value: object, *, item_code: str, credit_class: str) -> Decimal:
    """A ratio given as Decimal, int, str or float, as an exact Decimal (a float by its shortest repr: 0.07 → 0.07)."""
    if isinstance(value, bool):
        raise InvalidPlan(f"{_item_label(item_code)}的 {credit_class} 类抽查比例须为数字", reason="ratio_out_of_range")
    try:
        ratio = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidPlan(
            f"{_item_label(item_code)}的 {credit_class} 类抽查比例 {value!r} 不是数字", reason="ratio_out_of_range"
        ) from None
    if not ratio.is_finite():
        raise InvalidPlan(
            f"{_item_label(item_code)}的 {credit_class} 类抽查比例须为有限数字", reason="ratio_out_of_range"
        )
    return ratio


def check_ratio(ratio: Decimal, *, item_code: str, credit_class: str, key: bool, rules: RatioRules) -> Decimal:
    """The ratio, normalised, if the rules allow it for this item and class; else InvalidPlan naming both."""
    if credit_class not in CLASSES:
        raise InvalidPlan(f"未知信用类别 {credit_class!r}（应为 A、B、C、D 之一）", reason="unknown_credit_class")
    label = _item_label(item_code)
    if not (0 < ratio <= 1):
        raise InvalidPlan(
            f"{label}的 {credit_class} 类抽查比例 {ratio} 须大于 0 且不超过 1", reason="ratio_out_of_range"
        )
    normal = ratio.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise InvalidPlan(
            f"{label}的 {credit_class} 类抽查比例 {ratio} 最多保留 {MAX_PLACES} 位小数", reason="ratio_out_of_range"
        )
    floor = rules.floor[credit_class]
    if normal < floor:
        raise InvalidPlan(
            f"{label}的 {credit_class} 类抽查比例 {ratio} 低于该类下限 {floor}（任何类别都不免于抽查）",
            reason="ratio_below_floor",
        )
    cap = rules.general_cap[credit_class]
    if not key and normal > cap:
        raise InvalidPlan(
            f"{label}的 {credit_class} 类抽查比例 {ratio} 超过一般检查事项上限 {cap}（重点检查事项不设上限）",
            reason="ratio_above_cap",
        )
    return normal


def resolve_ratios(
    items: Sequence[ItemRef],
    rules: RatioRules,
    settings: Mapping[tuple[str, str], Decimal],
    *,
    by_class: Mapping[str, object] | None = None,
    by_item: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[tuple[str, str], Decimal]:
    """Pure precedence and checks: the ratio of every (item_code, class) from the request, settings and rules."""
    by_class = by_class or {}
    by_item = by_item or {}
    codes = {item.code for item in items}
    for cls in by_class:
        if cls not in CLASSES:
            raise InvalidPlan(f"未知信用类别 {cls!r}（应为 A、B、C、D 之一）", reason="unknown_credit_class")
    for code, classes in by_item.items():
        if code not in codes:
            raise InvalidPlan(f"按事项设置的比例指向本计划之外的事项 {code}", reason="unknown_item")
        for cls in classes:
            if cls not in CLASSES:
                raise InvalidPlan(f"事项 {code} 的未知信用类别 {cls!r}", reason="unknown_credit_class")
    out: dict[tuple[str, str], Decimal] = {}
    for item in items:
        for cls in CLASSES:
            raw: object
            if cls in by_item.get(item.code, {}):
                raw = by_item[item.code][cls]
            elif cls in by_class:
                raw = by_class[cls]
            elif (item.code, cls) in settings:
                raw = settings[(item.code, cls)]
            elif (EVERY_ITEM, cls) in settings:
                raw = settings[(EVERY_ITEM, cls)]
            else:
                raw = rules.default[cls]
            ratio = as_ratio(raw, item_code=item.code, credit_class=cls)
            out[(item.code, cls)] = check_ratio(ratio, item_code=item.code, credit_class=cls, key=item.key, rules=rules)
    return out


def ratio_settings(conn: Connection) -> list[RatioSetting]:
    """The city's own ratios, '*' first, then by item and class."""
    rows = conn.execute(
        select(
            inspection_ratio_setting.c.item_code,
            inspection_ratio_setting.c.credit_class,
            inspection_ratio_setting.c.ratio,
            inspection_ratio_setting.c.source,
            inspection_ratio_setting.c.set_by,
            inspection_ratio_setting.c.set_at,
        ).order_by(
            (inspection_ratio_setting.c.item_code != EVERY_ITEM),
            inspection_ratio_setting.c.item_code,
            inspection_ratio_setting.c.credit_class,
        )
    ).all()
    return [RatioSetting(str(r[0]), str(r[1]), Decimal(r[2]).normalize(), str(r[3]), str(r[4]), r[5]) for r in rows]


def effective_ratios(
    conn: Connection,
    items: Sequence[ItemRef],
    *,
    by_class: Mapping[str, Decimal] | None = None,
    by_item: Mapping[str, Mapping[str, Decimal]] | None = None,
) -> dict[tuple[str, str], Decimal]:
    """The ratio of every (item_code, class) for a plan on these items: request > city settings > rules file."""
    settings = {(s.item_code, s.credit_class): s.ratio for s in ratio_settings(conn)}
    return resolve_ratios(items, load_rules(), settings, by_class=by_class, by_item=by_item)


def _item_key(conn: Connection, item_code: str) -> bool:
    """Whether a known item is a key item ('*' counts as general: it reaches every general item); unknown: refused."""
    if item_code == EVERY_ITEM:
        return False
    key = conn.execute(select(inspection_item.c.key).where(inspection_item.c.code == item_code)).scalar_one_or_none()
    if key is None:
        raise InvalidPlan(f"未知检查事项 {item_code}", reason="unknown_item")
    return bool(key)


def set_ratio(conn: Connection, *, item_code: str, credit_class: str, ratio: Decimal, source: str, actor: str) -> None:
    """Set the city's ratio of one class for one item ('*': every item), checked like a plan's; `source` says why."""
    if not source.strip():
        raise InvalidPlan("请写明比例的依据（如年度抽查工作计划的文号）", reason="source_required")
    key = _item_key(conn, item_code)
    checked = check_ratio(
        as_ratio(ratio, item_code=item_code, credit_class=credit_class),
        item_code=item_code,
        credit_class=credit_class,
        key=key,
        rules=load_rules(),
    )
    stmt = pg_insert(inspection_ratio_setting).values(
        item_code=item_code,
        credit_class=credit_class,
        ratio=checked,
        source=source.strip(),
        set_by=actor,
        set_at=clock.now(),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[inspection_ratio_setting.c.item_code, inspection_ratio_setting.c.credit_class],
            set_={
                "ratio": stmt.excluded.ratio,
                "source": stmt.excluded.source,
                "set_by": stmt.excluded.set_by,
                "set_at": stmt.excluded.set_at,
            },
        )
    )


def clear_ratio(conn: Connection, item_code: str, credit_class: str) -> bool:
    """Remove the city's ratio of one class for one item ('*': the every-item one); whether there was one."""
    result = conn.execute(
        inspection_ratio_setting.delete().where(
            inspection_ratio_setting.c.item_code == item_code, inspection_ratio_setting.c.credit_class == credit_class
        )
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class RatioOverview:
    """What a planner sees of the ratios: the file's rules, the city's settings, and the ratio of every class that
    applies to an item without its own setting (the city's '*' setting, else the file's default)."""

    rules: RatioRules
    settings: list[RatioSetting]
    effective: dict[str, Decimal]


def ratio_overview(conn: Connection) -> RatioOverview:
    """The rules, the city's settings and the effective per-class ratio of items without a setting of their own."""
    rules = load_rules()
    settings = ratio_settings(conn)
    city = {s.credit_class: s.ratio for s in settings if s.item_code == EVERY_ITEM}
    return RatioOverview(rules, settings, {cls: city.get(cls, rules.default[cls]) for cls in CLASSES})
