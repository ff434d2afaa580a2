"""Flow state kept in Prefect Variables (visible and editable in the UI): watermarks."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.variables import Variable


@task
def read_state(name: str) -> dict[str, Any] | None:
    value = Variable.get(name, default=None)
    return value if isinstance(value, dict) else None


@task
def write_state(name: str, value: dict[str, Any]) -> None:
    Variable.set(name, value, overwrite=True)
