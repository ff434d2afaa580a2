"""Finance approval for one big deal, in its own flow run.

1. Read the deal again; stop if it is already invoiced or no longer valid.
2. Ask finance in Slack, linking this run, with Approve / Reject buttons when the Slack block has
   a signing secret (once: the post is cached across the resume).
3. Suspend until someone submits the form in the Prefect UI (Approve / Reject, approver, comment)
   or an approver clicks a button (receiver/slack.py resumes the run with the same input).
   Nothing is held while it waits; on resume the flow runs again from the top. The request then
   shows who decided, its buttons gone.
4. Approved by a listed approver, for the amount that was asked: invoice it exactly like the
   Closed Won flow does, attach its signed contract and e-mail it (`flows.delivery`).
   Rejected: write Rejected back. Either way, say so in Slack.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Completed, Failed, State
from pydantic import Field
from slack_sdk.errors import SlackApiError

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from flows.delivery import check_contracts_before_invoicing, deliver_invoices, delivery_errors
from flows.invoicing import invoice_deals
from revbridge.approval import approval_key
from revbridge.config import RevbridgeConfig, load_config
from revbridge.delivery import merge_delivery
from revbridge.models import Opportunity, Problem
from revbridge.plan import plan_run
from revbridge.report import escape_slack
from revbridge.slack_approval import (
    ButtonValue,
    decided_blocks,
    decision_line,
    request_blocks,
)
from revbridge.soql import closed_won_query
from revbridge.writeback import SyncOutcome, opportunity_updates
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message

MAX_ATTEMPTS = 5  # forms submitted by someone who is not an approver are refused, then asked again


class ApprovalInput(RunInput):
    """The form the Prefect UI shows. No default decision: an empty Resume approves nothing."""

    decision: Literal["Approve", "Reject"] = Field(description="Approve or reject the invoice")
    approver: str = Field(description="Your email; it must be one of the configured approvers")
    comment: str = Field(default="", description="Shown in Slack and kept on the Opportunity")


@flow(name="invoice-approval")
def invoice_approval(
    opportunity_id: str, requested_amount: str, config_path: str = "config/demo.yaml"
) -> State[Any]:
    logger = get_run_logger()
    config = load_config(config_path)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)
    records = query_records(salesforce, closed_won_query(ids=[opportunity_id]))
    if not records:
        return Failed(message=f"{opportunity_id} is not a Closed Won Opportunity any more")
    opp = Opportunity.from_record(records[0])
    plan = plan_run([opp], config, approved=[opp.id])
    realm_name, realm_plan = next(iter(plan.realms.items()), (None, None))
    if realm_plan is None or not realm_plan.ready:
        reason = _not_ready_reason(plan)
        logger.info("%s needs no approval any more: %s", opp.id, reason)
        return Completed(message=f"nothing to approve: {reason}")

    asked = announce(slack, config, opp, requested_amount)
    decision, attempt = None, 0
    while attempt < MAX_ATTEMPTS:
        attempt += 1
        key = approval_key(opp.id) + (f"-{attempt}" if attempt > 1 else "")
        timeout = config.approval.timeout_hours * 3600
        decision = suspend_flow_run(wait_for_input=ApprovalInput, timeout=timeout, key=key)
        if config.approval.is_approver(decision.approver):
            break
        notify(
            slack,
            config.slack.approvals_channel,
            f"{escape_slack(decision.approver)} is not an approver for "
            f"{escape_slack(opp.name)}; asking again.",
            f"refused-{key}",
        )
        decision = None
    if decision is None:
        return Failed(message=f"no valid approval for {opp.id} after {MAX_ATTEMPTS} attempts")
    conclude(slack, asked, decision.decision, decision.approver, decision.comment)

    now = datetime.now(UTC)
    who = decision.approver
    if decision.decision == "Reject":
        outcome = SyncOutcome(
            opportunity_id=opp.id,
            status="Rejected",
            approved_by=who,
            approved_at=now,
            error=f"rejected by {who}: {decision.comment}",
        )
        update_records(salesforce, opportunity_updates([outcome], None, now))
        notify(
            slack,
            config.slack.approvals_channel,
            f":no_entry_sign: {escape_slack(opp.name)} rejected by {escape_slack(who)}"
            f"{': ' + escape_slack(decision.comment) if decision.comment else ''}",
            f"rejected-{opp.id}",
        )
        return Completed(message=f"rejected by {who}")

    if opp.amount is None or opp.amount != Decimal(requested_amount):
        problem = Problem(
            record_id=opp.id,
            field="Amount",
            reason=f"changed from {requested_amount} to {opp.amount} after approval was asked: "
            "a new approval is needed",
        )
        outcome = SyncOutcome.from_problems(opp.id, [problem])
        update_records(salesforce, opportunity_updates([outcome], None, now))
        return Failed(message=outcome.error)

    assert realm_name is not None
    realm_cfg = config.realm(realm_name)
    connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
    approval = SyncOutcome(
        opportunity_id=opp.id, status="Invoiced", approved_by=who, approved_at=now
    )
    result = invoice_deals(
        realm_name, realm_cfg, config, connection, [opp], now.date(), approvals={opp.id: approval}
    )
    check = check_contracts_before_invoicing(salesforce, config, [opp])
    deliveries = deliver_invoices(salesforce, config, [result], [opp], check, retry=False)
    failures = update_records(
        salesforce,
        merge_delivery(opportunity_updates(result.outcomes, realm_cfg.realm_id, now), deliveries),
    )
    row = result.rows[0] if result.rows else None
    text = (
        f":white_check_mark: {escape_slack(opp.name)} approved by {escape_slack(who)} and "
        f"invoiced ({row.invoice_text})"
        if row and row.outcome == "Invoiced"
        else f":x: {escape_slack(opp.name)} approved by {escape_slack(who)} but not invoiced: "
        f"{escape_slack(row.reason if row else 'no result')}"
    )
    for delivery in deliveries:
        text += f"; {escape_slack(delivery.summary())}"
    notify(slack, config.slack.approvals_channel, text, f"done-{opp.id}")
    if result.errors or failures or not row or row.outcome != "Invoiced":
        return Failed(message=text)
    if errors := delivery_errors(deliveries):  # the invoice stands; the next poll run retries
        return Failed(message="; ".join(errors))
    return Completed(message=f"approved by {who}, invoice {row.invoice_text}")


def _not_ready_reason(plan: Any) -> str:
    for realm_plan in plan.realms.values():
        for skipped in realm_plan.skipped:
            return str(skipped.reason)
        for invalid in realm_plan.problems:
            return str(invalid.reason)
    for invalid in plan.unroutable:
        return str(invalid.reason)
    return "not eligible"


def _flow_run_url() -> str:
    """Where the approval form is: this flow run's page in the Prefect UI."""
    return str(runtime_flow_run.ui_url or f"flow run {runtime_flow_run.id}")


