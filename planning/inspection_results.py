"""planning.inspection_results: results per item of a visit, their effects, and their publication (一公开).

A result is recorded per item of a drawn visit: no problem (`ok`), a problem found with a notice to rectify
(`problem`), or the entity not found at its registered address (`not_found`, 通过登记的住所无法联系). Effects, in
the recording transaction:

- `problem`: a credit record (kind finding, source inspection, source_id `result:{id}`), which the monthly credit
  classes read; and a task in the existing task flow for the entity's grid: created through
  `supervision.creation.create_tasks` (pushed and handed to a grid worker), then moved through
  `supervision.transitions` as the inspection team's own visit: `inspected_problem` → `notice_issued`. The grid
  worker thus holds a re-inspection (复查) of the rectification, on the workflow's 10-working-day clock. Its duty:
  the licence check for an item restricted to licensed entities, else the opening check (the on-site duty of the
  "4+2" that a re-visit of the premises is); its department is the item's.
- `not_found`: a credit record (finding, 通过登记的住所无法联系) and an address check task (地址核查, the grid's
  duty for an entity not at its address; the review queue of `supervision.review` is for registrations that could
  not be placed, not for this).

One task per visit and duty (its `campaign` is `inspection:{plan_id}`). A result is recorded once, by whom and when
kept on its row: sending the same result again (a retry) changes nothing, a different one is refused (409
`already_recorded`, or `already_published` once public) — a recorded finding has already reached the entity's
credit and the grid's task flow, and a silent overwrite would leave no trace of what the team first reported. A result is due for publication `publish_days` working days after the day it was
recorded (`supervision.calendar`); the daily job publishes what is due; a plan's results can be published earlier.
What is published: entity name, credit code, item, outcome — never inspectors, persons, notes or credit classes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal, cast

from sqlalchemy import Connection, text

from gis import clock
from planning import credit_service
from planning.errors import InvalidPlan, PlanNotFound, PlanState
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, WorkCalendar, default_calendar
from supervision.creation import NewTask, create_tasks
from supervision.errors import OutOfScope
from supervision.jobs import DailyJob, log_job
from supervision.scope import CITY, Scope
from supervision.transitions import Move, transition
from supervision.workflow import Duty, Status

Outcome = Literal["ok", "problem", "not_found"]
OUTCOMES: tuple[str, ...] = ("ok", "problem", "not_found")
OUTCOME_LABELS_ZH: dict[str, str] = {
    "ok": "未发现问题",
    "problem": "发现问题，已责令整改",
    "not_found": "通过登记的住所无法联系",
}
ADVERSE: frozenset[str] = frozenset({"problem", "not_found"})
PLAN_STATUS_LABELS_ZH: dict[str, str] = {"committed": "已公布承诺，待抽取", "drawn": "已抽取", "cancelled": "已撤销"}
RECENT_MONTHS = 12  # recusal: an inspector does not return to an entity their team visited this recently
NOTE_MAX = 2000


@dataclass(frozen=True)
class ResultView:
    """一个检查事项的检查结果（内部视图，含备注与录入人）。"""

    id: int
    visit_id: int
    plan_id: int
    uscc: str = field(metadata={"description": "统一社会信用代码"})
    item_code: str = field(metadata={"description": "抽查事项编码"})
    item_name: str = field(metadata={"description": "抽查事项名称"})
    department_code: str = field(metadata={"description": "事项所属部门"})
    outcome: str = field(metadata={"description": "检查结果：ok 未发现问题、problem 发现问题、not_found 查无下落"})
    outcome_zh: str = field(metadata={"description": "检查结果（中文）"})
    note: str = field(metadata={"description": "检查备注（内部，不公示）"})
    recorded_by: str = field(metadata={"description": "录入人"})
    recorded_at: datetime = field(metadata={"description": "录入时间"})
    publish_due: date = field(metadata={"description": "最迟公示日期（工作日计算）"})
    published_at: datetime | None = field(metadata={"description": "公示时间；未公示为空"})
    task_id: int | None = field(metadata={"description": "由此产生的网格任务（复查或地址核查）"})
    visit_status: str = field(metadata={"description": "检查户的状态：planned 待检查、done 已完成"})


# ------------------------------------------------------------------------------------------------ recusal input


def recent_visits(conn: Connection, as_of: date) -> dict[int, frozenset[str]]:
    """Inspector id → credit codes their teams visited (a result recorded) in the 12 months up to `as_of`."""
    rows = conn.execute(
        text(
            """
            SELECT member AS inspector_id, array_agg(DISTINCT v.uscc) AS usccs
            FROM inspection_result r
            JOIN inspection_visit v ON v.id = r.visit_id
            JOIN inspection_team t ON t.id = v.team_id
            CROSS JOIN LATERAL unnest(t.inspector_ids) AS member
            WHERE (r.recorded_at AT TIME ZONE 'Asia/Shanghai')::date
                  > (CAST(:as_of AS date) - make_interval(months => :months))::date
              AND (r.recorded_at AT TIME ZONE 'Asia/Shanghai')::date <= :as_of
            GROUP BY member
            """
        ),
        {"as_of": as_of, "months": RECENT_MONTHS},
    )
    return {int(r.inspector_id): frozenset(r.usccs) for r in rows}


# ------------------------------------------------------------------------------------------------ scope


def plan_visible(scope: Scope, departments: Sequence[str], towns: Sequence[str]) -> bool:
    """Whether a plan of these departments and towns is the caller's to read (inspection.read's scope rule)."""
    if scope.kind == "city":
        return True
    if scope.kind == "department":
        return scope.code in departments
    if scope.kind == "town":
        return scope.towns is not None and bool(scope.towns & set(towns))
    return False


def _visit(conn: Connection, visit_id: int, *, for_update: bool = False) -> dict[str, Any]:
    """A visit with its plan's state and the entity's name and place (PlanNotFound when unknown)."""
    if for_update:
        # Two results of one visit recorded at once must not both miss the other when the visit's status is set.
        conn.execute(text("SELECT 1 FROM inspection_visit WHERE id = :id FOR UPDATE"), {"id": visit_id})
    row = conn.execute(
        text(
            """
            SELECT v.id, v.plan_id, v.uscc, v.town_code, v.grid_code, v.item_codes, v.department_codes, v.team_id,
                   v.unmatched_reason, v.status, v.window_start, v.window_end, v.service_minutes,
                   ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat,
                   p.status AS plan_status, p.title AS plan_title, p.publish_days, p.visit_date,
                   p.department_codes AS plan_departments, p.town_codes AS plan_towns,
                   e.name, e.raw_address, e.grid_code AS entity_grid, ST_X(e.geom) AS entity_lon,
                   ST_Y(e.geom) AS entity_lat
            FROM inspection_visit v
            JOIN inspection_plan p ON p.id = v.plan_id
            JOIN entity e ON e.uscc = v.uscc
            WHERE v.id = :id
            """
        ),
        {"id": visit_id},
    ).first()
    if row is None:
        raise PlanNotFound(f"检查户 {visit_id} 不存在", reason="visit_not_found")
    return dict(row._mapping)


def _items(conn: Connection, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Item code → its name, department and licence flag."""
    rows = conn.execute(
        text("SELECT code, name, department_code, licence_only FROM inspection_item WHERE code = ANY(:codes)"),
        {"codes": list(codes)},
    )
    return {r.code: dict(r._mapping) for r in rows}


