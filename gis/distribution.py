"""gis.distribution: where every table of the schema goes on a Citus cluster, and the check that the schema obeys it.

Citus cannot run here (it is not in Debian's archive), so the schema is kept ready for it: each table is DISTRIBUTED
by `city_code` (co-located), a REFERENCE table (copied to every node) or LOCAL (coordinator only). `violations` reads
pg_catalog and names every table that breaks Citus's rules; `citus_plan` renders the DDL an operator runs on a Citus
coordinator once the schema is at head (`gridgov db citus-plan`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import CHAR, Column, Connection, ForeignKey, text

DISTRIBUTION_COLUMN = "city_code"
# The first distributed table: every other distributed table is co-located with it (same shard for the same city).
COLOCATION_ANCHOR = "address"


def city_code_column() -> Column[str]:
    """The distribution column of a distributed table: the city's 6-digit code (441900), NOT NULL, filled by
    `gridgov_city_code()` (the single city of the deployment) when an INSERT leaves it out (migration 0019).

    It ends the table's primary key: declare it after the table's own key columns, so that the key serves lookups by
    them (`WHERE id = :x`); a key led by city_code makes PostgreSQL read the whole index for them."""
    return Column(
        DISTRIBUTION_COLUMN,
        CHAR(6),
        ForeignKey("city.code"),
        primary_key=True,
        nullable=False,
        server_default=text("gridgov_city_code()"),
    )


class Kind(StrEnum):
    """How Citus holds a table."""

    DISTRIBUTED = "distributed"
    REFERENCE = "reference"
    LOCAL = "local"


@dataclass(frozen=True)
class Placement:
    """One table's kind and why."""

    table: str
    kind: Kind
    reason: str


_D, _R, _L = Kind.DISTRIBUTED, Kind.REFERENCE, Kind.LOCAL

PLACEMENTS: tuple[Placement, ...] = (
    # Distributed by city_code: the large tables, those that reference them, and those written in their transactions.
    Placement("address", _D, "the standard address library: tens of millions of doors in a province"),
    Placement("address_history", _D, "one row per change of an address; references address"),
    Placement("address_alias", _D, "aliases resolve to addresses; references address"),
    Placement("address_alias_teaching", _D, "each resolution of an alias; references address_alias and address"),
    Placement("entity", _D, "market entities: about 18 million in Guangdong"),
    Placement("entity_licence", _D, "licences of an entity; references entity"),
    Placement("clue", _D, "field and hotline reports: grow without end"),
    Placement("clue_photo", _D, "photos of a clue; references clue"),
    Placement("registration_event", _D, "the registration feed: one row per event received"),
    Placement("task", _D, "the workflow: references entity, clue and registration_event"),
    Placement("task_event", _D, "the audit trail of a task; references task"),
    Placement("task_warning", _D, "deadline warnings of a task; references task"),
    Placement("task_photo", _D, "photos of an inspection; references task"),
    Placement("review_queue", _D, "written in the intake transaction beside registration_event and task"),
    Placement("outbox", _D, "written in the intake transaction: the same shard keeps intake a one-node transaction"),
    Placement("credit_record", _D, "what a credit class is computed from; references entity"),
    Placement("credit_assessment", _D, "every computed class of an entity; references entity"),
    Placement("inspection_candidate", _D, "a plan's target directory: one row per entity and stratum"),
    Placement("inspection_visit", _D, "one drawn entity per visit; references entity"),
    Placement("inspection_result", _D, "findings of a visit; references inspection_visit and task"),
    Placement("territory_move", _D, "every address, entity, task and clue a grid change moved"),
    # Reference: small, read by every shard's joins, referenced by distributed tables.
    Placement("city", _R, "the cities of the deployment: target of every city_code"),
    Placement("town", _R, "territory: a few thousand towns in the country"),
    Placement("town_repair", _R, "the repair log of town boundaries; references town"),
    Placement("community", _R, "territory: referenced by addresses"),
    Placement("road", _R, "the road network: referenced by addresses"),
    Placement("grid_version", _R, "territory: versions of the grid layer"),
    Placement("grid", _R, "territory: grids of each version"),
    Placement("grid_workload", _R, "a grid's workload figures; references grid"),
    Placement("worker", _R, "grid workers: a worker per grid, references grid"),
    Placement("planning_batch", _R, "a planning step; referenced by territory_move"),
    Placement("workload_setting", _R, "rules: a city's workload standards"),
    Placement("inspection_item", _R, "rules: departments' inspection items"),
    Placement("inspector", _R, "departments' inspectors"),
    Placement("inspection_ratio_setting", _R, "rules: sampling ratios per credit class"),
    Placement("inspection_plan", _R, "a few plans a year; referenced by visits"),
    Placement("inspection_stratum", _R, "strata of a plan; referenced by candidates"),
    Placement("inspection_team", _R, "teams of a plan; referenced by visits"),
    Placement("inspection_route", _R, "a team's day; references inspection_team"),
    Placement("job_run", _R, "the scheduled jobs' log: a few rows a day, referenced by credit_assessment"),
    # Local: coordinator only, never joined with distributed tables in one statement.
    Placement("app_user", _L, "accounts: read at sign-in on the coordinator"),
    Placement("api_key", _L, "credentials: read on every request on the coordinator"),
    Placement("user_session", _L, "browser sessions; references app_user"),
    Placement("login_throttle", _L, "sign-in throttling"),
    Placement("geocode_batch_job", _L, "batch job bookkeeping; the files live beside the coordinator"),
    Placement("data_version", _L, "tile-cache counters of the process that serves tiles"),
    Placement("data_version_pending", _L, "per-transaction scratch of the tile-cache counters"),
    Placement("alembic_version", _L, "the schema revision"),
    Placement("synthetic.entity_truth", _L, "the synthetic city's ground truth: demo and evaluation only"),
    Placement("synthetic.hotspot", _L, "the synthetic city's planted hotspots: demo only"),
    Placement("synthetic.demo_load", _L, "the demo loader's log"),
)

