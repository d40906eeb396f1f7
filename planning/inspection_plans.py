"""planning.inspection_plans: double-random plans — fix the candidates and publish the commitment, draw, cancel, show.

A plan is created in one transaction: its items, area and ratios are checked, the target directory gives the
candidates per stratum (item × credit class, under an opaque public id), and the plan stores the secret server seed,
its commitment and the SHA-256 of the canonical candidate list. The draw, with the public value announced in
advance, reveals the seed, selects per stratum (planning.draw), forms one visit per drawn entity carrying every
drawn item (进一次门、查多项事) and matches teams of inspectors from the same seed (planning.inspection_match).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.validation import explain_validity
from sqlalchemy import Connection, text

from gis import clock
from planning import draw as drawing
from planning import inspection_repository as repo
from planning.directory_service import target_counts, targets
from planning.errors import InvalidPlan, NothingToPlan, PlanNotFound, PlanState
from planning.inspection_match import UNMATCHED_REASONS_ZH, InspectorInfo, VisitNeed, match
from planning.inspection_results import published_results, recent_visits
from planning.ratios import CLASSES, ItemRef, effective_ratios
from supervision.calendar import SHANGHAI, default_calendar, today
from supervision.errors import OutOfScope
from supervision.routing import default_router
from supervision.scope import Scope

DEFAULT_LOAD_CAP = 20
MAX_LOAD_CAP = 200
DEFAULT_PUBLISH_DAYS = 20
MAX_PUBLISH_DAYS = 60
MAX_POLYGON_VERTICES = 2_000
MAX_TEXT_CHARS = 200
# A polygon drawn on the map along the city's edge may stray a little outside it; more than this is refused.
OUTSIDE_TOLERANCE_M2 = 10_000.0
STRATUM_TOKEN_BYTES = 4
# "Now" as typed into a form is already past when it arrives: a public value announced this little before the
# commitment is taken as announced with it (the value cannot have been known when the request was sent).
PUBLIC_VALUE_GRACE = timedelta(seconds=60)
# A plan whose least possible draw is more than this many times what its inspectors can make is refused at creation
# (before the commitment: refusing a draw once its public value is known would let a result be chosen).
OVER_CAPACITY_FACTOR = 2
# How far ahead a public value may be announced, and visits may start: a year and a day (a typo like 9999 is refused).
MAX_DAYS_AHEAD = 366
# The label of the key that seals a server seed at rest (docs/INSPECTIONS.md §1).
SEAL_LABEL = b"inspection-seed|"


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is asked for: departments, items (default: all theirs), one area, ratios, the public value."""

    departments: tuple[str, ...]
    items: tuple[str, ...] | None = None
    towns: tuple[str, ...] | None = None
    grids: tuple[str, ...] | None = None
    polygon: Mapping[str, Any] | None = None
    ratios: Mapping[str, Decimal] | None = None
    item_ratios: Mapping[str, Mapping[str, Decimal]] | None = None
    public_value_source: str = ""
    public_value_at: datetime | None = None
    title: str | None = None
    load_cap: int = DEFAULT_LOAD_CAP
    publish_days: int = DEFAULT_PUBLISH_DAYS
    visit_date: date | None = None


@dataclass(frozen=True)
class Area:
    """A checked area: the one filter the target directory takes, its towns, and what is stored with the plan."""

    towns: tuple[str, ...] | None
    grids: tuple[str, ...] | None
    polygon_wkt: str | None
    town_codes: tuple[str, ...]
    stored: dict[str, Any]


@dataclass(frozen=True)
class PreviewStratum:
    """One stratum as the preview counts it (class shown: the preview is for the planner only)."""

    item_code: str
    item_name: str
    department: str
    credit_class: str
    size: int
    ratio: Decimal
    n: int


@dataclass(frozen=True)
class Preview:
    """The strata of an area before anything is created: their sizes, ratios and the n each would draw."""

    items: tuple[str, ...]
    town_codes: tuple[str, ...]
    strata: tuple[PreviewStratum, ...]
    candidate_count: int
    selected_count: int


