"""The base class of every emulator: control routes, call counting and fault injection.

A service subclass supplies its routes, its seed profiles and how its errors look; this class wraps
them in one ASGI app. Control endpoints live under ``/_sandbox/`` only:

- ``POST /_sandbox/reset``: back to the profile the service was started (or last seeded) with;
  clears calls and faults.
- ``POST /_sandbox/seed`` ``{"profile": "demo"|"empty"}``: clear and load that profile.
- ``GET|DELETE /_sandbox/calls``: counted API calls / clear the counters.
- ``GET|POST|DELETE /_sandbox/faults``: pending faults / add one (a FaultRule) / clear.
- ``GET|POST /_sandbox/clock`` ``{"now": ISO-8601 | null}``: read or pin the shared clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.core.calls import CallLog
from sandbox.core.clock import Clock
from sandbox.core.faults import FaultBook, FaultRule

PROFILES = ("demo", "empty")

log = logging.getLogger("sandbox")


class ConnectionDropped(Exception):
    """Raised after a response has started: the server then closes the connection mid-answer."""


class EmulatedService(ABC):
    name: ClassVar[str]
    scheme: ClassVar[str] = "http"

    def __init__(self, clock: Clock | None = None, profile: str = "demo") -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown seed profile {profile!r}; choose one of {PROFILES}")
        self.clock = clock or Clock()
        self.calls = CallLog()
        self.faults = FaultBook()
        self.profile = profile
        self.base_url = ""  # set by the server once it listens
        self.load(profile)

    # ---- what a service supplies -------------------------------------------------------------
    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The service's own API routes."""

    @abstractmethod
    def load(self, profile: str) -> None:
        """Drop all state and load a seed profile ("demo" or "empty")."""

    @abstractmethod
    def info(self, base_url: str, ca_bundle: str | None) -> dict[str, Any]:
        """This service's section of the info file (SANDBOX_CONTRACT.md)."""

    @abstractmethod
    def error_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        """An injected fault, rendered as the real service renders that status."""

    @abstractmethod
    def unauthorized_response(self) -> Response:
        """What the service answers for an expired or invalid token."""

    def not_found_response(self, request: Request, status: int) -> Response:
        """Unknown routes (404) and wrong methods (405) answer like the service does."""
        return JSONResponse({"error": "not found", "path": request.url.path}, status_code=status)

    def classify(self, method: str, path: str) -> tuple[str, str | None]:
        """(endpoint name for counting, tenant id) of an API request."""
        return path, None

    def observe(self, scope: Scope) -> None:  # noqa: B027 - optional hook
        """Called for every API request before it is handled (throttling, tracing)."""

    # ---- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.calls.clear()
        self.faults.clear()
        self.load(self.profile)

    def seed(self, profile: str) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown seed profile {profile!r}; choose one of {PROFILES}")
        self.profile = profile
        self.reset()

    def build_app(self) -> ASGIApp:
        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            if exc.status_code in (404, 405):
                return self.not_found_response(request, exc.status_code)
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

        app = Starlette(
            routes=self._control_routes() + self.routes(),
            exception_handlers={HTTPException: on_http_error},
        )
        return _SandboxMiddleware(app, self)

    # ---- control endpoints -------------------------------------------------------------------
    def _control_routes(self) -> list[BaseRoute]:
        async def reset(_: Request) -> Response:
            self.reset()
            return JSONResponse({"ok": True, "profile": self.profile})

        async def seed(request: Request) -> Response:
            body = await _json_or_empty(request)
            try:
                self.seed(str(body.get("profile", "demo")))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"ok": True, "profile": self.profile})

        async def calls(request: Request) -> Response:
            if request.method == "DELETE":
                self.calls.clear()
            return JSONResponse(self.calls.snapshot())

        async def faults(request: Request) -> Response:
            if request.method == "DELETE":
                self.faults.clear()
            elif request.method == "POST":
                body = await _json_or_empty(request)
                try:
                    rules = [FaultRule.model_validate(r) for r in _as_list(body)]
                except ValidationError as exc:
                    return JSONResponse({"error": json.loads(exc.json())}, status_code=400)
                for rule in rules:
                    self.faults.add(rule)
            return JSONResponse({"pending": self.faults.pending()})

        async def clock(request: Request) -> Response:
            if request.method == "POST":
                body = await _json_or_empty(request)
                raw = body.get("now")
                try:
                    self.clock.set(datetime.fromisoformat(raw) if raw else None)
                except (TypeError, ValueError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"now": self.clock.now().isoformat()})

        return [
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/_sandbox/seed", seed, methods=["POST"]),
            Route("/_sandbox/calls", calls, methods=["GET", "DELETE"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        ]


class _SandboxMiddleware:
    """Counts every API request and applies any pending fault before the service sees it."""

    def __init__(self, app: ASGIApp, service: EmulatedService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        endpoint, tenant = self.service.classify(method, path)
        self.service.calls.record(method, endpoint, tenant)
        rule = self.service.faults.take(method, path, tenant)
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.expired_token:
                await self.service.unauthorized_response()(scope, receive, send)
                return
            if rule.status is not None:
                response = self.service.error_response(rule.status, rule.body, rule.headers)
                await response(scope, receive, send)
                return
            if rule.drop_after_write:
                await self._drop_after_write(scope, receive, send)
                return
        self.service.observe(scope)
        await self.app(scope, receive, send)

    async def _drop_after_write(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the write happen, then start an answer and break the connection mid-body. The
        answer is always a 200 promising a body (a 204 has none to break), so every client sees
        a broken response rather than a success."""

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        raise ConnectionDropped(f"sandbox fault: connection dropped after {scope['path']}")


async def _json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {"items": data}


def _as_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "items" in body and isinstance(body["items"], list):
        return body["items"]
    if "faults" in body and isinstance(body["faults"], list):
        return body["faults"]
    return [body]
