"""Inspection results on the test city: recorded per item, felt by credit and the task flow, published on time."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import (
    clock,
    migrate,  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
)
from gis.settings import DatabaseSettings
from planning.credit_service import credit_of, recompute
from planning.errors import InvalidPlan, PlanNotFound, PlanState
from planning.inspection_match import InspectorInfo, VisitNeed, match
from planning.inspection_results import (
    PUBLISH_JOB,
    public_entity_name,
    publish_due_results,
    publish_plan,
    published_results,
    recent_visits,
    record_result,
    result_by_id,
    visit_view,
)
from supervision.audit import Actor
from supervision.calendar import SHANGHAI, default_calendar
from supervision.errors import OutOfScope
from supervision.jobs import run_daily_jobs
from supervision.scope import CITY, Scope
from supervision.task_queries import task_by_id
from supervision.transitions import Move, transition
from tests.support.inspection_fixtures import ITEMS, DrawnPlan, drawn_plan

pytestmark = pytest.mark.db

MARKET, LICENSED, HEALTH = "market_supervision-97", "market_supervision-98", "health-99"
MARKET_OFFICER = Scope("department", "market_supervision")
HEALTH_OFFICER = Scope("department", "health")


def today() -> date:
    """The tests' day in Dongguan."""
    return clock.now().astimezone(SHANGHAI).date()


@pytest.fixture(scope="module")
def plans(engine: Engine) -> list[DrawnPlan]:
    """Five drawn plans in five staffed grids (each test takes its own, so none sees another's results)."""
    with engine.begin() as conn:
        return [drawn_plan(conn, skip=n) for n in range(5)]


def record(conn: Connection, visit_id: int, item: str, outcome: str, *, scope: Scope = CITY, note: str = "") -> int:
    """Record one result as the command centre (unless a scope is given); the result's id."""
    return record_result(conn, visit_id, item_code=item, outcome=outcome, note=note, actor="centre", scope=scope).id


