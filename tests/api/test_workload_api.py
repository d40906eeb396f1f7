"""GET /v1/workload: a town leader, a dispatcher or the command centre reads how many hours a month a grid,
community or town holds, how many workers carry it, and what the hours are made of — in their area only."""

from __future__ import annotations

from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.workload import WorkloadOut
from gis.database import make_engine
from gis.settings import DatabaseSettings
from maps.tiles import tile_of_lon_lat
from planning.workload import load_standards, recommended_workers
from planning.workload_service import grid_workloads, refresh
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.city import a_door_in_a_neighbour_community, a_door_in_another_town, a_door_with_workers
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "dispatcher", "worker", "officer", "away-leader", "api")
STANDARDS = load_standards()


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """A home door (grid, community, town), a neighbour community of the same town, another town, and every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_door_with_workers(conn, min_workers=2)
        neighbour = a_door_in_a_neighbour_community(conn, home)
        away = a_door_in_another_town(conn, home.town_code)
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(home.worker_id)),
                "officer": ("department_officer", "tobacco"),
                "away-leader": ("town_leader", away.town_code),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry-workload", permissions=["intake"])
        # A draft redrawing the home community: a copy of the active grids, the home grid planned with 4 workers.
        active = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one()
        draft = conn.execute(
            text(
                "INSERT INTO grid_version (name, status, base_version_id, area_code, created_by)"
                " VALUES ('网格调整草案：测试', 'draft', :a, :area, 'test') RETURNING id"
            ),
            {"a": active, "area": home.community_code},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO grid (version_id, code, community_code, town_code, name, population, address_count,"
                " entity_count, workload, worker_count, area_m2, geom)"
                " SELECT :d, code, community_code, town_code, name, population, address_count, entity_count, workload,"
                " CASE WHEN code = :home THEN 4 ELSE worker_count END, area_m2, geom FROM grid WHERE version_id = :a"
            ),
            {"d": draft, "a": active, "home": home.grid_code},
        )
    engine.dispose()
    return {
        "home": home,
        "neighbour": neighbour,
        "away": away,
        "api_key": key,
        "active": active,
        "draft": draft,
    }


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE[:-1]:
        out[name] = bearer(client, name)
    return out


def _unit(world: dict[str, Any], place: str, level: str) -> str:
    door = world[place]
    return {"grid": door.grid_code, "community": door.community_code, "town": door.town_code}[level]


# Written out by hand: who may read which unit (workload.read is the town leader's, the dispatcher's, the command
# centre's and the admin's; a dispatcher's area is their community, a leader's their town).
EXPECTED = {
    ("admin", "home"): {"grid": 200, "community": 200, "town": 200},
    ("admin", "away"): {"grid": 200, "community": 200, "town": 200},
    ("centre", "home"): {"grid": 200, "community": 200, "town": 200},
    ("centre", "away"): {"grid": 200, "community": 200, "town": 200},
    ("leader", "home"): {"grid": 200, "community": 200, "town": 200},
    ("leader", "neighbour"): {"grid": 200, "community": 200, "town": 200},
    ("leader", "away"): {"grid": 403, "community": 403, "town": 403},
    ("dispatcher", "home"): {"grid": 200, "community": 200, "town": 403},
    ("dispatcher", "neighbour"): {"grid": 403, "community": 403, "town": 403},
    ("dispatcher", "away"): {"grid": 403, "community": 403, "town": 403},
    ("worker", "home"): {"grid": 403, "community": 403, "town": 403},
    ("officer", "home"): {"grid": 403, "community": 403, "town": 403},
    ("api", "home"): {"grid": 403, "community": 403, "town": 403},
}


@pytest.mark.parametrize(("who", "place"), sorted(EXPECTED))
def test_each_role_reads_the_workload_of_its_own_area_only(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], who: str, place: str
) -> None:
    """Every role × place × level answers as the table says; a refusal says why in Chinese."""
    for level, status in EXPECTED[(who, place)].items():
        response = client.get(
            "/v1/workload", params={"level": level, "code": _unit(world, place, level)}, headers=headers[who]
        )
        assert response.status_code == status, (who, place, level, response.text)
        if status == 403:
            assert response.json()["error"] == "forbidden"


def test_a_town_leader_sees_the_hours_of_a_community_grid_by_grid(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """The community's hours are its grids' hours; each grid says its workers and recommended head-count."""
    home = world["home"]
    response = client.get(
        "/v1/workload", params={"level": "community", "code": home.community_code}, headers=headers["leader"]
    )
    assert response.status_code == 200, response.text
    body = WorkloadOut.model_validate(response.json())
    assert body.name and body.version_id == world["active"] and body.version_status == "active"
    assert body.standards_version == STANDARDS.version
    assert body.grids is not None and home.grid_code in {g.code for g in body.grids}
    assert body.hours == pytest.approx(sum(g.hours for g in body.grids))
    assert body.hours == pytest.approx(sum(i.hours for i in body.items))
    assert body.workers == sum(g.workers for g in body.grids) >= 2 * len(body.grids) - 0
    assert body.hours_per_worker == pytest.approx(body.hours / body.workers)
    assert body.capacity_hours == pytest.approx(body.workers * STANDARDS.field_hours_per_worker_month)
    assert body.recommended_workers == sum(recommended_workers(g.hours, STANDARDS) for g in body.grids)
    assert {"patrol", "clues", "travel:area", "travel:roads", "open_tasks"} <= {i.key for i in body.items}
    assert all(i.label_zh for i in body.items)
    assert body.hours > 0


def test_a_grid_answer_has_the_breakdown_and_no_grid_list(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """A single grid: hours, its active workers, hours per worker and the items; the grid list is for areas only."""
    home = world["home"]
    response = client.get(
        "/v1/workload", params={"level": "grid", "code": home.grid_code}, headers=headers["dispatcher"]
    )
    body = WorkloadOut.model_validate(response.json())
    assert body.grids is None
    assert body.workers == len(home.worker_ids)
    assert body.hours_per_worker == pytest.approx(body.hours / body.workers)
    assert body.recommended_workers == recommended_workers(body.hours, STANDARDS)
    # Each worker: an equal share of the grid's work but the backlog, plus the open tasks they hold themselves.
    assert body.worker_loads is not None and [w.id for w in body.worker_loads] == sorted(home.worker_ids)
    backlog = next(i.hours for i in body.items if i.key == "open_tasks")
    for worker in body.worker_loads:
        assert worker.name
        assert worker.hours == pytest.approx((body.hours - backlog) / body.workers + worker.own_open_hours)


def test_a_draft_shows_its_own_grids_and_planned_head_count_to_whoever_covers_its_area(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """version= a draft: the draft's grids with the workers it plans; a leader of another town may not read it."""
    home, away = world["home"], world["away"]
    draft = client.get(
        "/v1/workload",
        params={"level": "grid", "code": home.grid_code, "version": world["draft"]},
        headers=headers["leader"],
    )
    assert draft.status_code == 200, draft.text
    body = WorkloadOut.model_validate(draft.json())
    assert (body.version_id, body.version_status, body.workers) == (world["draft"], "draft", 4)
    assert body.worker_loads is None  # a draft has planned head-counts, no workers yet
    active = client.get("/v1/workload", params={"level": "grid", "code": home.grid_code}, headers=headers["leader"])
    assert body.hours == pytest.approx(active.json()["hours"])  # same geometry, same hours
    outsider = client.get(
        "/v1/workload",
        params={"level": "grid", "code": away.grid_code, "version": world["draft"]},
        headers=headers["away-leader"],
    )
    assert outsider.status_code == 403
    assert outsider.json()["error"] == "forbidden"


