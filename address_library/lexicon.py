"""address_library.lexicon: the words and patterns of Dongguan addresses — place-name suffixes, homophone slips, number
forms, intersections — that the gazetteer and the parser share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Homophone slips of the characters that end or make up place names (pinyin input, Cantonese readings). Both the
# gazetteer and the text are folded through this table before the second, tolerant community lookup.
FOLD = str.maketrans(
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
    return text.translate(FOLD)


ROAD_SUFFIXES = ("大道", "大街", "路", "街", "巷")
PARK_SUFFIXES = (
    "工业园区", "工业区", "工业园", "工业城", "工业村", "科技园", "科技城", "创业园", "产业园", "工贸园", "物流园",
    "高新区", "开发区", "产业基地", "新区",
)  # fmt: skip
COMPOUND_SUFFIXES = (
    "花园", "小区", "苑", "广场", "华庭", "豪庭", "山庄", "家园", "公寓", "新城", "大厦", "华府", "公馆", "商城",
    "市场", "农贸市场", "综合市场", "批发市场", "肉菜市场", "商业广场", "商业城", "商贸城", "商场", "宿舍", "别墅",
    "名都", "阁", "小城", "门第",
)  # fmt: skip
VILLAGE_SUFFIXES = ("新村", "屋村", "围村", "村民小组", "坊", "村", "围", "组")

OTHER_PLACES = (
    "北京", "上海", "天津", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
    "广西", "西藏", "宁夏", "新疆", "香港", "澳门", "广州", "深圳", "珠海", "汕头", "佛山", "韶关", "湛江", "肇庆",
    "江门", "茂名", "惠州", "梅州", "汕尾", "河源", "阳江", "清远", "中山", "潮州", "揭阳", "云浮", "青岛", "济南",
    "杭州", "宁波", "温州", "绍兴", "南京", "苏州", "无锡", "武汉", "长沙", "成都", "西安", "厦门", "福州", "郑州",
    "合肥", "南昌", "南宁", "昆明", "贵阳", "沈阳", "大连", "哈尔滨", "长春", "石家庄", "太原", "兰州",
)  # fmt: skip


def alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(set(words), key=lambda w: (-len(w), w)))


ALL_SUFFIXES = alternation((*ROAD_SUFFIXES, *PARK_SUFFIXES, *COMPOUND_SUFFIXES, *VILLAGE_SUFFIXES))
# A name is the shortest run of characters ending in a suffix, unless the suffix is itself the start of a longer
# name (新村街, 锦苑花园, 石路村, 花园村) or one character away from a park/compound/road ending (一村西工业区; a
# lone 苑 that far on is not: 兴业东路华苑公寓). A cross street after a street (新安大街横巷) is a name of its own.
NAME_GUARD = alternation((*ROAD_SUFFIXES, *PARK_SUFFIXES, *COMPOUND_SUFFIXES, "新村"))
_GUARD_ONE_ON = alternation(w for w in (*ROAD_SUFFIXES, *PARK_SUFFIXES, *COMPOUND_SUFFIXES, "新村") if w != "苑")
NAME = re.compile(rf"(.+?)({ALL_SUFFIXES})(?!村|(?!横[街巷路])(?:{NAME_GUARD}|.(?:{_GUARD_ONE_ON})))")
# A community name (or its bare stem) followed by at most one character and a road/park/compound ending is the
# start of that name (大屏障生活区四路, 新安花园), not the community.
PLACE_GUARD = re.compile(
    rf"(?:{alternation((*PARK_SUFFIXES, *COMPOUND_SUFFIXES))})(?!大道|路|街)"
    rf"|.?(?:{alternation(ROAD_SUFFIXES)})(?!村)|.(?:{alternation(PARK_SUFFIXES)})"
)
STEM_GUARD = re.compile(rf".?(?:{NAME_GUARD})(?!村)")
SUFFIX_KIND = {
    **dict.fromkeys(ROAD_SUFFIXES, "road"),
    **dict.fromkeys(PARK_SUFFIXES, "park"),
    **dict.fromkeys(COMPOUND_SUFFIXES, "compound"),
    **dict.fromkeys(VILLAGE_SUFFIXES, "village"),
}
# Digits right before a compound ending belong to its name (华润0769家园), and a highway's number to the highway
# (107国道).
_NUMBERED_NAME = alternation((*COMPOUND_SUFFIXES, "国道", "省道", "县道"))
NAMED_NUMBER = re.compile(rf"[0-9A-Z]+(?={_NUMBERED_NAME})")
# 第 is an ordinal before a number (第3栋) except in the word 门第 (a compound name ending: 书香门第3栋).
RUN = re.compile(rf"(?:[^0-9A-Z第-]|(?<=门)第|第(?![0-9A-Z])|[0-9A-Z]+(?={_NUMBERED_NAME}))+")
# A highway named by its kind and number (107国道) or its kind alone (省道西12号).
HIGHWAY = re.compile(r"[0-9A-Z]*[国省县]道")
NUMBER = re.compile(
    r"第?(?P<id>[A-Z]{0,2}\d+(?:-\d+)?[A-Z]?|[A-Z]{1,2})"
    r"(?P<suf>号楼(?!梯)|号铺|号巷|号梯|号(?!楼梯)|栋|座|幢|单元|梯|楼(?!梯)|层|室|房|档|铺|期|区|横巷|横街|横路|巷|弄|组"
    r"|队|街|路)?"
)  # 楼梯 (stairs) is a word, not a floor; 2梯, 3号梯 (a stairwell, Cantonese usage) is the building's unit
PHASE_WORD = re.compile(r"[东南西北中]区")
# Street names may hold 和 or 与 (宏和路), never at their start; the shortest reading wins.
_STREET = r"[^0-9与和][^0-9与]*?(?:大道|大街|路|街)"
INTERSECTION = re.compile(
    rf"(?P<a>{_STREET})(?:(?:与|和|同|跟|及|交)(?P<b1>{_STREET})"
    r"(?:交叉口|交叉路口|交汇处|交汇口|交界处|交界|十字路口|路口|交口|口)?"
    rf"|(?P<b2>{_STREET})(?:交叉口|交叉路口|交汇处|交汇口|交界处|十字路口|交口))"
)
CROSSING_CHARS = frozenset("与和同跟及交口")
# A road segment named after the town it crosses: 莞长路长安段, 莞樟路樟木头段.
ROAD_SEGMENT = re.compile(r"[^0-9段路街道巷]{1,4}段")
# A short road called …道 (松景道26号): only before its door number, so 街道, 国道 or 通道 elsewhere stay as they are.
ROAD_DAO = re.compile(r"[^0-9A-Z道街路巷国省县通隧]{2,4}道(?=\d)")
# A village name (ending in a place-name word: 头, 岗, 岭, 塘…) written straight before a road of its own name
# (2–3 characters and an optional numeral or direction: 新屋头兴业路, 大坑岭振华二街). The road's name part may not
# start with a place-name word, a numeral or a direction (邵岗头五路, 王屋洲北路 are one road's name), nor be a
# generic word for what the road serves (上坑商业街, 大岭沿河路): such a road is named with its place in front.
_PLACE_END = "头岗岭塘坑围屋村厦边洲涌沥墩埔坊寮窝坪塱冚贝背"
_NUMERAL_OR_DIRECTION = "0-9一二三四五六七八九十东南西北中"
VILLAGE_THEN_ROAD = re.compile(
    rf"([^0-9A-Z]{{1,3}}[{_PLACE_END}])"
    rf"([^{_PLACE_END}{_NUMERAL_OR_DIRECTION}区路街巷道A-Z][^{_NUMERAL_OR_DIRECTION}区路街巷道A-Z]{{1,2}}"
    rf"[{_NUMERAL_OR_DIRECTION}]{{0,3}}(?:大道|大街|路|街|巷))"
)
GENERIC_ROAD_WORDS = ("商业", "市场", "工业", "环村", "沿河", "滨河", "沿江", "新村", "酒吧", "美食", "步行", "购物")
# A relative word inside the body (华润超市后面兴华街2号, 新安社区旁X花园): the name before it is the landmark the
# address is placed by; the word itself says nothing about the address that follows.
INNER_RELATIVE = re.compile(r"斜对面|对面|附近|旁边|隔壁|后面|旁")
RELATIVE_CHARS = frozenset("对附旁隔后")
# The urban area of a town written after it (X镇新城区…): an old area word, not the start of a name.
URBAN_AREA = re.compile(r"[新老旧]?城区")
# A lane called …里 (安乐里5号): only before its door number, so 三元里 or 公里 elsewhere stay as they are.
LANE_LI = re.compile(r"[^0-9里]{1,4}里(?=\d)")
# Endings of named places that are not standard-address components: shops, factories, companies, schools,
# stations, offices (a point of interest, POI). A note naming a compound or park (锦华花园小区旁) names a POI too.
POI_SUFFIXES = (
    "店", "厂", "公司", "超市", "商行", "中心", "站", "所", "医院", "学校", "中学", "小学", "幼儿园", "银行", "宾馆",
    "馆", "百货", "家具", "物业", "管委会", "委员会", "公园", "庙", "祠", "酒楼", "餐厅", "办公楼", "综合楼",
    "写字楼", "大楼", "部", "局", "院", "城", "网吧", "车行", "建材", "大学", "校", "场",
)  # fmt: skip
POI_END = re.compile(rf"(?:{alternation((*POI_SUFFIXES, *COMPOUND_SUFFIXES, *PARK_SUFFIXES))})$")
# A gate is a detail of the place it opens (明珠广场南门): the place is the POI.
GATE = re.compile(r"(?<=.{2})(?:[东南西北正后侧]门|路口|门口)$")
