"""SlackConnection.get_client() against the Slack emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect import flow, task
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from blocks import SlackConnection
from blocks.sandbox import slack_from_info
from sandbox.slack import SlackEmulator
from tests.support import control_client, served_info


@pytest.fixture(scope="module")
def slack_info() -> Iterator[dict[str, Any]]:
    with served_info(SlackEmulator(profile="demo")) as info:
        yield info


@pytest.fixture
def control(slack_info: dict[str, Any]) -> Iterator[httpx.Client]:
    with control_client(slack_info["control"]) as client:
        yield client


def test_get_client_posts_to_the_configured_api(
    slack_info: dict[str, Any], control: httpx.Client
) -> None:
    block = slack_from_info(slack_info)
    client = block.get_client()
    assert isinstance(client, WebClient)
    assert block.get_client() is client  # built once per block
    answer = client.chat_postMessage(channel=block.default_channel, text="Invoice 1042 created")
    assert answer["ok"]
    (message,) = control.get("/_sandbox/messages", params={"channel": "revops-alerts"}).json()[
        "messages"
    ]
    assert message["text"] == "Invoice 1042 created"
    assert block.signing_secret is not None
    assert block.signing_secret.get_secret_value() == slack_info["signing_secret"]


def test_rate_limited_calls_are_retried_transparently(
    slack_info: dict[str, Any], control: httpx.Client
) -> None:
    control.post(
        "/_sandbox/faults",
        json={
            "path": "chat.postMessage",
            "status": 429,
            "headers": {"Retry-After": "0"},
            "count": 2,
        },
    ).raise_for_status()
    client = slack_from_info(slack_info).get_client()
    assert client.chat_postMessage(channel="#finance-approvals", text="after two 429s")["ok"]
    calls = control.get("/_sandbox/calls").json()["calls"]
    assert {c["endpoint"]: c["count"] for c in calls} == {"chat.postMessage": 3}


def test_rate_limit_retries_are_bounded(slack_info: dict[str, Any], control: httpx.Client) -> None:
    control.post(
        "/_sandbox/faults",
        json={"path": "auth.test", "status": 429, "headers": {"Retry-After": "0"}, "count": 5},
    ).raise_for_status()
    block = SlackConnection(
        token=slack_info["token"], base_url=slack_info["base_url"], max_rate_limit_retries=1
    )
    with pytest.raises(SlackApiError) as exc:
        block.get_client().auth_test()
    assert exc.value.response.status_code == 429


@pytest.mark.usefixtures("control")
def test_wrong_token_fails_without_echoing_it(slack_info: dict[str, Any]) -> None:
    block = SlackConnection(token="xoxb-wrong-token-123", base_url=slack_info["base_url"])
    with pytest.raises(SlackApiError) as exc:
        block.get_client().auth_test()
    assert exc.value.response["error"] == "invalid_auth"
    assert "xoxb-wrong-token-123" not in str(exc.value)


def test_base_url_gets_its_trailing_slash() -> None:
    block = SlackConnection(token="xoxb-x", base_url="http://127.0.0.1:9/api")
    assert block.base_url == "http://127.0.0.1:9/api/"
    assert block.get_client().base_url == "http://127.0.0.1:9/api/"


@pytest.mark.usefixtures("prefect_api", "control")
def test_block_as_a_task_parameter_keeps_its_client(slack_info: dict[str, Any]) -> None:
    block = slack_from_info(slack_info)
    client = block.get_client()

    @task
    def post(connection: SlackConnection, text: str) -> tuple[str, bool]:
        answer = connection.get_client().chat_postMessage(
            channel=connection.default_channel, text=text
        )
        return str(answer["ts"]), connection.get_client() is client

    @flow
    def notify(connection: SlackConnection) -> tuple[str, bool]:
        return post(connection, "from a task")

    ts, same_client = notify(block)
    assert ts and same_client
