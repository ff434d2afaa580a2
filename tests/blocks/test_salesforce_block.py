"""SalesforceCredentials.get_client() against the Salesforce emulator, through every login flow."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from blocks import SalesforceCredentials
from blocks.salesforce import LoginHostAdapter
from blocks.sandbox import salesforce_from_info
from sandbox.core.tls import TlsFiles
from sandbox.slack import SlackEmulator
from tests.support import control_client, serving

try:
    from sandbox.salesforce import SalesforceEmulator
except ImportError as exc:  # written in parallel by another helper
    SalesforceEmulator = None  # type: ignore[assignment,misc]
    _MISSING = f"sandbox.salesforce.SalesforceEmulator is not importable yet: {exc}"
else:
    _MISSING = ""

needs_emulator = pytest.mark.skipif(SalesforceEmulator is None, reason=_MISSING)


def test_login_host_adapter_sends_logins_to_the_override() -> None:
    # Any loopback server proves the rewrite; the Slack emulator answers JSON on /api/*.
    emulator = SlackEmulator(profile="empty")
    with serving(emulator) as server:
        block = SalesforceCredentials(
            auth_flow="soap",
            username="u",
            password="p",
            security_token="t",
            login_url_override=server.base_url,
        )
        session = block.get_session()
        assert isinstance(session.get_adapter("https://login.salesforce.com/x"), LoginHostAdapter)
        assert not isinstance(session.get_adapter(server.base_url + "/"), LoginHostAdapter)
        answer = session.post("https://login.salesforce.com/api/auth.test?probe=1", timeout=5)
        assert answer.json() == {"ok": False, "error": "not_authed"}
        assert emulator.calls.total(endpoint="auth.test") == 1


def test_no_override_means_no_adapter_and_the_ca_bundle_wins(
    tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/somewhere/else.pem")
    block = SalesforceCredentials(
        auth_flow="soap",
        username="u",
        password="p",
        security_token="t",
        ca_bundle=str(tls_files.ca_bundle),
    )
    session = block.get_session()
    assert session.verify == str(tls_files.ca_bundle)
    adapter = session.get_adapter("https://login.salesforce.com/")
    assert type(adapter) is requests.adapters.HTTPAdapter
    # plain requests would let REQUESTS_CA_BUNDLE replace Session.verify
    settings = session.merge_environment_settings("https://127.0.0.1/", {}, False, None, None)
    assert settings["verify"] == str(tls_files.ca_bundle)


# ---- against the emulator --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sf_info(tls_files: TlsFiles) -> Iterator[dict[str, Any]]:
    if SalesforceEmulator is None:
        pytest.skip(_MISSING)
    emulator = SalesforceEmulator(profile="demo")
    with serving(emulator, tls_files) as server:
        yield emulator.info(server.base_url, str(tls_files.ca_bundle))


@pytest.fixture
def control(sf_info: dict[str, Any]) -> Iterator[httpx.Client]:
    with control_client(sf_info["instance_url"], sf_info["ca_bundle"]) as client:
        yield client


@pytest.fixture
def make_block(sf_info: dict[str, Any]) -> Iterator[Callable[..., SalesforceCredentials]]:
    """Blocks for the emulator; their connections are closed before the server stops (a TLS
    server waits for idle clients to say goodbye)."""
    made: list[SalesforceCredentials] = []

    def make(flow: Any = "password", **overrides: Any) -> SalesforceCredentials:
        made.append(salesforce_from_info({**sf_info, **overrides}, auth_flow=flow))
        return made[-1]

    yield make
    for block in made:
        block.close()
    # A failed login's traceback (kept by pytest.raises) holds the response, whose socket stays
    # open until that reference cycle is collected; the stopping TLS server would wait for it.
    gc.collect()


def _login_calls(control: httpx.Client) -> int:
    calls = control.get("/_sandbox/calls").json()["calls"]
    return sum(
        c["count"] for c in calls if "token" in c["endpoint"] or "login" in c["endpoint"].lower()
    )


@needs_emulator
@pytest.mark.parametrize("flow", ["password", "soap", "client_credentials"])
def test_each_flow_logs_in_and_queries(
    sf_info: dict[str, Any], control: httpx.Client, make_block: Any, flow: Any
) -> None:
    block = make_block(flow)
    sf = block.get_client()
    assert isinstance(sf, Salesforce)
    assert block.get_client() is sf  # built once per block
    assert sf.sf_instance == sf_info["instance_url"].removeprefix("https://")
    result = sf.query("SELECT Id, Username FROM User")
    assert result["totalSize"] > 0
    assert _login_calls(control) == 1


@needs_emulator
def test_expired_session_is_renewed_transparently(control: httpx.Client, make_block: Any) -> None:
    sf = make_block("password").get_client()
    control.post(
        "/_sandbox/faults", json={"path": "/query", "expired_token": True}
    ).raise_for_status()
    result = sf.query("SELECT Id FROM User")
    assert result["totalSize"] > 0
    assert _login_calls(control) == 2  # the first login, then the re-login after the 401


@needs_emulator
@pytest.mark.parametrize("flow", ["password", "soap"])
def test_wrong_password_fails_without_echoing_it(
    sf_info: dict[str, Any], make_block: Any, flow: Any
) -> None:
    block = make_block(flow, password="Wr0ng-Pa55w0rd")
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        block.get_client()
    assert "Wr0ng-Pa55w0rd" not in str(exc.value)
    assert sf_info["security_token"] not in str(exc.value)
