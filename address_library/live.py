"""address_library.live: a server's geocoder, opened from the library's index store, rebuilt in the background on changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine

from address_library.index_store import open_current, save_store
from address_library.repository import AliasEntry, alias_version, library_version
from address_library.service import Geocoder
from gis.cache import Cache

log = logging.getLogger(__name__)

# How often a request may trigger the cheap "has the library changed?" query.
CHECK_INTERVAL_S = 5.0
_LIBRARY = "library"  # the one entry of the live geocoder's cache


class LiveGeocoder:
    """Holds the current Geocoder, versioned by the library's fingerprint; swaps in a rebuilt one when that changes."""

    def __init__(
        self, engine: Engine, *, check_interval_s: float = CHECK_INTERVAL_S, index_root: Path | None = None
    ) -> None:
        self._engine = engine
        # Where index stores live: a geocoder is opened from the store of its library version (seconds), built and
        # saved there first when there is none. None: built in memory from the database every time.
        self._index_root = index_root
        self._save_lock = threading.Lock()
        self._saving = False
        self._unsaved: Geocoder | None = None
        self._check_interval_s = check_interval_s
        self._index: Cache[str, Geocoder] = Cache(max_entries=1)
        self._rebuilding = False
        self._last_check = 0.0
        # Addresses this process added (learn_address), handed to every geocoder built without them.
        self._learned: list[dict[str, Any]] = []
        self._learned_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """True once the first geocoder is built."""
        return self._index.get(_LIBRARY) is not None

    def get(self) -> Geocoder:
        """The current geocoder (built on first use); schedules a rebuild when the library has changed."""
        current = self._index.get(_LIBRARY)
        if current is None:
            with self._engine.connect() as conn:
                fingerprint = library_version(conn)
            return self._index.get_or_load(_LIBRARY, self._build, version=fingerprint)
        if time.monotonic() - self._last_check >= self._check_interval_s:
            self._last_check = time.monotonic()
            self._maybe_rebuild()
        return current

    def refresh_now(self) -> Geocoder:
        """Rebuild synchronously (after a library change made by this process).

        The rebuild is in memory, as fast as before there were stores; it is saved as the store of its library
        version in the background afterwards, so that the next start opens it from disk.
        """
        rebuilt = self._build(in_memory=True)
        self._index.put(_LIBRARY, rebuilt, version=rebuilt.fingerprint)
        if self._index_root is not None:
            self._save_later(rebuilt)
        return rebuilt

    def _save_later(self, geocoder: Geocoder) -> None:
        # One saver at a time, and only the newest rebuild: a burst of edits costs one or two saves, not one each.
        with self._save_lock:
            self._unsaved = geocoder
            if self._saving:
                return
            self._saving = True
        threading.Thread(target=self._save_newest, name="address-index-save", daemon=True).start()

    def _save_newest(self) -> None:
        while True:
            with self._save_lock:
                geocoder, self._unsaved = self._unsaved, None
                if geocoder is None:
                    self._saving = False
                    return
            try:
                save_store(geocoder, cast(Path, self._index_root))
            except Exception:  # the next start builds the store instead
                log.exception("saving the rebuilt address index failed")

    def learn_address(self, row: Mapping[str, Any], *, alias: AliasEntry | None = None) -> None:
        """Answer with an address this process just added (and the typed text it was added for) at once.

        The current geocoder learns it (Geocoder.learn_addresses), and so does every geocoder built before the
        library showed it; the fingerprint check rebuilds the index with it in the background as usual.
        """
        with self._learned_lock:
            self._learned.append(dict(row))
        current = self._index.get(_LIBRARY)
        if current is not None:
            current.learn_addresses([row])
            if alias is not None:
                current.learn_alias(alias)

    def learn_alias(self, entry: AliasEntry) -> None:
        """Use a new or changed alias in this process at once (the others reload on their next fingerprint check)."""
        current = self._index.get(_LIBRARY)
        if current is not None:
            current.learn_alias(entry)

    def forget_alias(self, alias_id: int) -> None:
        """Stop using a withdrawn or suspended alias in this process at once (the others reload on their next
        fingerprint check)."""
        current = self._index.get(_LIBRARY)
        if current is not None:
            current.forget_alias(alias_id)

    def _build(self, *, in_memory: bool = False) -> Geocoder:
        started = time.perf_counter()
        with self._engine.connect() as conn:
            # No forked helpers inside a server: a fork while another thread holds a lock (logging, the
            # driver, the allocator) can leave the child waiting forever. Seen once with uvicorn.
            if self._index_root is None or in_memory:
                geocoder = Geocoder.load(conn, workers=1)
            else:
                geocoder = open_current(conn, self._index_root, workers=1, unsaved=_store_not_saved)
        log.info("address index ready: %d addresses in %.1f s", len(geocoder.index), time.perf_counter() - started)
        with self._learned_lock:
            # A build that began before an addition committed lacks it: it learns it too. Once a build holds an
            # address, it is forgotten here.
            if self._learned:
                index = geocoder.index
                self._learned = [r for r in self._learned if index.position_of(int(r["id"])) is None]
            missing = list(self._learned)
        if missing:
            geocoder.learn_addresses(missing)
        return geocoder

    def _maybe_rebuild(self) -> None:
        # The check itself is a query: it runs in its own thread so that a request never waits for it.
        if self._rebuilding:
            return
        self._rebuilding = True
        threading.Thread(target=self._check_and_rebuild, name="address-index-check", daemon=True).start()

    def _check_and_rebuild(self) -> None:
        try:
            with self._engine.connect() as conn:
                unchanged = self._index.get(_LIBRARY, version=library_version(conn))
                if unchanged is not None and alias_version(conn) != unchanged.alias_fingerprint:
                    unchanged.reload_aliases(conn)
            if unchanged is None:
                self.refresh_now()
        except Exception:  # the old index keeps answering; the next check tries again
            log.exception("address index check or rebuild failed")
        finally:
            self._rebuilding = False


GeocoderSource = Callable[[], Geocoder]


class IndexRefresher:
    """Rebuilds the live geocoder in a background thread after changes; a burst of edits costs at most two rebuilds.

    Changes made while a rebuild runs coalesce into one more rebuild, which starts when it ends.
    """

    def __init__(self, live: LiveGeocoder) -> None:
        self._live = live
        self._lock = threading.Lock()
        self._running = False
        self._pending = False

    @property
    def live(self) -> LiveGeocoder:
        """The live geocoder this refresher rebuilds."""
        return self._live

    def request(self) -> None:
        """Ask for a rebuild; returns at once."""
        with self._lock:
            if self._running:
                self._pending = True
                return
            self._running = True
        threading.Thread(target=self._run, name="address-index-refresh", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self._live.refresh_now()
            except Exception:  # the old index keeps answering; the fingerprint check retries later
                log.exception("address index refresh after a library change failed")
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                self._pending = False


def _store_not_saved(error: OSError) -> None:
    """A server whose index store cannot be written (folder not writable, disk full) serves from memory."""
    log.warning("the address index store cannot be saved (%s): serving an index built in memory", error.strerror)
