"""Salesforce tasks through simple-salesforce: one SOQL read, composite-collection writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from revbridge.writeback import WritebackFailure, parse_composite_response
from tasks.faults import io_task_options

if TYPE_CHECKING:
    from blocks.salesforce import SalesforceCredentials


@task(**io_task_options(2, 10, 30))
def query_records(credentials: SalesforceCredentials, soql: str) -> list[dict[str, Any]]:
    """Every record of a SOQL query (simple-salesforce follows nextRecordsUrl)."""
    sf = credentials.get_client()
    records: list[dict[str, Any]] = sf.query_all(soql)["records"]
    get_run_logger().info("Salesforce: %s records", len(records))
    return records


@task(**io_task_options(2, 10, 30))
def update_records(
    credentials: SalesforceCredentials, bodies: list[dict[str, Any]]
) -> list[WritebackFailure]:
    """PATCH ``composite/sobjects`` bodies (≤ 200 records each, built by
    `revbridge.writeback.opportunity_updates`), checking every row: the call answers 200 even when
    records fail. Updates are idempotent, so a task retry is safe. Returns the failures."""
    sf = credentials.get_client()
    logger = get_run_logger()
    failures: list[WritebackFailure] = []
    for body in bodies:
        rows = sf.restful("composite/sobjects", method="PATCH", json=body)
        failures += parse_composite_response(rows or [], body)
    sent = sum(len(body["records"]) for body in bodies)
    logger.info("Salesforce: %s of %s records updated", sent - len(failures), sent)
    for failure in failures:
        logger.error("Salesforce refused %s: %s", failure.opportunity_id, failure.message)
    return failures
