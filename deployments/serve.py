"""Serve every revbridge deployment from this process: ``python -m deployments.serve``.

The Closed Won flow polls on an interval; the approval flow has no schedule: the Closed Won flow
starts one run of it per big deal, and the runner here executes it (and resumes it when finance
decides in the UI). ``prefect.yaml`` declares the same deployments for work pools.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from prefect import serve

from flows.approval import invoice_approval
from flows.closed_won import closed_won_to_invoice

POLL_INTERVAL = timedelta(minutes=5)


def deployments(config_path: str, poll_every: timedelta = POLL_INTERVAL) -> list[Any]:
    return [
        closed_won_to_invoice.to_deployment(
            name="poll",
            interval=poll_every,
            parameters={"config_path": config_path},
            tags=["revbridge", "invoicing"],
            description="Closed Won → QuickBooks invoices, every few minutes (run it with "
            "opportunity_ids to invoice now, or closed_from/closed_to to backfill).",
        ),
        invoice_approval.to_deployment(
            name="invoice-approval",
            tags=["revbridge", "approval"],
            description="One run per deal over the approval threshold; it waits for the "
            "Approve/Reject form.",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve")
    parser.add_argument("--config", default="config/demo.yaml", help="revbridge config file")
    parser.add_argument("--poll-minutes", type=float, default=POLL_INTERVAL.total_seconds() / 60)
    parser.add_argument("--limit", type=int, default=8, help="flow runs at once")
    args = parser.parse_args(argv)
    serve(
        *deployments(args.config, timedelta(minutes=args.poll_minutes)),
        limit=args.limit,
    )


if __name__ == "__main__":
    main()
