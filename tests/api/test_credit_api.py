"""Credit classes and sampling ratios over the API: who may read an entity's class (internal, never public), who may
recompute it, and who may set the ratios — each role in its own place."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner, Result

from api.cli import app
from api.routers.credit import CreditOut, RatiosOut, RecomputeOut
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout
from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning.ratios import load_rules
from supervision.uscc import uscc_check_char
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "away-leader", "officer", "dispatcher", "worker")
UNKNOWN = "91441900MA4W00000" + uscc_check_char("91441900MA4W00000")
RULES = load_rules()


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """An entity of the home town (clean: class A by the rules), every role, and an API key."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn, min_workers=1)
        away = a_door_in_another_town(conn, home.town_code)
        uscc = conn.execute(
            text(
                "SELECT e.uscc FROM entity e WHERE e.status = 'open' AND e.town_code = :t AND NOT e.needs_licence "
                "AND e.registered_on < '2024-01-01' AND e.annual_report_filed_on >= '2026-01-01' "
                "AND NOT EXISTS (SELECT 1 FROM task t WHERE t.entity_uscc = e.uscc) ORDER BY e.uscc LIMIT 1"
            ),
            {"t": home.town_code},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO inspection_item (code, department_code, name, basis, key, source) VALUES "
                "('credit-api-key-01', 'market_supervision', '测试重点事项', '测试依据', true, 'assumption: test') "
                "ON CONFLICT (code) DO NOTHING"
            )
        )
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "away-leader": ("town_leader", away.town_code),
                "officer": ("department_officer", "market_supervision"),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry-credit", permissions=["intake"])
    engine.dispose()
    return {"uscc": str(uscc), "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE:
        out[name] = bearer(client, name)
    return out


# Written out by hand: credit.read is the centre's, the admin's, the officers' (city-wide) and a town leader's (their
# town); credit.recompute the centre's and the admin's; inspection.read adds nothing for these roles but the leader's.
READ = {"admin": 200, "centre": 200, "officer": 200, "leader": 200, "away-leader": 403, "dispatcher": 403,
        "worker": 403, "api": 403}  # fmt: skip
RECOMPUTE = {"admin": 200, "centre": 200, "officer": 403, "leader": 403, "away-leader": 403, "dispatcher": 403,
             "worker": 403, "api": 403}  # fmt: skip
RATIOS = {"admin": 200, "centre": 200, "officer": 200, "leader": 200, "away-leader": 200, "dispatcher": 403,
          "worker": 403, "api": 403}  # fmt: skip


@pytest.mark.parametrize("who", sorted(READ))
def test_each_role_reads_an_entitys_class_only_where_it_may(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], who: str
) -> None:
    response = client.get(f"/v1/entities/{world['uscc']}/credit", headers=headers[who])
    assert response.status_code == READ[who], (who, response.text)
    if response.status_code == 403:
        assert response.json()["error"] == "forbidden"
    else:
        view = CreditOut.model_validate(response.json())
        assert view.uscc == world["uscc"] and view.reasons


@pytest.mark.parametrize("who", sorted(RECOMPUTE))
def test_only_the_centre_and_the_admin_recompute(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], who: str
) -> None:
    response = client.post("/v1/credit/recompute", json={"uscc": world["uscc"]}, headers=headers[who])
    assert response.status_code == RECOMPUTE[who], (who, response.text)


@pytest.mark.parametrize("who", sorted(RATIOS))
def test_the_ratios_are_read_by_whoever_reads_inspections_and_set_by_the_centre(
    client: TestClient, headers: dict[str, dict[str, str]], who: str
) -> None:
    assert client.get("/v1/inspection-ratios", headers=headers[who]).status_code == RATIOS[who]
    body = {"item_code": "*", "credit_class": "D", "ratio": 0.25, "source": "测试"}
    assert client.put("/v1/inspection-ratios", json=body, headers=headers[who]).status_code == RECOMPUTE[who]


