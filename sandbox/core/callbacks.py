"""What the emulators share when they call the app back — QuickBooks webhooks, Salesforce
Outbound Messages, Slack interactivity: the registered endpoint, a timed POST to it, and the
control route that registers, shows and forgets it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


class CallbackRegistration(BaseModel):
    """The app's endpoint, as a service's settings page takes it: an absolute http(s) URL."""

    model_config = ConfigDict(extra="forbid")

    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        url = httpx.URL(v)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be an absolute http(s) URL")
        return v


@dataclass
class Attempt:
    """One POST to the app: when, its status (None: no answer), how long it took, and why it
    does not count as delivered (None: it does)."""

    at: datetime
    status: int | None
    elapsed_ms: int
    error: str | None = None


def post_timed(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    at: datetime,
) -> tuple[Attempt, httpx.Response | None]:
    """POST ``body``; a transport error or a non-2xx answer is the attempt's error."""
    started = time.monotonic()
    try:
        response = client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return Attempt(at, None, elapsed, f"{type(exc).__name__}: {exc}"), None
    elapsed = int((time.monotonic() - started) * 1000)
    error = None if response.is_success else f"HTTP {response.status_code}"
    return Attempt(at, response.status_code, elapsed, error), response


class Dispatcher(Protocol):
    def register(self, registration: Any) -> None: ...

    def reset(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


def registration_route(
    path: str, dispatcher: Dispatcher, model: type[CallbackRegistration]
) -> list[BaseRoute]:
    """``path``: POST registers the endpoint (400 with pydantic's errors when the body is not
    a ``model``), GET shows it with the delivery log, DELETE forgets both."""

    async def endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            dispatcher.reset()
        elif request.method == "POST":
            try:
                registration = model.model_validate_json(await request.body() or b"{}")
            except ValidationError as exc:
                errors = [
                    {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)
                ]
                return JSONResponse({"error": errors}, status_code=400)
            dispatcher.register(registration)
        return JSONResponse(dispatcher.snapshot())

    return [Route(path, endpoint, methods=["GET", "POST", "DELETE"])]
