"""Thin HTTP handlers: read a Web API call the way Slack does, hand it to the backend.

Slack accepts GET or POST on ``/api/<method>``; arguments come from the query string, a form body
(``application/x-www-form-urlencoded`` or ``multipart/form-data``) or a JSON body. The token comes
from ``Authorization: Bearer`` or a ``token`` query/form argument, never from a JSON body (Slack
ignores it there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.slack.exceptions import SlackError, unknown_method
from sandbox.slack.models import RateLimit, SlackBackend

Handler = Callable[[SlackBackend, str, dict[str, Any]], dict[str, Any]]

METHODS: dict[str, Handler] = {
    "auth.test": lambda b, _viewer, _args: b.auth_test(),
    "chat.postMessage": lambda b, viewer, args: b.post_message(viewer, args),
    "chat.update": lambda b, viewer, args: b.update_message(viewer, args),
    "chat.postEphemeral": lambda b, viewer, args: b.post_ephemeral(viewer, args),
    "chat.getPermalink": lambda b, viewer, args: b.permalink(viewer, args),
    "conversations.list": lambda b, viewer, args: b.list_conversations(viewer, args),
    "conversations.info": lambda b, viewer, args: b.conversation_info(viewer, args),
    "conversations.join": lambda b, viewer, args: b.join(viewer, args),
    "users.lookupByEmail": lambda b, _viewer, args: b.lookup_by_email(args),
    "users.info": lambda b, _viewer, args: b.user_info(args),
}


class SlackResponses:
    def __init__(self, backend: SlackBackend) -> None:
        self.backend = backend

    async def api(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            handler = METHODS.get(method)
            if handler is None:
                raise unknown_method(method)
            args, form_token = await _read_args(request)
            viewer = self.backend.authenticate(_bearer(request) or form_token).id
            self.backend.limits.check(method)
            body = handler(self.backend, viewer, args)
        except SlackError as err:
            return err.response()
        return JSONResponse({"ok": True, **body})

    # ---- /_sandbox/ controls -----------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.backend.clear_messages()
            return JSONResponse({"ok": True, "messages": []})
        channel = request.query_params.get("channel")
        return JSONResponse({"ok": True, "messages": self.backend.messages(channel)})

    async def limits(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.backend.limits.clear()
        elif request.method == "POST":
            try:
                rules = _limit_rules(json.loads(await request.body() or b"{}"))
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
            for method, rule in rules:
                self.backend.limits.configure(method, rule)
        return JSONResponse({"ok": True, "limits": self.backend.limits.snapshot()})


async def _read_args(request: Request) -> tuple[dict[str, Any], str | None]:
    """(arguments, token given as an argument) of one call."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif request.method == "POST":
        raw = await request.body()
        if content_type == "application/json":
            if raw.strip():
                try:
                    data = json.loads(raw)
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(data, dict):
                    raise SlackError("json_not_object")
                token_in_query = args.get("token")
                args.update(data)
                args.pop("token", None)
                if token_in_query:
                    args["token"] = token_in_query
        elif raw.strip():
            try:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise SlackError("invalid_form_data") from None
    token = args.pop("token", None)
    return args, str(token) if token else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _limit_rules(body: Any) -> list[tuple[str, RateLimit | None]]:
    """``{"method", "limit", "window_seconds"}`` or a list of them; a null limit removes one."""
    items = body if isinstance(body, list) else body.get("limits", [body])
    rules: list[tuple[str, RateLimit | None]] = []
    for item in items:
        method = str(item["method"])
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
        limit = item.get("limit")
        if limit is None:
            rules.append((method, None))
            continue
        window = float(item.get("window_seconds", 60))
        if int(limit) < 0 or window <= 0:
            raise ValueError("limit must be >= 0 and window_seconds > 0")
        rules.append((method, RateLimit(int(limit), window)))
    return rules
