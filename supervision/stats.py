"""supervision.stats: the supervision figures per town, community, grid and department, computed as the seed system did.

- completion rate: tasks pushed in the window that are closed, over those pushed minus those cancelled;
- on-time rate: closed tasks that never ran past the deadline in force, over closed tasks;
- clue handling rate: clues reported in the window that are closed, over those reported minus cancelled;
- licensing rate: open entities whose scope needs a licence that hold one, over those needing one.

The seed system reported 99.16 %, 97.1 % and 75.69 % for the first, third and fourth; ours come from our data.
Overdue figures (the count and the list) describe the backlog now, whenever the task was pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import Field, PlainSerializer, WithJsonSchema
from sqlalchemy import Connection, text

from gis import clock
from grids.codes import community_sql
from supervision.audit import overdue_attribution
from supervision.errors import OutOfScope, StatsError
from supervision.routing import default_router
from supervision.task_states import OPEN_STATUSES

Level = Literal["town", "community", "grid", "department"]
LEVELS: tuple[Level, ...] = ("town", "community", "grid", "department")
# The window's ends as the API has always written them: datetime.isoformat() (`+00:00`, never `Z`).
Instant = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
SEED_HEADLINE = {"completion_rate": 0.9916, "clue_handling_rate": 0.971, "licensing_rate": 0.7569}
_CITY_PREFIX = "东莞市"

# The unit key of each table at each level (fixed SQL fragments, chosen by the validated level).
_TASK_UNIT = {"town": "t.town_code", "community": "t.community_code", "grid": "t.grid_code"}
_CLUE_UNIT = {"town": "c.town_code", "community": community_sql("c.grid_code"), "grid": "c.grid_code"}
_ENTITY_UNIT = {"town": "e.town_code", "community": community_sql("e.grid_code"), "grid": "e.grid_code"}
# Every unit of a level: code, name, and the town it lies in (for the caller's towns).
_UNITS = {
    "town": "SELECT code, name, code AS town_code FROM town",
    "community": "SELECT code, name, town_code FROM community",
    "grid": "SELECT g.code, coalesce(g.name, g.code), g.town_code FROM grid g "
    "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'",
}
# Tasks routed to one of :departments (one joint case counts for each of its departments).
_ROUTED = "EXISTS (SELECT 1 FROM unnest(string_to_array(t.department_codes, ',')) d WHERE d = ANY(:departments))"
_METRICS = (
    "tasks_pushed",
    "tasks_cancelled",
    "tasks_completed",
    "tasks_on_time",
    "open_overdue",
    "clues_reported",
    "clues_handled",
    "clues_cancelled",
    "entities_needing_licence",
    "entities_licensed",
)


@dataclass(frozen=True)
class StatsWindow:
    """A half-open window [since, until) of tz-aware instants."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class UnitStats:
    """一个单位（镇街、村（社区）、网格或部门）的数字；比率在分母为 0 时为 null。"""

    code: str
    name: str
    tasks_pushed: int = field(metadata={"description": "期内推送的任务数"})
    tasks_cancelled: int
    tasks_completed: int = field(metadata={"description": "其中已办结"})
    tasks_on_time: int = field(metadata={"description": "其中按时办结"})
    open_overdue: int = field(metadata={"description": "当前逾期未办（不论何时推送）"})
    clues_reported: int
    clues_handled: int
    clues_cancelled: int
    entities_needing_licence: int
    entities_licensed: int
    completion_rate: float | None = field(metadata={"description": "任务完成率"})
    on_time_rate: float | None = field(metadata={"description": "按时率"})
    clue_handling_rate: float | None = field(metadata={"description": "线索办结率"})
    licensing_rate: float | None = field(metadata={"description": "持证率"})


@dataclass(frozen=True)
class OverdueShare:
    """逾期时间中归于某责任方的部分。"""

    holder: str
    overdue_seconds: int
    overdue_hours: float


@dataclass(frozen=True)
class OverdueItem:
    """逾期清单的一项：任务、当前责任方、期限、逾期天数，及逾期时间按当时责任方的归属。"""

    id: int
    kind: str
    duty: str
    entity_uscc: str | None
    clue_id: int | None
    grid_code: str
    worker_id: int | None
    holder: str | None
    status: str
    due_at: datetime
    overdue_days: float
    attribution: list[OverdueShare]


@dataclass(frozen=True)
class Headline:
    """种子系统的三个总体数字（本系统按同一口径计算），及种子系统报告的数值。"""

    completion_rate: float | None
    clue_handling_rate: float | None
    licensing_rate: float | None
    seed_reported: dict[str, float]