def _once_per_run(kind: str, field: str) -> Any:
    """A cache key: this task's result is reused for the rest of the flow run (resumes too)."""
    return lambda ctx, params: f"{kind}-{params[field]}-{ctx.task_run.flow_run_id}"


@task(cache_key_fn=_once_per_run("announce", "amount"), persist_result=True)
def announce(
    slack: SlackConnection, config: RevbridgeConfig, opp: Opportunity, amount: str
) -> dict[str, str]:
    """Ask finance once per approval run (cached: the resumed run does not ask again). With a
    signing secret on the Slack block (interactivity is set up) the message has Approve / Reject
    buttons carrying this run's id. Returns the message's channel, ts and text."""
    owner = (opp.owner.name if opp.owner else None) or "unknown owner"
    customer = opp.account.name if opp.account else "?"
    text = (
        f":hourglass_flowing_sand: *Approval needed*: {escape_slack(opp.name)} — "
        f"{opp.currency} {Decimal(amount):,.2f} for {escape_slack(customer)} "
        f"(owner {escape_slack(owner)}). Approve or reject in Prefect: <{_flow_run_url()}|open the "
        f"approval form>"
    )
    blocks = None
    if slack.signing_secret is not None:
        blocks = request_blocks(text, ButtonValue(UUID(str(runtime_flow_run.id)), opp.id))
    posted = post_message.fn(slack, text, channel=config.slack.approvals_channel, blocks=blocks)
    return {**posted, "text": text}


@task(cache_key_fn=_once_per_run("conclude", "decision"), persist_result=True)
def conclude(
    slack: SlackConnection, asked: dict[str, str], decision: str, approver: str, comment: str
) -> None:
    """The request shows who decided, and its buttons go (once per run; the Slack receiver may
    already have done the same). Best effort: a Slack failure here must not stop the invoice."""
    line = decision_line(decision, approver, comment)
    text = asked.get("text") or "Approval request"  # runs asked before the buttons had no text
    try:
        slack.get_client().chat_update(
            channel=asked["channel"],
            ts=asked["ts"],
            text=text,
            blocks=decided_blocks(None, text, line),
        )
    except (SlackApiError, OSError) as exc:
        get_run_logger().warning("could not mark the approval request as decided: %s", exc)


@task(cache_key_fn=_once_per_run("notify", "key"), persist_result=True)
def notify(slack: SlackConnection, channel: str, text: str, key: str) -> dict[str, str]:
    """A Slack message sent once per approval run, whatever number of resumes."""
    return post_message.fn(slack, text, channel=channel)
