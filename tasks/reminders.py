"""Tasks of the reminders and escalation steps: QuickBooks invoice ``send`` (the reminder e-mail),
revbridge's Salesforce Tasks read with queryAll and created through composite collections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from quickbooks.exceptions import QuickbooksException
from simple_salesforce.exceptions import SalesforceError

from revbridge.batch import chunk
from revbridge.writeback import MAX_RECORDS
from tasks.faults import TransientError, io_task_options
from tasks.quickbooks import qbo_call

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection
    from blocks.salesforce import SalesforceCredentials


@task(cache_policy=NO_CACHE)
def send_invoices(connection: QuickBooksConnection, sends: list[tuple[str, str]]) -> list[str]:
    """E-mail each ``(invoice id, requestid)`` to the address on the invoice (BillEmail).

    Returns one message per send, empty when QuickBooks accepted it. Transient faults are
    retried inside `qbo_call` under the same requestid, so QuickBooks replays a send it already
    made instead of e-mailing twice; what still fails is reported, never raised, so one refused
    invoice does not hold back the others."""
    logger = get_run_logger()
    answers: list[str] = []
    for invoice_id, request_id in sends:
        try:
            qbo_call(
                connection,
                "POST",
                f"invoice/{invoice_id}/send",
                request_id=request_id,
                content_type="application/octet-stream",
            )
        except (QuickbooksException, TransientError) as exc:
            message = " ".join(str(exc).split())  # python-quickbooks: code, message, detail
            logger.error("QuickBooks did not send invoice %s: %s", invoice_id, message)
            answers.append(message or type(exc).__name__)
        else:
            answers.append("")
    sent = sum(1 for a in answers if not a)
    logger.info("realm %s: %s of %s invoice(s) e-mailed", connection.realm_id, sent, len(sends))
    return answers


@task(**io_task_options(2, 10, 30))
def query_all_rows(credentials: SalesforceCredentials, soql: str) -> list[dict[str, Any]]:
    """Every record of a SOQL query, deleted and archived ones included (``queryAll``)."""
    sf = credentials.get_client()
    records: list[dict[str, Any]] = sf.query_all(soql, include_deleted=True)["records"]
    get_run_logger().info("Salesforce: %s records (queryAll)", len(records))
    return records


@task(cache_policy=NO_CACHE)
def create_records(
    credentials: SalesforceCredentials, records: list[dict[str, Any]]
) -> list[tuple[str | None, str]]:
    """Insert ``records`` (each with its ``attributes.type``) through ``composite/sobjects``,
    ≤ 200 a call, ``allOrNone`` false. Returns ``(new Id, "")`` or ``(None, error)`` per record
    in order. No retries here: an insert is not idempotent, so the caller finds what a lost
    answer created on its next run (by a marker) instead of inserting it again."""
    sf = credentials.get_client()
    logger = get_run_logger()
    results: list[tuple[str | None, str]] = []
    for part in chunk(records, MAX_RECORDS):
        try:
            rows = sf.restful(
                "composite/sobjects", method="POST", json={"allOrNone": False, "records": part}
            )
        except SalesforceError as exc:
            logger.error("Salesforce refused the insert of %s record(s): %s", len(part), exc)
            results += [(None, f"Salesforce refused the insert: {exc}")] * len(part)
            continue
        except requests.RequestException as exc:  # the insert may have happened: not retried
            logger.error("no answer to the insert of %s record(s): %s", len(part), exc)
            results += [(None, f"no answer from Salesforce (checked next run): {exc}")] * len(part)
            continue
        for index in range(len(part)):
            row = rows[index] if rows and index < len(rows) else None
            if row is None:
                results.append((None, "Salesforce returned no result row for this record"))
            elif row.get("success"):
                results.append((str(row["id"]), ""))
            else:
                errors = row.get("errors") or [{"statusCode": "UNKNOWN", "message": "no detail"}]
                results.append(
                    (None, "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors))
                )
    logger.info(
        "Salesforce: %s of %s record(s) created", sum(1 for i, _ in results if i), len(records)
    )
    return results
