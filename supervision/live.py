"""supervision.live: the live feed — new registrations, task moves and clues, read once per app and fanned out.

One poller thread per app reads what is new every `interval_s` (serial-id watermarks over task_event, clue,
review_queue and outbox, each re-reading its last `slack` ids so that a transaction committing late is not
missed, and skipping the ids already seen). Each new row becomes a `LiveEvent` with a sequence number of the feed;
the feed keeps a short backlog (so that a client reconnecting with Last-Event-ID misses nothing) and hands every
event to each subscriber whose Scope sees it — by the same rules as the lists (`Scope.task_sql`,
`Scope.clue_sql`, `Scope.handles_review`), here in Python over the event's town, community, grid and departments.

The poller runs while someone listens and stops `idle_stop_s` after the last subscriber leaves; it keeps its
watermarks, so a quick restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from grids.codes import community_of, community_sql, town_of
from supervision.models import CLUE_SEVERITY_LABELS_ZH, CLUE_SOURCE_LABELS_ZH
from supervision.scope import Scope
from supervision.task_states import split_departments
from supervision.workflow import DUTY_LABELS_ZH, STATUS_LABELS_ZH, Duty, Status

log = logging.getLogger(__name__)

REGISTRATION_KIND_LABELS_ZH = {"new": "新设", "address_change": "地址变更", "scope_change": "经营范围变更",
                               "deregistration": "注销"}  # fmt: skip
_BATCH = 1000
_BURST_TOLD = 100


class TooManyStreams(Exception):
    """The feed already serves as many live streams as it may."""


@dataclass(frozen=True)
class LiveEvent:
    """One event of the feed: its sequence number, its name (registration, task, clue), the public payload, and
    what the scope rules read (audience, town, community, grid, departments)."""

    seq: int
    name: str
    data: dict[str, Any]
    audience: str
    departments: frozenset[str] = frozenset()

    def sse(self) -> str:
        """The event as server-sent-events text (id, event, data, blank line)."""
        return f"id: {self.seq}\nevent: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


def sees(scope: Scope, event: LiveEvent, worker_grids: frozenset[str] = frozenset()) -> bool:
    """Whether `scope` sees this event, by the lists' own rules (the worker's grids given, as read at subscribe)."""
    data = event.data
    town, community, grid = data.get("town_code"), data.get("community_code"), data.get("grid_code")
    if event.audience == "review":
        return scope.handles_review(town, community)
    if event.audience == "clue":
        return sees_clue(scope, town, grid, next(iter(event.departments), None), worker_grids)
    return sees_task(scope, town, community, grid, event.departments, worker_grids)


def sees_task(
    scope: Scope,
    town: str | None,
    community: str | None,
    grid: str | None,
    departments: Iterable[str],
    worker_grids: frozenset[str] = frozenset(),
) -> bool:
    """`Scope.task_sql` in Python: the city all; a town, community or worker's grids their own; a department
    the tasks routed to it."""
    if scope.kind == "city":
        return True
    if scope.kind == "town":
        return town is not None and town == scope.code
    if scope.kind == "community":
        return community is not None and community == scope.code
    if scope.kind == "worker":
        return grid is not None and grid in worker_grids
    if scope.kind == "department":
        return scope.code in set(departments)
    return False


def sees_clue(
    scope: Scope,
    town: str | None,
    grid: str | None,
    department: str | None,
    worker_grids: frozenset[str] = frozenset(),
) -> bool:
    """`Scope.clue_sql` in Python: a department its clues, a community the clues of its grids, else as tasks."""
    if scope.kind == "department":
        return department is not None and department == scope.code
    if scope.kind == "community":
        return grid is not None and community_of(grid) == scope.code
    return sees_task(scope, town, None, grid, (), worker_grids)


@dataclass
class Subscription:
    """One listener: its scope, what it may receive, and the queue the poller fills (on the listener's loop)."""

    scope: Scope
    audiences: frozenset[str]
    worker_grids: frozenset[str]
    loop: asyncio.AbstractEventLoop
    # The credential that opened it (Principal.audit_name): the per-credential cap counts by it.
    owner: str | None = None
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=asyncio.Queue)
    max_queue: int = 1000
    closed: bool = False

    def wants(self, event: LiveEvent) -> bool:
        """Whether this listener may receive the event (capability and scope)."""
        return event.audience in self.audiences and sees(self.scope, event, self.worker_grids)

    def offer(self, event: LiveEvent) -> None:
        """From the poller thread: queue the event if wanted; a listener too slow to keep up is closed."""
        if self.closed or not self.wants(event):
            return
        try:
            self.loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # the listener's loop has closed: nobody reads this queue any more
            self.closed = True

    def _put(self, event: LiveEvent | None) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.max_queue:
            self.closed = True
            event = None  # the stream ends; the client reconnects with Last-Event-ID
        self.queue.put_nowait(event)


