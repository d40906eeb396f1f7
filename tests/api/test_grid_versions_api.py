"""The command centre redraws grids over the API: a draft is drawn for a community, read, compared with the current
grids, made active in one step and rolled back; bad input and stale drafts are refused with a reason, and every
role reaches only the drafts of its own area (the role × place matrix below is written out by hand).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.routers.grid_versions import ApplyOut, ComparisonOut, GridVersionList, GridVersionOut
from gis.database import make_engine
from gis.settings import DatabaseSettings
from tests.support.accounts import api_key_headers, bearer, make_api_key, make_users
from tests.support.grid_areas import RedesignArea, a_community_to_redesign
from tests.support.server import SECRET_KEY

pytestmark = pytest.mark.db

PEOPLE = ("admin", "centre", "leader", "leader_away", "dispatcher", "worker", "officer", "api")


@pytest.fixture(scope="module", autouse=True)
def world(db: DatabaseSettings) -> dict[str, Any]:
    """Two communities to redraw (home, and one in another town) and an account of every role."""
    engine = make_engine(db)
    with engine.begin() as conn:
        home = a_community_to_redesign(conn)
        away = a_community_to_redesign(conn, not_town=home.town_code, locked=False)
        worker_id = conn.execute(
            text("SELECT min(id) FROM worker WHERE grid_code = :g AND active"), {"g": home.grid_codes[0]}
        ).scalar_one()
        make_users(
            conn,
            {
                "admin": ("admin", None),
                "centre": ("command_centre", None),
                "leader": ("town_leader", home.town_code),
                "leader_away": ("town_leader", away.town_code),
                "dispatcher": ("dispatcher", home.community_code),
                "worker": ("grid_worker", str(worker_id)),
                "officer": ("department_officer", "tobacco"),
            },
        )
        key = make_api_key(conn, SECRET_KEY, "registry", permissions=["intake"])
        original = conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one()
    engine.dispose()
    return {"home": home, "away": away, "api_key": key, "original": original}


@pytest.fixture(scope="module")
def headers(client: TestClient, world: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"api": api_key_headers(world["api_key"])}
    for name in PEOPLE[:-1]:
        out[name] = bearer(client, name)
    return out


def draw(client: TestClient, who: dict[str, str], area: RedesignArea, **extra: Any) -> Any:
    """POST a draft for the community of `area` (K one more than now unless `extra` says otherwise)."""
    body = {"community": area.community_code, "grids": len(area.grid_codes) + 1, **extra}
    return client.post("/v1/grid-versions", json=body, headers=who)


def active_version(db: DatabaseSettings) -> int:
    engine = make_engine(db)
    with engine.connect() as conn:
        version = int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())
    engine.dispose()
    return version


@pytest.fixture(scope="module")
def drafts(client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]) -> dict[str, int]:
    """A draft of each place, drawn by the command centre (one grid locked in the home draft)."""
    out: dict[str, int] = {}
    for place in ("home", "away"):
        area: RedesignArea = world[place]
        lock = [area.lock] if place == "home" else []
        response = draw(client, headers["centre"], area, lock=lock)
        assert response.status_code == 201, response.text
        out[place] = response.json()["id"]
    return out


# ------------------------------------------------------------------------------------------------ the stories


def test_the_command_centre_draws_a_draft_and_the_current_grids_stay_as_they_are(
    client: TestClient,
    world: dict[str, Any],
    headers: dict[str, dict[str, str]],
    drafts: dict[str, int],
    db: DatabaseSettings,
) -> None:
    home: RedesignArea = world["home"]
    answer = client.get(f"/v1/grid-versions/{drafts['home']}", headers=headers["centre"])
    assert answer.status_code == 200, answer.text
    draft = GridVersionOut.model_validate(answer.json())
    assert draft.status == "draft" and not draft.stale
    assert draft.area_code == home.community_code and draft.area_level == "community"
    assert draft.base_version_id == world["original"]
    assert draft.created_by == "user:centre"
    assert draft.links.compare_page == f"/grid-versions/{drafts['home']}"
    # The figures before → after: one more grid, the locked one kept, every grid within ±10% of the mean.
    figures = draft.figures
    assert figures is not None
    assert len(figures.grids_before) == len(home.grid_codes)
    assert len(figures.grids_after) == len(home.grid_codes) + 1
    assert home.lock in figures.codes_kept and figures.locked == [home.lock]
    assert len(figures.codes_new) >= 1
    assert figures.balanced and figures.max_deviation_after <= 0.10 + 1e-9
    assert all(abs(g.deviation) <= 0.10 + 1e-9 for g in figures.grids_after)
    assert figures.area is not None and figures.area.code == home.community_code
    assert figures.draw_seconds is not None and figures.draw_seconds >= figures.seconds
    # Nothing changed for anyone else: the original version is still the active one.
    assert active_version(db) == world["original"]
    active = client.get("/v1/grid-versions", params={"status": "active"}, headers=headers["centre"])
    assert [v.id for v in GridVersionList.model_validate(active.json()).items] == [world["original"]]


def test_the_comparison_shows_the_current_grids_the_draft_and_what_moves(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], drafts: dict[str, int]
) -> None:
    home: RedesignArea = world["home"]
    answer = client.get(f"/v1/grid-versions/{drafts['home']}/comparison", headers=headers["leader"])
    assert answer.status_code == 200, answer.text
    comparison = ComparisonOut.model_validate(answer.json())
    assert comparison.area == home.community_code and comparison.area_name
    current_codes = {
        f["properties"].get("code") or f["properties"].get("grid_code") for f in comparison.current["features"]
    }
    draft_codes = {
        f["properties"].get("code") or f["properties"].get("grid_code") for f in comparison.draft["features"]
    }
    assert current_codes == set(home.grid_codes)
    assert len(draft_codes) == len(home.grid_codes) + 1 and home.lock in draft_codes
    # A new grid is carved out of the old ones: some pieces change grid, and each says from where to where.
    assert comparison.moved["features"], "one more grid must take area from the others"
    for piece in comparison.moved["features"]:
        moved_from, moved_to = piece["properties"]["from_code"], piece["properties"]["to_code"]
        assert moved_from in current_codes and moved_to in draft_codes and moved_from != moved_to
        # The locked grid neither gives nor takes anything.
        assert home.lock not in (moved_from, moved_to)
    assert len(comparison.figures.grids_after) == len(home.grid_codes) + 1


def test_bad_requests_are_refused_with_a_machine_readable_reason(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    home: RedesignArea = world["home"]
    away: RedesignArea = world["away"]
    centre = headers["centre"]
    both = client.post(
        "/v1/grid-versions", json={"community": home.community_code, "town": home.town_code}, headers=centre
    )
    assert both.status_code == 422 and both.json()["error"] == "invalid_request"
    neither = client.post("/v1/grid-versions", json={"grids": 3}, headers=centre)
    assert neither.status_code == 422 and neither.json()["error"] == "invalid_request"
    for bad in (
        {"grids": 0},
        {"grids": 100},
        {"method": "annealing"},
        {"tolerance": 0.9},
        {"pp_floor": 1.5},
        {"lock": ["123"]},
        {"colour": "red"},
    ):
        answer = client.post("/v1/grid-versions", json={"community": home.community_code, **bad}, headers=centre)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert next(iter(bad)) in answer.json()["detail"]
    # A town code is not a community.
    town_as_community = client.post("/v1/grid-versions", json={"community": home.town_code}, headers=centre)
    assert town_as_community.status_code == 422
    # A lock outside the area: refused before anything is drawn.
    outside = draw(client, centre, home, lock=[away.grid_codes[0]])
    assert outside.status_code == 422, outside.text
    assert outside.json()["reason"] == "lock_outside_area"
    assert away.grid_codes[0] in outside.json()["detail"]
    # A K the workers cannot staff (more grids than two workers each allows).
    too_many = draw(client, centre, home, grids=home.workers // 2 + 1)
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["error"] == "infeasible" and too_many.json()["reason"]
    # An unknown community, an unknown version.
    unknown = client.post("/v1/grid-versions", json={"community": home.town_code[:9] + "999"}, headers=centre)
    assert unknown.status_code == 404, unknown.text
    assert client.get("/v1/grid-versions/999999", headers=centre).status_code == 404
    assert client.get("/v1/grid-versions/999999/comparison", headers=centre).status_code == 404
    assert client.post("/v1/grid-versions/999999/apply", headers=centre).status_code == 404
    assert client.get("/v1/grid-versions", params={"status": "gone"}, headers=centre).status_code == 422


# ------------------------------------------------------------------------------------------------ the matrix

# Who may do what where, written out by hand: (person) → (status at home, status away).
DRAW = {
    "admin": (201, 201), "centre": (201, 201), "leader": (201, 403), "leader_away": (403, 201),
    "dispatcher": (403, 403), "worker": (403, 403), "officer": (403, 403), "api": (403, 403),
}  # fmt: skip
READ = {
    "admin": (200, 200), "centre": (200, 200), "leader": (200, 403), "leader_away": (403, 200),
    "dispatcher": (200, 403), "worker": (403, 403), "officer": (403, 403), "api": (403, 403),
}  # fmt: skip
APPLY_REFUSED = ("leader", "leader_away", "dispatcher", "worker", "officer", "api")


@pytest.mark.parametrize("person", PEOPLE)
def test_who_may_draw_a_draft_where(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    for place, expected in zip(("home", "away"), DRAW[person], strict=True):
        answer = draw(client, headers[person], world[place])
        assert answer.status_code == expected, (person, place, answer.text)
        if expected == 201:
            assert GridVersionOut.model_validate(answer.json()).created_by.endswith(person.replace("api", "registry"))
        else:
            assert answer.json()["error"] == "forbidden"


# Who may discard a draft (grids.redesign, in the draft's area): (person) → (status at home, status away).
DISCARD = {
    "admin": (204, 204), "centre": (204, 204), "leader": (204, 403), "leader_away": (403, 204),
    "dispatcher": (403, 403), "worker": (403, 403), "officer": (403, 403), "api": (403, 403),
}  # fmt: skip


def empty_draft(db: DatabaseSettings, area: RedesignArea) -> int:
    """A draft row of the area without grids (what discarding needs), written as the service writes one."""
    from datetime import UTC, datetime

    from planning import grid_version_repository as repo

    engine = make_engine(db)
    with engine.begin() as conn:
        base = int(conn.execute(text("SELECT id FROM grid_version WHERE status = 'active'")).scalar_one())
        version = repo.insert_draft(
            conn,
            name="待删除的草案",
            note="",
            base_version_id=base,
            area_code=area.community_code,
            created_by="测试",
            created_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
            figures={},
            fingerprint="",
        )
    engine.dispose()
    return version


def version_status(db: DatabaseSettings, version_id: int) -> str:
    engine = make_engine(db)
    with engine.connect() as conn:
        status = str(
            conn.execute(text("SELECT status FROM grid_version WHERE id = :v"), {"v": version_id}).scalar_one()
        )
    engine.dispose()
    return status


@pytest.mark.parametrize("person", PEOPLE)
def test_who_may_discard_a_draft_where(
    client: TestClient,
    db: DatabaseSettings,
    world: dict[str, Any],
    headers: dict[str, dict[str, str]],
    person: str,
) -> None:
    for place, expected in zip(("home", "away"), DISCARD[person], strict=True):
        version = empty_draft(db, world[place])
        answer = client.delete(f"/v1/grid-versions/{version}", headers=headers[person])
        assert answer.status_code == expected, (person, place, answer.text)
        if expected == 204:
            assert version_status(db, version) == "retired"
            again = client.delete(f"/v1/grid-versions/{version}", headers=headers[person])
            assert again.status_code == 409 and again.json()["reason"] == "not_a_draft"
            assert "只有草案可以删除" in again.json()["detail"]
        else:
            assert answer.json()["error"] == "forbidden" and version_status(db, version) == "draft"
            # Cleared by the command centre, so the area's five-draft allowance is left for the other stories.
            assert client.delete(f"/v1/grid-versions/{version}", headers=headers["centre"]).status_code == 204
    assert client.delete("/v1/grid-versions/999999", headers=headers["centre"]).status_code == 404


def test_a_sixth_draft_of_an_area_is_refused_naming_the_five(
    client: TestClient, db: DatabaseSettings, world: dict[str, Any], headers: dict[str, dict[str, str]]
) -> None:
    engine = make_engine(db)
    with engine.connect() as conn:
        existing = [
            int(v)
            for v in conn.execute(
                text("SELECT id FROM grid_version WHERE status = 'draft' AND area_code = :a"),
                {"a": world["away"].community_code},
            ).scalars()
        ]
    engine.dispose()
    made = [empty_draft(db, world["away"]) for _ in range(5 - len(existing))]
    refused = draw(client, headers["centre"], world["away"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "too_many_drafts"
    assert all(str(v) in refused.json()["detail"] for v in [*existing, *made])
    for version in made:
        assert client.delete(f"/v1/grid-versions/{version}", headers=headers["centre"]).status_code == 204


@pytest.mark.parametrize("person", PEOPLE)
def test_who_may_read_and_compare_a_draft_where(
    client: TestClient, headers: dict[str, dict[str, str]], drafts: dict[str, int], person: str
) -> None:
    for place, expected in zip(("home", "away"), READ[person], strict=True):
        version = drafts[place]
        for url in (f"/v1/grid-versions/{version}", f"/v1/grid-versions/{version}/comparison"):
            answer = client.get(url, headers=headers[person])
            assert answer.status_code == expected, (person, place, url, answer.text)


@pytest.mark.parametrize("person", PEOPLE)
def test_the_list_holds_only_the_drafts_of_the_callers_area(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], drafts: dict[str, int], person: str
) -> None:
    answer = client.get("/v1/grid-versions", params={"status": "draft"}, headers=headers[person])
    home_expected, away_expected = READ[person]
    if home_expected == away_expected == 403:
        assert answer.status_code == 403, answer.text
        return
    assert answer.status_code == 200, answer.text
    listed = {v.id for v in GridVersionList.model_validate(answer.json()).items}
    assert (drafts["home"] in listed) == (home_expected == 200), person
    assert (drafts["away"] in listed) == (away_expected == 200), person
    everything = client.get("/v1/grid-versions", headers=headers[person]).json()["items"]
    assert world["original"] in {v["id"] for v in everything}, "the city's version is everyone's map"


@pytest.mark.parametrize("person", APPLY_REFUSED)
def test_only_the_command_centre_and_admins_may_apply_or_roll_back(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    drafts: dict[str, int],
    person: str,
    db: DatabaseSettings,
    world: dict[str, Any],
) -> None:
    for place in ("home", "away"):
        answer = client.post(f"/v1/grid-versions/{drafts[place]}/apply", headers=headers[person])
        assert answer.status_code == 403, (person, place, answer.text)
    assert client.post("/v1/grid-versions/rollback", headers=headers[person]).status_code == 403
    assert active_version(db) == world["original"]


# ------------------------------------------------------------------------------------------------ apply and rollback


def test_nothing_to_roll_back_before_any_draft_was_applied(
    client: TestClient, headers: dict[str, dict[str, str]], world: dict[str, Any], db: DatabaseSettings
) -> None:
    answer = client.post("/v1/grid-versions/rollback", headers=headers["centre"])
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "version_state"
    assert active_version(db) == world["original"]


def test_a_stale_draft_is_refused_and_nothing_is_applied(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], db: DatabaseSettings
) -> None:
    home: RedesignArea = world["home"]
    drawn = draw(client, headers["centre"], home, grids=len(home.grid_codes))
    assert drawn.status_code == 201, drawn.text
    version = drawn.json()["id"]
    # Someone retires an address of the area after the draft was drawn.
    engine = make_engine(db)
    with engine.begin() as conn:
        changed = conn.execute(
            text(
                "UPDATE address SET status = 'retired' WHERE id = (SELECT min(id) FROM address "
                "WHERE grid_code = :g AND status = 'active') RETURNING id"
            ),
            {"g": home.others[-1]},
        ).scalar_one()
    assert client.get(f"/v1/grid-versions/{version}", headers=headers["centre"]).json()["stale"] is True
    refused = client.post(f"/v1/grid-versions/{version}/apply", headers=headers["centre"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "stale_draft" and refused.json()["reason"] == "stale_draft"
    assert active_version(db) == world["original"]
    assert client.get(f"/v1/grid-versions/{version}", headers=headers["centre"]).json()["status"] == "draft"
    with engine.begin() as conn:
        conn.execute(text("UPDATE address SET status = 'active' WHERE id = :id"), {"id": changed})
    engine.dispose()


def test_the_command_centre_applies_a_draft_and_rolls_it_back(
    client: TestClient,
    world: dict[str, Any],
    headers: dict[str, dict[str, str]],
    drafts: dict[str, int],
    db: DatabaseSettings,
) -> None:
    home: RedesignArea = world["home"]
    version = drafts["home"]
    applied = client.post(f"/v1/grid-versions/{version}/apply", headers=headers["centre"])
    assert applied.status_code == 200, applied.text
    result = ApplyOut.model_validate(applied.json())
    assert result.version_id == version and result.batch_id > 0
    assert result.moved.get("address", 0) > 0, "a new grid takes addresses from the others"
    assert active_version(db) == version
    states = {v["id"]: v["status"] for v in client.get("/v1/grid-versions", headers=headers["centre"]).json()["items"]}
    assert states[version] == "active" and states[world["original"]] == "retired"
    # Every address of the community now lies in the draft's grid that covers it, and the move is audited.
    engine = make_engine(db)
    with engine.connect() as conn:
        misplaced = conn.execute(
            text(
                "SELECT count(*) FROM address a JOIN grid g ON g.version_id = :v AND g.code = a.grid_code "
                "WHERE a.community_code = :c AND a.status = 'active' AND NOT ST_Covers(g.geom, a.geom)"
            ),
            {"v": version, "c": home.community_code},
        ).scalar_one()
        batch = conn.execute(
            text("SELECT kind, version_id, actor FROM planning_batch WHERE id = :b"), {"b": result.batch_id}
        ).one()
    assert misplaced == 0
    assert (batch.kind, batch.version_id, batch.actor) == ("grid_apply", version, "user:centre")
    # Applied once: a second apply is refused, and so is the other town's draft drawn on the retired version.
    again = client.post(f"/v1/grid-versions/{version}/apply", headers=headers["centre"])
    assert again.status_code == 409 and again.json()["error"] == "version_state"
    other = client.post(f"/v1/grid-versions/{drafts['away']}/apply", headers=headers["admin"])
    assert other.status_code == 409 and other.json()["error"] in ("stale_draft", "version_state")

    rolled = client.post("/v1/grid-versions/rollback", headers=headers["admin"])
    assert rolled.status_code == 200, rolled.text
    back = ApplyOut.model_validate(rolled.json())
    assert back.version_id == world["original"]
    assert active_version(db) == world["original"]
    with engine.connect() as conn:
        home_grids = conn.execute(
            text(
                "SELECT count(*) FROM address a WHERE a.community_code = :c AND a.status = 'active' "
                "AND a.grid_code <> ALL(:codes)"
            ),
            {"c": home.community_code, "codes": list(home.grid_codes)},
        ).scalar_one()
    engine.dispose()
    assert home_grids == 0, "every address is back in one of the community's original grids"
    assert client.get(f"/v1/grid-versions/{version}", headers=headers["centre"]).json()["status"] == "retired"


# ------------------------------------------------------------------------------------------------ the pages

HTML = {"Accept": "text/html"}
PAGE = {
    "admin": 200, "centre": 200, "leader": 200, "leader_away": 403, "dispatcher": 200, "worker": 403,
    "officer": 403, "api": 403,
}  # fmt: skip


@pytest.mark.parametrize("person", PEOPLE)
def test_the_compare_page_opens_for_the_readers_of_the_drafts_area_and_offers_apply_only_to_the_command_centre(
    client: TestClient, headers: dict[str, dict[str, str]], drafts: dict[str, int], person: str
) -> None:
    answer = client.get(f"/grid-versions/{drafts['home']}", headers={**headers[person], **HTML})
    assert answer.status_code == PAGE[person], (person, answer.text[:200])
    if PAGE[person] == 403:
        assert "您的账号无权查看此页面" in answer.text
        assert 'id="map-draft"' not in answer.text
        return
    assert 'id="map-current"' in answer.text and 'id="map-draft"' in answer.text
    assert ('id="apply"' in answer.text) == (person in ("admin", "centre"))
    assert "/static/grid_versions/compare.js" in answer.text


def test_a_program_gets_json_and_a_stranger_the_login_page(
    client: TestClient, headers: dict[str, dict[str, str]], drafts: dict[str, int]
) -> None:
    program = client.get(f"/grid-versions/{drafts['away']}", headers=headers["leader"])
    assert program.status_code == 403 and program.json()["error"] == "forbidden"
    unknown = client.get("/grid-versions/999999", headers={**headers["centre"], **HTML})
    assert unknown.status_code == 404 and "/static/grid_versions/compare.js" in unknown.text
    assert client.get("/grid-versions/999999", headers=headers["centre"]).status_code == 404
    stranger = client.get(f"/grid-versions/{drafts['home']}", headers=HTML, follow_redirects=False)
    assert stranger.status_code == 303
    assert stranger.headers["location"] == f"/login?next=/grid-versions/{drafts['home']}"


@pytest.mark.parametrize("person", ["centre", "leader", "dispatcher", "worker"])
def test_the_versions_page_offers_the_draw_form_to_those_who_may_draw(
    client: TestClient, world: dict[str, Any], headers: dict[str, dict[str, str]], person: str
) -> None:
    answer = client.get("/grid-versions", headers={**headers[person], **HTML})
    if person == "worker":
        assert answer.status_code == 403 and "您的账号无权查看此页面" in answer.text
        return
    assert answer.status_code == 200
    assert ('id="draw"' in answer.text) == (person in ("centre", "leader"))
    assert ('id="rollback"' in answer.text) == (person == "centre")
    if person == "leader":
        # A town leader's form starts on their own town.
        assert f'value="{world["home"].town_code}"' in answer.text
