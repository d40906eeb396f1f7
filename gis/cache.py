"""gis.cache: one small thread-safe cache whose entries expire with age or when their data version changes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 10_000


class _Any:
    """The version a reader names when any version will do."""

    def __repr__(self) -> str:
        return "ANY_VERSION"


ANY_VERSION: Hashable = _Any()


@dataclass
class _Entry(Generic[V]):
    value: V
    version: Hashable
    stored_at: float


@dataclass
class _Gate:
    """One load of one key at a time: the threads that miss together wait for the first one's load."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    waiters: int = 0


class Cache(Generic[K, V]):
    """A bounded, thread-safe map whose entries live `ttl_s` seconds and only as long as their data version.

    Each entry is put with a version (any hashable: a fingerprint of the data it was built from, None when the
    data has none). A reader that names a version sees only an entry of that version; one that names none sees
    any live entry. An entry older than `ttl_s` is gone (``ttl_s=None``: no age limit; ``ttl_s <= 0``: nothing
    is kept). Beyond `max_entries` the least recently used entry goes first.

    Parameters
    ----------
    ttl_s
        Seconds an entry lives after it was put, by `clock`; None for no limit.
    max_entries
        How many entries are kept at most.
    clock
        Seconds, monotonic (tests pass their own).

    Examples
    --------
    >>> keys: Cache[str, int] = Cache(ttl_s=60)
    >>> keys.put("gg_1234", 7)
    >>> keys.get("gg_1234")
    7
    >>> grids: Cache[str, str] = Cache(max_entries=1)
    >>> grids.get_or_load("active", lambda: "version 3's grids", version=3)
    "version 3's grids"
    >>> grids.get("active", version=4) is None  # the data changed: the old value no longer answers
    True
    """

    def __init__(
        self,
        *,
        ttl_s: float | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._gates: dict[K, _Gate] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: K, *, version: Hashable = ANY_VERSION) -> V | None:
        """The live value of `key` (of `version`, when named), or None."""
        entry = self._lookup(key, version)
        return None if entry is None else entry.value

    def put(self, key: K, value: V, *, version: Hashable = None) -> None:
        """Remember `value` for `key`, built from data of `version`, from now on (replacing any other version)."""
        if self.ttl_s is not None and self.ttl_s <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = _Entry(value, version, self._clock())
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_load(self, key: K, load: Callable[[], V], *, version: Hashable = ANY_VERSION) -> V:
        """The live value of `key` (of `version`, when named), else `load()`'s, remembered under that version.

        Threads that miss the same key together run one load; the others wait for it and take its value. A load
        that raises remembers nothing, and the exception reaches the caller.
        """
        entry = self._lookup(key, version)
        if entry is not None:
            return entry.value
        with self._lock:
            gate = self._gates.setdefault(key, _Gate())
            gate.waiters += 1
        try:
            with gate.lock:
                entry = self._lookup(key, version)  # loaded by the thread we waited for
                if entry is not None:
                    return entry.value
                value = load()
                self.put(key, value, version=None if version is ANY_VERSION else version)
                return value
        finally:
            with self._lock:
                gate.waiters -= 1
                if gate.waiters == 0:
                    del self._gates[key]

    def forget(self, key: K) -> None:
        """Drop one entry (after a change this process made, such as a revoked key)."""
        with self._lock:
            self._entries.pop(key, None)

    def forget_version(self, version: Hashable) -> None:
        """Drop every entry built from data of `version`."""
        with self._lock:
            for key in [k for k, entry in self._entries.items() if entry.version == version]:
                del self._entries[key]

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def _lookup(self, key: K, version: Hashable) -> _Entry[V] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.ttl_s is not None and self._clock() - entry.stored_at >= self.ttl_s:
                del self._entries[key]
                return None
            if version is not ANY_VERSION and entry.version != version:
                return None  # kept: readers that name no version still see it until a new one is put
            self._entries.move_to_end(key)
            return entry
