"""Runs emulators as real servers on loopback: one uvicorn server per service, each in a thread.

``Sandbox`` starts Salesforce (HTTPS, local CA), QuickBooks and Slack, and writes the info file
(SANDBOX_CONTRACT.md) atomically once every server accepts connections. Tests use it in-process;
``python -m sandbox serve`` runs it in the foreground.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.core.clock import Clock
from sandbox.core.service import ConnectionDropped, EmulatedService
from sandbox.core.tls import TlsFiles, make_tls_files


class _QuietDrops(logging.Filter):
    """A dropped connection is an injected fault, not a server error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class ThreadedServer:
    """A uvicorn server for one ASGI app on a pre-bound loopback socket, in a daemon thread."""

    def __init__(
        self,
        service: EmulatedService,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without it Nagle + delayed ACK add ~40 ms per answer.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self._sock.listen(512)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            service.build_app(),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sandbox-{service.name}",
            daemon=True,
        )
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://{host}:{self.port}"
        service.base_url = self.base_url

    def start(self, timeout: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.service.name} emulator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _default_services(clock: Clock, profile: str) -> list[EmulatedService]:
    from sandbox.quickbooks import QuickBooksEmulator
    from sandbox.salesforce import SalesforceEmulator
    from sandbox.slack import SlackEmulator

    return [
        SalesforceEmulator(clock=clock, profile=profile),
        QuickBooksEmulator(clock=clock, profile=profile),
        SlackEmulator(clock=clock, profile=profile),
    ]


class Sandbox:
    """All emulators of one sandbox, sharing a clock, each on its own loopback port."""

    def __init__(
        self,
        profile: str = "demo",
        host: str = "127.0.0.1",
        state_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.host = host
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="revbridge-sandbox-"))
        self.services = {s.name: s for s in _default_services(self.clock, profile)}
        self.tls = make_tls_files(self.state_dir / "tls", host)
        self.servers: dict[str, ThreadedServer] = {}

    def __getitem__(self, name: str) -> EmulatedService:
        return self.services[name]

    def start(self) -> Sandbox:
        for name, service in self.services.items():
            tls = self.tls if service.scheme == "https" else None
            server = ThreadedServer(service, self.host, tls=tls)
            server.start()
            self.servers[name] = server
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def info(self) -> dict[str, Any]:
        ca = str(self.tls.ca_bundle.resolve())
        return {
            name: service.info(self.servers[name].base_url, ca)
            for name, service in self.services.items()
        }

    def write_info(self, path: Path) -> None:
        """Write the info file atomically: a temp file in the same folder, then a rename."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".info-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.info(), fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
