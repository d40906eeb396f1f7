"""synthetic.names: invented name vocabularies for roads, villages, parks, compounds and markets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from synthetic.noise import chinese_number

# The vocabularies below were written from general knowledge of how Pearl River Delta places are named; none of
# them is a list of real Dongguan names. Real names are compositional in the same way: a stem of one or two
# characters (a lucky word, a landform, the village's own name) plus a generic ending.

DIRECTIONS = ("东", "南", "西", "北", "中")
AUSPICIOUS = (
    "兴", "华", "安", "富", "康", "裕", "盛", "泰", "隆", "昌", "荣", "平", "福", "祥", "和", "顺", "宁", "丰",
    "德", "瑞", "嘉", "景", "新", "永", "旺", "建", "振", "长", "鸿", "锦", "青", "明", "胜", "利", "达", "源",
)  # fmt: skip
# Landform characters of the Dongguan water towns and hills (涌 = creek, 滘 = waterway, 埔 = riverside flat).
LOCAL_WORDS = (
    "莲", "塘", "沙", "岭", "湖", "江", "涌", "岗", "坑", "埔", "洲", "滘", "朗", "沥", "榕", "荔", "莞", "桥",
    "田", "山", "湾", "基", "岸", "石", "榄", "竹", "松", "梅", "桂", "蕉", "禾", "泉", "溪", "陂",
)  # fmt: skip
# Civic road stems every town has one of; these are the names that repeat across towns.
CIVIC_STEMS = (
    "人民", "建设", "解放", "文化", "教育", "体育", "健康", "工业", "创业", "育才", "迎宾", "振兴", "新城", "滨江",
    "沿河", "环城", "环镇", "商业", "发展", "和平", "光明", "富民", "民生", "学府", "金融", "科技", "园林", "同心",
    "中心", "沿江", "环湖", "跃进", "红旗",
)  # fmt: skip
# Whole local street names found in almost every old town centre.
COMMON_STREETS = (
    "新村街",
    "商业街",
    "步行街",
    "横街",
    "后街",
    "正街",
    "大街",
    "市场街",
    "祠堂街",
    "坊前街",
    "横巷",
    "后巷",
    "祠堂巷",
)
SURNAMES = (
    "陈", "黄", "李", "张", "林", "叶", "何", "罗", "刘", "蔡", "莫", "袁", "卢", "钟", "梁", "邓", "谢", "方",
    "温", "曾", "周", "麦", "祁", "殷", "尹", "王", "翟", "郑",
)  # fmt: skip
POSITIONS = ("上", "下", "新", "旧", "东", "西", "南", "北", "前", "后", "大", "小", "中")
COMPOUND_FIRST = (
    "锦", "翠", "碧", "御", "金", "阳", "海", "丽", "嘉", "雍", "君", "名", "星", "富", "华", "景", "康", "怡",
    "雅", "福", "宝", "龙", "凤", "银", "云", "天", "万", "盈", "聚", "东", "南", "泰", "逸", "尚", "翰",
)  # fmt: skip
COMPOUND_SECOND = (
    "华", "景", "园", "城", "湾", "苑", "庭", "都", "峰", "湖", "泉", "林", "山", "水", "岸", "轩", "悦", "汇",
    "晖", "荟", "府", "海", "江", "桂", "豪", "裕", "和", "溪",
)  # fmt: skip
COMPOUND_SUFFIXES = (
    "花园",
    "小区",
    "苑",
    "广场",
    "华庭",
    "豪庭",
    "山庄",
    "家园",
    "雅苑",
    "名苑",
    "公寓",
    "新城",
    "大厦",
)
COMPOUND_SUFFIX_WEIGHTS = (0.24, 0.14, 0.1, 0.08, 0.08, 0.06, 0.05, 0.07, 0.05, 0.04, 0.04, 0.03, 0.02)
PARK_SUFFIXES = ("工业区", "工业区", "工业园", "科技园", "创业园", "产业园", "工业城")
MARKET_SUFFIXES = ("市场", "农贸市场", "综合市场", "商业城", "批发市场", "商贸城", "商业广场", "肉菜市场")
LETTERS = "ABCDEFGHJK"
ROOM_STYLES = ("室", "房", "号")
ROOM_STYLE_WEIGHTS = (0.45, 0.35, 0.2)
# Building numbering habits: 3栋, 5座, 2幢, 1号楼, B栋, D3栋. A compound uses one habit throughout.
BUILDING_STYLES = ("num栋", "num座", "num幢", "num号楼", "letter栋", "letter座", "letternum栋")
BUILDING_STYLE_WEIGHTS = (0.36, 0.12, 0.08, 0.12, 0.14, 0.08, 0.1)
FACTORY_BUILDING_STYLES = ("letter栋", "letternum栋", "num栋", "letter座")
FACTORY_BUILDING_STYLE_WEIGHTS = (0.45, 0.25, 0.2, 0.1)


def pick(rng: np.random.Generator, options: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """One element of options, uniformly or by (unnormalised) weights."""
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def community_stem(short_name: str) -> str:
    """The bare place word of a community: 新安社区 → 新安, 上沙村 → 上沙."""
    stem = short_name
    if stem.endswith("社区") and len(stem) > 2:
        stem = stem[:-2]
    # 唐洪村村 (a 村 whose name already ends in 村) → 唐洪; a two-character name such as 新村 stays whole.
    while stem.endswith("村") and len(stem) > 2:
        stem = stem[:-1]
    return stem


def unique_name(used: set[str], make: Callable[[int], str], fallback: Callable[[int], str], tries: int = 40) -> str:
    """The first name from make(attempt) not yet used (then fallback(n)); records it as used."""
    for attempt in range(tries):
        name = make(attempt)
        if name not in used:
            used.add(name)
            return name
    n = 1
    while fallback(n) in used:
        n += 1
    name = fallback(n)
    used.add(name)
    return name


def road_base(rng: np.random.Generator, stem: str) -> str:
    """A two-character road stem: a civic word, a lucky pair, a landform + lucky word or the place's own word."""
    roll = rng.random()
    if roll < 0.22:
        return pick(rng, CIVIC_STEMS)
    if roll < 0.5:
        a, b = rng.choice(len(AUSPICIOUS), size=2, replace=False)
        return AUSPICIOUS[int(a)] + AUSPICIOUS[int(b)]
    if roll < 0.75:
        return _two_distinct(rng, LOCAL_WORDS, AUSPICIOUS)
    if roll < 0.9 and stem:
        return stem[0] + pick(rng, AUSPICIOUS)
    return pick(rng, DIRECTIONS[:4]) + pick(rng, AUSPICIOUS)


