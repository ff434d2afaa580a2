"""Faults injected on demand for the next N matching requests (``POST /_sandbox/faults``)."""

from __future__ import annotations

import re
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FaultRule(BaseModel):
    """One fault. Matching: ``method`` (any when null), ``path`` (a regex searched in the URL
    path, any when null) and ``tenant`` (org id or realm id, any when null)."""

    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    path: str | None = None
    tenant: str | None = None
    count: int = Field(default=1, ge=1, description="how many matching requests it hits")
    skip: int = Field(default=0, ge=0, description="matching requests let through first")
    status: int | None = Field(default=None, ge=400, le=599)
    body: Any = Field(default=None, description="error body; null: the service's own for status")
    headers: dict[str, str] = Field(default_factory=dict)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    drop_after_write: bool = Field(
        default=False, description="run the request, then drop the connection before answering"
    )
    expired_token: bool = Field(default=False, description="answer as for an expired token")

    @field_validator("path")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"path is not a valid regular expression: {exc}") from exc
        return v

    def matches(self, method: str, path: str, tenant: str | None) -> bool:
        return (
            (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.tenant is None or self.tenant == tenant)
        )


class FaultBook:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.model_dump() for r in self._rules]

    def take(self, method: str, path: str, tenant: str | None) -> FaultRule | None:
        """The first rule matching this request, with its remaining count decremented."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(method, path, tenant):
                    if rule.skip:
                        self._rules[i] = rule.model_copy(update={"skip": rule.skip - 1})
                        return None
                    if rule.count <= 1:
                        del self._rules[i]
                    else:
                        self._rules[i] = rule.model_copy(update={"count": rule.count - 1})
                    return rule
        return None
