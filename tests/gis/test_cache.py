"""The one cache: entries answer while young enough and of the data version asked for, and load once when missing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gis.cache import ANY_VERSION, Cache

KEYS = st.sampled_from("abcde")
VERSIONS = st.sampled_from([None, 1, 2])
TTL_S = 10.0
MAX_ENTRIES = 3


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CacheAgainstAModel(RuleBasedStateMachine):
    """Any sequence of puts, reads, forgets and waiting answers as a plain ordered dict of (value, version, time)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cache: Cache[str, int] = Cache(ttl_s=TTL_S, max_entries=MAX_ENTRIES, clock=self.clock)
        self.model: OrderedDict[str, tuple[int, Hashable, float]] = OrderedDict()

    def _expected(self, key: str, version: Hashable) -> int | None:
        held = self.model.get(key)
        if held is None:
            return None
        value, stored_version, stored_at = held
        if self.clock.now - stored_at >= TTL_S:
            del self.model[key]
            return None
        if version is not ANY_VERSION and stored_version != version:
            return None
        self.model.move_to_end(key)
        return value

    @rule(key=KEYS, value=st.integers(), version=VERSIONS)
    def put(self, key: str, value: int, version: Hashable) -> None:
        self.cache.put(key, value, version=version)
        self.model.pop(key, None)
        self.model[key] = (value, version, self.clock.now)
        while len(self.model) > MAX_ENTRIES:
            self.model.popitem(last=False)

    @rule(key=KEYS)
    def get_any_version(self, key: str) -> None:
        assert self.cache.get(key) == self._expected(key, ANY_VERSION)

    @rule(key=KEYS, version=VERSIONS)
    def get_one_version(self, key: str, version: Hashable) -> None:
        assert self.cache.get(key, version=version) == self._expected(key, version)

    @rule(key=KEYS, version=VERSIONS, loaded=st.integers())
    def get_or_load(self, key: str, version: Hashable, loaded: int) -> None:
        expected = self._expected(key, version)
        if expected is None:
            self.put(key, loaded, version)
            expected = loaded
        assert self.cache.get_or_load(key, lambda: loaded, version=version) == expected

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.cache.forget(key)
        self.model.pop(key, None)

    @rule(version=VERSIONS)
    def forget_version(self, version: Hashable) -> None:
        self.cache.forget_version(version)
        for key in [k for k, held in self.model.items() if held[1] == version]:
            del self.model[key]

    @precondition(lambda self: self.model)
    @rule(seconds=st.sampled_from([0.5, 4.0, TTL_S]))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def never_holds_more_than_its_bound(self) -> None:
        assert len(self.cache) <= MAX_ENTRIES


TestCacheAgainstAModel = CacheAgainstAModel.TestCase
TestCacheAgainstAModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@given(key=KEYS, value=st.integers(), ttl_s=st.sampled_from([0.0, -1.0]))
def test_a_cache_without_lifetime_keeps_nothing(key: str, value: int, ttl_s: float) -> None:
    cache: Cache[str, int] = Cache(ttl_s=ttl_s)
    cache.put(key, value)
    assert cache.get(key) is None and len(cache) == 0
    assert cache.get_or_load(key, lambda: value + 1) == value + 1 and cache.get(key) is None


@given(first=VERSIONS, second=VERSIONS)
def test_a_new_version_replaces_the_old_one_and_readers_of_any_version_see_the_newest(
    first: Hashable, second: Hashable
) -> None:
    cache: Cache[str, str] = Cache(max_entries=1)
    cache.put("active", "old", version=first)
    assert cache.get_or_load("active", lambda: "new", version=second) == ("old" if first == second else "new")
    assert cache.get("active") == ("old" if first == second else "new")
    assert len(cache) == 1


def test_a_load_that_fails_remembers_nothing_and_the_next_caller_loads_again() -> None:
    cache: Cache[str, int] = Cache()

    def broken() -> int:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError, match="database away"):
        cache.get_or_load("k", broken)
    assert cache.get("k") is None
    assert cache.get_or_load("k", lambda: 3) == 3


def test_threads_that_miss_the_same_key_together_run_one_load() -> None:
    cache: Cache[str, int] = Cache()
    loads: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def slow_load() -> int:
        loads.append(1)
        started.set()
        release.wait(5)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", slow_load))) for _ in range(8)]
    threads[0].start()
    assert started.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [42] * 8 and len(loads) == 1


def test_different_keys_load_side_by_side() -> None:
    cache: Cache[str, str] = Cache()
    inside = threading.Barrier(2, timeout=5)

    def load(key: str) -> str:
        inside.wait()  # both loads must be running at once, or this times out
        return key

    threads = [threading.Thread(target=cache.get_or_load, args=(key, lambda key=key: load(key))) for key in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert cache.get("a") == "a" and cache.get("b") == "b"


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        Cache(max_entries=0)
