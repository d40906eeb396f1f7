"""supervision.relocation: every address and entity re-located into the grids of one version, in one transaction.

The grids are computed by grids.relocate (on this machine, or on a Dask cluster with the same answer); the rules
are those of supervision.territory (relocate_community_points, which a grid import runs), so running one after the
other moves nothing: an address takes the lowest-code grid covering its point (none: no grid); an entity with an
address takes its address's grid (none when the address has none), an entity without one the grid covering its own
point. Only the rows whose grid changes are written (a temporary table, then one UPDATE ... FROM per table), so a
second run changes nothing; the grid counts of the version are refreshed as supervision.territory refreshes them.

Only the active version's grids are written into the rows (a draft's or a retired version's codes would not be
the grids anyone works in); other versions are for dry runs. A run that writes first locks the address and entity
tables against writers (SHARE ROW EXCLUSIVE, until the caller's transaction ends): a point moved while the rows are
being located would otherwise get the grid of its former point. Readers are not blocked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import BigInteger, Column, Connection, MetaData, Table, Text, text

from gis.bulk import copy_frame
from grids.relocate import GridSet, locate_points
from grids.repository import active_version_id
from supervision.errors import NotFound, SupervisionError

if TYPE_CHECKING:
    from distributed import Client

# Town of a moved row that has none (an entity registered without a town).
NO_TOWN = "-"

_scratch = MetaData()
_moved_address = Table("relocated_address", _scratch, Column("id", BigInteger), Column("grid_code", Text))
_moved_entity = Table("relocated_entity", _scratch, Column("uscc", Text), Column("grid_code", Text))


# The points to re-locate, read through COPY (millions of rows); ids and codes as text, coordinates exactly.
_ADDRESS_POINTS = (
    "COPY (SELECT id, town_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code FROM address ORDER BY id) "
    "TO STDOUT WITH (FORMAT csv, HEADER true)"
)
_ENTITY_POINTS = (
    "COPY (SELECT uscc, town_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, address_id, grid_code FROM entity "
    "ORDER BY uscc) TO STDOUT WITH (FORMAT csv, HEADER true)"
)


class NotActive(SupervisionError):
    """The version is a draft or retired: its grids may be counted (dry run), not written into the rows."""


@dataclass(frozen=True)
class TownMoves:
    """How many addresses and entities of a town changed grid."""

    addresses: int = 0
    entities: int = 0


@dataclass(frozen=True)
class RelocationReport:
    """What a relocation changed (or, in a dry run, would change), by town, and what no grid covers."""

    version_id: int
    addresses: int
    entities: int
    uncovered_addresses: int
    by_town: dict[str, TownMoves] = field(default_factory=dict)
    written: bool = True


def relocate_version(
    conn: Connection, *, version_id: int | None = None, client: Client | None = None, dry_run: bool = False
) -> RelocationReport:
    """Recompute the grid of every address and entity in grid version `version_id` (default: the active one).

    Runs inside the caller's transaction; with `dry_run`, writes nothing. NotFound when there is no such version,
    NotActive when a run that writes names a version other than the active one. A run that writes locks the address
    and entity tables against writers until the caller's transaction ends.
    """
    version = _version(conn, version_id)
    if not dry_run:
        active = active_version_id(conn)
        if version != active:
            raise NotActive(
                f"grid version {version} is not the active one ({active if active is not None else 'none'}): "
                "its grids can only be counted (--dry-run), not written into addresses and entities"
            )
        conn.execute(text("LOCK TABLE address, entity IN SHARE ROW EXCLUSIVE MODE"))
    grids = _grids(conn, version)
    addresses = _copy_out(conn, _ADDRESS_POINTS, codes=("town_code", "grid_code"), ids=("id",))
    entities = _copy_out(conn, _ENTITY_POINTS, codes=("uscc", "town_code", "grid_code"), ids=("address_id",))
    points = pd.concat(
        [addresses[["town_code", "lon", "lat"]], entities[["town_code", "lon", "lat"]]], ignore_index=True
    )
    located = locate_points(points, grids, client=client)
    address_grid = located[: len(addresses)]
    own_grid = pd.Series(located[len(addresses) :], dtype=object)
    grid_of_address = pd.Series(address_grid, index=addresses["id"].to_numpy(), dtype=object)
    by_address = entities["address_id"].map(grid_of_address)
    # supervision.territory's rule: the address's grid (even none) for an entity with an address, else its own point's.
    has_address = entities["address_id"].notna().to_numpy()
    entity_grid = np.where(has_address, by_address.where(by_address.notna(), None), own_grid).astype(object)

    moved_addresses = _changed(addresses["grid_code"], address_grid)
    moved_entities = _changed(entities["grid_code"], entity_grid)
    by_town = _by_town(addresses["town_code"][moved_addresses], entities["town_code"][moved_entities])
    uncovered = int(sum(code is None for code in address_grid))
    if not dry_run:
        _write(
            conn,
            version,
            pd.DataFrame({"id": addresses["id"][moved_addresses], "grid_code": address_grid[moved_addresses]}),
            pd.DataFrame({"uscc": entities["uscc"][moved_entities], "grid_code": entity_grid[moved_entities]}),
        )
    return RelocationReport(
        version_id=version,
        addresses=int(moved_addresses.sum()),
        entities=int(moved_entities.sum()),
        uncovered_addresses=uncovered,
        by_town=by_town,
        written=not dry_run,
    )


def _copy_out(conn: Connection, statement: str, *, codes: tuple[str, ...], ids: tuple[str, ...]) -> pd.DataFrame:
    """The rows of a COPY ... TO STDOUT (csv, header): `codes` as objects (None for NULL), `ids` as Int64, lon and
    lat as float64 parsed exactly (NaN for a NULL point)."""
    raw = conn.connection.driver_connection
    buffer = io.BytesIO()
    with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    dtypes: dict[str, Any] = {"lon": np.float64, "lat": np.float64}
    dtypes.update({c: object for c in codes})
    dtypes.update({c: "Int64" for c in ids})
    frame = pd.read_csv(
        buffer, dtype=dtypes, float_precision="round_trip", keep_default_na=False, na_values=dict.fromkeys(dtypes, [""])
    )
    for column in codes:
        frame[column] = frame[column].where(frame[column].notna(), None)
    return frame


def _version(conn: Connection, version_id: int | None) -> int:
    """The version asked for (it must exist), else the active one."""
    if version_id is None:
        active = active_version_id(conn)
        if active is None:
            raise NotFound("there is no active grid version; name one with --version")
        return active
    found = conn.execute(text("SELECT id FROM grid_version WHERE id = :v"), {"v": version_id}).scalar_one_or_none()
    if found is None:
        raise NotFound(f"there is no grid version {version_id}")
    return int(found)


def _grids(conn: Connection, version_id: int) -> GridSet:
    """The version's grids, by code."""
    rows = conn.execute(
        text("SELECT code, ST_AsBinary(geom) AS wkb FROM grid WHERE version_id = :v ORDER BY code"), {"v": version_id}
    ).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return GridSet.of([str(r.code) for r in rows], list(geoms), key=("grid_version", version_id))


