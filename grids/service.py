"""grids.service: rules of the territory — boundary imports (all or nothing) and the repair report."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from sqlalchemy import Connection

from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids import repository
from grids.errors import ImportRejected, Rejection
from grids.featureio import read_features, validate_features

PARENT_LEVEL = {"town": None, "community": "town", "grid": "community"}


# Called inside the import transaction after grids changed: (conn, version id, community codes) -> the number of
# standard addresses left outside every grid. Higher layers (which own addresses and entities) provide it.
GridChangeHook = Callable[[Connection, int, Collection[str]], int]


def import_features(
    settings: DatabaseSettings, path: Path, *, level: str, on_grids_changed: GridChangeHook | None = None
) -> str:
    """Validate a boundary file against the database and load all of it in one transaction, or nothing.

    After a grid import, `on_grids_changed` re-locates what lies in the touched communities; if it leaves any
    standard address outside every grid, the import is refused (the new grids must still cover every door).
    """
    frame = read_features(path)
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            version_id = repository.active_version_id(conn) if level == "grid" else None
            if level == "grid" and version_id is None:
                version_id = repository.create_grid_version(conn, name="导入网格", status="active", note=str(path))
            parent = PARENT_LEVEL[level]
            parents = repository.geometries_by_code(conn, parent, version_id=version_id) if parent else {}
            siblings = repository.geometries_by_code(conn, level, version_id=version_id)
            incoming = set(frame["code"].astype(str))
            staying = {code: geom for code, geom in siblings.items() if code not in incoming}
            rejections = validate_features(frame, level, parent_geoms=parents, existing_sibling_geoms=staying)
            if rejections:
                raise ImportRejected(path, rejections)
            count = repository.upsert_features(conn, level, frame, version_id=version_id)
            if level == "grid" and on_grids_changed is not None and version_id is not None:
                communities = set(frame["community_code"].astype(str))
                uncovered = on_grids_changed(conn, version_id, communities)
                if uncovered:
                    raise ImportRejected(
                        path,
                        [
                            Rejection(
                                index=-1,
                                code=None,
                                reason_code="uncovered_addresses",
                                detail=f"{uncovered} standard address(es) of {', '.join(sorted(communities))} "
                                "would lie outside every grid",
                            )
                        ],
                    )
    finally:
        engine.dispose()
    return f"{path}: {count} {level} feature(s) loaded"


def stored_repair_report(settings: DatabaseSettings) -> str:
    """The town topology-repair report stored at the last territory load, as a printable table."""
    engine = make_engine(settings)
    with engine.connect() as conn:
        rows = repository.repair_report_rows(conn)
    engine.dispose()
    if not rows:
        return "no repair report stored yet (run gridgov demo load)"
    lines = [
        f"{'code':<13}{'town':<8}{'before km²':>12}{'after km²':>12}{'gap added m²':>15}{'overlap removed m²':>20}"
    ]
    lines.extend(
        f"{r['code']:<13}{r['name']:<8}{r['area_before_m2'] / 1e6:>12.3f}{r['area_after_m2'] / 1e6:>12.3f}"
        f"{r['gap_area_added_m2']:>15.0f}{r['overlap_area_removed_m2']:>20.0f}"
        for r in rows
    )
    return "\n".join(lines)
