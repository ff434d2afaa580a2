"""QuickBooksConnection against the QuickBooks emulator: refresh, rotation, persistence, errors."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client as get_prefect_client
from pydantic import SecretStr
from quickbooks.client import QuickBooks
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.customer import Customer

from blocks import QuickBooksAuthError, QuickBooksConnection, QuickBooksReauthorizationRequired
from blocks.quickbooks import token_lock_name
from blocks.sandbox import quickbooks_from_info


@pytest.fixture
def us(qbo_info: dict[str, Any], control: httpx.Client) -> QuickBooksConnection:
    """A fresh block for the "us" realm holding the realm's initial refresh token."""
    return quickbooks_from_info(qbo_info)["us"]


def _tokens(control: httpx.Client, realm_id: str, action: str) -> None:
    control.post(
        "/_sandbox/tokens", json={"realm_id": realm_id, "action": action}
    ).raise_for_status()


def test_get_client_refreshes_on_construction_and_queries(
    us: QuickBooksConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    qb = us.get_client()
    assert isinstance(qb, QuickBooks)
    assert os.environ["OAUTHLIB_INSECURE_TRANSPORT"] == "1"  # loopback http api_base only
    assert qb.company_id == us.realm_id
    assert qb.api_url == us.api_base
    assert us.refresh_token_expires_at is not None
    assert us.refresh_token_expires_at > datetime.now(UTC)
    assert us.get_client() is qb  # cached while the access token is fresh
    assert Customer.all(max_results=5, qb=qb)


def test_refresh_after_access_token_expiry(us: QuickBooksConnection, control: httpx.Client) -> None:
    qb = us.get_client()
    Customer.all(max_results=1, qb=qb)
    _tokens(control, us.realm_id, "expire_access")
    with pytest.raises(AuthorizationException):
        Customer.all(max_results=1, qb=qb)
    fresh = us.refresh()
    assert fresh is not qb
    assert us.get_client() is fresh
    assert Customer.all(max_results=1, qb=fresh)


@pytest.mark.usefixtures("prefect_api")
def test_rotated_refresh_token_is_saved_to_the_block(
    us: QuickBooksConnection, control: httpx.Client, block_name: str, qbo_info: dict[str, Any]
) -> None:
    initial = us.refresh_token.get_secret_value()
    us.save(block_name)
    _tokens(control, us.realm_id, "rotate")
    us.refresh()
    rotated = us.refresh_token.get_secret_value()
    assert rotated != initial
    stored = QuickBooksConnection.load(block_name)
    assert stored.refresh_token.get_secret_value() == rotated
    assert stored.refresh_token_expires_at == us.refresh_token_expires_at
    # Why it matters: the replaced token is now refused (an unsaved block cannot catch up).
    unsaved = quickbooks_from_info(qbo_info)["us"]
    assert unsaved.refresh_token.get_secret_value() == initial
    with pytest.raises(QuickBooksReauthorizationRequired):
        unsaved.refresh()


@pytest.mark.usefixtures("prefect_api")
def test_a_stale_copy_takes_the_saved_token_before_refreshing(
    us: QuickBooksConnection, control: httpx.Client, block_name: str
) -> None:
    us.save(block_name)
    first = QuickBooksConnection.load(block_name)
    second = QuickBooksConnection.load(block_name)  # e.g. another worker's copy
    _tokens(control, us.realm_id, "rotate")
    first.refresh()
    second.refresh()  # would be invalid_grant with its in-memory (replaced) token
    assert second.refresh_token.get_secret_value() == first.refresh_token.get_secret_value()
    assert (
        QuickBooksConnection.load(block_name).refresh_token.get_secret_value()
        == first.refresh_token.get_secret_value()
    )


@pytest.mark.usefixtures("prefect_api")
def test_concurrent_refreshes_of_one_realm_are_serialized(
    us: QuickBooksConnection, control: httpx.Client, block_name: str
) -> None:
    us.save(block_name)
    us.ensure_token_lock()
    _tokens(control, us.realm_id, "rotate")
    with ThreadPoolExecutor(max_workers=4) as pool:
        clients = list(pool.map(lambda _: us.refresh(), range(4)))
    assert all(isinstance(c, QuickBooks) for c in clients)
    saved = QuickBooksConnection.load(block_name).refresh_token.get_secret_value()
    assert saved == us.refresh_token.get_secret_value()
    with get_prefect_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(token_lock_name(us.realm_id))
    assert limit.limit == 1 and limit.active_slots == 0


def test_invalid_grant_names_the_realm_and_the_fix(
    us: QuickBooksConnection, control: httpx.Client, qbo_info: dict[str, Any]
) -> None:
    _tokens(control, us.realm_id, "revoke")
    with pytest.raises(QuickBooksReauthorizationRequired) as exc:
        us.get_client()
    message = str(exc.value)
    assert us.realm_id in message and exc.value.realm_id == us.realm_id
    assert "invalid_grant" in message and "Re-authorize" in message
    assert us.refresh_token.get_secret_value() not in message
    assert qbo_info["client_secret"] not in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_wrong_client_secret(us: QuickBooksConnection) -> None:
    wrong = us.model_copy(update={"client_secret": SecretStr("not-the-secret-123")})
    with pytest.raises(QuickBooksAuthError) as exc:
        wrong.get_client()
    assert not isinstance(exc.value, QuickBooksReauthorizationRequired)
    assert "invalid_client" in str(exc.value)
    assert "not-the-secret-123" not in str(exc.value)
