"""Fixtures for the Salesforce emulator tests: one server per module, reset before every test."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sandbox.core.tls import TlsFiles
from sandbox.salesforce import SalesforceEmulator
from tests.sandbox.salesforce.clients import sandbox_session, token_client
from tests.support import serving


@pytest.fixture(scope="module")
def emulator(tls_files: TlsFiles) -> Iterator[SalesforceEmulator]:
    service = SalesforceEmulator(profile="demo")
    with serving(service, tls_files):
        yield service
        # A client exception keeps its response (and its kept-alive TLS connection) in a
        # reference cycle; uvicorn's graceful stop would wait for that connection to close.
        gc.collect()


@pytest.fixture(autouse=True)
def _fresh(emulator: SalesforceEmulator) -> None:
    emulator.clock.set(None)
    emulator.backend.daily_api_limit = 100_000
    emulator.seed("demo")


@pytest.fixture
def info(emulator: SalesforceEmulator, tls_files: TlsFiles) -> dict[str, Any]:
    return emulator.info(emulator.base_url, str(tls_files.ca_bundle))


@pytest.fixture
def session(info: dict[str, Any]) -> Iterator[requests.Session]:
    with sandbox_session(info) as s:
        yield s


@pytest.fixture
def sf(info: dict[str, Any], session: requests.Session) -> Salesforce:
    return token_client(info, session)
