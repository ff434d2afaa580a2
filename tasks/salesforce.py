"""Salesforce tasks through simple-salesforce: one SOQL read, composite-collection writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from tasks.faults import retry_if_transient

if TYPE_CHECKING:
    from blocks.salesforce import SalesforceCredentials

COLLECTION_LIMIT = 200


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_if_transient)
def query_records(credentials: SalesforceCredentials, soql: str) -> list[dict[str, Any]]:
    """Every record of a SOQL query (simple-salesforce follows nextRecordsUrl)."""
    sf = credentials.get_client()
    records: list[dict[str, Any]] = sf.query_all(soql)["records"]
    get_run_logger().info("Salesforce: %s records", len(records))
    return records


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_if_transient)
def update_records(
    credentials: SalesforceCredentials, sobject: str, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """PATCH records through composite/sobjects, 200 a call, each row checked (the call answers
    200 even when rows fail). Updates are idempotent, so a retry is safe. Returns the failures:
    ``{"id", "errors": [{"statusCode", "message", "fields"}]}``."""
    sf = credentials.get_client()
    failures: list[dict[str, Any]] = []
    for start in range(0, len(records), COLLECTION_LIMIT):
        chunk = records[start : start + COLLECTION_LIMIT]
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": sobject}, **record} for record in chunk],
        }
        rows = sf.restful("composite/sobjects", method="PATCH", json=body)
        for sent, row in zip(chunk, rows or [], strict=False):
            if not row.get("success"):
                failures.append({"id": sent.get("Id"), "errors": row.get("errors", [])})
    logger = get_run_logger()
    logger.info("Salesforce: updated %s %s records", len(records) - len(failures), sobject)
    for failure in failures:
        logger.error("Salesforce refused %s %s: %s", sobject, failure["id"], failure["errors"])
    return failures
