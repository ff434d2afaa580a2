"""QuickBooks payments → Salesforce payment status.

1. Per realm, read what changed: Invoices, Payments and CreditMemos by CDC since the realm's
   watermark (never more than 30 days back), or the Ids a webhook event named.
2. Follow payments (and the payments that used a credit memo) to the invoices they touched, and
   read those invoices' current balance.
3. Pair every revbridge invoice (PrivateNote marker) with the Opportunity that links it, and
   decide: Payment_Status__c, Amount_Paid__c, the post-closed stage when fully paid, Needs Review
   when voided or deleted; keep only the fields that change.
4. Write those fields back (composite collections), tell each owner whose deal became paid or
   partially paid (or needs review) in Slack, and list unapplied payments.
5. Report (table + markdown artifact, Slack summary), move each realm's watermark past what it
   read when everything was written, and fail the run loudly if anything errored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from revbridge.config import RevbridgeConfig, load_config
from revbridge.payments import (
    MAX_IDS,
    InvoiceState,
    OpportunityPayment,
    PaymentChange,
    PaymentRow,
    cdc_start,
    decide,
    linked_ids,
    markdown_report,
    opportunities_query,
    owner_message,
    pair_invoices,
    payment_updates,
    qbo_time,
    slack_summary,
    unapplied_amount,
    unapplied_news,
)
from tasks.audit import publish_audit
from tasks.notify import notify_owners
from tasks.payments import read_by_ids, read_changes
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message
from tasks.state import read_state, write_state

DEFAULT_CONFIG = "config/demo.yaml"
STATE_VARIABLE = "payments-cdc-watermark"
AUDIT_KEY = "qbo-payments-audit"
TITLE = "QuickBooks payments → Salesforce"


@flow(name="qbo-payments-to-salesforce", log_prints=False)
def sync_payments(
    realm: str | None = None,
    changed_since: datetime | None = None,
    invoice_ids: list[str] | None = None,
    payment_ids: list[str] | None = None,
    credit_memo_ids: list[str] | None = None,
    config_path: str = DEFAULT_CONFIG,
) -> State[Any]:
    """Bring QuickBooks payments to Salesforce. With no parameters: every realm's changes since
    its watermark (the Prefect Variable ``payments-cdc-watermark``). ``realm``: one realm, by
    config name or QuickBooks realm id. ``invoice_ids`` / ``payment_ids`` / ``credit_memo_ids``:
    just those documents of ``realm`` (the webhook path). ``changed_since``: a re-sweep from that
    time (at most 30 days back). Only the watermark sweep moves the watermark."""
    logger = get_run_logger()
    now = datetime.now(UTC)
    config = load_config(config_path)
    try:
        names = _realm_names(config, realm)
    except KeyError as exc:
        return Failed(message=str(exc.args[0]))
    by_ids = bool(invoice_ids or payment_ids or credit_memo_ids)
    if by_ids and len(names) != 1:
        return Failed(message="invoice/payment/credit memo Ids need a realm")
    # Block.load is sync-compatible: typed as possibly a coroutine, a block in a sync flow
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)
    polling = not by_ids and changed_since is None
    state = (read_state(STATE_VARIABLE) or {}) if polling else {}

    rows: list[PaymentRow] = []
    errors: list[str] = []
    changes: list[tuple[str, PaymentChange]] = []
    ends: dict[str, dict[str, Any]] = {}
    for name in names:
        realm_cfg = config.realm(name)
        connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
        try:
            if by_ids:
                invoices, payments = _read_named(
                    connection, invoice_ids or [], payment_ids or [], credit_memo_ids or []
                )
            else:
                stored = state.get(name) or {}
                start = qbo_time(stored["since"]) if stored.get("since") else None
                since = cdc_start(changed_since or start, now)
                changed, end = read_changes(connection, since)
                invoices, payments = _read_changed(connection, changed)
            known = (state.get(name) or {}).get("unapplied", {}) if polling else None
            unapplied_rows, unapplied = _unapplied(name, payments, known)
            realm_changes, realm_rows = _decide(
                salesforce, config, name, realm_cfg.realm_id, invoices, now
            )
            if polling:
                ends[name] = {"since": end.isoformat(), "unapplied": unapplied}
        except Exception as exc:
            logger.exception("realm %s: reading payments failed", name)
            errors.append(f"realm {name}: {type(exc).__name__}: {exc}")
            ends.pop(name, None)
            continue
        changes += [(name, c) for c in realm_changes]
        rows += unapplied_rows + realm_rows

    failed = _write_back(salesforce, changes, rows, errors, ends)
    _notify(slack, config, [c for _, c in changes if c.notice and c.opportunity.id not in failed])
    _report(slack, config.slack.alerts_channel, rows)
    if polling and ends:
        write_state(STATE_VARIABLE, {**state, **ends})

    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    message = ", ".join(f"{k}: {v}" for k, v in counts.items()) or "nothing to do"
    if errors:
        return Failed(message=f"{len(errors)} error(s): " + "; ".join(errors[:5]), data=counts)
    return Completed(message=message, data=counts)


def _realm_names(config: RevbridgeConfig, realm: str | None) -> list[str]:
    if realm is None:
        return list(config.realms)
    if realm in config.realms:
        return [realm]
    for name, realm_cfg in config.realms.items():
        if realm_cfg.realm_id == realm:
            return [name]
    raise KeyError(f"unknown realm {realm!r} (known: {', '.join(config.realms)})")


def _read_named(
    connection: QuickBooksConnection,
    invoice_ids: list[str],
    payment_ids: list[str],
    credit_memo_ids: list[str],
) -> tuple[list[InvoiceState], list[dict[str, Any]]]:
    """The named documents, as the webhook path gets them."""
    payments = read_by_ids(connection, "Payment", payment_ids) if payment_ids else []
    memos = read_by_ids(connection, "CreditMemo", credit_memo_ids) if credit_memo_ids else []
    return _follow(connection, {}, set(invoice_ids), payments, memos)


def _read_changed(
    connection: QuickBooksConnection, changed: dict[str, list[dict[str, Any]]]
) -> tuple[list[InvoiceState], list[dict[str, Any]]]:
    """What CDC returned, plus the invoices its payments and credit memos touched."""
    invoices = {str(r["Id"]): r for r in changed.get("Invoice", [])}
    return _follow(
        connection, invoices, set(), changed.get("Payment", []), changed.get("CreditMemo", [])
    )


def _follow(
    connection: QuickBooksConnection,
    invoices: dict[str, dict[str, Any]],
    wanted: set[str],
    payments: list[dict[str, Any]],
    memos: list[dict[str, Any]],
) -> tuple[list[InvoiceState], list[dict[str, Any]]]:
    """Credit memos → the payments that applied them → invoices; read the invoices not in hand.
    An invoice asked for by Id that QuickBooks no longer returns was deleted."""
    known = {str(p["Id"]) for p in payments}
    via_memos = [i for m in memos for i in linked_ids(m, "Payment") if i not in known]
    if via_memos:
        payments = payments + read_by_ids(connection, "Payment", via_memos)
    wanted = wanted | {i for p in payments for i in linked_ids(p, "Invoice")}
    missing = sorted(wanted - set(invoices))
    if missing:
        found = read_by_ids(connection, "Invoice", missing)
        invoices = {**invoices, **{str(r["Id"]): r for r in found}}
    states = [InvoiceState.from_qbo(r) for r in invoices.values()]
    states += [InvoiceState.gone(i) for i in sorted(wanted - set(invoices))]
    return states, payments


def _unapplied(
    realm: str, payments: list[dict[str, Any]], known: dict[str, str] | None
) -> tuple[list[PaymentRow], dict[str, str]]:
    """Rows for payments holding unapplied money. Only the watermark sweep (``known`` given)
    announces them in Slack, once per payment and amount; other runs list them in the artifact."""
    found, remembered = unapplied_news(payments, known or {})
    rows = []
    for payment, news in found:
        amount = unapplied_amount(payment)
        customer = (payment.get("CustomerRef") or {}).get("name") or "a customer"
        currency = (payment.get("CurrencyRef") or {}).get("value") or ""
        rows.append(
            PaymentRow(
                realm=realm,
                invoice=f"payment {payment['Id']}",
                total=f"{currency} {amount:,.2f}".strip(),
                outcome="Unapplied",
                reason=f"{currency} {amount:,.2f} from {customer} is applied to no invoice",
                announce=news and known is not None,
            )
        )
    return rows, remembered


def _decide(
    salesforce: SalesforceCredentials,
    config: RevbridgeConfig,
    realm: str,
    realm_id: str,
    invoices: list[InvoiceState],
    now: datetime,
) -> tuple[list[PaymentChange], list[PaymentRow]]:
    rows: list[PaymentRow] = []
    opps = _opportunities(salesforce, realm_id, invoices)
    pairs, skipped = pair_invoices(invoices, opps, realm_id)
    changes = [decide(opp, invoice, config.post_closed_stage, now) for opp, invoice in pairs]
    for change in changes:
        if change.notice == "review":
            reason = change.invoice.review_reason or ""
            rows.append(PaymentRow.of(realm, change, "Needs Review", reason))
        else:
            rows.append(PaymentRow.of(realm, change, "Updated" if change.changed else "Unchanged"))
    for skip in skipped:
        rows.append(
            PaymentRow(
                realm=realm,
                invoice=skip.invoice.label,
                opportunity_id=skip.opportunity_id,
                outcome="Skipped",
                reason=skip.reason,
            )
        )
    return changes, rows


def _opportunities(
    salesforce: SalesforceCredentials, realm_id: str, invoices: list[InvoiceState]
) -> list[OpportunityPayment]:
    invoice_ids = sorted({i.invoice_id for i in invoices})
    opp_ids = sorted({i.opportunity_id for i in invoices if i.opportunity_id})
    records: list[dict[str, Any]] = []
    for start in range(0, max(len(invoice_ids), len(opp_ids)), MAX_IDS):
        part = slice(start, start + MAX_IDS)
        soql = opportunities_query(realm_id, invoice_ids[part], opp_ids[part])
        records += query_records(salesforce, soql)
    unique = {r["Id"]: r for r in records}
    return [OpportunityPayment.from_record(r) for r in unique.values()]


def _write_back(
    salesforce: SalesforceCredentials,
    changes: list[tuple[str, PaymentChange]],
    rows: list[PaymentRow],
    errors: list[str],
    ends: dict[str, dict[str, Any]],
) -> set[str]:
    """Write the changed fields; a refused record becomes an Error row, and its realm's
    watermark stays put so the next sweep tries again. Returns the refused Opportunity Ids."""
    bodies = payment_updates(c for _, c in changes)
    if not bodies:
        return set()
    failures = {f.opportunity_id: f for f in update_records(salesforce, bodies)}
    for realm, change in changes:
        failure = failures.get(change.opportunity.id)
        if failure is None:
            continue
        reason = f"Salesforce refused the update: {failure.message}"
        rows[:] = [r for r in rows if r.opportunity_id != change.opportunity.id]
        rows.append(PaymentRow.of(realm, change, "Error", reason))
        errors.append(f"{change.opportunity.id} ({change.opportunity.name}): {reason}")
        ends.pop(realm, None)
    return set(failures)


def _notify(slack: SlackConnection, config: RevbridgeConfig, changes: list[PaymentChange]) -> None:
    """Tell each owner (a DM, or named in the alerts channel). The status is already written: a
    lost notice is logged by the task and neither fails the run nor repeats the write-back."""
    if not changes:
        return
    messages = [
        (change.opportunity.owner_email, change.opportunity.owner_name, owner_message(change))
        for change in changes
    ]
    notify_owners(slack, messages, config.slack.alerts_channel)


def _report(slack: SlackConnection, channel: str, rows: list[PaymentRow]) -> None:
    publish_audit(
        AUDIT_KEY,
        [r.model_dump(mode="json") for r in rows],
        markdown_report(rows, TITLE),
        description=TITLE,
    )
    summary = slack_summary(rows, TITLE)
    if summary:
        post_message(slack, summary, channel=channel)


__all__ = ["STATE_VARIABLE", "sync_payments"]
