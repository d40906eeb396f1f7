"""supervision.export: the lists as CSV files for spreadsheets — UTF-8 with a BOM, Chinese headers, defused cells.

Each export reads the same rows as its JSON list (the same filters and scope), every page of them, up to
`MAX_CSV_ROWS`; a larger export is refused (TooManyRows) so that the caller narrows the filters. A cell that a
spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) is written with a leading
apostrophe. Times are written in Asia/Shanghai, as the users read them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from supervision.calendar import SHANGHAI, today
from supervision.errors import InvalidInput
from supervision.models import CLUE_KIND_LABELS_ZH, CLUE_SEVERITY_LABELS_ZH, CLUE_SOURCE_LABELS_ZH
from supervision.paging import PAGE_LIMIT_MAX, Page
from supervision.workflow import DUTY_LABELS_ZH, STATUS_LABELS_ZH, Duty, Status

MAX_CSV_ROWS = 10_000
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TASK_KIND_LABELS_ZH = {"task": "登记任务", "clue": "线索任务"}
T = TypeVar("T")
# One column: its Chinese header and how to read the cell from a row.
Column = tuple[str, Callable[[Any], Any]]


class TooManyRows(InvalidInput):
    """An export larger than MAX_CSV_ROWS: the caller narrows the filters."""


def defuse(value: Any) -> str:
    """A cell as text: times in Shanghai, booleans 是/否, None empty, and a would-be formula behind an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_bytes(columns: Sequence[Column], rows: Iterable[Any]) -> bytes:
    """The CSV document: BOM, the Chinese header line, one defused line per row (CRLF, as spreadsheets expect)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([defuse(read(row)) for _, read in columns])
    return out.getvalue().encode("utf-8")


def content_disposition(name_zh: str, name_ascii: str) -> str:
    """An attachment header naming the file in Chinese (RFC 6266 filename*) with an ASCII fallback."""
    return f"attachment; filename=\"{name_ascii}\"; filename*=UTF-8''{quote(name_zh)}"


@dataclass(frozen=True)
class CsvFile:
    """A CSV document ready to send: its bytes, media type and download headers."""

    body: bytes
    headers: dict[str, str]
    media_type: str = CSV_MEDIA_TYPE


def csv_file(columns: Sequence[Column], rows: Iterable[Any], name_zh: str, name_ascii: str) -> CsvFile:
    """The rows as a CSV download named `<name>-<today>.csv` (today in Asia/Shanghai)."""
    day = today().strftime("%Y%m%d")
    disposition = content_disposition(f"{name_zh}-{day}.csv", f"{name_ascii}-{day}.csv")
    return CsvFile(csv_bytes(columns, rows), {"Content-Disposition": disposition, "Cache-Control": "no-store"})


def every_page(fetch: Callable[[int, str | None], Page[T]], *, limit: int = MAX_CSV_ROWS) -> list[T]:
    """Every item of a keyset-paged listing, page after page; TooManyRows when it holds more than `limit`."""
    page = fetch(PAGE_LIMIT_MAX, None)
    if page.total > limit:
        raise TooManyRows(f"the export would hold {page.total} rows, more than {limit}: narrow the filters")
    items = list(page.items)
    while page.next is not None and len(items) < limit:
        page = fetch(PAGE_LIMIT_MAX, page.next)
        items.extend(page.items)
    return items[:limit]


def bounded(items: Sequence[T], *, limit: int = MAX_CSV_ROWS) -> Sequence[T]:
    """The items of a list read with `limit + 1`; TooManyRows when there were more than `limit`."""
    if len(items) > limit:
        raise TooManyRows(f"the export would hold more than {limit} rows: narrow the filters")
    return items


def _label(labels: dict[Any, str], enum: Callable[[str], Any] | None = None) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        if value is None:
            return ""
        try:
            return labels[enum(value) if enum else value]
        except (KeyError, ValueError):
            return str(value)

    return read


_status = _label(STATUS_LABELS_ZH, Status)
_duty = _label(DUTY_LABELS_ZH, Duty)


def _place(names: dict[str, str], attribute: str) -> Callable[[Any], str]:
    return lambda row: names.get(getattr(row, attribute) or "", "")


def task_columns(towns: dict[str, str], communities: dict[str, str]) -> list[Column]:
    """The task list's columns (TaskView rows)."""
    return [
        ("任务编号", lambda t: t.id),
        ("类型", lambda t: TASK_KIND_LABELS_ZH.get(t.kind, t.kind)),
        ("职责", lambda t: _duty(t.duty)),
        ("市场主体", lambda t: t.entity_name),
        ("统一社会信用代码", lambda t: t.entity_uscc),
        ("线索编号", lambda t: t.clue_id),
        ("地址", lambda t: getattr(t, "address", None)),
        ("镇街", _place(towns, "town_code")),
        ("村（社区）", _place(communities, "community_code")),
        ("网格编码", lambda t: t.grid_code),
        ("网格员编号", lambda t: t.worker_id),
        ("网格员", lambda t: getattr(t, "worker_name", None)),
        ("经办部门", lambda t: "、".join(t.department_codes)),
        ("状态", lambda t: _status(t.status)),
        ("推送时间", lambda t: t.pushed_at),
        ("期限", lambda t: t.due_at),
        ("已逾期", lambda t: t.overdue),
        ("办结时间", lambda t: t.closed_at),
        ("责任方", lambda t: t.holder),
        ("核查位置待查", lambda t: t.flagged),
    ]


