"""QuickBooks Online tasks, through python-quickbooks with what it lacks added here:
per-realm rate limits, re-authorisation on 401, backoff on 429/5xx/dropped connections, and
``requestid`` on every write (batches included, whose body our code builds)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from quickbooks.exceptions import AuthorizationException

from revbridge.batch import (
    BatchResult,
    Creatable,
    batch_request,
    batch_request_id,
    chunk,
    parse_batch_response,
)
from revbridge.invoices import opportunity_id_from_invoice
from revbridge.soql import quote
from tasks.faults import TransientError, io_task_options, is_transient
from tasks.ratelimit import qbo_slot

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection

BATCH_LIMIT = 30
MAX_RESULTS = 1000
IDS_PER_QUERY = 500  # keeps an `Id IN (...)` query short


def _backoff(attempt: int) -> float:
    base = float(os.environ.get("REVBRIDGE_BACKOFF_SECONDS", "1.0"))
    return min(base * (2**attempt), 60.0)


def qbo_call(
    connection: QuickBooksConnection,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    request_id: str | None = None,
    content_type: str = "application/json",
    attempts: int = 5,
) -> dict[str, Any]:
    """One API call for the connection's realm. Reads and requestid-carrying writes are safe to
    repeat, so transient faults are retried here with backoff before a TransientError escapes."""
    client = connection.get_client()
    reauthorised = False
    data = body if isinstance(body, str) or body is None else json.dumps(body, default=str)
    is_batch = path.split("?")[0] == "batch"
    attempt = 0
    while True:
        url = f"{client.api_url}/company/{connection.realm_id}/{path}"
        try:
            with qbo_slot(connection.realm_id, batch=is_batch):
                return client.make_request(
                    method,
                    url,
                    request_body=data,
                    content_type=content_type,
                    params=dict(params or {}),
                    request_id=request_id,
                )
        except AuthorizationException:
            if reauthorised:
                raise
            reauthorised = True
            client = connection.refresh()
        except Exception as exc:
            attempt += 1
            if not is_transient(exc):
                raise
            if attempt >= attempts:
                raise TransientError(
                    f"QuickBooks realm {connection.realm_id}: {path} still failing after "
                    f"{attempts} attempts: {exc}"
                ) from exc
            time.sleep(_backoff(attempt))


def qbo_query(connection: QuickBooksConnection, statement: str) -> list[dict[str, Any]]:
    """Every row of a query, paging by STARTPOSITION/MAXRESULTS 1000."""
    rows: list[dict[str, Any]] = []
    start = 1
    while True:
        page = f"{statement} STARTPOSITION {start} MAXRESULTS {MAX_RESULTS}"
        result = qbo_call(connection, "POST", "query", body=page, content_type="application/text")
        response = result.get("QueryResponse", {})
        batch = next((v for k, v in response.items() if isinstance(v, list)), [])
        rows.extend(batch)
        if len(batch) < MAX_RESULTS:
            return rows
        start += MAX_RESULTS


def qbo_rows_by_id(
    connection: QuickBooksConnection, entity: str, ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The ``entity`` rows with these Ids, ``IDS_PER_QUERY`` a query (deleted ones are absent)."""
    unique = list(dict.fromkeys(str(i) for i in ids))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(unique), IDS_PER_QUERY):
        part = ", ".join(quote(i) for i in unique[start : start + IDS_PER_QUERY])
        rows += qbo_query(connection, f"SELECT * FROM {entity} WHERE Id IN ({part})")
    return rows


