"""The QuickBooks realm limiter: in-process windows by default; with
``REVBRIDGE_QBO_GLOBAL_LIMITS=1`` also Prefect rate limits that every process shares."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tasks import ratelimit
from tasks.ratelimit import Limits, global_limit_name, qbo_slot

REALM = "9341450000000042"


@pytest.fixture
def limits(request: pytest.FixtureRequest) -> Iterator[Limits]:
    """Small limits (``window_seconds`` by parametrize): 20 batch requests per window."""
    small = Limits(
        requests_per_minute=200, batch_per_minute=20, concurrent=10, window_seconds=request.param
    )
    ratelimit.configure(small)
    try:
        yield small
    finally:
        ratelimit.configure(Limits())


def test_buckets_never_admit_more_than_the_window() -> None:
    for limits in (Limits(), Limits(batch_per_minute=7, requests_per_minute=3)):
        for kind, allowed in (
            ("requests", limits.requests_per_minute),
            ("batch", limits.batch_per_minute),
        ):
            burst, decay = limits.buckets()[kind]
            assert burst >= 1 and decay > 0
            assert burst + decay * limits.window_seconds <= max(allowed - 1, 2)
    assert Limits().buckets() == {"requests": (50, 449 / 60), "batch": (4, 35 / 60)}


@pytest.mark.parametrize("limits", [1.0], indirect=True)
def test_in_process_window_without_prefect(limits: Limits, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default: no Prefect API call at all; the 21st batch in 1 s waits for the window."""
    monkeypatch.delenv(ratelimit.GLOBAL_LIMITS_ENV, raising=False)
    monkeypatch.setattr(ratelimit, "_take_global_slot", _forbidden)
    started = time.monotonic()
    for _ in range(limits.batch_per_minute):
        with qbo_slot(REALM, batch=True):
            pass
    assert time.monotonic() - started < 0.3
    with qbo_slot(REALM, batch=True):
        pass
    assert time.monotonic() - started >= limits.window_seconds - 0.1


@pytest.mark.parametrize("limits", [20.0], indirect=True)  # a bucket of 2, then 0.85/s
def test_global_limits_bind_processes_with_empty_windows(
    prefect_api: None, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Prefect limits are created on first use with the bucket sizes, and they carry what
    other processes took: each batch here comes from a limiter whose own windows are empty (as
    a second worker's flow run has), yet after the bucket's 2 the rest wait for it to drain."""
    from prefect.client.orchestration import get_client

    monkeypatch.setenv(ratelimit.GLOBAL_LIMITS_ENV, "1")
    burst, decay = limits.buckets()["batch"]
    extra = 2
    started = time.monotonic()
    for _ in range(burst + extra):
        ratelimit.configure(limits)  # forget this process's windows: only Prefect remembers
        with qbo_slot(REALM, batch=True):
            pass
    assert time.monotonic() - started >= extra / decay * 0.95

    with get_client(sync_client=True) as client:
        made = {
            kind: client.read_global_concurrency_limit_by_name(global_limit_name(REALM, kind))
            for kind in ("requests", "batch")
        }
    assert {k: (v.limit, v.slot_decay_per_second) for k, v in made.items()} == {
        k: (b[0], pytest.approx(b[1])) for k, b in limits.buckets().items()
    }


def _forbidden(realm_id: str, *, batch: bool) -> None:
    raise AssertionError("the Prefect API was called in single-process mode")
