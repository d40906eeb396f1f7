"""Anyone, with no credential, reads a plan's commitment before the draw and everything needed to recompute it after;
an outside script (tools/verify_draw.py, standard library only) recomputes the selection from the public answers of a
live server and gets the same credit codes. The public answers never carry a credit class, an inspector or a person."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.public_inspections import PublicPlan, PublicPlanList
from gis import clock
from gis.database import make_engine
from gis.settings import DatabaseSettings
from planning import inspection_plans
from planning.inspection_plans import PlanRequest
from supervision.scope import CITY
from tests.support.inspection_world import JOINT_ITEMS, make_inspection_world
from tests.support.server import SECRET_KEY, make_app, served

pytestmark = pytest.mark.db

VERIFY = Path(__file__).resolve().parents[2] / "tools" / "verify_draw.py"
PUBLIC_KEYS = {
    "id",
    "title",
    "departments",
    "status",
    "created_at",
    "public_value_source",
    "public_value_at",
    "public_value_announced",
    "drawn_at",
    "cancelled_at",
    "cancel_reason",
    "items",
    "commitment",
    "public_value",
    "server_seed",
    "seed",
    "candidates_sha256",
    "candidate_count",
    "strata",
    "results",
}


@pytest.fixture(scope="module")
def plans(db: DatabaseSettings) -> dict[str, int]:
    """A joint plan drawn with a public value, and one still waiting for its value (committed)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        place = make_inspection_world(conn)
    request = PlanRequest(
        departments=("market_supervision", "health"),
        items=JOINT_ITEMS,
        towns=(place.town_code,),
        public_value_source="中国福利彩票3D 第2026335期开奖号码",
        public_value_at=clock.now(),
    )
    with engine.begin() as conn:
        drawn = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
        waiting = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
    with engine.begin() as conn:
        inspection_plans.draw(conn, drawn, "8 3 5（福彩3D）", actor="centre", scope=CITY, secret_key=SECRET_KEY)
    engine.dispose()
    return {"drawn": drawn, "waiting": waiting}


def _no_secrets(raw: str, conn_names: list[str]) -> None:
    assert "credit_class" not in raw and "inspector" not in raw
    for name in conn_names:
        assert name not in raw, name