def local_road_name(rng: np.random.Generator, stem: str, kind: str, attempt: int) -> str:
    """A community street name of the given kind (路/街/巷): 新安一路, 兴华街, 东兴巷, 新村街."""
    roll = rng.random()
    if roll < 0.08 and attempt < 3:
        fitting = [name for name in COMMON_STREETS if name.endswith(kind)]
        if fitting:
            return pick(rng, fitting)
    if stem and roll < 0.2 and attempt == 0:
        return stem + kind
    if stem and roll < 0.5:
        return stem + chinese_number(int(rng.integers(1, 9 + 2 * attempt))) + kind
    if stem and roll < 0.6:
        return stem + pick(rng, DIRECTIONS) + kind
    if kind == "巷" and roll < 0.85:
        return pick(rng, DIRECTIONS[:4]) + pick(rng, AUSPICIOUS) + kind
    return road_base(rng, stem) + kind


def village_chain(rng: np.random.Generator, stem: str) -> tuple[str, str]:
    """A natural-village chain head and its lane style: ('北坊', 'ordinal'), ('上围村三组', 'none'), ('陈屋村', 'street')."""
    roll = rng.random()
    if roll < 0.2:
        head = pick(rng, DIRECTIONS) + "坊" if rng.random() < 0.5 else chinese_number(int(rng.integers(1, 10))) + "坊"
        return head, "ordinal"
    if roll < 0.3:
        return pick(rng, SURNAMES) + "家坊", "ordinal"
    if roll < 0.48:
        return pick(rng, SURNAMES) + "屋村", "street"
    if roll < 0.62:
        head = pick(rng, POSITIONS[:8]) + "围"
        if rng.random() < 0.5:
            return head + "村" + chinese_number(int(rng.integers(1, 13))) + "组", "none"
        return head, "ordinal"
    if roll < 0.78:
        base = stem[:2] if stem and rng.random() < 0.5 else pick(rng, LOCAL_WORDS) + pick(rng, AUSPICIOUS)
        return base + "新村", "street"
    if roll < 0.9:
        return pick(rng, LOCAL_WORDS) + pick(rng, ("塘", "岭", "基", "埔", "头", "尾", "坑", "边")) + "村", "ordinal"
    return chinese_number(int(rng.integers(1, 16))) + "队", "none"


