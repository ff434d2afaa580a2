"""Run reports: a table artifact per run and a markdown one, both readable in the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact


@task
def publish_audit(
    key: str, rows: list[dict[str, Any]], markdown: str, description: str = ""
) -> None:
    """Artifact keys must be lowercase letters, digits and dashes."""
    create_table_artifact(
        key=key, table=rows or [{"outcome": "nothing to do"}], description=description
    )
    create_markdown_artifact(key=f"{key}-summary", markdown=markdown, description=description)