def test_the_centre_recomputes_an_entity_and_reads_its_class_reasons_and_history(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    uscc = world["uscc"]
    response = client.post("/v1/credit/recompute", json={"uscc": uscc}, headers=headers["centre"])
    summary = RecomputeOut.model_validate(response.json())
    assert summary.entities == 1 and summary.by_class["A"] == 1
    view = CreditOut.model_validate(client.get(f"/v1/entities/{uscc}/credit", headers=headers["leader"]).json())
    assert view.credit_class == "A" and view.class_label_zh == "信用风险低"
    assert [r.code for r in view.reasons] == ["no_adverse_records"]
    assert view.history and view.history[0].credit_class == "A" and view.assessed_at is not None


def test_a_malformed_code_is_422_and_an_unknown_one_404(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    bad = client.get("/v1/entities/914419000000000000/credit", headers=headers["centre"])
    assert bad.status_code == 422 and "校验位" in bad.json()["detail"]
    assert client.get("/v1/entities/abc/credit", headers=headers["centre"]).status_code == 422
    missing = client.get(f"/v1/entities/{UNKNOWN}/credit", headers=headers["centre"])
    assert missing.status_code == 404 and missing.json()["reason"] == "entity_not_found"
    assert client.post("/v1/credit/recompute", json={"uscc": UNKNOWN}, headers=headers["centre"]).status_code == 404


def test_the_centre_sets_a_ratio_and_every_plan_sees_it(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    body = {"item_code": "*", "credit_class": "A", "ratio": "0.02", "source": "2027 年度抽查工作计划"}
    response = client.put("/v1/inspection-ratios", json=body, headers=headers["centre"])
    assert response.status_code == 200, response.text
    ratios = RatiosOut.model_validate(response.json())
    a = next(c for c in ratios.classes if c.credit_class == "A")
    assert a.effective == 0.02 and a.default == float(RULES.default["A"]) and a.floor == float(RULES.floor["A"])
    setting = next(s for s in ratios.settings if s.credit_class == "A")
    assert (setting.item_code, setting.ratio, setting.set_by) == ("*", 0.02, "user:centre")
    # a key item may be checked fully
    full = {"item_code": "credit-api-key-01", "credit_class": "A", "ratio": 1, "source": "专项整治"}
    assert client.put("/v1/inspection-ratios", json=full, headers=headers["admin"]).status_code == 200
    # and the settings are removed again: the officer may not, the centre may, a second time is 404
    assert client.delete("/v1/inspection-ratios/*/A", headers=headers["officer"]).status_code == 403
    cleared = client.delete("/v1/inspection-ratios/*/A", headers=headers["centre"])
    assert cleared.status_code == 200, cleared.text
    a = next(c for c in RatiosOut.model_validate(cleared.json()).classes if c.credit_class == "A")
    assert a.effective == float(RULES.default["A"])
    again = client.delete("/v1/inspection-ratios/*/A", headers=headers["centre"])
    assert again.status_code == 404 and again.json()["reason"] == "ratio_setting_not_found"
    assert client.delete("/v1/inspection-ratios/credit-api-key-01/A", headers=headers["admin"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"item_code": "*", "credit_class": "A", "ratio": 0}, "ratio_out_of_range"),
        ({"item_code": "*", "credit_class": "A", "ratio": 1.5}, "ratio_out_of_range"),
        ({"item_code": "*", "credit_class": "A", "ratio": 0.0000001}, "ratio_out_of_range"),
        ({"item_code": "*", "credit_class": "A", "ratio": 0.001}, "ratio_below_floor"),
        ({"item_code": "*", "credit_class": "B", "ratio": 0.9}, "ratio_above_cap"),
        ({"item_code": "no-such-item", "credit_class": "B", "ratio": 0.05}, "unknown_item"),
    ],
)
def test_a_ratio_the_rules_forbid_is_a_422_in_chinese(
    client: TestClient, headers: dict[str, dict[str, str]], body: dict[str, Any], reason: str
) -> None:
    before = client.get("/v1/inspection-ratios", headers=headers["centre"]).json()
    response = client.put("/v1/inspection-ratios", json={**body, "source": "测试"}, headers=headers["centre"])
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == reason
    assert ("比例" if reason != "unknown_item" else "未知检查事项") in response.json()["detail"]
    assert client.get("/v1/inspection-ratios", headers=headers["centre"]).json() == before


def test_an_unknown_class_is_refused_by_the_schema(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    body = {"item_code": "*", "credit_class": "E", "ratio": 0.05, "source": "测试"}
    assert client.put("/v1/inspection-ratios", json=body, headers=headers["centre"]).status_code == 422


def test_the_class_is_never_in_a_public_answer(client: TestClient, world: dict[str, Any]) -> None:
    """Without a credential the class cannot be read at all."""
    assert client.get(f"/v1/entities/{world['uscc']}/credit").status_code == 401
    assert client.get("/v1/inspection-ratios").status_code == 401


# ------------------------------------------------------------------------------------------------ the command line


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this module's database, as a user would from a shell."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


def test_the_shell_recomputes_one_entity_and_shows_its_class_and_history(
    db: DatabaseSettings, world: dict[str, Any]
) -> None:
    uscc = world["uscc"]
    result = gridgov(db, "credit", "recompute", "--uscc", uscc, "--as-of", "2026-12-01")
    assert result.exit_code == 0, result.output
    assert "评定 1 户" in result.output and "A 类 1" in result.output
    shown = gridgov(db, "credit", "show", uscc)
    assert shown.exit_code == 0, shown.output
    assert "A 类 信用风险低" in shown.output and "无不良记录" in shown.output and "历史：" in shown.output


def test_the_shell_refuses_a_bad_code_a_bad_date_and_a_bad_ratio_with_exit_1(db: DatabaseSettings) -> None:
    for args, words in (
        (("credit", "show", "abc"), "校验位"),
        (("credit", "show", UNKNOWN), "未找到"),
        (("credit", "recompute", "--as-of", "2026-13-01"), "日期格式"),
        (("credit", "set-ratio", "--item", "*", "--class", "A", "--ratio", "0.001", "--source", "x"), "下限"),
        (("credit", "set-ratio", "--item", "*", "--class", "A", "--ratio", "abc", "--source", "x"), "不是数字"),
        (("credit", "clear-ratio", "--item", "*", "--class", "C"), "没有这条设置"),
    ):
        result = gridgov(db, *args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output, (args, result.output)


def test_the_shell_sets_lists_and_clears_a_ratio(db: DatabaseSettings) -> None:
    result = gridgov(
        db, "credit", "set-ratio", "--item", "*", "--class", "B", "--ratio", "0.04", "--source", "年度计划"
    )
    assert result.exit_code == 0, result.output
    listed = gridgov(db, "credit", "ratios")
    assert listed.exit_code == 0, listed.output
    assert "全部事项  B 类  0.04  依据：年度计划" in listed.output and "信用风险一般" in listed.output
    assert gridgov(db, "credit", "clear-ratio", "--item", "*", "--class", "B").exit_code == 0
    assert "0.04" not in gridgov(db, "credit", "ratios").output


def test_a_department_records_a_penalty_from_the_shell_and_it_lowers_the_class_until_resolved(
    db: DatabaseSettings, world: dict[str, Any]
) -> None:
    uscc = world["uscc"]
    args = ("--kind", "penalty", "--source-id", "东市监罚〔2026〕1号")
    result = gridgov(db, "credit", "record", "--uscc", uscc, *args, "--detail", "无证经营", "--department",
                     "market_supervision")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "已登记" in result.output and "行政处罚" in result.output
    again = gridgov(db, "credit", "record", "--uscc", uscc, *args, "--detail", "重复")
    assert again.exit_code == 0 and result.output.split("记录编号")[1] == again.output.split("记录编号")[1]
    assert gridgov(db, "credit", "recompute", "--uscc", uscc).exit_code == 0
    shown = gridgov(db, "credit", "show", uscc).output
    assert "C 类 信用风险较高" in shown and "受到行政处罚" in shown and "东市监罚〔2026〕1号" in shown
    resolved = gridgov(db, "credit", "resolve", *args)
    assert resolved.exit_code == 0 and "已消除" in resolved.output
    assert gridgov(db, "credit", "recompute", "--uscc", uscc).exit_code == 0
    assert "A 类 信用风险低" in gridgov(db, "credit", "show", uscc).output
    missing = gridgov(db, "credit", "resolve", "--kind", "penalty", "--source-id", "没有这份")
    assert missing.exit_code == 1 and "未找到信用记录" in missing.output
    bad = gridgov(db, "credit", "record", "--uscc", uscc, "--kind", "rumour", "--source-id", "x", "--detail", "x")
    assert bad.exit_code == 1 and "未知信用记录类型" in bad.output
