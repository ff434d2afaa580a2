"""Starting the per-deal approval runs: one flow run per big deal, suspended in its own process
until finance decides, so small deals never wait behind it."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from revbridge.approval import approval_key
from revbridge.models import Opportunity
from revbridge.writeback import SyncOutcome

APPROVAL_DEPLOYMENT = "invoice-approval/invoice-approval"
APPROVAL_TAG = "awaiting-approval"


@task(cache_policy=NO_CACHE)
def request_approvals(
    opps: list[Opportunity], config_path: str
) -> list[tuple[Opportunity, SyncOutcome]]:
    """Start (at most once per deal and amount: the idempotency key) an approval run for each
    deal. A deal whose run cannot be started is an Error, left for the next run."""
    logger = get_run_logger()
    results: list[tuple[Opportunity, SyncOutcome]] = []
    for opp in opps:
        amount = f"{opp.amount:.2f}" if opp.amount is not None else "0"
        try:
            run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync_compatible
                APPROVAL_DEPLOYMENT,
                parameters={
                    "opportunity_id": opp.id,
                    "requested_amount": amount,
                    "config_path": config_path,
                },
                timeout=0,
                as_subflow=False,
                idempotency_key=f"{approval_key(opp.id)}-{amount}",
                tags=[APPROVAL_TAG],
                flow_run_name=f"approve {opp.name[:60]} ({opp.currency} {amount})",
            )
        except Exception as exc:  # the deployment is missing or the API is down
            reason = f"{type(exc).__name__}: {exc}"
            logger.error("could not start the approval run for %s: %s", opp.id, reason)
            outcome = SyncOutcome(
                opportunity_id=opp.id,
                status="Error",
                error=f"could not start the approval run ({APPROVAL_DEPLOYMENT}): {reason}",
            )
        else:
            logger.info("approval for %s waits in flow run %s", opp.id, run.id)
            outcome = SyncOutcome(opportunity_id=opp.id, status="Awaiting Approval")
        results.append((opp, outcome))
    return results
