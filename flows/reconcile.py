"""Monthly reconciliation: Salesforce Closed Won against QuickBooks invoiced.

1. Read the month's won deals (Closed Won and the post-closed stage) in one SOQL query.
2. Per realm: the month's invoices (one paged query), the invoices those deals name, and the
   payments and credit memos that settled them.
3. Read the deals the month's invoices name that step 1 did not return (any stage).
4. Join on the PrivateNote marker and explain every difference (`revbridge.reconcile`).
5. Report: a table artifact (one row per deal/invoice), a markdown artifact (totals per realm,
   a chart, every discrepancy), a CSV (and the chart) in the report directory, and Slack.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.states import Completed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from revbridge.config import RevbridgeConfig, load_config
from revbridge.config_sections import ReconciliationConfig
from revbridge.reconcile import (
    applications_frame,
    chart_png,
    deals_by_id_query,
    deals_frame,
    invoices_frame,
    markdown_report,
    parse_month,
    previous_month,
    reason_counts,
    reconcile,
    slack_text,
    table_rows,
    to_csv,
    won_deals_query,
)
from revbridge.soql import MAX_IDS
from tasks.audit import publish_audit
from tasks.ledger import read_ledger, save_report
from tasks.salesforce import query_records
from tasks.slack import post_message

DEFAULT_CONFIG = "config/demo.yaml"
ARTIFACT_KEY = "monthly-reconciliation"


@flow(name="monthly-reconciliation", log_prints=False)
def monthly_reconciliation(
    month: str | None = None,
    config_path: str = DEFAULT_CONFIG,
    report_dir: str | None = None,
) -> State[Any]:
    """Reconcile one month (``YYYY-MM``; default: the previous month). ``report_dir`` overrides
    the configured directory for the CSV (default ``reports``)."""
    logger = get_run_logger()
    month = month or previous_month(datetime.now(UTC).date())
    first, last = parse_month(month)
    config = load_config(config_path)
    settings = reconciliation_settings(config)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    won_stages = ("Closed Won", config.post_closed_stage)

    records = query_records(salesforce, won_deals_query(first, last, won_stages))
    realm_ids = {r.realm_id: name for name, r in config.realms.items()}
    record_types = {t: name for name, r in config.realms.items() for t in r.record_types}
    deals = deals_frame(records, realm_ids, record_types)

    invoices: list[pd.DataFrame] = []
    applications: list[pd.DataFrame] = []
    for name, realm_cfg in config.realms.items():
        named = deals.loc[deals["realm"] == name, "qb_invoice_id"].dropna().tolist()
        connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
        ledger = read_ledger(connection, first, last, named)
        invoices.append(invoices_frame(name, ledger["Invoice"]))
        applications.append(applications_frame(name, ledger["Payment"], ledger["CreditMemo"]))
    invoice_frame = _concat(invoices)

    missing = sorted(set(invoice_frame["marker"].dropna()) - set(deals["opportunity_id"]))
    for start in range(0, len(missing), MAX_IDS):
        records += query_records(salesforce, deals_by_id_query(missing[start : start + MAX_IDS]))
    if missing:
        deals = deals_frame(records, realm_ids, record_types)

    home = {name: r.currency for name, r in config.realms.items()}
    result = reconcile(month, deals, invoice_frame, _concat(applications), home, won_stages)
    logger.info(
        "%s: %s rows, %s discrepancies", month, len(result.details), len(result.discrepancies)
    )

    chart = chart_png(result)
    csv_path = save_report(report_dir or settings.report_dir, month, to_csv(result.details), chart)
    publish_audit(
        ARTIFACT_KEY,
        table_rows(result.details),
        markdown_report(result, chart, csv_path),
        description=f"Closed Won vs QuickBooks invoiced, {month}",
    )
    slack = load_block(SlackConnection, config.slack.block)
    channel = settings.slack_channel or config.slack.alerts_channel
    post_message(slack, slack_text(result, csv_path), channel=channel)
    counts = reason_counts(result)
    message = f"{month}: {len(result.details)} rows, {len(result.discrepancies)} discrepancies"
    return Completed(message=message, data={"month": month, "csv": csv_path, **counts})


def reconciliation_settings(config: RevbridgeConfig) -> ReconciliationConfig:
    """The ``reconciliation`` section, or its defaults while the config has none."""
    section = getattr(config, "reconciliation", None)
    return section if isinstance(section, ReconciliationConfig) else ReconciliationConfig()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    usable = [f for f in frames if not f.empty]
    return pd.concat(usable, ignore_index=True) if usable else frames[0]
