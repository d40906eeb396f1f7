"""supervision.aliases: the geocoder's learned aliases, as staff see and govern them — list, trace, promote, withdraw.

A dispatcher's resolution of a review item teaches an alias of the typed text in the address's community
(`address_library.repository.teach_alias`; the rule that decides when it answers is in `address_library.match`).
Here the command centre promotes one to the whole city or withdraws it, and a dispatcher withdraws one of their
community or one they taught. Every alias is listed within the caller's area (a dispatcher: their community's; a
town leader: their town's; the command centre: all) and traced to who taught it, from which review item, who
confirmed or contradicted it, who promoted or withdrew it and why. Rows are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping, text

from address_library.repository import promote_alias, withdraw_alias
from supervision.audit import Actor
from supervision.errors import InvalidInput, NotFound, OutOfScope
from supervision.paging import Page, keyset_page
from supervision.scope import CITY, Scope

AliasScope = Literal["community", "city"]
AliasState = Literal["active", "suspended", "withdrawn"]
# A reason is a sentence, not a document.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class AliasFilters:
    """The list's filters (each optional)."""

    state: AliasState | None = None
    scope: AliasScope | None = None
    community: str | None = None
    text: str | None = None
    taught_by: str | None = None


@dataclass(frozen=True)
class AliasView:
    """地理编码学到的一条别名：原文（规范化）指向的标准地址、适用范围、状态、由谁教会。"""

    id: int
    normalized_text: str = field(metadata={"description": "原文（规范化后）"})
    raw_text: str = field(metadata={"description": "登记时的原文"})
    address_id: int
    standard_address: str
    scope: AliasScope = field(metadata={"description": "community 仅本村（社区）/ city 全市"})
    community_code: str | None = field(metadata={"description": "教会它的村（社区）"})
    state: AliasState = field(metadata={"description": "active 使用中 / suspended 冲突暂停 / withdrawn 已撤销"})
    taught_by: str | None
    review_item_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AliasTeachingView:
    """一次处理待核登记对这条别名的作用：教会、确认（同一地址）或冲突（另一地址）。"""

    outcome: Literal["taught", "confirmed", "conflict"]
    address_id: int
    taught_by: str
    review_item_id: int | None
    community_code: str | None
    taught_at: datetime


@dataclass(frozen=True)
class AliasTrace:
    """一条别名的来龙去脉：谁教会、何时、来自哪条待核登记，谁确认或冲突，谁升为全市、谁撤销及原因。"""

    alias: AliasView
    teachings: list[AliasTeachingView]
    promoted_by: str | None
    promoted_at: datetime | None
    promote_reason: str | None
    withdrawn_by: str | None
    withdrawn_at: datetime | None
    withdraw_reason: str | None


_COLUMNS = (
    "al.id, al.normalized_text, al.raw_text, al.address_id, a.full_text AS standard_address, al.scope, "
    "al.community_code, al.state, al.taught_by, al.review_item_id, al.created_at, al.updated_at"
)
_FROM = "address_alias al JOIN address a ON a.id = al.address_id"


def _area_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The aliases an area sees: the city all, a town those of its communities, a community its own."""
    if scope.kind == "city":
        return "TRUE", {}
    if scope.kind == "town" and scope.code:
        return "a.town_code = :area", {"area": scope.code}
    if scope.kind == "community" and scope.code:
        return "al.community_code = :area", {"area": scope.code}
    return "FALSE", {}


def _view(row: RowMapping) -> AliasView:
    return AliasView(**row)


def list_aliases(
    conn: Connection, scope: Scope, filters: AliasFilters, *, limit: int, cursor: str | None
) -> Page[AliasView]:
    """The aliases the caller's area sees, filtered, the most recently changed first."""
    area, params = _area_sql(scope)
    clauses = [area]
    if filters.state is not None:
        clauses.append("al.state = :state")
    if filters.scope is not None:
        clauses.append("al.scope = :scope")
    if filters.community is not None:
        clauses.append("al.community_code = :community")
    if filters.text is not None:
        clauses.append("strpos(al.normalized_text, :text) > 0")
    if filters.taught_by is not None:
        clauses.append("al.taught_by = :taught_by")
    params = {**params, "state": filters.state, "scope": filters.scope, "community": filters.community,
              "text": filters.text, "taught_by": filters.taught_by}  # fmt: skip
    return keyset_page(
        conn, columns=_COLUMNS, rows_from=_FROM, count_from=_FROM, condition=" AND ".join(clauses), params=params,
        order=("al.updated_at", "al.id"), limit=limit, cursor=cursor, build=_view,
    )  # fmt: skip


