"""supervision.paging: one page of a listing, newest first, and the opaque keyset cursor of the next page.

`Page[T]` is generic over the read model listed (a frozen dataclass the API serializes as it stands).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

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
