"""supervision.kpi: the command centre's figures per drill-down level (city, town, community, grid, department).

The figures are those of supervision.stats (one computation, so that a panel and /v1/stats never disagree),
renamed for the dashboard and completed with the open tasks now, the unit's name, parent, children and extent.
The trend gives the same figures per Asia/Shanghai day: a day's `tasks_completed` and `clues_closed` count the
tasks pushed (clues reported) that day that are closed now, so each series sums to the panel's figure;
`overdue_tasks` counts the tasks whose current deadline fell on that day and passed before they were closed.

Also here: who the caller is in words (`caller_area`, `ROLE_LABELS_ZH`), for `GET /v1/me`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, text

from gis import clock
from grids.codes import community_of, community_sql, town_of, within
from supervision.calendar import SHANGHAI
from supervision.errors import NotFound, OutOfScope, RoutingError, StatsError
from supervision.routing import default_router
from supervision.scope import Scope
from supervision.stats import SEED_HEADLINE, StatsWindow, UnitStats, unit_stats
from supervision.task_states import OPEN_STATUSES

KpiLevel = Literal["city", "town", "community", "grid", "department"]
KPI_LEVELS: tuple[KpiLevel, ...] = ("city", "town", "community", "grid", "department")
CITY_NAME = "东莞市"
TREND_KEYS = ("tasks_pushed", "tasks_completed", "overdue_tasks", "clues_reported", "clues_closed")
MAX_TREND_DAYS = 366
_CHILD: dict[str, str | None] = {"city": "town", "town": "community", "community": "grid", "grid": None}
_PARENT: dict[str, str | None] = {"city": None, "town": "city", "community": "town", "grid": "community"}

# Fixed SQL fragments per level: the unit's key on tasks, clues, and its name and extent.
_TASK_KEY = {"town": "t.town_code", "community": "t.community_code", "grid": "t.grid_code"}
_CLUE_KEY = {"town": "c.town_code", "community": community_sql("c.grid_code"), "grid": "c.grid_code"}
_ROUTED = ":code = ANY(string_to_array(t.department_codes, ','))"
_UNIT_SQL = {
    "city": "SELECT CAST(NULL AS text) AS code, :city AS name, ST_Extent(geom) AS box FROM town",
    "town": "SELECT code, name, ST_Extent(geom) AS box FROM town WHERE code = :code GROUP BY code, name",
    "community": "SELECT code, name, ST_Extent(geom) AS box FROM community WHERE code = :code GROUP BY code, name",
    "grid": "SELECT g.code, coalesce(g.name, g.code) AS name, ST_Extent(g.geom) AS box FROM grid g "
    "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' WHERE g.code = :code GROUP BY 1, 2",
}
ROLE_LABELS_ZH: dict[str, str] = {
    "admin": "系统管理员",
    "command_centre": "指挥中心",
    "town_leader": "镇街领导",
    "dispatcher": "村（社区）调度员",
    "grid_worker": "网格员",
    "department_officer": "部门人员",
    "api_client": "接口客户端",
    "hotline": "12345 热线",
}


@dataclass(frozen=True)
class Figures:
    """一个单位的指标；比率为 0–1，分母为 0 时为 null。"""

    tasks_pushed: int = field(metadata={"description": "期内推送的任务数"})
    tasks_completed: int = field(metadata={"description": "其中已办结"})
    completion_rate: float | None = field(metadata={"description": "任务完成率"})
    on_time_rate: float | None = field(metadata={"description": "按时办结率"})
    open_tasks: int = field(metadata={"description": "当前在办任务数（不论何时推送）"})
    overdue_tasks: int = field(metadata={"description": "当前逾期未办（不论何时推送）"})
    clues_reported: int = field(metadata={"description": "期内上报的线索数"})
    clues_closed: int = field(metadata={"description": "其中已办结"})
    clue_handling_rate: float | None = field(metadata={"description": "线索办结率"})
    licensing_rate: float | None = field(metadata={"description": "持证率"})


@dataclass(frozen=True)
class TrendSeries:
    """逐日数列，与 days 一一对应。"""

    tasks_pushed: list[int] = field(metadata={"description": "当日推送的任务数"})
    tasks_completed: list[int] = field(metadata={"description": "当日推送、现已办结的任务数"})
    overdue_tasks: list[int] = field(metadata={"description": "期限在当日、到期未办结的任务数"})
    clues_reported: list[int] = field(metadata={"description": "当日上报的线索数"})
    clues_closed: list[int] = field(metadata={"description": "当日上报、现已办结的线索数"})


@dataclass(frozen=True)
class UnitRef:
    """一个单位：层级、编码与名称。"""

    level: str
    code: str | None
    name: str


@dataclass(frozen=True)
class ChildFigures:
    """下一级单位的数字。"""

    level: str
    code: str
    name: str
    figures: Figures


@dataclass(frozen=True)
class Kpi:
    """一个单位在窗口内的指标、种子系统的总体数字、下一级单位的指标，及单位范围（WGS84 bbox）。"""

    level: str
    code: str | None
    name: str
    parent: UnitRef | None
    window: dict[str, str]
    figures: Figures
    seed: dict[str, float]
    children: list[ChildFigures]
    bbox: list[float] | None


@dataclass(frozen=True)
class Trend:
    """逐日（北京时间）的推送、办结、逾期、线索上报与办结数。"""

    days: list[str]
    series: TrendSeries


@dataclass(frozen=True)
class Area:
    """账号的范围：类型、编码与中文名称。"""

    kind: str
    code: str | None
    label: str


def check_kpi_scope(conn: Connection, scope: Scope, level: str, code: str | None) -> None:
    """OutOfScope unless the caller may read this unit's figures (the city: only city-wide scopes)."""
    if level not in KPI_LEVELS:
        raise StatsError(f"level must be one of {', '.join(KPI_LEVELS)}, not {level!r}", field="level")
    if level == "city":
        if scope.kind != "city":
            raise OutOfScope("only a city-wide credential may read the city's figures")
        return
    if code is None:
        raise StatsError(f"a {level} needs its code", field="code")
    if not scope.covers(conn, level, code):
        raise OutOfScope(f"you may not read the figures of {level} {code}")


