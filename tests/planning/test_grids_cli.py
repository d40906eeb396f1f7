"""A territory officer redraws grids from the shell: `gridgov grids redesign`, `apply`, `rollback` and `versions`.

Every refusal exits non-zero with the reason in Chinese and changes nothing; `redesign` ends with the draft's id
alone on its last line, so a script can hand it to `apply`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from api.cli import app
from gis import migrate  # noqa: F401 - import alembic before CliRunner swaps sys.stdout (alembic binds it at import)
from gis.settings import DatabaseSettings
from tests.support.grid_areas import RedesignArea, a_community_to_redesign

pytestmark = pytest.mark.db


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against this module's database, as a user would from a shell."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


@pytest.fixture(scope="module")
def area(engine: Engine) -> RedesignArea:
    with engine.connect() as conn:
        return a_community_to_redesign(conn)


def active_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())


def test_versions_lists_the_first_version_as_active(db: DatabaseSettings) -> None:
    result = gridgov(db, "grids", "versions")
    assert result.exit_code == 0, result.output
    header, first = result.output.splitlines()[:2]
    assert "编号" in header and "状态" in header and "区域" in header
    assert first.split()[0] == "1" and "生效" in first and "全市" in first


def test_redesign_prints_the_figures_and_ends_with_the_draft_id(
    db: DatabaseSettings, engine: Engine, area: RedesignArea
) -> None:
    result = gridgov(db, "grids", "redesign", "--community", area.community_code, "--lock", area.lock)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    draft_id = int(lines[-1])
    assert f"gridgov grids apply {draft_id}" in lines[-2]
    for label in ("每人工作量最大偏差", "最差紧凑度", "地址保留比例", "网格编号", "锁定网格", "求解"):
        assert label in result.output, label
    assert area.lock in result.output and "→" in result.output
    assert active_version(engine) == 1
    listed = gridgov(db, "grids", "versions", "--status", "draft")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.split()[0] == str(draft_id))
    assert "草案" in row and area.community_code in row


def test_apply_makes_the_draft_active_and_a_second_apply_is_refused(
    db: DatabaseSettings, engine: Engine, area: RedesignArea
) -> None:
    with engine.connect() as conn:
        draft_id = int(conn.execute(text("SELECT max(id) FROM grid_version WHERE status = 'draft'")).scalar_one())
    result = gridgov(db, "grids", "apply", str(draft_id))
    assert result.exit_code == 0, result.output
    assert f"网格版本 {draft_id} 已生效" in result.output and "地址" in result.output
    assert active_version(engine) == draft_id
    with engine.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM planning_batch ORDER BY id DESC LIMIT 1")).scalar_one()
    assert actor == "gridgov 命令行"
    again = gridgov(db, "grids", "apply", str(draft_id))
    assert again.exit_code == 1
    assert "只有草案可以生效" in again.output and "not_a_draft" in again.output


def test_rollback_restores_the_previous_version_and_then_has_nothing_left(db: DatabaseSettings, engine: Engine) -> None:
    result = gridgov(db, "grids", "rollback")
    assert result.exit_code == 0, result.output
    assert "已回退" in result.output and "网格版本 1 恢复生效" in result.output
    assert active_version(engine) == 1
    again = gridgov(db, "grids", "rollback")
    assert again.exit_code == 1
    assert "没有可回退的上一版本" in again.output


@pytest.mark.parametrize(
    ("args", "exit_code", "says"),
    [
        (("grids", "redesign"), 2, "请指定 --community 或 --town 之一"),
        (("grids", "redesign", "--community", "441900003001", "--town", "441900003000"), 2, "之一"),
        (("grids", "redesign", "--community", "441900999999"), 1, "没有编码为 441900999999 的村（社区）"),
        (("grids", "redesign", "--town", "441900999000"), 1, "没有编码为 441900999000 的镇街"),
        (("grids", "redesign", "--community", "441900003001", "--method", "fast"), 2, "--method"),
        (("grids", "redesign", "--community", "441900003001", "--grids", "0"), 2, "网格数应在 1–99 之间，而不是 0"),
        (("grids", "redesign", "--community", "441900003001", "--grids", "500"), 2, "网格数应在 1–99 之间"),
        (("grids", "redesign", "--community", "441900003001", "--pp-floor", "2"), 2, "紧凑度下限应在 0–1 之间"),
        (("grids", "redesign", "--community", "441900003001", "--tolerance", "0.9"), 2, "允许偏差应在"),
        (("grids", "apply", "999999"), 1, "没有编号为 999999 的网格版本"),
        (("grids", "discard", "999999"), 1, "没有编号为 999999 的网格版本"),
        (("grids", "discard", "1"), 1, "只有草案可以删除"),
        (("grids", "versions", "--status", "old"), 2, "--status"),
    ],
)
def test_bad_requests_are_refused_with_a_reason_and_change_nothing(
    db: DatabaseSettings, engine: Engine, args: tuple[str, ...], exit_code: int, says: str
) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), max(id) FROM grid_version")).one()
    result = gridgov(db, *args)
    assert result.exit_code == exit_code, result.output
    assert says in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), max(id) FROM grid_version")).one() == before


def test_a_lock_outside_the_community_is_refused_by_name(
    db: DatabaseSettings, engine: Engine, area: RedesignArea
) -> None:
    with engine.connect() as conn:
        elsewhere = a_community_to_redesign(conn, not_town=area.town_code)
    result = gridgov(db, "grids", "redesign", "--community", area.community_code, "--lock", elsewhere.grid_codes[0])
    assert result.exit_code == 1
    assert elsewhere.grid_codes[0] in result.output and "lock_outside_area" in result.output


def test_discard_deletes_a_draft_and_lists_it_as_retired(
    db: DatabaseSettings, engine: Engine, area: RedesignArea
) -> None:
    drawn = gridgov(db, "grids", "redesign", "--community", area.community_code)
    assert drawn.exit_code == 0, drawn.output
    draft_id = int(drawn.output.strip().splitlines()[-1])
    result = gridgov(db, "grids", "discard", str(draft_id))
    assert result.exit_code == 0, result.output
    assert f"草案 {draft_id}（{area.community_code}）已删除" in result.output
    with engine.connect() as conn:
        status, grids = conn.execute(
            text("SELECT status, (SELECT count(*) FROM grid WHERE version_id = :v) FROM grid_version WHERE id = :v"),
            {"v": draft_id},
        ).one()
    assert (status, grids) == ("retired", 0)
    listed = gridgov(db, "grids", "versions", "--status", "retired")
    row = next(line for line in listed.output.splitlines() if line.split()[0] == str(draft_id))
    assert "停用" in row and "已删除" in row
    again = gridgov(db, "grids", "discard", str(draft_id))
    assert again.exit_code == 1 and "只有草案可以删除" in again.output
