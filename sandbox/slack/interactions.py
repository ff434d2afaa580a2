"""Interactivity: a person clicks a button of a message and Slack POSTs it to the app.

As Slack: the app registers one Request URL (``POST /_sandbox/interactivity`` ``{"url"}``); a
click on a button of a stored message (``POST /_sandbox/interactions/click`` ``{channel, ts,
action_id, user}``) becomes a ``block_actions`` payload — the clicking user, the channel, the
container, the whole message, ``trigger_id``, ``response_url`` and the clicked action (its
``action_id``, ``block_id``, ``value``, ``action_ts``) — sent form-encoded as
``payload=<url-encoded JSON>`` with ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` =
``v0=`` + hex HMAC-SHA256(signing secret, ``v0:{timestamp}:{raw body}``). Slack waits 3 s for a
2xx; the control route answers with the app's status, body and elapsed time.

Timestamps are wall-clock seconds (the receiver compares them with its own clock; a pinned
sandbox clock would make every click look late). Tests can make a click ``forge`` (signed with
another secret), ``age_seconds`` old, or re-send a logged delivery byte for byte
(``POST /_sandbox/interactions/replay`` ``{"id"}``): what an attacker would try.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.core.callbacks import CallbackRegistration
from sandbox.slack.exceptions import SlackError
from sandbox.slack.models import APP_ID, TEAM_DOMAIN, TEAM_ID, SlackBackend

ACK_TIMEOUT = 3.0  # seconds Slack waits for the app's 2xx
# The deprecated verification token Slack still puts in every payload (apps must not rely on it).
VERIFICATION_TOKEN = "SbxVerifTok7REVBRDG0000"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
MAX_LOGGED = 200
FORGED_SECRET = "not-the-signing-secret"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Slack-Signature`` of a raw body sent at ``timestamp`` (Unix seconds)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Registration(CallbackRegistration):
    """The body of ``POST /_sandbox/interactivity``: the app's interactivity Request URL."""

    timeout: float = Field(
        default=ACK_TIMEOUT, gt=0, le=60, description="seconds the answer may take (Slack: 3)"
    )


class Click(BaseModel):
    """The body of ``POST /_sandbox/interactions/click``."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, description="channel id or name of the message")
    ts: str = Field(min_length=1, description="the message's ts")
    action_id: str = Field(min_length=1, description="the button clicked")
    user: str = Field(min_length=1, description="the clicking user's id")
    forge: bool = Field(default=False, description="sign with a wrong secret")
    age_seconds: int = Field(default=0, description="send a timestamp this many seconds old")


@dataclass
class Delivery:
    """One POST to the Request URL, kept to be shown and replayed."""

    id: str
    url: str
    body: bytes
    headers: dict[str, str]
    action_id: str
    user: str
    channel: str
    message_ts: str
    replay_of: str | None = None
    status: int | None = None
    elapsed_ms: int = 0
    error: str | None = None
    answer: str = ""

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "action_id": self.action_id,
            "user": self.user,
            "channel": self.channel,
            "message_ts": self.message_ts,
            "replay_of": self.replay_of,
            "status": self.status,
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
            "answer": self.answer,
            "timestamp": self.headers["X-Slack-Request-Timestamp"],
        }


@dataclass
class Interactivity:
    """The app's Request URL and the log of what was sent there."""

    backend: SlackBackend
    signing_secret: str
    registration: Registration | None = None
    log: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.registration = None
            self.log.clear()

    def register(self, registration: Registration) -> None:
        with self._lock:
            self.registration = registration

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "ok": True,
                "registration": self.registration.model_dump() if self.registration else None,
                "deliveries": [d.snapshot() for d in self.log],
            }

    def find(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            return next((d for d in self.log if d.id == delivery_id), None)

    # ---- building a click --------------------------------------------------------------------
    def build(self, click: Click) -> Delivery:
        """The signed request Slack sends for ``click``; `SlackError` when it cannot happen."""
        with self._lock:
            registration = self.registration
        if registration is None:
            raise SlackError("no_request_url", status=409)
        channel, message, user = self.backend.interaction_target(
            click.channel, click.ts, click.user
        )
        block_id, element = _button(message, click.action_id)
        now = time.time()
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": user["id"],
                "username": user["name"],
                "name": user["name"],
                "team_id": TEAM_ID,
            },
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel["id"],
                "is_ephemeral": False,
            },
            "trigger_id": f"{int(now * 1000)}.{TEAM_ID[1:]}.{secrets.token_hex(16)}",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": channel,
            "message": message,
            "state": {"values": {}},
            "response_url": f"https://hooks.slack.com/actions/{TEAM_ID}/{int(now)}/"
            + secrets.token_urlsafe(18),
            "actions": [
                {
                    "action_id": click.action_id,
                    "block_id": block_id,
                    "text": element.get("text"),
                    "value": element.get("value"),
                    **({"style": element["style"]} if element.get("style") else {}),
                    "type": "button",
                    "action_ts": f"{now:.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
        timestamp = str(int(now) - click.age_seconds)
        secret = FORGED_SECRET if click.forge else self.signing_secret
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret, timestamp, body),
        }
        return Delivery(
            id=str(uuid.uuid4()),
            url=registration.url,
            body=body,
            headers=headers,
            action_id=click.action_id,
            user=click.user,
            channel=channel["id"],
            message_ts=message["ts"],
        )

    def replay(self, delivery_id: str) -> Delivery:
        """The logged delivery again, byte for byte, to the current Request URL."""
        with self._lock:
            registration = self.registration
        original = self.find(delivery_id)
        if original is None:
            raise SlackError("delivery_not_found", status=404)
        if registration is None:
            raise SlackError("no_request_url", status=409)
        return Delivery(
            id=str(uuid.uuid4()),
            url=registration.url,
            body=original.body,
            headers=dict(original.headers),
            action_id=original.action_id,
            user=original.user,
            channel=original.channel,
            message_ts=original.message_ts,
            replay_of=original.id,
        )

    async def send(self, delivery: Delivery) -> Delivery:
        """POST it (asynchronously: the app may call this emulator back before answering)."""
        timeout = self.registration.timeout if self.registration else ACK_TIMEOUT
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(follow_redirects=False) as client:
                answer = await client.post(
                    delivery.url, content=delivery.body, headers=delivery.headers, timeout=timeout
                )
        except httpx.TimeoutException:
            delivery.error = f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        else:
            delivery.status = answer.status_code
            delivery.answer = answer.text[:2000]
            if not answer.is_success:
                delivery.error = f"HTTP {answer.status_code}"
        delivery.elapsed_ms = int((time.monotonic() - started) * 1000)
        if delivery.error is None and delivery.elapsed_ms > timeout * 1000:
            delivery.error = f"answered after {delivery.elapsed_ms} ms"
        with self._lock:
            self.log.append(delivery)
            del self.log[:-MAX_LOGGED]
        return delivery


