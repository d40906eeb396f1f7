"""planning.credit_service: credit records, the facts of every entity, the monthly recompute and the class history.

Where the facts come from (as of a day):
- the abnormal list: the entity's last due annual report (`entity.annual_report_filed_on`, the 30 June rule of
  `planning.credit.owes_annual_report`);
- a missing licence: `entity.needs_licence` and no row in `entity_licence`;
- credit records (`credit_record`, open while `resolved_at` is empty): findings (an inspection's problem, recorded by
  the results through `record`; it is resolved by `resolve_record`, or when the task the result opened is done:
  re-inspected, closed or cancelled), penalties inside their window, clues and hotline reports a person tied to
  the entity, inside the clue window;
- the supervision tasks, read in their current state: a duty task of the entity that found a problem
  (it passed `inspected_problem`) and is still in a problem state (problem found, notice issued, escalated, awaiting
  the department's feedback) is an unresolved finding; a clue's task that names the entity (`task.entity_uscc`) and
  found a problem is a substantiated clue (a hotline report when the clue came from the hotline, `clue.source`),
  counted when the clue was reported inside the clue window. A clue that names no entity accuses no one: its place
  alone is never taken as an entity's (a neighbour at the same address would pay for it). Tasks an inspection result
  opened are counted through that result's own record, never twice.

Recompute is one transaction and set-based: one statement gathers the facts into a temporary table, the pure rules
class each distinct set of facts (a few hundred, whatever the number of entities), and set-based statements write
the history (a row only where the class or the reasons changed) and the classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from gis import clock
from planning.credit import (
    CLASS_LABELS_ZH,
    CreditRules,
    EntityFacts,
    Reason,
    annual_report_filing_start,
    classify,
    load_credit_rules,
    months_before,
    reasons_json,
)
from planning.errors import InvalidPlan, PlanNotFound
from planning.models import credit_record
from supervision.calendar import SHANGHAI, default_calendar, today
from supervision.errors import OutOfScope
from supervision.jobs import DailyJob
from supervision.scope import Scope
from supervision.uscc import is_valid_uscc

RECORD_KINDS: dict[str, str] = {
    "finding": "检查发现问题",
    "penalty": "行政处罚",
    "clue": "线索",
    "hotline": "热线投诉举报",
}
RECORD_SOURCES: dict[str, str] = {"inspection": "双随机抽查", "task": "网格任务", "clue": "线索", "import": "导入"}
# Task states in which a problem found on site is still open (the notice not yet re-checked, or escalated).
OPEN_PROBLEM_STATES = (
    "inspected_problem",
    "notice_issued",
    "escalated_community",
    "escalated_department",
    "department_feedback",
)
# States of the task an inspection result opened in which that finding counts as rectified.
RESOLVED_TASK_STATES = ("reinspected", "closed", "cancelled", "inspected_ok")
RUN_JOB = "credit_assessment"  # job_run rows of each recompute (the run_id of its assessments)


@dataclass(frozen=True)
class CreditRecord:
    """One credit record: what happened to the entity, where it came from, and whether it is resolved."""

    id: int
    uscc: str
    kind: str
    source: str
    source_id: str | None
    department_code: str | None
    detail: str
    recorded_at: datetime
    resolved_at: datetime | None
    recorded_by: str


@dataclass(frozen=True)
class Assessment:
    """One row of an entity's class history."""

    credit_class: str
    previous_class: str | None
    reasons: list[dict[str, Any]]
    rules_version: str
    assessed_at: datetime
    run_id: int | None


@dataclass(frozen=True)
class CreditView:
    """An entity's current class, its reasons (of the last assessment, or computed now if never assessed), history."""

    uscc: str
    name: str
    town_code: str | None
    status: str
    credit_class: str
    class_label_zh: str
    reasons: list[dict[str, Any]]
    assessed_at: datetime | None
    history: list[Assessment]
    open_records: list[CreditRecord]


@dataclass(frozen=True)
class RecomputeSummary:
    """What a recompute did: entities classed, counts per class, moves (e.g. 'A→B': n), history rows written."""

    run_id: int
    as_of: date
    rules_version: str
    entities: int
    changed: int
    by_class: dict[str, int]
    moves: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------- records


def _record_of(row: Any) -> CreditRecord:
    """A credit_record row as a CreditRecord."""
    return CreditRecord(
        int(row.id),
        str(row.uscc),
        str(row.kind),
        str(row.source),
        row.source_id,
        row.department_code,
        str(row.detail),
        row.recorded_at,
        row.resolved_at,
        str(row.recorded_by),
    )