@dataclass(frozen=True)
class Plan:
    """A plan as its writes leave it: id, status and what is published about it."""

    id: int
    status: str
    commitment: str
    candidates_sha256: str
    candidate_count: int
    strata: int
    visits: int = 0
    teams: int = 0
    unmatched: int = 0
    seed: str | None = None
    # Seconds each stage of a draw took (read and check the candidates, select, visits and teams, store).
    timings: Mapping[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ the sealed seed


def seal_seed(server_seed: bytes, commitment: str, secret_key: str) -> bytes:
    """The server seed XOR HMAC-SHA256(app secret, "inspection-seed|" + commitment): what is stored until the draw.

    Whoever reads the database without the app's secret cannot recover the seed and try public values offline;
    sealing twice unseals (XOR), so `seal_seed` also opens a sealed seed.
    """
    pad = hmac.new(secret_key.encode("utf-8"), SEAL_LABEL + commitment.encode("ascii"), hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(server_seed, pad, strict=True))


def _unsealed_seed(conn: Connection, plan: Mapping[str, Any], secret_key: str) -> bytes:
    """The plan's server seed opened with the app secret; PlanState seed_unavailable when it does not match the
    commitment (the secret was rotated since the plan was made: nothing is drawn)."""
    server_seed = seal_seed(repo.server_seed(conn, plan["id"]), plan["commitment"], secret_key)
    if drawing.commitment_of(server_seed) != plan["commitment"]:
        raise PlanState(
            "无法取出与承诺相符的服务器种子（系统密钥可能已更换），本计划不能摇号；请撤销后重新建立计划",
            reason="seed_unavailable",
        )
    return server_seed


# ------------------------------------------------------------------------------------------------ scope checks


def _may_write(scope: Scope, departments: Sequence[str]) -> None:
    """The command centre and admins plan anything; an officer only plans of exactly their own department."""
    if scope.kind == "city":
        return
    if scope.kind == "department" and list(departments) == [scope.code]:
        return
    raise OutOfScope("只能为本部门单独建立、摇号或撤销抽查计划（多部门联合抽查由指挥中心办理）")


def _may_read(scope: Scope, plan: Mapping[str, Any]) -> bool:
    """Who sees a plan: the city; an officer plans carrying their department; a town leader plans touching the town."""
    if scope.kind == "city":
        return True
    if scope.kind == "department":
        return scope.code in plan["department_codes"]
    if scope.kind == "town":
        return scope.code in plan["town_codes"]
    return False


def _plan_in_scope(conn: Connection, plan_id: int, scope: Scope, *, for_update: bool = False) -> dict[str, Any]:
    """The plan row, PlanNotFound (404) when unknown, OutOfScope (403) when the caller may not see it."""
    row = repo.plan(conn, plan_id, for_update=for_update)
    if row is None:
        raise PlanNotFound(f"没有编号为 {plan_id} 的抽查计划", reason="not_found")
    if not _may_read(scope, row):
        raise OutOfScope("该抽查计划不在本账号范围内")
    return row


# ------------------------------------------------------------------------------------------------ request checks


def _text(value: str | None, what: str, *, required: bool) -> str:
    """A one-line text field: trimmed for storage, refused when required and empty, too long or with control chars."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidPlan(f"请填写{what}", reason="invalid_request")
    if len(value) > MAX_TEXT_CHARS or any(ord(c) < 32 for c in value):
        raise InvalidPlan(f"{what}不能超过 {MAX_TEXT_CHARS} 个字符，也不能含控制字符", reason="invalid_request")
    return value


def _departments(departments: Sequence[str]) -> tuple[str, ...]:
    """The request's departments, known and distinct, sorted."""
    if not departments:
        raise InvalidPlan("请至少选择一个部门", reason="no_departments")
    known = {d.code for d in default_router().departments()}
    unknown = sorted(set(departments) - known)
    if unknown:
        raise InvalidPlan(f"未知部门：{'、'.join(unknown)}", reason="unknown_department")
    return tuple(sorted(set(departments)))


def _items(conn: Connection, departments: Sequence[str], codes: Sequence[str] | None) -> list[dict[str, Any]]:
    """The plan's items: those named (each active and of one of the departments) or every active item of them."""
    if codes is None or len(codes) == 0:
        rows = [r for r in repo.items(conn, departments) if r["active"]]
        if not rows:
            raise NothingToPlan("所选部门没有在用的抽查事项", reason="no_items")
        return rows
    found = repo.items_by_code(conn, sorted(set(codes)))
    unknown = sorted(set(codes) - found.keys())
    if unknown:
        raise InvalidPlan(f"未知抽查事项：{'、'.join(unknown)}", reason="unknown_item")
    foreign = sorted(c for c, r in found.items() if r["department_code"] not in departments)
    if foreign:
        raise InvalidPlan(f"抽查事项不属于所选部门：{'、'.join(foreign)}", reason="item_of_other_department")
    inactive = sorted(c for c, r in found.items() if not r["active"])
    if inactive:
        raise InvalidPlan(f"抽查事项已停用：{'、'.join(inactive)}", reason="inactive_item")
    return [found[c] for c in sorted(found)]


def _polygon_wkt(polygon: Mapping[str, Any]) -> str:
    """A GeoJSON Polygon (lon/lat) checked: its type, vertex count, coordinates and validity; its WKT."""
    if polygon.get("type") != "Polygon":
        raise InvalidPlan("区域多边形应为 GeoJSON Polygon（经纬度）", reason="invalid_polygon")
    try:
        geom = shape(polygon)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, ShapelyError) as exc:
        raise InvalidPlan("区域多边形的坐标无法读取（应为 [[[经度, 纬度], …]]）", reason="invalid_polygon") from exc
    vertices = int(shapely.get_num_coordinates(geom))
    if vertices > MAX_POLYGON_VERTICES:
        raise InvalidPlan(
            f"区域多边形最多 {MAX_POLYGON_VERTICES} 个顶点（现有 {vertices} 个）", reason="invalid_polygon"
        )
    distinct = {tuple(xy) for xy in shapely.get_coordinates(geom.exterior).tolist()}
    if geom.is_empty or len(distinct) < 3:
        raise InvalidPlan("区域多边形至少需要三个不同的顶点", reason="invalid_polygon")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise InvalidPlan("区域多边形的坐标应为经度、纬度（WGS84）", reason="invalid_polygon")
    # Validity before area: a bow-tie's two lobes cancel to zero area, yet what is wrong with it is the crossing.
    if not geom.is_valid:
        raise InvalidPlan(
            f"区域多边形自相交或无效，请重新画出（边线不能交叉）：{explain_validity(geom)}", reason="invalid_polygon"
        )
    if geom.area == 0:
        raise InvalidPlan("区域多边形至少需要三个不在一条直线上的顶点", reason="invalid_polygon")
    return str(geom.wkt)