def clue_columns(towns: dict[str, str]) -> list[Column]:
    """The clue list's columns (ClueView rows)."""
    return [
        ("线索编号", lambda c: c.id),
        ("类别", lambda c: CLUE_KIND_LABELS_ZH.get(c.kind, c.kind)),
        ("行业", lambda c: c.industry),
        ("描述", lambda c: c.description),
        ("严重程度", lambda c: CLUE_SEVERITY_LABELS_ZH.get(c.severity, c.severity)),
        ("来源", lambda c: CLUE_SOURCE_LABELS_ZH.get(c.source, c.source)),
        ("状态", lambda c: _status(c.status)),
        ("上报时间", lambda c: c.reported_at),
        ("地址", lambda c: c.address),
        ("镇街", _place(towns, "town_code")),
        ("网格编码", lambda c: c.grid_code),
        ("上报人", lambda c: c.reported_by),
        ("去向部门", lambda c: c.department_code),
        ("任务编号", lambda c: c.task_id),
        ("期限", lambda c: c.due_at),
        ("照片数", lambda c: c.photo_count),
        ("经度", lambda c: c.lon),
        ("纬度", lambda c: c.lat),
    ]


def review_columns(towns: dict[str, str], communities: dict[str, str]) -> list[Column]:
    """The review queue's columns (ReviewItem rows)."""
    payload: Callable[[str], Callable[[Any], Any]] = lambda key: lambda r: (r.payload or {}).get(key)  # noqa: E731
    return [
        ("待核编号", lambda r: r.id),
        # The sender's own id (the stored id is `<sender>/<id>` for a key's or a user's event).
        ("事件编号", lambda r: (r.payload or {}).get("source_event_id") or (r.payload or {}).get("event_id")),
        ("统一社会信用代码", payload("uscc")),
        ("名称", payload("name")),
        ("登记地址", payload("address")),
        ("原因", lambda r: r.reason),
        ("镇街", _place(towns, "town_code")),
        ("村（社区）", lambda r: communities.get((r.payload or {}).get("community_code") or "", "")),
        ("候选地址数", lambda r: len((r.payload or {}).get("candidates") or [])),
        ("进入时间", lambda r: r.created_at),
        ("处理时间", lambda r: r.resolved_at),
        ("处理人", lambda r: r.resolved_by),
    ]


def overdue_columns() -> list[Column]:
    """The overdue list's columns (stats.OverdueItem rows), overdue time attributed to each holder."""
    return [
        ("任务编号", lambda o: o.id),
        ("类型", lambda o: TASK_KIND_LABELS_ZH.get(o.kind, o.kind)),
        ("职责", lambda o: _duty(o.duty)),
        ("统一社会信用代码", lambda o: o.entity_uscc),
        ("线索编号", lambda o: o.clue_id),
        ("网格编码", lambda o: o.grid_code),
        ("网格员编号", lambda o: o.worker_id),
        ("当前责任方", lambda o: o.holder),
        ("状态", lambda o: _status(o.status)),
        ("期限", lambda o: o.due_at),
        ("逾期天数", lambda o: o.overdue_days),
        ("逾期归责（小时）", lambda o: "；".join(f"{s.holder}：{s.overdue_hours}" for s in o.attribution)),
    ]
