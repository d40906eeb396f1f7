"""synthetic.noise: render a standard address the way people type it (missing levels, typos, 繁體, 全角, notes)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

CITY = "东莞市"
# One address-library row as a mapping (DataFrame.to_dict("records") gives Hashable keys, hence Any).
AddressRow = Mapping[Any, Any]

# Every noise type, in the order the renderer considers them. Probabilities are per address and were tuned so
# that about 30% of addresses stay clean, while the frequent habits of real writers (adding 东莞市 or
# 广东省东莞市, the short town name, the community on a road address, building written as 座/号楼) dominate over
# rarer ones (繁體, typos). The standard text carries no city, so an address typed without one is not noise.
NOISE_TYPES = (
    "prefix_added",
    "repeated_prefix",
    "town_short",
    "town_old_form",
    "missing_town",
    "community_added",
    "missing_community",
    "community_short",
    "reordered",
    "typo",
    "building_form",
    "sub_number_form",
    "chinese_numerals",
    "fullwidth_digits",
    "extra_spaces",
    "bracket_note",
    "traditional",
)

# The four subdistricts were districts (区) until 2017-ish in people's minds and in old records.
OLD_TOWN_FORMS = {"东城街道": "东城区", "南城街道": "南城区", "万江街道": "万江区", "莞城街道": "莞城区"}

# Homophone and near-character slips for every town, as produced by pinyin input methods and by ear.
TOWN_TYPOS: dict[str, tuple[str, ...]] = {
    "东城": ("冬城", "东诚"),
    "南城": ("南成", "楠城"),
    "万江": ("万疆", "湾江"),
    "莞城": ("管城", "完城"),
    "石碣": ("石竭", "石节", "石结"),
    "石龙": ("石隆", "石笼"),
    "茶山": ("查山", "茶杉"),
    "石排": ("石牌", "石派"),
    "企石": ("企实", "起石"),
    "横沥": ("横历", "恒沥", "横立"),
    "桥头": ("乔头", "侨头"),
    "谢岗": ("谢港", "泻岗"),
    "东坑": ("东吭", "冬坑"),
    "常平": ("长平", "常坪"),
    "寮步": ("廖步", "辽步", "聊步"),
    "樟木头": ("章木头", "漳木头"),
    "大朗": ("大郎", "大浪", "大老"),
    "黄江": ("皇江", "黄将"),
    "清溪": ("青溪", "清西"),
    "塘厦": ("塘下", "唐厦"),
    "凤岗": ("凤冈", "风岗"),
    "大岭山": ("大领山", "大岭三"),
    "长安": ("常安", "长按"),
    "虎门": ("虎们", "湖门"),
    "厚街": ("后街", "候街"),
    "沙田": ("砂田", "沙填"),
    "道滘": ("道教", "道窖"),
    "洪梅": ("红梅", "洪眉"),
    "麻涌": ("麻冲", "马涌"),
    "望牛墩": ("旺牛墩", "望牛敦"),
    "中堂": ("钟堂", "中塘"),
    "高埗": ("高步", "高埠"),
    "松山湖": ("松山胡", "宋山湖"),
}

# Character slips inside community, village and road names (same sound, different character).
CHAR_TYPOS: dict[str, tuple[str, ...]] = {
    "村": ("存",),
    "围": ("为", "维"),
    "巷": ("项", "向"),
    "塘": ("唐", "糖"),
    "岭": ("领",),
    "厦": ("下",),
    "沥": ("历",),
    "园": ("元", "圆"),
    "苑": ("院",),
    "埔": ("浦",),
    "洲": ("州",),
    "滘": ("教",),
    "墩": ("敦",),
    "岗": ("港", "冈"),
    "湖": ("胡",),
    "屋": ("乌",),
    "龙": ("隆",),
    "桥": ("乔",),
    "新": ("心", "欣"),
    "江": ("疆",),
    "涌": ("冲",),
    "坑": ("吭",),
    "步": ("布",),
    "兴": ("星",),
    "华": ("化",),
    "富": ("付",),
    "街": ("接",),
    "道": ("到",),
}

_CN_DIGITS = "零一二三四五六七八九"
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_NUMBER = re.compile(r"\d+")
_BARE = re.compile(r"[0-9A-Za-z\-]+")
_BUILDING = re.compile(r"第?([0-9]+|[A-Za-z]+[0-9]*)(?:号楼|栋|座|幢|#)")

# How a bare component value is completed into text; values that already carry a suffix are kept as they are.
_SUFFIX = {
    "door_no": "号",
    "lane": "巷",
    "phase": "期",
    "building": "栋",
    "unit": "单元",
    "floor": "楼",
    "room": "室",
    "stall": "档",
}
_BODY_FIELDS = (
    "village",
    "park",
    "road_name",
    "lane",
    "door_no",
    "compound",
    "phase",
    "building",
    "unit",
    "floor",
    "room",
    "stall",
)
_NUMERAL_ROLES = frozenset({"door_no", "lane", "phase", "building", "unit", "floor"})


def chinese_number(value: int) -> str:
    """Write 0..9999 the way people write house numbers in words: 12 → 十二, 105 → 一百零五."""
    if value < 10:
        return _CN_DIGITS[value]
    if value < 20:
        return "十" + (_CN_DIGITS[value % 10] if value % 10 else "")
    if value < 100:
        return _CN_DIGITS[value // 10] + "十" + (_CN_DIGITS[value % 10] if value % 10 else "")
    if value < 1000:
        rest = value % 100
        tail = "" if rest == 0 else ("零" + _CN_DIGITS[rest] if rest < 10 else _tens(rest))
        return _CN_DIGITS[value // 100] + "百" + tail
    if value < 10000:
        rest = value % 1000
        tail = "" if rest == 0 else ("零" + chinese_number(rest) if rest < 100 else chinese_number(rest))
        return _CN_DIGITS[value // 1000] + "千" + tail
    return str(value)


def _tens(value: int) -> str:
    # Inside a larger number 十 keeps its leading 一: 115 → 一百一十五.
    return _CN_DIGITS[value // 10] + "十" + (_CN_DIGITS[value % 10] if value % 10 else "")


@lru_cache(maxsize=1)
def _s2t() -> Callable[[str], str]:
    import opencc

    converter = opencc.OpenCC("s2t")
    convert: Callable[[str], str] = converter.convert
    return convert


def to_traditional(text: str) -> str:
    """Simplified → traditional characters with OpenCC (s2t)."""
    return _s2t()(text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        import pandas as pd

        if value is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is a project dependency
        pass
    return str(value).strip()


def _complete(field: str, value: str) -> str:
    suffix = _SUFFIX.get(field)
    if suffix and _BARE.fullmatch(value):
        return value + suffix
    return value


def _door_number(value: str) -> str:
    return value[:-1] if value.endswith("号") else value


def _sub_number(value: str) -> str:
    # sub_no may come as '1', '之一', '-1' or '之1'; keep only what identifies it.
    value = value.strip()
    for prefix in ("之", "-", "－"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    return value


def _sub_digits(sub: str) -> str:
    if sub.isdigit():
        return sub
    reverse = {ch: str(i) for i, ch in enumerate(_CN_DIGITS)}
    if len(sub) == 1 and sub in reverse:
        return reverse[sub]
    return sub


def _sub_words(sub: str) -> str:
    return chinese_number(int(sub)) if sub.isdigit() else sub


def standard_door(door: str, sub: str) -> str:
    """The standard door text, as the address library writes it: 12号, with a sub-number 12-1号."""
    return f"{door}-{sub}号" if sub else f"{door}号"


# How people write 12-1号 otherwise (the standard form itself is left out).
SUB_NUMBER_FORMS: tuple[Callable[[str, str], str], ...] = (
    lambda door, sub: f"{door}号之{_sub_words(sub)}",
    lambda door, sub: f"{door}号-{_sub_digits(sub)}",
    lambda door, sub: f"{door}之{_sub_digits(sub)}号",
    lambda door, sub: f"{door}号之{_sub_digits(sub)}",
)


def address_pieces(components: AddressRow, town_name: str, community_name: str) -> list[tuple[str, str]]:
    """The standard address as (role, text) pieces in reading order, exactly as the library's full_text.

    Town first (no city); the community only when no road locates the address; then village, park, road, lane,
    door, compound, phase, building, unit, floor, room, stall.
    """
    pieces: list[tuple[str, str]] = [("town", town_name)]
    has_road = bool(_text(components.get("road_name")))
    if community_name and not has_road:
        pieces.append(("community", community_name))
    sub = _sub_number(_text(components.get("sub_no")))
    for field in _BODY_FIELDS:
        value = _text(components.get(field))
        if not value:
            continue
        if field == "door_no":
            pieces.append(("door_no", standard_door(_door_number(value), sub)))
        else:
            pieces.append((field, _complete(field, value)))
    return pieces


def standard_text(components: AddressRow, town_name: str, community_name: str) -> str:
    """The clean rendering of an address from its components (what the library's full_text should read)."""
    return "".join(text for _, text in address_pieces(components, town_name, community_name))


def _town_short(town_name: str) -> str:
    for suffix in ("街道", "镇"):
        if town_name.endswith(suffix) and len(town_name) > len(suffix) + 1:
            return town_name[: -len(suffix)]
    return town_name


def _community_short(name: str) -> str:
    for suffix in ("社区", "村"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _index(pieces: list[tuple[str, str]], role: str) -> int:
    for i, (r, _) in enumerate(pieces):
        if r == role:
            return i
    return -1


def _building_variants(text: str) -> list[str]:
    """Other ways to write the same building: 3栋 → 3座, 第3栋, 3号楼, 三栋, 3幢; B栋 → B座, b栋."""
    match = _BUILDING.fullmatch(text)
    if match is None:
        return []
    ident = match.group(1)
    if ident.isdigit():
        variants = [
            f"{ident}栋",
            f"{ident}座",
            f"第{ident}栋",
            f"{ident}号楼",
            f"{chinese_number(int(ident))}栋",
            f"{ident}幢",
        ]
    else:
        variants = [f"{ident}栋", f"{ident}座", f"{ident}幢", f"{ident.lower()}栋", f"{ident}#"]
    return [v for v in variants if v != text]


def _note(pieces: list[tuple[str, str]], rng: random.Random) -> str:
    road = next((t for r, t in pieces if r == "road_name"), "")
    community = next((t for r, t in pieces if r == "community"), "")
    stem = _community_short(community) if community else ""
    choices = ["上门", "送货上门", "电联", "一楼", "后门", "铺面", "二楼楼梯口"]
    if stem:
        choices += [f"近{stem}市场", f"{stem}公交站旁", f"{stem}小学对面"]
    if road:
        choices += [f"{road}路口", f"近{road}"]
    note = rng.choice(choices)
    return f"({note})" if rng.random() < 0.6 else f"（{note}）"


def _typo(pieces: list[tuple[str, str]], rng: random.Random, town_ok: bool) -> bool:
    town_i = _index(pieces, "town")
    if town_i >= 0 and town_ok and rng.random() < 0.6:
        town = pieces[town_i][1]
        for short, slips in TOWN_TYPOS.items():
            if town.startswith(short):
                pieces[town_i] = ("town", rng.choice(slips) + town[len(short) :])
                return True
    targets = [i for i, (r, t) in enumerate(pieces) if r in ("community", "village", "road_name", "park", "compound")]
    rng.shuffle(targets)
    for i in targets:
        role, text = pieces[i]
        spots = [j for j, ch in enumerate(text) if ch in CHAR_TYPOS]
        if spots:
            j = rng.choice(spots)
            pieces[i] = (role, text[:j] + rng.choice(CHAR_TYPOS[text[j]]) + text[j + 1 :])
            return True
    return False


def _numerals(pieces: list[tuple[str, str]], rng: random.Random) -> bool:
    changed = False
    for i, (role, text) in enumerate(pieces):
        if role not in _NUMERAL_ROLES:
            continue
        match = _NUMBER.match(text)
        # People spell out small numbers only; 1502 stays digits.
        if match and int(match.group()) <= 99 and (not changed or rng.random() < 0.7):
            pieces[i] = (role, chinese_number(int(match.group())) + text[match.end() :])
            changed = True
    return changed


def render_raw_address(  # noqa: C901 - one ordered draw per address component (the seed fixes the order)
    components: AddressRow, town_name: str, community_name: str, rng: random.Random
) -> tuple[str, tuple[str, ...]]:
    """Render an address as a person would type it; return (raw_text, noise types applied, in NOISE_TYPES order).

    ``components`` is an address-library row (road_name, door_no, sub_no, village, lane, park, compound, phase,
    building, unit, floor, room, stall; ``full_text`` when present is returned verbatim for clean rows). The
    road/door and the community are never dropped together, so a good geocoder can always recover the truth.
    """
    pieces = address_pieces(components, town_name, community_name)
    applied: set[str] = set()
    roll = rng.random

    if roll() < 0.33:
        applied.add("prefix_added")
        prefix = rng.choice(("东莞市", "东莞市", "东莞市", "广东省东莞市", "广东省东莞市", "广东东莞市", "东莞"))
        pieces.insert(0, ("city", prefix))

    has_road = _index(pieces, "road_name") >= 0 and _index(pieces, "door_no") >= 0
    community_i = _index(pieces, "community")
    community_roll = roll()
    if community_i < 0 and has_road and community_name:
        # People add the community the library leaves out of road addresses, before or after the road.
        if community_roll < 0.20:
            applied.add("community_added")
            pieces.insert(_index(pieces, "town") + 1, ("community", community_name))
        elif community_roll < 0.26:
            applied.add("reordered")
            pieces.insert(_index(pieces, "door_no") + 1, ("community", community_name))
    elif community_i >= 0 and community_roll < 0.12 and _index(pieces, "door_no") >= 0:
        # Only where a door number stays to locate the address (village chains): never community and door both.
        applied.add("missing_community")
        pieces.pop(community_i)
    community_i = _index(pieces, "community")
    if community_i >= 0 and roll() < 0.08 and _community_short(community_name) != community_name:
        applied.add("community_short")
        pieces[community_i] = ("community", _community_short(community_name))

    town_i = _index(pieces, "town")
    town_roll = roll()
    if town_roll < 0.09 and _town_short(town_name) != town_name:
        applied.add("town_short")
        pieces[town_i] = ("town", _town_short(town_name))
    elif 0.09 <= town_roll < 0.12 and _index(pieces, "community") >= 0 and "missing_community" not in applied:
        # Road names repeat across towns, so the town may only go when the community is there to place it.
        applied.add("missing_town")
        pieces.pop(town_i)
    elif 0.12 <= town_roll < 0.42 and town_name in OLD_TOWN_FORMS:
        applied.add("town_old_form")
        pieces[town_i] = ("town", OLD_TOWN_FORMS[town_name])

    door_i = _index(pieces, "door_no")
    sub = _sub_number(_text(components.get("sub_no")))
    if door_i >= 0 and sub and roll() < 0.5:
        door = _door_number(_text(components.get("door_no")))
        forms = SUB_NUMBER_FORMS
        if door_i + 1 < len(pieces) and pieces[door_i + 1][1][:1].isdigit():
            # 28号-1 then 3楼 would read 28号-13楼: people who write the dash form stop after it or add a space.
            forms = tuple(f for f in SUB_NUMBER_FORMS if not f("1", "1").endswith("1"))
        pieces[door_i] = ("door_no", rng.choice(forms)(door, sub))
        applied.add("sub_number_form")

    building_i = _index(pieces, "building")
    if building_i >= 0 and roll() < 0.25:
        variants = _building_variants(pieces[building_i][1])
        if variants:
            pieces[building_i] = ("building", rng.choice(variants))
            applied.add("building_form")

    # A slip in the town name is only left where the community still places the address.
    town_typo_ok = not applied & {"missing_community", "town_short", "missing_town"}
    if roll() < 0.05 and _typo(pieces, rng, town_typo_ok):
        applied.add("typo")

    if roll() < 0.06 and _numerals(pieces, rng):
        applied.add("chinese_numerals")

    if roll() < 0.03:
        applied.add("repeated_prefix")
        town_now = next((t for r, t in pieces if r == "town"), town_name)
        # Pasted twice or typed over an autofilled prefix: 长安镇东莞市长安镇…, 东莞市东莞市…
        if pieces[0][0] == "city":
            repeat = rng.choice((town_now, CITY, "广东省" + CITY))
        else:
            repeat = rng.choice((town_now + CITY, town_now, CITY + CITY))
        pieces.insert(0, ("repeat", repeat))

    if roll() < 0.05:
        applied.add("bracket_note")
        pieces.append(("note", _note(pieces, rng)))

    if roll() < 0.05 and len(pieces) > 2:
        applied.add("extra_spaces")
        gaps = rng.sample(range(1, len(pieces)), k=min(len(pieces) - 1, rng.randint(1, 3)))
        pieces = [(r, (" " if i in gaps else "") + t) for i, (r, t) in enumerate(pieces)]
        if roll() < 0.3:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + " ")

    text = "".join(t for _, t in pieces)
    if roll() < 0.04 and _NUMBER.search(text):
        applied.add("fullwidth_digits")
        text = text.translate(_FULLWIDTH)
    if roll() < 0.025:
        applied.add("traditional")
        text = to_traditional(text)
    if not applied:
        # A clean row is exactly the library's text, so "differs from full_text" means "has noise".
        return _text(components.get("full_text")) or text, ()
    return text, tuple(t for t in NOISE_TYPES if t in applied)
