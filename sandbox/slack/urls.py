"""Routes of the Slack emulator: the Web API under ``/api/`` and its own ``/_sandbox/`` controls."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from sandbox.slack.responses import SlackResponses


def routes(responses: SlackResponses) -> list[BaseRoute]:
    return [
        Route("/api/{method}", responses.api, methods=["GET", "POST"]),
        Route("/_sandbox/messages", responses.messages, methods=["GET", "DELETE"]),
        Route("/_sandbox/limits", responses.limits, methods=["GET", "POST", "DELETE"]),
    ]