def test_an_outsider_cannot_tell_whether_a_unit_or_a_draft_of_another_area_exists(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """A leader asking about another town gets the same 403 for a real grid and a made-up one, and for a draft of
    another area as for a version number that does not exist; only the command centre learns what is unknown."""
    away, draft = world["away"], world["draft"]
    made_up_grid = away.town_code[:9] + "999999"
    made_up_community = away.town_code[:9] + "999"
    for version in (None, draft):
        answers = [
            client.get(
                "/v1/workload",
                params={"level": level, "code": code} | ({"version": version} if version else {}),
                headers=headers["leader"],
            )
            for level, code in (
                ("grid", away.grid_code),
                ("grid", made_up_grid),
                ("community", made_up_community),
            )
        ]
        assert [a.status_code for a in answers] == [403, 403, 403], [a.text for a in answers]
        assert (
            len({a.json()["detail"].replace(away.grid_code, "X").replace(made_up_grid, "X") for a in answers[:2]}) == 1
        )
    home_grid = world["home"].grid_code
    other_draft = client.get(
        "/v1/workload",
        params={"level": "grid", "code": world["away"].grid_code, "version": draft},
        headers=headers["away-leader"],
    )
    no_such = client.get(
        "/v1/workload",
        params={"level": "grid", "code": world["away"].grid_code, "version": 999999},
        headers=headers["away-leader"],
    )
    assert (other_draft.status_code, no_such.status_code) == (403, 403)
    assert other_draft.json()["detail"].replace(str(draft), "N") == no_such.json()["detail"].replace("999999", "N")
    centre = client.get(
        "/v1/workload", params={"level": "grid", "code": home_grid, "version": 999999}, headers=headers["centre"]
    )
    assert (centre.status_code, centre.json()["reason"]) == (404, "unknown_version")


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"level": "grid", "code": "441900999999999"}, 404, "unknown_unit"),
        ({"level": "community", "code": "441900999999"}, 404, "unknown_unit"),
        ({"level": "grid", "code": "HOME", "version": 999999}, 404, "unknown_version"),
        ({"level": "district", "code": "441900003000"}, 422, None),
        ({"level": "grid", "code": "4419"}, 422, None),
        ({"level": "town", "code": "441900003001"}, 422, None),
        ({"level": "grid"}, 422, None),
    ],
)
def test_bad_or_unknown_units_are_refused_with_the_reason(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    world: dict[str, Any],
    params: dict[str, Any],
    status: int,
    reason: str | None,
) -> None:
    """An unknown code or version is 404 with its reason; a malformed level or code is 422."""
    if params.get("code") == "HOME":
        params = {**params, "code": world["home"].grid_code}
    response = client.get("/v1/workload", params=params, headers=headers["centre"])
    assert response.status_code == status, response.text
    if reason:
        assert response.json()["reason"] == reason


