"""api.auth.ratelimit: a per-key token bucket in memory (one process; a key's burst is one minute's allowance)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# The rate an API key gets unless it is made with another (or exempt).
DEFAULT_RATE_PER_MINUTE = 600


@dataclass
class _Bucket:
    tokens: float
    updated_at_s: float


class RateLimiter:
    """Token buckets keyed by API key id: `rate_per_minute` tokens refill evenly, the bucket holds one minute's worth."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: int, rate_per_minute: int) -> float:
        """Take one token: 0.0 when allowed, else the seconds until the next token."""
        capacity = float(max(1, rate_per_minute))
        per_second = capacity / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(tokens=capacity, updated_at_s=now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated_at_s) * per_second)
            bucket.updated_at_s = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / per_second


def retry_after_header(wait_s: float) -> str:
    """The Retry-After value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait_s)))
