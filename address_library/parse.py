"""address_library.parse: normalized address text → its components (town, community, road, door, building, room…)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from address_library.errors import AddressLibraryError
from address_library.normalize import Normalized, normalize_with_flags
from grids.reference import short_community_name

# The three NBS parks without a polygon of their own (their land lies in neighbouring towns) are not towns here.
PARKS_WITHOUT_TOWN = frozenset({"441900402000", "441900403000", "441900404000"})

# Homophone slips of the characters that end or make up place names (pinyin input, Cantonese readings). Both the
# gazetteer and the text are folded through this table before the second, tolerant community lookup.
_FOLD = str.maketrans(
    {
        "存": "村",
        "为": "围",
        "维": "围",
        "唐": "塘",
        "糖": "塘",
        "领": "岭",
        "下": "厦",
        "历": "沥",
        "立": "沥",
        "元": "园",
        "圆": "园",
        "院": "苑",
        "浦": "埔",
        "州": "洲",
        "教": "滘",
        "窖": "滘",
        "敦": "墩",
        "港": "岗",
        "冈": "岗",
        "胡": "湖",
        "乌": "屋",
        "隆": "龙",
        "乔": "桥",
        "侨": "桥",
        "心": "新",
        "欣": "新",
        "疆": "江",
        "冲": "涌",
        "吭": "坑",
        "布": "步",
        "星": "兴",
        "化": "华",
        "付": "富",
        "接": "街",
        "到": "道",
        "郎": "朗",
        "浪": "朗",
    }
)


def fold_homophones(text: str) -> str:
    """Text with the common homophone slips folded to one character (存→村, 花元→花园, 接→街…).

    Used on both sides of a comparison (the library's names and the query), never to rewrite an answer.
    """
    return text.translate(_FOLD)


ROAD_SUFFIXES = ("大道", "路", "街", "巷")
PARK_SUFFIXES = (
    "工业园区", "工业区", "工业园", "工业城", "工业村", "科技园", "科技城", "创业园", "产业园", "工贸园", "物流园",
    "高新区", "开发区", "产业基地",
)  # fmt: skip
COMPOUND_SUFFIXES = (
    "花园", "小区", "苑", "广场", "华庭", "豪庭", "山庄", "家园", "公寓", "新城", "大厦", "华府", "公馆", "商城",
    "市场", "农贸市场", "综合市场", "批发市场", "肉菜市场", "商业广场", "商业城", "商贸城", "商场", "宿舍", "别墅",
    "名都",
)  # fmt: skip
VILLAGE_SUFFIXES = ("新村", "屋村", "围村", "坊", "村", "围")

_OTHER_PLACES = (
    "北京", "上海", "天津", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
    "广西", "西藏", "宁夏", "新疆", "香港", "澳门", "广州", "深圳", "珠海", "汕头", "佛山", "韶关", "湛江", "肇庆",
    "江门", "茂名", "惠州", "梅州", "汕尾", "河源", "阳江", "清远", "中山", "潮州", "揭阳", "云浮", "青岛", "济南",
    "杭州", "宁波", "温州", "绍兴", "南京", "苏州", "无锡", "武汉", "长沙", "成都", "西安", "厦门", "福州", "郑州",
    "合肥", "南昌", "南宁", "昆明", "贵阳", "沈阳", "大连", "哈尔滨", "长春", "石家庄", "太原", "兰州",
)  # fmt: skip


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(set(words), key=lambda w: (-len(w), w)))


_ALL_SUFFIXES = _alternation((*ROAD_SUFFIXES, *PARK_SUFFIXES, *COMPOUND_SUFFIXES, *VILLAGE_SUFFIXES))
# A name is the shortest run of characters ending in a suffix, unless the suffix is itself the start of a longer
# name (新村街, 锦苑花园) or one character away from a park/compound/road ending (一村西工业区).
_NAME_GUARD = _alternation((*ROAD_SUFFIXES, *PARK_SUFFIXES, *COMPOUND_SUFFIXES, "新村"))
_NAME = re.compile(rf"(.+?)({_ALL_SUFFIXES})(?!.?(?:{_NAME_GUARD}))")
# A community name (or its bare stem) followed by at most one character and a road/park/compound ending is the
# start of that name (大屏障生活区四路, 新安花园), not the community.
_PLACE_GUARD = re.compile(
    rf"(?:{_alternation((*PARK_SUFFIXES, *COMPOUND_SUFFIXES))})(?!大道|路|街)"
    rf"|.?(?:{_alternation(ROAD_SUFFIXES)})|.(?:{_alternation(PARK_SUFFIXES)})"
)
_STEM_GUARD = re.compile(rf".?(?:{_NAME_GUARD})")
_SUFFIX_KIND = {
    **dict.fromkeys(ROAD_SUFFIXES, "road"),
    **dict.fromkeys(PARK_SUFFIXES, "park"),
    **dict.fromkeys(COMPOUND_SUFFIXES, "compound"),
    **dict.fromkeys(VILLAGE_SUFFIXES, "village"),
}
_RUN = re.compile(r"(?:[^0-9A-Z第-]|第(?![0-9A-Z]))+")
_NUMBER = re.compile(
    r"第?(?P<id>[A-Z]{0,2}\d+(?:-\d+)?[A-Z]?|[A-Z]{1,2})"
    r"(?P<suf>号楼|号铺|号|栋|座|幢|单元|楼|层|室|房|档|铺|期|区|巷|弄|组|队)?"
)
_PHASE_WORD = re.compile(r"[东南西北中]区")
_INTERSECTION = re.compile(
    r"(?P<a>[^0-9与和]+?(?:大道|路|街))(?:(?:与|和|同|跟|及|交)(?P<b1>[^0-9与和]+?(?:大道|路|街))"
    r"(?:交叉口|交叉路口|交汇处|交汇口|交界处|交界|十字路口|路口|交口|口)?"
    r"|(?P<b2>[^0-9与和]+?(?:大道|路|街))(?:交叉口|交叉路口|交汇处|交汇口|交界处|十字路口|交口))"
)
_CROSSING_CHARS = frozenset("与和同跟及交口")
_MAX_FORM = 16


@dataclass(frozen=True)
class ParsedAddress:
    """The components of one address, each as written in the normalized text (None when absent)."""

    text: str = ""
    town_code: str | None = None
    town: str | None = None
    community_code: str | None = None
    community: str | None = None
    natural_village: str | None = None
    road: str | None = None
    lane: str | None = None
    door_no: str | None = None
    sub_no: str | None = None
    park: str | None = None
    compound: str | None = None
    phase: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    stall: str | None = None
    remainder: str | None = None
    intersection: str | None = None
    relative: str | None = None
    outside_dongguan: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def level(self) -> str | None:
        """The finest level present: room, building, door, road, community or town (None when nothing is known)."""
        if self.room or self.stall or self.floor:
            return "room"
        if self.building or self.unit:
            return "building"
        if self.door_no or self.compound or self.park:
            return "door"
        if self.road:
            return "road"
        if self.community_code or self.natural_village:
            return "community"
        if self.town_code:
            return "town"
        return None


@dataclass(frozen=True)
class _Place:
    code: str
    name: str
    town_code: str
    is_stem: bool = False


class Gazetteer:
    """Town and community names in every form people write them, for longest-match lookup."""

    def __init__(
        self,
        towns: Iterable[tuple[str, str]],
        communities: Iterable[tuple[str, str, str]],
        aliases: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """towns: (code, official name); communities: (code, name, town code); aliases: (alias, canonical, kind)."""
        self.town_names: dict[str, str] = {}
        self.town_at_start: dict[str, str] = {}
        self.town_anywhere: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for code, name in towns:
            self.town_names[code] = name
            by_name[name] = code
            short = _town_short(name)
            self._add_town(name, code, anywhere=True)
            for suffix in ("镇", "街道", "区"):
                self._add_town(short + suffix, code, anywhere=len(short) >= 2)
            self._add_town(short, code, anywhere=False)
        for alias, canonical, kind in aliases:
            if canonical not in by_name:
                raise AddressLibraryError(f"alias {alias!r} names an unknown town {canonical!r}")
            code = by_name[canonical]
            self._add_town(alias, code, anywhere=kind == "old_form")
            if kind == "typo":
                for suffix in ("镇", "街道", "区"):
                    self._add_town(alias + suffix, code, anywhere=True)
        self.community_names: dict[str, tuple[str, str]] = {}
        self.local: dict[str, dict[str, _Place | None]] = {code: {} for code in self.town_names}
        self.local_folded: dict[str, dict[str, _Place | None]] = {code: {} for code in self.town_names}
        self.city: dict[str, _Place | None] = {}
        self.city_folded: dict[str, _Place | None] = {}
        for code, name, town_code in communities:
            if town_code not in self.local:
                continue
            short = short_community_name(name)
            self.community_names[code] = (short, town_code)
            stem = community_stem(short)
            forms = {name, short}
            if stem != short:
                for suffix in ("社区", "村", "居委会", "社区居委会", "村委会", "村委", "村民委员会", "居民委员会"):
                    forms.add(stem + suffix)
                forms.update({stem + "管理区", stem + "管区"})
            for form in forms:
                place = _Place(code, short, town_code)
                self._add_community(form, place, town_code)
            if stem != short and len(stem) >= 2:
                self._add_community(stem, _Place(code, short, town_code, is_stem=True), town_code)
        self.town_anywhere_re = re.compile(_alternation(self.town_anywhere))
        self.max_form = min(_MAX_FORM, max(len(k) for k in (*self.town_at_start, *self.city, "")))
        # Per first character, the longest form starting with it: most windows need one or two dict lookups.
        self.longest: dict[str, int] = {}
        for key in (*self.town_at_start, *self.city, *self.city_folded):
            if key:
                self.longest[key[0]] = min(_MAX_FORM, max(self.longest.get(key[0], 0), len(key)))
        taken = [k for k in (*self.town_at_start, *self.city) if len(k) >= 2]
        # A foreign place name that begins a Dongguan name (a community called 中山…) is not evidence.
        self.other_places = re.compile(
            _alternation(p for p in _OTHER_PLACES if not any(k.startswith(p) for k in taken)) or "(?!)"
        )

    def _add_town(self, form: str, code: str, *, anywhere: bool) -> None:
        if len(form) < 2:
            return
        self.town_at_start.setdefault(form, code)
        if anywhere:
            self.town_anywhere.setdefault(form, code)

    def _add_community(self, form: str, place: _Place, town_code: str) -> None:
        for table, key in (
            (self.local[town_code], form),
            (self.city, form),
            (self.local_folded[town_code], form.translate(_FOLD)),
            (self.city_folded, form.translate(_FOLD)),
        ):
            _put(table, key, place)

    def match_town(self, text: str, pos: int) -> tuple[str, int] | None:
        """The longest town form starting at pos: (town code, end)."""
        if pos >= len(text):
            return None
        longest = self.longest.get(text[pos], 0)
        for end in range(min(len(text), pos + longest), pos + 1, -1):
            code = self.town_at_start.get(text[pos:end])
            if code is not None:
                return code, end
        return None

    def match_community(
        self, text: str, folded: str, pos: int, town_code: str | None, *, stems: bool = True
    ) -> tuple[_Place, int] | None:
        """The longest community form starting at pos, exact first, then through the typo fold."""
        exact = self.local[town_code] if town_code else self.city
        tolerant = self.local_folded[town_code] if town_code else self.city_folded
        if pos >= len(text):
            return None
        top = min(len(text), pos + max(self.longest.get(text[pos], 0), self.longest.get(folded[pos], 0)))
        for table, source, min_len in ((exact, text, 2), (tolerant, folded, 3)):
            for end in range(top, pos + min_len - 1, -1):
                place = table.get(source[pos:end])
                if place is None:
                    continue
                if place.is_stem and (not stems or _STEM_GUARD.match(text, end)):
                    continue
                if _PLACE_GUARD.match(text, end):
                    continue
                return place, end
        return None


def _put(table: dict[str, _Place | None], key: str, place: _Place) -> None:
    """Record a form; a form two communities share is useless (None), except that a full name beats a stem."""
    if key not in table:
        table[key] = place
        return
    old = table[key]
    if old is None:
        return
    if old.is_stem and not place.is_stem:
        table[key] = place
    elif old.code != place.code and not (place.is_stem and not old.is_stem):
        table[key] = None


def _town_short(name: str) -> str:
    for suffix in ("街道", "镇"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def community_stem(short_name: str) -> str:
    """The bare place word of a community: 新安社区 → 新安, 上沙村 → 上沙; 一村 and 大屏障生活区 stay whole."""
    stem = short_name
    if stem.endswith("社区") and len(stem) > 3:
        stem = stem[:-2]
    while stem.endswith("村") and len(stem) > 2:
        stem = stem[:-1]
    return stem


def read_aliases() -> list[tuple[str, str, str]]:
    """The alias table shipped in address_library/data/aliases.csv as (alias, canonical, kind)."""
    path = resources.files("address_library") / "data" / "aliases.csv"
    with path.open(encoding="utf-8") as handle:
        return [(row["alias"], row["canonical"], row["kind"]) for row in csv.DictReader(handle)]


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The gazetteer of the 33 real towns and their communities (built once, from grids.reference)."""
    from grids.reference import read_communities, read_divisions

    divisions = read_divisions()
    towns = divisions[(divisions["level"] == "town") & ~divisions["code"].isin(PARKS_WITHOUT_TOWN)]
    town_pairs = list(zip(towns["code"].astype(str), towns["name"].astype(str), strict=True))
    communities = read_communities({code for code, _ in town_pairs})
    community_rows = zip(
        communities["code"].astype(str),
        communities["name"].astype(str),
        communities["town_code"].astype(str),
        strict=True,
    )
    return Gazetteer(town_pairs, community_rows, read_aliases())


class _State:
    """Components found so far while scanning the body of one address."""

    __slots__ = (
        "community",
        "town_code",
        "village",
        "road",
        "lane",
        "door",
        "sub",
        "park",
        "compound",
        "phase",
        "building",
        "unit",
        "floor",
        "room",
        "stall",
        "rest",
        "last",
    )

    def __init__(self, town_code: str | None, community: _Place | None) -> None:
        self.town_code = town_code
        self.community = community
        self.village: str | None = None
        self.road: str | None = None
        self.lane: str | None = None
        self.door: str | None = None
        self.sub: str | None = None
        self.park: str | None = None
        self.compound: str | None = None
        self.phase: str | None = None
        self.building: str | None = None
        self.unit: str | None = None
        self.floor: str | None = None
        self.room: str | None = None
        self.stall: str | None = None
        self.rest: list[str] = []
        self.last = ""


def parse(text: str, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse an address as typed (it is normalized first; normalized text passes through unchanged)."""
    return parse_normalized(normalize_with_flags(text), gazetteer)


def parse_normalized(normalized: Normalized, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse the output of normalize_with_flags."""
    gaz = gazetteer or default_gazetteer()
    text = normalized.text
    if not text:
        return ParsedAddress(text=text, relative=normalized.relative, notes=normalized.notes)
    folded = text.translate(_FOLD)
    pos = 0
    town_code: str | None = None
    community: _Place | None = None
    skipped = ""

    town = gaz.match_town(text, 0)
    place = gaz.match_community(text, folded, 0, None)
    if town is not None and (place is None or town[1] >= place[1]):
        town_code, pos = town
        if _PLACE_GUARD.match(text, pos):
            # 东城中路, 长安广场: the town names the road or building, which keeps its full name.
            pos = 0
    elif place is not None:
        community, pos = place
        town_code = community.town_code
    else:
        other = gaz.other_places.match(text)
        if other is not None:
            return ParsedAddress(
                text=text,
                remainder=text,
                outside_dongguan=True,
                relative=normalized.relative,
                notes=normalized.notes,
            )
        found = gaz.town_anywhere_re.search(text)
        if found is not None:
            town_code = gaz.town_anywhere[found.group(0)]
            skipped = text[: found.start()]
            pos = found.end()

    if town_code is not None and pos > 0:
        # Pasted twice: 长安镇长安镇…, 长安镇长安…, 长安镇东莞长安镇…
        while True:
            at = pos + 2 if text.startswith("东莞", pos) else pos
            again = gaz.match_town(text, at)
            if again is None or again[0] != town_code or _PLACE_GUARD.match(text, again[1]):
                break
            pos = again[1]
        if community is None:
            found_place = gaz.match_community(text, folded, pos, town_code)
            if found_place is not None:
                community, pos = found_place

    state = _State(town_code, community)
    if skipped:
        state.rest.append(skipped)
    crossing = _INTERSECTION.search(text, pos) if not _CROSSING_CHARS.isdisjoint(text) else None
    intersection: str | None = None
    if crossing is not None and (crossing.group("b1") or crossing.group("b2")):
        # Whatever precedes the crossing (a community) is read as usual; the crossing is the road level.
        _scan(text[: crossing.start()], folded, pos, state, gaz)
        if state.road is not None:
            state.rest.append(state.road)
        state.road = crossing.group("a")
        intersection = crossing.group("b1") or crossing.group("b2")
        if crossing.end() < len(text):
            state.rest.append(text[crossing.end() :])
    else:
        _scan(text, folded, pos, state, gaz)
    _finish(state, gaz)

    community = state.community
    town_code = state.town_code
    return ParsedAddress(
        text=text,
        town_code=town_code,
        town=gaz.town_names.get(town_code) if town_code else None,
        community_code=community.code if community else None,
        community=community.name if community else None,
        natural_village=state.village,
        road=state.road,
        lane=state.lane,
        door_no=state.door,
        sub_no=state.sub,
        park=state.park,
        compound=state.compound,
        phase=state.phase,
        building=state.building,
        unit=state.unit,
        floor=state.floor,
        room=state.room,
        stall=state.stall,
        remainder="".join(state.rest) or None,
        intersection=intersection,
        relative=normalized.relative,
        notes=normalized.notes,
    )


def _scan(text: str, folded: str, pos: int, state: _State, gaz: Gazetteer) -> None:
    """Read the components after town and community, left to right."""
    n = len(text)
    pending = ""  # a name with no suffix of its own (上围 in 上围3巷), waiting for what follows it
    while pos < n:
        number = _NUMBER.match(text, pos)
        if number is not None:
            pending = _number(number, state, pending)
            pos = number.end()
            continue
        run = _RUN.match(text, pos)
        if run is None:  # a stray '-' or '第'
            state.rest.append(text[pos])
            pos += 1
            continue
        if pending:
            state.rest.append(pending)
            pending = ""
        end = run.end()
        if state.community is None:
            # Out of place (after the door, 长青路12号新安社区) only a full community name counts, or a bare stem
            # that fills the whole run (长青路12号新安).
            place = gaz.match_community(text, folded, pos, state.town_code, stems=False)
            if place is None:
                place = gaz.match_community(text, folded, pos, state.town_code)
                if place is not None and place[1] != end:
                    place = None
            if place is not None:
                state.community, pos = place
                if state.town_code is None:
                    state.town_code = state.community.town_code
                if pos >= end:
                    continue
        pending = _names(text[pos:end], state)
        pos = end
    if pending:
        state.rest.append(pending)


def _names(run: str, state: _State) -> str:
    """Take the named components (village, park, road, compound) out of a run of characters; return what is left."""
    p = 0
    n = len(run)
    while p < n:
        if state.compound and not state.phase and _PHASE_WORD.match(run, p):
            state.phase = run[p : p + 2]
            state.last = "phase"
            p += 2
            continue
        if run.startswith("厂房", p) and state.park and not state.building:
            state.building = "厂房"
            state.last = "building"
            p += 2
            continue
        match = _NAME.match(run, p)
        if match is None:
            break
        name = match.group(0)
        kind = _SUFFIX_KIND[match.group(2)]
        p = match.end()
        if kind == "road":
            if state.road is None:
                state.road = name
            elif state.lane is None:
                state.lane = name
            else:
                state.rest.append(name)
        elif kind == "village":
            if state.village is None:
                state.village = name
            elif state.last == "village":
                state.village += name
            else:
                state.rest.append(name)
        elif kind == "park":
            if state.park is None:
                state.park = name
            else:
                state.rest.append(name)
        elif state.compound is None:
            state.compound = name
        else:
            state.rest.append(name)
        state.last = kind
    return run[p:]


def _number(match: re.Match[str], state: _State, pending: str) -> str:
    """Place one numbered token (12号, 3栋, 2单元, 302室, 3巷 …); return the pending name still unplaced."""
    ident = match.group("id")
    suffix = match.group("suf")
    token = match.group(0)
    if token.startswith("第"):
        token = token[1:]
    if suffix in ("巷", "弄"):
        if pending:
            if state.road is None and (state.community is not None or state.village is not None):
                # 上围3巷 after a community: a natural village and its numbered lane.
                if state.village is None:
                    state.village = pending
                else:
                    state.rest.append(pending)
                state.lane = token
            elif state.road is None:
                state.road = pending + token
            else:
                state.rest.append(pending + token)
            state.last = "lane"
            return ""
        if state.lane is None:
            state.lane = token
        else:
            state.rest.append(token)
        state.last = "lane"
        return ""
    if pending:
        state.rest.append(pending)
    if suffix in ("组", "队"):
        if state.village is not None and state.last == "village":
            state.village += token
        elif state.village is None:
            state.village = token
        else:
            state.rest.append(token)
        state.last = "village"
        return ""
    if suffix == "号" or suffix is None:
        has_inside = state.building or state.unit or state.floor
        if suffix is None and not ident.isdigit():
            state.rest.append(token)
        elif state.door is None and not has_inside and not (suffix is None and state.room is None and state.compound):
            if suffix is None and not (state.road or state.lane or state.village):
                state.rest.append(token)
                return ""
            door, _, sub = ident.partition("-")
            state.door = door
            state.sub = sub or None
            state.last = "door"
        elif state.room is None and (has_inside or state.compound or state.park):
            state.room = ident + "号" if suffix else ident
            state.last = "room"
        else:
            state.rest.append(token)
        return ""
    slot = {
        "号楼": "building",
        "栋": "building",
        "座": "building",
        "幢": "building",
        "单元": "unit",
        "楼": "floor",
        "层": "floor",
        "室": "room",
        "房": "room",
        "档": "stall",
        "铺": "stall",
        "号铺": "stall",
        "期": "phase",
        "区": "phase",
    }[suffix]
    if getattr(state, slot) is None:
        setattr(state, slot, token)
    else:
        state.rest.append(token)
    state.last = slot
    return ""


def _finish(state: _State, gaz: Gazetteer) -> None:
    """Village-chain lanes, and the community read back from a name that starts with it."""
    if (
        state.village is not None
        and state.road is not None
        and state.road.endswith(("街", "巷"))
        and not state.compound
        and not state.park
    ):
        # In a village chain a 街/巷 is the lane the doors hang on (陈屋村兴华街3巷5号), not a town road.
        state.lane = state.road + (state.lane or "")
        state.road = None
    if state.community is None and state.town_code is not None:
        for name in (state.village, state.park, state.compound):
            if not name:
                continue
            folded = name.translate(_FOLD)
            table = gaz.local[state.town_code]
            for end in range(min(len(name), gaz.max_form), 1, -1):
                place = table.get(name[:end]) or gaz.local_folded[state.town_code].get(folded[:end])
                if place is not None:
                    state.community = place
                    return
