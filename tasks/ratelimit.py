"""In-process rate limiting per QuickBooks realm, so one worker stays inside Intuit's limits.

Intuit allows 500 requests/min and 10 concurrent requests per realm, and 40 batch requests/min.
On the embedded SQLite server a Prefect global concurrency slot per call is too slow (a database
write each), so one process limits itself here; with several workers on PostgreSQL, set
``REVBRIDGE_QBO_GLOBAL_LIMITS=1`` and the Prefect limits ``qbo-<realm>`` (rate) are taken too.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 500
    batch_per_minute: int = 40
    concurrent: int = 10
    window_seconds: float = 60.0


class _Window:
    """A sliding window: at most ``limit`` acquisitions in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.stamps: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] >= self.window:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.window - (now - self.stamps[0])


class RealmLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._requests = _Window(limits.requests_per_minute, limits.window_seconds)
        self._batches = _Window(limits.batch_per_minute, limits.window_seconds)
        self._slots = threading.BoundedSemaphore(limits.concurrent)

    @contextmanager
    def request(self, *, batch: bool = False) -> Iterator[None]:
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._requests.wait_time(now)
                if batch:
                    wait = max(wait, self._batches.wait_time(now))
                if wait <= 0:
                    self._requests.stamps.append(now)
                    if batch:
                        self._batches.stamps.append(now)
                    break
            time.sleep(min(wait, 1.0))
        with self._slots:
            yield


_limiters: dict[str, RealmLimiter] = {}
_limiters_lock = threading.Lock()
_limits = Limits()


def configure(limits: Limits) -> None:
    """Replace the limits for every realm (benchmarks and tests)."""
    global _limits
    with _limiters_lock:
        _limits = limits
        _limiters.clear()


@contextmanager
def qbo_slot(realm_id: str, *, batch: bool = False) -> Iterator[None]:
    with _limiters_lock:
        limiter = _limiters.setdefault(realm_id, RealmLimiter(_limits))
    with limiter.request(batch=batch):
        if os.environ.get("REVBRIDGE_QBO_GLOBAL_LIMITS") == "1":
            from prefect.concurrency.sync import rate_limit

            rate_limit(f"qbo-{realm_id}", strict=False)
        yield
