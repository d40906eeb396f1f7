"""supervision.paging: one page of a listing, newest first, and the opaque keyset cursor of the next page."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supervision.errors import InvalidInput

PAGE_LIMIT_MAX = 500


@dataclass
class Page:
    """One page of a listing, newest first, and the cursor of the next page."""

    items: list[dict[str, Any]]
    total: int
    next: str | None


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
