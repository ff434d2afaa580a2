"""Slack interactivity: the Approve / Reject buttons of an approval request.

``POST /slack/interactions`` is the Slack app's interactivity Request URL. Slack POSTs each click
as ``payload=<url-encoded JSON>`` (a ``block_actions`` payload) signed with the app's signing
secret: ``X-Slack-Signature`` = ``v0=`` + hex HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:
{raw body}``. The route, in order:

1. refuses a request whose timestamp is missing or more than 5 minutes from now (late: 401),
   or whose signature does not match (forged: 401; checked with slack_sdk's `SignatureVerifier`);
2. ignores one it has seen (the same signature or ``trigger_id``: a replay; 200, nothing done);
3. reads the clicked Approve / Reject button, whose value names the approval flow run and deal;
4. looks the clicking user's email up (``users.info``; the bot needs ``users:read.email``) and
   refuses anyone not in ``approval.approvers`` (an ephemeral note says so; the run keeps waiting);
5. resumes the waiting flow run with the input the Prefect UI form gives (decision, approver's
   email, comment "via Slack") and marks the message decided (``chat.update``, buttons gone). A
   run no longer waiting gets an ephemeral "already decided".

Every refusal is logged (logger ``revbridge.receiver.slack``) and changes nothing. Slack wants a
2xx within 3 s: the answer comes after the work or after ``ack_seconds``, whichever is first (the
work then finishes in the background).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from blocks.loading import load_block
from blocks.slack import SlackConnection
from receiver.qbo import SeenChanges
from revbridge.config import ApprovalConfig, load_config
from revbridge.ids import to_18
from revbridge.slack_approval import (
    DECISIONS,
    VIA_SLACK,
    ButtonValue,
    decided_blocks,
    decision_line,
)

PATH = "/slack/interactions"
MAX_AGE = 60 * 5  # seconds: Slack's replay window for X-Slack-Request-Timestamp
ACK_SECONDS = 2.5  # answer by then even if the work is not done (Slack waits 3 s)
MAX_BODY = 1_000_000
SIGNING_SECRET_ENV = "REVBRIDGE_SLACK_SIGNING_SECRET"
CONFIG_ENV = "REVBRIDGE_CONFIG"

logger = logging.getLogger("revbridge.receiver.slack")

ResumeStatus = Literal["resumed", "not_waiting", "not_found", "refused"]


@dataclass(frozen=True)
class ResumeResult:
    status: ResumeStatus
    detail: str = ""


# (flow run id, deal id, run input) → what happened; tests pass a recorder.
Resume = Callable[[UUID, str, dict[str, Any]], Awaitable[ResumeResult]]


async def resume_approval(
    flow_run_id: UUID, opportunity_id: str, run_input: dict[str, Any]
) -> ResumeResult:
    """Resume the deal's paused approval run with ``run_input``, as the Prefect UI form does
    (`prefect.flow_runs.resume_flow_run`), telling a run that is not waiting any more apart."""
    async with get_client() as client:
        try:
            run = await client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return ResumeResult("not_found", f"no flow run {flow_run_id}")
        if not _same_deal(run.parameters.get("opportunity_id"), opportunity_id):
            return ResumeResult("not_found", f"flow run {flow_run_id} is not {opportunity_id}'s")
        if run.state is None or not run.state.is_paused():
            state = run.state.name if run.state else "no state"
            return ResumeResult("not_waiting", f"the run is {state}")
        result = await client.resume_flow_run(flow_run_id, run_input=run_input)
    reason = str(getattr(result.details, "reason", "") or "")
    if result.status == SetStateStatus.ACCEPT:
        return ResumeResult("resumed")
    if result.status == SetStateStatus.ABORT:
        return ResumeResult("not_waiting", reason or "the run is not paused")
    return ResumeResult("refused", reason or str(result.status))


def _same_deal(parameter: Any, opportunity_id: str) -> bool:
    try:
        return to_18(str(parameter)) == to_18(opportunity_id)
    except ValueError:
        return False


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


@dataclass(frozen=True)
class _Click:
    """A verified click on one of our buttons."""

    user_id: str
    channel_id: str
    message: dict[str, Any]
    decision: Literal["Approve", "Reject"]
    value: ButtonValue


def slack_interaction_routes(
    signing_secret: str,
    slack: WebClient,
    approval: ApprovalConfig,
    resume: Resume = resume_approval,
    *,
    clock: Callable[[], float] = time.time,
    ack_seconds: float = ACK_SECONDS,
    max_body: int = MAX_BODY,
    remember: int = 10_000,
    path: str = PATH,
) -> list[BaseRoute]:
    """The ``POST /slack/interactions`` route. ``slack``: the bot's client (users.info,
    chat.update, chat.postEphemeral); ``approval``: who may decide; ``resume``: resumes the
    approval run (`resume_approval`); ``clock``: Unix seconds now (tests pin it)."""
    if not signing_secret:
        raise ValueError("the Slack signing secret is empty")
    verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
    seen = SeenChanges(remember)
    background: set[asyncio.Task[bool]] = set()

    async def interactions(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return _error(413, f"body larger than {max_body} bytes")
        body = await request.body()
        if len(body) > max_body:
            return _error(413, f"body larger than {max_body} bytes")
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        sent = request.headers.get("x-slack-signature", "")
        if not timestamp.isdigit() or abs(clock() - int(timestamp)) > MAX_AGE:
            logger.warning(
                "Slack click refused: timestamp %r missing or not within 5 minutes", timestamp
            )
            return _error(401, "stale or missing X-Slack-Request-Timestamp")
        if not _signed(verifier, body, timestamp, sent):
            logger.warning("Slack click refused: X-Slack-Signature does not match (forged)")
            return _error(401, "invalid X-Slack-Signature")
        if not seen.claim(f"sig:{sent}"):
            logger.warning("Slack click ignored: this exact request was seen before (replay)")
            return Response(status_code=200)
        try:
            payload = _payload(body)
        except ValueError as exc:
            logger.warning("Slack click refused: %s", exc)
            return _error(400, str(exc))
        click = _click(payload)
        if click is None:
            return Response(status_code=200)
        if not seen.claim(f"trigger:{payload.get('trigger_id')}"):
            logger.warning("Slack click ignored: trigger_id seen before (replay)")
            return Response(status_code=200)
        work = asyncio.create_task(_handle(click))
        done, _ = await asyncio.wait({work}, timeout=ack_seconds)
        if not done:
            background.add(work)
            work.add_done_callback(background.discard)
            logger.info("Slack click acknowledged; its work goes on in the background")
            return Response(status_code=200)
        if not work.result():
            return _error(500, "the decision could not be recorded; try again")
        return Response(status_code=200)

    async def _handle(click: _Click) -> bool:
        """Decide on the click; False when that failed (Prefect or Slack down)."""
        try:
            await _decide(click)
        except Exception:
            logger.exception("Slack click by %s could not be handled", click.user_id)
            await _ephemeral(click, "Sorry, your decision could not be recorded. Try again.")
            return False
        return True

    async def _decide(click: _Click) -> None:
        email = await run_in_threadpool(_email_of, slack, click.user_id)
        deal = click.value.opportunity_id
        if not approval.is_approver(email):
            logger.warning(
                "Slack click refused: %s (%s) is not an approver; %s not %s",
                click.user_id,
                email or "no email",
                deal,
                "approved" if click.decision == "Approve" else "rejected",
            )
            await _ephemeral(
                click, "Only the configured approvers can decide this; the request still waits."
            )
            return
        assert email is not None
        run_input = {"decision": click.decision, "approver": email, "comment": VIA_SLACK}
        result = await resume(click.value.flow_run_id, deal, run_input)
        if result.status == "resumed":
            logger.info("Slack: %s decided %s for %s", email, click.decision, deal)
            line = decision_line(click.decision, email, VIA_SLACK)
            text = str(click.message.get("text") or "Approval request")
            await run_in_threadpool(
                lambda: slack.chat_update(
                    channel=click.channel_id,
                    ts=str(click.message.get("ts")),
                    text=text,
                    blocks=decided_blocks(click.message.get("blocks"), text, line),
                )
            )
        elif result.status == "not_waiting":
            logger.info("Slack click by %s on %s: already decided (%s)", email, deal, result.detail)
            await _ephemeral(click, "This approval was already decided; nothing changed.")
        else:
            logger.warning("Slack click by %s on %s not applied: %s", email, deal, result.detail)
            await _ephemeral(click, f"Nothing changed: {result.detail}")

    async def _ephemeral(click: _Click, text: str) -> None:
        try:
            await run_in_threadpool(
                lambda: slack.chat_postEphemeral(
                    channel=click.channel_id, user=click.user_id, text=text
                )
            )
        except (SlackApiError, OSError) as exc:
            logger.warning("could not tell %s: %s", click.user_id, exc)

    return [Route(path, interactions, methods=["POST"])]


def _signed(verifier: SignatureVerifier, body: bytes, timestamp: str, sent: str) -> bool:
    try:
        return bool(sent) and verifier.is_valid(body, timestamp, sent)
    except (UnicodeDecodeError, ValueError):
        return False


def _payload(body: bytes) -> dict[str, Any]:
    """The JSON of the ``payload`` form field."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise ValueError(f"not an interaction payload: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("not an interaction payload: payload is not an object")
    return payload