@dataclass(frozen=True)
class StatsReport:
    """一个层级的统计：各单位、合计、逾期清单（最久的在前）；headline 为全市（或本账号范围）的总体数字。"""

    level: Level
    code: str | None
    from_: Annotated[Instant, Field(alias="from")] = field(metadata={"description": "起始（含）"})
    to: Instant = field(metadata={"description": "截止（不含）"})
    units: list[UnitStats]
    totals: UnitStats
    overdue: list[OverdueItem]
    headline: Headline | None = None


def unit_stats(
    conn: Connection,
    *,
    level: str,
    code: str | None,
    window: StatsWindow,
    town_codes: frozenset[str] | None = None,
    now: datetime | None = None,
    overdue_limit: int = 100,
) -> StatsReport:
    """The figures of every unit of `level` (or the one `code`) within `town_codes` (None: the city), and the overdue list."""
    _check(level, window)
    moment = now or clock.now()
    params: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        "now": moment,
        "open": list(OPEN_STATUSES),
        "towns": sorted(town_codes) if town_codes is not None else None,
    }
    if level == "department":
        return _department_stats(conn, code, window, params, overdue_limit)
    units = _level_units(conn, level, code, town_codes)
    params["code"] = code
    task_key, clue_key, entity_key = _TASK_UNIT[level], _CLUE_UNIT[level], _ENTITY_UNIT[level]
    task_filter = _unit_filter(task_key, "t")
    clue_filter = _unit_filter(clue_key, "c")
    entity_filter = _unit_filter(entity_key, "e")

    def unit(key: str | None) -> dict[str, Any]:
        # Rows with no unit (a clue nobody could place) count in the totals only.
        key = key or ""
        if key not in units:
            units[key] = _empty(key, key)
        return units[key]

    for r in _task_rows(conn, task_key, task_filter, params):
        _add_tasks(unit(r.unit), r)
    for r in _open_overdue_rows(conn, task_key, task_filter, params):
        unit(r.unit)["open_overdue"] += r.overdue
    clues = conn.execute(
        text(
            f"SELECT {clue_key} AS unit, count(*) AS reported, count(*) FILTER (WHERE c.status = 'closed') AS handled, "  # noqa: S608 - fixed SQL fragments; values are bound
            "count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled FROM clue c "
            f"WHERE c.reported_at >= :since AND c.reported_at < :until AND {clue_filter} GROUP BY 1"
        ),
        params,
    ).all()
    for r in clues:
        _add_clues(unit(r.unit), r)
    entities = conn.execute(
        text(
            f"SELECT {entity_key} AS unit, count(*) AS needing, "  # noqa: S608 - fixed SQL fragments; values are bound
            "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM entity_licence l WHERE l.uscc = e.uscc)) AS licensed "
            f"FROM entity e WHERE e.status = 'open' AND e.needs_licence AND {entity_filter} GROUP BY 1"
        ),
        params,
    ).all()
    for r in entities:
        u = unit(r.unit)
        u["entities_needing_licence"] += r.needing
        u["entities_licensed"] += r.licensed
    overdue = _overdue(conn, task_filter, params, moment, overdue_limit)
    return _finish(level, code, window, units, overdue)


def stats_report(
    conn: Connection,
    *,
    level: str,
    code: str | None,
    window: StatsWindow,
    town_codes: frozenset[str] | None = None,
    now: datetime | None = None,
    overdue_limit: int = 100,
) -> StatsReport:
    """`unit_stats` with its headline: the figures of every unit of `level` (or the one `code`) and the headline
    over the same towns.

    Every territorial unit of the caller's towns, listed or not, counts in the totals of a territorial level
    asked without a code, so those totals are the headline's; otherwise the headline costs one more query.
    """
    out = unit_stats(
        conn, level=level, code=code, window=window, town_codes=town_codes, now=now, overdue_limit=overdue_limit
    )
    if level != "department" and code is None:
        figures = _headline_of(out.totals)
    else:
        figures = headline(conn, window=window, town_codes=town_codes)
    return replace(out, headline=figures)


