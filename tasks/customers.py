"""Customer-sync I/O: which Account fields the org has, and QuickBooks customer updates."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.faults import io_task_options
from tasks.quickbooks import qbo_call

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection
    from blocks.salesforce import SalesforceCredentials


@task(**io_task_options(2, 10))
def account_fields(credentials: SalesforceCredentials) -> list[str]:
    """The Account field names the org has (one describe call)."""
    described = credentials.get_client().restful("sobjects/Account/describe")
    return [str(f["name"]) for f in (described or {}).get("fields", [])]


@task(cache_policy=NO_CACHE)
def update_customers(
    connection: QuickBooksConnection, patches: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, str]:
    """Sparse-update customers: Customer Id → (SyncToken, fields). Each update carries the
    requestid of its body, so a retry replays instead of failing on a stale SyncToken.
    Returns Customer Id → error for the updates QuickBooks refused."""
    logger = get_run_logger()
    errors: dict[str, str] = {}
    for customer_id, (sync_token, fields) in patches.items():
        body = {"Id": customer_id, "SyncToken": sync_token, "sparse": True, **fields}
        canonical = json.dumps(body, sort_keys=True, default=str)
        request_id = "rb-cust-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
        try:
            qbo_call(connection, "POST", "customer", body=body, request_id=request_id)
        except Exception as exc:  # reported per customer; the others still go
            errors[customer_id] = f"{type(exc).__name__}: {exc}"
            logger.error("realm %s: customer %s refused: %s", connection.realm_id, customer_id, exc)
    logger.info(
        "realm %s: %s of %s customers updated",
        connection.realm_id,
        len(patches) - len(errors),
        len(patches),
    )
    return errors
