"""Slack Web API errors, rendered as Slack renders them.

Almost every Slack error is HTTP 200 with ``{"ok": false, "error": "<code>"}``; argument and
Block Kit problems add ``errors`` and ``response_metadata.messages`` (each prefixed ``[ERROR]``).
Only rate limiting (429 + ``Retry-After``) and unknown methods (404) use another status.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class SlackError(Exception):
    """A Slack API error: ``code`` is the ``error`` string Slack answers with."""

    def __init__(
        self,
        code: str,
        *,
        messages: list[str] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.messages = messages or []
        self.status = status
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.code, **self.extra}
        if self.messages:
            body["errors"] = list(self.messages)
            body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in self.messages]}
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid_arguments(*missing: str) -> SlackError:
    """A required argument is absent (Slack names each one in ``response_metadata``)."""
    messages = [f"missing required field: {m}" for m in missing]
    return SlackError("invalid_arguments", messages=messages)


def rate_limited(retry_after: int) -> SlackError:
    return SlackError(
        "ratelimited", status=429, headers={"Retry-After": str(max(0, int(retry_after)))}
    )


def unknown_method(method: str) -> SlackError:
    return SlackError("unknown_method", status=404, extra={"req_method": method})


# The error code Slack-style bodies use for an injected fault of a given HTTP status.
FAULT_ERRORS: dict[int, str] = {
    400: "invalid_arguments",
    401: "invalid_auth",
    403: "invalid_auth",
    404: "unknown_method",
    429: "ratelimited",
}


def fault_error_code(status: int) -> str:
    return FAULT_ERRORS.get(status, "internal_error" if status >= 500 else "request_failed")