# ------------------------------------------------------------------------------------------------ recording


def record_result(
    conn: Connection,
    visit_id: int,
    *,
    item_code: str,
    outcome: str,
    note: str,
    actor: str,
    scope: Scope,
    calendar: WorkCalendar | None = None,
) -> ResultView:
    """Record (or correct, before publication) the result of one item of a drawn visit, with its effects."""
    calendar = calendar or default_calendar()
    if outcome not in OUTCOMES:
        raise InvalidPlan(
            f"检查结果 {outcome!r} 无效，应为 ok（未发现问题）、problem（发现问题）或 not_found（查无下落）",
            reason="invalid_outcome",
        )
    if len(note) > NOTE_MAX:
        raise InvalidPlan(f"备注不能超过 {NOTE_MAX} 字", reason="note_too_long")
    visit = _visit(conn, visit_id, for_update=True)
    if not plan_visible(scope, visit["plan_departments"], visit["plan_towns"]) or scope.kind not in (
        "city",
        "department",
    ):
        raise OutOfScope(f"检查户 {visit_id} 所属的抽查计划不在您的范围内")
    if item_code not in visit["item_codes"]:
        raise InvalidPlan(f"事项 {item_code} 不在检查户 {visit_id} 的抽查事项中", reason="item_not_in_visit")
    item = _items(conn, [item_code]).get(item_code)
    department = item["department_code"] if item else None
    if scope.kind != "city" and not (scope.kind == "department" and scope.code == department):
        raise OutOfScope(f"只能录入本部门事项的检查结果（事项 {item_code} 属于 {department}）")
    if visit["plan_status"] != "drawn":
        raise PlanState(f"抽查计划 {visit['plan_id']} 尚未抽取或已撤销，不能录入结果", reason="not_drawn")
    if visit["team_id"] is None:
        raise PlanState(f"检查户 {visit_id} 未能匹配执法人员，无人前往检查", reason="visit_unmatched")
    previous = conn.execute(
        text("SELECT * FROM inspection_result WHERE visit_id = :v AND item_code = :i FOR UPDATE"),
        {"v": visit_id, "i": item_code},
    ).first()
    if previous is not None:
        if (previous.outcome, previous.note) == (outcome, note):
            return result_by_id(conn, int(previous.id))  # the same result sent twice (a retry): nothing new
        when = previous.recorded_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        raise PlanState(
            f"事项 {item_code} 已由 {previous.recorded_by} 于 {when} 录入结果（{OUTCOME_LABELS_ZH[previous.outcome]}），"
            + ("且已公示，" if previous.published_at is not None else "")
            + "检查结果一经录入不可更改",
            reason="already_published" if previous.published_at is not None else "already_recorded",
        )
    _check_consistent_with_visit(conn, visit_id, item_code, outcome)
    now = clock.now()
    publish_due = calendar.add_working_days(now.astimezone(SHANGHAI).date(), int(visit["publish_days"]))
    result_id = int(
        conn.execute(
            text(
                """
                INSERT INTO inspection_result (visit_id, item_code, outcome, note, recorded_by, recorded_at,
                                               publish_due)
                VALUES (:v, :i, :outcome, :note, :by, :at, :due)
                RETURNING id
                """
            ),
            {
                "v": visit_id,
                "i": item_code,
                "outcome": outcome,
                "note": note,
                "by": actor,
                "at": now,
                "due": publish_due,
            },
        ).scalar_one()
    )
    if outcome in ADVERSE:
        _record_credit(conn, visit, result_id, item_code, department, outcome, item, actor=actor, at=now)
        task_id = _follow_up_task(conn, visit, item_code, department, outcome, item, actor=actor, at=now)
        conn.execute(text("UPDATE inspection_result SET task_id = :t WHERE id = :id"), {"t": task_id, "id": result_id})
    conn.execute(
        text(
            """
            UPDATE inspection_visit v SET status = CASE
                WHEN (SELECT count(DISTINCT r.item_code) FROM inspection_result r
                      WHERE r.visit_id = v.id AND r.item_code = ANY(v.item_codes)) = cardinality(v.item_codes)
                THEN 'done' ELSE 'planned' END
            WHERE v.id = :id
            """
        ),
        {"id": visit_id},
    )
    return result_by_id(conn, result_id)


