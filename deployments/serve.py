"""Serve every revbridge deployment from this process: ``python -m deployments.serve``.

The Closed Won flow polls on an interval; the approval flow has no schedule: the Closed Won flow
starts one run of it per big deal, and the runner here executes it (and resumes it when finance
decides in the UI or in Slack). A Salesforce push (Outbound Message or Flow callout, through the
receiver) runs the Closed Won flow at once for that one deal. Payments sync on every
``revbridge.qbo.change`` event the webhook receiver emits, with a CDC sweep every 15 minutes as
the backstop; aging, renewals and the token health check run daily, customer sync hourly, the
cleanse audit weekly and the reconciliation monthly. ``prefect.yaml`` declares the same
deployments for work pools.

``--poll-seconds`` (default 1) is how often the runner asks the Prefect API for runs to start
(``Runner(query_seconds=...)``; Prefect's own default, ``PREFECT_RUNNER_POLL_FREQUENCY``, is
10 s). A run an event trigger creates waits for the next poll, so this bounds how soon a pushed
deal is invoiced: ~half of it on average, all of it at worst. Each poll is one request
(``POST /deployments/get_scheduled_flow_runs``) for all served deployments together, plus a
"deployment ready" write the server queues: at 1 s, ~2% of a core of a PostgreSQL-backed server
(``benchmarks/README.md``, latency). With PostgreSQL and 1 s, a pushed deal is invoiced in
< 5 s at p95; with Prefect's 10 s, in ~9-11 s.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from prefect import serve
from prefect.events import DeploymentEventTrigger

from flows.aging import receivables_aging
from flows.approval import invoice_approval
from flows.closed_won import closed_won_to_invoice
from flows.customer_sync import customer_cleanse_audit, customer_sync
from flows.payments import sync_payments
from flows.reconcile import monthly_reconciliation
from flows.renewals import contract_renewals
from flows.token_health import token_health

POLL_INTERVAL = timedelta(minutes=5)
RUNNER_POLL_SECONDS = 1.0  # see --poll-seconds


def payment_trigger() -> DeploymentEventTrigger:
    """One payments run per change the receiver saw (each template is a single expression, so
    Prefect renders it as JSON: lists stay lists)."""
    return DeploymentEventTrigger(
        expect={"revbridge.qbo.change"},
        match={"prefect.resource.id": "qbo.*"},
        parameters={
            "realm": "{{ event.payload.realm }}",
            "invoice_ids": "{{ event.payload.invoice_ids }}",
            "payment_ids": "{{ event.payload.payment_ids }}",
            "credit_memo_ids": "{{ event.payload.credit_memo_ids }}",
        },
    )


def push_trigger() -> DeploymentEventTrigger:
    """One Closed Won run per deal a Salesforce push named (the receiver's
    ``revbridge.salesforce.closed_won`` event); the poller stays as the backstop and the
    realm's invoicing lock makes the two take turns."""
    return DeploymentEventTrigger(
        expect={"revbridge.salesforce.closed_won"},
        match={"prefect.resource.id": "salesforce.opportunity.*"},
        parameters={"opportunity_ids": "{{ event.payload.opportunity_ids }}"},
    )


def deployments(config_path: str, poll_every: timedelta = POLL_INTERVAL) -> list[Any]:
    config = {"config_path": config_path}
    return [
        closed_won_to_invoice.to_deployment(
            name="poll",
            interval=poll_every,
            parameters=config,
            tags=["revbridge", "invoicing"],
            description="Closed Won → QuickBooks invoices, every few minutes (run it with "
            "opportunity_ids to invoice now, or closed_from/closed_to to backfill).",
        ),
        closed_won_to_invoice.to_deployment(
            name="on-push",
            parameters=config,
            triggers=[push_trigger()],
            tags=["revbridge", "invoicing"],
            description="Closed Won → invoice for the one deal a Salesforce push named.",
        ),
        invoice_approval.to_deployment(
            name="invoice-approval",
            tags=["revbridge", "approval"],
            description="One run per deal over the approval threshold; it waits for the "
            "Approve/Reject form.",
        ),
        sync_payments.to_deployment(
            name="on-change",
            parameters=config,
            triggers=[payment_trigger()],
            tags=["revbridge", "payments"],
            description="Payment status to Salesforce for the changes a QuickBooks webhook named.",
        ),
        sync_payments.to_deployment(
            name="cdc-sweep",
            interval=timedelta(minutes=15),
            parameters=config,
            tags=["revbridge", "payments"],
            description="Backstop: every change QuickBooks reports by CDC since the last sweep.",
        ),
        receivables_aging.to_deployment(
            name="daily",
            cron="0 6 * * *",
            parameters=config,
            tags=["revbridge", "aging"],
            description="Days outstanding and 30/60/90 buckets; owners alerted once per move.",
        ),
        contract_renewals.to_deployment(
            name="daily",
            cron="30 6 * * *",
            parameters={**config, "days_ahead": 7},
            tags=["revbridge", "renewals"],
            description="Contracts renewing in 7 days get their invoice, once.",
        ),
        monthly_reconciliation.to_deployment(
            name="monthly",
            cron="0 6 2 * *",
            parameters=config,
            tags=["revbridge", "reconciliation"],
            description="Last month: Salesforce Closed Won against QuickBooks invoiced, explained.",
        ),
        customer_sync.to_deployment(
            name="hourly",
            cron="15 * * * *",
            parameters={**config, "dry_run": False},
            tags=["revbridge", "customers"],
            description="Customer fields from the system that owns each; conflicts reported.",
        ),
        customer_cleanse_audit.to_deployment(
            name="weekly",
            cron="0 7 * * 1",
            parameters=config,
            tags=["revbridge", "customers"],
            description="Duplicates within and across Salesforce and QuickBooks.",
        ),
        token_health.to_deployment(
            name="daily",
            cron="45 7 * * *",
            parameters=config,
            tags=["revbridge", "tokens"],
            description="Every connection authenticates; a refresh token expiring within 14 "
            "days, or a connection that fails, is posted to Slack with how to re-authorize.",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve")
    parser.add_argument("--config", default="config/demo.yaml", help="revbridge config file")
    parser.add_argument("--poll-minutes", type=float, default=POLL_INTERVAL.total_seconds() / 60)
    parser.add_argument("--limit", type=int, default=8, help="flow runs at once")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=RUNNER_POLL_SECONDS,
        help="how often the runner looks for runs to start (an event-triggered run waits for "
        f"the next look; default {RUNNER_POLL_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    if args.poll_seconds <= 0:
        parser.error("--poll-seconds must be positive")
    serve(
        *deployments(args.config, timedelta(minutes=args.poll_minutes)),
        limit=args.limit,
        query_seconds=args.poll_seconds,
    )


if __name__ == "__main__":
    main()
