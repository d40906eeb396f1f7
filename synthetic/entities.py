"""synthetic.entities: deterministic market entities (市场主体) with credit codes, scopes, licences and typed addresses."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from supervision.uscc import CHARSET, organisation_code_check_char, uscc_check_char
from synthetic.noise import render_raw_address

ENTITY_COLUMNS = (
    "uscc", "name", "kind", "business_scope", "industry", "registered_on", "status", "address_id", "raw_address",
    "noise", "annual_report_filed_on", "needs_licence", "credit_class",
)  # fmt: skip
LICENCE_COLUMNS = ("uscc", "licence", "department", "issued_on")
CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "business_scopes.csv"

INDIVIDUAL_SHARE = 0.55  # individual businesses (个体工商户) outnumber companies in Dongguan
CLOSED_SHARE = 0.08
LICENSED_SHARE = 0.75  # the "licensing rate" among entities whose scope needs a licence
SCOPE_SEPARATOR = "；"

# Registration authority 9 (market regulation); category 1 = enterprise, 2 = individual business.
_USCC_PREFIX = {"company": "91", "individual": "92"}
_DIVISION_VARIANTS = ("441900", "441900", "441900", "441900", "441900", "441900", "441901", "441902", "441903")
_BODY_CHARS = CHARSET  # the organisation code body must stay inside the GB 32100 charset (no I, O, Z, S, V)
_DIGITS = "0123456789"

_TRADE_NAME_CHARS = "鑫华盛达兴旺宏泰丰源顺利嘉恒裕隆昌信诚德永富发祥瑞和金晟骏业辉明新汇创联佳天志锦益安捷威俊科博星海腾卓凯润宝康鸿美豪景通远众荣品优佰万福吉龙凤粤南正铭钧灿毅浩峰"
_SURNAMES = "陈李黄张梁刘叶林王何钟罗莫杨郑卢邓袁谢麦蔡曾彭周吴徐胡邱"
_GIVEN_CHARS = "伟强军华明志国建文辉杰勇斌俊丽芳敏燕红霞玲婷秀英兰金春海东平健"

# Company industry word by a keyword in the main scope item (first match wins).
_COMPANY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("餐饮", ("餐饮管理", "餐饮服务", "饮食")),
    ("小作坊", ("食品",)),
    ("糕点", ("食品",)),
    ("腊味", ("食品",)),
    ("食品生产", ("食品", "食品科技")),
    ("酒类", ("酒业", "贸易")),
    ("食品", ("食品", "商贸")),
    ("农产品", ("农产品", "商贸")),
    ("水产", ("水产", "商贸")),
    ("鲜肉", ("肉类食品", "商贸")),
    ("烟草", ("商贸", "贸易")),
    ("药品", ("医药", "大药房")),
    ("医疗器械", ("医疗器械", "医疗科技")),
    ("诊", ("医疗", "门诊部")),
    ("美容", ("美容", "美容美发")),
    ("美发", ("美发", "美容美发")),
    ("美甲", ("美甲", "美容")),
    ("足浴", ("足浴", "养生")),
    ("上网", ("网络科技", "网咖")),
    ("娱乐", ("娱乐", "文化娱乐")),
    ("旅馆", ("酒店", "酒店管理")),
    ("住宿", ("酒店", "宾馆")),
    ("酒店", ("酒店管理",)),
    ("回收", ("再生资源回收", "物资回收")),
    ("废旧", ("再生资源回收", "物资回收")),
    ("机动车", ("汽车维修", "汽车服务")),
    ("汽车", ("汽车服务", "汽车美容")),
    ("摩托", ("摩托车维修", "车业")),
    ("成品油", ("石油", "能源")),
    ("化", ("化工", "化工科技")),
    ("培训", ("教育科技", "培训")),
    ("教育", ("教育咨询", "教育科技")),
    ("出版物", ("文化传播", "书店")),
    ("图书", ("图书", "书店")),
    ("文具", ("文具", "文化用品")),
    ("表面处理", ("表面处理", "五金")),
    ("五金", ("五金制品", "五金塑胶", "五金")),
    ("塑", ("塑胶制品", "塑胶", "塑料")),
    ("模具", ("模具", "精密模具")),
    ("电子", ("电子科技", "电子")),
    ("电线", ("电线电缆", "线缆")),
    ("家具", ("家具", "家居")),
    ("服装", ("服饰", "制衣", "服装")),
    ("鞋", ("鞋业", "鞋材")),
    ("纺织", ("纺织", "布业")),
    ("毛织", ("毛织", "针织")),
    ("玩具", ("玩具", "礼品")),
    ("纸", ("纸品", "包装")),
    ("包装", ("包装材料", "包装")),
    ("印刷", ("印刷", "彩印")),
    ("机械", ("机械设备", "机械")),
    ("设备", ("机械设备", "设备")),
    ("灯具", ("照明科技", "灯饰")),
    ("家用电器", ("电器", "家电")),
    ("通讯", ("通讯设备", "通信")),
    ("化妆品", ("化妆品", "日化")),
    ("茶", ("茶业", "茶叶")),
    ("物业", ("物业管理",)),
    ("企业管理", ("企业管理咨询", "企业管理")),
    ("信息咨询", ("信息咨询", "商务咨询")),
    ("广告", ("广告", "文化传媒")),
    ("软件", ("软件科技", "信息技术")),
    ("信息系统", ("信息技术", "智能科技")),
    ("网络", ("网络科技",)),
    ("技术", ("科技", "技术服务")),
    ("人力", ("人力资源", "人力资源服务")),
    ("劳务", ("劳务派遣", "人力资源")),
    ("运输", ("物流", "运输")),
    ("仓储", ("仓储", "供应链管理")),
    ("货物运输代理", ("国际货运代理", "供应链管理")),
    ("装卸", ("装卸服务", "物流")),
    ("装饰", ("装饰工程", "建筑装饰")),
    ("装修", ("装饰工程", "装修")),
    ("园林", ("园林绿化", "园林工程")),
    ("房地产", ("房地产经纪", "房地产代理")),
    ("家政", ("家政服务",)),
    ("进出口", ("贸易", "进出口贸易", "实业")),
)
_COMPANY_FALLBACK = ("贸易", "商贸", "实业", "科技")

# Individual business shop word by a keyword in the main scope item.
_SHOP_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("小餐饮", ("小吃店", "粉店", "快餐店", "粥店")),
    ("餐饮", ("餐馆", "饭店", "大排档", "快餐店", "茶餐厅")),
    ("糕点", ("饼屋", "糕点店")),
    ("腊味", ("腊味店", "烧腊店")),
    ("小作坊", ("食品加工店", "豆制品作坊")),
    ("酒类", ("酒行", "烟酒店")),
    ("水产", ("水产档", "海鲜档")),
    ("鲜肉", ("猪肉档", "肉档")),
    ("农产品", ("蔬菜档", "果蔬店", "水果店")),
    ("食品", ("便利店", "士多店", "副食店", "食品店")),
    ("烟草", ("便利店", "士多店", "烟酒店")),
    ("药品", ("药店", "大药房")),
    ("医疗器械", ("医疗器械店",)),
    ("诊", ("诊所", "门诊")),
    ("美容", ("美容店", "美容院")),
    ("美发", ("发廊", "理发店", "发型屋")),
    ("美甲", ("美甲店",)),
    ("足浴", ("足浴店", "沐足店")),
    ("上网", ("网吧",)),
    ("娱乐", ("卡拉OK", "游戏厅")),
    ("旅馆", ("旅馆", "招待所", "旅店")),
    ("住宿", ("宾馆", "公寓", "旅店")),
    ("回收", ("废品回收站", "回收站")),
    ("废旧", ("废品回收站", "回收站")),
    ("机动车", ("汽车维修店", "汽修厂")),
    ("汽车", ("汽车美容店", "洗车店")),
    ("摩托", ("摩托车维修店", "车行")),
    ("成品油", ("加油站",)),
    ("培训", ("培训中心", "培训部")),
    ("出版物", ("书店", "书报亭")),
    ("图书", ("书店",)),
    ("文具", ("文具店",)),
    ("五金制品加工", ("五金加工店", "五金加工厂")),
    ("五金", ("五金店", "五金行")),
    ("塑", ("塑胶加工厂", "塑料店")),
    ("服装", ("服装店", "制衣厂", "时装店")),
    ("鞋", ("鞋店", "鞋厂")),
    ("日用", ("百货店", "商店", "便利店")),
    ("手机", ("手机店", "手机维修店")),
    ("通讯", ("手机店", "通讯店")),
    ("家电", ("家电维修部", "电器行")),
    ("家用电器", ("电器行",)),
    ("电子", ("电子店", "电子经营部")),
    ("茶", ("茶行", "茶庄")),
    ("花卉", ("花店",)),
    ("宠物", ("宠物店",)),
    ("眼镜", ("眼镜店",)),
    ("化妆品", ("化妆品店",)),
    ("母婴", ("母婴店",)),
    ("洗染", ("干洗店",)),
    ("摄影", ("影楼", "摄影店")),
    ("家政", ("家政服务部",)),
    ("房地产", ("地产中介", "房产中介")),
    ("棋牌", ("棋牌室",)),
    ("健身", ("健身房",)),
    ("建筑材料", ("建材店", "建材行")),
    ("家具", ("家具店", "家具厂")),
)
_SHOP_FALLBACK = ("商行", "经营部", "店")


@dataclass(frozen=True)
class EntitySet:
    """Generated market entities and the licences they hold."""

    entities: pd.DataFrame
    licences: pd.DataFrame


@dataclass(frozen=True)
class ScopeCatalogue:
    """The business-scope catalogue as arrays, one row per scope item."""

    scope: np.ndarray
    industry: np.ndarray
    needs_licence: np.ndarray
    licence: np.ndarray
    department: np.ndarray
    weight: np.ndarray
    premises: np.ndarray


@lru_cache(maxsize=1)
def read_scope_catalogue() -> pd.DataFrame:
    """The invented business-scope catalogue shipped in synthetic/data/business_scopes.csv."""
    # Relative to this file, not importlib.resources: tests/synthetic/ would shadow the package as a namespace portion.
    frame = pd.read_csv(CATALOGUE_PATH, dtype={"licence": str, "department": str}, keep_default_na=False)
    frame["needs_licence"] = frame["needs_licence"].astype(bool)
    frame["weight"] = frame["weight"].astype(float)
    return frame


def _catalogue() -> ScopeCatalogue:
    frame = read_scope_catalogue()
    return ScopeCatalogue(
        scope=frame["scope"].to_numpy(dtype=object),
        industry=frame["industry"].to_numpy(dtype=object),
        needs_licence=frame["needs_licence"].to_numpy(dtype=bool),
        licence=frame["licence"].to_numpy(dtype=object),
        department=frame["department"].to_numpy(dtype=object),
        weight=frame["weight"].to_numpy(dtype=float),
        premises=frame["premises"].to_numpy(dtype=object),
    )


def random_uscc(kind: str, registered_on: date, rng: random.Random) -> str:
    """A synthetic but well-formed credit code: valid GB 32100 check and a proper GB 11714 organisation code."""
    division = rng.choice(_DIVISION_VARIANTS)
    if registered_on.year >= 2016:
        # Codes assigned since the reform start with MA in the organisation code body.
        body8 = "MA" + "".join(rng.choices(_BODY_CHARS, k=6))
    elif kind == "individual":
        body8 = "L" + "".join(rng.choices(_DIGITS, k=7))
    else:
        body8 = "".join(rng.choices(_DIGITS, k=8))
    first17 = _USCC_PREFIX[kind] + division + body8 + organisation_code_check_char(body8)
    return first17 + uscc_check_char(first17)


def _pick_word(
    scope: str, table: tuple[tuple[str, tuple[str, ...]], ...], fallback: tuple[str, ...], rng: random.Random
) -> str:
    for keyword, words in table:
        if keyword in scope:
            return rng.choice(words)
    return rng.choice(fallback)


def _trade_name(rng: random.Random, length: int = 2) -> str:
    return "".join(rng.choices(_TRADE_NAME_CHARS, k=length))


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN_CHARS, k=rng.choice((1, 2, 2))))


def company_name(scope: str, rng: random.Random, trade_name_length: int = 2) -> str:
    """东莞市 + trade name (字号) + industry word + 有限公司."""
    return f"东莞市{_trade_name(rng, trade_name_length)}{_pick_word(scope, _COMPANY_WORDS, _COMPANY_FALLBACK, rng)}有限公司"


def individual_name(scope: str, town_name: str, rng: random.Random) -> str:
    """An individual business name: 东莞市长安镇鑫盛五金店, …商行, …记餐馆, or the owner's name for an unnamed 个体."""
    roll = rng.random()
    if roll < 0.08:
        return f"{_person_name(rng)}（个体工商户）"
    if roll < 0.20:
        return f"东莞市{town_name}{_trade_name(rng)}商行"
    if roll < 0.30:
        return f"东莞市{town_name}{rng.choice(_SURNAMES)}记{_pick_word(scope, _SHOP_WORDS, _SHOP_FALLBACK, rng)}"
    return f"东莞市{town_name}{_trade_name(rng)}{_pick_word(scope, _SHOP_WORDS, _SHOP_FALLBACK, rng)}"


