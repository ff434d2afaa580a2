"""Interactivity: a click on a stored message's button is POSTed, signed, as Slack sends it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.slack.interactions import VERIFICATION_TOKEN
from sandbox.slack.models import APP_ID, TEAM_ID
from tests.sandbox.slack.conftest import SlackSandbox

PRIYA = "U07PNAIR01"
BUTTONS = [
    {"type": "section", "block_id": "ask", "text": {"type": "mrkdwn", "text": "Approve?"}},
    {
        "type": "actions",
        "block_id": "choose",
        "elements": [
            {
                "type": "button",
                "action_id": "yes",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": '{"run":"r1"}',
                "style": "primary",
            },
            {"type": "button", "action_id": "no", "text": {"type": "plain_text", "text": "No"}},
        ],
    },
]


@contextmanager
def serve_app(routes: list[BaseRoute]) -> Iterator[str]:
    """A Starlette app on a loopback port (uvicorn in a thread); yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class App:
    """The Slack app's side: records what arrives; answers ``status`` after ``delay`` s."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    async def handle(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        if self.delay:
            time.sleep(self.delay)  # a slow app (blocks its own loop, as a sync handler would)
        return PlainTextResponse("seen", status_code=self.status)

    def payload(self, n: int = -1) -> dict[str, Any]:
        return json.loads(parse_qs(self.requests[n][1].decode())["payload"][0])


@pytest.fixture
def app(slack: SlackSandbox) -> Iterator[App]:
    recorder = App()
    with serve_app([Route("/slack/interactions", recorder.handle, methods=["POST"])]) as url:
        answer = slack.control.post(
            "/_sandbox/interactivity", json={"url": url + "/slack/interactions"}
        )
        assert answer.status_code == 200, answer.text
        yield recorder


def post_buttons(slack: SlackSandbox) -> str:
    return str(
        slack.client().chat_postMessage(
            channel="#finance-approvals", text="Approve?", blocks=BUTTONS
        )["ts"]
    )


def click(slack: SlackSandbox, ts: str, action: str = "yes", **extra: Any) -> dict[str, Any]:
    body = {"channel": "C07FINAPPR", "ts": ts, "action_id": action, "user": PRIYA, **extra}
    answer = slack.control.post("/_sandbox/interactions/click", json=body)
    return {"status": answer.status_code, **answer.json()}


def test_a_click_is_a_signed_block_actions_payload(slack: SlackSandbox, app: App) -> None:
    ts = post_buttons(slack)
    result = click(slack, ts)
    assert result["ok"] and result["delivery"]["status"] == 200
    assert result["delivery"]["answer"] == "seen" and result["delivery"]["error"] is None
    headers, body = app.requests[0]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    # the real client library's verifier accepts it with the workspace signing secret
    assert SignatureVerifier(slack.info["signing_secret"]).is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    payload = app.payload()
    assert payload["type"] == "block_actions" and payload["api_app_id"] == APP_ID
    assert payload["token"] == VERIFICATION_TOKEN
    assert payload["user"]["id"] == PRIYA and payload["user"]["team_id"] == TEAM_ID
    assert payload["channel"] == {"id": "C07FINAPPR", "name": "finance-approvals"}
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C07FINAPPR",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == ts and payload["message"]["blocks"] == BUTTONS
    assert payload["trigger_id"] and payload["response_url"].startswith("https://hooks.slack.com/")
    (action,) = payload["actions"]
    assert action["action_id"] == "yes" and action["block_id"] == "choose"
    assert action["value"] == '{"run":"r1"}' and action["type"] == "button"
    assert action["style"] == "primary" and float(action["action_ts"]) > 0
    # each click is a new interaction
    click(slack, ts, "no")
    assert app.payload()["trigger_id"] != payload["trigger_id"]
    assert "value" in app.payload()["actions"][0] and app.payload()["actions"][0]["value"] is None


def test_forged_late_and_replayed_clicks(slack: SlackSandbox, app: App) -> None:
    ts = post_buttons(slack)
    verifier = SignatureVerifier(slack.info["signing_secret"])
    click(slack, ts, forge=True)
    assert not verifier.is_valid_request(app.requests[-1][1], app.requests[-1][0])
    click(slack, ts, age_seconds=301)
    headers, body = app.requests[-1]
    assert int(headers["x-slack-request-timestamp"]) <= time.time() - 301
    assert not verifier.is_valid_request(body, headers)  # too old, though correctly signed
    assert (
        verifier.generate_signature(timestamp=headers["x-slack-request-timestamp"], body=body)
        == headers["x-slack-signature"]
    )

    first = click(slack, ts)["delivery"]
    replayed = slack.control.post("/_sandbox/interactions/replay", json={"id": first["id"]}).json()
    assert replayed["delivery"]["replay_of"] == first["id"]
    assert app.requests[-1] == app.requests[-2]  # byte for byte, same headers
    log = slack.control.get("/_sandbox/interactivity").json()
    assert [d["replay_of"] for d in log["deliveries"]][-1] == first["id"]
    missing = slack.control.post("/_sandbox/interactions/replay", json={"id": "nope"})
    assert missing.status_code == 404 and missing.json()["error"] == "delivery_not_found"


def test_clicks_slack_would_not_send(slack: SlackSandbox, app: App) -> None:
    ts = post_buttons(slack)
    plain = slack.client().chat_postMessage(channel="#finance-approvals", text="no buttons")["ts"]
    assert click(slack, "1.000001")["error"] == "message_not_found"
    assert click(slack, str(plain))["error"] == "action_not_found"
    assert click(slack, ts, "maybe") == {"status": 404, "ok": False, "error": "action_not_found"}
    assert click(slack, ts, user="U0NOBODY01")["error"] == "user_not_found"
    assert click(slack, ts, user="U07REVBRDG")["error"] == "user_not_found"  # bots do not click
    bad = slack.control.post("/_sandbox/interactions/click", json={"channel": "C07FINAPPR"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_arguments"
    assert app.requests == []
    bad_url = slack.control.post("/_sandbox/interactivity", json={"url": "ftp://x"})
    assert bad_url.status_code == 400


def test_the_app_has_three_seconds_and_errors_are_logged(slack: SlackSandbox, app: App) -> None:
    ts = post_buttons(slack)
    app.status = 500
    assert click(slack, ts)["delivery"]["error"] == "HTTP 500"
    app.status, app.delay = 200, 0.6
    slack.control.post(
        "/_sandbox/interactivity",
        json={"url": slack.control.get("/_sandbox/interactivity").json()["registration"]["url"],
              "timeout": 0.3},
    )  # fmt: skip
    late = click(slack, ts)["delivery"]
    assert late["status"] is None and late["error"] == "no answer within 0.3 s"


def test_no_request_url_and_reseeding_forgets_it(slack: SlackSandbox) -> None:
    ts = post_buttons(slack)
    assert click(slack, ts) == {"status": 409, "ok": False, "error": "no_request_url"}
    slack.control.post("/_sandbox/interactivity", json={"url": "http://127.0.0.1:9/x"})
    refused = click(slack, ts)["delivery"]
    assert refused["status"] is None and "ConnectError" in refused["error"]
    slack.control.post("/_sandbox/seed", json={"profile": "demo"})
    assert slack.control.get("/_sandbox/interactivity").json() == {
        "ok": True,
        "registration": None,
        "deliveries": [],
    }