def test_the_map_tiles_carry_each_grids_hours_per_worker_once_computed(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any]
) -> None:
    """The grid tiles at the home door carry hours per worker after a refresh, and a cached tile is rebuilt."""
    home = world["home"]
    tile = tile_of_lon_lat(home.lon, home.lat, 15)
    url = f"/tiles/grids/{tile.z}/{tile.x}/{tile.y}.mvt"

    def grids() -> dict[str, dict[str, Any]]:
        answer = client.get(url, headers=headers["centre"])
        assert answer.status_code == 200, answer.text
        return {
            f["properties"]["code"]: f["properties"]
            for f in mapbox_vector_tile.decode(answer.content)["grids"]["features"]
        }

    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_workload"))
    assert "hours_per_worker" not in grids()[home.grid_code]  # not computed yet: absent, the map shows no data
    with engine.begin() as conn:
        refresh(conn)
        hours = grid_workloads(conn, grid_codes=[home.grid_code])[home.grid_code].hours
        worker_count = conn.execute(
            text(
                "SELECT count(*) FROM worker w JOIN grid_version v ON v.id = w.version_id AND v.status = 'active'"
                " WHERE w.grid_code = :g AND w.active"
            ),
            {"g": home.grid_code},
        ).scalar_one()
    shown = grids()[home.grid_code]
    assert shown["hours_per_worker"] == pytest.approx(hours / worker_count, rel=1e-5)
    assert {"workers", "workload", "open_tasks"} <= set(shown)  # the properties the map had are all still there
    # A worker leaves the grid: the same hours now fall on one worker fewer, on the next tile asked.
    with engine.begin() as conn:
        conn.execute(text("UPDATE worker SET active = false WHERE id = :w"), {"w": home.worker_ids[-1]})
    try:
        assert grids()[home.grid_code]["hours_per_worker"] == pytest.approx(hours / (worker_count - 1), rel=1e-5)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE worker SET active = true WHERE id = :w"), {"w": home.worker_ids[-1]})