def lane_names(rng: np.random.Generator, style: str, count: int) -> list[str | None]:
    """count distinct lane names inside one village chain ('none' style gives no lane at all)."""
    if style == "none":
        return [None] * count
    names: list[str | None] = []
    used: set[str] = set()
    if style == "ordinal":
        digits = rng.random() < 0.3  # some villages write 11巷, most write 十一巷
        for i in range(1, count + 1):
            name = f"{i}巷" if digits else chinese_number(i) + "巷"
            if rng.random() < 0.12:
                named = pick(rng, DIRECTIONS[:4]) + pick(rng, AUSPICIOUS) + "巷"
                name = named if named not in used else name
            used.add(name)
            names.append(name)
        return names
    streets = sorted(
        {pick(rng, AUSPICIOUS) + pick(rng, AUSPICIOUS + LOCAL_WORDS) + "街" for _ in range(max(1, count // 6))}
    )
    lane_no = dict.fromkeys(streets, 0)
    while len(names) < count:
        street = streets[int(rng.integers(len(streets)))]
        if street not in used and rng.random() < 0.25:
            name = street
        else:
            # Lanes off one street are numbered in order, as the 门牌 office does when it names them.
            lane_no[street] += 1
            n = lane_no[street]
            name = street + (f"{n}巷" if n > 10 or rng.random() < 0.5 else chinese_number(n) + "巷")
        used.add(name)
        names.append(name)
    return names


def park_name(rng: np.random.Generator, stem: str, attempt: int) -> str:
    """An industrial zone name: 第二工业区, 新安工业园, 兴华科技园."""
    roll = rng.random()
    if roll < 0.35:
        return "第" + chinese_number(int(rng.integers(1, 7 + attempt))) + "工业区"
    if roll < 0.6 and stem:
        return stem + pick(rng, PARK_SUFFIXES)
    if roll < 0.7 and stem:
        return stem + pick(rng, DIRECTIONS[:4]) + "工业区"
    return _two_distinct(rng, AUSPICIOUS + LOCAL_WORDS, AUSPICIOUS) + pick(rng, PARK_SUFFIXES)


def compound_name(rng: np.random.Generator, stem: str) -> str:
    """A residential compound name: 锦华花园, 翠湖豪庭, 新安小区."""
    suffix = pick(rng, COMPOUND_SUFFIXES, COMPOUND_SUFFIX_WEIGHTS)
    if stem and rng.random() < 0.15:
        return stem[:2] + suffix
    return _two_distinct(rng, COMPOUND_FIRST, COMPOUND_SECOND) + suffix


def _two_distinct(rng: np.random.Generator, first: Sequence[str], second: Sequence[str]) -> str:
    """Two characters that differ: 锦华, never 华华."""
    a = pick(rng, first)
    b = pick(rng, second)
    while b == a:
        b = pick(rng, second)
    return a + b


def market_name(rng: np.random.Generator, stem: str) -> str:
    """A market or shopping street name: 新安市场, 富华商业城."""
    if stem and rng.random() < 0.5:
        return stem[:2] + pick(rng, MARKET_SUFFIXES)
    return _two_distinct(rng, AUSPICIOUS + LOCAL_WORDS, AUSPICIOUS) + pick(rng, MARKET_SUFFIXES)


def phase_labels(rng: np.random.Generator, count: int) -> list[str]:
    """Labels for the phases (期) or zones (区) of a compound."""
    if rng.random() < 0.7:
        return [chinese_number(i) + "期" for i in range(1, count + 1)]
    if count <= 4 and rng.random() < 0.5:
        return [d + "区" for d in ("东", "西", "南", "北")[:count]]
    return [LETTERS[i] + "区" for i in range(count)]


def building_labels(style: str, count: int, rng: np.random.Generator, *, from_one: bool = False) -> list[str]:
    """count distinct building labels in one numbering habit: 3栋, 5座, 2幢, 1号楼, B栋, D3栋."""
    labels: list[str] = []
    if style.startswith("num"):
        suffix = style[3:]
        # Later phases of a compound often continue the numbers of the first one.
        start = 1 if from_one or rng.random() < 0.8 else int(rng.integers(2, 20))
        labels = [f"{start + i}{suffix}" for i in range(count)]
    elif style.startswith("letternum"):
        suffix = style[9:]
        per_letter = int(rng.integers(2, 6))
        labels = [f"{LETTERS[(i // per_letter) % len(LETTERS)]}{i % per_letter + 1}{suffix}" for i in range(count)]
        if count > per_letter * len(LETTERS):
            labels = [f"{label[:-1]}{i}{suffix}" for i, label in enumerate(labels)]
    else:
        suffix = style[6:]
        labels = [
            (LETTERS[i] if i < len(LETTERS) else f"{LETTERS[i % len(LETTERS)]}{i // len(LETTERS) + 1}") + suffix
            for i in range(count)
        ]
    return labels


def room_label(floor: int, index: int, style: str) -> str:
    """A room number on a floor: floor 3, index 2 → 302室 / 302房 / 302号."""
    return f"{floor}{index:02d}{style}"