def test_anyone_reads_the_commitment_before_the_draw_and_the_seeds_after(
    client: TestClient, plans: dict[str, int], db: DatabaseSettings
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM inspector ORDER BY id LIMIT 50"))]
    engine.dispose()
    listed = client.get("/public/inspections")
    assert listed.status_code == 200
    index = {p.id: p.status for p in PublicPlanList.model_validate(listed.json()).items}
    assert index[plans["drawn"]] == "drawn" and index[plans["waiting"]] == "committed"

    waiting = client.get(f"/public/inspections/{plans['waiting']}")
    assert waiting.status_code == 200
    body = waiting.json()
    assert set(body) == PUBLIC_KEYS
    assert body["server_seed"] is None and body["seed"] is None and body["public_value"] is None
    assert all(s["selected"] == [] for s in body["strata"]) and len(body["commitment"]) == 64
    _no_secrets(waiting.text, names)

    drawn = client.get(f"/public/inspections/{plans['drawn']}")
    assert drawn.status_code == 200
    plan = PublicPlan.model_validate(drawn.json())
    assert plan.public_value == "8 3 5（福彩3D）" and plan.server_seed and plan.seed
    assert hashlib.sha256(bytes.fromhex(plan.server_seed)).hexdigest() == plan.commitment
    assert {tuple(sorted(s.model_dump())) for s in plan.strata} == {("id", "n", "ratio", "selected", "size")}
    assert sum(len(s.selected) for s in plan.strata) == sum(s.n for s in plan.strata) > 0
    assert plan.results == []
    _no_secrets(drawn.text, names)


def test_the_candidate_list_is_the_bytes_its_published_digest_names(client: TestClient, plans: dict[str, int]) -> None:
    for plan_id in plans.values():
        public = client.get(f"/public/inspections/{plan_id}").json()
        listing = client.get(f"/public/inspections/{plan_id}/candidates.csv")
        assert listing.status_code == 200
        assert listing.headers["content-type"].startswith("text/csv")
        assert hashlib.sha256(listing.content).hexdigest() == public["candidates_sha256"]
        lines = listing.content.decode("utf-8").split("\n")
        assert lines[0] == "stratum_id,uscc" and lines[-1] == ""
        assert len(lines) - 2 == public["candidate_count"] == sum(s["size"] for s in public["strata"])
        # Two columns only, the credit code last: no class travels with a candidate.
        assert all(len(line.split(",")) == 2 and len(line.split(",")[1]) == 18 for line in lines[1:-1])


def test_unknown_plans_are_404_and_need_no_credential(client: TestClient) -> None:
    assert client.get("/public/inspections/987654321").status_code == 404
    assert client.get("/public/inspections/987654321/candidates.csv").status_code == 404
    assert client.get("/public/inspections/0").status_code == 422
    # A word where an id goes is not a plan of ours (the notice pages live beside these answers).
    assert client.get("/public/inspections/abc").status_code == 404


def _python() -> str:
    """A Python outside our virtualenv when there is one: the script needs nothing of gridgov."""
    return shutil.which("python3") or sys.executable


def test_an_outside_script_recomputes_the_selection_from_a_live_servers_public_answers(
    db: DatabaseSettings, plans: dict[str, int], tmp_path: Path
) -> None:
    with served(make_app(db, tmp_path)) as base:
        ok = subprocess.run(
            [_python(), "-I", str(VERIFY), base, str(plans["drawn"])], capture_output=True, text=True, timeout=120
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "结论：抽取结果与公开算法一致" in ok.stdout
        assert ok.stdout.count("通过") >= 6 and "不通过" not in ok.stdout
        waiting = subprocess.run(
            [_python(), "-I", str(VERIFY), base, str(plans["waiting"])], capture_output=True, text=True, timeout=120
        )
        assert waiting.returncode == 1 and "尚未摇号" in waiting.stdout

        # Had the server published a selection other than the algorithm's, the script says so.
        engine = make_engine(db)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE inspection_candidate SET selected = NOT selected WHERE ctid IN (SELECT ctid FROM"
                    " inspection_candidate WHERE plan_id = :p ORDER BY stratum_id, uscc LIMIT 1)"
                ),
                {"p": plans["drawn"]},
            )
        try:
            tampered = subprocess.run(
                [_python(), "-I", str(VERIFY), base, str(plans["drawn"])], capture_output=True, text=True, timeout=120
            )
            assert tampered.returncode == 1 and "不一致" in tampered.stdout
        finally:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE inspection_candidate SET selected = NOT selected WHERE ctid IN (SELECT ctid FROM"
                        " inspection_candidate WHERE plan_id = :p ORDER BY stratum_id, uscc LIMIT 1)"
                    ),
                    {"p": plans["drawn"]},
                )
            engine.dispose()
        unreachable = subprocess.run(
            [_python(), "-I", str(VERIFY), base, "987654321"], capture_output=True, text=True, timeout=120
        )
        assert unreachable.returncode == 2


def test_the_script_uses_the_standard_library_only() -> None:
    source = VERIFY.read_text(encoding="utf-8")
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= {"hashlib", "hmac", "json", "math", "sys", "urllib", "decimal", "csv"}, imported
    assert all(name in sys.stdlib_module_names for name in imported)


def test_a_public_value_given_on_the_spot_is_flagged_publicly(client: TestClient, plans: dict[str, int]) -> None:
    body = client.get(f"/public/inspections/{plans['drawn']}").json()
    assert body["public_value_announced"] is False
    page = client.get(f"/public/inspections/{plans['drawn']}/page")
    assert page.status_code == 200 and "未事先公布" in page.text


def test_a_cancelled_plan_keeps_its_commitment_and_reason_but_withdraws_its_list(
    client: TestClient, db: DatabaseSettings
) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        place = make_inspection_world(conn)
        request = PlanRequest(
            departments=("market_supervision", "health"),
            items=JOINT_ITEMS,
            towns=(place.town_code,),
            public_value_source="中国福利彩票3D 第2026336期开奖号码",
            public_value_at=clock.now() + timedelta(days=1),
        )
        plan_id = inspection_plans.create_plan(conn, request, actor="centre", scope=CITY, secret_key=SECRET_KEY).id
    assert client.get(f"/public/inspections/{plan_id}/candidates.csv").status_code == 200
    with engine.begin() as conn:
        inspection_plans.cancel(conn, plan_id, "开奖推迟", actor="user:demo", scope=CITY)
    engine.dispose()
    gone = client.get(f"/public/inspections/{plan_id}/candidates.csv")
    assert gone.status_code == 410 and gone.json()["reason"] == "cancelled"
    assert any("\u4e00" <= c <= "\u9fff" for c in gone.json()["detail"])
    public = client.get(f"/public/inspections/{plan_id}")
    assert public.status_code == 200
    body = public.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "开奖推迟" and len(body["commitment"]) == 64
    assert body["public_value_announced"] is True
    assert "demo" not in public.text
    page = client.get(f"/public/inspections/{plan_id}/page")
    assert page.status_code == 200 and "名单已撤回" in page.text and 'candidates.csv"' not in page.text
