"""synthetic.clues: a year of supervision clues following address density, with planted hotspots as exact truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

TIMEZONE = "Asia/Shanghai"
WINDOW_DAYS = 365

# The 17 clue industries of Dongguan market supervision, with the share of background clues each draws.
CLUE_INDUSTRIES: dict[str, float] = {
    "餐饮服务": 0.20,
    "食品销售": 0.15,
    "食品小作坊": 0.05,
    "烟草制品零售": 0.06,
    "药品零售": 0.04,
    "医疗诊所": 0.03,
    "美容美发": 0.07,
    "互联网上网服务": 0.02,
    "歌舞娱乐": 0.02,
    "旅馆住宿": 0.04,
    "废旧物资回收": 0.06,
    "机动车维修": 0.05,
    "成品油零售": 0.01,
    "危险化学品经营": 0.02,
    "校外培训": 0.05,
    "出版物零售": 0.02,
    "五金塑胶加工作坊": 0.11,
}
# Industries that sit in industrial parks draw their background clues from industrial addresses when known.
INDUSTRIAL_INDUSTRIES = frozenset({"五金塑胶加工作坊", "危险化学品经营", "废旧物资回收"})

HOTSPOT_KINDS = ("persistent", "emerging", "new", "fading")
_KIND_SHARES = np.array([0.35, 0.25, 0.25, 0.15])
RADIUS_RANGE_M = (150.0, 400.0)
INTENSITY_RANGE = (4.0, 8.0)  # clue intensity inside a hotspot over the local background, while it is active
LOCAL_REACH_M = 600.0  # how far around a hotspot the local background density is measured
MIN_HOTSPOT_CLUES = 10  # enough to stand out even where the background is thin
JITTER_M = 40.0  # background clues fall near, not exactly on, an address
SEVERE_SHARE = 0.10
UNLICENSED_SHARE = 0.18
HOTLINE_SHARE = 0.4

CLUE_COLUMNS = (
    "id", "x", "y", "industry", "reported_at", "severity", "source", "description", "kind", "hotspot_id", "grid_code",
)  # fmt: skip
# intensity is the drawn target; expected_background is the background expected in the disc while active, so
# (n_clues + expected_background) / expected_background is the realised ratio (higher where MIN_HOTSPOT_CLUES binds).
HOTSPOT_COLUMNS = (
    "id", "x", "y", "radius_m", "industry", "kind", "start_date", "end_date", "intensity", "expected_background",
    "n_clues",
)  # fmt: skip

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "餐饮服务": ("后厨卫生条件差", "餐具未消毒", "油烟直排扰民", "食材过期仍在使用", "从业人员无健康证"),
    "食品销售": ("销售过期食品", "食品标签不全", "冷藏设施不达标", "散装食品无标识"),
    "食品小作坊": ("作坊环境脏乱", "无登记擅自生产", "原料来源不明", "添加剂使用不规范"),
    "烟草制品零售": ("向未成年人售烟", "销售假冒卷烟", "无证销售卷烟"),
    "药品零售": ("处方药无处方销售", "执业药师不在岗", "药品储存不当"),
    "医疗诊所": ("超范围执业", "非医师行医", "医疗废物处置不当"),
    "美容美发": ("违规开展医疗美容", "预付卡消费纠纷", "卫生条件差"),
    "互联网上网服务": ("接纳未成年人上网", "未核验身份证件", "超时营业"),
    "歌舞娱乐": ("噪音扰民", "超时营业", "消防通道堵塞"),
    "旅馆住宿": ("未登记住客身份", "消防设施缺失", "卫生条件差"),
    "废旧物资回收": ("占道堆放废品", "收购来源不明金属", "露天焚烧废料"),
    "机动车维修": ("占道维修车辆", "废机油随意倾倒", "喷漆废气扰民"),
    "成品油零售": ("流动加油车售油", "油品质量可疑", "计量不准"),
    "危险化学品经营": ("仓库违规存放化学品", "无证储存危险化学品", "安全标识缺失"),
    "校外培训": ("违规开展学科培训", "收费不退", "场地消防不达标"),
    "出版物零售": ("销售盗版图书", "销售非法出版物", "无证经营出版物"),
    "五金塑胶加工作坊": ("作坊粉尘噪音扰民", "废水直排", "出租屋内违规生产", "消防隐患突出"),
}
_UNLICENSED_TEMPLATES = ("无证经营", "未办理许可擅自经营", "疑似无证{word}", "群众反映无证{word}")


@dataclass(frozen=True)
class ClueSet:
    """Generated clues and the planted hotspots that explain part of them."""

    clues: pd.DataFrame
    hotspots: pd.DataFrame


class _City:
    """Point-in-city tests and grid lookup over the grid polygons (metric CRS)."""

    def __init__(self, grids: gpd.GeoDataFrame) -> None:
        self.codes = grids["code"].to_numpy(dtype=object)
        self.tree = shapely.STRtree(np.asarray(grids.geometry.values))

    def grid_index(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Position of the grid holding each point, -1 outside the city."""
        out = np.full(len(x_m), -1, dtype=np.int64)
        if len(x_m) == 0:
            return out
        hits = self.tree.query(shapely.points(x_m, y_m), predicate="intersects")
        # Reverse so the first hit wins for points on a shared boundary.
        out[hits[0][::-1]] = hits[1][::-1]
        return out


