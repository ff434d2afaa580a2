"""Big deals wait for finance in their own (served) approval run: approve, reject, refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.flow_runs import resume_flow_run

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from sandbox.core.server import Sandbox
from sandbox.demo_company import build
from tasks.approvals import APPROVAL_TAG
from tests.flows.conftest import slack_messages
from tests.flows.test_closed_won import customers, invoices, opportunities

pytestmark = pytest.mark.usefixtures("approval_runner")

APPROVER = "priya.nair@acme-analytics.example"


def approval_run(opp_id: str, until: Callable[[FlowRun], bool], timeout: float = 90) -> FlowRun:
    async def read() -> list[FlowRun]:
        async with get_client() as client:
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[APPROVAL_TAG])),
                sort=FlowRunSort.ID_DESC,
            )

    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in asyncio.run(read()) if r.parameters.get("opportunity_id") == opp_id]
        if runs and until(runs[0]):
            return runs[0]
        if time.monotonic() > deadline:
            state = runs[0].state if runs else None
            raise AssertionError(f"approval run for {opp_id} not as expected; last state {state}")
        time.sleep(0.5)


def waiting(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_paused()


def finished(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def decide(run: FlowRun, decision: str, approver: str, comment: str = "") -> None:
    resume_flow_run(
        run.id, run_input={"decision": decision, "approver": approver, "comment": comment}
    )


def test_a_big_deal_is_invoiced_only_after_approval(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    company = build(fresh.clock.today())
    opp_id = company.sf_id("opp-vendorclash")  # Stark Industries, 41,000 USD
    state = closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    assert state.is_completed(), state.message
    assert opportunities(blocks)[opp_id]["QB_Sync_Status__c"] == "Awaiting Approval"

    run = approval_run(opp_id, waiting)
    assert invoices(blocks, "us") == []  # nothing is invoiced while it waits
    asked = [
        m for m in slack_messages(fresh, "#finance-approvals") if "Approval needed" in m["text"]
    ]
    assert len(asked) == 1 and "Stark Industries" in asked[0]["text"]
    assert str(run.id) in asked[0]["text"]  # the message links the approval form

    # running again while it waits neither asks twice nor invoices
    closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    assert invoices(blocks, "us") == [] or all(
        "opportunity=" + opp_id not in i["PrivateNote"] for i in invoices(blocks, "us")
    )

    decide(run, "Approve", APPROVER, "ok, signed contract on file")
    run = approval_run(opp_id, finished)
    assert run.state is not None and run.state.is_completed(), run.state
    opp = opportunities(blocks)[opp_id]
    assert opp["QB_Sync_Status__c"] == "Invoiced" and opp["QB_Invoice_Id__c"]
    sf = blocks.salesforce.get_client()
    approved = sf.Opportunity.get(opp_id)
    assert approved["QB_Approved_By__c"] == APPROVER and approved["QB_Approved_At__c"]
    # Stark Industries is also a QuickBooks vendor: the customer got a name that cannot clash
    names = {c["Id"]: c["DisplayName"] for c in customers(blocks, "us")}
    assert names[opp["QB_Customer_Id__c"]] == "Stark Industries (Customer)"
    assert len([m for m in slack_messages(fresh, "#finance-approvals")
                if "Approval needed" in m["text"]]) == 1  # fmt: skip
    assert any("approved by" in m["text"] for m in slack_messages(fresh, "#finance-approvals"))


def test_a_rejected_deal_is_never_invoiced(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    company = build(fresh.clock.today())
    opp_id = company.sf_id("opp-big-eu")
    closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    decide(approval_run(opp_id, waiting), "Reject", APPROVER, "discount not approved")
    run = approval_run(opp_id, finished)
    assert run.state is not None and run.state.is_completed()
    opp: dict[str, Any] = opportunities(blocks)[opp_id]
    assert opp["QB_Sync_Status__c"] == "Rejected" and not opp["QB_Invoice_Id__c"]
    assert "discount not approved" in opp["QB_Sync_Error__c"]
    # later runs leave it alone
    closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    assert not opportunities(blocks)[opp_id]["QB_Invoice_Id__c"]
    assert invoices(blocks, "eu") == []


def test_only_configured_approvers_can_approve(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    company = build(fresh.clock.today())
    opp_id = company.sf_id("opp-big-eu")
    closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    first = approval_run(opp_id, waiting)
    decide(first, "Approve", "ava.chen@acme-analytics.example")  # a sales rep, not finance

    def asked_again(run: FlowRun) -> bool:
        assert first.state is not None
        return waiting(run) and run.state is not None and run.state.id != first.state.id

    again = approval_run(opp_id, asked_again)
    assert not opportunities(blocks)[opp_id]["QB_Invoice_Id__c"]
    assert any(
        "is not an approver" in m["text"] for m in slack_messages(fresh, "#finance-approvals")
    )
    decide(again, "Approve", APPROVER)
    run = approval_run(opp_id, finished)
    assert run.state is not None and run.state.is_completed()
    assert opportunities(blocks)[opp_id]["QB_Invoice_Id__c"]