def qbo_batch_queries(
    connection: QuickBooksConnection, queries: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Several queries (entity name → statement without paging) in one batch request; a kind
    with over 1,000 rows is paged on. A fault on any query names the realm and the entity."""
    body = {
        "BatchItemRequest": [
            {"bId": name, "Query": f"{q} STARTPOSITION 1 MAXRESULTS {MAX_RESULTS}"}
            for name, q in queries.items()
        ]
    }
    answer = qbo_call(connection, "POST", "batch", body=body)
    rows_by_name: dict[str, list[dict[str, Any]]] = {}
    for item in answer.get("BatchItemResponse", []):
        name = item["bId"]
        if "Fault" in item:
            error = item["Fault"]["Error"][0]
            raise RuntimeError(
                f"QuickBooks realm {connection.realm_id}: reading {name} failed: "
                f"{error.get('Message')} ({error.get('code')}) {error.get('Detail', '')}"
            )
        rows = item.get("QueryResponse", {}).get(name, [])
        if len(rows) >= MAX_RESULTS:  # a big company file: page the rest
            rows = qbo_query(connection, queries[name])
        rows_by_name[name] = rows
    missing = set(queries) - set(rows_by_name)
    if missing:
        raise RuntimeError(
            f"QuickBooks realm {connection.realm_id}: the batch answered no "
            f"{', '.join(sorted(missing))}"
        )
    return rows_by_name


@task(**io_task_options(2, 10, 30))
def load_realm_reference(connection: QuickBooksConnection) -> dict[str, list[dict[str, Any]]]:
    """Customers (active and inactive), vendor and employee names, items and terms of a realm, in
    one batch request of queries (more pages only when a realm has over 1,000 of one kind)."""
    reference = qbo_batch_queries(
        connection,
        {
            "Customer": "SELECT * FROM Customer WHERE Active IN (true, false)",
            "Vendor": "SELECT * FROM Vendor WHERE Active IN (true, false)",
            "Employee": "SELECT * FROM Employee WHERE Active IN (true, false)",
            "Item": "SELECT * FROM Item WHERE Active IN (true, false)",
            "Term": "SELECT * FROM Term",
        },
    )
    get_run_logger().info(
        "realm %s: %s customers, %s items, %s terms",
        connection.realm_id,
        len(reference.get("Customer", [])),
        len(reference.get("Item", [])),
        len(reference.get("Term", [])),
    )
    return reference


@task(**io_task_options(2, 10, 30))
def find_marked_invoices(
    connection: QuickBooksConnection, created_since: datetime
) -> dict[str, dict[str, Any]]:
    """Invoices revbridge created since a time, by Opportunity Id (the PrivateNote marker): what
    a crash between create and write-back left behind is found again here."""
    since = created_since.strftime("%Y-%m-%dT%H:%M:%S%z")
    since = since[:-2] + ":" + since[-2:] if since[-5] in "+-" else since
    rows = qbo_query(connection, f"SELECT * FROM Invoice WHERE MetaData.CreateTime >= '{since}'")
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        opp_id = opportunity_id_from_invoice(row)
        if opp_id and "Voided" not in (row.get("PrivateNote") or ""):
            found[opp_id] = row
    return found


@task(**io_task_options(2, 10, 30))
def create_in_batches(
    connection: QuickBooksConnection, drafts: Sequence[Creatable]
) -> list[BatchResult]:
    """Create entities in batches of 30, each with the requestid of its body, so a task retry or a
    re-run after a crash replays QuickBooks' first answer instead of creating twice. Items that
    failed transiently are tried once more in a new batch (a new body, so a new requestid)."""
    logger = get_run_logger()
    results: dict[str, BatchResult] = {}
    pending = list(drafts)
    for round_ in range(2):
        retry: list[Creatable] = []
        for part in chunk(pending):
            body, mapping = batch_request(part)
            answer = qbo_call(
                connection, "POST", "batch", body=body, request_id=batch_request_id(body)
            )
            for result in parse_batch_response(answer, mapping):
                results[result.opp_id] = result
            retry += [d for d in part if results[d.record_id].transient]
            logger.info(
                "realm %s: batch of %s %s → %s created",
                connection.realm_id,
                len(part),
                part[0].entity,
                sum(1 for d in part if results[d.record_id].ok),
            )
        if not retry or round_ == 1:
            break
        time.sleep(_backoff(1))
        pending = retry
    for result in results.values():
        if not result.ok:
            logger.error(
                "realm %s: QuickBooks refused %s: %s",
                connection.realm_id,
                result.opp_id,
                result.message,
            )
    return [results[d.record_id] for d in drafts]
