"""Credit classes on the test city: each record kind moves a real entity's class, and resolving it moves it back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from gis import clock
from planning.credit import classify, load_credit_rules, owes_annual_report
from planning.credit_service import (
    CREDIT_JOB,
    credit_of,
    entity_facts,
    first_working_day_of_month,
    recompute,
    record,
    resolve_record,
)
from planning.errors import InvalidPlan, PlanNotFound
from planning.inspection_results import record_result
from planning.ratios import CLASSES
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, default_calendar, today
from supervision.clues import ClueReport, report_clue
from supervision.creation import NewTask, create_tasks
from supervision.jobs import run_daily_jobs
from supervision.routing import default_router
from supervision.task_queries import task_by_id
from supervision.transitions import Move, transition
from supervision.uscc import uscc_check_char
from supervision.workflow import Duty
from tests.support.inspection_fixtures import ITEMS, drawn_plan

pytestmark = pytest.mark.db

CENTRE = Actor("user:centre", "command_centre")
UNKNOWN = "91441900MA4W00000" + uscc_check_char("91441900MA4W00000")  # well-formed, registered nowhere


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction per story, rolled back."""
    with engine.connect() as connection, connection.begin() as tx:
        yield connection
        tx.rollback()


def clean_entity(conn: Connection, offset: int = 0) -> str:
    """An open entity older than a year, its annual report filed this year, no licence needed, no tasks: class A."""
    return str(
        conn.execute(
            text(
                "SELECT e.uscc FROM entity e WHERE e.status = 'open' AND e.registered_on < :old "
                "AND e.annual_report_filed_on >= :year AND NOT e.needs_licence AND e.geom IS NOT NULL "
                "AND e.grid_code IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM task t WHERE t.entity_uscc = e.uscc) ORDER BY e.uscc OFFSET :k LIMIT 1"
            ),
            {"old": date(today().year - 2, 1, 1), "year": date(today().year, 1, 1), "k": offset},
        ).scalar_one()
    )


def class_now(conn: Connection, uscc: str) -> tuple[str, list[str]]:
    """Recompute one entity today; its class and reason codes."""
    recompute(conn, as_of=today(), actor="test", uscc=uscc)
    view = credit_of(conn, uscc)
    return view.credit_class, [r["code"] for r in view.reasons]


# ------------------------------------------------------------------------------------------------- records


def test_a_clean_established_entity_is_a_with_a_reason(conn: Connection) -> None:
    uscc = clean_entity(conn)
    assert class_now(conn, uscc) == ("A", ["no_adverse_records"])
    view = credit_of(conn, uscc)
    assert view.class_label_zh == "信用风险低" and "无经营异常" in view.reasons[0]["detail_zh"]


@pytest.mark.parametrize(
    ("kind", "source", "expected", "code"),
    [
        ("finding", "inspection", "B", "unresolved_finding"),
        ("penalty", "import", "C", "penalty"),
        ("clue", "clue", "B", "substantiated_clue"),
        ("hotline", "clue", "B", "hotline_report"),
    ],
)
def test_each_record_kind_lowers_the_class_and_resolving_it_restores_it(
    conn: Connection, kind: str, source: str, expected: str, code: str
) -> None:
    uscc = clean_entity(conn)
    assert class_now(conn, uscc)[0] == "A"
    stored = record(
        conn,
        uscc=uscc,
        kind=kind,
        source=source,
        source_id=f"test:{kind}",
        department_code="market_supervision",
        detail="测试记录",
        actor="test",
    )
    assert stored.resolved_at is None and credit_of(conn, uscc).open_records == [stored]
    assert class_now(conn, uscc) == (expected, [code])
    resolved = resolve_record(conn, source=source, source_id=f"test:{kind}", kind=kind)
    assert resolved.resolved_at is not None
    assert class_now(conn, uscc) == ("A", ["no_adverse_records"])
    history = credit_of(conn, uscc).history
    assert [(h.previous_class, h.credit_class) for h in history[:2]] == [(expected, "A"), ("A", expected)]
    assert history[1].reasons[0]["code"] == code and history[1].reasons[0]["points"] > 0
    assert all(h.rules_version for h in history)


def test_recording_the_same_finding_twice_counts_once(conn: Connection) -> None:
    uscc = clean_entity(conn)
    args = dict(uscc=uscc, kind="finding", source="inspection", source_id="result:999999", department_code=None)
    first = record(conn, **args, detail="一", actor="a")  # type: ignore[arg-type]
    again = record(conn, **args, detail="二", actor="b")  # type: ignore[arg-type]
    assert again == first and again.detail == "一"
    assert entity_facts(conn, today(), uscc)[0].unresolved_findings == 1
    # two findings (50 points) would be C: one is B
    assert class_now(conn, uscc)[0] == "B"


