"""The learned aliases over /v1/aliases and `gridgov addresses aliases`: who may list, trace, promote and withdraw.

Three aliases, one per place (`home` community, a `neighbour` community of the same town, another town: `away`),
and one account of every role. The expected statuses are written out by hand: promote and withdraw are sent with a
blank reason, so nothing changes: 422 where the caller may act on that alias, 403 where not.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from address_library.repository import teach_alias
from api.cli import app
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "dispatcher", "worker", "officer", "api")
PLACES = ("home", "neighbour", "away")


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn)
        doors = {"home": home, "neighbour": a_door_in_a_neighbour_community(conn, home),
                 "away": a_door_in_another_town(conn, home.town_code)}  # fmt: skip
        aliases = {
            place: teach_alias(
                conn, normalized_text=f"别名测试路{n}号", address_id=door.id, raw_text=f"别名测试路{n}号",
                taught_by="user:somebody", community_code=door.community_code,
            ).alias_id
            for n, (place, door) in enumerate(doors.items(), start=1)
        }  # fmt: skip
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["geocode", "gis", "intake"])
    engine.dispose()
    return {"doors": {p: asdict(d) for p, d in doors.items()}, "aliases": aliases, "api_key": key}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE[:-1]:
        out[name] = bearer(client, name)
    return out


ALL, NONE = (200, 200, 200), (403, 403, 403)
TRACE = {"admin": ALL, "centre": ALL, "leader": (200, 200, 403), "dispatcher": (200, 403, 403), "worker": NONE,
         "officer": NONE, "api": NONE}  # fmt: skip
WITHDRAW = {"admin": (422, 422, 422), "centre": (422, 422, 422), "leader": NONE, "dispatcher": (422, 403, 403),
            "worker": NONE, "officer": NONE, "api": NONE}  # fmt: skip
PROMOTE = {"admin": (422, 422, 422), "centre": (422, 422, 422), "leader": NONE, "dispatcher": NONE,
           "worker": NONE, "officer": NONE, "api": NONE}  # fmt: skip
LISTED = {"admin": set(PLACES), "centre": set(PLACES), "leader": {"home", "neighbour"}, "dispatcher": {"home"}}


@pytest.mark.parametrize("person", PEOPLE)
def test_reading_an_alias_follows_role_and_place(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    got = tuple(
        client.get(f"/v1/aliases/{world['aliases'][place]}", headers=headers[person]).status_code for place in PLACES
    )
    assert got == TRACE[person]


@pytest.mark.parametrize("person", PEOPLE)
def test_the_list_holds_the_aliases_of_the_callers_area(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    answer = client.get("/v1/aliases", params={"text": "别名测试路"}, headers=headers[person])
    if person not in LISTED:
        assert answer.status_code == 403, answer.text
        return
    assert answer.status_code == 200, answer.text
    ids = {item["id"] for item in answer.json()["items"]}
    assert ids == {world["aliases"][place] for place in LISTED[person]}


@pytest.mark.parametrize(("action", "table"), [("withdraw", WITHDRAW), ("promote", PROMOTE)])
@pytest.mark.parametrize("person", PEOPLE)
def test_promoting_and_withdrawing_follow_role_and_place(
    client: TestClient,
    world: dict[str, Any],
    headers: dict[str, dict[str, str]],
    person: str,
    action: str,
    table: dict[str, tuple[int, int, int]],
) -> None:
    got = tuple(
        client.post(
            f"/v1/aliases/{world['aliases'][place]}/{action}", json={"reason": " "}, headers=headers[person]
        ).status_code
        for place in PLACES
    )
    assert got == table[person]


def test_the_cli_lists_shows_promotes_and_withdraws(db: DatabaseSettings, world: dict[str, Any]) -> None:
    env = {"GRIDGOV_DATABASE_URL": db.database_url, "GRIDGOV_SECRET_KEY": SECRET_KEY}
    alias = world["aliases"]["away"]

    def gridgov(*args: str) -> Any:
        return CliRunner().invoke(app, ["addresses", "aliases", *args], env=env)

    listed = gridgov("list", "--text", "别名测试路")
    assert listed.exit_code == 0, listed.output
    assert "3 alias(es)" in listed.output and "user:somebody" in listed.output
    assert gridgov("promote", str(alias), "--reason", "核实", "--by", "cli:test").exit_code == 0
    assert gridgov("withdraw", str(alias), "--reason", "门牌已拆", "--by", "cli:test").exit_code == 0
    shown = gridgov("show", str(alias))
    assert shown.exit_code == 0, shown.output
    assert "promoted by cli:test" in shown.output and "withdrawn by cli:test" in shown.output
    again = gridgov("withdraw", str(alias), "--reason", "再撤")
    assert again.exit_code != 0 and "withdrawn already" in again.output
    assert gridgov("show", "999999999").exit_code != 0
    engine = make_engine(db)
    with engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM address_alias WHERE id = :id"), {"id": alias}).scalar_one()
    engine.dispose()
    assert state == "withdrawn"


def test_a_dispatcher_withdraws_an_alias_they_taught_even_outside_their_community(
    client: TestClient, db: DatabaseSettings, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    neighbour = world["doors"]["neighbour"]
    engine = make_engine(db)
    with engine.begin() as conn:
        taught = teach_alias(
            conn, normalized_text="本人教的别名路9号", address_id=neighbour["id"], raw_text="本人教的别名路9号",
            taught_by="user:dispatcher", community_code=neighbour["community_code"],
        ).alias_id  # fmt: skip
    engine.dispose()
    # Outside their community they cannot read it, but they may take back what they taught.
    assert client.get(f"/v1/aliases/{taught}", headers=headers["dispatcher"]).status_code == 403
    done = client.post(f"/v1/aliases/{taught}/withdraw", json={"reason": "教错了"}, headers=headers["dispatcher"])
    assert done.status_code == 200, done.text
    assert done.json()["withdrawn_by"] == "user:dispatcher" and done.json()["withdraw_reason"] == "教错了"