def _check_record_keys(kind: str, source: str) -> None:
    """Refuse an unknown record kind or source (the table's check constraint, said in Chinese)."""
    if kind not in RECORD_KINDS:
        raise InvalidPlan(f"未知信用记录类型 {kind!r}（应为 {'、'.join(RECORD_KINDS)}）", reason="unknown_record_kind")
    if source not in RECORD_SOURCES:
        raise InvalidPlan(
            f"未知信用记录来源 {source!r}（应为 {'、'.join(RECORD_SOURCES)}）", reason="unknown_record_source"
        )


def record(
    conn: Connection,
    *,
    uscc: str,
    kind: str,
    source: str,
    source_id: str,
    department_code: str | None,
    detail: str,
    actor: str,
    at: datetime | None = None,
) -> CreditRecord:
    """Record a fact about an entity (e.g. an inspection's finding); idempotent on (source, source_id, kind).

    Recording the same (source, source_id, kind) again changes nothing and answers the stored record, so a result
    saved twice never counts twice. The class follows at the next recompute (monthly, or on demand).
    """
    _check_record_keys(kind, source)
    if not source_id:
        raise InvalidPlan("信用记录须注明来源编号（如 result:123）", reason="source_id_required")
    exists = conn.execute(text("SELECT 1 FROM entity WHERE uscc = :uscc"), {"uscc": uscc}).first()
    if exists is None:
        raise PlanNotFound(f"未找到市场主体 {uscc}", reason="entity_not_found")
    conn.execute(
        text(
            "INSERT INTO credit_record (uscc, kind, source, source_id, department_code, detail, recorded_at, "
            "recorded_by) VALUES (:uscc, :kind, :source, :source_id, :department, :detail, :at, :actor) "
            "ON CONFLICT ON CONSTRAINT uq_credit_record_source DO NOTHING"
        ),
        {
            "uscc": uscc,
            "kind": kind,
            "source": source,
            "source_id": source_id,
            "department": department_code,
            "detail": detail,
            "at": at or clock.now(),
            "actor": actor,
        },
    )
    row = conn.execute(
        select(credit_record).where(
            credit_record.c.source == source, credit_record.c.source_id == source_id, credit_record.c.kind == kind
        )
    ).one()
    return _record_of(row)


def resolve_record(
    conn: Connection, *, source: str, source_id: str, kind: str, at: datetime | None = None
) -> CreditRecord:
    """Mark a record resolved (rectified, repaired or withdrawn) from `at`; resolving again keeps the first time."""
    _check_record_keys(kind, source)
    row = conn.execute(
        update(credit_record)
        .where(credit_record.c.source == source, credit_record.c.source_id == source_id, credit_record.c.kind == kind)
        .values(resolved_at=func.coalesce(credit_record.c.resolved_at, at or clock.now()))
        .returning(*credit_record.c)
    ).first()
    if row is None:
        raise PlanNotFound(f"未找到信用记录 {source}/{source_id}（{RECORD_KINDS[kind]}）", reason="record_not_found")
    return _record_of(row)


def open_records(conn: Connection, uscc: str) -> list[CreditRecord]:
    """The entity's records not yet resolved, newest first."""
    rows = conn.execute(
        select(credit_record)
        .where(credit_record.c.uscc == uscc, credit_record.c.resolved_at.is_(None))
        .order_by(credit_record.c.recorded_at.desc(), credit_record.c.id.desc())
    ).all()
    return [_record_of(r) for r in rows]


# ----------------------------------------------------------------------------------------------------- facts

