"""Approve / Reject from Slack: the emulator's clicks reach the receiver, which resumes the real
(served) approval run with the same input as the Prefect UI form."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from receiver.slack import resume_approval, slack_interaction_routes
from revbridge.config import load_config
from revbridge.slack_approval import APPROVE_ACTION, BUTTONS_BLOCK, REJECT_ACTION, ButtonValue
from sandbox.core.server import Sandbox
from sandbox.demo_company import build
from tests.flows.conftest import slack_messages
from tests.flows.test_approval import APPROVER, approval_run, decide, finished, waiting
from tests.flows.test_closed_won import invoices, opportunities
from tests.sandbox.slack.test_interactions import serve_app

pytestmark = pytest.mark.usefixtures("approval_runner")

AVA, PRIYA, LIAM = "U07AVACHEN", "U07PNAIR01", "U07LOBRIEN"


@pytest.fixture
def receiver(fresh: Sandbox, blocks: SandboxBlocks) -> Iterator[str]:
    """The Slack route with the real resume, registered as the emulator's Request URL."""
    assert blocks.slack.signing_secret is not None
    routes = slack_interaction_routes(
        blocks.slack.signing_secret.get_secret_value(),
        blocks.slack.get_client(),
        load_config("config/demo.yaml").approval,
    )
    with serve_app(routes) as base:
        url = f"{fresh.servers['slack'].base_url}/_sandbox/interactivity"
        httpx.post(url, json={"url": base + "/slack/interactions"}).raise_for_status()
        yield base


def request_message(sandbox: Sandbox) -> dict[str, Any]:
    (asked,) = [
        m for m in slack_messages(sandbox, "#finance-approvals") if "Approval needed" in m["text"]
    ]
    return asked


def click(sandbox: Sandbox, message: dict[str, Any], user: str, action: str, **kw: Any) -> int:
    body = {"channel": message["channel"], "ts": message["ts"], "action_id": action, "user": user}
    url = f"{sandbox.servers['slack'].base_url}/_sandbox/interactions/click"
    answer = httpx.post(url, json={**body, **kw}, timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["delivery"]["status"])


def ephemeral(sandbox: Sandbox, user: str) -> list[str]:
    return [
        m["text"]
        for m in slack_messages(sandbox, "#finance-approvals")
        if m["ephemeral_user"] == user
    ]


def same_pause(first: FlowRun, run: FlowRun) -> bool:
    return run.state is not None and first.state is not None and run.state.id == first.state.id


@pytest.mark.usefixtures("receiver")
def test_approve_in_slack_after_a_refused_form(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    opp_id = build(fresh.clock.today()).sf_id("opp-vendorclash")  # 41,000 USD
    assert closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True).is_completed()
    first = approval_run(opp_id, waiting)
    asked = request_message(fresh)
    buttons = next(b for b in asked["blocks"] if b["block_id"] == BUTTONS_BLOCK)
    assert [e["action_id"] for e in buttons["elements"]] == [APPROVE_ACTION, REJECT_ACTION]
    value = ButtonValue.decode(buttons["elements"][0]["value"])
    assert value == ButtonValue(first.id, opp_id)

    # the UI form from a sales rep is refused: the run waits again under a new pause key
    decide(first, "Approve", "ava.chen@acme-analytics.example")
    again = approval_run(opp_id, lambda r: waiting(r) and not same_pause(first, r))

    # not an approver, forged, late: nothing moves
    assert click(fresh, asked, AVA, APPROVE_ACTION) == 200
    assert ephemeral(fresh, AVA) == [
        "Only the configured approvers can decide this; the request still waits."
    ]
    assert click(fresh, asked, PRIYA, APPROVE_ACTION, forge=True) == 401
    assert click(fresh, asked, PRIYA, APPROVE_ACTION, age_seconds=600) == 401
    assert same_pause(again, approval_run(opp_id, waiting))
    assert not opportunities(blocks)[opp_id]["QB_Invoice_Id__c"]

    assert click(fresh, asked, PRIYA, APPROVE_ACTION) == 200
    run = approval_run(opp_id, finished)
    assert run.state is not None and run.state.is_completed(), run.state
    sf = blocks.salesforce.get_client()
    assert sf.Opportunity.get(opp_id)["QB_Approved_By__c"] == APPROVER
    assert opportunities(blocks)[opp_id]["QB_Sync_Status__c"] == "Invoiced"
    assert len(invoices(blocks, "us")) == 1
    decided = request_message(fresh)  # one request, now without buttons
    assert BUTTONS_BLOCK not in [b["block_id"] for b in decided["blocks"]]
    assert f"Approved by {APPROVER} (via Slack)" in json.dumps(decided["blocks"])
    assert any("approved by" in m["text"] and "invoiced" in m["text"]
               for m in slack_messages(fresh, "#finance-approvals"))  # fmt: skip

    # the buttons are gone: nobody can click them any more; a run no longer waiting is told
    # apart (the receiver then answers "already decided")
    url = f"{fresh.servers['slack'].base_url}/_sandbox/interactions/click"
    late = {"channel": asked["channel"], "ts": asked["ts"], "action_id": REJECT_ACTION}
    assert httpx.post(url, json={**late, "user": LIAM}).json()["error"] == "action_not_found"

    form = {"decision": "Reject", "approver": APPROVER, "comment": ""}
    assert asyncio.run(resume_approval(run.id, opp_id, form)).status == "not_waiting"
    other_deal = build(fresh.clock.today()).sf_id("opp-big-eu")
    assert asyncio.run(resume_approval(run.id, other_deal, form)).status == "not_found"
    assert asyncio.run(resume_approval(uuid.uuid4(), opp_id, form)).status == "not_found"


@pytest.mark.usefixtures("receiver")
def test_reject_in_slack(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    opp_id = build(fresh.clock.today()).sf_id("opp-big-eu")
    closed_won_to_invoice(opportunity_ids=[opp_id], return_state=True)
    approval_run(opp_id, waiting)
    assert click(fresh, request_message(fresh), LIAM, REJECT_ACTION) == 200
    run = approval_run(opp_id, finished)
    assert run.state is not None and run.state.is_completed()
    opp = opportunities(blocks)[opp_id]
    assert opp["QB_Sync_Status__c"] == "Rejected" and not opp["QB_Invoice_Id__c"]
    assert "via Slack" in opp["QB_Sync_Error__c"]
    assert invoices(blocks, "eu") == []
    assert "Rejected by liam.obrien" in json.dumps(request_message(fresh)["blocks"])