def _area(conn: Connection, request: PlanRequest) -> Area:
    """Exactly one of towns, grids or a polygon, each checked against the city."""
    given = [k for k in ("towns", "grids", "polygon") if getattr(request, k)]
    if len(given) != 1:
        raise InvalidPlan("请只选择一种抽查区域：镇街、网格或在地图上画出的多边形", reason="invalid_area")
    if request.towns:
        towns = tuple(sorted(set(request.towns)))
        unknown = sorted(set(towns) - repo.known_towns(conn, towns))
        if unknown:
            raise InvalidPlan(f"未知镇街：{'、'.join(unknown)}", reason="unknown_town")
        return Area(towns, None, None, towns, {"towns": list(towns)})
    if request.grids:
        grids = tuple(sorted(set(request.grids)))
        found = repo.active_grids(conn, grids)
        unknown = sorted(set(grids) - found.keys())
        if unknown:
            raise InvalidPlan(f"现行网格中没有：{'、'.join(unknown)}", reason="unknown_grid")
        return Area(None, grids, None, tuple(sorted(set(found.values()))), {"grids": list(grids)})
    assert request.polygon is not None
    wkt = _polygon_wkt(request.polygon)
    touched, outside_m2 = repo.polygon_towns(conn, wkt)
    if outside_m2 <= OUTSIDE_TOLERANCE_M2 and touched:
        return Area(None, None, wkt, tuple(touched), {"polygon": dict(request.polygon)})
    # A polygon drawn across the city's edge is cut to the city (and the answer says so); one wholly outside is refused.
    clipped = _clipped_to_city(conn, wkt)
    if clipped is None:
        raise InvalidPlan("区域多边形完全在本市范围之外", reason="outside_city")
    clipped_wkt, clipped_geojson = clipped
    touched, _ = repo.polygon_towns(conn, clipped_wkt)
    stored = {
        "polygon": clipped_geojson,
        "drawn_polygon": dict(request.polygon),
        "clipped_to_city": True,
        "outside_m2": round(outside_m2),
        "note": f"所画多边形有约 {outside_m2 / 1e6:.2f} 平方公里在本市范围之外，已按市界裁剪",
    }
    return Area(None, None, clipped_wkt, tuple(touched), stored)


def _clipped_to_city(conn: Connection, wkt: str) -> tuple[str, dict[str, Any]] | None:
    """The polygon cut to the towns it touches (WKT and GeoJSON), or None when nothing of it lies inside the city."""
    row = conn.execute(
        text(
            """
            WITH p AS (SELECT ST_GeomFromText(:wkt, 4326) AS g),
                 city AS (SELECT ST_Union(town.geom) AS g FROM town, p WHERE ST_Intersects(town.geom, p.g)),
                 c AS (SELECT ST_CollectionExtract(ST_Intersection(p.g, city.g), 3) AS g FROM p, city
                       WHERE city.g IS NOT NULL)
            SELECT ST_AsText(g) AS wkt, ST_AsGeoJSON(g, 7) AS geojson FROM c WHERE NOT ST_IsEmpty(g) AND ST_Area(g) > 0
            """
        ),
        {"wkt": wkt},
    ).one_or_none()
    if row is None:
        return None
    return str(row.wkt), json.loads(row.geojson)


def _ratios(
    conn: Connection, request: PlanRequest, items: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], Decimal]:
    """The ratio of every (item, class): the request's over the city's settings over the rules (planning.ratios)."""
    refs = [ItemRef(code=i["code"], key=bool(i["key"])) for i in items]
    return effective_ratios(conn, refs, by_class=request.ratios, by_item=request.item_ratios)


def _visit_date(request: PlanRequest, public_value_at: datetime) -> date:
    """The first day of visits: given (not before the public value's day) or the next working day after it."""
    announced = public_value_at.astimezone(SHANGHAI).date()
    if request.visit_date is None:
        return default_calendar().add_working_days(announced, 1)
    today_ = today()
    if not today_ <= request.visit_date <= today_ + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidPlan(
            f"检查开始日期应在今天到 {MAX_DAYS_AHEAD} 天之后之间（请核对年份）", reason="invalid_visit_date"
        )
    if request.visit_date < announced:
        raise InvalidPlan("检查开始日期不能早于公开随机数公布之日", reason="invalid_visit_date")
    return request.visit_date


def _counts_of(
    conn: Connection, items: Sequence[Mapping[str, Any]], area: Area, ratios: Mapping[tuple[str, str], Decimal]
) -> list[PreviewStratum]:
    """The non-empty strata of an area with their sizes, ratios and n (from the target directory's counts)."""
    counts = target_counts(
        conn, [i["code"] for i in items], towns=area.towns, grids=area.grids, polygon_wkt=area.polygon_wkt
    )
    out = []
    for item in items:
        for cls in CLASSES:
            size = counts.get((item["code"], cls), 0)
            if size:
                ratio = ratios[(item["code"], cls)]
                out.append(
                    PreviewStratum(
                        item["code"],
                        item["name"],
                        item["department_code"],
                        cls,
                        size,
                        ratio,
                        drawing.sample_size(ratio, size),
                    )
                )
    return out


# ------------------------------------------------------------------------------------------------ the services


