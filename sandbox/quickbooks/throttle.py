"""Intuit's throttles on the accounting API, per realm: 500 requests a minute, 10 at a time and
40 batch requests a minute (sliding windows on the monotonic clock). Over a limit the API
answers 429 with the 3001 ``ThrottleExceeded`` fault (Intuit sends no ``Retry-After``).

``GET|POST /_sandbox/limits`` reads and changes the limits at run time (tests lower them,
benchmarks turn throttling off); ``POST /_sandbox/reset`` restores the defaults. The limits
object also carries the upload size limit (100 MB), which tests lower the same way.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.quickbooks.models import UPLOAD_MAX_BYTES

WINDOW_SECONDS = 60.0


class Limits(BaseModel):
    """The body of ``GET|POST /_sandbox/limits`` (a POST may send any subset)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    requests_per_minute: int = Field(default=500, ge=1)
    concurrent: int = Field(default=10, ge=1)
    batch_per_minute: int = Field(default=40, ge=1)
    enabled: bool = True
    upload_max_bytes: int = Field(default=UPLOAD_MAX_BYTES, ge=1)


class Throttle:
    """Per-realm request windows and in-flight counts; thread-safe."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.limits = Limits()
        self._now = now
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = defaultdict(deque)
        self._batches: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        """Default limits and empty windows."""
        with self._lock:
            self.limits = Limits()
            self._requests.clear()
            self._batches.clear()
            self._in_flight.clear()

    def update(self, changes: dict[str, Any]) -> Limits:
        with self._lock:
            self.limits = Limits.model_validate({**self.limits.model_dump(), **changes})
            return self.limits

    def acquire(self, realm_id: str, batch: bool) -> bool:
        """Admit one request (False: throttled); an admitted one must be ``release``d."""
        with self._lock:
            limits = self.limits
            if not limits.enabled:
                self._in_flight[realm_id] += 1
                return True
            now = self._now()
            requests = _trim(self._requests[realm_id], now)
            batches = _trim(self._batches[realm_id], now)
            if (
                self._in_flight[realm_id] >= limits.concurrent
                or len(requests) >= limits.requests_per_minute
                or (batch and len(batches) >= limits.batch_per_minute)
            ):
                return False
            requests.append(now)
            if batch:
                batches.append(now)
            self._in_flight[realm_id] += 1
            return True

    def release(self, realm_id: str) -> None:
        with self._lock:
            self._in_flight[realm_id] = max(0, self._in_flight[realm_id] - 1)


def _trim(window: deque[float], now: float) -> deque[float]:
    while window and window[0] <= now - WINDOW_SECONDS:
        window.popleft()
    return window


class ThrottleMiddleware:
    """Outermost layer of the QuickBooks app: a throttled request never reaches the API (it is
    still counted by ``on_reject``); an admitted one holds a concurrency slot until answered,
    including any injected latency."""

    def __init__(
        self,
        app: ASGIApp,
        throttle: Throttle,
        realm_of: Callable[[str], str | None],
        on_reject: Callable[[Scope], Response],
    ) -> None:
        self.app = app
        self.throttle = throttle
        self.realm_of = realm_of
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        realm_id = self.realm_of(scope["path"]) if scope["type"] == "http" else None
        if realm_id is None:
            await self.app(scope, receive, send)
            return
        batch = scope["path"].rstrip("/").endswith("/batch")
        if not self.throttle.acquire(realm_id, batch):
            await self.on_reject(scope)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.throttle.release(realm_id)


def limits_routes(throttle: Throttle, on_change: Callable[[Limits], None]) -> list[BaseRoute]:
    """``GET|POST /_sandbox/limits``."""

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                on_change(throttle.update(changes))
            except ValidationError as exc:
                return JSONResponse({"error": json.loads(exc.json())}, status_code=400)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(throttle.limits.model_dump())

    return [Route("/_sandbox/limits", limits, methods=["GET", "POST"])]
