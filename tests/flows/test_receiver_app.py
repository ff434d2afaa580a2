"""The receiver as deployed (`receiver.app.from_environment`) serves every push source the
environment configures, and only those."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from receiver.app import from_environment
from sandbox.core.server import Sandbox
from sandbox.demo_company import ORG_ID


def _paths(monkeypatch: pytest.MonkeyPatch, **env: str) -> set[str]:
    monkeypatch.setenv("REVBRIDGE_QBO_VERIFIER_TOKEN", "verifier")
    monkeypatch.setenv("REVBRIDGE_CONFIG", "config/demo.yaml")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {r.path for r in from_environment().routes if isinstance(r, Route)}


def test_every_configured_source_is_served(fresh: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _paths(
        monkeypatch,
        REVBRIDGE_SALESFORCE_ORG_ID=ORG_ID,
        REVBRIDGE_SALESFORCE_OUTBOUND_TOKEN="url-token",
        REVBRIDGE_SALESFORCE_CALLOUT_SECRET="callout-secret",
    )
    assert paths == {
        "/qbo/webhooks",
        "/healthz",
        "/salesforce/outbound",
        "/salesforce/events",
        "/slack/interactions",  # the sandbox Slack block carries a signing secret
    }


def test_without_a_salesforce_org_id_no_push_route(
    fresh: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVBRIDGE_SALESFORCE_ORG_ID", raising=False)
    assert "/salesforce/outbound" not in _paths(monkeypatch)
