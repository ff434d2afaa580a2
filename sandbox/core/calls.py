"""Counts the API calls an emulator receives, per method, endpoint and tenant (org or realm)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallLog:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str | None]] = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, endpoint: str, tenant: str | None = None) -> None:
        with self._lock:
            self._counts[(method, endpoint, tenant)] += 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def total(self, *, endpoint: str | None = None, tenant: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (_m, e, t), n in self._counts.items()
                if (endpoint is None or e == endpoint) and (tenant is None or t == tenant)
            )

    def snapshot(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/calls``."""
        with self._lock:
            rows: list[dict[str, Any]] = [
                {"method": m, "endpoint": e, "tenant": t, "count": n}
                for (m, e, t), n in sorted(self._counts.items(), key=lambda kv: str(kv[0]))
            ]
        by_tenant: dict[str, int] = {}
        for row in rows:
            if row["tenant"] is not None:
                by_tenant[row["tenant"]] = by_tenant.get(row["tenant"], 0) + row["count"]
        return {"total": sum(r["count"] for r in rows), "by_tenant": by_tenant, "calls": rows}