def test_two_findings_make_c_and_an_old_penalty_falls_out_of_its_window(conn: Connection) -> None:
    uscc = clean_entity(conn)
    for n in (1, 2):
        record(conn, uscc=uscc, kind="finding", source="inspection", source_id=f"t:{n}", department_code=None,
               detail="", actor="t")  # fmt: skip
    assert class_now(conn, uscc) == ("C", ["unresolved_finding"])
    other = clean_entity(conn, 1)
    long_ago = clock.now() - timedelta(days=365 * 3)
    record(conn, uscc=other, kind="penalty", source="import", source_id="old", department_code=None, detail="",
           actor="t", at=long_ago)  # fmt: skip
    assert class_now(conn, other)[0] == "A"


def test_a_bad_record_is_refused(conn: Connection) -> None:
    uscc = clean_entity(conn)
    with pytest.raises(InvalidPlan) as refused:
        record(conn, uscc=uscc, kind="gossip", source="import", source_id="x", department_code=None, detail="",
               actor="t")  # fmt: skip
    assert refused.value.reason == "unknown_record_kind"
    with pytest.raises(PlanNotFound):
        record(conn, uscc="91441900000000000X", kind="finding", source="import", source_id="x", department_code=None,
               detail="", actor="t")  # fmt: skip
    with pytest.raises(PlanNotFound):
        resolve_record(conn, source="import", source_id="never", kind="finding")


# ------------------------------------------------------------------------------------------ the entity's own state


def test_an_unfiled_annual_report_puts_the_entity_on_the_abnormal_list_until_it_files(conn: Connection) -> None:
    uscc = clean_entity(conn)
    conn.execute(text("UPDATE entity SET annual_report_filed_on = NULL WHERE uscc = :u"), {"u": uscc})
    assert class_now(conn, uscc) == ("C", ["abnormal_list"])
    conn.execute(text("UPDATE entity SET annual_report_filed_on = :d WHERE uscc = :u"), {"u": uscc, "d": today()})
    assert class_now(conn, uscc)[0] == "A"


def test_a_missing_licence_lowers_the_class_until_the_licence_is_issued(conn: Connection) -> None:
    uscc = clean_entity(conn)
    conn.execute(text("UPDATE entity SET needs_licence = true WHERE uscc = :u"), {"u": uscc})
    assert class_now(conn, uscc) == ("C", ["missing_licence"])
    conn.execute(
        text("INSERT INTO entity_licence (uscc, licence, department, issued_on) VALUES (:u, '食品经营许可证', "
             "'东莞市市场监督管理局', :d)"),
        {"u": uscc, "d": today()},
    )  # fmt: skip
    assert class_now(conn, uscc)[0] == "A"


def test_a_new_entity_without_adverse_facts_is_b_not_a(conn: Connection) -> None:
    uscc = clean_entity(conn)
    conn.execute(
        text("UPDATE entity SET registered_on = :d WHERE uscc = :u"), {"u": uscc, "d": today() - timedelta(days=90)}
    )
    assert class_now(conn, uscc) == ("B", ["new_entity"])


# ------------------------------------------------------------------------------------ tasks and clues, real states


def _move(conn: Connection, task_id: int, to: str, uscc: str | None) -> None:
    """One workflow move of the centre (an inspection carries the entity's point)."""
    current = task_by_id(conn, task_id, CENTRE.scope)
    lon = lat = None
    if to in ("inspected_problem", "inspected_ok", "reinspected"):
        point = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE uscc = :u"), {"u": uscc}
        ).one() if uscc else conn.execute(
            text("SELECT ST_X(c.geom), ST_Y(c.geom) FROM clue c JOIN task t ON t.clue_id = c.id WHERE t.id = :t"),
            {"t": task_id},
        ).one()  # fmt: skip
        lon, lat = float(point[0]), float(point[1])
    transition(conn, task_id, Move(to=to, version=current.version, note=to, lon=lon, lat=lat), actor=CENTRE)


def test_a_problem_found_by_a_grid_task_is_unresolved_until_the_re_inspection(conn: Connection) -> None:
    uscc = clean_entity(conn)
    grid = conn.execute(text("SELECT grid_code FROM entity WHERE uscc = :u"), {"u": uscc}).scalar_one()
    (task_id,) = create_tasks(conn, [NewTask(Duty.OPENING_CHECK, grid, clock.now(), uscc)])
    if task_by_id(conn, task_id, CENTRE.scope).status == "pushed":
        _move(conn, task_id, "assigned", uscc)
    _move(conn, task_id, "inspected_problem", uscc)
    assert class_now(conn, uscc) == ("B", ["unresolved_finding"])
    _move(conn, task_id, "notice_issued", uscc)
    assert class_now(conn, uscc)[0] == "B"
    _move(conn, task_id, "reinspected", uscc)
    assert class_now(conn, uscc) == ("A", ["no_adverse_records"])