def _check_consistent_with_visit(conn: Connection, visit_id: int, item_code: str, outcome: str) -> None:
    """Refuse a result that contradicts the visit's others: 查无下落 means the entity is not at its registered address,
    which holds for the whole visit (every item of one entity, one door), so it never stands beside an item found
    there (未发现问题 or 发现问题). The visit row is locked by the caller, so two departments cannot race past this."""
    others = conn.execute(
        text(
            "SELECT item_code, outcome, recorded_by FROM inspection_result "
            "WHERE visit_id = :v AND item_code <> :i ORDER BY recorded_at, id"
        ),
        {"v": visit_id, "i": item_code},
    ).all()
    if outcome == "not_found":
        found = [r for r in others if r.outcome != "not_found"]
        if found:
            first = found[0]
            raise PlanState(
                f"检查户 {visit_id} 的事项 {first.item_code} 已由 {first.recorded_by} 录入“{OUTCOME_LABELS_ZH[first.outcome]}”，"
                "说明检查人员在登记住所找到了该主体，不能再对同一检查户录入“通过登记的住所无法联系”",
                reason="visit_found_recorded",
            )
        return
    missing = [r for r in others if r.outcome == "not_found"]
    if missing:
        first = missing[0]
        raise PlanState(
            f"检查户 {visit_id} 的事项 {first.item_code} 已由 {first.recorded_by} 录入“通过登记的住所无法联系”："
            f"主体不在登记住所，整户各事项均无法检查，不能录入“{OUTCOME_LABELS_ZH[outcome]}”，"
            "请对其余事项同样录入“通过登记的住所无法联系”",
            reason="visit_not_found_recorded",
        )