def kpi(
    conn: Connection,
    scope: Scope,
    *,
    level: str,
    code: str | None,
    window: StatsWindow,
    now: datetime | None = None,
) -> Kpi:
    """The figures of one unit, its children's, its parent and extent; OutOfScope outside the caller's scope."""
    check_kpi_scope(conn, scope, level, code)
    moment = now or clock.now()
    towns = scope.towns
    if level == "department":
        assert code is not None
        report = unit_stats(conn, level="department", code=code, window=window, town_codes=towns, now=moment,
                            overdue_limit=0)  # fmt: skip
        open_now = _open_tasks(conn, "department", code, towns)
        unit = report.units[0]
        city = _unit(conn, "city", None)
        return _kpi(level, code, unit.name, None, window, _figures(unit, open_now.get(code, 0)), [], city[1])
    ref, box = _unit(conn, level, code)
    if level == "city":
        report = unit_stats(conn, level="town", code=None, window=window, town_codes=towns, now=moment,
                            overdue_limit=0)  # fmt: skip
        own = report.totals
        open_all = _open_tasks(conn, "town", None, towns)
        own_open = sum(open_all.values())
        children = [_child("town", u, open_all.get(u.code, 0)) for u in report.units]
    else:
        assert code is not None
        report = unit_stats(conn, level=level, code=code, window=window, town_codes=towns, now=moment,
                            overdue_limit=0)  # fmt: skip
        own = report.units[0]
        own_open = _open_tasks(conn, level, code, towns).get(code, 0)
        children = _children(conn, level, code, window, towns, moment)
    parent = _parent_of(conn, level, code)
    return _kpi(level, code, ref.name, parent, window, _figures(own, own_open), children, box)