def headline(conn: Connection, *, window: StatsWindow, town_codes: frozenset[str] | None = None) -> Headline:
    """The seed system's three headline figures over the window, computed as the unit figures are."""
    _check("town", window)
    # The town-level totals' own filters, without grouping by unit and without the on-time and overdue figures.
    row = conn.execute(
        text(
            f"""
            WITH tasks AS (
                SELECT count(*) AS pushed,
                       count(*) FILTER (WHERE t.status = 'cancelled') AS tasks_cancelled,
                       count(*) FILTER (WHERE t.status = 'closed') AS completed
                FROM task t
                WHERE t.kind = 'task' AND t.pushed_at >= :since AND t.pushed_at < :until AND {_town_filter("t")}
            ), clues AS (
                SELECT count(*) AS reported,
                       count(*) FILTER (WHERE c.status = 'closed') AS handled,
                       count(*) FILTER (WHERE c.status = 'cancelled') AS clues_cancelled
                FROM clue c
                WHERE c.reported_at >= :since AND c.reported_at < :until AND {_town_filter("c")}
            ), entities AS (
                SELECT count(*) AS needing,
                       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM entity_licence l WHERE l.uscc = e.uscc))
                           AS licensed
                FROM entity e
                WHERE e.status = 'open' AND e.needs_licence AND {_town_filter("e")}
            )
            SELECT * FROM tasks, clues, entities
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {
            "since": window.since,
            "until": window.until,
            "towns": sorted(town_codes) if town_codes is not None else None,
        },
    ).one()
    totals = _empty("", "合计")
    totals.update(
        tasks_pushed=row.pushed,
        tasks_cancelled=row.tasks_cancelled,
        tasks_completed=row.completed,
        clues_reported=row.reported,
        clues_handled=row.handled,
        clues_cancelled=row.clues_cancelled,
        entities_needing_licence=row.needing,
        entities_licensed=row.licensed,
    )
    return _headline_of(_with_rates(totals))


# ------------------------------------------------------------------------------------------------ internals


def _headline_of(totals: UnitStats) -> Headline:
    return Headline(
        completion_rate=totals.completion_rate,
        clue_handling_rate=totals.clue_handling_rate,
        licensing_rate=totals.licensing_rate,
        seed_reported=dict(SEED_HEADLINE),
    )


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator > 0 else None


def _check(level: str, window: StatsWindow) -> None:
    if level not in LEVELS:
        raise StatsError(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    if window.since.tzinfo is None or window.until.tzinfo is None:
        raise StatsError("the window's instants must carry a time zone", field="from")
    if window.until < window.since:
        raise StatsError(f"the window ends ({window.until}) before it starts ({window.since})", field="to")


def _level_units(
    conn: Connection, level: str, code: str | None, town_codes: frozenset[str] | None
) -> dict[str, dict[str, Any]]:
    """The units to list, empty: the one named, or every unit of the level within the caller's towns."""
    rows: list[tuple[str, str, str]] = [(r[0], r[1], r[2]) for r in conn.execute(text(_UNITS[level]))]
    if code is not None:
        found = [(c, name, town) for c, name, town in rows if c == code]
        if not found:
            raise StatsError(f"no {level} with code {code}", field="code")
        if town_codes is not None and found[0][2] not in town_codes:
            raise OutOfScope(f"{level} {code} lies outside the caller's towns")
        rows = found
    return {c: _empty(c, name) for c, name, town in rows if town_codes is None or town in town_codes}


def _unit_filter(key: str, alias: str) -> str:
    """The unit (when one is named) and the caller's towns (when confined), as a fixed SQL fragment."""
    return f"(CAST(:code AS text) IS NULL OR {key} = :code) AND {_town_filter(alias)}"


def _town_filter(alias: str) -> str:
    return f"(CAST(:towns AS text[]) IS NULL OR {alias}.town_code = ANY(:towns))"


def _task_rows(conn: Connection, key: str, condition: str, params: dict[str, Any]) -> Sequence[Any]:
    """Per unit: supervision tasks pushed in the window, cancelled, closed, and closed on time."""
    return conn.execute(
        text(
            f"""
            WITH pushed AS (
                SELECT t.id, t.status, {key} AS unit FROM task t
                WHERE t.kind = 'task' AND t.pushed_at >= :since AND t.pushed_at < :until AND {condition}
            ), {_LATE_SPANS}
            SELECT p.unit, count(*) AS pushed,
                   count(*) FILTER (WHERE p.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE p.status = 'closed') AS completed,
                   count(*) FILTER (WHERE p.status = 'closed' AND late.task_id IS NULL) AS on_time
            FROM pushed p LEFT JOIN late ON late.task_id = p.id
            GROUP BY 1
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        params,
    ).all()


# A task ran late when a deadline in force (task_event.due_at) passed before its next event, or before now for the
# last one: closing clears the deadline, so a task closed in time has no late span.
_LATE_SPANS = """
    spans AS (
        SELECT te.task_id, te.due_at, lead(te.at) OVER (PARTITION BY te.task_id ORDER BY te.at, te.id) AS next_at
        FROM task_event te WHERE te.task_id IN (SELECT id FROM pushed)
    ), late AS (
        SELECT DISTINCT task_id FROM spans WHERE due_at IS NOT NULL AND coalesce(next_at, :now) > due_at
    )
"""


def _open_overdue_rows(conn: Connection, key: str, condition: str, params: dict[str, Any]) -> Sequence[Any]:
    """Per unit: open tasks (of either kind) past their deadline now, the same set the overdue list shows."""
    return conn.execute(
        text(
            f"SELECT {key} AS unit, count(*) AS overdue FROM task t "  # noqa: S608 - fixed SQL fragments; values are bound
            f"WHERE t.status = ANY(:open) AND t.due_at < :now AND {condition} GROUP BY 1"
        ),
        params,
    ).all()


def _empty(code: str, name: str) -> dict[str, Any]:
    return {"code": code, "name": name, **dict.fromkeys(_METRICS, 0)}


def _add_tasks(u: dict[str, Any], r: Any) -> None:
    u["tasks_pushed"] += r.pushed
    u["tasks_cancelled"] += r.cancelled
    u["tasks_completed"] += r.completed
    u["tasks_on_time"] += r.on_time


def _add_clues(u: dict[str, Any], r: Any) -> None:
    u["clues_reported"] += r.reported
    u["clues_handled"] += r.handled
    u["clues_cancelled"] += r.cancelled


def _with_rates(u: dict[str, Any]) -> UnitStats:
    return UnitStats(
        **u,
        completion_rate=_rate(u["tasks_completed"], u["tasks_pushed"] - u["tasks_cancelled"]),
        on_time_rate=_rate(u["tasks_on_time"], u["tasks_completed"]),
        clue_handling_rate=_rate(u["clues_handled"], u["clues_reported"] - u["clues_cancelled"]),
        licensing_rate=_rate(u["entities_licensed"], u["entities_needing_licence"]),
    )


def _finish(
    level: str, code: str | None, window: StatsWindow, units: dict[str, dict[str, Any]], overdue: list[OverdueItem]
) -> StatsReport:
    totals = _empty("", "合计")
    for u in units.values():
        for key in _METRICS:
            totals[key] += u[key]
    listed = [_with_rates(u) for _, u in sorted(units.items()) if u["code"]]
    return StatsReport(
        level=cast(Level, level),
        code=code,
        from_=window.since,
        to=window.until,
        units=listed,
        totals=_with_rates(totals),
        overdue=overdue,
    )


def _overdue(
    conn: Connection, condition: str, params: dict[str, Any], moment: datetime, limit: int
) -> list[OverdueItem]:
    """Open tasks past their deadline, most overdue first, with overdue time attributed to each holder."""
    if limit <= 0:
        return []
    rows = (
        conn.execute(
            text(
                "SELECT t.id, t.kind, t.duty, t.entity_uscc, t.clue_id, t.grid_code, t.worker_id, t.holder, t.status, "  # noqa: S608 - fixed SQL fragments; values are bound
                "t.due_at FROM task t WHERE t.status = ANY(:open) AND t.due_at < :now AND "
                f"{condition} ORDER BY t.due_at, t.id LIMIT :limit"
            ),
            {**params, "limit": limit},
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    events: dict[int, list[Any]] = {}
    for e in conn.execute(
        text("SELECT task_id, at, due_at, holder FROM task_event WHERE task_id = ANY(:ids) ORDER BY task_id, at, id"),
        {"ids": [r["id"] for r in rows]},
    ):
        events.setdefault(e.task_id, []).append(e)
    out = []
    for r in rows:
        attribution = overdue_attribution(events.get(r["id"], []), now=moment)
        out.append(
            OverdueItem(
                **r,
                overdue_days=round((moment - r["due_at"]).total_seconds() / 86400, 1),
                attribution=[
                    OverdueShare(holder, round(seconds), round(seconds / 3600, 1))
                    for holder, seconds in sorted(attribution.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
            )
        )
    return out


def _department_stats(
    conn: Connection, code: str | None, window: StatsWindow, params: dict[str, Any], limit: int
) -> StatsReport:
    """Department level: the tasks routed to each department, its clues, and the licensing rate of its licences."""
    departments = {d.code: d.name for d in default_router().departments()}
    if code is not None and code not in departments:
        raise StatsError(f"no department with code {code}", field="code")
    selected = [code] if code is not None else list(departments)
    params = {**params, "departments": selected}
    units = {c: _empty(c, departments[c]) for c in selected}
    for r in _department_task_rows(conn, params):
        _add_tasks(units[r.unit], r)
    for r in conn.execute(
        text(
            "SELECT d AS unit, count(*) AS overdue FROM task t, unnest(string_to_array(t.department_codes, ',')) d "  # noqa: S608 - fixed SQL fragments; values are bound
            f"WHERE t.status = ANY(:open) AND t.due_at < :now AND d = ANY(:departments) AND {_town_filter('t')} "
            "GROUP BY 1"
        ),
        params,
    ):
        units[r.unit]["open_overdue"] += r.overdue
    for r in conn.execute(
        text(
            "SELECT c.department_code AS unit, count(*) AS reported, "  # noqa: S608 - fixed SQL fragments; values are bound
            "count(*) FILTER (WHERE c.status = 'closed') AS handled, "
            "count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled FROM clue c "
            "WHERE c.reported_at >= :since AND c.reported_at < :until AND c.department_code = ANY(:departments) "
            f"AND {_town_filter('c')} GROUP BY 1"
        ),
        params,
    ):
        _add_clues(units[r.unit], r)
    _department_licensing(conn, units, departments, params["towns"])
    overdue = _overdue(conn, f"{_ROUTED} AND {_town_filter('t')}", params, params["now"], limit)
    return _finish("department", code, window, units, overdue)


def _department_task_rows(conn: Connection, params: dict[str, Any]) -> Sequence[Any]:
    """Per department: its supervision tasks pushed in the window, cancelled, closed, and closed on time."""
    return conn.execute(
        text(
            f"""
            WITH pushed AS (
                SELECT t.id, t.status, d AS unit FROM task t, unnest(string_to_array(t.department_codes, ',')) d
                WHERE t.kind = 'task' AND t.pushed_at >= :since AND t.pushed_at < :until AND d = ANY(:departments)
                  AND {_town_filter("t")}
            ), {_LATE_SPANS}
            SELECT p.unit, count(*) AS pushed,
                   count(*) FILTER (WHERE p.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE p.status = 'closed') AS completed,
                   count(*) FILTER (WHERE p.status = 'closed' AND late.task_id IS NULL) AS on_time
            FROM pushed p LEFT JOIN late ON late.task_id = p.id GROUP BY 1
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        params,
    ).all()


def _department_licensing(
    conn: Connection, units: dict[str, dict[str, Any]], names: dict[str, str], towns: list[str] | None
) -> None:
    """Open entities whose scope needs a department's licence, and those holding a licence from it."""
    router = default_router()
    # A licence counts for the department whose name it carries; an office named with a bracket (…（药品监管）)
    # issues under its bureau's name. Issuers are written with or without the city prefix.
    bureaus = {code: names[code].split("（")[0].removeprefix(_CITY_PREFIX) for code in units}
    held: dict[str, set[str]] = {}
    for uscc, issuer in conn.execute(
        text(
            "SELECT l.uscc, l.department FROM entity_licence l JOIN entity e ON e.uscc = l.uscc "  # noqa: S608 - fixed SQL fragments; values are bound
            f"WHERE e.status = 'open' AND e.needs_licence AND {_town_filter('e')}"
        ),
        {"towns": towns},
    ):
        held.setdefault(uscc, set()).add(str(issuer).removeprefix(_CITY_PREFIX))
    # About half the entities share their scope with another: route each distinct scope once.
    scopes: dict[str, list[str]] = {}
    scope_sql = "SELECT e.uscc, e.business_scope FROM entity e WHERE e.status = 'open' AND e.needs_licence AND "
    for uscc, scope in conn.execute(text(scope_sql + _town_filter("e")), {"towns": towns}):
        scopes.setdefault(scope, []).append(uscc)
    for scope, usccs in scopes.items():
        for code in router.departments_for_scope(scope):
            if code not in units:
                continue
            bureau = bureaus[code]
            units[code]["entities_needing_licence"] += len(usccs)
            units[code]["entities_licensed"] += sum(
                1 for u in usccs if any(issuer.endswith(bureau) for issuer in held.get(u, ()))
            )