def _click(payload: dict[str, Any]) -> _Click | None:
    """The Approve / Reject click of a ``block_actions`` payload; None for anything else."""
    if payload.get("type") != "block_actions":
        logger.info("Slack interaction of type %r ignored", payload.get("type"))
        return None
    user = payload.get("user") or {}
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get(
        "channel_id"
    )
    message = payload.get("message")
    for action in payload.get("actions") or []:
        decision = DECISIONS.get(str(action.get("action_id")))
        if decision is None:
            continue
        try:
            value = ButtonValue.decode(action.get("value"))
        except ValueError as exc:
            logger.warning("Slack click ignored: %s", exc)
            return None
        if not user.get("id") or not channel or not isinstance(message, dict):
            logger.warning("Slack click ignored: no user, channel or message in the payload")
            return None
        return _Click(str(user["id"]), str(channel), message, decision, value)
    logger.info("Slack block_actions without an approval button ignored")
    return None


def _email_of(slack: WebClient, user_id: str) -> str | None:
    """The user's email (``users.info``); None when Slack does not show it."""
    try:
        user = slack.users_info(user=user_id)["user"]
    except SlackApiError as exc:
        logger.warning("users.info %s failed: %s", user_id, exc.response.get("error"))
        return None
    email = (user.get("profile") or {}).get("email")
    return str(email) if email and not user.get("deleted") else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def routes_from_config(config_path: str | None = None) -> list[BaseRoute]:
    """The route as deployed: the config's Slack block (its client and signing secret, or
    ``REVBRIDGE_SLACK_SIGNING_SECRET``) and approvers. No signing secret: no route (warned)."""
    config = load_config(config_path or os.environ.get(CONFIG_ENV, "config/demo.yaml"))
    connection = load_block(SlackConnection, config.slack.block)
    secret = os.environ.get(SIGNING_SECRET_ENV) or (
        connection.signing_secret.get_secret_value() if connection.signing_secret else ""
    )
    if not secret:
        logger.warning("no Slack signing secret: %s is not served", PATH)
        return []
    return slack_interaction_routes(secret, connection.get_client(), config.approval)
