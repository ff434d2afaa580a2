"""Rate limiting per QuickBooks realm, so revbridge stays inside Intuit's limits.

Intuit allows 500 requests/min and 10 concurrent requests per realm, and 40 batch requests/min.
One process limits itself here (sliding windows and a semaphore, no I/O): on the embedded SQLite
server a Prefect global concurrency slot per call would cost a database write each.

Several processes (two workers, or two flow runs of one worker: each flow run is a process)
share a realm's limits through the Prefect API when ``REVBRIDGE_QBO_GLOBAL_LIMITS=1``: every call
also takes a slot of the Prefect rate limits ``qbo-<realm>-requests`` (and, for a batch request,
``qbo-<realm>-batch``), which this module creates on first use (`ensure_global_limits`). A Prefect
rate limit is a leaky bucket (``limit`` slots, freed at ``slot_decay_per_second``), so any 60 s
admit at most ``limit + 60 * decay`` calls; the buckets are sized to stay one call under Intuit's
sliding windows. The 10-concurrent limit stays per process: a flow run calls each realm from one
thread, so N processes have at most N calls in flight per realm.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

GLOBAL_LIMITS_ENV = "REVBRIDGE_QBO_GLOBAL_LIMITS"


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 500
    batch_per_minute: int = 40
    concurrent: int = 10
    window_seconds: float = 60.0

    def buckets(self) -> dict[str, tuple[int, float]]:
        """Prefect rate limit per kind ("requests", "batch"): (limit, slot_decay_per_second).
        A tenth of the window's allowance may go at once; the rest decays evenly, one call short
        of the window (a call's flight time can move it across the window's edge)."""
        buckets: dict[str, tuple[int, float]] = {}
        for kind, allowed in (
            ("requests", self.requests_per_minute),
            ("batch", self.batch_per_minute),
        ):
            burst = max(1, allowed // 10)
            buckets[kind] = (burst, max(allowed - burst - 1, 1) / self.window_seconds)
        return buckets


def global_limit_name(realm_id: str, kind: str) -> str:
    """The Prefect rate limit of one realm's ``kind`` of calls ("requests" or "batch")."""
    return f"qbo-{realm_id}-{kind}"


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
_ensured: set[str] = set()  # realms whose Prefect rate limits this process has created


def configure(limits: Limits) -> None:
    """Replace the limits for every realm (benchmarks and tests)."""
    global _limits
    with _limiters_lock:
        _limits = limits
        _limiters.clear()
        _ensured.clear()


def ensure_global_limits(realm_id: str, limits: Limits | None = None) -> None:
    """Create (or resize) the realm's Prefect rate limits ``qbo-<realm>-requests`` and
    ``qbo-<realm>-batch`` for ``limits`` (the configured ones by default)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for kind, (limit, decay) in (limits or _limits).buckets().items():
            client.upsert_global_concurrency_limit_by_name(
                global_limit_name(realm_id, kind), limit, slot_decay_per_second=decay
            )


def _take_global_slot(realm_id: str, *, batch: bool) -> None:
    from prefect.concurrency.sync import rate_limit

    with _limiters_lock:
        missing = realm_id not in _ensured
        _ensured.add(realm_id)
    if missing:
        try:
            ensure_global_limits(realm_id)
        except BaseException:
            with _limiters_lock:
                _ensured.discard(realm_id)
            raise
    names = [global_limit_name(realm_id, "requests")]
    if batch:
        names.append(global_limit_name(realm_id, "batch"))
    rate_limit(names, strict=True)  # a limit that vanished fails loudly instead of not limiting


@contextmanager
def qbo_slot(realm_id: str, *, batch: bool = False) -> Iterator[None]:
    """Hold one of the realm's call slots for the duration of one QuickBooks call."""
    with _limiters_lock:
        limiter = _limiters.setdefault(realm_id, RealmLimiter(_limits))
    with limiter.request(batch=batch):
        if os.environ.get(GLOBAL_LIMITS_ENV) == "1":
            _take_global_slot(realm_id, batch=batch)
        yield
