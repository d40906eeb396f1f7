"""A small inspection world over the test city, for the plan and draw stories: items of two departments and inspectors
with offices in the busiest town (the tests' own rows, so a story never depends on the demo lists' numbers)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

# The tests' own items: two general items of market supervision (every company / every individual business), one key
# item of each department on catering (餐饮服务), so that catering entities are often drawn for both: a joint visit.
ITEMS = (
    ("market_supervision-90", "market_supervision", "企业公示信息抽查（测试）", False, "{company}", "{}", 30),
    ("market_supervision-91", "market_supervision", "个体工商户公示信息抽查（测试）", False, "{individual}", "{}", 20),
    (
        "market_supervision-92",
        "market_supervision",
        "餐饮服务食品安全检查（测试）",
        True,
        "{company,individual}",
        "{餐饮服务}",
        40,
    ),
    ("health-90", "health", "公共场所卫生检查（测试）", True, "{company,individual}", "{餐饮服务}", 30),
)
MS_ITEMS = ("market_supervision-90", "market_supervision-91", "market_supervision-92")
JOINT_ITEMS = ("market_supervision-92", "health-90")
INSPECTORS_PER_DEPARTMENT = 14


@dataclass(frozen=True)
class InspectionWorld:
    """The town the stories plan in, another town, and a grid of the town."""

    town_code: str
    other_town: str
    grid_code: str


def make_inspection_world(conn: Connection) -> InspectionWorld:
    """Insert the tests' items and inspectors (idempotent on codes); the busiest town and its neighbours' codes."""
    town = conn.execute(
        text("SELECT town_code FROM entity WHERE status = 'open' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    ).scalar_one()
    other = conn.execute(
        text("SELECT code FROM town WHERE code <> :town ORDER BY code LIMIT 1"), {"town": town}
    ).scalar_one()
    grid = conn.execute(
        text(
            "SELECT grid_code FROM entity WHERE town_code = :town AND status = 'open' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ),
        {"town": town},
    ).scalar_one()
    for code, department, name, key, kinds, industries, minutes in ITEMS:
        conn.execute(
            text(
                """
                INSERT INTO inspection_item (code, department_code, name, basis, key, entity_kinds, industries,
                    licence_only, service_minutes, source)
                VALUES (:code, :department, :name, '测试依据', :key, CAST(:kinds AS varchar[]), CAST(:industries AS text[]),
                    false, :minutes, 'assumption: test fixture')
                ON CONFLICT (code) DO NOTHING
                """
            ),
            {
                "code": code,
                "department": department,
                "name": name,
                "key": key,
                "kinds": kinds,
                "industries": industries,
                "minutes": minutes,
            },
        )
    for department, prefix, items in (
        ("market_supervision", "T16MS", list(MS_ITEMS)),
        ("health", "T16HE", ["health-90"]),
    ):
        for i in range(INSPECTORS_PER_DEPARTMENT):
            conn.execute(
                text(
                    """
                    INSERT INTO inspector (code, department_code, name, qualifications, home_grid_code, office_name,
                        office_geom, conflicts)
                    SELECT :code, :department, :name, :items,
                           CASE WHEN :i % 4 = 0 THEN CAST(:grid AS text) ELSE NULL END,
                           '测试分局', ST_PointOnSurface(t.geom), '{}'
                    FROM town t WHERE t.code = :town
                    ON CONFLICT (code) DO NOTHING
                    """
                ),
                {
                    "code": f"{prefix}{i:03d}",
                    "department": department,
                    "name": f"测试执法员{prefix[-2:]}{i}",
                    "items": items,
                    "grid": grid,
                    "i": i,
                    "town": town,
                },
            )
    return InspectionWorld(town, other, grid)