def trend(
    conn: Connection,
    scope: Scope,
    *,
    level: str,
    code: str | None,
    first: date,
    last: date,
    now: datetime | None = None,
) -> Trend:
    """Per Shanghai day from `first` to `last` (inclusive), the unit's five trend series; OutOfScope outside."""
    check_kpi_scope(conn, scope, level, code)
    if last < first:
        raise StatsError(f"the trend ends ({last}) before it starts ({first})", field="to")
    if (last - first).days + 1 > MAX_TREND_DAYS:
        raise StatsError(f"a trend covers at most {MAX_TREND_DAYS} days", field="days")
    if level != "city" and level != "department":
        _unit(conn, level, code)
    towns = scope.towns
    params: dict[str, Any] = {
        "since": datetime.combine(first, datetime.min.time(), tzinfo=SHANGHAI),
        "until": datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI),
        "now": now or clock.now(),
        "code": code,
        "towns": sorted(towns) if towns is not None else None,
    }
    task_filter, clue_filter = _filters(level)
    day = "(CAST({} AT TIME ZONE 'Asia/Shanghai' AS date))"
    tasks = conn.execute(
        text(
            f"SELECT {day.format('t.pushed_at')} AS day, count(*) AS pushed, "  # noqa: S608 - fixed SQL fragments; values are bound
            "count(*) FILTER (WHERE t.status = 'closed') AS completed FROM task t WHERE t.kind = 'task' "
            f"AND t.pushed_at >= :since AND t.pushed_at < :until AND {task_filter} GROUP BY 1"
        ),
        params,
    ).all()
    overdue = conn.execute(
        text(
            f"SELECT {day.format('t.due_at')} AS day, count(*) AS overdue FROM task t "  # noqa: S608 - fixed SQL fragments; values are bound
            "WHERE t.due_at >= :since AND t.due_at < :until AND t.due_at < :now AND t.status <> 'cancelled' "
            f"AND (t.closed_at IS NULL OR t.closed_at > t.due_at) AND {task_filter} GROUP BY 1"
        ),
        params,
    ).all()
    clues = conn.execute(
        text(
            f"SELECT {day.format('c.reported_at')} AS day, count(*) AS reported, "  # noqa: S608 - fixed SQL fragments; values are bound
            "count(*) FILTER (WHERE c.status = 'closed') AS closed FROM clue c "
            f"WHERE c.reported_at >= :since AND c.reported_at < :until AND {clue_filter} GROUP BY 1"
        ),
        params,
    ).all()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    series = {key: [0] * len(days) for key in TREND_KEYS}
    for rows, columns in (
        (tasks, (("tasks_pushed", "pushed"), ("tasks_completed", "completed"))),
        (overdue, (("overdue_tasks", "overdue"),)),
        (clues, (("clues_reported", "reported"), ("clues_closed", "closed"))),
    ):
        for r in rows:
            i = index.get(r.day)
            if i is None:
                continue
            for key, column in columns:
                series[key][i] += int(getattr(r, column))
    return Trend(days=[d.isoformat() for d in days], series=TrendSeries(**series))


def caller_area(conn: Connection, scope: Scope) -> Area:
    """The caller's area in words: the city, their town, community, grid(s) or department."""
    if scope.kind == "city":
        return Area("city", None, CITY_NAME)
    if scope.kind == "department" and scope.code:
        try:
            return Area("department", scope.code, default_router().department(scope.code).name)
        except RoutingError:  # an unknown department code: say so rather than fail the whole answer
            return Area("department", scope.code, scope.code)
    if scope.kind in ("town", "community") and scope.code:
        table = "town" if scope.kind == "town" else "community"
        name = conn.execute(text(f"SELECT name FROM {table} WHERE code = :c"), {"c": scope.code}).scalar()  # noqa: S608 - fixed table names
        return Area(scope.kind, scope.code, str(name) if name else scope.code)
    if scope.kind == "worker":
        grids = sorted(scope.worker_grids(conn))
        if not grids:
            return Area("worker", None, "无")
        name = conn.execute(
            text(
                "SELECT coalesce(g.name, g.code) FROM grid g JOIN grid_version v ON v.id = g.version_id "
                "AND v.status = 'active' WHERE g.code = :c"
            ),
            {"c": grids[0]},
        ).scalar()
        return Area("worker", grids[0], str(name) if name else grids[0])
    return Area("none", None, "无")


# ------------------------------------------------------------------------------------------------ internals


def _kpi(
    level: str,
    code: str | None,
    name: str,
    parent: UnitRef | None,
    window: StatsWindow,
    figures: Figures,
    children: list[ChildFigures],
    box: list[float] | None,
) -> Kpi:
    return Kpi(
        level=level,
        code=code,
        name=name,
        parent=parent,
        window={"from": window.since.isoformat(), "to": window.until.isoformat()},
        figures=figures,
        seed=dict(SEED_HEADLINE),
        children=children,
        bbox=box,
    )