PLACEMENT_BY_TABLE: Mapping[str, Placement] = {p.table: p for p in PLACEMENTS}


def tables_of(kind: Kind) -> tuple[str, ...]:
    """The tables of one kind, in the order of PLACEMENTS."""
    return tuple(p.table for p in PLACEMENTS if p.kind is kind)


# --------------------------------------------------------------------------------------------- the catalog check

_TABLES = text(
    """
    SELECT c.oid, CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
    """
)
_CITY_COLUMN = text(
    "SELECT attrelid, attnum, attnotnull FROM pg_attribute WHERE attname = :column AND NOT attisdropped "
    "AND attrelid = ANY(:oids)"
)
_CONSTRAINTS = text(
    """
    SELECT conrelid, contype, conname, conkey, confrelid, confkey
    FROM pg_constraint WHERE contype IN ('p', 'u', 'f') AND conrelid = ANY(:oids)
    """
)
_UNIQUE_INDEXES = text(
    """
    SELECT i.indrelid, x.relname, i.indkey::int2[]
    FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
    WHERE i.indisunique AND i.indrelid = ANY(:oids)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
    """
)
_SMALL_IDS = text(
    """
    SELECT attrelid, attname, format_type(atttypid, atttypmod) FROM pg_attribute
    WHERE attrelid = ANY(:oids) AND attnum > 0 AND NOT attisdropped AND atttypid IN ('int2'::regtype, 'int4'::regtype)
      AND (attname = 'id' OR attname LIKE '%\\_id')
    """
)


def violations(conn: Connection, placements: Mapping[str, Placement] = PLACEMENT_BY_TABLE) -> list[str]:
    """Every breach of Citus's rules in the connected database's schema, and every key of a distributed table that
    does not end with city_code (a lookup by its own columns would read the whole index), one sentence each (empty:
    ready)."""
    names = {oid: name for oid, name in conn.execute(_TABLES)}
    found: list[str] = [
        f"{name}: not classified in gis.distribution (distributed, reference or local?)"
        for name in sorted(names.values())
        if name not in placements
    ]
    kind = {oid: placements[name].kind for oid, name in names.items() if name in placements}
    distributed = [oid for oid, k in kind.items() if k is Kind.DISTRIBUTED]
    city_attnum: dict[int, int] = {}
    for relid, attnum, notnull in conn.execute(_CITY_COLUMN, {"column": DISTRIBUTION_COLUMN, "oids": distributed}):
        city_attnum[relid] = attnum
        if not notnull:
            found.append(f"{names[relid]}: {DISTRIBUTION_COLUMN} may be null")
    found.extend(
        f"{names[relid]}: distributed but has no {DISTRIBUTION_COLUMN} column"
        for relid in distributed
        if relid not in city_attnum
    )
    for relid, contype, conname, conkey, confrelid, confkey in conn.execute(_CONSTRAINTS, {"oids": list(names)}):
        found.extend(
            _constraint_breaches(names, kind, city_attnum, relid, contype, conname, conkey, confrelid, confkey)
        )
    for relid, index_name, indkey in conn.execute(_UNIQUE_INDEXES, {"oids": distributed}):
        if city_attnum.get(relid) not in indkey:
            found.append(f"{names[relid]}: unique index {index_name} does not include {DISTRIBUTION_COLUMN}")
        elif indkey[-1] != city_attnum[relid]:
            found.append(_not_last(names[relid], f"unique index {index_name}"))
    for relid, column, type_name in conn.execute(_SMALL_IDS, {"oids": distributed}):
        found.append(f"{names[relid]}: {column} is {type_name}, ids of distributed tables are bigint")
    return sorted(found)


def _not_last(table: str, label: str) -> str:
    return (
        f"{table}: {label} has {DISTRIBUTION_COLUMN} before its own columns, so a lookup by them reads the whole "
        f"index: put {DISTRIBUTION_COLUMN} last"
    )


