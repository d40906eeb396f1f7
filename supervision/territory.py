"""supervision.territory: keep addresses, entities and grid counts true to the grids after a boundary change."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, text


def relocate_community_points(conn: Connection, version_id: int, community_codes: Collection[str]) -> int:
    """Re-locate the addresses and entities of these communities in grid version `version_id`; refresh grid counts.

    Runs inside the caller's transaction. The tie rule is the locator's: on a shared edge the lowest grid code
    wins. Returns how many standard addresses of these communities no grid covers any more (the caller must
    refuse the change when that is not zero: every door belongs to a grid).
    """
    codes = sorted(community_codes)
    if not codes:
        return 0
    conn.execute(
        text(
            "UPDATE address a SET grid_code = s.code FROM ("
            " SELECT a2.id, (SELECT min(g.code) FROM grid g WHERE g.version_id = :version_id"
            "   AND ST_Covers(g.geom, a2.geom)) AS code"
            " FROM address a2 WHERE a2.community_code = ANY(:codes)) s "
            "WHERE a.id = s.id AND a.grid_code IS DISTINCT FROM s.code"
        ),
        {"version_id": version_id, "codes": codes},
    )
    conn.execute(
        text(
            "UPDATE entity e SET grid_code = a.grid_code FROM address a "
            "WHERE a.id = e.address_id AND a.community_code = ANY(:codes) AND e.grid_code IS DISTINCT FROM a.grid_code"
        ),
        {"codes": codes},
    )
    conn.execute(
        text(
            "UPDATE grid g SET address_count = c.n_addr, entity_count = c.n_ent, workload = c.n_addr + c.n_ent FROM ("
            " SELECT g2.code,"
            "  (SELECT count(*) FROM address a WHERE a.grid_code = g2.code) AS n_addr,"
            "  (SELECT count(*) FROM entity e WHERE e.grid_code = g2.code) AS n_ent"
            " FROM grid g2 WHERE g2.version_id = :version_id AND g2.community_code = ANY(:codes)) c "
            "WHERE g.version_id = :version_id AND g.code = c.code"
        ),
        {"version_id": version_id, "codes": codes},
    )
    uncovered = conn.execute(
        text("SELECT count(*) FROM address WHERE community_code = ANY(:codes) AND grid_code IS NULL"),
        {"codes": codes},
    ).scalar_one()
    return int(uncovered)
