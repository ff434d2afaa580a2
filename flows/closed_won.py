"""Closed Won → QuickBooks invoice.

1. Read the Closed Won deals changed since the watermark (or a date range, or given Ids), with
   their accounts, owners and line items, in one SOQL query; plus the deals parked for review.
2. Validate and route each to its QuickBooks company; plan: ready, needs approval, problems;
   look up their signed contracts (Salesforce Files) and hold those without one if configured.
3. Per company: match or create customers, draft invoices, create them exactly once (batches).
4. Deals above the approval threshold are checked the same way without writing (a customer to
   review or an unmapped product goes to review before finance is asked); the rest each get
   their own approval run and wait there.
5. Attach each new invoice's signed contract and e-mail it (retrying earlier undelivered ones).
6. Write the outcome back to each Opportunity (composite collections), report (artifact + Slack),
   advance the watermark past what is settled, and fail the run loudly if any deal errored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from flows.delivery import (
    check_contracts_before_invoicing,
    deliver_invoices,
    delivery_errors,
    delivery_lines,
)
from flows.invoicing import RealmResult, invoice_deals, screen_for_approval
from revbridge.config import RevbridgeConfig, load_config
from revbridge.delivery import Delivery, apply_hold, merge_delivery
from revbridge.models import Opportunity, Problem
from revbridge.plan import Invalid, RunPlan, Skipped, plan_run
from revbridge.report import AuditRow, escape_slack, markdown_table, slack_summary
from revbridge.soql import MAX_IDS, DateRange, closed_won_query
from revbridge.watermark import Watermark, advance
from revbridge.writeback import SyncOutcome, opportunity_updates
from tasks.approvals import request_approvals
from tasks.audit import publish_audit
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message
from tasks.state import read_state, write_state

DEFAULT_CONFIG = "config/demo.yaml"
STATE_VARIABLE = "closed-won-watermark"


@flow(name="closed-won-to-invoice", log_prints=False)
def closed_won_to_invoice(
    opportunity_ids: list[str] | None = None,
    closed_from: date | None = None,
    closed_to: date | None = None,
    config_path: str = DEFAULT_CONFIG,
    dry_run: bool = False,
) -> State[Any]:
    """Invoice Closed Won deals. With no parameters: everything changed since the last run (the
    watermark in the Prefect Variable ``closed-won-watermark``). ``opportunity_ids``: just those
    deals (run now). ``closed_from``/``closed_to``: a backfill by CloseDate; neither moves the
    watermark. ``dry_run``: plan and match, write nothing."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    config = load_config(config_path)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    slack = load_block(SlackConnection, config.slack.block)

    polling = not opportunity_ids and closed_from is None and closed_to is None
    state = (read_state(STATE_VARIABLE) or {}) if polling else {}
    records = query_records(
        salesforce, _query(opportunity_ids, closed_from, closed_to, state, started)
    )
    review_ids = [i for i in state.get("review", []) if i not in {r["Id"] for r in records}]
    if review_ids:
        records += query_records(salesforce, closed_won_query(ids=review_ids[:MAX_IDS]))
    opps, unreadable = _parse(records)
    del records  # the raw query rows: tens of MB in a large backfill, the models are enough
    plan = plan_run(opps, config)
    # contracts are looked up before anything is created: `missing_contract: hold` keeps a deal
    # without one out of invoicing and approval (Needs Review) until the file is there
    waiting = [o for p in plan.realms.values() for o in (*p.ready, *p.approval)]
    check = check_contracts_before_invoicing(salesforce, config, waiting)
    if check is not None:
        plan = apply_hold(plan, check)
    logger.info("plan: %s", plan.counts)

    # Realms run side by side: each has its own API limits, and one that is down does not stop
    # the others (its deals are reported as errors and retried next run).
    futures = {
        name: invoice_realm.submit(
            name,
            config,
            realm_plan.ready,
            started.date(),
            dry_run,
            [] if dry_run else realm_plan.approval,
        )
        for name, realm_plan in plan.realms.items()
    }
    realms: list[RealmResult] = []
    for name, realm_plan in plan.realms.items():
        futures[name].wait()
        realm_state = futures[name].state
        to_approve = list(realm_plan.approval)
        if realm_state.is_completed():
            result, to_approve = futures[name].result()
        else:
            reason = realm_state.message or "failed"
            result = RealmResult(realm=name)
            for opp in realm_plan.ready:
                result.add(
                    opp,
                    None,
                    realm=name,
                    row_outcome="Error",
                    settled=False,
                    reason=f"QuickBooks realm {name} failed: {reason}",
                )
        _add_problems(result, name, realm_plan.problems, realm_plan.skipped)
        if to_approve and not dry_run:
            for opp, outcome in request_approvals(to_approve, config_path):
                result.add(
                    opp,
                    outcome,
                    realm=name,
                    row_outcome=outcome.status,
                    reason=outcome.error or "waiting for finance approval",
                    settled=outcome.status == "Awaiting Approval",
                )
        realms.append(result)
    extra = RealmResult(realm="")
    _add_problems(extra, "", (*plan.unroutable, *unreadable), plan.skipped)
    realms.append(extra)

    rows = [row for r in realms for row in r.rows]
    errors = [e for r in realms for e in r.errors]
    unwritten: set[str] = set()
    deliveries: list[Delivery] = []
    if not dry_run:
        deliveries = deliver_invoices(salesforce, config, realms, opps, check)
        errors += delivery_errors(deliveries)
        failed, unwritten = _write_back(salesforce, config, realms, opps, started, deliveries)
        errors += failed
    _report(slack, config.slack.alerts_channel, rows, errors, dry_run, delivery_lines(deliveries))
    if polling and not dry_run:
        _advance(state, opps, realms, started, unwritten)

    counts = {
        outcome: sum(1 for r in rows if r.outcome == outcome)
        for outcome in (
            "Invoiced",
            "Awaiting Approval",
            "Needs Review",
            "Error",
            "Skipped",
            "Dry Run",
        )
    }
    message = ", ".join(f"{k}: {v}" for k, v in counts.items() if v) or "nothing to do"
    if errors:
        return Failed(
            message=f"{len(errors)} deal(s) failed: " + "; ".join(errors[:5]), data=counts
        )
    return Completed(message=message, data=counts)