class IdCursor:
    """A watermark over a serial id that re-reads its last `slack` ids and skips those already seen."""

    def __init__(self, start: int, slack: int = 64) -> None:
        self.high = start
        self.slack = slack
        self._seen: set[int] = set()

    @property
    def low(self) -> int:
        """Read ids above this one."""
        return max(0, self.high - self.slack)

    def fresh(self, ids: Iterable[int]) -> set[int]:
        """The ids not seen before; remembers them, and forgets those below the window."""
        new = {i for i in ids if i not in self._seen and i > self.low}
        self._seen |= new
        if new:
            self.high = max(self.high, *new)
        self._seen = {i for i in self._seen if i > self.low}
        return new


class LiveFeed:
    """The app's one poller and its subscribers (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval_s: float = 0.25,
        backlog: int = 1000,
        max_subscribers: int = 200,
        max_per_owner: int = 4,
        idle_stop_s: float = 5.0,
        resume_horizon_s: float = 120.0,
        heartbeat_s: float = 15.0,
        max_stream_s: float = 300.0,
    ) -> None:
        self._engine = engine
        # A stream says something at least every `heartbeat_s`, and ends after `max_stream_s` (the browser's
        # EventSource reconnects with Last-Event-ID and misses nothing), so that a server can always shut down.
        self.heartbeat_s = heartbeat_s
        self.max_stream_s = max_stream_s
        self.interval_s = interval_s
        self.max_subscribers = max_subscribers
        # One credential's share of the streams, so that one key or account cannot take every slot.
        self.max_per_owner = max_per_owner
        self.idle_stop_s = idle_stop_s
        self.resume_horizon_s = resume_horizon_s
        self._backlog: deque[LiveEvent] = deque(maxlen=backlog)
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        # Held while the watermarks are read or moved (the poller's tick, a listener's `prepare`).
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursors: dict[str, IdCursor] | None = None
        self._stopped_at: float | None = None
        self._emitted_registrations: deque[str] = deque(maxlen=5000)
        # Sequence numbers rise across restarts of the app (milliseconds since the epoch at the start, times 1000).
        self._seq = time.time_ns() // 1_000_000 * 1000

    # ---------------------------------------------------------------------------------------------- listeners

    def subscribe(
        self,
        scope: Scope,
        audiences: Iterable[str],
        *,
        worker_grids: frozenset[str] = frozenset(),
        last_seq: int | None = None,
        owner: str | None = None,
    ) -> tuple[Subscription, list[LiveEvent]]:
        """Register a listener on the running loop; with `last_seq`, also the backlog after it that it may see.

        TooManyStreams when the feed is full, or when `owner` already holds `max_per_owner` streams. Registering and reading the backlog happen under one lock, so the
        listener gets every event once: the backlog's, then its queue's.
        """
        sub = Subscription(scope, frozenset(audiences), worker_grids, asyncio.get_running_loop(), owner)
        with self._lock:
            if len(self._subscribers) >= self.max_subscribers:
                raise TooManyStreams(f"the server already serves {self.max_subscribers} live streams")
            held = sum(1 for s in self._subscribers if owner is not None and s.owner == owner and not s.closed)
            if owner is not None and held >= self.max_per_owner:
                raise TooManyStreams(
                    f"this credential already holds {held} live streams (at most {self.max_per_owner}); close one first"
                )
            self._subscribers.append(sub)
            replay = [e for e in self._backlog if last_seq is not None and e.seq > last_seq and sub.wants(e)]
        self._ensure_running()
        return sub, replay

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a listener (its client went away)."""
        sub.closed = True
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def listeners(self) -> int:
        """How many listeners are registered."""
        with self._lock:
            return len(self._subscribers)

    # ---------------------------------------------------------------------------------------------- the poller

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="gridgov-live", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Poll now rather than at the next tick (after a request committed something listeners await)."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the poller and close every listener."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        with self._lock:
            subs, self._subscribers = self._subscribers, []
        for sub in subs:
            if not sub.closed and not sub.loop.is_closed():
                sub.loop.call_soon_threadsafe(sub._put, None)
            sub.closed = True

    def _loop(self) -> None:
        idle_since: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:
                    log.exception("live feed poll failed; retrying")
                # Deciding to stop under the lock: a listener subscribing now either keeps this thread or,
                # once `_thread` is cleared, starts a new one.
                with self._lock:
                    if self._subscribers:
                        idle_since = None
                    else:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since >= self.idle_stop_s:
                            return
                self._wake.wait(self.interval_s)
                self._wake.clear()
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                self._stopped_at = time.monotonic()

    def prepare(self) -> None:
        """Set the watermarks now if the feed has none (or stopped too long ago to resume), before a listener is
        told its stream is open: whatever commits after that moment reaches it."""
        with self._poll_lock, self._engine.connect() as conn:
            self._cursors_for(conn)

    def _cursors_for(self, conn: Connection) -> dict[str, IdCursor]:
        """The watermarks, started at the newest rows when missing or stale (call under `_poll_lock`)."""
        if self._cursors is None or (
            self._stopped_at is not None and time.monotonic() - self._stopped_at > self.resume_horizon_s
        ):
            self._cursors = _start_cursors(conn)
        self._stopped_at = None
        return self._cursors

    def poll_once(self) -> list[LiveEvent]:
        """Read what is new, publish it to the backlog and the listeners, and return it."""
        with self._poll_lock, self._engine.connect() as conn:
            found = self._read(conn, self._cursors_for(conn))
        events: list[LiveEvent] = []
        with self._lock:
            for name, audience, data, departments in found:
                self._seq += 1
                event = LiveEvent(self._seq, name, data, audience, departments)
                self._backlog.append(event)
                events.append(event)
            self._subscribers = [s for s in self._subscribers if not (s.closed and s.loop.is_closed())]
            subs = list(self._subscribers)
        for event in events:
            for sub in subs:
                sub.offer(event)
        return events

    def _read(
        self, conn: Connection, cursors: dict[str, IdCursor]
    ) -> list[tuple[str, str, dict[str, Any], frozenset[str]]]:
        """The new rows of each source, as (name, audience, data, departments), oldest first."""
        out: list[tuple[datetime, int, tuple[str, str, dict[str, Any], frozenset[str]]]] = []
        placed: list[str] = []
        for r in _rows(conn, _TASK_EVENTS, cursors["task_event"], "task_event"):
            departments = frozenset(split_departments(r.department_codes))
            out.append((r.at, 1, ("task", "task", _task_data(r), departments)))
            if r.from_status is None and r.event_id is not None:
                placed.append(r.event_id)
        for r in _rows(conn, _CLUES, cursors["clue"], "clue"):
            departments = frozenset({r.department_code}) if r.department_code else frozenset()
            out.append((r.reported_at, 2, ("clue", "clue", _clue_data(r), departments)))
        out.extend(
            (r.created_at, 0, ("registration", "review", _review_data(r), frozenset()))
            for r in _rows(conn, _REVIEWS, cursors["review"], "review")
        )
        placed += [r.event_id for r in _rows(conn, _RELAYED, cursors["outbox"], "outbox") if r.event_id]
        for r in _placed(conn, [e for e in dict.fromkeys(placed) if e not in self._emitted_registrations]):
            self._emitted_registrations.append(r.event_id)
            departments = frozenset(d for codes in (r.department_codes or []) for d in split_departments(codes))
            out.append((r.processed_at, 0, ("registration", "task", _registration_data(r), departments)))
        out.sort(key=lambda item: (item[1] != 0, item[0]))
        return [item[2] for item in out]


