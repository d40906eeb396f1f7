"""An administrator creates accounts and API keys with `gridgov users` and `gridgov apikey`."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from api.auth import service
from api.auth.security import keyed_digest
from api.cli import app
from gis.database import make_engine
from gis.settings import DatabaseSettings
from supervision.routing import default_router

pytestmark = pytest.mark.db

SECRET = "c" * 48


def gridgov(db: DatabaseSettings, *args: str, **env: str) -> Result:
    """Run `gridgov ARGS` against this database with a fixed secret key."""
    environment = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET, **env}
    return CliRunner().invoke(app, list(args), env=environment)


def _user(db: DatabaseSettings, username: str) -> tuple[str, str | None, str] | None:
    engine = make_engine(db)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT role, scope_code, password_hash FROM app_user WHERE username = :u"), {"u": username}
        ).first()
    engine.dispose()
    return (row.role, row.scope_code, row.password_hash) if row else None


def _a_town_code(db: DatabaseSettings) -> str:
    engine = make_engine(db)
    with engine.connect() as conn:
        code: str = conn.execute(text("SELECT code FROM town ORDER BY code LIMIT 1")).scalar_one()
    engine.dispose()
    return code


def test_a_town_leader_is_created_for_a_town_that_exists(db: DatabaseSettings) -> None:
    town = _a_town_code(db)
    result = gridgov(
        db, "users", "create", "--username", "li", "--role", "town_leader", "--scope", town, "--password", "pw-12345678"
    )
    assert result.exit_code == 0, result.output
    assert f"created user li (town_leader scope {town})" in result.stdout
    role, scope, password_hash = _user(db, "li") or ("", None, "")
    assert (role, scope) == ("town_leader", town)
    assert password_hash.startswith("$argon2id$") and "pw-12345678" not in password_hash
    again = gridgov(
        db, "users", "create", "--username", "li", "--role", "town_leader", "--scope", town, "--password", "pw-12345678"
    )
    assert again.exit_code != 0 and "already exists" in again.output


@pytest.mark.parametrize(
    ("role", "scope", "message"),
    [
        ("mayor", None, "unknown role 'mayor'"),
        ("town_leader", None, "needs --scope"),
        ("dispatcher", None, "needs --scope"),
        ("grid_worker", None, "needs --scope"),
        ("department_officer", None, "needs --scope"),
        ("command_centre", "441900003000", "takes no --scope"),
        ("admin", "441900003000", "takes no --scope"),
        ("town_leader", "4419000030", "12-digit town code"),
        ("town_leader", "441900003001", "12-digit town code"),
        ("town_leader", "441900999000", "no town with code 441900999000"),
        ("dispatcher", "441900003000", "is a town code"),
        ("dispatcher", "441900999001", "no community with code"),
        ("grid_worker", "worker-7", "worker id"),
        ("department_officer", "城管 局", "department code"),
    ],
)
def test_a_bad_role_or_scope_is_refused_with_a_reason(
    db: DatabaseSettings, role: str, scope: str | None, message: str
) -> None:
    args = ["users", "create", "--username", f"u_{role}", "--role", role, "--password", "pw-12345678"]
    if scope is not None:
        args += ["--scope", scope]
    result = gridgov(db, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert _user(db, f"u_{role}") is None


def test_a_short_password_is_refused(db: DatabaseSettings) -> None:
    result = gridgov(db, "users", "create", "--username", "wang", "--role", "admin", "--password", "short")
    assert result.exit_code != 0 and "at least 8 characters" in result.output


def test_an_api_key_is_printed_once_and_only_its_digest_is_kept(db: DatabaseSettings) -> None:
    result = gridgov(db, "apikey", "create", "--name", "地图客户端")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("gg_") and len(key) == 35
    engine = make_engine(db)
    with engine.connect() as conn:
        found = service.find_api_key(conn, keyed_digest(SECRET, key))
        stored = conn.execute(text("SELECT prefix, digest FROM api_key WHERE name = '地图客户端'")).one()
    engine.dispose()
    assert found is not None and found.rate_limited and found.rate_per_minute == 600
    assert stored.prefix == key[:8] and stored.digest != key
    listing = gridgov(db, "apikey", "list")
    assert key[:8] in listing.stdout and key not in listing.stdout

    exempt = gridgov(db, "apikey", "create", "--name", "bench", "--no-rate-limit")
    assert exempt.exit_code == 0, exempt.output
    engine = make_engine(db)
    with engine.connect() as conn:
        bench = service.find_api_key(conn, keyed_digest(SECRET, exempt.stdout.strip()))
    engine.dispose()
    assert bench is not None and not bench.rate_limited

    revoked = gridgov(db, "apikey", "revoke", key[:8])
    assert revoked.exit_code == 0, revoked.output
    engine = make_engine(db)
    with engine.connect() as conn:
        assert service.find_api_key(conn, keyed_digest(SECRET, key)) is None
    engine.dispose()


def test_make_run_gives_a_newcomer_a_demo_account_once(empty_db: DatabaseSettings) -> None:
    first = gridgov(empty_db, "users", "ensure-demo", GRIDGOV_DEMO_PASSWORD="demo-password-42")
    assert first.exit_code == 0, first.output
    assert "http://127.0.0.1:8000/" in first.stdout
    assert "user:     demo" in first.stdout and "demo-password-42" in first.stdout
    role, scope, _ = _user(empty_db, "demo") or ("", None, "")
    assert (role, scope) == ("command_centre", None)
    engine = make_engine(empty_db)
    with engine.connect() as conn:
        assert service.authenticate(conn, "demo", "demo-password-42") is not None
    engine.dispose()
    second = gridgov(empty_db, "users", "ensure-demo")
    assert second.exit_code == 0, second.output
    assert "accounts exist" in second.stdout and "password" not in second.stdout


def test_on_a_loaded_city_make_run_gives_one_demo_account_per_role_where_the_work_is(db: DatabaseSettings) -> None:
    """Every journey of the dashboard and the field page can be walked by hand: one account per role, one password."""
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM user_session"))
        conn.execute(text("DELETE FROM app_user"))
        # A registration waits for review in the last town, placed in no community: every dispatcher of that town
        # may resolve it, so the demo dispatcher is one of that town's.
        waiting_town = conn.execute(text("SELECT max(town_code) FROM community")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO review_queue (kind, reason, payload, town_code) "
                "VALUES ('registration', 'matched only at town level', '{}', :town)"
            ),
            {"town": waiting_town},
        )
    made = gridgov(db, "users", "ensure-demo", GRIDGOV_DEMO_PASSWORD="demo-password-42")
    assert made.exit_code == 0, made.output
    for name, label in (("demo", "指挥中心"), ("demo_town", "镇街领导"), ("demo_dispatcher", "村（社区）调度员"),
                        ("demo_worker", "网格员"), ("demo_officer", "部门人员")):  # fmt: skip
        assert name in made.stdout and label in made.stdout, (name, made.stdout)
    town = _user(db, "demo_town")
    dispatcher = _user(db, "demo_dispatcher")
    worker = _user(db, "demo_worker")
    officer = _user(db, "demo_officer")
    assert town and dispatcher and worker and officer
    assert dispatcher[1] is not None and town[1] == dispatcher[1][:9] + "000"  # the dispatcher's town is the leader's
    assert town[1] == waiting_town  # where a registration waits for review
    with engine.connect() as conn:
        grid = conn.execute(text("SELECT grid_code FROM worker WHERE id = :w"), {"w": int(worker[1] or 0)}).scalar()
        assert grid is not None and grid.startswith(dispatcher[1])  # the worker works in the dispatcher's community
        assert service.authenticate(conn, "demo_worker", "demo-password-42") is not None
    engine.dispose()
    assert officer[1] in {d.code for d in default_router().departments()}
