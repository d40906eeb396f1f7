"""supervision.entities: what a registration event writes about a market entity — its row, and its open tasks.

An entity is upserted where its address was placed (`Placement`), rescoped, or closed; when it moves to another
grid its open tasks follow it, and when it is deregistered they are cancelled (both audited).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from gis import clock
from supervision.assignment import assign_to_workers
from supervision.audit import Actor, Holder, TaskEvent, write_events
from supervision.calendar import SHANGHAI
from supervision.events import RegistrationEvent
from supervision.routing import default_router
from supervision.task_states import OPEN_STATUSES, WORKER_HELD
from supervision.workflow import Status


@dataclass(frozen=True)
class Placement:
    """Where an event's address lies: the standard address (if any), the point and the grid."""

    grid_code: str
    town_code: str
    lon: float
    lat: float
    address_id: int | None
    standard_address: str | None


def industry_of(business_scope: str) -> str:
    """The entity's industry: the first high-frequency clue industry its scope names, else its first scope item."""
    for industry in default_router().clue_industries():
        if industry in business_scope:
            return industry
    first = business_scope.replace("；", ";").split(";")[0].strip()
    return first[:24] or "未分类"


def upsert_entities(conn: Connection, items: Sequence[tuple[RegistrationEvent, Placement, bool, str]]) -> None:
    """Insert or update entities from events; a change event keeps the scope it does not change."""
    rows = [
        {
            "uscc": event.uscc,
            "name": event.name,
            # The second character of a credit code says the kind: 1 enterprise, 2 individual business (个体工商户).
            "entity_kind": "individual" if event.uscc[1] == "2" else "company",
            "scope": event.business_scope or "未登记经营范围",
            "industry": industry_of(event.business_scope),
            "raw": event.address,
            "address_id": placement.address_id,
            "town": placement.town_code,
            "grid": placement.grid_code,
            "registered_on": event.occurred_at.astimezone(SHANGHAI).date().isoformat(),
            "needs": needs_licence,
            "lon": placement.lon,
            "lat": placement.lat,
            "is_new": kind == "new",
        }
        for event, placement, needs_licence, kind in items
    ]
    conn.execute(
        text(
            """
            INSERT INTO entity (uscc, name, kind, business_scope, industry, raw_address, address_id, town_code,
                                grid_code, status, registered_on, needs_licence, geom)
            SELECT r.uscc, r.name, r.entity_kind, r.scope, r.industry, r.raw, r.address_id, r.town, r.grid, 'open',
                   r.registered_on, r.needs, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
                uscc text, name text, entity_kind text, scope text, industry text, raw text, address_id bigint,
                town text, grid text, registered_on date, needs boolean, lon float8, lat float8, is_new boolean)
            ON CONFLICT (city_code, uscc) DO UPDATE SET name = EXCLUDED.name, raw_address = EXCLUDED.raw_address,
                address_id = EXCLUDED.address_id, town_code = EXCLUDED.town_code, grid_code = EXCLUDED.grid_code,
                geom = EXCLUDED.geom,
                status = CASE WHEN :is_new THEN 'open' ELSE entity.status END,
                business_scope = CASE WHEN :is_new THEN EXCLUDED.business_scope ELSE entity.business_scope END,
                industry = CASE WHEN :is_new THEN EXCLUDED.industry ELSE entity.industry END,
                needs_licence = CASE WHEN :is_new THEN EXCLUDED.needs_licence ELSE entity.needs_licence END
            """
        ),
        {"rows": json.dumps(rows, ensure_ascii=False), "is_new": all(r["is_new"] for r in rows)},
    )


def change_scope(conn: Connection, uscc: str, business_scope: str, *, needs_licence: bool) -> None:
    """A scope change: the entity's business scope, whether it needs a licence, and its industry."""
    conn.execute(
        text("UPDATE entity SET business_scope = :s, needs_licence = :n, industry = :i WHERE uscc = :u"),
        {"s": business_scope, "n": needs_licence, "i": industry_of(business_scope), "u": uscc},
    )


def close_entity(conn: Connection, uscc: str) -> None:
    """A deregistration: the entity is closed (its open tasks are cancelled by `cancel_entity_tasks`)."""
    conn.execute(text("UPDATE entity SET status = 'closed' WHERE uscc = :u"), {"u": uscc})


def move_entity_tasks(
    conn: Connection, uscc: str, grid_code: str, *, actor: Actor, note: str, at: datetime | None = None
) -> list[int]:
    """An address change: the entity's open tasks move to the new grid and its workers (audited)."""
    moment = at or clock.now()
    moved = conn.execute(
        text(
            """
            UPDATE task t SET grid_code = g.code, community_code = g.community_code, town_code = g.town_code,
                   worker_id = NULL, version = t.version + 1, updated_at = :at,
                   holder = CASE WHEN t.status = ANY(:worker_held) THEN CAST(:grid_holder AS text) || g.code
                                 WHEN t.status = 'escalated_community'
                                     THEN CAST(:community_holder AS text) || g.community_code
                                 ELSE t.holder END
            FROM grid g JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'
            WHERE g.code = :grid AND t.entity_uscc = :uscc AND t.status = ANY(:open) AND t.grid_code <> g.code
            RETURNING t.id, t.status, t.due_at, t.holder
            """
        ),
        {
            "grid": grid_code,
            "uscc": uscc,
            "open": list(OPEN_STATUSES),
            "worker_held": sorted(WORKER_HELD),
            "grid_holder": Holder.prefix("grid"),
            "community_holder": Holder.prefix("community"),
            "at": moment,
        },
    ).all()
    write_events(
        conn,
        [
            TaskEvent(
                task_id=r.id,
                from_status=r.status,
                to_status=r.status,
                actor=actor.name,
                at=moment,
                note=f"moved to grid {grid_code}: {note}",
                worker_id=None,
                holder=Holder.read(r.holder),
                due_at=r.due_at,
            )
            for r in moved
        ],
    )
    ids = [int(r.id) for r in moved]
    assign_to_workers(conn, ids, actor=actor, at=moment, note=f"assigned in the new grid {grid_code}")
    return ids


def cancel_entity_tasks(
    conn: Connection, uscc: str, *, actor: Actor, note: str, at: datetime | None = None
) -> list[int]:
    """A deregistration: the entity's open tasks are cancelled (audited)."""
    moment = at or clock.now()
    rows = conn.execute(
        text(
            "UPDATE task t SET status = 'cancelled', closed_at = :at, due_at = NULL, warn_at = NULL, holder = NULL, "
            "version = t.version + 1, updated_at = :at "
            "FROM task old WHERE old.id = t.id AND t.entity_uscc = :uscc AND t.status = ANY(:open) "
            "RETURNING t.id, old.status AS old_status, t.worker_id"
        ),
        {"uscc": uscc, "open": list(OPEN_STATUSES), "at": moment},
    ).all()
    write_events(
        conn,
        [
            TaskEvent(
                task_id=r.id,
                from_status=r.old_status,
                to_status=Status.CANCELLED.value,
                actor=actor.name,
                at=moment,
                note=note,
                worker_id=r.worker_id,
                holder=None,
                due_at=None,
            )
            for r in rows
        ],
    )
    return [int(r.id) for r in rows]
