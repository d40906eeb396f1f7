"""grids.repository: all SQL of the territory (towns, communities, grid versions, grids, workers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, func, select, text

from gis.bulk import copy_frame, ewkb_hex
from grids.codes import town_of
from grids.models import community, grid, grid_version, town, town_repair, worker


def _with_geom(frame: gpd.GeoDataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({c: frame[c].to_numpy() for c in columns})
    out["geom"] = ewkb_hex(frame.geometry.to_numpy())
    return out


def replace_towns(conn: Connection, towns: gpd.GeoDataFrame, repair_report: pd.DataFrame) -> None:
    """Replace the towns (WGS84 frame with code, name, name_en, kind, population, area_m2) and store the repair report."""
    conn.execute(town_repair.delete())
    conn.execute(town.delete())
    copy_frame(conn, town, _with_geom(towns, ["code", "name", "name_en", "kind", "population", "area_m2"]))
    report = repair_report[
        ["town_code", "area_before_m2", "area_after_m2", "gap_area_added_m2", "overlap_area_removed_m2"]
    ].copy()
    report["note"] = repair_report.get("note")
    copy_frame(conn, town_repair, report)


def replace_communities(conn: Connection, communities: gpd.GeoDataFrame) -> None:
    """Replace all communities (WGS84 frame)."""
    conn.execute(community.delete())
    copy_frame(
        conn,
        community,
        _with_geom(communities, ["code", "town_code", "name", "short_name", "kind", "population", "area_m2"]),
    )


def create_grid_version(conn: Connection, *, name: str, status: str, note: str | None = None) -> int:
    """Insert a grid version and return its id."""
    row = conn.execute(grid_version.insert().values(name=name, status=status, note=note).returning(grid_version.c.id))
    return int(row.scalar_one())


def place_names(conn: Connection) -> tuple[dict[str, str], dict[str, str]]:
    """(town code → name, community code → name)."""
    towns = dict(conn.execute(select(town.c.code, town.c.name)).tuples().all())
    communities = dict(conn.execute(select(community.c.code, community.c.name)).tuples().all())
    return towns, communities


def active_version_id(conn: Connection) -> int | None:
    """The id of the active grid version, if any."""
    return conn.execute(select(grid_version.c.id).where(grid_version.c.status == "active")).scalar_one_or_none()


def active_grid_at(conn: Connection, lon: float, lat: float) -> tuple[str, str] | None:
    """(grid code, town code) of the active grid covering a WGS84 point; on a shared edge the lowest code wins."""
    row = conn.execute(
        text(
            "SELECT g.code, g.town_code FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
            "WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY g.code LIMIT 1"
        ),
        {"lon": lon, "lat": lat},
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))


def insert_grids(conn: Connection, version_id: int, grids: gpd.GeoDataFrame) -> None:
    """COPY the grids of one version (WGS84 frame)."""
    frame = _with_geom(
        grids,
        [
            "code",
            "community_code",
            "town_code",
            "name",
            "population",
            "address_count",
            "entity_count",
            "workload",
            "worker_count",
            "area_m2",
        ],
    )
    frame.insert(0, "version_id", version_id)
    copy_frame(conn, grid, frame)


def insert_workers(conn: Connection, workers: pd.DataFrame) -> None:
    """COPY grid workers (name, phone, town_code, version_id, grid_code, capacity)."""
    copy_frame(conn, worker, workers)


def repair_report_rows(conn: Connection) -> list[dict[str, Any]]:
    """The stored town repair report, with town names."""
    rows = conn.execute(
        select(
            town.c.code,
            town.c.name,
            town_repair.c.area_before_m2,
            town_repair.c.area_after_m2,
            town_repair.c.gap_area_added_m2,
            town_repair.c.overlap_area_removed_m2,
            town_repair.c.run_at,
        )
        .join(town, town.c.code == town_repair.c.town_code)
        .order_by(town.c.code)
    )
    return [dict(r._mapping) for r in rows]


def geometries_by_code(conn: Connection, level: str, *, version_id: int | None = None) -> dict[str, Any]:
    """Shapely geometries (WGS84) of every town, community or grid (of one version), by code."""
    import shapely

    table = {"town": town, "community": community, "grid": grid}[level]
    query = select(table.c.code, func.ST_AsBinary(table.c.geom))
    if level == "grid":
        query = query.where(grid.c.version_id == version_id)
    return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in conn.execute(query)}


def upsert_features(conn: Connection, level: str, frame: gpd.GeoDataFrame, *, version_id: int | None) -> int:
    """Insert or replace towns, communities or grids by code (WGS84 frame); returns the row count."""
    from geoalchemy2.shape import from_shape
    from sqlalchemy.dialects.postgresql import insert

    table = {"town": town, "community": community, "grid": grid}[level]
    metric = frame.to_crs(4547)
    rows: list[dict[str, Any]] = []
    for (_, feature), area in zip(frame.iterrows(), metric.geometry.area, strict=True):
        geom = feature.geometry
        if geom.geom_type == "Polygon":
            from shapely.geometry import MultiPolygon

            geom = MultiPolygon([geom])
        row: dict[str, Any] = {"code": feature["code"], "area_m2": float(area), "geom": from_shape(geom, srid=4326)}
        if level == "town":
            row.update(
                name=feature["name"], kind=feature.get("kind") or "town", population=int(feature.get("population") or 0)
            )
        elif level == "community":
            from grids.reference import short_community_name

            row.update(
                town_code=feature["town_code"],
                name=feature["name"],
                short_name=short_community_name(str(feature["name"])),
                kind=feature.get("kind") or "residents_committee",
                population=int(feature.get("population") or 0),
            )
        else:
            row.update(
                version_id=version_id,
                community_code=feature["community_code"],
                town_code=town_of(str(feature["community_code"])),
                name=feature.get("name"),
            )
        rows.append(row)
    if not rows:
        return 0
    stmt = insert(table).values(rows)
    keys = ["version_id", "code"] if level == "grid" else ["code"]
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates))
    return len(rows)