def _changed(old: pd.Series, new: np.ndarray) -> np.ndarray:
    """Which rows get a different grid (None and NULL are the same: no grid)."""
    before = old.where(old.notna(), None).to_numpy(dtype=object)
    changed: np.ndarray = np.asarray(before != new, dtype=bool)  # element-wise on objects: None == None
    return changed


def _by_town(address_towns: pd.Series, entity_towns: pd.Series) -> dict[str, TownMoves]:
    """Moved addresses and entities per town code, in code order."""
    addresses = address_towns.fillna(NO_TOWN).value_counts()
    entities = entity_towns.fillna(NO_TOWN).value_counts()
    towns = sorted(set(addresses.index) | set(entities.index))
    return {str(t): TownMoves(int(addresses.get(t, 0)), int(entities.get(t, 0))) for t in towns}


def _write(conn: Connection, version_id: int, addresses: pd.DataFrame, entities: pd.DataFrame) -> None:
    """The new grids of the moved rows, through temporary tables; then the version's grid counts."""
    conn.execute(
        text("CREATE TEMPORARY TABLE relocated_address (id bigint PRIMARY KEY, grid_code text) ON COMMIT DROP")
    )
    conn.execute(text("CREATE TEMPORARY TABLE relocated_entity (uscc text PRIMARY KEY, grid_code text) ON COMMIT DROP"))
    copy_frame(conn, _moved_address, addresses)
    copy_frame(conn, _moved_entity, entities)
    conn.execute(
        text(
            "UPDATE address a SET grid_code = m.grid_code, updated_at = clock_timestamp() FROM relocated_address m "
            "WHERE a.id = m.id AND a.grid_code IS DISTINCT FROM m.grid_code"
        )
    )
    conn.execute(
        text(
            "UPDATE entity e SET grid_code = m.grid_code FROM relocated_entity m "
            "WHERE e.uscc = m.uscc AND e.grid_code IS DISTINCT FROM m.grid_code"
        )
    )
    # The counts as supervision.territory.relocate_community_points refreshes them, over the whole version.
    conn.execute(
        text(
            "UPDATE grid g SET address_count = c.n_addr, entity_count = c.n_ent, workload = c.n_addr + c.n_ent FROM ("
            " SELECT g2.code,"
            "  (SELECT count(*) FROM address a WHERE a.grid_code = g2.code) AS n_addr,"
            "  (SELECT count(*) FROM entity e WHERE e.grid_code = g2.code) AS n_ent"
            " FROM grid g2 WHERE g2.version_id = :version_id) c "
            "WHERE g.version_id = :version_id AND g.code = c.code"
        ),
        {"version_id": version_id},
    )
    conn.execute(text("DROP TABLE relocated_address, relocated_entity"))
