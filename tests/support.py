"""Helpers shared by the test suites: start one emulator as a real loopback server, and reach
its control routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from sandbox.core.server import ThreadedServer
from sandbox.core.service import EmulatedService
from sandbox.core.tls import TlsFiles


@contextmanager
def serving(service: EmulatedService, tls: TlsFiles | None = None) -> Iterator[ThreadedServer]:
    """Run ``service`` on a free loopback port for the duration of the block."""
    server = ThreadedServer(service, tls=tls if service.scheme == "https" else None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def served_info(service: EmulatedService) -> Iterator[dict[str, Any]]:
    """``service`` served (`serving`, plain http), as its info-file section plus ``control``,
    its base URL."""
    with serving(service) as server:
        yield {**service.info(server.base_url, None), "control": server.base_url}


@contextmanager
def control_client(base_url: str, verify: bool | str = True) -> Iterator[httpx.Client]:
    """A client of an emulator's control routes, after a reset."""
    with httpx.Client(base_url=base_url, verify=verify) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client