def preview(conn: Connection, request: PlanRequest, *, scope: Scope) -> Preview:
    """The strata an area would hold (sizes, ratios, n) without creating anything: the planning page's counts."""
    departments = _departments(request.departments)
    _may_write(scope, departments)
    items = _items(conn, departments, request.items)
    area = _area(conn, request)
    ratios = _ratios(conn, request, items)
    strata = _counts_of(conn, items, area, ratios)
    return Preview(
        items=tuple(i["code"] for i in items),
        town_codes=area.town_codes,
        strata=tuple(strata),
        candidate_count=sum(s.size for s in strata),
        selected_count=sum(s.n for s in strata),
    )


def create_plan(conn: Connection, request: PlanRequest, *, actor: str, scope: Scope, secret_key: str) -> Plan:
    """Fix the candidates per stratum and publish the commitment (status committed); one transaction, the caller's."""
    departments = _departments(request.departments)
    _may_write(scope, departments)
    items = _items(conn, departments, request.items)
    area = _area(conn, request)
    ratios = _ratios(conn, request, items)
    source = _text(request.public_value_source, "公开随机数的来源（如某期彩票开奖号码）", required=True)
    now = clock.now()
    # None: the value is announced on the spot, at the draw, which can only come after this commitment.
    public_value_at = request.public_value_at or now
    if public_value_at.tzinfo is None:
        raise InvalidPlan("公开随机数的公布时间须带时区（如 +08:00）", reason="invalid_request")
    if public_value_at < now - PUBLIC_VALUE_GRACE:
        raise InvalidPlan("公开随机数的公布时间不能早于现在：承诺须在随机数产生之前公布", reason="public_value_in_past")
    if public_value_at > now + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidPlan(
            f"公开随机数的公布时间不能晚于 {MAX_DAYS_AHEAD} 天之后（请核对年份）", reason="public_value_too_far"
        )
    if not 1 <= request.load_cap <= MAX_LOAD_CAP:
        raise InvalidPlan(f"每名执法人员的检查户数上限应在 1–{MAX_LOAD_CAP} 之间", reason="invalid_load_cap")
    if not 0 <= request.publish_days <= MAX_PUBLISH_DAYS:
        raise InvalidPlan(f"结果公示期限应在 0–{MAX_PUBLISH_DAYS} 个工作日之间", reason="invalid_publish_days")
    visit_date = _visit_date(request, public_value_at)
    names = {d.code: d.name for d in default_router().departments()}
    title = _text(request.title, "计划名称", required=False) or (
        f"{'、'.join(names[d] for d in departments)}双随机抽查（{now.astimezone(SHANGHAI):%Y-%m-%d}）"
    )

    rows = targets(
        conn,
        item_codes=[i["code"] for i in items],
        towns=area.towns,
        grids=area.grids,
        polygon_wkt=area.polygon_wkt,
    )
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item_code, uscc, credit_class, _town, _grid in rows:
        members[(item_code, credit_class)].append(uscc)
    if not members:
        raise NothingToPlan("所选区域没有适用这些抽查事项的市场主体", reason="no_candidates")

    strata: list[dict[str, Any]] = []
    candidates: list[tuple[str, str]] = []
    used: set[str] = set()
    for (item_code, credit_class), usccs in sorted(members.items()):
        stratum_id = f"{item_code}/{secrets.token_hex(STRATUM_TOKEN_BYTES)}"
        while stratum_id in used:  # 2^32 tokens: a clash is rare, but ids must be unique within a plan
            stratum_id = f"{item_code}/{secrets.token_hex(STRATUM_TOKEN_BYTES)}"
        used.add(stratum_id)
        ratio = ratios[(item_code, credit_class)]
        distinct = sorted(set(usccs))
        strata.append(
            {
                "stratum_id": stratum_id,
                "item_code": item_code,
                "credit_class": credit_class,
                "ratio": ratio,
                "size": len(distinct),
                "n": drawing.sample_size(ratio, len(distinct)),
            }
        )
        candidates.extend((stratum_id, u) for u in distinct)

    _within_capacity(conn, departments, strata, request.load_cap)
    server_seed = drawing.new_server_seed()
    commitment = drawing.commitment_of(server_seed)
    digest = drawing.candidates_sha256(candidates)
    plan_id = repo.insert_plan(
        conn,
        {
            "title": title,
            "department_codes": list(departments),
            "item_codes": [i["code"] for i in items],
            "area": json.dumps(area.stored, ensure_ascii=False),
            "area_wkt": area.polygon_wkt,
            "town_codes": list(area.town_codes),
            # Sealed with the app secret until the draw (a reader of the database cannot steer the draw with it).
            "server_seed": seal_seed(server_seed, commitment, secret_key),
            "commitment": commitment,
            "candidates_sha256": digest,
            "candidate_count": len(candidates),
            "public_value_source": source,
            "public_value_at": public_value_at,
            "load_cap": request.load_cap,
            "publish_days": request.publish_days,
            "visit_date": visit_date,
            "created_by": actor,
            "created_at": now,
        },
    )
    repo.insert_strata(conn, plan_id, strata)
    repo.copy_candidates(conn, plan_id, candidates)
    return Plan(
        id=plan_id,
        status="committed",
        commitment=commitment,
        candidates_sha256=digest,
        candidate_count=len(candidates),
        strata=len(strata),
    )


