"""Per-API token buckets, so a sweep stays under each API's rate limit however many threads it runs.

OSS documents no per-action QPS for the bucket-configuration calls tlsguard makes; its published limit is per
account: 2,000 QPS for sequential and 10,000 QPS for non-sequential access, beyond which requests are throttled
(https://www.alibabacloud.com/help/en/oss/user-guide/0004-00000302). The defaults keep the sum of tlsguard's
read rates (3 x 600/s) under the lower 2,000 figure and writes far below; all are configurable in the policy's
``rate_limits``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Requests per second per OSS API action (fleet-wide, per process).
DEFAULT_RATES: dict[str, float] = {
    "ListBuckets": 10.0,
    "GetBucketTags": 600.0,
    "GetBucketHttpsConfig": 600.0,
    "PutBucketHttpsConfig": 100.0,
    "GetBucketPolicy": 600.0,
    "PutBucketPolicy": 100.0,
    "DeleteBucketPolicy": 10.0,
    "GetBucketEncryption": 600.0,
    "PutBucketEncryption": 100.0,
    "PutObject": 100.0,
    "GetObject": 200.0,
    "ListObjectsV2": 100.0,
    "DeleteObject": 100.0,
}
#: Every OSS action the adapters pass through the limiter: the names a policy's ``rate_limits`` may set.
RATE_LIMITED_OPERATIONS: tuple[str, ...] = (*DEFAULT_RATES, "ListCname", "PutCname")
#: The rates a policy may set. Below one call per second a sweep of a few hundred targets outlives a function's
#: timeout waiting for tokens; above the account-wide 10,000 QPS (URL above) a limit no longer limits anything.
MIN_RATE = 1.0
MAX_RATE = 10_000.0


class TokenBucket:
    """Token bucket: ``rate`` tokens per second, bursts up to ``burst``; ``acquire`` blocks until one is free."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive finite number, not {rate!r}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10.0)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token (possibly going into debt) and return how long the caller must wait for it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a token is available; returns the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class RateLimiter:
    """One token bucket per API action; actions without a configured rate are not limited."""

    def __init__(self, rates: Mapping[str, float] | None = None, share: float = 1.0) -> None:
        """``share``: the fraction of every rate this limiter may use (one of several worker processes)."""
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        merged = dict(DEFAULT_RATES)
        merged.update(rates or {})
        self._buckets = {name: TokenBucket(rate * share) for name, rate in merged.items()}
        self.waited = 0.0

    def acquire(self, operation: str) -> None:
        bucket = self._buckets.get(operation)
        if bucket is not None:
            self.waited += bucket.acquire()