def _figures(u: UnitStats, open_tasks: int) -> Figures:
    """The dashboard's names for a unit's figures (see the module docstring)."""
    return Figures(
        tasks_pushed=u.tasks_pushed,
        tasks_completed=u.tasks_completed,
        completion_rate=u.completion_rate,
        on_time_rate=u.on_time_rate,
        open_tasks=open_tasks,
        overdue_tasks=u.open_overdue,
        clues_reported=u.clues_reported,
        clues_closed=u.clues_handled,
        clue_handling_rate=u.clue_handling_rate,
        licensing_rate=u.licensing_rate,
    )


def _child(level: str, u: UnitStats, open_tasks: int) -> ChildFigures:
    return ChildFigures(level=level, code=u.code, name=u.name, figures=_figures(u, open_tasks))


def _children(
    conn: Connection,
    level: str,
    code: str,
    window: StatsWindow,
    towns: frozenset[str] | None,
    moment: datetime,
) -> list[ChildFigures]:
    """The figures of the units one level down that lie within `code` (none below a grid)."""
    child = _CHILD[level]
    if child is None:
        return []
    town = frozenset({town_of(code)})
    confined = town if towns is None else towns & town
    report = unit_stats(conn, level=child, code=None, window=window, town_codes=confined, now=moment,
                        overdue_limit=0)  # fmt: skip
    open_now = _open_tasks(conn, child, None, confined)
    return [_child(child, u, open_now.get(u.code, 0)) for u in report.units if within(u.code, code)]


def _open_tasks(conn: Connection, level: str, code: str | None, towns: frozenset[str] | None) -> dict[str, int]:
    """Open tasks now (of either kind), per unit of `level` (or the one `code`), within the caller's towns."""
    params: dict[str, Any] = {
        "open": list(OPEN_STATUSES),
        "code": code,
        "towns": sorted(towns) if towns is not None else None,
    }
    town_filter = "(CAST(:towns AS text[]) IS NULL OR t.town_code = ANY(:towns))"
    if level == "department":
        sql = f"SELECT :code AS unit, count(*) AS n FROM task t WHERE t.status = ANY(:open) AND {_ROUTED} AND {town_filter}"  # noqa: S608 - fixed SQL fragments; values are bound
    else:
        key = _TASK_KEY[level]
        sql = (
            f"SELECT {key} AS unit, count(*) AS n FROM task t WHERE t.status = ANY(:open) "  # noqa: S608 - fixed SQL fragments; values are bound
            f"AND (CAST(:code AS text) IS NULL OR {key} = :code) AND {town_filter} GROUP BY 1"
        )
    return {str(r.unit): int(r.n) for r in conn.execute(text(sql), params)}


def _filters(level: str) -> tuple[str, str]:
    """The task and clue conditions of a unit of `level` (bound :code) within the caller's towns (:towns)."""
    towns_t = "(CAST(:towns AS text[]) IS NULL OR t.town_code = ANY(:towns))"
    towns_c = "(CAST(:towns AS text[]) IS NULL OR c.town_code = ANY(:towns))"
    if level == "city":
        return towns_t, towns_c
    if level == "department":
        return f"{_ROUTED} AND {towns_t}", f"c.department_code = :code AND {towns_c}"
    return f"{_TASK_KEY[level]} = :code AND {towns_t}", f"{_CLUE_KEY[level]} = :code AND {towns_c}"


def _unit(conn: Connection, level: str, code: str | None) -> tuple[UnitRef, list[float] | None]:
    """The unit's name and WGS84 extent; NotFound for a code that names no unit of the level."""
    row = conn.execute(
        text(
            f"SELECT u.code, u.name, ST_XMin(u.box) AS w, ST_YMin(u.box) AS s, ST_XMax(u.box) AS e, "  # noqa: S608 - fixed SQL fragments; values are bound
            f"ST_YMax(u.box) AS n FROM ({_UNIT_SQL[level]}) u"
        ),
        {"code": code, "city": CITY_NAME},
    ).first()
    if row is None:
        raise NotFound(f"no {level} with code {code}")
    box = [round(float(v), 6) for v in (row.w, row.s, row.e, row.n)] if row.w is not None else None
    return UnitRef(level=level, code=code, name=str(row.name)), box


def _parent_of(conn: Connection, level: str, code: str | None) -> UnitRef | None:
    """The unit one level up (the city above a town), None above the city."""
    parent = _PARENT.get(level)
    if parent is None or code is None:
        return None
    if parent == "city":
        return UnitRef(level="city", code=None, name=CITY_NAME)
    parent_code = town_of(code) if parent == "town" else community_of(code)
    return _unit(conn, parent, parent_code)[0]