def _button(message: dict[str, Any], action_id: str) -> tuple[str, dict[str, Any]]:
    """(block_id, element) of the message's button with ``action_id``."""
    for n, block in enumerate(message.get("blocks") or []):
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = block.get("elements") or []
        elif block.get("type") == "section" and block.get("accessory"):
            elements = [block["accessory"]]
        for element in elements:
            if element.get("type") == "button" and element.get("action_id") == action_id:
                return str(block.get("block_id") or f"b{n}"), element
    raise SlackError("action_not_found", status=404)


def interaction_routes(interactivity: Interactivity) -> list[BaseRoute]:
    """``/_sandbox/interactivity`` (GET shows, POST registers, DELETE forgets the Request URL
    and the log) and ``/_sandbox/interactions/click`` | ``/replay``."""

    async def registration(request: Request) -> Response:
        if request.method == "DELETE":
            interactivity.reset()
        elif request.method == "POST":
            try:
                interactivity.register(
                    Registration.model_validate_json(await request.body() or b"{}")
                )
            except ValidationError as exc:
                return _invalid(exc)
        return JSONResponse(interactivity.snapshot())

    async def click(request: Request) -> Response:
        try:
            delivery = interactivity.build(Click.model_validate_json(await request.body() or b"{}"))
        except ValidationError as exc:
            return _invalid(exc)
        except SlackError as err:
            return _control_error(err)
        return JSONResponse(
            {"ok": True, "delivery": (await interactivity.send(delivery)).snapshot()}
        )

    async def replay(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            delivery = interactivity.replay(str(body["id"]))
        except (ValueError, TypeError, KeyError):
            return JSONResponse({"ok": False, "error": 'expected {"id": ...}'}, status_code=400)
        except SlackError as err:
            return _control_error(err)
        return JSONResponse(
            {"ok": True, "delivery": (await interactivity.send(delivery)).snapshot()}
        )

    return [
        Route("/_sandbox/interactivity", registration, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/interactions/click", click, methods=["POST"]),
        Route("/_sandbox/interactions/replay", replay, methods=["POST"]),
    ]


def _control_error(err: SlackError) -> JSONResponse:
    """A click Slack would not send (no such message, button or user; not a member)."""
    status = err.status if err.status != 200 else (403 if err.code == "not_in_channel" else 404)
    return JSONResponse({"ok": False, "error": err.code}, status_code=status)


def _invalid(exc: ValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
    return JSONResponse({"ok": False, "error": "invalid_arguments", "errors": errors}, 400)