@task(cache_policy=NO_CACHE)
def invoice_realm(
    name: str,
    config: RevbridgeConfig,
    ready: Sequence[Opportunity],
    today: date,
    dry_run: bool,
    over_threshold: Sequence[Opportunity] = (),
) -> tuple[RealmResult, list[Opportunity]]:
    """One realm's invoicing (customers, drafts, batches), as a task so realms run in parallel.
    Then the deals over the threshold are screened (`screen_for_approval`), after this run's new
    customers exist: returns the result and the deals to ask finance about."""
    realm_cfg = config.realm(name)
    connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
    result = invoice_deals(name, realm_cfg, config, connection, ready, today, dry_run=dry_run)
    to_approve, held = screen_for_approval(
        name, realm_cfg, config, connection, over_threshold, today
    )
    result.extend(held)
    return result, to_approve


def _add_problems(
    result: RealmResult, realm: str, invalid: Sequence[Invalid], skipped: Sequence[Skipped]
) -> None:
    for deal in invalid:
        outcome = SyncOutcome.from_problems(deal.opportunity.id, deal.problems)
        result.add(
            deal.opportunity, outcome, realm=realm, row_outcome="Needs Review", reason=deal.reason
        )
    for skip in skipped:
        result.add(skip.opportunity, None, realm=realm, row_outcome="Skipped", reason=skip.reason)


def _query(
    ids: list[str] | None,
    closed_from: date | None,
    closed_to: date | None,
    state: dict[str, Any],
    started: datetime,
) -> str:
    if ids:
        return closed_won_query(ids=ids)
    if closed_from is not None or closed_to is not None:
        start = closed_from or date(2000, 1, 1)
        end = closed_to or started.date()
        return closed_won_query(between=DateRange(field="CloseDate", start=start, end=end))
    since = Watermark.from_dict(state) if state.get("ts") else None
    return closed_won_query(since=since, until=started)


