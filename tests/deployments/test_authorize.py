"""`python -m deployments.authorize` against the QuickBooks emulator: consent on a local redirect
URI, state checked, tokens into the realm's block, never printed."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from blocks import QuickBooksConnection
from blocks.sandbox import quickbooks_from_info
from deployments.authorize import AuthorizeError, authorize, main

pytestmark = pytest.mark.usefixtures("prefect_api")
US, EU = "9341453172461001", "9341453172461002"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def port(control: httpx.Client) -> int:
    """A free loopback port whose callback URI the sandbox app has registered."""
    free = _free_port()
    uri = f"http://localhost:{free}/callback"
    control.post("/_sandbox/redirect_uris", json={"redirect_uri": uri}).raise_for_status()
    return free


@pytest.fixture
def dead_block(qbo_info: dict[str, Any], control: httpx.Client) -> str:
    """The "us" block saved with a refresh token Intuit no longer knows."""
    block_name = f"test-authorize-{uuid.uuid4().hex[:12]}"
    block = quickbooks_from_info(qbo_info)["us"]
    block.refresh_token = SecretStr("AB11-revoked-long-ago")
    block.save(block_name)
    return block_name


def browser(*forged: str) -> Any:
    """A user who clicks Connect (the sandbox consents at once); ``forged`` callbacks hit the
    redirect URI first, as an attacker's page might."""
    answers: list[int] = []

    def open_url(url: str) -> None:
        redirect = httpx.get(url).headers["location"]
        base = redirect.split("?")[0]
        for query in forged:
            answers.append(httpx.get(f"{base}?{query}").status_code)
        answers.append(httpx.get(redirect).status_code)

    open_url.answers = answers  # type: ignore[attr-defined]
    return open_url


def _state(control: httpx.Client, realm_id: str) -> dict[str, Any]:
    return control.get("/_sandbox/tokens", params={"realm_id": realm_id}).json()["realms"][realm_id]


def test_authorize_stores_the_new_tokens_in_the_realm_block(
    dead_block: str, port: int, control: httpx.Client
) -> None:
    click = browser("code=AB11forged&state=not-ours&realmId=" + US)
    printed: list[str] = []
    company = authorize("us", block=dead_block, port=port, open_browser=click, out=printed.append)
    assert company
    assert click.answers == [400, 200]  # the forged callback was refused; the real one taken

    stored = QuickBooksConnection.load(dead_block)
    token = stored.refresh_token.get_secret_value()
    assert token in {t["refresh_token"] for t in _state(control, US)["refresh_tokens"]}
    assert stored.realm_id == US
    assert stored.redirect_uri == f"http://localhost:{port}/callback"
    assert stored.refresh_token_expires_at is not None
    assert stored.get_client()  # works without anything else
    output = "\n".join(printed)
    assert f"Connected QuickBooks company {company!r} (realm {US})" in output
    assert dead_block in output and token not in output


def test_a_consent_for_another_company_is_not_saved(
    dead_block: str, port: int, control: httpx.Client
) -> None:
    control.post(
        "/_sandbox/tokens", json={"realm_id": EU, "action": "choose_company"}
    ).raise_for_status()
    with pytest.raises(AuthorizeError, match=f"connected company {EU}, but us is {US}"):
        authorize("us", block=dead_block, port=port, open_browser=browser(), out=lambda _: None)
    stored = QuickBooksConnection.load(dead_block)
    assert stored.refresh_token.get_secret_value() == "AB11-revoked-long-ago"
    eu = _state(control, EU)
    consented = [
        t for t in eu["refresh_tokens"] if t["refresh_token"] != eu["initial_refresh_token"]
    ]
    assert [t["status"] for t in consented] == ["revoked"]  # the stray connection is gone again


def test_an_unregistered_redirect_uri_is_refused_by_intuit(dead_block: str) -> None:
    refused: list[int] = []

    def open_url(url: str) -> None:  # Intuit shows an error page and never redirects
        refused.append(httpx.get(url).status_code)

    argv = ["--realm", "us", "--block", dead_block, "--port", str(_free_port()), "--timeout", "1"]
    assert main(argv, open_url) == 1
    assert refused == [400]
    stored = QuickBooksConnection.load(dead_block)
    assert stored.refresh_token.get_secret_value() == "AB11-revoked-long-ago"


@pytest.fixture
def https_block(dead_block: str, control: httpx.Client) -> str:
    """The dead block with the https redirect URI production keys need (registered for the
    app): the browser lands on a page nothing here serves, so the user pastes its address."""
    uri = "https://revbridge.example.com/qbo/callback"
    control.post("/_sandbox/redirect_uris", json={"redirect_uri": uri}).raise_for_status()
    block = QuickBooksConnection.load(dead_block)
    block.redirect_uri = uri
    block.save(dead_block, overwrite=True)
    return dead_block


def pasting_user(printed: list[str], tamper: Any = None) -> Any:
    """A user who opens the printed consent URL, clicks Connect and pastes the address the
    browser was sent to (optionally changed by ``tamper``)."""

    def read_line() -> str:
        url = next(line for line in printed if "click Connect at" in line)
        consent = url.split("\n\n", 1)[1].strip()
        landed = httpx.get(consent).headers["location"]
        return f"  {tamper(landed) if tamper else landed}\n"

    return read_line


def test_authorize_takes_the_pasted_address_for_an_https_redirect_uri(
    https_block: str, control: httpx.Client
) -> None:
    printed: list[str] = []
    company = authorize(
        "us", block=https_block, out=printed.append, read_line=pasting_user(printed)
    )
    assert company
    assert any("paste here the full address" in line for line in printed)
    stored = QuickBooksConnection.load(https_block)
    assert stored.redirect_uri == "https://revbridge.example.com/qbo/callback"
    token = stored.refresh_token.get_secret_value()
    assert token in {t["refresh_token"] for t in _state(control, US)["refresh_tokens"]}
    assert token not in "\n".join(printed)


def test_a_pasted_address_with_another_state_is_refused(https_block: str) -> None:
    printed: list[str] = []
    forged = pasting_user(printed, lambda url: url.replace("state=", "state=x"))
    with pytest.raises(AuthorizeError, match="does not carry this authorization's state"):
        authorize("us", block=https_block, out=printed.append, read_line=forged)
    stored = QuickBooksConnection.load(https_block)
    assert stored.refresh_token.get_secret_value() == "AB11-revoked-long-ago"
