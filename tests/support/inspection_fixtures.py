"""tests.support.inspection_fixtures: a drawn inspection plan on the test city, built row by row for result tests.

The results of a plan do not depend on how it was drawn, so these tests build the drawn state directly: three items
(two of market supervision, one of them for licensed entities only, and one of health), four inspectors in one team,
and three visits to open entities of one staffed grid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

from gis import clock

ITEMS = {
    "market_supervision-97": ("market_supervision", "企业公示信息抽查（测试）", False),
    "market_supervision-98": ("market_supervision", "食品经营许可情况检查（测试）", True),
    "health-99": ("health", "公共场所卫生检查（测试）", False),
}


@dataclass(frozen=True)
class DrawnPlan:
    """The ids a test needs: the plan, its team and inspectors, its visits (by entity) and where they are."""

    plan_id: int
    team_id: int
    inspector_ids: tuple[int, ...]
    visits: dict[str, int]
    names: dict[str, str]
    town_code: str
    grid_code: str


def ensure_items(conn: Connection) -> None:
    """The three test items (idempotent)."""
    for code, (department, name, licence_only) in ITEMS.items():
        conn.execute(
            text(
                """
                INSERT INTO inspection_item (code, department_code, name, basis, key, licence_only, service_minutes,
                                             source)
                VALUES (:code, :department, :name, '测试依据', false, :licence_only, 30, 'assumption: test fixture')
                ON CONFLICT (code) DO NOTHING
                """
            ),
            {"code": code, "department": department, "name": name, "licence_only": licence_only},
        )


def drawn_plan(conn: Connection, *, skip: int = 0, status: str = "drawn", publish_days: int = 20) -> DrawnPlan:
    """A plan drawn in a staffed grid of the test city: one joint team, three visits carrying every test item.

    `skip` picks another grid, so that several plans of one test module visit different entities.
    """
    ensure_items(conn)
    grid = conn.execute(
        text(
            """
            SELECT e.grid_code, g.town_code FROM entity e
            JOIN grid g ON g.code = e.grid_code
            JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            WHERE e.status = 'open' AND e.geom IS NOT NULL
              AND EXISTS (SELECT 1 FROM worker w WHERE w.grid_code = e.grid_code AND w.active)
            GROUP BY e.grid_code, g.town_code HAVING count(*) >= 3
            ORDER BY e.grid_code OFFSET :skip LIMIT 1
            """
        ),
        {"skip": skip},
    ).one()
    entities = conn.execute(
        text(
            """
            SELECT uscc, name FROM entity WHERE grid_code = :g AND status = 'open' AND geom IS NOT NULL
            ORDER BY uscc LIMIT 3
            """
        ),
        {"g": grid.grid_code},
    ).all()
    now = clock.now()
    seed = hashlib.sha256(f"server seed {skip}".encode()).digest()
    plan_id = conn.execute(
        text(
            """
            INSERT INTO inspection_plan (title, department_codes, item_codes, area, town_codes, status, server_seed,
                commitment, candidates_sha256, candidate_count, public_value_source, public_value_at, public_value,
                seed, load_cap, publish_days, visit_date, created_by, created_at, drawn_by, drawn_at)
            VALUES (:title, :departments, :items, CAST(:area AS jsonb), :towns, :status, :server_seed, :commitment,
                :candidates, 3, '中国福利彩票3D 第2026335期开奖号码', :at, :public_value, :seed, 20, :publish_days,
                :visit_date, 'centre', :created, :drawn_by, :drawn_at)
            RETURNING id
            """
        ),
        {
            "title": f"测试联合抽查 {skip}",
            "departments": ["health", "market_supervision"],
            "items": sorted(ITEMS),
            "area": f'{{"towns": ["{grid.town_code}"]}}',
            "towns": [grid.town_code],
            "status": status,
            "server_seed": seed,
            "commitment": hashlib.sha256(seed).hexdigest(),
            "candidates": hashlib.sha256(b"stratum_id,uscc\n").hexdigest(),
            "at": now - timedelta(hours=1),
            "public_value": "123" if status == "drawn" else None,
            "seed": hashlib.sha256(seed + b"123").hexdigest() if status == "drawn" else None,
            "publish_days": publish_days,
            "visit_date": now.date(),
            "created": now - timedelta(days=2),
            "drawn_by": "centre" if status == "drawn" else None,
            "drawn_at": now - timedelta(minutes=30) if status == "drawn" else None,
        },
    ).scalar_one()
    inspector_ids = []
    for n, department in enumerate(["market_supervision", "market_supervision", "health", "health"]):
        qualified = [code for code, (dept, _, _) in ITEMS.items() if dept == department]
        inspector_ids.append(
            conn.execute(
                text(
                    """
                    INSERT INTO inspector (code, department_code, name, qualifications, office_name, office_geom)
                    SELECT :code, :department, :name, :qualified, '测试分局', ST_Centroid(t.geom)
                    FROM town t WHERE t.code = :town
                    RETURNING id
                    """
                ),
                {
                    "code": f"4419009{plan_id:03d}{n}",
                    "department": department,
                    "name": f"执法员{plan_id}{'甲乙丙丁'[n]}",
                    "qualified": qualified,
                    "town": grid.town_code,
                },
            ).scalar_one()
        )
    team_id = conn.execute(
        text(
            """
            INSERT INTO inspection_team (plan_id, team_no, department_codes, inspector_ids, office_name, office_geom)
            SELECT :plan, 1, :departments, :members, '测试分局', ST_Centroid(t.geom) FROM town t WHERE t.code = :town
            RETURNING id
            """
        ),
        {
            "plan": plan_id,
            "departments": ["health", "market_supervision"],
            "members": inspector_ids,
            "town": grid.town_code,
        },
    ).scalar_one()
    visits = {}
    for entity in entities:
        visits[entity.uscc] = conn.execute(
            text(
                """
                INSERT INTO inspection_visit (plan_id, uscc, town_code, grid_code, item_codes, department_codes,
                                              team_id, geom, window_start, window_end, service_minutes)
                SELECT :plan, e.uscc, :town, e.grid_code, :items, :departments, :team, e.geom, 540, 1050, 90
                FROM entity e WHERE e.uscc = :uscc
                RETURNING id
                """
            ),
            {
                "plan": plan_id,
                "uscc": entity.uscc,
                "town": grid.town_code,
                "items": sorted(ITEMS),
                "departments": ["health", "market_supervision"],
                "team": team_id if status == "drawn" else None,
            },
        ).scalar_one()
    return DrawnPlan(
        plan_id=plan_id,
        team_id=team_id,
        inspector_ids=tuple(inspector_ids),
        visits=visits,
        names={e.uscc: e.name for e in entities},
        town_code=grid.town_code,
        grid_code=grid.grid_code,
    )