def credit_records(conn: Connection, uscc: str) -> list[tuple[str, str, str, bool]]:
    """The entity's inspection findings: (source_id, department, detail, still open)."""
    rows = conn.execute(
        text(
            "SELECT source_id, department_code, detail, resolved_at IS NULL AS open FROM credit_record "
            "WHERE uscc = :u AND source = 'inspection' AND kind = 'finding' ORDER BY id"
        ),
        {"u": uscc},
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_visit_is_done_once_every_item_has_its_result_and_is_due_for_publication_in_20_working_days(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """Three items, three results: the visit turns done with the third; publication is due 20 working days on."""
    plan = plans[0]
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        record(conn, visit_id, MARKET, "ok")
        record(conn, visit_id, LICENSED, "ok")
        assert visit_view(conn, visit_id, CITY)["status"] == "planned"
        result = record_result(
            conn, visit_id, item_code=HEALTH, outcome="ok", note="", actor="health officer", scope=HEALTH_OFFICER
        )
        assert result.visit_status == "done"
        assert result.publish_due == default_calendar().add_working_days(today(), 20)
        assert result.outcome_zh == "未发现问题"
        assert result.task_id is None
        assert credit_records(conn, uscc) == []


def test_a_problem_becomes_a_finding_on_credit_and_a_re_inspection_for_the_grid_worker(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """问题 → a credit finding (source inspection, result:{id}) and the grid's task, notice already served."""
    plan = plans[1]
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        result_id = record(conn, visit_id, LICENSED, "problem", note="未公示许可证", scope=MARKET_OFFICER)
        view = visit_view(conn, visit_id, CITY)
        task_id = next(i["result"].task_id for i in view["items"] if i["code"] == LICENSED)
        assert credit_records(conn, uscc) == [
            (
                f"result:{result_id}",
                "market_supervision",
                f"双随机抽查（计划 {plan.plan_id}）事项「食品经营许可情况检查（测试）」发现问题，已责令整改",
                True,
            )
        ]
        task = task_by_id(conn, task_id, CITY)
    assert task.entity_uscc == uscc
    assert task.grid_code == plan.grid_code
    assert task.duty == "licence_check"  # the item is for licensed entities: the licence check's re-visit
    assert task.department_codes == ["market_supervision"]
    # The team's visit was the inspection that found the problem and served the notice: the worker re-inspects.
    assert task.status == "notice_issued"
    assert task.worker_id is not None
    assert "reinspected" in task.allowed


def test_two_problems_of_one_visit_share_one_task_of_their_duty(engine: Engine, plans: list[DrawnPlan]) -> None:
    """A general item and a health item with problems: one opening-check re-visit for the grid, not two."""
    plan = plans[1]
    visit_id = list(plan.visits.values())[1]
    with engine.begin() as conn:
        first = record(conn, visit_id, MARKET, "problem")
        second = record(conn, visit_id, HEALTH, "problem", scope=HEALTH_OFFICER)
        tasks = dict(
            conn.execute(
                text("SELECT id, task_id FROM inspection_result WHERE id = ANY(:ids)"), {"ids": [first, second]}
            ).all()
        )
        assert tasks[first] == tasks[second] is not None
        assert task_by_id(conn, tasks[first], CITY).duty == "opening_check"


def test_an_entity_not_at_its_address_gets_a_finding_and_an_address_check(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """查无下落: the credit finding says 通过登记的住所无法联系 and the grid worker checks the address."""
    plan = plans[1]
    uscc, visit_id = list(plan.visits.items())[2]
    with engine.begin() as conn:
        result = record_result(
            conn, visit_id, item_code=MARKET, outcome="not_found", note="", actor="centre", scope=CITY
        )
        assert result.outcome_zh == "通过登记的住所无法联系"
        ((source_id, _, detail, still_open),) = credit_records(conn, uscc)
        assert (source_id, still_open) == (f"result:{result.id}", True)
        assert "通过登记的住所无法联系" in detail
        assert result.task_id is not None
        task = task_by_id(conn, result.task_id, CITY)
    assert (task.duty, task.status) in {("address_check", "assigned"), ("address_check", "pushed")}


def test_a_result_is_recorded_once_a_retry_changes_nothing_and_a_different_one_is_refused(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """The phone sends twice: one result, one finding, one task. A different outcome later: 409, nothing changes."""
    plan = plans[2]
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        first = record_result(conn, visit_id, item_code=LICENSED, outcome="problem", note="无证", actor="a", scope=CITY)
        again = record_result(conn, visit_id, item_code=LICENSED, outcome="problem", note="无证", actor="b", scope=CITY)
        assert again == first
        assert (again.recorded_by, again.recorded_at) == ("a", first.recorded_at)
        with pytest.raises(PlanState) as refused:
            record_result(conn, visit_id, item_code=LICENSED, outcome="ok", note="", actor="b", scope=CITY)
        assert refused.value.reason == "already_recorded"
        assert "a 于" in str(refused.value)
        assert len(credit_records(conn, uscc)) == 1
        assert (
            conn.execute(
                text("SELECT count(*) FROM task WHERE entity_uscc = :u AND campaign = :c"),
                {"u": uscc, "c": f"inspection:{plan.plan_id}"},
            ).scalar()
            == 1
        )
        assert result_by_id(conn, first.id).outcome == "problem"


def test_not_found_at_the_address_holds_for_the_whole_joint_visit(engine: Engine, plans: list[DrawnPlan]) -> None:
    """Not at the address for one department means not there for the other: no ok beside not_found, nor after."""
    plan = plans[3]
    (_, missing_visit), (_, found_visit) = list(plan.visits.items())[1:3]
    with engine.connect() as conn, conn.begin() as tx:
        record(conn, missing_visit, MARKET, "not_found")
        for outcome in ("ok", "problem"):
            with pytest.raises(PlanState) as refused:
                record(conn, missing_visit, HEALTH, outcome, scope=HEALTH_OFFICER)
            assert refused.value.reason == "visit_not_found_recorded"
            assert "通过登记的住所无法联系" in str(refused.value) and MARKET in str(refused.value)
        # the other department confirms the entity is gone: the visit is complete when every item says so
        record(conn, missing_visit, HEALTH, "not_found", scope=HEALTH_OFFICER)
        assert result_by_id(conn, record(conn, missing_visit, LICENSED, "not_found")).visit_status == "done"

        record(conn, found_visit, HEALTH, "ok", scope=HEALTH_OFFICER)
        with pytest.raises(PlanState) as refused:
            record(conn, found_visit, MARKET, "not_found")
        assert refused.value.reason == "visit_found_recorded"
        assert "未发现问题" in str(refused.value)
        record(conn, found_visit, MARKET, "problem")  # found there, and something wrong: fine
        outcomes = conn.execute(
            text(
                "SELECT visit_id, array_agg(DISTINCT outcome) FROM inspection_result WHERE visit_id = ANY(:v) GROUP BY 1"
            ),
            {"v": [missing_visit, found_visit]},
        ).all()
        assert dict(outcomes) == {missing_visit: ["not_found"], found_visit: ["ok", "problem"]}
        tx.rollback()


def test_refusals_say_why_and_change_nothing(engine: Engine, plans: list[DrawnPlan]) -> None:
    """Unknown visit 404, an item not drawn for it or a bad outcome 422, another department's item 403."""
    plan = plans[3]
    visit_id = next(iter(plan.visits.values()))
    with engine.begin() as conn:
        with pytest.raises(PlanNotFound):
            record(conn, 999_999_999, MARKET, "ok")
        with pytest.raises(InvalidPlan) as bad_item:
            record(conn, visit_id, "market_supervision-01x", "ok")
        assert bad_item.value.reason == "item_not_in_visit"
        with pytest.raises(InvalidPlan) as bad_outcome:
            record(conn, visit_id, MARKET, "fine")
        assert bad_outcome.value.reason == "invalid_outcome"
        with pytest.raises(OutOfScope):
            record(conn, visit_id, MARKET, "ok", scope=HEALTH_OFFICER)
        with pytest.raises(OutOfScope):
            record(conn, visit_id, HEALTH, "ok", scope=Scope("town", plan.town_code))
        assert (
            conn.execute(text("SELECT count(*) FROM inspection_result WHERE visit_id = :v"), {"v": visit_id}).scalar()
            == 0
        )


def test_a_plan_not_yet_drawn_takes_no_results(engine: Engine) -> None:
    """Before the draw there is nobody to send: 409 not_drawn."""
    with engine.begin() as conn:
        plan = drawn_plan(conn, skip=6, status="committed")
        with pytest.raises(PlanState) as refused:
            record(conn, next(iter(plan.visits.values())), MARKET, "ok")
    assert refused.value.reason == "not_drawn"


def test_results_are_published_when_due_and_final_afterwards(engine: Engine, plans: list[DrawnPlan]) -> None:
    """Nothing public on the day of recording; on the due day the morning job publishes; then no more changes."""
    plan = plans[3]
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        result = record_result(
            conn, visit_id, item_code=MARKET, outcome="problem", note="内部备注：老板姓王", actor="centre", scope=CITY
        )
        assert publish_due_results(conn, result.publish_due - timedelta(days=1)) == 0
        assert published_results(conn, plan.plan_id) == []
    due_morning = datetime.combine(result.publish_due, time(6, 30), tzinfo=SHANGHAI)
    ran = run_daily_jobs(engine, [PUBLISH_JOB], now=due_morning)
    # Every result recorded today falls due the same morning: this one and the other tests' results.
    with engine.begin() as conn:
        recorded = conn.execute(
            text("SELECT count(*) FROM inspection_result WHERE publish_due <= :d"), {"d": result.publish_due}
        ).scalar()
    assert ran["inspection_publish"] == {"published": recorded}
    assert run_daily_jobs(engine, [PUBLISH_JOB], now=due_morning + timedelta(hours=2)) == {}  # once a day
    with engine.begin() as conn:
        kind = conn.execute(text("SELECT kind FROM entity WHERE uscc = :u"), {"u": uscc}).scalar_one()
        public = published_results(conn, plan.plan_id)
        assert public == [
            {
                "uscc": uscc,
                "name": public_entity_name(plan.names[uscc], kind),
                "items": [
                    {
                        "code": MARKET,
                        "name": ITEMS[MARKET][1],
                        "outcome": "problem",
                        "outcome_zh": "发现问题，已责令整改",
                    }
                ],
                "published_at": public[0]["published_at"],
            }
        ]
        assert "王" not in str(public)
        with pytest.raises(PlanState) as final:
            record(conn, visit_id, MARKET, "ok")
        assert final.value.reason == "already_published"


def test_a_plan_can_be_published_early_an_officer_publishes_only_their_department(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """The health officer publishes the plan now: their item appears, market supervision's waits for its day."""
    plan = plans[4]
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        record(conn, visit_id, MARKET, "ok")
        record(conn, visit_id, HEALTH, "ok", scope=HEALTH_OFFICER)
        with pytest.raises(OutOfScope):
            publish_plan(conn, plan.plan_id, actor="x", scope=Scope("department", "tobacco"))
        assert publish_plan(conn, plan.plan_id, actor="health officer", scope=HEALTH_OFFICER) == 1
        assert [i["code"] for i in published_results(conn, plan.plan_id)[0]["items"]] == [HEALTH]
        assert publish_plan(conn, plan.plan_id, actor="centre", scope=CITY) == 1
        assert [i["code"] for i in published_results(conn, plan.plan_id)[0]["items"]] == [HEALTH, MARKET]
        with pytest.raises(PlanNotFound):
            publish_plan(conn, 999_999_999, actor="centre", scope=CITY)


def test_inspectors_who_visited_an_entity_are_not_sent_back_within_12_months(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """The team that recorded a result there is 'recent' for a year; the next plan's matching sends others."""
    plan = plans[0]  # its first visit has results since the first test (or gets one now)
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM inspection_result WHERE visit_id = :v"), {"v": visit_id}).first():
            record(conn, visit_id, MARKET, "ok")
        assert recent_visits(conn, today() - timedelta(days=1)).get(plan.inspector_ids[0], frozenset()) == frozenset()
        recent = recent_visits(conn, today())
        later = recent_visits(conn, today() + timedelta(days=370))
    assert all(uscc in recent[i] for i in plan.inspector_ids)
    assert all(uscc not in later.get(i, frozenset()) for i in plan.inspector_ids)
    # Fed into the next plan's matching: the old team is excluded, two fresh inspectors go.
    people = [
        InspectorInfo(
            i, "market_supervision", frozenset({MARKET}), None, frozenset(), recent.get(i, frozenset()), 5, None
        )
        for i in (*plan.inspector_ids[:2], 10**9, 10**9 + 1)
    ]
    seed = hashlib.sha256(b"next plan").digest()
    teams = match(seed, [VisitNeed(uscc, plan.grid_code, (MARKET,))], people, {MARKET: "market_supervision"}).teams
    assert teams[0].inspector_ids == (10**9, 10**9 + 1)


def test_the_visit_view_shows_its_team_and_results_to_those_who_may_read_the_plan(
    engine: Engine, plans: list[DrawnPlan]
) -> None:
    """The plan's departments and its town's leader read a visit; another department or town does not."""
    plan = plans[0]
    visit_id = next(iter(plan.visits.values()))
    with engine.begin() as conn:
        view = visit_view(conn, visit_id, Scope("town", plan.town_code))
        assert view["team"]["team_no"] == 1
        assert {p["department"] for p in view["team"]["inspectors"]} == {"market_supervision", "health"}
        assert [i["code"] for i in view["items"]] == sorted(ITEMS)
        assert visit_view(conn, visit_id, HEALTH_OFFICER)["uscc"] == view["uscc"]
        other_town = conn.execute(
            text("SELECT code FROM town WHERE code <> :t LIMIT 1"), {"t": plan.town_code}
        ).scalar()
        for outsider in (Scope("department", "tobacco"), Scope("town", other_town)):
            with pytest.raises(OutOfScope):
                visit_view(conn, visit_id, outsider)


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this module's database, as a user would from a shell."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


def test_the_command_line_records_a_result_and_publishes_a_plan(db: DatabaseSettings, engine: Engine) -> None:
    """`gridgov inspection-results record` prints the outcome and the grid task; a change exits 1; publish says how many."""
    with engine.begin() as conn:
        plan = drawn_plan(conn, skip=7)
    visit_id = next(iter(plan.visits.values()))
    recorded = gridgov(db, "inspection-results", "record", str(visit_id), "--item", MARKET, "--outcome", "problem")
    assert recorded.exit_code == 0, recorded.output
    assert "发现问题，已责令整改" in recorded.output
    assert "已生成网格任务" in recorded.output
    changed = gridgov(db, "inspection-results", "record", str(visit_id), "--item", MARKET, "--outcome", "ok")
    assert changed.exit_code == 1
    assert "不可更改" in changed.output
    unknown = gridgov(db, "inspection-results", "record", "999999999", "--item", MARKET, "--outcome", "ok")
    assert unknown.exit_code == 2
    published = gridgov(db, "inspection-results", "publish", "--plan", str(plan.plan_id))
    assert published.exit_code == 0, published.output
    assert f"已公示抽查计划 {plan.plan_id} 检查结果 1 条" in published.output
    due = gridgov(db, "inspection-results", "publish")
    assert (due.exit_code, due.output.strip()) == (0, "已公示到期检查结果 0 条")


def test_a_problem_weighs_on_the_credit_class_until_the_grid_worker_sees_it_put_right(engine: Engine) -> None:
    """Problem recorded → the next recompute counts an unresolved finding; re-inspected and closed → it no longer does."""
    with engine.begin() as conn:
        plan = drawn_plan(conn, skip=8)
    uscc, visit_id = next(iter(plan.visits.items()))
    with engine.begin() as conn:
        result = record_result(conn, visit_id, item_code=MARKET, outcome="problem", note="", actor="centre", scope=CITY)
        recompute(conn, as_of=today(), actor="test", uscc=uscc)
        reasons = {r["code"] for r in credit_of(conn, uscc).reasons}
        assert "unresolved_finding" in reasons
    assert result.task_id is not None
    with engine.begin() as conn:
        worker = Actor("grid worker", "system", CITY)
        row = conn.execute(
            text("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM entity WHERE uscc = :u"), {"u": uscc}
        ).one()
        for target in ("reinspected", "closed"):
            version = task_by_id(conn, result.task_id, CITY).version
            transition(conn, result.task_id, Move(to=target, version=version, lon=row.lon, lat=row.lat), actor=worker)
        recompute(conn, as_of=today(), actor="test", uscc=uscc)
        assert "unresolved_finding" not in {r["code"] for r in credit_of(conn, uscc).reasons}


def test_a_visit_no_team_was_matched_to_takes_no_result(engine: Engine) -> None:
    """Nobody was sent (the visit stayed unmatched at the draw): 409 visit_unmatched, nothing recorded."""
    with engine.begin() as conn:
        plan = drawn_plan(conn, skip=9)
        visit_id = next(iter(plan.visits.values()))
        conn.execute(
            text("UPDATE inspection_visit SET team_id = NULL, unmatched_reason = 'load_cap_reached' WHERE id = :v"),
            {"v": visit_id},
        )
        with pytest.raises(PlanState) as refused:
            record(conn, visit_id, MARKET, "ok")
        assert refused.value.reason == "visit_unmatched"
        assert visit_view(conn, visit_id, CITY)["team"] is None


@pytest.mark.parametrize(
    ("name", "kind", "printed"),
    [
        ("叶建国（个体工商户）", "individual", "叶某（个体工商户）"),
        ("欧阳修文（个体工商户）", "individual", "欧某（个体工商户）"),
        ("东莞市东城街道张记士多店", "individual", "东莞市东城街道张记士多店"),
        ("东莞市隆新餐饮管理有限公司", "company", "东莞市隆新餐饮管理有限公司"),
    ],
)
def test_the_notice_names_a_business_registered_under_its_operators_name_by_surname_only(
    name: str, kind: str, printed: str
) -> None:
    """A person's full name is not published: an individual business named after its operator shows 叶某."""
    assert public_entity_name(name, kind) == printed