def result_by_id(conn: Connection, result_id: int) -> ResultView:
    """One result as the API answers it."""
    row = conn.execute(
        text(
            """
            SELECT r.id, r.visit_id, v.plan_id, v.uscc, r.item_code, coalesce(i.name, r.item_code) AS item_name,
                   coalesce(i.department_code, '') AS department_code, r.outcome, r.note, r.recorded_by,
                   r.recorded_at, r.publish_due, r.published_at, r.task_id, v.status AS visit_status
            FROM inspection_result r
            JOIN inspection_visit v ON v.id = r.visit_id
            LEFT JOIN inspection_item i ON i.code = r.item_code
            WHERE r.id = :id
            """
        ),
        {"id": result_id},
    ).one()
    return ResultView(
        **{k: v for k, v in row._mapping.items()},
        outcome_zh=OUTCOME_LABELS_ZH[row.outcome],
    )


def _record_credit(
    conn: Connection,
    visit: dict[str, Any],
    result_id: int,
    item_code: str,
    department: str | None,
    outcome: str,
    item: dict[str, Any] | None,
    *,
    actor: str,
    at: datetime,
) -> None:
    """The finding the credit classes read (kind finding, source inspection, source_id result:{id})."""
    name = item["name"] if item else item_code
    detail = (
        f"双随机抽查（计划 {visit['plan_id']}）事项「{name}」发现问题，已责令整改"
        if outcome == "problem"
        else f"双随机抽查（计划 {visit['plan_id']}）：通过登记的住所无法联系"
    )
    credit_service.record(
        conn,
        uscc=visit["uscc"],
        kind="finding",
        source="inspection",
        source_id=f"result:{result_id}",
        department_code=department,
        detail=detail,
        actor=actor,
        at=at,
    )