_FACTS_SQL = """
CREATE TEMP TABLE credit_facts ON COMMIT DROP AS
WITH rec AS (
    SELECT r.uscc,
           count(*) FILTER (WHERE r.kind = 'finding') AS findings,
           count(*) FILTER (WHERE r.kind = 'penalty' AND r.recorded_at >= :penalty_since) AS penalties,
           count(*) FILTER (WHERE r.kind = 'clue' AND r.recorded_at >= :clue_since) AS clues,
           count(*) FILTER (WHERE r.kind = 'hotline' AND r.recorded_at >= :clue_since) AS hotline
    FROM credit_record r
    LEFT JOIN inspection_result ir
           ON r.source = 'inspection' AND r.source_id = 'result:' || ir.id::text
    LEFT JOIN task rt ON rt.id = ir.task_id
    WHERE r.recorded_at < :until
      AND (r.resolved_at IS NULL OR r.resolved_at >= :until)
      AND (rt.id IS NULL OR rt.status <> ALL(:resolved_states))
      AND (CAST(:uscc AS text) IS NULL OR r.uscc = :uscc)
    GROUP BY r.uscc
), tk AS (
    SELECT t.entity_uscc AS uscc,
           count(*) FILTER (WHERE t.kind = 'task' AND t.status = ANY(:open_problem)) AS findings,
           count(*) FILTER (WHERE t.kind = 'clue' AND c.source IS DISTINCT FROM 'hotline'
                            AND c.reported_at >= :clue_since) AS clues,
           count(*) FILTER (WHERE t.kind = 'clue' AND c.source = 'hotline' AND c.reported_at >= :clue_since) AS hotline
    FROM task t
    LEFT JOIN clue c ON c.id = t.clue_id
    WHERE t.entity_uscc IS NOT NULL
      AND (CAST(:uscc AS text) IS NULL OR t.entity_uscc = :uscc)
      AND EXISTS (SELECT 1 FROM task_event ev WHERE ev.task_id = t.id AND ev.to_status = 'inspected_problem')
      AND NOT EXISTS (SELECT 1 FROM inspection_result ir WHERE ir.task_id = t.id)
    GROUP BY t.entity_uscc
)
SELECT e.uscc, e.registered_on, e.annual_report_filed_on,
       e.needs_licence AND NOT EXISTS (SELECT 1 FROM entity_licence l WHERE l.uscc = e.uscc) AS missing_licence,
       (COALESCE(rec.findings, 0) + COALESCE(tk.findings, 0))::int AS findings,
       COALESCE(rec.penalties, 0)::int AS penalties,
       (COALESCE(rec.clues, 0) + COALESCE(tk.clues, 0))::int AS clues,
       (COALESCE(rec.hotline, 0) + COALESCE(tk.hotline, 0))::int AS hotline,
       CASE WHEN e.registered_on > :newest THEN e.registered_on ELSE DATE '1900-01-01' END AS key_day,
       e.registered_on < :filing_start
           AND (e.annual_report_filed_on IS NULL OR e.annual_report_filed_on < :filing_start) AS abnormal
FROM entity e
LEFT JOIN rec ON rec.uscc = e.uscc
LEFT JOIN tk ON tk.uscc = e.uscc
WHERE e.status = 'open' AND (CAST(:uscc AS text) IS NULL OR e.uscc = :uscc)
"""


def _day_start(day: date) -> datetime:
    """The first instant of a Shanghai day."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _facts_params(as_of: date, uscc: str | None, rules: CreditRules) -> dict[str, Any]:
    """The bound parameters of the facts query: the end of the day and the windows' starts."""
    return {
        "until": _day_start(as_of + timedelta(days=1)),
        "penalty_since": _day_start(months_before(as_of, rules.penalty_months)),
        "clue_since": _day_start(months_before(as_of, rules.clue_months)),
        "open_problem": list(OPEN_PROBLEM_STATES),
        "resolved_states": list(RESOLVED_TASK_STATES),
        "uscc": uscc,
        "newest": months_before(as_of, rules.new_entity_months),
        "filing_start": annual_report_filing_start(as_of),
    }


def _facts_of(row: Any, as_of: date) -> EntityFacts:
    """One row of the facts table as EntityFacts."""
    return EntityFacts(
        uscc=str(row.uscc),
        as_of=as_of,
        registered_on=row.registered_on,
        abnormal_list=bool(row.abnormal),
        missing_licence=bool(row.missing_licence),
        unresolved_findings=int(row.findings),
        penalties=int(row.penalties),
        substantiated_clues=int(row.clues),
        hotline_reports=int(row.hotline),
    )


def entity_facts(conn: Connection, as_of: date, uscc: str | None = None) -> list[EntityFacts]:
    """The facts of every open entity as of a day (or of one entity), by credit code."""
    conn.execute(text(_FACTS_SQL), _facts_params(as_of, uscc, load_credit_rules()))
    rows = conn.execute(text("SELECT * FROM credit_facts ORDER BY uscc")).all()
    conn.execute(text("DROP TABLE credit_facts"))
    return [_facts_of(r, as_of) for r in rows]


# -------------------------------------------------------------------------------------------------- recompute


def _valid_uscc(uscc: str) -> str:
    """The credit code if well-formed (18 characters, check digit), else InvalidPlan."""
    if not is_valid_uscc(uscc):
        raise InvalidPlan(f"统一社会信用代码 {uscc!r} 格式或校验位不正确", reason="invalid_uscc")
    return uscc


