"""Receivables aging (daily).

1. Per QuickBooks company: every open invoice (Balance > 0) in one paged query; keep the ones
   revbridge created (their PrivateNote names the Opportunity).
2. Read those Opportunities, plus every Opportunity whose aging fields are set (a paid invoice
   must clear them), in Id-listed SOQL queries.
3. Decide (pure, `revbridge.aging`): days past due and bucket per deal; which change; which
   owners to alert (the bucket moved to 31-60 or worse since the stored one).
4. Write Days_Outstanding__c / Aging_Bucket__c where they changed (composite collections).
5. Alert the owners of the deals whose new bucket was stored (DM, else the alerts channel),
   post a digest per company, publish the audit artifact; fail loudly on any error.
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
    digest_text,
    markdown_report,
    opportunities_query,
    orphans,
)
from revbridge.batch import chunk
from revbridge.config import load_config
from tasks.audit import publish_audit
from tasks.faults import TransientError
from tasks.notify import notify_owners
from tasks.receivables import open_invoices
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message

DEFAULT_CONFIG = "config/demo.yaml"
ARTIFACT_KEY = "aging-audit"


@flow(name="receivables-aging", log_prints=False)
def receivables_aging(as_of: date | None = None, config_path: str = DEFAULT_CONFIG) -> State[Any]:
    """Age every open revbridge invoice as of ``as_of`` (default: today, UTC) and write the
    result to its Opportunity; alert owners once per bucket change."""
    logger = get_run_logger()
    today = as_of or datetime.now(UTC).date()
    config = load_config(config_path)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)
    errors: list[str] = []

    invoices: list[OpenInvoice] = []
    scanned: list[str] = []
    for name, realm_cfg in config.realms.items():
        connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
        try:
            rows = open_invoices(connection)
        except TransientError as exc:  # the other realms still age; this one is left as stored
            errors.append(f"realm {name}: open invoices unreadable: {exc}")
            continue
        scanned.append(realm_cfg.realm_id)
        invoices += [i for r in rows if (i := OpenInvoice.from_qbo(r, realm_cfg.realm_id))]

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
    alerts = [d for d in decisions if d.alert and d.opportunity.id not in refused]
    if alerts:
        sent = notify_owners(
            slack,
            [(d.opportunity.owner_email, d.opportunity.owner_name, alert_text(d)) for d in alerts],
            config.slack.alerts_channel,
        )
        errors += [
            f"{d.opportunity.id} ({d.opportunity.name}): the owner's alert was not delivered"
            for d, where in zip(alerts, sent, strict=True)
            if where is None
        ]

    names = {r.realm_id: n for n, r in config.realms.items()}
    per_realm = {
        name: [d for d in decisions if d.realm_id == config.realms[name].realm_id]
        for name in config.realms
    }
    for name, realm_decisions in per_realm.items():
        if realm_decisions:
            post_message(
                slack, digest_text(name, realm_decisions), channel=config.slack.alerts_channel
            )
    written = [d for d in decisions if d.write and d.opportunity.id not in refused]
    publish_audit(
        ARTIFACT_KEY,
        audit_rows(decisions, names),
        markdown_report(
            {name: bucket_totals(ds) for name, ds in per_realm.items()},
            changes=len(written),
            alerts=len(alerts),
            cleared=sum(1 for d in written if d.cleared),
        ),
        description=f"Receivables aging as of {today}",
    )

    counts = {
        "open": sum(1 for d in decisions if d.bucket),
        "updated": len(written),
        "alerted": len(alerts),
        "cleared": sum(1 for d in written if d.cleared),
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