# --------------------------------------------------------------------------------------------------- reading

_MAX_IDS = {
    "task_event": "SELECT coalesce(max(id), 0) FROM task_event",
    "clue": "SELECT coalesce(max(id), 0) FROM clue",
    "review": "SELECT coalesce(max(id), 0) FROM review_queue",
    "outbox": "SELECT coalesce(max(id), 0) FROM outbox",
}
_TASK_EVENTS = """
    SELECT te.id, te.task_id, te.from_status, te.to_status, te.at, t.kind, t.duty, t.town_code, t.community_code,
           t.grid_code, t.department_codes, t.event_id, e.name AS entity_name,
           ST_X(coalesce(e.geom, c.geom)) AS lon, ST_Y(coalesce(e.geom, c.geom)) AS lat
    FROM task_event te JOIN task t ON t.id = te.task_id
    LEFT JOIN entity e ON e.uscc = t.entity_uscc LEFT JOIN clue c ON c.id = t.clue_id
    WHERE te.id > :low ORDER BY te.id LIMIT :n
"""
_CLUES = """
    SELECT c.id, c.kind, c.industry, c.severity, c.status, c.source, c.reported_at, c.town_code, c.grid_code,
           c.department_code, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
    FROM clue c WHERE c.id > :low ORDER BY c.id LIMIT :n
"""
_REVIEWS = """
    SELECT r.id, r.town_code, r.created_at, COALESCE(r.payload->>'source_event_id', r.payload->>'event_id') AS own_id,
           r.payload->>'kind' AS kind,
           r.payload->>'name' AS name, r.payload->>'community_code' AS community_code
    FROM review_queue r WHERE r.id > :low AND r.kind = 'registration' ORDER BY r.id LIMIT :n
"""
# Relayed outbox rows: the events the relay processed (a row still waiting is read again on the next tick).
_RELAYED = """
    SELECT o.id, o.payload->>'event_id' AS event_id FROM outbox o
    WHERE o.id > :low AND o.relayed_at IS NOT NULL ORDER BY o.id LIMIT :n
"""
_PLACED = """
    SELECT r.event_id, r.source_event_id AS own_id, r.kind, r.name, r.processed_at, e.grid_code, e.town_code,
           ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat,
           ARRAY(SELECT t.department_codes FROM task t WHERE t.event_id = r.event_id) AS department_codes
    FROM registration_event r LEFT JOIN entity e ON e.uscc = r.uscc
    WHERE r.event_id = ANY(:ids) AND r.outcome = 'placed' AND r.processed_at IS NOT NULL
"""


