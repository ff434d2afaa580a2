"""QuickBooks reads for reconciliation: a month's invoices and what settled them, per realm."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.faults import io_task_options
from tasks.quickbooks import qbo_query, qbo_rows_by_id

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection


@task(**io_task_options(2, 10, 30))
def read_ledger(
    connection: QuickBooksConnection, first: date, last: date, invoice_ids: Sequence[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Invoices dated in ``first``..``last`` (one paged query), the invoices given by Id (those
    the month's deals name, whatever their date), and the payments and credit memos dated on or
    after the earliest of them (a payment or credit follows its invoice)."""
    invoices = qbo_query(
        connection,
        f"SELECT * FROM Invoice WHERE TxnDate >= '{first.isoformat()}' "
        f"AND TxnDate <= '{last.isoformat()}'",
    )
    have = {str(i["Id"]) for i in invoices}
    wanted = [i for i in dict.fromkeys(invoice_ids) if i not in have and i.isdigit()]
    invoices += qbo_rows_by_id(connection, "Invoice", wanted)
    dates = [str(i["TxnDate"]) for i in invoices if i.get("TxnDate")]
    since = min([*dates, first.isoformat()])
    payments = qbo_query(connection, f"SELECT * FROM Payment WHERE TxnDate >= '{since}'")
    credit_memos = qbo_query(connection, f"SELECT * FROM CreditMemo WHERE TxnDate >= '{since}'")
    get_run_logger().info(
        "realm %s: %s invoices, %s payments, %s credit memos",
        connection.realm_id,
        len(invoices),
        len(payments),
        len(credit_memos),
    )
    return {"Invoice": invoices, "Payment": payments, "CreditMemo": credit_memos}


@task(cache_policy=NO_CACHE)
def save_report(directory: str, month: str, csv_text: str, chart: bytes | None) -> str:
    """Write ``reconciliation-<month>.csv`` (and its chart beside it) atomically; returns the
    CSV's absolute path."""
    folder = Path(directory).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"reconciliation-{month}.csv"
    files: list[tuple[Path, bytes]] = [(target, csv_text.encode("utf-8"))]
    if chart:
        files.append((target.with_suffix(".png"), chart))
    for path, content in files:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(content)
        temporary.replace(path)
    get_run_logger().info("reconciliation %s written to %s", month, target)
    return str(target)
