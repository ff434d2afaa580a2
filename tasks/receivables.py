"""QuickBooks invoice reads for the aging and renewal flows: one paged query per realm."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from tasks.faults import io_task_options
from tasks.quickbooks import qbo_query

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection


@task(**io_task_options(2, 10, 30))
def open_invoices(connection: QuickBooksConnection) -> list[dict[str, Any]]:
    """Every invoice of the realm with an open balance (paged by 1,000)."""
    rows = qbo_query(connection, "SELECT * FROM Invoice WHERE Balance > '0'")
    get_run_logger().info("realm %s: %s open invoices", connection.realm_id, len(rows))
    return rows


@task(**io_task_options(2, 10, 30))
def invoices_due_on(connection: QuickBooksConnection, due: date) -> list[dict[str, Any]]:
    """Every invoice of the realm due on ``due`` (where renewal invoices for that day are)."""
    rows = qbo_query(connection, f"SELECT * FROM Invoice WHERE DueDate = '{due.isoformat()}'")
    get_run_logger().info("realm %s: %s invoices due %s", connection.realm_id, len(rows), due)
    return rows