@pytest.mark.parametrize(("source", "code"), [("hotline", "hotline_report"), ("field", "substantiated_clue")])
def test_a_clue_tied_to_the_entity_counts_once_a_grid_worker_finds_the_problem(
    conn: Connection, source: str, code: str
) -> None:
    uscc = clean_entity(conn)
    lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM entity WHERE uscc = :u"), {"u": uscc}).one()
    industry = default_router().clue_industries()[0]
    report = ClueReport(industry=industry, description="无证经营", lon=float(lon), lat=float(lat), source=source)  # type: ignore[arg-type]
    clue = report_clue(conn, report, actor=CENTRE)
    task_id = int(conn.execute(text("SELECT id FROM task WHERE clue_id = :c"), {"c": clue.id}).scalar_one())
    # A clue names no entity by itself: its place alone never lowers a neighbour's class.
    assert class_now(conn, uscc)[0] == "A"
    # The worker who handles it ties it to the entity it is about.
    conn.execute(text("UPDATE task SET entity_uscc = :u WHERE id = :t"), {"u": uscc, "t": task_id})
    assert class_now(conn, uscc)[0] == "A"  # not substantiated yet
    if task_by_id(conn, task_id, CENTRE.scope).status == "pushed":
        _move(conn, task_id, "assigned", uscc)
    _move(conn, task_id, "inspected_problem", uscc)
    assert class_now(conn, uscc) == ("B", [code])


def test_an_inspection_finding_counts_once_and_clears_when_the_grid_worker_re_inspects(conn: Connection) -> None:
    """The results record the finding through `record` and open the grid's re-inspection task: one finding, not two."""
    plan = drawn_plan(conn)
    uscc, visit_id = next(iter(plan.visits.items()))
    before = class_now(conn, uscc)
    assert "unresolved_finding" not in before[1]
    item = next(code for code, (department, _, _) in ITEMS.items() if department == "market_supervision")
    result = record_result(conn, visit_id, item_code=item, outcome="problem", note="", actor="test", scope=CENTRE.scope)
    facts = entity_facts(conn, today(), uscc)[0]
    assert facts.unresolved_findings == 1
    cls, codes = class_now(conn, uscc)
    assert "unresolved_finding" in codes and CLASSES.index(cls) >= CLASSES.index(before[0])
    assert credit_of(conn, uscc).open_records[0].source_id == f"result:{result.id}"
    task_id = conn.execute(text("SELECT task_id FROM inspection_result WHERE id = :r"), {"r": result.id}).scalar_one()
    _move(conn, int(task_id), "reinspected", uscc)
    assert class_now(conn, uscc) == before


# -------------------------------------------------------------------------------------------- history and runs


def test_a_recompute_with_nothing_changed_writes_no_history(conn: Connection) -> None:
    uscc = clean_entity(conn)
    first = recompute(conn, as_of=today(), actor="test", uscc=uscc)
    again = recompute(conn, as_of=today(), actor="test", uscc=uscc)
    assert first.entities == again.entities == 1
    assert again.changed == 0 and again.moves == {}
    assert len(credit_of(conn, uscc).history) == 1
    run = conn.execute(text("SELECT job, result FROM job_run WHERE id = :id"), {"id": again.run_id}).one()
    assert run[0] == "credit_assessment" and run[1]["actor"] == "test" and run[1]["changed"] == 0


