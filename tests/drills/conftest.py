"""Fault drills: the flow-test fixtures (a sandbox, a throwaway Prefect API, blocks) plus a hook
that does something to the sandbox at an exact moment of a run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sandbox.core.service import EmulatedService
from tests.flows.conftest import approval_deployment, blocks, fresh, sandbox

__all__ = ["approval_deployment", "blocks", "fresh", "on_call", "sandbox"]


@contextmanager
def on_call(
    service: EmulatedService,
    endpoint: str,
    action: Callable[[], None],
    *,
    nth: int = 1,
    method: str | None = None,
) -> Iterator[threading.Event]:
    """Run ``action`` once, on the emulator's event loop (keep it short), when it counts the
    ``nth`` call to ``endpoint``: before that call is answered. The event is set once it ran."""
    log = service.calls
    record = log.record
    seen = 0
    done = threading.Event()
    lock = threading.Lock()

    def hooked(call_method: str, call_endpoint: str, tenant: str | None = None) -> None:
        nonlocal seen
        fire = False
        if call_endpoint == endpoint and (method is None or call_method == method):
            with lock:
                seen += 1
                fire = seen == nth
        if fire:
            action()
            done.set()
        record(call_method, call_endpoint, tenant)

    log.record = hooked  # type: ignore[method-assign]
    try:
        yield done
    finally:
        log.record = record  # type: ignore[method-assign]