def _allocate(total: int, shares: np.ndarray) -> np.ndarray:
    exact = shares / shares.sum() * total
    base: np.ndarray = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return base


def _near_addresses(
    city: _City, xy: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points near randomly drawn address points (so they follow address density), all inside the city."""
    xs, ys, grid = np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    for _ in range(100):
        need = n - len(xs)
        if need <= 0:
            break
        picks = xy[rng.integers(0, len(xy), size=need + need // 10 + 8)]
        cx = picks[:, 0] + rng.normal(0, JITTER_M, len(picks))
        cy = picks[:, 1] + rng.normal(0, JITTER_M, len(picks))
        g = city.grid_index(cx, cy)
        keep = g >= 0
        xs, ys, grid = np.concatenate([xs, cx[keep]]), np.concatenate([ys, cy[keep]]), np.concatenate([grid, g[keep]])
    if len(xs) < n:
        raise ValueError("address points lie outside the grids; cannot place clues inside the city")
    return xs[:n], ys[:n], grid[:n]


def _in_disc(
    city: _City, cx: float, cy: float, radius_m: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points uniform in a disc, keeping only those inside the city."""
    xs, ys, grid = np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    for _ in range(200):
        need = n - len(xs)
        if need <= 0:
            break
        m = 2 * need + 8
        r = radius_m * np.sqrt(rng.random(m))
        theta = rng.random(m) * 2 * np.pi
        px, py = cx + r * np.cos(theta), cy + r * np.sin(theta)
        g = city.grid_index(px, py)
        keep = g >= 0
        xs, ys, grid = np.concatenate([xs, px[keep]]), np.concatenate([ys, py[keep]]), np.concatenate([grid, g[keep]])
    if len(xs) < n:
        raise ValueError("a hotspot disc lies outside the city")
    return xs[:n], ys[:n], grid[:n]


def _hotspot_window(kind: str, load_date: date) -> tuple[date, date]:
    """First and last active day of a hotspot of this kind (inclusive)."""
    last = load_date - timedelta(days=1)
    if kind == "emerging":
        return load_date - timedelta(days=90), last
    if kind == "new":
        return load_date - timedelta(days=30), last
    if kind == "fading":
        return load_date - timedelta(days=WINDOW_DAYS), load_date - timedelta(days=151)
    return load_date - timedelta(days=WINDOW_DAYS), last


def _hotspot_days(kind: str, start: date, end: date, n: int, rng: np.random.Generator) -> np.ndarray:
    """Day offsets from start: flat for persistent and new, rising for emerging, falling for fading."""
    span = (end - start).days + 1
    u = rng.random(n)
    if kind == "emerging":
        frac = np.sqrt(u)  # density grows linearly over the window
    elif kind == "fading":
        frac = 1 - np.sqrt(u)
    else:
        frac = u
    return np.minimum((frac * span).astype(np.int64), span - 1)


def _seconds_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    # Reports come in office and shop hours mostly; a few at night (noise, late karaoke).
    hours = np.where(rng.random(n) < 0.9, rng.normal(14.0, 3.2, n), rng.uniform(0, 24, n)) % 24
    return (hours * 3600).astype(np.int64)


def _timestamps(
    load_date: date, day_offsets_from_window_start: np.ndarray, rng: np.random.Generator
) -> pd.DatetimeIndex:
    start = pd.Timestamp(load_date - timedelta(days=WINDOW_DAYS), tz=TIMEZONE)
    seconds = day_offsets_from_window_start * 86_400 + _seconds_of_day(len(day_offsets_from_window_start), rng)
    return pd.DatetimeIndex(start + pd.to_timedelta(seconds, unit="s"))


def _describe(industries: np.ndarray, kinds: np.ndarray, rng: np.random.Generator) -> list[str]:
    out: list[str] = []
    picks = rng.random(len(industries))
    for industry, kind, u in zip(industries, kinds, picks, strict=True):
        if kind == "unlicensed":
            template = _UNLICENSED_TEMPLATES[int(u * len(_UNLICENSED_TEMPLATES))]
            out.append(template.format(word=industry))
        else:
            options = _DESCRIPTIONS[str(industry)]
            out.append(options[int(u * len(options))])
    return out


def _pick_centres(
    city: _City,
    xy: np.ndarray,
    radii: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Hotspot centres on populated places, inside the city and apart from each other."""
    centres: list[tuple[float, float]] = []
    for radius in radii:
        chosen: tuple[float, float] | None = None
        for attempt in range(2000):
            x, y = xy[int(rng.integers(0, len(xy)))]
            if city.grid_index(np.array([x]), np.array([y]))[0] < 0:
                continue
            # Keep discs well apart so each hotspot is its own cluster; relax if the city is small.
            gap = 1000.0 if attempt < 1000 else 0.0
            if all(np.hypot(x - cx, y - cy) > radius + RADIUS_RANGE_M[1] + gap for cx, cy in centres):
                chosen = (float(x), float(y))
                break
        if chosen is None:
            raise ValueError("cannot place the hotspots apart from each other in this city")
        centres.append(chosen)
    return np.array(centres, dtype=float).reshape(-1, 2)


def generate_clues(
    grids: gpd.GeoDataFrame,
    addresses: pd.DataFrame,
    seed: int,
    n: int,
    load_date: date,
    n_hotspots: int,
) -> ClueSet:
    """Generate n clues over the 12 months before load_date, n_hotspots of them planted hotspots (exact truth).

    ``grids`` is in the metric CRS with columns code, community_code, town_code, geometry; ``addresses`` has metric
    x, y (and optionally kind, to put industrial-trade clues near industrial addresses). Background clues follow
    address density; each hotspot is a disc of 150–400 m where one industry's clues run at 4–8 times the local
    background while the hotspot is active. ``clues.hotspot_id`` links planted clues to their hotspot.
    """
    if len(grids) == 0 or len(addresses) == 0:
        raise ValueError("need grids and addresses to place clues")
    rng = np.random.default_rng([seed, 0xC1, 0xE5])
    city = _City(grids)
    xy = addresses[["x", "y"]].to_numpy(dtype=float)
    industries = np.array(list(CLUE_INDUSTRIES), dtype=object)
    shares = np.array(list(CLUE_INDUSTRIES.values()))

    # Background first, at full size; hotspot sizes are set against it and it is trimmed afterwards.
    bg_industry = industries[rng.choice(len(industries), size=n, p=shares / shares.sum())]
    bg_x, bg_y, bg_grid = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    industrial_xy = xy
    if "kind" in addresses.columns:
        is_industrial = addresses["kind"].to_numpy(dtype=object) == "industrial"
        if is_industrial.any():
            industrial_xy = xy[is_industrial]
    in_parks = np.isin(bg_industry, list(INDUSTRIAL_INDUSTRIES)) & (rng.random(n) < 0.7)
    for mask, source in ((in_parks, industrial_xy), (~in_parks, xy)):
        k = int(mask.sum())
        if k:
            bg_x[mask], bg_y[mask], bg_grid[mask] = _near_addresses(city, source, k, rng)
    bg_day = rng.integers(0, WINDOW_DAYS, size=n)

    n_hot = max(int(n_hotspots), 0)
    radii = rng.uniform(*RADIUS_RANGE_M, size=n_hot)
    kinds = np.repeat(np.array(HOTSPOT_KINDS, dtype=object), _allocate(n_hot, _KIND_SHARES))
    rng.shuffle(kinds)
    centres = _pick_centres(city, xy, radii, rng)
    # Each hotspot gets its own industry while there are industries left, weighted towards the common ones.
    hot_industry = industries[
        rng.choice(len(industries), size=n_hot, replace=n_hot > len(industries), p=shares / shares.sum())
    ]
    intensity = rng.uniform(*INTENSITY_RANGE, size=n_hot)
    windows = [_hotspot_window(str(k), load_date) for k in kinds]

    tree = cKDTree(np.column_stack([bg_x, bg_y])) if n else None
    expected_bg = np.zeros(n_hot)
    for h in range(n_hot):
        # Local background from a wider neighbourhood: a disc's own few background clues are too noisy a base.
        reach = radii[h] + LOCAL_REACH_M
        around = len(tree.query_ball_point(centres[h], reach)) if tree is not None else 0
        span = (windows[h][1] - windows[h][0]).days + 1
        expected_bg[h] = around * (radii[h] / reach) ** 2 * span / WINDOW_DAYS
    extra = np.maximum(MIN_HOTSPOT_CLUES, np.round((intensity - 1) * expected_bg)).astype(np.int64)
    # Trimming the background to make room lowers the local background too; scale once to stay on target.
    keep_share = max(n - int(extra.sum()), 0) / n if n else 0.0
    extra = np.maximum(MIN_HOTSPOT_CLUES, np.round((intensity - 1) * expected_bg * keep_share)).astype(np.int64)
    budget = n // 2  # never let planted clues outnumber the background
    if extra.sum() > budget and n_hot:
        extra = np.floor(extra * budget / extra.sum()).astype(np.int64)
    n_bg = n - int(extra.sum())

    parts: list[pd.DataFrame] = []
    bg_kind = np.where(rng.random(n) < UNLICENSED_SHARE, "unlicensed", "clue")
    parts.append(
        pd.DataFrame(
            {
                "x": bg_x[:n_bg],
                "y": bg_y[:n_bg],
                "grid": bg_grid[:n_bg],
                "industry": bg_industry[:n_bg],
                "day": bg_day[:n_bg],
                "kind": bg_kind[:n_bg],
                "hotspot_id": pd.array([pd.NA] * n_bg, dtype="Int64"),
            }
        )
    )
    hotspot_rows: list[dict[str, object]] = []
    window_start = load_date - timedelta(days=WINDOW_DAYS)
    for h in range(n_hot):
        count = int(extra[h])
        hx, hy, hgrid = _in_disc(city, centres[h, 0], centres[h, 1], radii[h], count, rng)
        start, end = windows[h]
        days = _hotspot_days(str(kinds[h]), start, end, count, rng) + (start - window_start).days
        parts.append(
            pd.DataFrame(
                {
                    "x": hx,
                    "y": hy,
                    "grid": hgrid,
                    "industry": hot_industry[h],
                    "day": days,
                    # A cluster is often a street of unlicensed shops of one trade.
                    "kind": np.where(rng.random(count) < 0.4, "unlicensed", "clue"),
                    "hotspot_id": pd.array([h + 1] * count, dtype="Int64"),
                }
            )
        )
        hotspot_rows.append(
            {
                "id": h + 1,
                "x": float(centres[h, 0]),
                "y": float(centres[h, 1]),
                "radius_m": float(radii[h]),
                "industry": str(hot_industry[h]),
                "kind": str(kinds[h]),
                "start_date": start,
                "end_date": end,
                "intensity": float(intensity[h]),
                "expected_background": float(expected_bg[h] * keep_share),
                "n_clues": count,
            }
        )

    clues = pd.concat(parts, ignore_index=True)
    total = len(clues)
    clues["reported_at"] = _timestamps(load_date, clues["day"].to_numpy(dtype=np.int64), rng)
    clues["severity"] = np.where(rng.random(total) < SEVERE_SHARE, "severe", "normal")
    clues["source"] = np.where(rng.random(total) < HOTLINE_SHARE, "hotline", "field")
    clues["description"] = _describe(clues["industry"].to_numpy(), clues["kind"].to_numpy(), rng)
    clues["grid_code"] = city.codes[clues["grid"].to_numpy(dtype=np.int64)]
    clues = clues.sort_values(["reported_at", "x"], kind="stable").reset_index(drop=True)
    clues["id"] = np.arange(1, total + 1, dtype=np.int64)
    hotspots = pd.DataFrame(hotspot_rows, columns=list(HOTSPOT_COLUMNS))
    return ClueSet(clues=clues[list(CLUE_COLUMNS)], hotspots=hotspots)