def test_the_demo_city_starts_with_computed_classes_each_with_reasons_and_one_history_row(conn: Connection) -> None:
    """The load assesses the city (as of the load date, by demo-load): no class without its reasons, no D for nothing."""
    rules = load_credit_rules()
    load_date = conn.execute(text("SELECT load_date FROM synthetic.demo_load ORDER BY id DESC LIMIT 1")).scalar_one()
    facts = {f.uscc: f for f in entity_facts(conn, load_date)}
    rows = conn.execute(
        text(
            "SELECT e.uscc, e.credit_class, count(a.id), min(a.credit_class), "
            "(array_agg(a.reasons))[1], (array_agg(r.result->>'actor'))[1] "
            "FROM entity e LEFT JOIN credit_assessment a ON a.uscc = e.uscc LEFT JOIN job_run r ON r.id = a.run_id "
            "WHERE e.status = 'open' GROUP BY e.uscc, e.credit_class"
        )
    ).all()
    assert len(rows) == len(facts) > 10_000
    for uscc, cls, history, assessed, reasons, actor in rows:
        expected, expected_reasons = classify(facts[uscc], rules)
        assert (cls, assessed, history, actor) == (expected, expected, 1, "demo-load"), uscc
        assert [r["code"] for r in reasons] == [r.code for r in expected_reasons], uscc
    # a D never stands on "no adverse records" alone (the outside test's 91441900484353960X)
    codes = {str(r[0]): {x["code"] for x in r[4]} for r in rows}
    assert not [u for u, cls, *_ in rows if cls == "D" and codes[u] == {"no_adverse_records"}]
    # recomputed the same day, the loaded city changes nothing and writes no history
    summary = recompute(conn, as_of=load_date, actor="test")
    open_count = conn.execute(text("SELECT count(*) FROM entity WHERE status = 'open'")).scalar_one()
    assert summary.entities == open_count == sum(summary.by_class.values())
    assert summary.changed == 0 and summary.moves == {}


def test_the_database_applies_the_30_june_rule_exactly_as_the_rules_module_states_it(conn: Connection) -> None:
    """For every open entity of the test city, on the abnormal list in the history iff owes_annual_report says so."""
    for as_of in (today(), date(today().year, 6, 30), date(today().year, 7, 1)):
        summary = recompute(conn, as_of=as_of, actor="test")
        rows = conn.execute(
            text(
                'SELECT e.registered_on, e.annual_report_filed_on, a.reasons @> \'[{"code": "abnormal_list"}]\' '
                "FROM entity e JOIN LATERAL (SELECT reasons FROM credit_assessment x WHERE x.uscc = e.uscc "
                "ORDER BY x.assessed_at DESC, x.id DESC LIMIT 1) a ON true WHERE e.status = 'open'"
            )
        ).all()
        assert len(rows) == summary.entities
        wrong = [r for r in rows if bool(r[2]) != owes_annual_report(r[0], r[1], as_of)]
        assert wrong == [], (as_of, wrong[:3])
        assert any(r[2] for r in rows) and not all(r[2] for r in rows)


def test_an_unknown_or_malformed_credit_code_is_refused(conn: Connection) -> None:
    with pytest.raises(InvalidPlan) as refused:
        credit_of(conn, "not-a-code")
    assert refused.value.reason == "invalid_uscc"
    with pytest.raises(PlanNotFound):
        credit_of(conn, UNKNOWN)
    with pytest.raises(InvalidPlan):
        recompute(conn, as_of=today(), actor="t", uscc="bad")


# ----------------------------------------------------------------------------------------------- the monthly job


def test_the_first_working_day_of_a_month_is_found_on_the_calendar() -> None:
    calendar = default_calendar()
    day = date(2026, 12, 1)
    firsts = [d for d in (day + timedelta(days=k) for k in range(62)) if first_working_day_of_month(d)]
    assert [d.month for d in firsts] == [12, 1]
    for first in firsts:
        assert calendar.is_working_day(first)
        assert all(not calendar.is_working_day(first.replace(day=k)) for k in range(1, first.day))


def test_the_monthly_job_recomputes_only_on_the_first_working_day(engine: Engine) -> None:
    first = date(2026, 12, 1)
    assert first_working_day_of_month(first)
    at = datetime(2026, 12, 2, 6, 0, tzinfo=SHANGHAI)  # a working day, not the first
    out = run_daily_jobs(engine, [CREDIT_JOB], now=at)
    assert out["credit_recompute"] == {"ran": False, "reason": "not_first_working_day"}
    runs = text("SELECT result->>'actor' FROM job_run WHERE job = 'credit_assessment' ORDER BY id")
    with engine.connect() as conn:
        assert list(conn.execute(runs).scalars()) == ["demo-load"]  # only the load's own assessment
    at = datetime(2026, 12, 1, 5, 45, tzinfo=SHANGHAI)
    out = run_daily_jobs(engine, [CREDIT_JOB], now=at)
    ran = out["credit_recompute"]
    assert isinstance(ran, dict) and ran["ran"] is True and ran["entities"] > 0
    with engine.connect() as conn:
        assert list(conn.execute(runs).scalars()) == ["demo-load", "job:credit_recompute"]
        logged = conn.execute(text("SELECT result FROM job_run WHERE job = 'credit_recompute' ORDER BY id")).scalars()
        assert [r["ran"] for r in logged] == [False, True]
    # the same day again: the job has run, it does not run twice
    assert run_daily_jobs(engine, [CREDIT_JOB], now=at + timedelta(hours=1)) == {}
