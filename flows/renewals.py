"""Contract renewals → QuickBooks invoices (daily).

1. Read the Activated Contracts renewing on exactly ``as_of + days_ahead`` (one SOQL query), with
   their account, owner and renewal product; skip the ones already invoiced for this renewal.
2. Route each to its QuickBooks company by its Account's latest Opportunity record type (one
   more query), else ``routing.default``; contracts missing renewal data go to review.
3. Per company: invoices already made for these renewals are found by their PrivateNote marker
   (a crash before the write-back) and written back, not created again; the rest get their
   customer matched (or created) as Closed Won deals do, and one invoice each (batches, with
   the requestid of each batch body): TxnDate ``as_of``, DueDate the renewal date.
4. Write Last_Invoice_Date__c and QB_Renewal_Invoice_Id__c back to each Contract, report
   (artifact + Slack), and fail the run loudly if any contract errored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from flows.invoicing import customer_key, match_in_realm, resolve_customers
from revbridge.batch import chunk
from revbridge.config import RealmConfig, RevbridgeConfig, load_config
from revbridge.invoices import InvoiceError
from revbridge.matching import CustomerMatch
from revbridge.models import Problem
from revbridge.renewals import (
    MAX_IDS,
    ContractUpdate,
    RenewalContract,
    RenewalDraft,
    RenewalOutcome,
    RenewalRow,
    build_renewal_invoice,
    check_contract,
    contract_updates,
    contracts_query,
    eligibility,
    latest_record_type_query,
    latest_record_types,
    markdown_report,
    problems_text,
    renewal_from_invoice,
    route_renewal,
    slack_summary,
    target_renewal,
)
from tasks.audit import publish_audit
from tasks.quickbooks import create_in_batches, load_realm_reference
from tasks.receivables import invoices_due_on
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message

DEFAULT_CONFIG = "config/demo.yaml"
ARTIFACT_KEY = "renewals-audit"


@dataclass
class _Run:
    """The rows of the report, the write-backs and the errors, as the run goes."""

    rows: list[RenewalRow] = field(default_factory=list)
    updates: list[ContractUpdate] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(
        self,
        contract: RenewalContract,
        outcome: RenewalOutcome,
        *,
        realm: str = "",
        reason: str = "",
        customer: str | None = None,
        draft: RenewalDraft | None = None,
        invoice: dict[str, Any] | None = None,
    ) -> None:
        self.rows.append(
            RenewalRow(
                contract_id=contract.id,
                contract=contract.label,
                realm=realm,
                customer=customer,
                amount=draft.total if draft else None,
                currency=draft.currency if draft else contract.currency,
                renewal=contract.renewal,
                outcome=outcome,
                invoice_id=str(invoice["Id"]) if invoice else contract.renewal_invoice_id,
                doc_number=invoice.get("DocNumber") if invoice else None,
                reason=reason,
            )
        )
        if outcome == "Error":
            self.errors.append(f"{contract.label}: {reason}")
        if invoice is not None and outcome in {"Invoiced", "Already Invoiced"}:
            self.updates.append(
                ContractUpdate(
                    contract_id=contract.id,
                    invoice_id=str(invoice["Id"]),
                    invoice_date=date.fromisoformat(str(invoice["TxnDate"])[:10]),
                )
            )


@flow(name="contract-renewals", log_prints=False)
def contract_renewals(
    as_of: date | None = None, days_ahead: int = 7, config_path: str = DEFAULT_CONFIG
) -> State[Any]:
    """Invoice the contracts renewing ``days_ahead`` days after ``as_of`` (default: today,
    UTC). Run it for past days to backfill: a renewal is never invoiced twice."""
    logger = get_run_logger()
    today = as_of or datetime.now(UTC).date()
    renewal = target_renewal(today, days_ahead)
    config = load_config(config_path)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)
    run = _Run()

    contracts = [
        RenewalContract.from_record(r) for r in query_records(salesforce, contracts_query(renewal))
    ]
    due: list[RenewalContract] = []
    for contract in contracts:
        state = eligibility(contract, renewal)
        if state == "due":
            due.append(contract)
        elif state == "invoiced":
            run.add(
                contract,
                "Already Invoiced",
                reason=f"Last_Invoice_Date__c is {contract.last_invoice_date}",
            )
        else:
            run.add(contract, "Skipped", reason=state)
    logger.info("%s contracts renew on %s: %s due", len(contracts), renewal, len(due))

    by_realm = _route(salesforce, config, due, run)
    for name, group in by_realm.items():
        realm_cfg = config.realm(name)
        ready = []
        for contract in group:
            problems = check_contract(contract, realm_cfg)
            if problems:
                run.add(contract, "Needs Review", realm=name, reason=problems_text(problems))
            else:
                ready.append(contract)
        if ready:
            connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
            _invoice(name, realm_cfg, config, connection, ready, today, renewal, run)

    if run.updates:
        failures = update_records(salesforce, contract_updates(run.updates))
        run.errors += [f"{f.opportunity_id}: write-back refused: {f.message}" for f in failures]
    publish_audit(
        ARTIFACT_KEY,
        [r.model_dump(mode="json") for r in run.rows],
        markdown_report(run.rows, renewal),
        description=f"Contract renewals on {renewal} (as of {today})",
    )
    if any(r.outcome != "Already Invoiced" for r in run.rows) or run.errors:
        post_message(slack, slack_summary(run.rows, renewal), channel=config.slack.alerts_channel)

    counts = {
        o: sum(1 for r in run.rows if r.outcome == o)
        for o in ("Invoiced", "Already Invoiced", "Needs Review", "Error", "Skipped")
    }
    message = ", ".join(f"{k}: {v}" for k, v in counts.items() if v) or "nothing to do"
    if run.errors:
        return Failed(
            message=f"{len(run.errors)} error(s): " + "; ".join(run.errors[:5]), data=counts
        )
    return Completed(message=message, data=counts)


def _route(
    salesforce: SalesforceCredentials,
    config: RevbridgeConfig,
    contracts: Sequence[RenewalContract],
    run: _Run,
) -> dict[str, list[RenewalContract]]:
    """Realm name → its due contracts; unroutable ones are reported."""
    accounts = sorted({c.account.id for c in contracts if c.account})
    record_types: dict[str, str | None] = {}
    for part in chunk(accounts, MAX_IDS):
        record_types.update(
            latest_record_types(query_records(salesforce, latest_record_type_query(part)))
        )
    by_realm: dict[str, list[RenewalContract]] = {}
    for contract in contracts:
        if contract.account is None:
            problem = Problem(
                record_id=contract.id,
                field="AccountId",
                reason="the contract has no account to invoice",
            )
            run.add(contract, "Needs Review", reason=problems_text([problem]))
            continue
        realm = route_renewal(contract, record_types.get(contract.account.id), config)
        if isinstance(realm, Problem):
            run.add(contract, "Needs Review", reason=problems_text([realm]))
        else:
            by_realm.setdefault(realm, []).append(contract)
    return by_realm


def _invoice(
    realm: str,
    realm_cfg: RealmConfig,
    config: RevbridgeConfig,
    connection: QuickBooksConnection,
    contracts: Sequence[RenewalContract],
    today: date,
    renewal: date,
    run: _Run,
) -> None:
    """Invoice one realm's valid due contracts exactly once."""
    existing: dict[str, dict[str, Any]] = {}
    for invoice in invoices_due_on(connection, renewal):
        marked = renewal_from_invoice(invoice)
        if marked and marked[1] == renewal and "Voided" not in (invoice.get("PrivateNote") or ""):
            existing[marked[0]] = invoice
    todo = []
    for contract in contracts:
        found = existing.get(contract.id)
        if found is not None:
            run.add(
                contract,
                "Already Invoiced",
                realm=realm,
                invoice=found,
                customer=(found.get("CustomerRef") or {}).get("name"),
                reason="found the invoice an earlier run created: written back, not created",
            )
        else:
            todo.append(contract)
    if not todo:
        return

    reference = load_realm_reference(connection)
    pairs = [(c.account, c.currency or realm_cfg.currency) for c in todo if c.account is not None]
    matches = match_in_realm(pairs, reference, config)
    customer_ids = _customers(realm, realm_cfg.currency, connection, todo, matches, run)
    items = {i["Name"]: str(i["Id"]) for i in reference.get("Item", []) if i.get("Active", True)}
    drafts: list[tuple[RenewalContract, RenewalDraft, CustomerMatch]] = []
    for contract in todo:
        assert contract.account is not None
        key = customer_key(contract.account.id, contract.currency or realm_cfg.currency)
        customer_id = customer_ids.get(key)
        if customer_id is None:
            continue  # reported by _customers
        match = matches[key]
        try:
            draft = build_renewal_invoice(contract, realm_cfg, customer_id, items, today, renewal)
        except InvoiceError as exc:
            run.add(
                contract,
                "Needs Review",
                realm=realm,
                customer=match.display_name,
                reason=problems_text(exc.problems),
            )
            continue
        drafts.append((contract, draft, match))
    if not drafts:
        return
    answers = create_in_batches(connection, [d for _, d, _ in drafts])
    for (contract, draft, match), answer in zip(drafts, answers, strict=True):
        if answer.ok and answer.entity:
            run.add(
                contract,
                "Invoiced",
                realm=realm,
                customer=match.display_name,
                draft=draft,
                invoice=answer.entity,
            )
        else:
            retry = " (transient: retried next run)" if answer.transient else ""
            run.add(
                contract,
                "Error",
                realm=realm,
                customer=match.display_name,
                draft=draft,
                reason=f"QuickBooks refused the invoice: {answer.message}{retry}",
            )


def _customers(
    realm: str,
    home_currency: str,
    connection: QuickBooksConnection,
    contracts: Sequence[RenewalContract],
    matches: dict[str, CustomerMatch],
    run: _Run,
) -> dict[str, str]:
    """`customer_key` → QuickBooks Customer Id, creating the customers decided "new"; contracts
    whose account needs review, or whose new customer QuickBooks refused, are reported."""
    pairs = [(c.account, c.currency or home_currency) for c in contracts if c.account is not None]
    resolution = resolve_customers(connection, pairs, matches)
    for contract in contracts:
        assert contract.account is not None
        key = customer_key(contract.account.id, contract.currency or home_currency)
        if key in resolution.review:
            reason = f"Account: {resolution.review[key]}"
            run.add(contract, "Needs Review", realm=realm, reason=reason)
        elif key in resolution.refused:
            reason = f"QuickBooks refused the new customer: {resolution.refused[key].message}"
            run.add(contract, "Error", realm=realm, reason=reason)
    return resolution.ids
