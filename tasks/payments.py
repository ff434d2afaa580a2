"""Tasks of the payments flow: QuickBooks change data capture and reads by Id, and the owner's
Slack notice (DM, or the alerts channel when Slack does not know the owner's email)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from revbridge.payments import (
    CDC_ENTITIES,
    cdc_rows,
    cdc_truncated,
    next_watermark,
    qbo_time,
)
from tasks.faults import io_task_options
from tasks.quickbooks import qbo_call, qbo_rows_by_id

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection

MAX_PAGES = 20  # per entity, when a realm changed more than 1,000 objects since the watermark


def _cdc(
    connection: QuickBooksConnection, entities: Sequence[str], since: datetime
) -> tuple[dict[str, list[dict[str, Any]]], datetime | None]:
    params = {"entities": ",".join(entities), "changedSince": since.isoformat()}
    answer = qbo_call(connection, "GET", "cdc", params=params)
    answered = qbo_time(str(answer["time"])) if answer.get("time") else None
    return cdc_rows(answer), answered


@task(**io_task_options(2, 10, 30))
def read_changes(
    connection: QuickBooksConnection, since: datetime
) -> tuple[dict[str, list[dict[str, Any]]], datetime]:
    """Invoices, Payments and CreditMemos changed since ``since`` (CDC, one call), and where the
    next sweep starts. Past 1,000 objects QuickBooks cuts the answer: each entity is then read
    on its own, page by page from its last row's time, and the watermark is the least advanced."""
    logger = get_run_logger()
    rows, answered = _cdc(connection, CDC_ENTITIES, since)
    if not cdc_truncated(rows):
        every = [r for v in rows.values() for r in v]
        end = next_watermark(since, answered, every)
        logger.info(
            "realm %s: %s change(s) since %s",
            connection.realm_id,
            {k: len(v) for k, v in rows.items()},
            since.isoformat(),
        )
        return rows, end
    logger.warning("realm %s: over 1,000 changes; reading entity by entity", connection.realm_id)
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    ends: list[datetime] = []
    for entity in CDC_ENTITIES:
        start = since
        for _ in range(MAX_PAGES):
            part, answered = _cdc(connection, [entity], start)
            found = part.get(entity, [])
            for row in found:
                merged.setdefault(entity, {})[str(row["Id"])] = row
            end = next_watermark(start, answered, found)
            if not cdc_truncated(part) or end <= start:
                if cdc_truncated(part):
                    logger.error(
                        "realm %s: over 1,000 %s changes at one instant; some may be missed",
                        connection.realm_id,
                        entity,
                    )
                start = end
                break
            start = end
        ends.append(start)
    return {k: list(v.values()) for k, v in merged.items()}, min(ends)


@task(**io_task_options(2, 10, 30))
def read_by_ids(
    connection: QuickBooksConnection, entity: str, ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The ``entity`` rows with these Ids (deleted ones are simply absent)."""
    return qbo_rows_by_id(connection, entity, ids)
