"""Helpers shared by the test suites: start one emulator as a real loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