def _parse(records: list[dict[str, Any]]) -> tuple[list[Opportunity], list[Invalid]]:
    """The records as Opportunities; one the model refuses is reported like an invalid deal."""
    opps: list[Opportunity] = []
    unreadable: list[Invalid] = []
    for record in records:
        try:
            opps.append(Opportunity.from_record(record))
        except (ValueError, TypeError, KeyError) as exc:
            opp = Opportunity(id=str(record.get("Id")), name=str(record.get("Name")))
            problem = Problem(record_id=opp.id, field="record", reason=f"unreadable: {exc}")
            unreadable.append(Invalid(opportunity=opp, problems=(problem,)))
    return opps, unreadable


def _write_back(
    salesforce: SalesforceCredentials,
    config: RevbridgeConfig,
    realms: list[RealmResult],
    opps: list[Opportunity],
    now: datetime,
    deliveries: Sequence[Delivery] = (),
) -> tuple[list[str], set[str]]:
    """Write each outcome to its Opportunity. A deal already parked as Needs Review is not
    rewritten (that would bump its SystemModstamp and bring it back every run). Returns the
    errors and the deals whose outcome did not reach Salesforce (the watermark stays before
    them, so the next run finds their invoices by marker and writes them back)."""
    status = {o.id: o.qb_sync_status for o in opps}
    bodies: list[dict[str, Any]] = []
    for result in realms:
        outcomes = [
            o
            for o in result.outcomes
            if not (o.status == "Needs Review" and status.get(o.opportunity_id) == "Needs Review")
        ]
        realm_id = config.realms[result.realm].realm_id if result.realm in config.realms else None
        bodies += opportunity_updates(outcomes, realm_id, now)
    bodies = merge_delivery(bodies, deliveries)  # the invoice link and Invoice_Sent__c
    if not bodies:
        return [], set()
    try:
        failures = update_records(salesforce, bodies)
    except Exception as exc:
        sent = {str(r["Id"]) for body in bodies for r in body["records"]}
        return [f"Salesforce write-back of {len(sent)} deals failed: {exc}"], sent
    return (
        [f"{f.opportunity_id}: write-back refused: {f.message}" for f in failures],
        {f.opportunity_id for f in failures},
    )


def _report(
    slack: SlackConnection,
    channel: str,
    rows: list[AuditRow],
    errors: list[str],
    dry_run: bool,
    delivered: Sequence[str] = (),
) -> None:
    title = "Closed Won → QuickBooks" + (" (dry run)" if dry_run else "")
    publish_audit(
        "closed-won-audit",
        [r.model_dump(mode="json") for r in rows],
        markdown_table(rows),
        description=title,
    )
    acted = [r for r in rows if r.outcome != "Skipped"]
    if acted or errors or delivered:
        text = slack_summary(acted, title=title)
        if delivered:
            text += "\n*Delivery*:\n" + "\n".join(delivered[:20])
        if errors:
            listed = "\n".join(f"• {escape_slack(e[:300])}" for e in errors[:5])
            more = f"\n• … and {len(errors) - 5} more" if len(errors) > 5 else ""
            text += f"\n:x: *The run failed* ({len(errors)}):\n{listed}{more}"
        post_message(slack, text, channel=channel)


def _advance(
    state: dict[str, Any],
    opps: list[Opportunity],
    realms: list[RealmResult],
    started: datetime,
    unwritten: set[str],
) -> None:
    """Move the watermark past settled deals only; remember the deals parked for review, so
    the next run looks at them again (a fix to their Account does not touch the Opportunity)."""
    settled = {i for r in realms for i in r.settled} - unwritten
    review = sorted(
        {row.opportunity_id for r in realms for row in r.rows if row.outcome == "Needs Review"}
    )
    current = Watermark.from_dict(state) if state.get("ts") else None
    ordered = sorted(
        (o for o in opps if o.system_modstamp), key=lambda o: (o.system_modstamp, o.id)
    )
    new = advance(current, [(Watermark.of(o), o.id in settled) for o in ordered], started)
    value: dict[str, Any] = new.to_dict() if new else {}
    value["review"] = review[:MAX_IDS]
    write_state(STATE_VARIABLE, value)


__all__ = ["RunPlan", "closed_won_to_invoice"]
