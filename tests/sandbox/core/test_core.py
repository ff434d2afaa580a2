"""The parts every emulator shares: fault rules, call counting, the info file, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.core.calls import CallLog
from sandbox.core.faults import FaultBook, FaultRule


def test_fault_rules_match_count_and_skip() -> None:
    book = FaultBook()
    book.add(FaultRule(method="POST", path=r"/batch$", count=2, skip=1, status=503))
    assert book.take("GET", "/v3/company/1/batch", None) is None  # wrong method
    assert book.take("POST", "/v3/company/1/batch", None) is None  # skipped once
    assert book.take("POST", "/v3/company/1/batch", None).status == 503
    assert book.take("POST", "/v3/company/1/batch", "1").status == 503
    assert book.take("POST", "/v3/company/1/batch", None) is None  # used up
    assert book.pending() == []


def test_fault_rules_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        FaultRule(path="(unclosed")
    with pytest.raises(ValueError):
        FaultRule(status=200)
    with pytest.raises(ValueError):
        FaultRule(bogus=1)  # type: ignore[call-arg]


def test_call_log_counts_per_endpoint_and_tenant() -> None:
    log = CallLog()
    log.record("POST", "query", "r1")
    log.record("POST", "query", "r1")
    log.record("POST", "batch", "r2")
    assert log.total() == 3
    assert log.total(endpoint="query") == 2
    assert log.total(tenant="r2") == 1
    snap = log.snapshot()
    assert snap["total"] == 3 and snap["by_tenant"] == {"r1": 2, "r2": 1}
    log.clear()
    assert log.snapshot()["calls"] == []


def test_serve_writes_the_info_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    info = tmp_path / "info.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--info-file", str(info), "--seed", "empty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        data = json.loads(info.read_text())
        assert set(data) == {"salesforce", "quickbooks", "slack"}
        assert data["salesforce"]["instance_url"].startswith("https://127.0.0.1:")
        assert Path(data["salesforce"]["ca_bundle"]).is_file()
        assert len(data["quickbooks"]["realms"]) >= 1
        assert oct(os.stat(info).st_mode & 0o777) == "0o600"
        assert not list(tmp_path.glob(".info-*"))  # the temp file was renamed, not left behind
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
