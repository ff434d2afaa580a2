"""The revbridge receiver: a small Starlette app in front of the flows.

``POST /qbo/webhooks`` takes QuickBooks webhook deliveries. It makes no API call: it checks the
size (over `MAX_BODY` → 400), the ``intuit-signature`` (forged or missing → 401), the body
(neither format → 400), drops replays, emits one Prefect event ``revbridge.qbo.change`` per new
Invoice / Payment / CreditMemo change (a deployment trigger starts the payments flow) and answers
200 at once: Intuit wants a 2xx within 3 seconds. A rejected delivery emits nothing; when
emitting fails the answer is 500 and the changes are forgotten, so Intuit's retry brings them
again. ``GET /healthz`` answers ``{"ok": true}``.

The same app serves ``POST /salesforce/outbound`` and ``POST /salesforce/events`` (Salesforce
pushes of Closed Won deals → ``revbridge.salesforce.closed_won``; `receiver.salesforce`) and
``POST /slack/interactions`` (the approval buttons; `receiver.slack`).

Run it with ``uvicorn --factory receiver.app:from_environment``: the verifier token comes from
``REVBRIDGE_QBO_VERIFIER_TOKEN`` or else the Prefect Secret block named by
``REVBRIDGE_QBO_VERIFIER_SECRET`` (default ``qbo-webhook-verifier-token``). It is never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, cast

from prefect.events import emit_event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from receiver.qbo import (
    EVENT_NAME,
    WATCHED_ENTITIES,
    MalformedDelivery,
    SeenChanges,
    parse_delivery,
    signature_ok,
)

MAX_BODY = 1_000_000  # bytes; a real delivery is a few KB
TOKEN_ENV = "REVBRIDGE_QBO_VERIFIER_TOKEN"
SECRET_ENV = "REVBRIDGE_QBO_VERIFIER_SECRET"
DEFAULT_SECRET = "qbo-webhook-verifier-token"

logger = logging.getLogger("revbridge.receiver")
Emit = Callable[..., Any]


def create_app(
    verifier_token: str,
    emit: Emit = emit_event,
    *,
    entities: Iterable[str] = WATCHED_ENTITIES,
    max_body: int = MAX_BODY,
    remember: int = 10_000,
    extra_routes: Iterable[BaseRoute] = (),
) -> Starlette:
    """The receiver app. ``emit`` is called like `prefect.events.emit_event` (keywords
    ``event``, ``resource``, ``payload``, ``id``, ``occurred``); tests pass a recorder.
    ``entities``: the QuickBooks entities whose changes become events; ``remember``: how many
    change keys the replay LRU keeps; ``extra_routes``: the Salesforce push and Slack
    interactivity routes (`receiver.salesforce`, `receiver.slack`)."""
    if not verifier_token:
        raise ValueError("the QuickBooks webhook verifier token is empty")
    watched = frozenset(entities)
    seen = SeenChanges(remember)

    async def qbo_webhooks(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return _error(400, f"body larger than {max_body} bytes")
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > max_body:
                return _error(400, f"body larger than {max_body} bytes")
        raw = bytes(body)
        if not signature_ok(raw, request.headers.get("intuit-signature"), verifier_token):
            logger.warning("QuickBooks webhook refused: bad or missing intuit-signature")
            return _error(401, "invalid intuit-signature")
        try:
            changes = parse_delivery(raw)
        except MalformedDelivery as exc:
            logger.warning("QuickBooks webhook refused: %s", exc)
            return _error(400, str(exc))
        fresh = [c for c in changes if c.entity in watched and seen.claim(c.key)]
        for n, change in enumerate(fresh):
            try:
                emit(
                    event=EVENT_NAME,
                    resource=change.resource,
                    payload=change.payload,
                    id=change.event_id,
                    occurred=change.occurred,
                )
            except Exception:
                logger.exception("emitting %s failed; asking QuickBooks to retry", change.key)
                seen.forget(c.key for c in fresh[n:])
                return _error(500, "could not queue the changes; retry later")
        logger.info("QuickBooks webhook: %s change(s), %s new event(s)", len(changes), len(fresh))
        return JSONResponse({"received": len(changes), "emitted": len(fresh)})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/qbo/webhooks", qbo_webhooks, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *extra_routes,
        ]
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def verifier_token_from_environment() -> str:
    """``REVBRIDGE_QBO_VERIFIER_TOKEN``, else the Prefect Secret block."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token
    from prefect.blocks.system import Secret

    secret = cast(Secret, Secret.load(os.environ.get(SECRET_ENV, DEFAULT_SECRET)))
    return str(secret.get())


def from_environment() -> Starlette:
    """The app as deployed (``uvicorn --factory receiver.app:from_environment``): QuickBooks
    webhooks always; Salesforce pushes when ``REVBRIDGE_SALESFORCE_ORG_ID`` is set; Slack
    approval buttons when a signing secret is configured."""
    from receiver.salesforce import routes_from_environment
    from receiver.slack import routes_from_config

    return create_app(
        verifier_token_from_environment(),
        extra_routes=[*routes_from_environment(), *routes_from_config()],
    )
