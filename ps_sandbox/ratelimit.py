"""Request-rate limits the sandbox enforces itself, the way the platforms throttle callers.

A token bucket per key (a bearer token, a tenant): ``limit`` requests per ``window`` seconds,
refilled continuously, with a burst of ``limit``. A request that finds the bucket empty is
refused with the seconds until the next token, for the platform's ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def acquire(self, key: str, limit: int, window: float) -> int | None:
        """Take one token for ``key``: ``None`` when allowed, else whole seconds to wait (>= 1).

        ``limit`` <= 0 turns the limit off.
        """
        return self.take(key, limit, window)[0]

    def take(self, key: str, limit: int, window: float) -> tuple[int | None, int]:
        """``acquire`` plus the whole tokens left afterwards, for the platforms that report them
        (HubSpot's ``X-HubSpot-RateLimit-Remaining``)."""
        if limit <= 0:
            return None, 0
        rate = limit / window
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(limit), now))
            tokens = min(float(limit), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None, int(tokens - 1)
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rate)), 0
