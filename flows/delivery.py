"""Contract and delivery steps the Closed Won and approval flows run (plain functions that call
tasks, like `flows.invoicing`):

1. Before invoicing (`check_contracts_before_invoicing`): one SOQL query finds the signed
   contract of every deal about to be invoiced or sent for approval; with
   ``delivery.missing_contract: hold`` a deal without one is held (Needs Review, naming what is
   missing) and comes back next run.
2. After invoicing (`deliver_invoices`): per realm, each new invoice gets its contract uploaded
   as an Attachable (linked to the invoice, included in its e-mail) and is e-mailed through
   QuickBooks' send endpoint; invoices of earlier runs that were never e-mailed are retried.
   Every invoice's link (QB_Invoice_URL__c) and Invoice_Sent__c go back to Salesforce with the
   run's write-back (`revbridge.delivery.merge_delivery`).

Delivery never re-creates an invoice: it only reads, attaches and sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from revbridge.config import RevbridgeConfig
from revbridge.delivery import (
    ContractCheck,
    Delivery,
    DeliveryItem,
    check_contracts,
    delivery_table,
    undelivered_items,
    undelivered_query,
)
from revbridge.ids import to_18
from revbridge.models import Opportunity
from revbridge.report import escape_slack
from tasks.audit import publish_audit
from tasks.delivery import deliver_realm, find_contract_files
from tasks.salesforce import query_records

if TYPE_CHECKING:
    from blocks.salesforce import SalesforceCredentials
    from flows.invoicing import RealmResult


def contracts_needed(config: RevbridgeConfig) -> bool:
    """Whether runs look contracts up at all (attaching them, or holding deals without one)."""
    delivery = config.delivery
    return delivery.attach_contract or delivery.missing_contract == "hold"


def check_contracts_before_invoicing(
    salesforce: SalesforceCredentials, config: RevbridgeConfig, opps: Sequence[Opportunity]
) -> ContractCheck | None:
    """Each deal's newest signed contract, and which deals have none QuickBooks would take; None
    when the config needs no contracts or there are no deals."""
    if not contracts_needed(config) or not opps:
        return None
    ids = [o.id for o in opps]
    return check_contracts(ids, find_contract_files(salesforce, ids), config.delivery)


def deliver_invoices(
    salesforce: SalesforceCredentials,
    config: RevbridgeConfig,
    results: Iterable[RealmResult],
    opps: Iterable[Opportunity],
    check: ContractCheck | None,
    *,
    retry: bool = True,
) -> list[Delivery]:
    """Deliver the invoices this run created (the Invoiced outcomes of ``results``, for deals
    among ``opps``) and, with ``retry``, up to ``delivery.retry_limit`` earlier invoices never
    e-mailed. Returns one `Delivery` per invoice (the link is always there; problems name the
    deal and the file)."""
    delivery = config.delivery
    deals = {to_18(o.id): o for o in opps}
    items: list[DeliveryItem] = []
    for result in results:
        for outcome in result.outcomes:
            opp = deals.get(to_18(outcome.opportunity_id))
            if outcome.status == "Invoiced" and outcome.invoice_id and opp is not None:
                items.append(
                    DeliveryItem(
                        opportunity_id=opp.id,
                        name=opp.name,
                        realm=result.realm,
                        invoice_id=outcome.invoice_id,
                        bill_email=opp.account.billing_email if opp.account else None,
                    )
                )
    if retry and delivery.send_invoice and delivery.retry_limit:
        realm_keys = {r.realm_id: name for name, r in config.realms.items()}
        records = query_records(salesforce, undelivered_query(delivery.retry_limit))
        items += undelivered_items(records, realm_keys, skip=[i.opportunity_id for i in items])
    if not items:
        return []
    contracts = dict(check.contracts) if check else {}
    missing = dict(check.missing) if check else {}
    earlier = [i.opportunity_id for i in items if not i.fresh]
    if delivery.attach_contract and earlier:
        retry_check = check_contracts(earlier, find_contract_files(salesforce, earlier), delivery)
        contracts.update(retry_check.contracts)
        missing.update(retry_check.missing)
    deliveries: list[Delivery] = []
    for realm in config.realms:
        realm_items = [i for i in items if i.realm == realm]
        if not realm_items:
            continue
        connection = load_block(QuickBooksConnection, config.realm(realm).connection_block)
        deliveries += deliver_realm(
            connection, salesforce, realm_items, contracts, missing, delivery
        )
    publish_audit(
        "invoice-delivery",
        [d.model_dump(mode="json") for d in deliveries],
        delivery_table(deliveries),
        description="Invoice delivery: contracts attached, invoices e-mailed",
    )
    return deliveries


def delivery_errors(deliveries: Iterable[Delivery]) -> list[str]:
    """One line per failed delivery, naming the deal, the invoice and the file or fault."""
    return [
        f"{d.opportunity_id} ({d.name}): invoice {d.invoice_id} not delivered: "
        + "; ".join(d.problems)
        for d in deliveries
        if d.problems
    ]


def delivery_lines(deliveries: Iterable[Delivery]) -> list[str]:
    """Slack lines: what was attached and sent, and every warning or problem, per deal."""
    return [
        f"• {escape_slack(d.name or d.opportunity_id)} (invoice {d.invoice_id}): "
        f"{escape_slack(d.summary())}"
        for d in deliveries
        if d.attached or d.sent_to or d.warnings or d.problems
    ]