def _within_capacity(
    conn: Connection, departments: Sequence[str], strata: Sequence[Mapping[str, Any]], load_cap: int
) -> None:
    """Refuse (422 over_capacity, before any commitment) a plan whose draw would leave most visits without a team.

    At least as many entities are drawn as the largest item's n summed over its classes; the departments' active
    inspectors, in teams of two each capped by its lower member's cap, make at most the sum of every second cap in
    descending order. When the least possible draw is more than OVER_CAPACITY_FACTOR times that, the planner is told
    the load cap that would do (or to narrow the area or lower the ratios) instead of a draw that matches few.
    """
    per_item: dict[str, int] = defaultdict(int)
    for s in strata:
        per_item[s["item_code"]] += int(s["n"])
    least_visits = max(per_item.values(), default=0)
    people = repo.inspectors(conn, departments)
    caps = sorted((int(p["load_cap"] or load_cap) for p in people), reverse=True)
    capacity = sum(caps[1::2])
    teams = len(caps) // 2
    # Without a directory of inspectors yet the draw still stands, listing each visit as no_qualified_inspectors.
    if teams == 0 or least_visits <= OVER_CAPACITY_FACTOR * capacity:
        return
    needed = math.ceil(least_visits / teams)
    advice = (
        f"请把每名执法人员的检查户数上限提高到 {needed} 户以上，或缩小抽查区域、降低抽查比例"
        if needed <= MAX_LOAD_CAP
        else "请缩小抽查区域或降低抽查比例（提高检查户数上限也不够）"
    )
    raise InvalidPlan(
        f"本次至少抽中 {least_visits} 户，而所选部门的 {len(caps)} 名执法人员（每组至少两人）按上限最多检查"
        f" {capacity} 户，大部分检查对象将无法组队；{advice}",
        reason="over_capacity",
    )


def draw(conn: Connection, plan_id: int, public_value: str, *, actor: str, scope: Scope, secret_key: str) -> Plan:
    """Draw a committed plan with its announced public value: select, form visits, match teams; all or nothing."""
    plan = _plan_in_scope(conn, plan_id, scope, for_update=True)
    _may_write(scope, plan["department_codes"])
    if plan["status"] == "cancelled":
        raise PlanState("该抽查计划已撤销，不能摇号", reason="cancelled")
    if plan["status"] == "drawn":
        raise PlanState("该抽查计划已经摇号，不能再次摇号", reason="already_drawn")
    problem = drawing.public_value_problem(public_value)
    if problem:
        raise InvalidPlan(problem, reason="invalid_public_value")
    now = clock.now()
    if now < plan["public_value_at"]:
        announced = plan["public_value_at"].astimezone(SHANGHAI)
        raise PlanState(
            f"公开随机数要到 {announced:%Y-%m-%d %H:%M} 才公布，现在不能摇号", reason="public_value_not_due"
        )
    started = time.perf_counter()
    strata = repo.stratum_sizes(conn, plan_id)
    by_stratum = _stored_candidates(conn, plan_id, plan["candidates_sha256"], [s["stratum_id"] for s in strata])
    server_seed = _unsealed_seed(conn, plan, secret_key)
    seed = drawing.seed_of(server_seed, public_value)
    timings = {"read_s": time.perf_counter() - started}

    started = time.perf_counter()
    item_of = {s["stratum_id"]: s["item_code"] for s in strata}
    chosen: list[tuple[str, str]] = []
    for s in strata:
        stratum_id = s["stratum_id"]
        codes = by_stratum[stratum_id]
        if s["n"] <= 0 or not codes:
            continue
        # The documented messages `stratum_id|uscc`, built at C speed (no code holds a newline: they were split on it).
        prefix = f"{stratum_id}|".encode()
        messages = (prefix + (b"\n" + prefix).join(codes)).split(b"\n")
        picked = drawing.smallest(drawing.digests(seed, messages), codes, s["n"])
        chosen.extend((stratum_id, codes[i].decode()) for i in picked)
    timings["select_s"] = time.perf_counter() - started

    started = time.perf_counter()
    visit_items: dict[str, set[str]] = defaultdict(set)
    for stratum_id, uscc in chosen:
        visit_items[uscc].add(item_of[stratum_id])
    inputs = _matching_inputs(conn, plan, visit_items)
    # The server marks the selected candidates while the teams are matched (nothing below reads the database).
    with repo.marking_selected(conn, plan_id, chosen):
        teams, visits = _visits_and_teams(plan, seed, visit_items, inputs)
    timings["teams_s"] = time.perf_counter() - started
    started = time.perf_counter()
    team_ids = repo.insert_teams(conn, plan_id, teams)
    for visit in visits:
        team_no = visit.pop("team_no")
        visit["team_id"] = team_ids.get(team_no) if team_no is not None else None
    repo.insert_visits(conn, plan_id, visits)
    repo.mark_drawn(conn, plan_id, public_value=public_value, seed_hex=seed.hex(), actor=actor, at=now)
    # Public from now on: stored plain, so the public answer and auditors read it without the app secret.
    conn.execute(
        text("UPDATE inspection_plan SET server_seed = :seed WHERE id = :id"), {"seed": server_seed, "id": plan_id}
    )
    timings["store_s"] = time.perf_counter() - started
    return Plan(
        id=plan_id,
        status="drawn",
        commitment=plan["commitment"],
        candidates_sha256=plan["candidates_sha256"],
        candidate_count=plan["candidate_count"],
        strata=len(strata),
        visits=len(visits),
        teams=len(teams),
        unmatched=sum(1 for v in visits if v["team_id"] is None),
        seed=seed.hex(),
        timings=timings,
    )


