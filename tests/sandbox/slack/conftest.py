from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient

from sandbox.slack import SlackEmulator
from tests.support import serving


@dataclass
class SlackSandbox:
    emulator: SlackEmulator
    base_url: str  # the emulator's scheme://host:port
    info: dict[str, Any]
    control: httpx.Client

    def client(self, token: str | None = None, **kwargs: Any) -> WebClient:
        """A real slack_sdk client pointed at the emulator (no retry handlers unless given)."""
        kwargs.setdefault("retry_handlers", [])
        return WebClient(
            token=self.info["token"] if token is None else token,
            base_url=self.info["base_url"],
            **kwargs,
        )

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} if channel else {}
        return self.control.get("/_sandbox/messages", params=params).json()["messages"]


@pytest.fixture(scope="module")
def slack_server() -> Iterator[SlackSandbox]:
    emulator = SlackEmulator(profile="demo")
    with serving(emulator) as server, httpx.Client(base_url=server.base_url) as control:
        yield SlackSandbox(emulator, server.base_url, emulator.info(server.base_url, None), control)


@pytest.fixture
def slack(slack_server: SlackSandbox) -> Iterator[SlackSandbox]:
    """The module's emulator, reset to the demo seed before each test."""
    slack_server.control.post("/_sandbox/seed", json={"profile": "demo"}).raise_for_status()
    yield slack_server