# The outbox window is wider: a row is read only once relayed, which may be after many newer rows were.
_SLACK = {"task_event": 64, "clue": 64, "review": 64, "outbox": 500}


def _start_cursors(conn: Connection) -> dict[str, IdCursor]:
    """Watermarks at the newest row of each source: the feed tells what happens from now on."""
    return {name: IdCursor(int(conn.execute(text(sql)).scalar_one()), _SLACK[name]) for name, sql in _MAX_IDS.items()}


def _rows(conn: Connection, sql: str, cursor: IdCursor, source: str) -> list[Any]:
    """The rows of one source above the cursor's window that it has not seen (an unrelayed outbox row is unseen).

    A burst larger than a batch (a campaign's thousands of tasks) is told by its last `_BURST_TOLD` rows only, and
    the cursor jumps to the newest row: a live feed shows what happens now, the lists hold the rest.
    """
    rows = conn.execute(text(sql), {"low": cursor.low, "n": _BATCH}).all()
    new = cursor.fresh(r.id for r in rows)
    fresh = [r for r in rows if r.id in new]
    if len(rows) >= _BATCH:
        newest = int(conn.execute(text(_MAX_IDS[source])).scalar_one())
        log.info("live feed: a burst of %s rows of %s; telling the last %s", newest - cursor.low, source, _BURST_TOLD)
        cursor.fresh(range(max(cursor.high, newest - cursor.slack) + 1, newest + 1))
        fresh = fresh[-_BURST_TOLD:]
    return fresh


def _placed(conn: Connection, event_ids: Sequence[str]) -> list[Any]:
    """The placed registrations among these events, with their entity's point and grid and their tasks' departments."""
    if not event_ids:
        return []
    return list(conn.execute(text(_PLACED), {"ids": list(event_ids)}).all())


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _point(r: Any) -> tuple[float | None, float | None]:
    if r.lon is None or r.lat is None:
        return None, None
    return round(float(r.lon), 6), round(float(r.lat), 6)


def _status_zh(status: str | None) -> str:
    if status is None:
        return ""
    try:
        return STATUS_LABELS_ZH[Status(status)]
    except ValueError:
        return status