def _stored_candidates(
    conn: Connection, plan_id: int, published_sha256: str, stratum_ids: Sequence[str]
) -> dict[str, list[bytes]]:
    """The plan's stored candidates by stratum (UTF-8 credit codes, sorted), checked against the published SHA-256 of
    the canonical list; PlanState if they changed.

    The list is rebuilt from each stratum's codes, strata by id and codes sorted (byte order is the code points'
    order in UTF-8, the order `candidates_csv` sorts by), line by line `stratum_id,uscc` under the header.
    """
    runs = repo.candidate_runs(conn, plan_id)
    members: dict[str, list[bytes]] = {stratum_id: [] for stratum_id in stratum_ids}
    digest = hashlib.sha256(drawing.CSV_HEADER)
    for stratum_id in sorted(runs):
        codes = runs[stratum_id].split(b"\n")
        # Stored in the published order as a rule, so this sort mostly just confirms it.
        codes.sort()
        members[stratum_id] = codes
        prefix = f"{stratum_id},".encode()
        digest.update(prefix + (b"\n" + prefix).join(codes) + b"\n")
    if digest.hexdigest() != published_sha256 or runs.keys() - set(stratum_ids):
        raise PlanState("候选名单与公布的 SHA-256 不符（名单被改动过），不能摇号", reason="candidates_changed")
    return members


@dataclass(frozen=True)
class _MatchingInputs:
    """What matching reads from the database: the plan's items, the drawn entities, recent visits, the inspectors."""

    items: Mapping[str, Mapping[str, Any]]
    entities: Mapping[str, Any]
    recent: Mapping[int, frozenset[str]]
    people: Sequence[Mapping[str, Any]]
    # Visits each inspector still has to make in other drawn plans (their load cap counts across plans).
    booked: Mapping[int, int] = field(default_factory=dict)


def _booked_elsewhere(conn: Connection, plan_id: int) -> dict[int, int]:
    """Per inspector, the visits still planned in teams of other drawn plans (a cap is per person, not per plan)."""
    rows = conn.execute(
        text(
            """
            SELECT m.inspector_id, count(*) AS visits
            FROM inspection_visit v
            JOIN inspection_plan p ON p.id = v.plan_id AND p.status = 'drawn'
            JOIN inspection_team t ON t.id = v.team_id
            CROSS JOIN LATERAL unnest(t.inspector_ids) AS m(inspector_id)
            WHERE v.status = 'planned' AND v.plan_id <> :plan_id
            GROUP BY m.inspector_id
            """
        ),
        {"plan_id": plan_id},
    )
    return {int(r.inspector_id): int(r.visits) for r in rows}


def _matching_inputs(conn: Connection, plan: Mapping[str, Any], visit_items: Mapping[str, set[str]]) -> _MatchingInputs:
    """Read everything the teams and visits are made from, before the database is given other work."""
    return _MatchingInputs(
        items=repo.items_by_code(conn, plan["item_codes"]),
        entities=repo.entities(conn, sorted(visit_items)),
        recent=recent_visits(conn, today()),
        people=repo.inspectors(conn, plan["department_codes"]),
        booked=_booked_elsewhere(conn, int(plan["id"])),
    )


