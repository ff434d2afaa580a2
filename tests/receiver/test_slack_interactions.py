"""The Slack interactivity receiver: clicks from the sandbox's Slack emulator, signed as Slack
signs them; forged, late, replayed and unauthorized clicks change nothing and are logged."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk import WebClient

from receiver.slack import ResumeResult, ResumeStatus, slack_interaction_routes
from revbridge.config import ApprovalConfig
from revbridge.slack_approval import (
    APPROVE_ACTION,
    BUTTONS_BLOCK,
    OUTCOME_BLOCK,
    REJECT_ACTION,
    ButtonValue,
    request_blocks,
)
from sandbox.slack import SIGNING_SECRET, SlackEmulator
from sandbox.slack.interactions import signature
from tests.sandbox.slack.test_interactions import serve_app
from tests.support import serving

PRIYA, LIAM, AVA = "U07PNAIR01", "U07LOBRIEN", "U07AVACHEN"
APPROVERS = ["priya.nair@acme-analytics.example", "liam.obrien@acme-analytics.example"]
DEAL = "0065g00000Stark1AAA"
CHANNEL = "C07FINAPPR"


@dataclass
class Resumer:
    """Stands in for resume_approval: records each resume, answers ``status``."""

    status: ResumeStatus = "resumed"
    delay: float = 0.0
    fail: bool = False
    calls: list[tuple[uuid.UUID, str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, run_id: uuid.UUID, deal: str, run_input: dict[str, Any]) -> Any:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise httpx.ConnectError("Prefect API unreachable")
        self.calls.append((run_id, deal, run_input))
        return ResumeResult(self.status, "the run is Completed" if self.status != "resumed" else "")


@dataclass
class Setup:
    control: httpx.Client
    slack: WebClient
    resumer: Resumer
    url: str  # the receiver's interactivity URL
    skew: list[float]  # seconds added to the receiver's clock

    def ask(self, run_id: uuid.UUID | None = None) -> tuple[str, uuid.UUID]:
        run_id = run_id or uuid.uuid4()
        text = "*Approval needed*: Stark Industries — USD 41,000.00"
        blocks = request_blocks(text, ButtonValue(run_id, DEAL))
        ts = self.slack.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)["ts"]
        return str(ts), run_id

    def click(self, ts: str, user: str = PRIYA, action: str = APPROVE_ACTION, **kw: Any) -> Any:
        body = {"channel": CHANNEL, "ts": ts, "action_id": action, "user": user, **kw}
        answer = self.control.post("/_sandbox/interactions/click", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["delivery"]

    def message(self, ts: str) -> dict[str, Any]:
        rows = self.control.get("/_sandbox/messages", params={"channel": CHANNEL}).json()
        return next(m for m in rows["messages"] if m["ts"] == ts and not m["ephemeral_user"])

    def ephemeral(self, user: str) -> list[str]:
        rows = self.control.get("/_sandbox/messages", params={"channel": CHANNEL}).json()
        return [m["text"] for m in rows["messages"] if m["ephemeral_user"] == user]

    def post(self, body: bytes, timestamp: str | None = None, secret: str = SIGNING_SECRET) -> Any:
        timestamp = timestamp or str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret, timestamp, body),
        }
        return httpx.post(self.url, content=body, headers=headers)


def block_ids(message: dict[str, Any]) -> list[str]:
    return [b.get("block_id") for b in message["blocks"] or []]


@pytest.fixture
def setup() -> Iterator[Setup]:
    emulator = SlackEmulator(profile="demo")
    with serving(emulator) as server, httpx.Client(base_url=server.base_url) as control:
        info = emulator.info(server.base_url, None)
        slack = WebClient(token=info["token"], base_url=info["base_url"])
        resumer, skew = Resumer(), [0.0]
        routes = slack_interaction_routes(
            info["signing_secret"],
            slack,
            ApprovalConfig(approvers=APPROVERS),
            resumer,
            clock=lambda: time.time() + skew[0],
            ack_seconds=0.5,
        )
        with serve_app(routes) as base:
            url = base + "/slack/interactions"
            control.post("/_sandbox/interactivity", json={"url": url}).raise_for_status()
            yield Setup(control, slack, resumer, url, skew)


def test_an_approver_click_resumes_the_run_with_the_form_input(setup: Setup) -> None:
    ts, run_id = setup.ask()
    delivery = setup.click(ts)
    assert delivery["status"] == 200 and delivery["error"] is None
    assert setup.resumer.calls == [
        (run_id, DEAL, {"decision": "Approve", "approver": APPROVERS[0], "comment": "via Slack"})
    ]
    message = setup.message(ts)
    assert block_ids(message) == ["approval-request", OUTCOME_BLOCK]  # the buttons are gone
    assert "Approved by priya.nair@acme-analytics.example" in json.dumps(message["blocks"])
    assert message["text"].startswith("*Approval needed*") and message["edited"]


def test_reject_by_another_approver(setup: Setup) -> None:
    ts, _ = setup.ask()
    assert setup.click(ts, LIAM, REJECT_ACTION)["status"] == 200
    assert setup.resumer.calls[0][2] == {
        "decision": "Reject",
        "approver": APPROVERS[1],
        "comment": "via Slack",
    }
    assert "Rejected by liam.obrien" in json.dumps(setup.message(ts)["blocks"])


def test_a_click_from_someone_not_an_approver_changes_nothing(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    ts, _ = setup.ask()
    with caplog.at_level(logging.WARNING, "revbridge.receiver.slack"):
        assert setup.click(ts, AVA)["status"] == 200
    assert setup.resumer.calls == []
    assert BUTTONS_BLOCK in block_ids(setup.message(ts)) and not setup.message(ts)["edited"]
    assert setup.ephemeral(AVA) == [
        "Only the configured approvers can decide this; the request still waits."
    ]
    assert "U07AVACHEN (ava.chen@acme-analytics.example) is not an approver" in caplog.text


def test_forged_clicks_are_refused(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    ts, _ = setup.ask()
    with caplog.at_level(logging.WARNING, "revbridge.receiver.slack"):
        forged = setup.click(ts, forge=True)
        assert forged["status"] == 401 and "invalid X-Slack-Signature" in forged["answer"]
        # a real click's body, altered after signing (someone else's user id)
        genuine = setup.click(ts, AVA)
        sent = setup.control.get("/_sandbox/interactivity").json()["deliveries"][-1]
        assert sent["id"] == genuine["id"]
        tampered = _delivery_body(setup, genuine["id"]).replace(AVA.encode(), PRIYA.encode())
        assert setup.post(tampered, secret="guessed-secret").status_code == 401
        unsigned = httpx.post(setup.url, content=tampered, headers={"X-Slack-Signature": "v0=00"})
        assert unsigned.status_code == 401
    assert setup.resumer.calls == []
    assert BUTTONS_BLOCK in block_ids(setup.message(ts))
    assert caplog.text.count("(forged)") == 2 and "not within 5 minutes" in caplog.text


def _delivery_body(setup: Setup, delivery_id: str) -> bytes:
    """The raw body the emulator sent (re-sent through the replay route to a recorder)."""
    captured: list[bytes] = []

    async def grab(request: Any) -> Any:
        from starlette.responses import Response

        captured.append(await request.body())
        return Response()

    from starlette.routing import Route

    with serve_app([Route("/grab", grab, methods=["POST"])]) as base:
        setup.control.post("/_sandbox/interactivity", json={"url": base + "/grab"})
        setup.control.post("/_sandbox/interactions/replay", json={"id": delivery_id})
    setup.control.post("/_sandbox/interactivity", json={"url": setup.url})
    return captured[0]


def test_late_clicks_are_refused(setup: Setup) -> None:
    ts, _ = setup.ask()
    assert setup.click(ts, age_seconds=301)["status"] == 401
    setup.skew[0] = 400.0  # the receiver's clock is ahead: a fresh click looks late
    assert setup.click(ts)["status"] == 401
    setup.skew[0] = 0.0
    assert setup.resumer.calls == []
    assert setup.click(ts, age_seconds=200)["status"] == 200  # within the 5 minutes
    assert len(setup.resumer.calls) == 1


def test_a_replayed_click_is_ignored(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    ts, _ = setup.ask()
    first = setup.click(ts)
    with caplog.at_level(logging.WARNING, "revbridge.receiver.slack"):
        again = setup.control.post("/_sandbox/interactions/replay", json={"id": first["id"]})
    assert again.json()["delivery"]["status"] == 200
    assert len(setup.resumer.calls) == 1 and "(replay)" in caplog.text


def test_a_decided_run_is_answered_already_decided(setup: Setup) -> None:
    ts, _ = setup.ask()
    setup.resumer.status = "not_waiting"
    assert setup.click(ts, LIAM)["status"] == 200
    assert setup.ephemeral(LIAM) == ["This approval was already decided; nothing changed."]
    assert BUTTONS_BLOCK in block_ids(setup.message(ts))


def test_the_ack_comes_within_the_budget_and_the_work_finishes(setup: Setup) -> None:
    ts, _ = setup.ask()
    setup.resumer.delay = 1.5
    delivery = setup.click(ts)
    assert delivery["status"] == 200 and delivery["elapsed_ms"] < 1500
    deadline = time.monotonic() + 10
    while OUTCOME_BLOCK not in block_ids(setup.message(ts)):
        assert time.monotonic() < deadline, "the message was never updated"
        time.sleep(0.05)
    assert len(setup.resumer.calls) == 1


def test_prefect_down_is_a_500_and_the_clicker_is_told(setup: Setup) -> None:
    ts, _ = setup.ask()
    setup.resumer.fail = True
    delivery = setup.click(ts)
    assert delivery["status"] == 500 and delivery["error"] == "HTTP 500"
    assert setup.ephemeral(PRIYA) == ["Sorry, your decision could not be recorded. Try again."]
    assert BUTTONS_BLOCK in block_ids(setup.message(ts))


def test_bad_bodies_and_other_interactions(setup: Setup) -> None:
    assert setup.post(b"\xff\xfe not UTF-8").status_code == 401  # slack_sdk's verifier refuses it
    assert setup.post(b"payload=%7Bnot+json").status_code == 400
    assert setup.post(b"nothing=here").status_code == 400
    view = urlencode({"payload": json.dumps({"type": "view_submission", "trigger_id": "1"})})
    assert setup.post(view.encode()).status_code == 200
    other = {
        "type": "block_actions",
        "trigger_id": "2",
        "user": {"id": PRIYA},
        "channel": {"id": CHANNEL},
        "message": {"ts": "1.0"},
        "actions": [{"action_id": "someone_elses_button", "value": "x"}],
    }
    assert setup.post(urlencode({"payload": json.dumps(other)}).encode()).status_code == 200
    other["trigger_id"] = "3"
    other["actions"] = [{"action_id": APPROVE_ACTION, "value": '{"run": "not-a-uuid"}'}]
    assert setup.post(urlencode({"payload": json.dumps(other)}).encode()).status_code == 200
    assert setup.resumer.calls == []


def test_the_route_needs_a_signing_secret() -> None:
    with pytest.raises(ValueError, match="signing secret"):
        slack_interaction_routes("", WebClient(), ApprovalConfig())