def _constraint_breaches(
    names: Mapping[int, str],
    kind: Mapping[int, Kind],
    city_attnum: Mapping[int, int],
    relid: int,
    contype: str,
    conname: str,
    conkey: list[int],
    confrelid: int,
    confkey: list[int] | None,
) -> Iterable[str]:
    """What one primary key, unique or foreign key constraint breaks, given the kinds of its tables."""
    own = kind.get(relid)
    if own is None:
        return
    city = city_attnum.get(relid)
    if contype in ("p", "u") and own is Kind.DISTRIBUTED:
        label = "primary key" if contype == "p" else f"unique constraint {conname}"
        if city not in conkey:
            yield f"{names[relid]}: {label} does not include {DISTRIBUTION_COLUMN}"
        elif conkey[-1] != city:
            yield _not_last(names[relid], label)
    if contype != "f":
        return
    target = kind.get(confrelid)
    target_name = names.get(confrelid, str(confrelid))
    if target is None:
        return
    if own is Kind.DISTRIBUTED and target is Kind.LOCAL:
        yield f"{names[relid]}: foreign key {conname} to local table {target_name}"
    elif own is Kind.DISTRIBUTED and target is Kind.DISTRIBUTED:
        target_city = city_attnum.get(confrelid)
        pairs = list(zip(conkey, confkey or [], strict=False))
        if (city, target_city) not in pairs:
            yield (
                f"{names[relid]}: foreign key {conname} to {target_name} does not pair {DISTRIBUTION_COLUMN} "
                "on both sides (co-location)"
            )
    elif own is Kind.REFERENCE and target is not Kind.REFERENCE:
        yield f"{names[relid]}: reference table with foreign key {conname} to {target.value} table {target_name}"
    elif own is Kind.LOCAL and target is Kind.DISTRIBUTED:
        yield f"{names[relid]}: local table with foreign key {conname} to distributed table {target_name}"


# --------------------------------------------------------------------------------------------- the Citus DDL

_FOREIGN_KEYS = text(
    """
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
           CASE WHEN fn.nspname = 'public' THEN f.relname ELSE fn.nspname || '.' || f.relname END
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
    WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
    """
)


def foreign_key_targets(conn: Connection) -> dict[str, set[str]]:
    """Each table's foreign key targets (itself excluded), as the connected database has them."""
    targets: dict[str, set[str]] = {}
    for table, target in conn.execute(_FOREIGN_KEYS):
        targets.setdefault(table, set()).add(target)
    return targets


def _dependency_order(tables: Iterable[str], targets: Mapping[str, set[str]]) -> list[str]:
    """`tables` with every table after the tables it references (ties in the order given)."""
    pending = list(tables)
    wanted = set(pending)
    done: list[str] = []
    placed: set[str] = set()
    while pending:
        ready = [t for t in pending if not (targets.get(t, set()) & wanted) - placed]
        if not ready:
            raise ValueError(f"foreign keys form a cycle among {', '.join(sorted(pending))}")
        done.append(ready[0])
        placed.add(ready[0])
        pending.remove(ready[0])
    return done


def _literal(table: str) -> str:
    """A table name as a SQL string literal (names come from PLACEMENTS: lower-case identifiers and dots)."""
    return "'" + table.replace("'", "''") + "'"


def citus_plan(targets: Mapping[str, set[str]]) -> str:
    """The SQL that turns a database at schema head into a Citus cluster's, reference tables first, each table after
    the tables it references; local tables stay on the coordinator (named in comments)."""
    lines = [
        "-- gridgov on Citus: run on the coordinator, once the schema is at head and the workers are added.",
        "-- Every node needs PostGIS (CREATE EXTENSION postgis) before the tables are distributed.",
        "BEGIN;",
        "-- foreign keys to reference tables, created in one transaction: Citus asks for sequential mode",
        "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';",
        "-- reference tables: one copy on every node",
    ]
    lines.extend(
        f"SELECT create_reference_table({_literal(table)});  -- {PLACEMENT_BY_TABLE[table].reason}"
        for table in _dependency_order(tables_of(Kind.REFERENCE), targets)
    )
    lines.append(f"-- distributed by {DISTRIBUTION_COLUMN}, co-located with {COLOCATION_ANCHOR}: one city, one shard")
    for table in _dependency_order(tables_of(Kind.DISTRIBUTED), targets):
        if table == COLOCATION_ANCHOR:
            call = f"create_distributed_table({_literal(table)}, {_literal(DISTRIBUTION_COLUMN)})"
        else:
            call = (
                f"create_distributed_table({_literal(table)}, {_literal(DISTRIBUTION_COLUMN)}, "
                f"colocate_with => {_literal(COLOCATION_ANCHOR)})"
            )
        lines.append(f"SELECT {call};  -- {PLACEMENT_BY_TABLE[table].reason}")
    lines.append("COMMIT;")
    lines.append("-- local tables (coordinator only): " + ", ".join(tables_of(Kind.LOCAL)))
    return "\n".join(lines) + "\n"
