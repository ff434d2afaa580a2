"""``SlackEmulator``: the Slack Web API as ``slack_sdk.WebClient(token, base_url)`` calls it."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from sandbox.core.clock import Clock
from sandbox.core.service import EmulatedService
from sandbox.slack import seed, urls
from sandbox.slack.exceptions import SlackError, fault_error_code
from sandbox.slack.interactions import Interactivity, interaction_routes
from sandbox.slack.models import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, SlackBackend
from sandbox.slack.responses import SlackResponses


class SlackEmulator(EmulatedService):
    """One Slack workspace with one bot (see the Slack section of sandbox/README.md)."""

    name: ClassVar[str] = "slack"
    scheme: ClassVar[str] = "http"

    def __init__(self, clock: Clock | None = None, profile: str = "demo") -> None:
        self.backend = SlackBackend(clock or Clock())
        self.interactivity = Interactivity(self.backend, SIGNING_SECRET)
        super().__init__(self.backend.clock, profile)

    def routes(self) -> list[BaseRoute]:
        return urls.routes(SlackResponses(self.backend)) + interaction_routes(self.interactivity)

    def load(self, profile: str) -> None:
        seed.load(self.backend, profile)
        self.interactivity.reset()

    def info(self, base_url: str, ca_bundle: str | None) -> dict[str, Any]:
        return {
            "base_url": base_url + "/api/",
            "token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "team_id": TEAM_ID,
            "bot_user_id": BOT_USER_ID,
        }

    def error_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        if body is None:
            err = SlackError(fault_error_code(status), status=status)
            if status == 429 and not any(k.lower() == "retry-after" for k in headers):
                headers = {**headers, "Retry-After": "1"}
            return JSONResponse(err.body(), status_code=status, headers=headers)
        if isinstance(body, str):
            return Response(body, status_code=status, headers=headers, media_type="text/plain")
        return Response(
            json.dumps(body), status_code=status, headers=headers, media_type="application/json"
        )

    def unauthorized_response(self) -> Response:
        return SlackError("invalid_auth").response()

    def not_found_response(self, request: Request, status: int) -> Response:
        extra = {"req_method": request.url.path}
        return SlackError("unknown_method", status=status, extra=extra).response()

    def classify(self, method: str, path: str) -> tuple[str, str | None]:
        if path.startswith("/api/"):
            return path.removeprefix("/api/"), TEAM_ID
        return path, TEAM_ID
