"""A Salesforce push becomes one invoice: the emulator's Outbound Message reaches the receiver,
its Prefect event triggers the served deployment for that one Opportunity; and duplicate,
out-of-order pushes racing the poller still make exactly one invoice."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events import emit_event
from prefect.runner import Runner
from starlette.applications import Starlette

from blocks.sandbox import SandboxBlocks
from deployments.serve import push_trigger
from flows.closed_won import closed_won_to_invoice
from receiver.salesforce import EVENT_NAME, OUTBOUND_PATH, salesforce_routes
from sandbox.core.server import Sandbox
from sandbox.demo_company import ORG_ID, build
from tests.flows.test_closed_won import eligible_small, invoices
from tests.receiver.test_qbo_webhooks import _Served

TOKEN = "outbound-url-token"
SECRET = "named-credential-secret"
DEPLOYMENT = "on-push"


@pytest.fixture
def push_runner(fresh: Sandbox) -> Iterator[None]:
    """The push deployment served in this process, polling every second."""
    runner = Runner(query_seconds=1, pause_on_shutdown=False, limit=4)
    runner.add_deployment(
        closed_won_to_invoice.to_deployment(
            name=DEPLOYMENT,
            parameters={"config_path": "config/demo.yaml"},
            triggers=[push_trigger()],
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(runner.start()), daemon=True)
    thread.start()
    yield
    runner.stop()
    thread.join(timeout=20)


def us_deals(fresh: Sandbox) -> list[str]:
    """Small, valid Closed Won deals of the US realm (their own customers, no twins)."""
    company = build(fresh.clock.today())
    eligible = eligible_small(company)
    return sorted(
        company.sf_id(o.key)
        for o in company.opportunities
        if company.sf_id(o.key) in eligible
        and o.realm_key == "us"
        and not o.account_key.startswith("umbrella")
    )


def push_runs(opportunity_id: str) -> list[Any]:
    """The on-push deployment's runs for one deal (the session's other flow runs run into the
    hundreds: only this deployment's are read)."""

    async def read() -> list[Any]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(f"closed-won-to-invoice/{DEPLOYMENT}")
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                limit=200,
            )
        return [r for r in runs if r.parameters.get("opportunity_ids") == [opportunity_id]]

    return asyncio.run(read())


def wait_for(check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return result


def reopen(blocks: SandboxBlocks, opportunity_id: str) -> None:
    sf = blocks.salesforce.get_client()
    sf.Opportunity.update(opportunity_id, {"StageName": "Negotiation/Review"})


def test_an_outbound_message_invoices_that_one_deal(
    fresh: Sandbox, blocks: SandboxBlocks, push_runner: None
) -> None:
    deal = us_deals(fresh)[0]
    reopen(blocks, deal)  # before the rule is registered: no message
    app = Starlette(routes=salesforce_routes(ORG_ID, TOKEN, SECRET))
    salesforce = fresh.servers["salesforce"].base_url
    with _Served(app) as url:
        listener = url.removesuffix("/qbo/webhooks") + OUTBOUND_PATH + f"?token={TOKEN}"
        registration = {"url": listener, "delay_scale": 0.001, "redeliver": True}
        httpx.post(salesforce + "/_sandbox/outbound", json=registration, verify=False)
        started = time.monotonic()
        blocks.salesforce.get_client().Opportunity.update(deal, {"StageName": "Closed Won"})
        sf = blocks.salesforce.get_client()
        record = wait_for(lambda: sf.Opportunity.get(deal)["QB_Invoice_Id__c"] and True)
        elapsed = time.monotonic() - started
        log = httpx.get(salesforce + "/_sandbox/outbound", verify=False).json()["messages"]
    assert record
    assert [m["record_ids"] for m in log] == [[deal]]
    assert log[0]["acknowledged"] and log[0]["attempts"] == 2  # delivered twice
    mine = [
        i for i in invoices(blocks, "us") if f"revbridge:opportunity={deal}" in i["PrivateNote"]
    ]
    assert len(mine) == 1
    assert len(wait_for(lambda: push_runs(deal))) == 1  # the redelivery made no second run
    others = [i for i in invoices(blocks, "us") if i not in mine]
    assert others == []  # only that deal: the poller's work was not done by the push
    assert elapsed < 60


def test_duplicate_out_of_order_pushes_racing_the_poller_make_one_invoice(
    fresh: Sandbox, blocks: SandboxBlocks, push_runner: None
) -> None:
    deal = us_deals(fresh)[1]
    now = datetime.now(UTC)
    # two notifications for the same deal, the later-stamped one first
    for occurred in (now, now - timedelta(seconds=30)):
        emit_event(
            event=EVENT_NAME,
            resource={"prefect.resource.id": f"salesforce.opportunity.{deal}"},
            payload={"opportunity_ids": [deal], "stage": "Closed Won", "source": "test"},
            id=uuid.uuid4(),
            occurred=occurred,
        )
    poll = closed_won_to_invoice(return_state=True)  # the poller, at the same time
    assert poll.is_completed(), poll.message

    def settled() -> list[Any]:
        runs = push_runs(deal)
        return runs if len(runs) == 2 and all(r.state.is_final() for r in runs) else []

    runs = wait_for(settled)
    assert all(r.state.is_completed() for r in runs), [r.state.message for r in runs]
    mine = [
        i for i in invoices(blocks, "us") if f"revbridge:opportunity={deal}" in i["PrivateNote"]
    ]
    assert len(mine) == 1
    record = blocks.salesforce.get_client().Opportunity.get(deal)
    assert record["QB_Invoice_Id__c"] == mine[0]["Id"]
    assert record["QB_Sync_Status__c"] == "Invoiced"
