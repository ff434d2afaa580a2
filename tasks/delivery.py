"""Delivery tasks: the signed contracts in Salesforce Files, their upload to QuickBooks as
Attachables, the invoice e-mail through QuickBooks' send endpoint.

One realm's deliveries run in one task and never raise for a single invoice: each failure is
kept on that invoice's `Delivery` (named by deal and file) and retried by a later run; every
QuickBooks write carries a ``requestid`` (`revbridge.delivery`), so a retry never attaches or
e-mails twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from quickbooks.exceptions import QuickbooksException
from simple_salesforce.api import SFType
from simple_salesforce.exceptions import SalesforceError

from revbridge.batch import chunk
from revbridge.config_sections import DeliveryConfig
from revbridge.delivery import (
    MAX_LINKED_IDS,
    ContractFile,
    Delivery,
    DeliveryItem,
    contract_files_query,
    invoice_url,
    parse_contract_files,
    send_request_id,
    upload_body,
    upload_request_id,
)
from revbridge.ids import to_18
from revbridge.soql import quote
from tasks.faults import TransientError, io_task_options
from tasks.quickbooks import qbo_batch_queries, qbo_call

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection
    from blocks.salesforce import SalesforceCredentials


@task(**io_task_options(2, 10, 30))
def find_contract_files(
    credentials: SalesforceCredentials, opportunity_ids: Sequence[str]
) -> list[ContractFile]:
    """Every file linked to these Opportunities, with its latest version: one SOQL query per
    500 deals (ContentDocumentLink needs the LinkedEntityId filter)."""
    sf = credentials.get_client()
    files: list[ContractFile] = []
    for part in chunk(list(dict.fromkeys(opportunity_ids)), MAX_LINKED_IDS):
        files += parse_contract_files(sf.query_all(contract_files_query(part))["records"])
    get_run_logger().info(
        "Salesforce Files: %s files on %s deals", len(files), len(opportunity_ids)
    )
    return files


@task(cache_policy=NO_CACHE)
def deliver_realm(
    connection: QuickBooksConnection,
    credentials: SalesforceCredentials,
    items: Sequence[DeliveryItem],
    contracts: Mapping[str, ContractFile],
    missing: Mapping[str, str],
    config: DeliveryConfig,
) -> list[Delivery]:
    """Deliver one realm's invoices: attach each deal's contract (``contracts``; ``missing``
    says why a deal has none), then e-mail the invoice; the link is always returned. Invoices
    from earlier runs are first checked in one batch read (already e-mailed? file already
    attached? voided or deleted?)."""
    logger = get_run_logger()
    earlier = _earlier_state(connection, [i.invoice_id for i in items if not i.fresh])
    deliveries = []
    for item in items:
        delivery = _deliver_one(connection, credentials, item, contracts, missing, config, earlier)
        deliveries.append(delivery)
        log = logger.info if delivery.ok else logger.error
        log("deal %s, invoice %s: %s", item.opportunity_id, item.invoice_id, delivery.summary())
    return deliveries


class _Earlier:
    """What QuickBooks already holds for invoices of earlier runs."""

    def __init__(self, invoices: list[dict[str, Any]], attachables: list[dict[str, Any]]) -> None:
        self.invoices = {str(i["Id"]): i for i in invoices}
        self.files: dict[str, set[str]] = {}
        for attachable in attachables:
            for ref in attachable.get("AttachableRef") or ():
                entity = ref.get("EntityRef") or {}
                if entity.get("type") == "Invoice" and attachable.get("FileName"):
                    self.files.setdefault(str(entity.get("value")), set()).add(
                        str(attachable["FileName"])
                    )

    def sent_to(self, invoice_id: str) -> str | None:
        invoice = self.invoices.get(invoice_id) or {}
        if invoice.get("EmailStatus") != "EmailSent":
            return None
        return str((invoice.get("BillEmail") or {}).get("Address") or "") or "(address unknown)"

    def gone(self, invoice_id: str) -> str | None:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            return f"invoice {invoice_id} is no longer in QuickBooks (deleted): not delivered"
        if "Voided" in str(invoice.get("PrivateNote") or ""):
            return f"invoice {invoice_id} was voided in QuickBooks: not delivered"
        return None


def _earlier_state(connection: QuickBooksConnection, invoice_ids: list[str]) -> _Earlier | None:
    if not invoice_ids:
        return None
    ids = ", ".join(quote(i) for i in dict.fromkeys(invoice_ids))
    rows = qbo_batch_queries(
        connection,
        {
            "Invoice": f"SELECT * FROM Invoice WHERE Id IN ({ids})",
            "Attachable": "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = "
            f"'Invoice' AND AttachableRef.EntityRef.value IN ({ids})",
        },
    )
    return _Earlier(rows.get("Invoice", []), rows.get("Attachable", []))


def _deliver_one(
    connection: QuickBooksConnection,
    credentials: SalesforceCredentials,
    item: DeliveryItem,
    contracts: Mapping[str, ContractFile],
    missing: Mapping[str, str],
    config: DeliveryConfig,
    earlier: _Earlier | None,
) -> Delivery:
    url = invoice_url(connection.environment, item.invoice_id)
    warnings: list[str] = []
    problems: list[str] = []
    attached: str | None = None
    sent_to = earlier.sent_to(item.invoice_id) if earlier else None
    gone = earlier.gone(item.invoice_id) if earlier else None
    if gone:
        problems.append(gone)
    elif config.attach_contract and sent_to is None:
        key = to_18(item.opportunity_id)
        contract = contracts.get(key)
        if key in missing or contract is None:
            warnings.append(missing.get(key, "no signed contract in Salesforce Files"))
        elif earlier and contract.file_name in earlier.files.get(item.invoice_id, set()):
            attached = contract.file_name  # an earlier run attached it
        else:
            attached, problem = _attach(connection, credentials, item, contract)
            if problem:
                problems.append(problem)
    if config.send_invoice and sent_to is None and not problems:
        sent_to, problem = _send(connection, item)
        if problem:
            problems.append(problem)
    elif config.send_invoice and sent_to is None and not gone:
        problems.append("not sent: the contract upload failed (both are retried next run)")
    return Delivery(
        opportunity_id=item.opportunity_id,
        name=item.name,
        realm=item.realm,
        invoice_id=item.invoice_id,
        url=url,
        attached=attached,
        sent_to=sent_to,
        warnings=tuple(warnings),
        problems=tuple(problems),
    )


def _attach(
    connection: QuickBooksConnection,
    credentials: SalesforceCredentials,
    item: DeliveryItem,
    contract: ContractFile,
) -> tuple[str | None, str | None]:
    """(file name attached, None) or (None, why not)."""
    name = contract.file_name
    try:
        sf = credentials.get_client()
        versions = cast(SFType, sf.ContentVersion)  # simple-salesforce types it as a union
        data = versions.get_base64(contract.version_id, base64_field="VersionData")
    except (SalesforceError, requests.RequestException) as exc:
        return None, f"{name}: reading it from Salesforce failed: {_short(exc)}"
    body, content_type = upload_body(contract, item.invoice_id, data)
    try:
        answer = qbo_call(
            connection,
            "POST",
            "upload",
            body=body,
            content_type=content_type,
            request_id=upload_request_id(item.invoice_id, contract),
        )
    except (QuickbooksException, TransientError, requests.RequestException) as exc:
        return None, f"{name}: QuickBooks refused the attachment: {_short(exc)}"
    result = (answer.get("AttachableResponse") or [{}])[0]
    if "Attachable" not in result:
        fault = (result.get("Fault") or {}).get("Error") or [{}]
        return None, f"{name}: QuickBooks refused the attachment: {fault[0].get('Detail')}"
    return name, None


def _send(connection: QuickBooksConnection, item: DeliveryItem) -> tuple[str | None, str | None]:
    """(address the invoice went to, None) or (None, why not)."""
    try:
        answer = qbo_call(
            connection,
            "POST",
            f"invoice/{item.invoice_id}/send",
            params={"sendTo": item.bill_email} if item.bill_email else None,
            content_type="application/octet-stream",
            request_id=send_request_id(item.invoice_id, item.bill_email),
        )
    except (QuickbooksException, TransientError, requests.RequestException) as exc:
        return None, f"sending invoice {item.invoice_id} failed: {_short(exc)}"
    address = ((answer.get("Invoice") or {}).get("BillEmail") or {}).get("Address")
    return str(address or item.bill_email or ""), None


def _short(exc: BaseException) -> str:
    if isinstance(exc, QuickbooksException):
        detail = f" {exc.detail}" if getattr(exc, "detail", "") else ""
        return f"{exc.message} ({exc.error_code}){detail}"[:500]
    return str(exc)[:500]
