"""supervision.event_files: importing a file of registration events (CSV or JSON lines) in chunks, with a report.

Each chunk of accepted rows is one transaction (`supervision.outbox.accept_events`); a row that does not parse or
validate is reported with its line and reason and kept in the review queue, so nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from supervision.errors import EventConflict, InvalidInput
from supervision.events import EVENT_FIELDS, RegistrationEvent, parse_event
from supervision.outbox import accept_events

# Rows of an import file accepted per transaction: a killed import redoes at most this many rows, and the
# sender of a day's file (a few thousand events) sees its accepted part survive a crash.
IMPORT_CHUNK = 1000


@dataclass(frozen=True)
class RejectedRow:
    """A row of an import file that was not accepted, and why."""

    line: int
    event_id: str | None
    field: str | None
    reason: str


def read_event_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) of a CSV or JSON-lines file; a string instead of a row is a line that does not parse."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if first.lstrip().startswith("{"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"not valid JSON: {exc.msg}"
                    continue
                yield number, value if isinstance(value, dict) else "a JSON line must be an object"
            return
        reader = csv.DictReader(handle)
        missing = [f for f in EVENT_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path.name}: the header lacks {', '.join(missing)}", field="header")
        for row in reader:
            yield reader.line_num, dict(row)


@dataclass
class ImportReport:
    """What an import did: accepted, replays, rejected rows with their reasons."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.accepted:,} events accepted, {self.duplicates:,} already received, {len(self.rejected):,} rejected"
        )


def import_events(
    engine: Engine,
    rows: Iterable[tuple[int, dict[str, Any] | str]],
    *,
    chunk: int = IMPORT_CHUNK,
    source: str = "import",
) -> ImportReport:
    """Accept the rows of a file in chunks (each chunk one transaction); rejected rows are reported and queued."""
    report = ImportReport()
    pending: list[RegistrationEvent] = []
    lines: list[int] = []

    def flush() -> None:
        if not pending:
            return
        with engine.begin() as conn:
            try:
                with conn.begin_nested():
                    outcomes = accept_events(conn, pending)
            except EventConflict:
                outcomes = []
                for line, event in zip(lines, pending, strict=True):
                    try:
                        with conn.begin_nested():
                            outcomes.extend(accept_events(conn, [event]))
                    except EventConflict as exc:
                        _reject(conn, report, RejectedRow(line, event.event_id, "event_id", str(exc)), source)
            for outcome in outcomes:
                if outcome.duplicate:
                    report.duplicates += 1
                else:
                    report.accepted += 1
        pending.clear()
        lines.clear()

    for line, row in rows:
        if isinstance(row, str):
            with engine.begin() as conn:
                _reject(conn, report, RejectedRow(line, None, None, row), source)
            continue
        try:
            event = parse_event(row)
        except InvalidInput as exc:
            with engine.begin() as conn:
                event_id = row.get("event_id")
                _reject(conn, report, RejectedRow(line, str(event_id) if event_id else None, exc.field, str(exc)),
                        source, row)  # fmt: skip
            continue
        pending.append(event)
        lines.append(line)
        if len(pending) >= chunk:
            flush()
    flush()
    return report


def _reject(
    conn: Connection, report: ImportReport, rejected: RejectedRow, source: str, row: Mapping[str, Any] | None = None
) -> None:
    """Report a rejected row and keep it in the review queue: nothing is dropped silently."""
    report.rejected.append(rejected)
    payload = {"source": source, "line": rejected.line, "field": rejected.field, "row": dict(row or {})}
    # A replayed file does not queue the same rejected row twice.
    conn.execute(
        text(
            "INSERT INTO review_queue (kind, reason, payload) "
            "SELECT 'registration_rejected', :r, CAST(:p AS jsonb) WHERE NOT EXISTS ("
            "SELECT 1 FROM review_queue WHERE kind = 'registration_rejected' AND resolved_at IS NULL "
            "AND reason = :r AND payload = CAST(:p AS jsonb))"
        ),
        {"r": rejected.reason, "p": json.dumps(payload, ensure_ascii=False, default=str)},
    )


def format_rejections(rejected: Sequence[RejectedRow], *, limit: int = 20) -> str:
    """The first rejected rows, one per line, for the terminal."""
    out = io.StringIO()
    for r in rejected[:limit]:
        out.write(f"  line {r.line}: {r.event_id or '-'}: {r.reason}\n")
    if len(rejected) > limit:
        out.write(f"  … and {len(rejected) - limit:,} more\n")
    return out.getvalue()
