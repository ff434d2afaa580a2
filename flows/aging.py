"""Receivables aging (daily).

1. Per QuickBooks company: every open invoice (Balance > 0) in one paged query; keep the ones
   revbridge created (their PrivateNote names the Opportunity, or the Contract it renews).
2. Read those Opportunities, plus every Opportunity whose aging fields are set (a paid invoice
   must clear them), in Id-listed SOQL queries; and the renewal invoices' Contracts.
3. Decide (pure, `revbridge.aging`): days past due and bucket per deal; which change; which
   owners to alert (the bucket moved to 31-60 or worse since the stored one).
4. Write Days_Outstanding__c / Aging_Bucket__c where they changed (composite collections).
5. Renewal reminders (`revbridge.reminders`): a renewal invoice still open ``days_after_due``
   days after its due date is e-mailed again through QuickBooks, once; Renewal_Reminder_Sent__c.
6. Escalation: an invoice more than ``escalate_days`` past due gets one Salesforce Task for the
   owner of its deal (or contract), linked to it.
7. Tell people: a realm with a digest channel (``reminders.digest_channels``) gets one digest
   there a day (the Prefect Variable ``receivables-digest`` remembers the day); the others get
   owner DMs (bucket moves, reminders; else the alerts channel) and their summary in the alerts
   channel. Publish the audit artifact; fail loudly on any error.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from flows.reminders import create_tasks, renewal_contracts, send_reminders
from revbridge.aging import (
    MAX_IDS,
    AgingDecision,
    OpenInvoice,
    StoredAging,
    age,
    aged_query,
    aging_updates,
    alert_text,
    audit_rows,
    bucket_totals,
    markdown_report,
    opportunities_query,
    orphans,
)
from revbridge.batch import chunk
from revbridge.config import load_config
from revbridge.reminders import (
    EscalationRow,
    ReminderRow,
    RenewalInvoice,
    deal_escalations,
    markdown_section,
    realm_digest,
    reminder_text,
    renewal_escalations,
)
from tasks.audit import publish_audit
from tasks.faults import TransientError
from tasks.notify import notify_owners
from tasks.receivables import open_invoices
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message
from tasks.state import read_state, write_state

DEFAULT_CONFIG = "config/demo.yaml"
ARTIFACT_KEY = "aging-audit"
DIGEST_VARIABLE = "receivables-digest"  # realm → the last day its digest was posted (daily)


@flow(name="receivables-aging", log_prints=False)
def receivables_aging(as_of: date | None = None, config_path: str = DEFAULT_CONFIG) -> State[Any]:
    """Age every open revbridge invoice as of ``as_of`` (default: today, UTC) and write the
    result to its Opportunity; alert owners once per bucket change; remind customers of unpaid
    renewal invoices once; give invoices long past due one Task for their owner."""
    logger = get_run_logger()
    today = as_of or datetime.now(UTC).date()
    config = load_config(config_path)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)
    errors: list[str] = []

    settings = config.reminders
    invoices: list[OpenInvoice] = []
    renewals: list[RenewalInvoice] = []
    scanned: list[str] = []
    connections: dict[str, QuickBooksConnection] = {}
    for name, realm_cfg in config.realms.items():
        connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
        try:
            rows = open_invoices(connection)
        except TransientError as exc:  # the other realms still age; this one is left as stored
            errors.append(f"realm {name}: open invoices unreadable: {exc}")
            continue
        scanned.append(realm_cfg.realm_id)
        connections[realm_cfg.realm_id] = connection
        invoices += [i for r in rows if (i := OpenInvoice.from_qbo(r, realm_cfg.realm_id))]
        renewals += [v for r in rows if (v := RenewalInvoice.from_qbo(r, realm_cfg.realm_id))]

    records = query_records(salesforce, aged_query())
    known = {r["Id"] for r in records}
    missing = sorted({i.opportunity_id for i in invoices} - known)
    for part in chunk(missing, MAX_IDS):
        records += query_records(salesforce, opportunities_query(part))
    stored = [StoredAging.from_record(r) for r in records]
    decisions = age(stored, invoices, today, scanned)
    for invoice in orphans(stored, invoices):
        logger.warning(
            "invoice %s (realm %s) names Opportunity %s, which Salesforce does not have",
            invoice.label,
            invoice.realm_id,
            invoice.opportunity_id,
        )
    logger.info(
        "%s deals aged: %s to write, %s alerts",
        len(decisions),
        sum(d.write for d in decisions),
        sum(d.alert for d in decisions),
    )

    refused = _write_back(salesforce, decisions, errors)

    follow_up = settings.days_after_due is not None or settings.escalate_days is not None
    overdue = [r for r in renewals if r.due_date < today] if follow_up else []
    contracts = renewal_contracts(salesforce, overdue) if overdue else {}
    reminders: list[ReminderRow] = []
    if settings.days_after_due is not None and contracts:
        reminders, problems = send_reminders(
            salesforce, connections, overdue, contracts, today, settings.days_after_due
        )
        errors += problems
    tasks: list[EscalationRow] = []
    if settings.escalate_days is not None:
        escalations = deal_escalations(decisions, today, settings.escalate_days)
        escalations += renewal_escalations(overdue, contracts, today, settings.escalate_days)
        tasks, problems = create_tasks(salesforce, escalations, settings, today)
        errors += problems

    names = {r.realm_id: n for n, r in config.realms.items()}
    digests = settings.digest_channels
    alerts = [d for d in decisions if d.alert and d.opportunity.id not in refused]
    reminded = [r for r in reminders if r.outcome == "Reminded"]
    direct = [
        (d.opportunity.owner_email, d.opportunity.owner_name, alert_text(d), d.opportunity.id)
        for d in alerts
        if names.get(d.realm_id or "") not in digests
    ] + [
        (r.owner_email, r.owner_name, reminder_text(r), r.contract_id)
        for r in reminded
        if names.get(r.realm_id) not in digests
    ]
    if direct:
        sent = notify_owners(
            slack, [(e, n, t) for e, n, t, _ in direct], config.slack.alerts_channel
        )
        errors += [
            f"{record_id}: the owner's message was not delivered"
            for (_, _, _, record_id), where in zip(direct, sent, strict=True)
            if where is None
        ]

    per_realm = {
        name: [d for d in decisions if d.realm_id == config.realms[name].realm_id]
        for name in config.realms
    }
    posted = read_state(DIGEST_VARIABLE) or {}
    for name, realm_decisions in per_realm.items():
        realm_id = config.realms[name].realm_id
        busy = any(r.realm_id == realm_id for r in reminders) or any(
            t.escalation.realm_id == realm_id for t in tasks
        )
        if name in digests and posted.get(name) == today.isoformat():
            logger.info("realm %s: the digest for %s is already in %s", name, today, digests[name])
        elif realm_decisions or busy:
            post_message(
                slack,
                realm_digest(
                    name, realm_id, realm_decisions, reminders, tasks, detailed=name in digests
                ),
                channel=digests.get(name, config.slack.alerts_channel),
            )
            if name in digests:
                posted[name] = today.isoformat()
                write_state(DIGEST_VARIABLE, posted)
    written = [d for d in decisions if d.write and d.opportunity.id not in refused]
    publish_audit(
        ARTIFACT_KEY,
        audit_rows(decisions, names),
        markdown_report(
            {name: bucket_totals(ds) for name, ds in per_realm.items()},
            changes=len(written),
            alerts=len(alerts),
            cleared=sum(1 for d in written if d.cleared),
        )
        + "\n"
        + markdown_section(reminders, tasks),
        description=f"Receivables aging as of {today}",
    )

    counts = {
        "open": sum(1 for d in decisions if d.bucket),
        "updated": len(written),
        "alerted": len(alerts),
        "cleared": sum(1 for d in written if d.cleared),
        "reminded": len(reminded),
        "tasks": sum(1 for t in tasks if t.outcome == "Created"),
    }
    message = ", ".join(f"{k}: {v}" for k, v in counts.items())
    if errors:
        return Failed(message=f"{len(errors)} error(s): " + "; ".join(errors[:5]), data=counts)
    return Completed(message=message, data=counts)


def _write_back(
    salesforce: SalesforceCredentials, decisions: list[AgingDecision], errors: list[str]
) -> set[str]:
    """Write the changed aging fields; returns the Opportunity Ids Salesforce refused."""
    bodies = aging_updates(decisions)
    if not bodies:
        return set()
    failures = update_records(salesforce, bodies)
    errors += [f"{f.opportunity_id}: aging write-back refused: {f.message}" for f in failures]
    return {f.opportunity_id for f in failures}