def _follow_up_task(
    conn: Connection,
    visit: dict[str, Any],
    item_code: str,
    department: str | None,
    outcome: str,
    item: dict[str, Any] | None,
    *,
    actor: str,
    at: datetime,
) -> int | None:
    """The grid's task for an adverse result, in the existing flow (see the module docstring); None without a grid."""
    grid = visit["entity_grid"]
    if grid is None:
        return None
    if outcome == "problem":
        duty = Duty.LICENCE_CHECK if item and item["licence_only"] else Duty.OPENING_CHECK
        note = f"双随机抽查发现问题（{item['name'] if item else item_code}），已下达整改通知：请复查整改情况"
    else:
        duty = Duty.ADDRESS_CHECK
        note = "双随机抽查：通过登记的住所无法联系，请核查其住所"
    campaign = f"inspection:{visit['plan_id']}"
    system = Actor(actor, "system", CITY)
    created = create_tasks(
        conn,
        [
            NewTask(
                duty,
                grid,
                at,
                visit["uscc"],
                department_codes=[department] if department else (),
                campaign=campaign,
                note=note,
            )
        ],
        actor=system,
    )
    if not created:
        existing = conn.execute(
            text("SELECT id FROM task WHERE entity_uscc = :u AND duty = :d AND campaign = :c"),
            {"u": visit["uscc"], "d": duty.value, "c": campaign},
        ).scalar_one()
        return int(existing)
    task_id = created[0]
    lon, lat = visit["entity_lon"], visit["entity_lat"]
    if outcome == "problem" and lon is not None and lat is not None:
        # The team's visit was the task's inspection: it found the problem and served the notice; the grid worker
        # now holds the re-inspection. A task no worker could take yet stays pushed (the first visit is theirs).
        for target in (Status.INSPECTED_PROBLEM, Status.NOTICE_ISSUED):
            row = conn.execute(text("SELECT status, version FROM task WHERE id = :id"), {"id": task_id}).one()
            if row.status not in (Status.ASSIGNED.value, Status.INSPECTED_PROBLEM.value):
                break
            transition(
                conn,
                task_id,
                Move(to=target.value, version=row.version, note=note, lon=lon, lat=lat, at=at),
                actor=system,
            )
    return task_id


# ------------------------------------------------------------------------------------------------ reading


def visit_view(conn: Connection, visit_id: int, scope: Scope) -> dict[str, Any]:
    """A visit for its plan's readers: entity, items with their results, team members (not for the public)."""
    visit = _visit(conn, visit_id)
    if not plan_visible(scope, visit["plan_departments"], visit["plan_towns"]):
        raise OutOfScope(f"检查户 {visit_id} 所属的抽查计划不在您的范围内")
    items = _items(conn, visit["item_codes"])
    ids = conn.execute(text("SELECT item_code, id FROM inspection_result WHERE visit_id = :v"), {"v": visit_id})
    views = {r.item_code: result_by_id(conn, int(r.id)) for r in ids}
    team = conn.execute(
        text(
            """
            SELECT t.id, t.team_no, t.department_codes,
                   coalesce(json_agg(json_build_object('id', i.id, 'code', i.code, 'name', i.name,
                                                       'department', i.department_code)
                                     ORDER BY i.id) FILTER (WHERE i.id IS NOT NULL), '[]') AS inspectors
            FROM inspection_team t LEFT JOIN inspector i ON i.id = ANY(t.inspector_ids)
            WHERE t.id = :id GROUP BY t.id
            """
        ),
        {"id": visit["team_id"]},
    ).first()
    return {
        "id": visit["id"],
        "plan_id": visit["plan_id"],
        "plan_title": visit["plan_title"],
        "plan_status": visit["plan_status"],
        "uscc": visit["uscc"],
        "name": visit["name"],
        "address": visit["raw_address"],
        "town_code": visit["town_code"],
        "grid_code": visit["grid_code"],
        "lon": visit["lon"],
        "lat": visit["lat"],
        "departments": list(visit["department_codes"]),
        "status": visit["status"],
        "unmatched_reason": visit["unmatched_reason"],
        "items": [
            {
                "code": code,
                "name": items[code]["name"] if code in items else code,
                "department": items[code]["department_code"] if code in items else None,
                "result": views.get(code),
            }
            for code in visit["item_codes"]
        ],
        "team": None
        if team is None
        else {
            "id": team.id,
            "team_no": team.team_no,
            "departments": list(team.department_codes),
            "inspectors": list(team.inspectors),
        },
    }


# ------------------------------------------------------------------------------------------------ publication


def publish_due_results(conn: Connection, today: date) -> int:
    """Publish every recorded result whose publication day has come; how many were published."""
    moment = clock.now()
    published = conn.execute(
        text("UPDATE inspection_result SET published_at = :at WHERE published_at IS NULL AND publish_due <= :today"),
        {"at": moment, "today": today},
    ).rowcount
    return int(published)


