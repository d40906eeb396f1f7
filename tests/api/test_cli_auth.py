"""An administrator creates accounts and API keys with `gridgov users` and `gridgov apikey`."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
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
        db,
        "users",
        "create",
        "--username",
        "li",
        "--role",
        "town_leader",
        "--scope",
        town,
        "--password",
        "lantern-1234567890",
    )
    assert result.exit_code == 0, result.output
    assert f"created user li (town_leader scope {town})" in result.stdout
    role, scope, password_hash = _user(db, "li") or ("", None, "")
    assert (role, scope) == ("town_leader", town)
    assert password_hash.startswith("$argon2id$") and "lantern-1234567890" not in password_hash
    again = gridgov(
        db,
        "users",
        "create",
        "--username",
        "li",
        "--role",
        "town_leader",
        "--scope",
        town,
        "--password",
        "lantern-1234567890",
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
    args = ["users", "create", "--username", f"u_{role}", "--role", role, "--password", "lantern-1234567890"]
    if scope is not None:
        args += ["--scope", scope]
    result = gridgov(db, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert _user(db, f"u_{role}") is None


def test_a_short_password_is_refused(db: DatabaseSettings) -> None:
    result = gridgov(db, "users", "create", "--username", "wang", "--role", "admin", "--password", "short")
    assert result.exit_code != 0 and "at least 12 characters" in result.output


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


def test_a_weak_demo_password_is_refused_with_a_reason(empty_db: DatabaseSettings) -> None:
    engine = make_engine(empty_db)
    with engine.begin() as conn:  # a newcomer's database: no account yet
        conn.execute(text("DELETE FROM user_session"))
        conn.execute(text("DELETE FROM app_user"))
    engine.dispose()
    weak = gridgov(empty_db, "users", "ensure-demo", GRIDGOV_DEMO_PASSWORD="password1234")
    assert weak.exit_code == 2 and "GRIDGOV_DEMO_PASSWORD" in weak.output and "common" in weak.output
    assert _user(empty_db, "demo") is None


@pytest.mark.parametrize("password", ["12345678", "password", "password1234", "wangwei-2026"])
def test_a_short_a_common_or_the_users_own_password_is_refused_at_creation(db: DatabaseSettings, password: str) -> None:
    result = gridgov(db, "users", "create", "--username", "wangwei-2026", "--role", "admin", "--password", password)
    assert result.exit_code == 2, result.output
    assert "12" in result.output or "common" in result.output or "user name" in result.output
    assert _user(db, "wangwei-2026") is None


def _key(db: DatabaseSettings, key: str) -> service.ApiKeyRecord | None:
    engine = make_engine(db)
    with engine.connect() as conn:
        found = service.find_api_key(conn, keyed_digest(SECRET, key))
    engine.dispose()
    return found


def test_an_api_key_geocodes_by_default_and_takes_the_permissions_and_kinds_it_is_given(db: DatabaseSettings) -> None:
    plain = gridgov(db, "apikey", "create", "--name", "搜索框")
    assert plain.exit_code == 0, plain.output
    assert "permissions geocode" in plain.output
    record = _key(db, plain.stdout.strip())
    assert record is not None and record.permissions == {"geocode"} and record.event_kinds is None
    registry = gridgov(
        db, "apikey", "create", "--name", "登记系统", "--permission", "intake", "--permission", "geocode",
        "--event-kind", "new", "--event-kind", "address_change",
    )  # fmt: skip
    assert registry.exit_code == 0, registry.output
    key = registry.stdout.strip()
    record = _key(db, key)
    assert record is not None and record.permissions == {"intake", "geocode"}
    assert record.event_kinds == {"new", "address_change"}
    listing = gridgov(db, "apikey", "list").stdout
    assert f"{key[:8]}…  登记系统  api_client  permissions geocode,intake kinds address_change,new" in listing
    hotline = gridgov(db, "apikey", "create", "--name", "12345 热线 CLI", "--role", "hotline")
    assert hotline.exit_code == 0 and "permissions hotline" in hotline.output
    granted = gridgov(db, "apikey", "grant", plain.stdout.strip()[:8], "--permission", "gis")
    assert granted.exit_code == 0, granted.output
    record = _key(db, plain.stdout.strip())
    assert record is not None and record.permissions == {"geocode", "gis"}
    assert gridgov(db, "apikey", "grant", "gg_nokey", "--permission", "gis").exit_code != 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--permission", "everything"], "unknown permission 'everything'"),
        (["--permission", "geocode", "--event-kind", "new"], "needs --permission intake"),
        (["--permission", "intake", "--event-kind", "bankruptcy"], "unknown event kind 'bankruptcy'"),
        (["--permission", "hotline"], "hotline is for keys of role hotline"),
        (["--role", "hotline", "--permission", "geocode"], "a hotline key takes --permission hotline"),
    ],
)
def test_a_permission_a_key_cannot_use_is_refused_with_a_reason(
    db: DatabaseSettings, args: list[str], message: str
) -> None:
    result = gridgov(db, "apikey", "create", "--name", "refused key", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    engine = make_engine(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_key WHERE name = 'refused key'")).scalar_one() == 0
    engine.dispose()


def _token_version(db: DatabaseSettings, username: str) -> tuple[bool, int]:
    engine = make_engine(db)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT active, token_version FROM app_user WHERE username = :u"), {"u": username}
        ).one()
    engine.dispose()
    return row.active, row.token_version


def test_users_disable_enable_and_reset_password_revoke_the_accounts_credentials(db: DatabaseSettings) -> None:
    made = gridgov(db, "users", "create", "--username", "zhao", "--role", "admin", "--password", "first passphrase 1")
    assert made.exit_code == 0, made.output
    assert _token_version(db, "zhao") == (True, 0)
    disabled = gridgov(db, "users", "disable", "zhao")
    assert disabled.exit_code == 0 and "disabled user zhao" in disabled.stdout
    assert _token_version(db, "zhao") == (False, 1)
    assert gridgov(db, "users", "enable", "zhao").exit_code == 0
    assert _token_version(db, "zhao") == (True, 2)
    # The new password comes from standard input, or is prompted twice: never from the command line.
    reset = CliRunner().invoke(
        app,
        ["users", "reset-password", "zhao", "--password-stdin"],
        input="second passphrase 2\n",
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET},
    )
    assert reset.exit_code == 0, reset.output
    assert "second passphrase 2" not in reset.output
    prompted = CliRunner().invoke(
        app,
        ["users", "reset-password", "zhao"],
        input="third passphrase 3\nthird passphrase 3\n",
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET},
    )
    assert prompted.exit_code == 0, prompted.output
    assert _token_version(db, "zhao") == (True, 4)
    engine = make_engine(db)
    with engine.connect() as conn:
        assert service.authenticate(conn, "zhao", "second passphrase 2") is None
        assert service.authenticate(conn, "zhao", "third passphrase 3") is not None
    engine.dispose()
    weak = CliRunner().invoke(
        app,
        ["users", "reset-password", "zhao", "--password-stdin"],
        input="password1234\n",
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET},
    )
    assert weak.exit_code == 2 and "common" in weak.output
    assert _token_version(db, "zhao") == (True, 4)
    for command in ("disable", "enable", "reset-password"):
        unknown = CliRunner().invoke(
            app,
            ["users", command, "nobody-here", *(["--password-stdin"] if command == "reset-password" else [])],
            input="a fine passphrase 9\n",
            env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET},
        )
        assert unknown.exit_code == 2 and "no user named 'nobody-here'" in unknown.output


def _permissions(db: DatabaseSettings, username: str) -> list[str] | None:
    engine = make_engine(db)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT permissions FROM app_user WHERE username = :u"), {"u": username}).one()
    engine.dispose()
    return None if found.permissions is None else list(found.permissions)


def test_an_api_client_account_geocodes_only_unless_granted_and_other_roles_take_no_permission(
    db: DatabaseSettings,
) -> None:
    plain = gridgov(db, "users", "create", "--username", "search-box", "--role", "api_client", "--password-stdin")
    assert plain.exit_code != 0  # --password-stdin with nothing on standard input is an empty password
    made = CliRunner().invoke(
        app,
        ["users", "create", "--username", "search-box", "--role", "api_client", "--password-stdin"],
        input="lantern-1234567890\n",
        env={"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET},
    )
    assert made.exit_code == 0, made.output
    assert "permissions geocode" in made.stdout and "lantern-1234567890" not in made.output
    assert _permissions(db, "search-box") == ["geocode"]
    registry = gridgov(
        db, "users", "create", "--username", "registry", "--role", "api_client", "--permission", "intake",
        "--permission", "gis", "--password", "lantern-1234567890",
    )  # fmt: skip
    assert registry.exit_code == 0, registry.output
    assert _permissions(db, "registry") == ["gis", "intake"]
    granted = gridgov(db, "users", "grant", "search-box", "--permission", "gis")
    assert granted.exit_code == 0 and "geocode,gis" in granted.stdout
    assert _permissions(db, "search-box") == ["geocode", "gis"]
    centre = gridgov(
        db, "users", "create", "--username", "centre-p", "--role", "command_centre", "--permission", "intake",
        "--password", "lantern-1234567890",
    )  # fmt: skip
    assert centre.exit_code == 2 and "api_client" in centre.output
    assert _user(db, "centre-p") is None
    made_centre = gridgov(
        db, "users", "create", "--username", "centre-p", "--role", "command_centre", "--password", "lantern-1234567890"
    )
    assert made_centre.exit_code == 0 and _permissions(db, "centre-p") is None
    refused_grant = gridgov(db, "users", "grant", "centre-p", "--permission", "intake")
    assert refused_grant.exit_code == 2 and "only api_client accounts" in refused_grant.output
    assert _permissions(db, "centre-p") is None
    assert gridgov(db, "users", "grant", "nobody-here", "--permission", "gis").exit_code == 2


@pytest.mark.parametrize(
    ("permission", "message"), [("hotline", "never for an account"), ("admin", "unknown permission")]
)
def test_a_hotline_or_unknown_permission_is_refused_for_an_account(
    db: DatabaseSettings, permission: str, message: str
) -> None:
    result = gridgov(
        db, "users", "create", "--username", f"bad-{permission}", "--role", "api_client", "--permission", permission,
        "--password", "lantern-1234567890",
    )  # fmt: skip
    assert result.exit_code == 2 and message in result.output
    assert _user(db, f"bad-{permission}") is None


def test_users_create_prompts_for_the_password_by_default_and_reads_it_from_stdin(db: DatabaseSettings) -> None:
    environment = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET}
    prompted = CliRunner().invoke(
        app,
        ["users", "create", "--username", "prompted", "--role", "admin"],
        input="lantern-1234567890\nlantern-1234567890\n",
        env=environment,
    )
    assert prompted.exit_code == 0, prompted.output
    assert "Password" in prompted.output and "lantern-1234567890" not in prompted.output
    both = CliRunner().invoke(
        app,
        ["users", "create", "--username", "both", "--role", "admin", "--password", "x", "--password-stdin"],
        input="lantern-1234567890\n",
        env=environment,
    )
    assert both.exit_code == 2 and _user(db, "both") is None
    weak = CliRunner().invoke(
        app,
        ["users", "create", "--username", "weakling", "--role", "admin", "--password-stdin"],
        input="qwertyuiopasdf\n",
        env=environment,
    )
    assert weak.exit_code == 2 and "太容易被猜中" in weak.output and _user(db, "weakling") is None
    helped = CliRunner().invoke(app, ["users", "create", "--help"], env={"COLUMNS": "200"})
    assert "DISCOURAGED" in helped.output and "--password-stdin" in helped.output


def test_migration_0018_leaves_existing_api_client_accounts_geocoding_only(db: DatabaseSettings) -> None:
    from alembic import command

    from gis.migrate import alembic_config, upgrade

    command.downgrade(alembic_config(db), "0017")
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            for username, role in (("old-system", "api_client"), ("old-centre", "command_centre")):
                conn.execute(
                    text("INSERT INTO app_user (username, password_hash, role) VALUES (:u, 'x', :r)"),
                    {"u": username, "r": role},
                )
        upgrade(db)
        assert _permissions(db, "old-system") == ["geocode"]
        assert _permissions(db, "old-centre") is None
        with engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(text("UPDATE app_user SET permissions = NULL WHERE username = 'old-system'"))
        with engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(text("UPDATE app_user SET permissions = '{hotline}' WHERE username = 'old-system'"))
        with engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(text("UPDATE app_user SET permissions = '{geocode}' WHERE username = 'old-centre'"))
    finally:
        engine.dispose()
