"""The sandbox's notion of "now": real time unless a test pins it (``POST /_sandbox/clock``)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime


class Clock:
    """A clock shared by every emulator of one sandbox, so TODAY means the same everywhere."""

    def __init__(self) -> None:
        self._fixed: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._fixed if self._fixed is not None else datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    def set(self, when: datetime | None) -> None:
        """Pin the clock to ``when`` (timezone-aware), or release it with ``None``."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        with self._lock:
            self._fixed = when.astimezone(UTC) if when is not None else None