def recompute(conn: Connection, *, as_of: date, actor: str, uscc: str | None = None) -> RecomputeSummary:
    """Recompute the class of every open entity (or one) as of a day; history only where class or reasons changed.

    One transaction (the caller's): a job_run row names the run; the facts are gathered into a temporary table, the
    pure rules class each distinct set of facts, COPY brings those classes and their reason sets back, and two
    statements write the history rows and the entity classes.
    """
    if uscc is not None:
        _valid_uscc(uscc)
        found = conn.execute(text("SELECT status FROM entity WHERE uscc = :u"), {"u": uscc}).scalar_one_or_none()
        if found is None:
            raise PlanNotFound(f"未找到市场主体 {uscc}", reason="entity_not_found")
        if found != "open":
            raise InvalidPlan(f"市场主体 {uscc} 已注销或吊销，不再评定信用类别", reason="entity_closed")
    # One recompute at a time (the monthly job, the API, the shell): each compares with the history the last wrote.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:job))"), {"job": RUN_JOB})
    rules = load_credit_rules()
    now = clock.now()
    run_id = int(
        conn.execute(
            text("INSERT INTO job_run (job, started_at) VALUES (:job, :at) RETURNING id"), {"job": RUN_JOB, "at": now}
        ).scalar_one()
    )
    # The facts of every entity stay in the database; the rules run once per distinct set of facts (a few hundred:
    # only a new entity's reason names its day), and the classes are joined back to the entities there.
    conn.execute(text(_FACTS_SQL), _facts_params(as_of, uscc, rules))
    keys = conn.execute(
        text(
            "SELECT DISTINCT key_day, abnormal, missing_licence, findings, penalties, clues, hotline FROM credit_facts"
        )
    ).all()
    reason_sets: dict[tuple[Reason, ...], int] = {}
    classed: list[tuple[object, ...]] = []
    for key in keys:
        facts = EntityFacts(
            uscc="",
            as_of=as_of,
            registered_on=key[0],
            abnormal_list=bool(key[1]),
            missing_licence=bool(key[2]),
            unresolved_findings=int(key[3]),
            penalties=int(key[4]),
            substantiated_clues=int(key[5]),
            hotline_reports=int(key[6]),
        )
        cls, reasons = classify(facts, rules)
        classed.append((*key, cls, reason_sets.setdefault(reasons, len(reason_sets))))
    conn.execute(
        text(
            "CREATE TEMP TABLE credit_key (key_day date, abnormal bool, missing_licence bool, findings int, "
            "penalties int, clues int, hotline int, credit_class char(1), reason_set int) ON COMMIT DROP"
        )
    )
    conn.execute(
        text("CREATE TEMP TABLE credit_reason_set (id int PRIMARY KEY, reasons jsonb NOT NULL) ON COMMIT DROP")
    )
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy("COPY credit_reason_set (id, reasons) FROM STDIN") as copy:
            for reasons, set_id in reason_sets.items():
                copy.write_row((set_id, json.dumps(reasons_json(reasons), ensure_ascii=False)))
        with cur.copy(
            "COPY credit_key (key_day, abnormal, missing_licence, findings, penalties, clues, hotline, credit_class, "
            "reason_set) FROM STDIN"
        ) as copy:
            for row in classed:
                copy.write_row(row)
    conn.execute(
        text(
            "CREATE TEMP TABLE credit_new ON COMMIT DROP AS "
            "SELECT f.uscc, k.credit_class, k.reason_set FROM credit_facts f JOIN credit_key k "
            "USING (key_day, abnormal, missing_licence, findings, penalties, clues, hotline)"
        )
    )
    conn.execute(text("ALTER TABLE credit_new ADD PRIMARY KEY (uscc)"))
    conn.execute(text("ANALYZE credit_new"))
    moves = conn.execute(
        text(
            """
            WITH latest AS (
                SELECT DISTINCT ON (a.uscc) a.uscc, a.credit_class, a.reasons
                FROM credit_assessment a JOIN credit_new n ON n.uscc = a.uscc
                ORDER BY a.uscc, a.assessed_at DESC, a.id DESC
            ), changed AS (
                INSERT INTO credit_assessment (uscc, credit_class, previous_class, reasons, rules_version, run_id,
                                               assessed_at)
                SELECT n.uscc, n.credit_class, e.credit_class, s.reasons, :version, :run_id, :at
                FROM credit_new n
                JOIN entity e ON e.uscc = n.uscc
                JOIN credit_reason_set s ON s.id = n.reason_set
                LEFT JOIN latest l ON l.uscc = n.uscc
                WHERE l.uscc IS NULL OR l.credit_class <> n.credit_class OR l.reasons <> s.reasons
                   OR e.credit_class <> n.credit_class
                RETURNING previous_class, credit_class
            )
            SELECT previous_class, credit_class, count(*) FROM changed GROUP BY 1, 2
            """
        ),
        {"version": rules.version, "run_id": run_id, "at": now},
    ).all()
    conn.execute(
        text(
            "UPDATE entity e SET credit_class = n.credit_class FROM credit_new n "
            "WHERE e.uscc = n.uscc AND e.credit_class <> n.credit_class"
        )
    )
    by_class: dict[str, int] = {
        str(r[0]): int(r[1])
        for r in conn.execute(text("SELECT credit_class, count(*) FROM credit_new GROUP BY 1")).all()
    }
    summary = RecomputeSummary(
        run_id=run_id,
        as_of=as_of,
        rules_version=rules.version,
        entities=sum(by_class.values()),
        changed=sum(int(m[2]) for m in moves),
        by_class={cls: by_class.get(cls, 0) for cls in ("A", "B", "C", "D")},
        moves={f"{m[0]}→{m[1]}": int(m[2]) for m in sorted(moves) if m[0] != m[1]},
    )
    conn.execute(
        text("UPDATE job_run SET finished_at = :at, result = CAST(:result AS jsonb) WHERE id = :id"),
        {"at": clock.now(), "result": json.dumps(_summary_json(summary, actor), ensure_ascii=False), "id": run_id},
    )
    conn.execute(text("DROP TABLE credit_facts, credit_key, credit_new, credit_reason_set"))
    return summary