def publish_plan(conn: Connection, plan_id: int, *, actor: str, scope: Scope) -> int:
    """Publish a drawn plan's recorded results now (an officer: their own department's items); how many."""
    plan = conn.execute(
        text("SELECT id, status, department_codes, town_codes FROM inspection_plan WHERE id = :id FOR UPDATE"),
        {"id": plan_id},
    ).first()
    if plan is None:
        raise PlanNotFound(f"抽查计划 {plan_id} 不存在")
    if scope.kind == "city":
        department = None
    elif scope.kind == "department" and scope.code in plan.department_codes:
        department = scope.code
    else:
        raise OutOfScope(f"抽查计划 {plan_id} 不属于您的部门")
    if plan.status != "drawn":
        raise PlanState(f"抽查计划 {plan_id} 尚未抽取或已撤销，没有可公示的结果", reason="not_drawn")
    moment = clock.now()
    published = conn.execute(
        text(
            """
            UPDATE inspection_result r SET published_at = :at
            FROM inspection_visit v, inspection_item i
            WHERE v.id = r.visit_id AND v.plan_id = :plan_id AND i.code = r.item_code AND r.published_at IS NULL
              AND (CAST(:department AS text) IS NULL OR i.department_code = :department)
            """
        ),
        {"at": moment, "plan_id": plan_id, "department": department},
    ).rowcount
    # Who published early, and what: kept in the job log beside the daily publication runs.
    log_job(conn, "inspection_publish_plan", moment, {"plan_id": plan_id, "actor": actor, "department": department,
                                                      "published": published})  # fmt: skip
    return int(published)


def _publish_job(conn: Connection, day: date, _moment: datetime) -> dict[str, object]:
    return {"published": publish_due_results(conn, day)}


# Every morning (working days and rest days alike: a due date is a working day, but a missed tick must catch up).
PUBLISH_JOB = DailyJob(name="inspection_publish", at=time(6, 0), run=_publish_job, working_days_only=False)


# An individual business without a trade name is registered under its operator's name (张三（个体工商户）): the
# notice names it by surname only, so that a person's full name is not published; its credit code identifies it.
_OPERATOR_NAMED = re.compile(r"^([\u4e00-\u9fff])[\u4e00-\u9fff]{1,3}(（个体工商户）|\(个体工商户\))$")


def public_entity_name(name: str, kind: str) -> str:
    """The entity's name as the notice prints it: as registered, but an operator's personal name masked (张某)."""
    found = _OPERATOR_NAMED.match(name) if kind == "individual" else None
    return f"{found.group(1)}某（个体工商户）" if found else name


def published_results(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The published results of a plan, one entry per visit: entity name, credit code, items and outcomes only."""
    rows = conn.execute(
        text(
            """
            SELECT v.uscc, e.name, e.kind, r.item_code, coalesce(i.name, r.item_code) AS item_name, r.outcome,
                   r.published_at
            FROM inspection_result r
            JOIN inspection_visit v ON v.id = r.visit_id
            JOIN entity e ON e.uscc = v.uscc
            LEFT JOIN inspection_item i ON i.code = r.item_code
            WHERE v.plan_id = :plan_id AND r.published_at IS NOT NULL
            ORDER BY v.uscc, r.item_code
            """
        ),
        {"plan_id": plan_id},
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(
            r.uscc,
            {"uscc": r.uscc, "name": public_entity_name(r.name, r.kind), "items": [], "published_at": r.published_at},
        )
        entry["items"].append(
            {"code": r.item_code, "name": r.item_name, "outcome": r.outcome, "outcome_zh": OUTCOME_LABELS_ZH[r.outcome]}
        )
        entry["published_at"] = max(entry["published_at"], r.published_at)
    for entry in out.values():
        entry["published_at"] = cast(datetime, entry["published_at"]).astimezone(SHANGHAI).isoformat()
    return list(out.values())
