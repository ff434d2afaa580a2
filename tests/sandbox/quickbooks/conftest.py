"""Fixtures for the QuickBooks emulator tests: one served emulator per session, reset before
each test, and python-quickbooks clients built exactly as the project builds them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.exceptions import QuickbooksException

from sandbox.core.server import ThreadedServer
from sandbox.quickbooks import QuickBooksEmulator
from sandbox.quickbooks.oauth import REDIRECT_URI
from tests.support import serving


@pytest.fixture(scope="session", autouse=True)
def _insecure_loopback_transport() -> Iterator[None]:
    """requests-oauthlib refuses http:// unless told; the project sets this for loopback only."""
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    yield
    if previous is None:
        os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
    else:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


@pytest.fixture(scope="session")
def qbo_server() -> Iterator[ThreadedServer]:
    emulator = QuickBooksEmulator(profile="demo")
    with serving(emulator) as server:
        yield server
    emulator.close()


@pytest.fixture
def qbo_emulator(qbo_server: ThreadedServer) -> Iterator[QuickBooksEmulator]:
    """The served emulator, back to the demo seed with the real clock for each test."""
    emulator = qbo_server.service
    assert isinstance(emulator, QuickBooksEmulator)
    emulator.clock.set(None)
    emulator.seed("demo")
    yield emulator
    emulator.clock.set(None)


@pytest.fixture
def qbo_info(qbo_emulator: QuickBooksEmulator) -> dict[str, Any]:
    return qbo_emulator.info(qbo_emulator.base_url, None)


@pytest.fixture
def make_client(qbo_info: dict[str, Any]) -> Callable[[str], QuickBooks]:
    """A python-quickbooks client for a realm of the info file ("us" or "eu")."""

    def make(realm_key: str = "us") -> QuickBooks:
        realm = qbo_info["realms"][realm_key]
        auth = AuthClient(
            qbo_info["client_id"],
            qbo_info["client_secret"],
            REDIRECT_URI,
            environment=qbo_info["discovery_url"],
        )
        client = QuickBooks(
            auth_client=auth,
            refresh_token=realm["refresh_token"],
            company_id=realm["realm_id"],
            minorversion=75,
        )
        client.sandbox_api_url_v3 = client.api_url_v3 = qbo_info["api_base"]
        return client

    return make


@pytest.fixture
def qb(make_client: Callable[[str], QuickBooks]) -> QuickBooks:
    return make_client("us")


@pytest.fixture
def qb_eu(make_client: Callable[[str], QuickBooks]) -> QuickBooks:
    return make_client("eu")


@pytest.fixture
def control(qbo_emulator: QuickBooksEmulator) -> Iterator[httpx.Client]:
    """Plain HTTP to the emulator's origin (control endpoints and raw API calls)."""
    with httpx.Client(base_url=qbo_emulator.base_url, timeout=10) as client:
        yield client


FaultCheck = Callable[[type[QuickbooksException], int], AbstractContextManager[Any]]


@pytest.fixture
def expect_fault() -> FaultCheck:
    """``with expect_fault(ValidationException, 2020): ...``: the client raises exactly that
    class (not a subclass) with that error code."""

    @contextmanager
    def check(kind: type[QuickbooksException], code: int) -> Iterator[Any]:
        with pytest.raises(kind) as caught:
            yield caught
        assert type(caught.value) is kind, repr(caught.value)
        assert caught.value.error_code == code, str(caught.value)

    return check