def _summary_json(summary: RecomputeSummary, actor: str) -> dict[str, object]:
    """What the job_run log keeps of a recompute."""
    return {
        "actor": actor,
        "as_of": summary.as_of.isoformat(),
        "rules_version": summary.rules_version,
        "entities": summary.entities,
        "changed": summary.changed,
        "by_class": summary.by_class,
        "moves": summary.moves,
    }


# ------------------------------------------------------------------------------------------------------- read


def credit_of(conn: Connection, uscc: str, scope: Scope | None = None) -> CreditView:
    """An entity's class, its reasons and history (newest first), and its open records; OutOfScope outside `scope`."""
    _valid_uscc(uscc)
    entity = conn.execute(
        text("SELECT uscc, name, town_code, status, credit_class, registered_on FROM entity WHERE uscc = :u"),
        {"u": uscc},
    ).first()
    if entity is None:
        raise PlanNotFound(f"未找到市场主体 {uscc}", reason="entity_not_found")
    if scope is not None and not scope.sees(entity.town_code):
        raise OutOfScope(f"市场主体 {uscc} 不在您的辖区内")
    rows = conn.execute(
        text(
            "SELECT credit_class, previous_class, reasons, rules_version, assessed_at, run_id FROM credit_assessment "
            "WHERE uscc = :u ORDER BY assessed_at DESC, id DESC"
        ),
        {"u": uscc},
    ).all()
    history = [Assessment(str(r[0]), r[1], list(r[2]), str(r[3]), r[4], r[5]) for r in rows]
    if history:
        reasons, assessed_at = history[0].reasons, history[0].assessed_at
    else:
        # Never assessed (a class from before the rules, e.g. loaded): say what the rules would find today.
        facts = entity_facts(conn, today(), uscc) if entity.status == "open" else []
        reasons = reasons_json(classify(facts[0], load_credit_rules())[1]) if facts else []
        assessed_at = None
    return CreditView(
        uscc=str(entity.uscc),
        name=str(entity.name),
        town_code=entity.town_code,
        status=str(entity.status),
        credit_class=str(entity.credit_class),
        class_label_zh=CLASS_LABELS_ZH[str(entity.credit_class)],
        reasons=reasons,
        assessed_at=assessed_at,
        history=history,
        open_records=open_records(conn, uscc),
    )


# ----------------------------------------------------------------------------------------------- monthly job


def first_working_day_of_month(day: date) -> bool:
    """Whether `day` is the first working day of its month (the monthly recompute's day)."""
    calendar = default_calendar()
    if not calendar.is_working_day(day):
        return False
    return all(not calendar.is_working_day(day.replace(day=d)) for d in range(1, day.day))


def _monthly(conn: Connection, day: date, _moment: datetime) -> dict[str, object]:
    """The daily job's body: recompute every class on the month's first working day, else say why not."""
    if not first_working_day_of_month(day):
        return {"ran": False, "reason": "not_first_working_day"}
    summary = recompute(conn, as_of=day, actor="job:credit_recompute")
    return {"ran": True, **_summary_json(summary, "job:credit_recompute"), "run_id": summary.run_id}


CREDIT_JOB = DailyJob(name="credit_recompute", at=time(5, 30), run=_monthly)
