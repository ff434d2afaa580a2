from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.core.tls import TlsFiles, make_tls_files

# Task retries and QuickBooks backoff in tests: milliseconds, not seconds.
os.environ.setdefault("REVBRIDGE_BACKOFF_SECONDS", "0.01")
os.environ.setdefault("REVBRIDGE_RETRY_DELAY_SCALE", "0.01")
# The QuickBooks token journal (blocks/token_journal.py) of this run, never the user's.
os.environ.setdefault("REVBRIDGE_STATE_DIR", tempfile.mkdtemp(prefix="revbridge-test-state-"))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A local CA and a 127.0.0.1 certificate, for the HTTPS Salesforce emulator."""
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One throwaway Prefect API (SQLite) for every test that needs one; no flow heartbeats,
    no telemetry (the tests run offline)."""
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    settings = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(updates=settings), prefect_test_harness():
        yield


@pytest.fixture(scope="module")
def qbo_info() -> Iterator[dict[str, Any]]:
    """The QuickBooks emulator alone (demo seed) for one test module: its info-file section
    plus ``control``, its base URL."""
    from sandbox.quickbooks import QuickBooksEmulator
    from tests.support import served_info

    with served_info(QuickBooksEmulator(profile="demo")) as info:
        yield info


@pytest.fixture
def control(qbo_info: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client of that emulator's control routes, after a reset."""
    from tests.support import control_client

    with control_client(qbo_info["control"]) as client:
        yield client