def _visits_and_teams(
    plan: Mapping[str, Any], seed: bytes, visit_items: Mapping[str, set[str]], inputs: _MatchingInputs
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One visit per drawn entity (every drawn item, of every department) and the teams matched to them (pure)."""
    items, entities, recent, people = inputs.items, inputs.entities, inputs.recent, inputs.people
    item_department = {code: row["department_code"] for code, row in items.items()}
    needs = [VisitNeed(u, entities[u].grid_code, tuple(sorted(visit_items[u]))) for u in sorted(visit_items)]
    # An inspector's cap is reduced by the visits they still owe other drawn plans; one with no room is left out.
    room = {int(p["id"]): int(p["load_cap"] or plan["load_cap"]) - inputs.booked.get(int(p["id"]), 0) for p in people}
    infos = [
        InspectorInfo(
            id=int(p["id"]),
            department=p["department_code"],
            qualifications=frozenset(p["qualifications"]),
            home_grid=p["home_grid_code"],
            conflicts=frozenset(p["conflicts"]),
            recent=recent.get(int(p["id"]), frozenset()),
            load_cap=room[int(p["id"])],
            office=(float(p["office_lon"]), float(p["office_lat"])),
            office_town=p["office_town"],
        )
        for p in people
        if room[int(p["id"])] > 0
    ]
    matching = match(seed, needs, infos, item_department)
    by_id = {int(p["id"]): p for p in people}
    teams = []
    for team in matching.teams:
        # The team sets out from its first member's office (matching picks local inspectors first).
        first = by_id[team.inspector_ids[0]]
        teams.append(
            {
                "team_no": team.team_no,
                "departments": list(team.departments),
                "inspector_ids": list(team.inspector_ids),
                "office_name": first["office_name"],
                "office": (float(first["office_lon"]), float(first["office_lat"])),
            }
        )
    visits = []
    # Few distinct (kind, industry, items) among tens of thousands of visits: their hours and departments are cached.
    hours_of: dict[tuple[str, str | None, tuple[str, ...]], tuple[int, int, int]] = {}
    departments_of: dict[tuple[str, ...], list[str]] = {}
    for need in needs:
        entity = entities[need.uscc]
        key = (entity.kind, entity.industry, need.items)
        if key not in hours_of:
            hours = drawing.visit_hours(entity.kind, entity.industry, [items[i]["service_minutes"] for i in need.items])
            minutes = min(hours.service_minutes, hours.window_end - hours.window_start)
            hours_of[key] = (hours.window_start, hours.window_end, minutes)
        if need.items not in departments_of:
            departments_of[need.items] = sorted({item_department[i] for i in need.items})
        window_start, window_end, minutes = hours_of[key]
        visits.append(
            {
                "uscc": need.uscc,
                "geom": entity.geom,
                "town_code": entity.town_code,
                "grid_code": entity.grid_code,
                "item_codes": list(need.items),
                "department_codes": departments_of[need.items],
                "team_no": matching.assignment.get(need.uscc),
                "unmatched_reason": matching.unmatched.get(need.uscc),
                "window_start": window_start,
                "window_end": window_end,
                "service_minutes": minutes,
            }
        )
    return teams, visits


def cancel(conn: Connection, plan_id: int, reason: str, *, actor: str, scope: Scope) -> Plan:
    """Cancel a plan before its draw (kept, and shown publicly as cancelled); a drawn plan stays as drawn."""
    plan = _plan_in_scope(conn, plan_id, scope, for_update=True)
    _may_write(scope, plan["department_codes"])
    text_reason = _text(reason, "撤销原因", required=True)
    if plan["status"] == "drawn":
        raise PlanState("该抽查计划已经摇号，不能撤销", reason="already_drawn")
    if plan["status"] == "cancelled":
        raise PlanState("该抽查计划已撤销", reason="cancelled")
    repo.mark_cancelled(conn, plan_id, reason=text_reason, at=clock.now())
    # Who cancelled is kept for the credentialed answer only: the reason is published, the account name is not.
    conn.execute(
        text("UPDATE inspection_plan SET cancelled_by = :actor WHERE id = :id"), {"actor": actor, "id": plan_id}
    )
    return Plan(
        id=plan_id,
        status="cancelled",
        commitment=plan["commitment"],
        candidates_sha256=plan["candidates_sha256"],
        candidate_count=plan["candidate_count"],
        strata=len(repo.strata(conn, plan_id)),
    )


# ------------------------------------------------------------------------------------------------ views


def _summary(plan: Mapping[str, Any]) -> dict[str, Any]:
    """What every answer tells of a plan, public or not."""
    return {
        "id": plan["id"],
        "title": plan["title"],
        "departments": list(plan["department_codes"]),
        "status": plan["status"],
        "created_at": plan["created_at"],
        "public_value_source": plan["public_value_source"],
        "public_value_at": plan["public_value_at"],
        "public_value_announced": public_value_announced(plan),
        "drawn_at": plan["drawn_at"],
        "cancelled_at": plan["cancelled_at"],
    }


def public_value_announced(plan: Mapping[str, Any]) -> bool:
    """Whether the public value was announced for a later instant than the commitment (False: given on the spot).

    An on-the-spot value (the command line's default) is chosen by whoever draws, after seeing the commitment; an
    auditor should prefer a value whose source and instant were published in advance (docs/INSPECTIONS.md §1).
    """
    return bool(plan["public_value_at"] > plan["created_at"] + PUBLIC_VALUE_GRACE)


def _items_view(conn: Connection, codes: Sequence[str]) -> list[dict[str, Any]]:
    """The plan's items (code, name, department), by code."""
    found = repo.items_by_code(conn, codes)
    return [
        {"code": c, "name": found[c]["name"], "department": found[c]["department_code"]} for c in codes if c in found
    ]


def _public_strata(strata: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The strata as published: id, size, ratio, n and the selected credit codes — never the class."""
    return [
        {
            "id": s["stratum_id"],
            "size": s["size"],
            "ratio": published_ratio(s["ratio"]),
            "n": s["n"],
            "selected": list(s["selected"]),
        }
        for s in strata
    ]


def ratio_text(ratio: Decimal) -> str:
    """A ratio as the plain decimal text auditors compute with (0.05000 → "0.05", never "5E-2")."""
    return format(Decimal(ratio).normalize(), "f")


def published_ratio(ratio: Decimal) -> float:
    """A ratio as the JSON number the answers carry: at most 5 decimals, so its shortest text (what JSON writes,
    0.07) is the exact decimal; auditors read that text as a decimal (`Decimal(str(x))`), never multiply floats."""
    return float(ratio_text(ratio))


def list_plans(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """The plans the caller may see, newest first."""
    if scope.kind == "city":
        rows = repo.plans(conn)
    elif scope.kind == "department":
        rows = repo.plans(conn, department=scope.code)
    elif scope.kind == "town":
        rows = repo.plans(conn, town=scope.code)
    else:
        rows = []
    return [{**_summary(r), "town_codes": list(r["town_codes"]), "candidate_count": r["candidate_count"]} for r in rows]


def plan_view(conn: Connection, plan_id: int, scope: Scope) -> dict[str, Any]:
    """Everything about a plan for a credentialed caller in scope: the public facts, the classes, teams and visits."""
    plan = _plan_in_scope(conn, plan_id, scope)
    strata = repo.strata(conn, plan_id)
    teams = repo.teams(conn, plan_id)
    members = {t["id"]: t["inspectors"] for t in teams}
    rows = repo.visits(conn, plan_id)
    # A town leader sees a plan touching their town, but only its part in their town: the visits and teams there,
    # the entities drawn there, and the strata's classes only when the whole plan lies in their town.
    own_town = scope.code if scope.kind == "town" else None
    if own_town is not None:
        rows = [v for v in rows if v["town_code"] == own_town]
        shown = {v["uscc"] for v in rows}
        strata = [{**s, "selected": [u for u in s["selected"] if u in shown]} for s in strata]
        teams = [t for t in teams if t["id"] in {v["team_id"] for v in rows}]
    classes_shown = own_town is None or list(plan["town_codes"]) == [own_town]
    visits = [
        {
            "id": v["id"],
            "uscc": v["uscc"],
            "name": v["name"],
            "grid_code": v["grid_code"],
            "town_code": v["town_code"],
            "lon": v["lon"],
            "lat": v["lat"],
            "items": list(v["item_codes"]),
            "departments": list(v["department_codes"]),
            "team_id": v["team_id"],
            "inspectors": [
                {"id": m["id"], "department": m["department"], "home_grid": m["home_grid"]}
                for m in members.get(v["team_id"], [])
            ],
            "window": [v["window_start"], v["window_end"]],
            "service_minutes": v["service_minutes"],
            "status": v["status"],
            "unmatched_reason": v["unmatched_reason"],
            "unmatched_reason_zh": UNMATCHED_REASONS_ZH.get(v["unmatched_reason"]) if v["unmatched_reason"] else None,
        }
        for v in rows
    ]
    return {
        **_summary(plan),
        "items": _items_view(conn, plan["item_codes"]),
        "area": plan["area"],
        "town_codes": list(plan["town_codes"]),
        "commitment": plan["commitment"],
        "candidates_sha256": plan["candidates_sha256"],
        "candidate_count": plan["candidate_count"],
        "public_value": plan["public_value"],
        "seed": plan["seed"],
        "load_cap": plan["load_cap"],
        "publish_days": plan["publish_days"],
        "visit_date": plan["visit_date"],
        "created_by": plan["created_by"],
        "drawn_by": plan["drawn_by"],
        "cancel_reason": plan["cancel_reason"],
        "cancelled_by": _cancelled_by(conn, plan_id),
        "public_url": f"/public/inspections/{plan_id}",
        "strata": [
            {**p, "item_code": s["item_code"], "credit_class": s["credit_class"] if classes_shown else None}
            for p, s in zip(_public_strata(strata), strata, strict=True)
        ],
        "teams": [
            {
                "id": t["id"],
                "team_no": t["team_no"],
                "departments": list(t["department_codes"]),
                "inspectors": t["inspectors"],
                "office": {"name": t["office_name"], "lon": t["office_lon"], "lat": t["office_lat"]},
            }
            for t in teams
        ],
        "visits": visits,
        "unmatched": _unmatched_summary(visits),
    }


def _cancelled_by(conn: Connection, plan_id: int) -> str | None:
    """Who cancelled a plan (credentialed answers only; never published)."""
    return conn.execute(
        text("SELECT cancelled_by FROM inspection_plan WHERE id = :id"), {"id": plan_id}
    ).scalar_one_or_none()


def _unmatched_summary(visits: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The visits left without a team, counted by reason (most first): what a planner reads before the long list."""
    counts = Counter(v["unmatched_reason"] for v in visits if v["unmatched_reason"])
    return [
        {"reason": reason, "reason_zh": UNMATCHED_REASONS_ZH.get(reason, reason), "count": count}
        for reason, count in sorted(counts.items(), key=lambda rc: (-rc[1], rc[0]))
    ]


def public_list(conn: Connection) -> list[dict[str, Any]]:
    """Every plan as the public index lists it (cancelled ones too, marked so)."""
    return [_summary(r) for r in repo.plans(conn, limit=1000)]


def public_view(conn: Connection, plan_id: int) -> dict[str, Any]:
    """What anyone may read of a plan: enough to recompute the draw, the published results, never a class or person."""
    plan = repo.plan(conn, plan_id)
    if plan is None:
        raise PlanNotFound(f"没有编号为 {plan_id} 的抽查计划", reason="not_found")
    drawn = plan["status"] == "drawn"
    strata = repo.strata(conn, plan_id)

    return {
        **_summary(plan),
        "items": _items_view(conn, plan["item_codes"]),
        "commitment": plan["commitment"],
        "public_value": plan["public_value"] if drawn else None,
        "server_seed": repo.server_seed(conn, plan_id).hex() if drawn else None,
        "seed": plan["seed"] if drawn else None,
        "candidates_sha256": plan["candidates_sha256"],
        "candidate_count": plan["candidate_count"],
        "cancel_reason": plan["cancel_reason"],
        "strata": _public_strata(strata),
        "results": published_results(conn, plan_id) if drawn else [],
    }


class PlanWithdrawn(PlanState):
    """The candidate list of a cancelled plan is withdrawn (410 Gone): its commitment and reason stay public."""

    default_reason = "cancelled"


def public_candidates_csv(conn: Connection, plan_id: int) -> bytes:
    """The published candidate list's bytes (its SHA-256 is the plan's candidates_sha256); withdrawn once cancelled."""
    plan = repo.plan(conn, plan_id)
    if plan is None:
        raise PlanNotFound(f"没有编号为 {plan_id} 的抽查计划", reason="not_found")
    if plan["status"] == "cancelled":
        raise PlanWithdrawn("该抽查计划已撤销，候选名单已撤回（承诺与撤销原因仍公开）", reason="cancelled")
    return drawing.candidates_csv(repo.candidates(conn, plan_id))
