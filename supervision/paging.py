"""supervision.paging: one page of a listing, newest first, and the opaque keyset cursor of the next page.

`Page[T]` is generic over the read model listed (a frozen dataclass the API serializes as it stands).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, RowMapping, text

from supervision.errors import InvalidInput

PAGE_LIMIT_MAX = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """一页（新的在前）；next 为下一页游标，没有下一页时为 null。"""

    items: list[T]
    total: int = field(metadata={"description": "符合条件的总数"})
    next: str | None = field(metadata={"description": "下一页游标"})


def encode_cursor(at: datetime, row_id: int) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a cursor stands for; InvalidInput for a cursor this service did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), int(row_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the page cursor is not one this service made", field="cursor") from exc


def keyset_page(
    conn: Connection,
    *,
    columns: str,
    rows_from: str,
    count_from: str,
    condition: str,
    params: dict[str, Any],
    order: tuple[str, str],
    limit: int,
    cursor: str | None,
    build: Callable[[RowMapping], T],
) -> Page[T]:
    """One page newest first, keyed on (`order` time column, id column) after `cursor`, with the total count.

    Every SQL argument is a fixed fragment of the caller's; values come only through `params`, bound.
    """
    total = int(conn.execute(text(f"SELECT count(*) FROM {count_from} WHERE {condition}"), params).scalar_one())  # noqa: S608 - fixed SQL fragments; values are bound
    time_column, id_column = order
    after = ""
    if cursor:
        at, last_id = decode_cursor(cursor)
        after = f" AND ({time_column}, {id_column}) < (:c_at, :c_id)"
        params = {**params, "c_at": at, "c_id": last_id}
    limit = max(1, min(limit, PAGE_LIMIT_MAX))
    rows = (
        conn.execute(
            text(
                f"SELECT {columns} FROM {rows_from} WHERE {condition}{after} "  # noqa: S608 - fixed SQL fragments; values are bound
                f"ORDER BY {time_column} DESC, {id_column} DESC LIMIT :limit"
            ),
            {**params, "limit": limit + 1},
        )
        .mappings()
        .all()
    )
    following = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = encode_cursor(last[time_column.split(".")[-1]], last[id_column.split(".")[-1]])
    return Page(items=[build(r) for r in rows[:limit]], total=total, next=following)
