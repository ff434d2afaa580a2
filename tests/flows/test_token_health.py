"""The daily token health flow against the sandbox: an expiring refresh token is announced once
a day; a dead QuickBooks connection and a refused Salesforce login post their exact fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prefect.variables import Variable
from pydantic import SecretStr

from blocks.sandbox import SandboxBlocks
from blocks.token_journal import STATE_DIR_ENV
from flows.token_health import STATE_VARIABLE, token_health
from sandbox.core.server import Sandbox
from tests.flows.conftest import slack_messages

CHANNEL = "#revops-alerts"
US, EU = "9341453172461001", "9341453172461002"


@pytest.fixture
def checked(fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    Variable.unset(STATE_VARIABLE)
    yield fresh


def _tokens(sandbox: Sandbox, realm_id: str, action: str, **extra: int) -> None:
    url = f"{sandbox.servers['quickbooks'].base_url}/_sandbox/tokens"
    httpx.post(url, json={"realm_id": realm_id, "action": action, **extra}).raise_for_status()


def _token_alerts(sandbox: Sandbox) -> list[str]:
    return [
        m["text"]
        for m in slack_messages(sandbox, CHANNEL)
        if "QuickBooks realm" in m["text"] or "Salesforce" in m["text"]
    ]


def test_an_expiring_refresh_token_is_announced_once_a_day(checked: Sandbox) -> None:
    _tokens(checked, US, "connection_expires_in", seconds=10 * 86400)
    now = datetime.now(UTC)
    state = token_health(now=now, return_state=True)
    assert state.is_completed()
    [alert] = _token_alerts(checked)
    assert "*us*" in alert and "expires in 10 days" in alert
    assert "`python -m deployments.authorize --realm us`" in alert

    assert token_health(now=now + timedelta(hours=2), return_state=True).is_completed()
    assert len(_token_alerts(checked)) == 1  # not again the same day
    assert token_health(now=now + timedelta(days=1), return_state=True).is_completed()
    texts = _token_alerts(checked)
    assert len(texts) == 2 and "expires in 9 days" in texts[-1]


def test_dead_connections_post_how_to_fix_them(checked: Sandbox, blocks: SandboxBlocks) -> None:
    _tokens(checked, EU, "revoke")
    wrong = blocks.salesforce.model_copy(update={"password": SecretStr("Wr0ng-Pa55w0rd")})
    wrong.save("sandbox-salesforce", overwrite=True)  # `fresh` saves the right one again

    state = token_health(return_state=True)
    assert state.is_failed()
    assert "QuickBooks eu: reauthorize" in (state.message or "")
    texts = _token_alerts(checked)
    assert len(texts) == 2  # us is healthy: nothing about it
    eu = next(t for t in texts if "*eu*" in t)
    assert "`python -m deployments.authorize --realm eu`" in eu and "Connect" in eu
    salesforce = next(t for t in texts if "Salesforce login" in t)
    assert "`sandbox-salesforce`" in salesforce
    assert "authentication failure" in salesforce and "security_token" in salesforce
    assert "Wr0ng-Pa55w0rd" not in salesforce