def _task_data(r: Any) -> dict[str, Any]:
    lon, lat = _point(r)
    try:
        duty = DUTY_LABELS_ZH[Duty(r.duty)]
    except ValueError:
        duty = r.duty
    subject = r.entity_name or ("线索任务" if r.kind == "clue" else f"任务 {r.task_id}")
    if r.from_status is None:
        action, label = "created", f"新任务：{duty}·{subject}（{_status_zh(r.to_status)}）"
    else:
        action, label = "moved", f"{duty}·{subject}：{_status_zh(r.from_status)} → {_status_zh(r.to_status)}"
    return {
        "id": r.task_id, "kind": "task", "action": action, "status": r.to_status, "town_code": r.town_code,
        "community_code": r.community_code, "grid_code": r.grid_code, "lon": lon, "lat": lat, "at": _iso(r.at),
        "label": label,
    }  # fmt: skip


def _clue_data(r: Any) -> dict[str, Any]:
    lon, lat = _point(r)
    severity = CLUE_SEVERITY_LABELS_ZH.get(r.severity, r.severity)
    source = CLUE_SOURCE_LABELS_ZH.get(r.source, r.source)
    return {
        "id": r.id, "kind": "clue", "action": "reported", "status": r.status, "town_code": r.town_code,
        "community_code": community_of(r.grid_code) if r.grid_code else None, "grid_code": r.grid_code,
        "lon": lon, "lat": lat, "at": _iso(r.reported_at), "label": f"新线索：{r.industry}（{severity}，{source}）",
    }  # fmt: skip


def _review_data(r: Any) -> dict[str, Any]:
    kind = REGISTRATION_KIND_LABELS_ZH.get(r.kind or "", "")
    return {
        "id": r.own_id, "kind": "registration", "action": "review", "status": "review", "town_code": r.town_code,
        "community_code": r.community_code, "grid_code": None, "lon": None, "lat": None, "at": _iso(r.created_at),
        "label": f"{kind}登记：{r.name or ''}，地址待核", "review_id": r.id,
    }  # fmt: skip


def _registration_data(r: Any) -> dict[str, Any]:
    lon, lat = _point(r)
    kind = REGISTRATION_KIND_LABELS_ZH.get(r.kind, "")
    grid = r.grid_code
    return {
        "id": r.own_id, "kind": "registration", "action": "placed", "status": "placed",
        "town_code": r.town_code or (town_of(grid) if grid else None),
        "community_code": community_of(grid) if grid else None, "grid_code": grid, "lon": lon, "lat": lat,
        "at": _iso(r.processed_at), "label": f"{kind}登记：{r.name}，已落网格并派发任务",
    }  # fmt: skip


# ------------------------------------------------------------------------------------ the last hour's registrations

_RECENT = """
    SELECT x.event_id, x.own_id, x.kind, x.name, x.address, x.grid_code, x.processed_at,
           ST_X(x.geom) AS lon, ST_Y(x.geom) AS lat
    FROM (
        SELECT r.event_id, r.source_event_id AS own_id, r.kind, r.name, r.address, r.processed_at, e.grid_code,
               e.town_code, e.geom,
               {community} AS community_code,
               (SELECT string_agg(t.department_codes, ',') FROM task t WHERE t.event_id = r.event_id)
                   AS department_codes
        FROM registration_event r JOIN entity e ON e.uscc = r.uscc
        WHERE r.outcome = 'placed' AND r.processed_at >= :since AND r.processed_at <= :until AND e.geom IS NOT NULL
    ) x
    WHERE {scope}
    ORDER BY x.processed_at DESC, x.event_id LIMIT :n
"""
RECENT_LIMIT = 5000


def recent_registrations(conn: Connection, scope: Scope, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Registrations placed in [since, until] as a GeoJSON FeatureCollection of their entities' points (WGS84).

    A registration is seen by whom its tasks (or, with none, its grid) would be seen: `Scope.task_sql` over the
    event's town, community, grid and its tasks' departments, as the live feed does.
    """
    where, params = scope.task_sql("x")
    sql = _RECENT.format(community=community_sql("e.grid_code"), scope=where)
    rows = conn.execute(text(sql), {**params, "since": since, "until": until, "n": RECENT_LIMIT}).all()
    features = [
        {
            "type": "Feature",
            "id": r.own_id,
            "geometry": {"type": "Point", "coordinates": [round(float(r.lon), 6), round(float(r.lat), 6)]},
            "properties": {
                "event_id": r.own_id,
                "kind": r.kind,
                "name": r.name,
                "address": r.address,
                "grid_code": r.grid_code,
                "at": _iso(r.processed_at),
            },
        }
        for r in rows
    ]
    return {"type": "FeatureCollection", "features": features}