def alias_trace(conn: Connection, alias_id: int, scope: Scope) -> AliasTrace:
    """One alias and its history (NotFound; OutOfScope when it lies outside the caller's area)."""
    area, params = _area_sql(scope)
    row = (
        conn.execute(
            text(
                f"SELECT {_COLUMNS}, al.promoted_by, al.promoted_at, al.promote_reason, al.withdrawn_by, "  # noqa: S608 - fixed SQL fragments; values are bound
                f"al.withdrawn_at, al.withdraw_reason, ({area}) AS visible FROM {_FROM} WHERE al.id = :id"
            ),
            {**params, "id": alias_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no alias {alias_id}")
    if not row["visible"]:
        raise OutOfScope(f"alias {alias_id} is outside your area")
    teachings = [
        AliasTeachingView(**t)
        for t in conn.execute(
            text(
                "SELECT outcome, address_id, taught_by, review_item_id, community_code, taught_at "
                "FROM address_alias_teaching WHERE alias_id = :id ORDER BY taught_at, id"
            ),
            {"id": alias_id},
        ).mappings()
    ]
    view = {k: row[k] for k in AliasView.__dataclass_fields__}
    return AliasTrace(
        alias=AliasView(**view),
        teachings=teachings,
        promoted_by=row["promoted_by"],
        promoted_at=row["promoted_at"],
        promote_reason=row["promote_reason"],
        withdrawn_by=row["withdrawn_by"],
        withdrawn_at=row["withdrawn_at"],
        withdraw_reason=row["withdraw_reason"],
    )


def _reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidInput("give a reason", field="reason")
    if len(cleaned) > MAX_REASON_CHARS:
        raise InvalidInput(f"a reason has at most {MAX_REASON_CHARS} characters", field="reason")
    return cleaned


def promote(conn: Connection, alias_id: int, *, actor: Actor, reason: str) -> AliasTrace:
    """The command centre makes an alias city-wide (a suspended one active again, with the address it holds).

    The caller checked the capability (alias.promote: city-wide roles only). InvalidInput for a withdrawn alias.
    """
    alias_trace(conn, alias_id, actor.scope)  # NotFound, OutOfScope before anything is looked at
    why = _reason(reason)
    if not promote_alias(conn, alias_id, by=actor.name, reason=why):
        raise InvalidInput(f"alias {alias_id} was withdrawn: it cannot be promoted", field="alias_id")
    return alias_trace(conn, alias_id, actor.scope)


def withdraw(conn: Connection, alias_id: int, *, actor: Actor, reason: str) -> AliasTrace:
    """The alias answers no more (its row and history stay).

    The command centre withdraws any alias; a dispatcher one of their community or one they taught (OutOfScope
    otherwise). InvalidInput for one already withdrawn.
    """
    row = conn.execute(
        text("SELECT community_code, taught_by, state FROM address_alias WHERE id = :id FOR UPDATE"), {"id": alias_id}
    ).first()
    if row is None:
        raise NotFound(f"no alias {alias_id}")
    scope = actor.scope
    mine = scope.kind == "city" or (scope.kind == "community" and row.community_code == scope.code)
    if not mine and row.taught_by != actor.name:
        raise OutOfScope(f"alias {alias_id} is outside your area")
    why = _reason(reason)
    if not withdraw_alias(conn, alias_id, by=actor.name, reason=why):
        raise InvalidInput(f"alias {alias_id} was withdrawn already", field="alias_id")
    return alias_trace(conn, alias_id, CITY)