def _address_pools(addresses: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Row positions and cumulative weights of the premises each kind of business occupies."""
    level = addresses["level"].to_numpy(dtype=object)
    kind = addresses["kind"].to_numpy(dtype=object)
    stall = addresses["stall"].notna().to_numpy() if "stall" in addresses else np.zeros(len(addresses), bool)
    # Entities sit mostly on doors and rooms; a building row is a whole-building tenant, which is rarer.
    weight = np.where(np.isin(level, ("door", "room")), 1.0, 0.12)
    masks = {
        "factory": kind == "industrial",
        "shop": ((kind == "road_door") & (level == "door"))
        | (kind == "market")
        | stall
        | ((kind == "village") & (level == "door")),
        "office": np.isin(kind, ("compound", "road_door")) & (level == "room"),
        "any": np.ones(len(addresses), dtype=bool),
    }
    pools: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, mask in masks.items():
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            rows = np.arange(len(addresses))
        pools[name] = (rows, np.cumsum(weight[rows]))
    return pools


def _sample_rows(pool: tuple[np.ndarray, np.ndarray], n: int, np_rng: np.random.Generator) -> np.ndarray:
    rows, cumulative = pool
    picks = np.searchsorted(cumulative, np_rng.uniform(0, cumulative[-1], size=n), side="right")
    return rows[np.minimum(picks, len(rows) - 1)]


def generate_entities(
    addresses: pd.DataFrame,
    town_names: Mapping[str, str],
    community_names: Mapping[str, str],
    seed: int,
    n: int,
    load_date: date,
) -> EntitySet:
    """Generate n market entities placed on the address library, deterministic for a given seed.

    ``addresses`` follows the synthetic.addresses schema (id, level, kind, town_code, community_code and the
    component columns); ``town_names`` maps town code → full name (长安镇), ``community_names`` maps community
    code → short name (新安社区). The true address is ``address_id``; ``raw_address`` is how it was typed.
    """
    if len(addresses) == 0:
        raise ValueError("cannot place entities on an empty address library")
    np_rng = np.random.default_rng([seed, 0x5EED, 1])
    rng = random.Random(f"entities-{seed}")
    cat = _catalogue()
    n_items = len(cat.scope)

    kinds = np.where(np_rng.random(n) < INDIVIDUAL_SHARE, "individual", "company")
    # Individual businesses are shops; companies are factories, traders and offices.
    shop_boost = {"shop": 3.0, "factory": 0.35, "office": 0.25, "any": 1.0}
    company_boost = {"shop": 0.45, "factory": 1.6, "office": 1.6, "any": 1.0}
    weights_ind = cat.weight * np.array([shop_boost[p] for p in cat.premises])
    weights_com = cat.weight * np.array([company_boost[p] for p in cat.premises])
    primary = np.where(
        kinds == "individual",
        np_rng.choice(n_items, size=n, p=weights_ind / weights_ind.sum()),
        np_rng.choice(n_items, size=n, p=weights_com / weights_com.sum()),
    )
    n_scopes = np_rng.choice([1, 2, 3, 4], size=n, p=[0.35, 0.30, 0.20, 0.15])
    # Secondary items are mostly unlicensed general ones of the same kind of premises, as on real licences
    # (五金制品加工；塑胶制品制造；货物进出口), with a licensed item now and then.
    secondary = np.empty((n, 3), dtype=np.int64)
    general_w = np.where(cat.needs_licence, cat.weight * 0.15, cat.weight)
    primary_premises = cat.premises[primary]
    for premises_kind in np.unique(cat.premises):
        rows = np.flatnonzero(primary_premises == premises_kind)
        if len(rows) == 0:
            continue
        same = np.isin(cat.premises, (premises_kind, "any"))
        w = np.where(same, general_w, general_w * 0.1)
        secondary[rows] = np_rng.choice(n_items, size=(len(rows), 3), p=w / w.sum())

    # Skewed to recent years: most entities are young, a long tail goes back three decades.
    age_days = np.minimum(np_rng.exponential(5.5 * 365.25, size=n), 30 * 365.25).astype(np.int64) + 1
    registered_on = [load_date - timedelta(days=int(d)) for d in age_days]
    closed = np_rng.random(n) < CLOSED_SHARE

    premises = cat.premises[primary].copy()
    to_shop = (kinds == "individual") & np.isin(premises, ("office", "any")) & (np_rng.random(n) < 0.7)
    premises[to_shop] = "shop"
    pools = _address_pools(addresses)
    address_rows = np.empty(n, dtype=np.int64)
    for name, pool in pools.items():
        mask = premises == name
        if mask.any():
            address_rows[mask] = _sample_rows(pool, int(mask.sum()), np_rng)

    component_cols = [
        c
        for c in ("full_text", "road_name", "door_no", "sub_no", "village", "lane", "park", "compound", "phase",
                  "building", "unit", "floor", "room", "stall")
        if c in addresses.columns
    ]  # fmt: skip
    placed = addresses.iloc[address_rows]
    records = placed[component_cols].to_dict("records")
    town_codes = placed["town_code"].to_numpy(dtype=object)
    community_codes = placed["community_code"].to_numpy(dtype=object)
    address_ids = placed["id"].to_numpy()

    seen: set[str] = set()
    company_names: set[str] = set()
    uscc: list[str] = []
    names: list[str] = []
    scopes: list[str] = []
    industries: list[str] = []
    needs: list[bool] = []
    raw: list[str] = []
    noise: list[str] = []
    licence_items: list[list[int]] = []
    for i in range(n):
        kind = str(kinds[i])
        code = random_uscc(kind, registered_on[i], rng)
        while code in seen:
            code = random_uscc(kind, registered_on[i], rng)
        seen.add(code)
        uscc.append(code)

        items = [int(primary[i])]
        for extra in secondary[i, : n_scopes[i] - 1]:
            if int(extra) not in items:
                items.append(int(extra))
        scope_main = str(cat.scope[items[0]])
        scopes.append(SCOPE_SEPARATOR.join(str(cat.scope[j]) for j in items))
        industries.append(str(cat.industry[items[0]]))
        licensed_items = [j for j in items if cat.needs_licence[j]]
        needs.append(bool(licensed_items))
        licence_items.append(licensed_items)

        town_name = town_names.get(town_codes[i], "")
        if kind == "company":
            name = company_name(scope_main, rng)
            length = 2
            while name in company_names:
                length = min(length + 1, 4)
                name = company_name(scope_main, rng, length)
            company_names.add(name)
        else:
            name = individual_name(scope_main, town_name, rng)
        names.append(name)

        text, applied = render_raw_address(records[i], town_name, community_names.get(community_codes[i], ""), rng)
        raw.append(text)
        noise.append("|".join(applied))

    filed_on = _annual_reports(registered_on, closed, load_date, np_rng)
    credit = _credit_classes(filed_on, registered_on, load_date, np_rng)

    entities = pd.DataFrame(
        {
            "uscc": uscc,
            "name": names,
            "kind": kinds,
            "business_scope": scopes,
            "industry": industries,
            "registered_on": registered_on,
            "status": np.where(closed, "closed", "open"),
            "address_id": address_ids,
            "raw_address": raw,
            "noise": noise,
            "annual_report_filed_on": filed_on,
            "needs_licence": np.array(needs, dtype=bool),
            "credit_class": credit,
        },
        columns=list(ENTITY_COLUMNS),
    )
    licences = _licences(uscc, registered_on, licence_items, cat, load_date, np_rng)
    return EntitySet(entities=entities, licences=licences)


def _annual_reports(
    registered_on: list[date], closed: np.ndarray, load_date: date, np_rng: np.random.Generator
) -> list[date | None]:
    """Annual reports for the previous year, filed Jan–Jun of the load year (most near the 30 June deadline)."""
    year_start = date(load_date.year, 1, 1)
    n = len(registered_on)
    files = np_rng.random(n) < np.where(closed, 0.35, 0.88)
    # sqrt(u) piles filings up towards the deadline, as procrastinating owners do.
    day = (np.sqrt(np_rng.random(n)) * 181).astype(np.int64)
    late = np_rng.random(n) < 0.04  # 补报: filed after the deadline
    late_day = 181 + (np_rng.random(n) * 180).astype(np.int64)
    out: list[date | None] = []
    for i in range(n):
        if registered_on[i] >= year_start or not files[i]:
            out.append(None)
            continue
        filed = year_start + timedelta(days=int(late_day[i] if late[i] else day[i]))
        out.append(filed if filed <= load_date else None)
    return out


def _credit_classes(
    filed_on: list[date | None], registered_on: list[date], load_date: date, np_rng: np.random.Generator
) -> np.ndarray:
    """Credit classes A–D; entities that owe an annual report drift towards C and D (经营异常)."""
    year_start = date(load_date.year, 1, 1)
    owes = np.array([f is None and r < year_start for f, r in zip(filed_on, registered_on, strict=True)])
    u = np_rng.random(len(filed_on))
    good = np.select([u < 0.27, u < 0.87, u < 0.96], ["A", "B", "C"], "D")
    bad = np.select([u < 0.05, u < 0.45, u < 0.75], ["A", "B", "C"], "D")
    return np.where(owes, bad, good)


def _licences(
    uscc: list[str],
    registered_on: list[date],
    licence_items: list[list[int]],
    cat: ScopeCatalogue,
    load_date: date,
    np_rng: np.random.Generator,
) -> pd.DataFrame:
    """About three in four entities that need a licence hold every licence their scope needs."""
    n = len(uscc)
    holds = np_rng.random(n) < LICENSED_SHARE
    delay = np_rng.integers(0, 120, size=n)
    rows: list[tuple[str, str, str, date]] = []
    for i in range(n):
        if not licence_items[i] or not holds[i]:
            continue
        issued = min(registered_on[i] + timedelta(days=int(delay[i])), load_date)
        done: set[str] = set()
        for j in licence_items[i]:
            licence = str(cat.licence[j])
            if licence in done:
                continue
            done.add(licence)
            rows.append((uscc[i], licence, "东莞市" + str(cat.department[j]), issued))
    return pd.DataFrame(rows, columns=list(LICENCE_COLUMNS))
