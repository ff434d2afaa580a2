"""blocks_from_info / save_all: blocks built from the sandbox info file."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.client.orchestration import get_client as get_prefect_client

from blocks import (
    QuickBooksConnection,
    SalesforceCredentials,
    SlackConnection,
    blocks_from_info,
    save_all,
)
from blocks.quickbooks import token_lock_name

INFO: dict[str, Any] = {
    "salesforce": {
        "instance_url": "https://127.0.0.1:4431",
        "token_url": "https://127.0.0.1:4431/services/oauth2/token",
        "api_version": "62.0",
        "client_id": "3MVG9sandbox",
        "client_secret": "sf-client-secret",
        "username": "integration@acme-analytics.example",
        "password": "sf-password",
        "security_token": "sf-token",
        "ca_bundle": "/tmp/ca.pem",
    },
    "quickbooks": {
        "discovery_url": "http://127.0.0.1:4432/.well-known/openid_sandbox_configuration",
        "api_base": "http://127.0.0.1:4432/v3",
        "client_id": "ABsandbox",
        "client_secret": "qbo-client-secret",
        "webhook_verifier_token": "verifier",
        "realms": {
            "us": {"realm_id": "9341453172461001", "refresh_token": "rt-us"},
            "eu": {"realm_id": "9341453172461002", "refresh_token": "rt-eu"},
        },
    },
    "slack": {
        "base_url": "http://127.0.0.1:4433/api/",
        "token": "xoxb-sandbox",
        "signing_secret": "slack-signing-secret",
    },
}


def test_blocks_from_info() -> None:
    blocks = blocks_from_info(INFO)
    sf = blocks.salesforce
    assert isinstance(sf, SalesforceCredentials)
    assert sf.auth_flow == "password" and sf.domain == "login"
    assert sf.login_url_override == "https://127.0.0.1:4431"
    assert sf.ca_bundle == "/tmp/ca.pem"
    assert sf.security_token is not None and sf.security_token.get_secret_value() == "sf-token"
    assert set(blocks.quickbooks) == {"us", "eu"}
    eu = blocks.quickbooks["eu"]
    assert isinstance(eu, QuickBooksConnection)
    assert eu.realm_id == "9341453172461002"
    assert eu.refresh_token.get_secret_value() == "rt-eu"
    assert eu.environment == INFO["quickbooks"]["discovery_url"]
    assert eu.api_base == "http://127.0.0.1:4432/v3"
    assert isinstance(blocks.slack, SlackConnection)
    assert blocks.slack.base_url == "http://127.0.0.1:4433/api/"
    assert blocks.slack.default_channel == "#revops-alerts"
    assert blocks.slack.approvals_channel == "#finance-approvals"


@pytest.mark.parametrize("flow", ["soap", "client_credentials"])
def test_blocks_from_info_other_salesforce_flows(flow: Any) -> None:
    sf = blocks_from_info(INFO, salesforce_auth_flow=flow).salesforce
    assert sf.auth_flow == flow
    # client credentials needs a My Domain; its logins are sent to the emulator all the same
    assert (sf.domain != "login") == (flow == "client_credentials")


@pytest.mark.usefixtures("prefect_api")
def test_save_all_under_stable_names_with_token_locks() -> None:
    names = save_all(blocks_from_info(INFO), prefix="Sandbox Test")
    assert names == {
        "salesforce": "sandbox-test-salesforce",
        "quickbooks-us": "sandbox-test-quickbooks-us",
        "quickbooks-eu": "sandbox-test-quickbooks-eu",
        "slack": "sandbox-test-slack",
    }
    assert save_all(blocks_from_info(INFO), prefix="Sandbox Test") == names  # idempotent
    sf = SalesforceCredentials.load("sandbox-test-salesforce")
    assert sf.password is not None and sf.password.get_secret_value() == "sf-password"
    us = QuickBooksConnection.load("sandbox-test-quickbooks-us")
    assert us.refresh_token.get_secret_value() == "rt-us"
    slack = SlackConnection.load("sandbox-test-slack")
    assert slack.token.get_secret_value() == "xoxb-sandbox"
    with get_prefect_client(sync_client=True) as client:
        for realm in INFO["quickbooks"]["realms"].values():
            lock = client.read_global_concurrency_limit_by_name(token_lock_name(realm["realm_id"]))
            assert lock.limit == 1


def test_every_client_against_a_running_sandbox() -> None:
    try:
        from sandbox.core.server import Sandbox

        sandbox = Sandbox(profile="demo")
    except ImportError as exc:
        pytest.skip(f"the Salesforce and QuickBooks emulators are not importable yet: {exc}")
    from quickbooks.objects.customer import Customer

    with sandbox:
        blocks = blocks_from_info(sandbox.info())
        try:
            assert blocks.salesforce.get_client().query("SELECT Id FROM User")["totalSize"] > 0
        finally:
            blocks.salesforce.close()
        for connection in blocks.quickbooks.values():
            assert Customer.all(max_results=1, qb=connection.get_client()) is not None
        slack = blocks.slack.get_client()
        assert slack.chat_postMessage(channel=blocks.slack.default_channel, text="hello")["ok"]
