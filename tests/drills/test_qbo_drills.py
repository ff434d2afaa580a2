"""QuickBooks drills: a 429 storm longer than every retry next to a 5xx burst longer than the
inner retries, a stale SyncToken from a concurrent edit, and refresh-token rotation while
several tasks of one realm refresh at once.

(Short 5xx/429 bursts, a dropped connection after a create, and a realm that is down are in
tests/flows/test_closed_won.py; a drop after a customer update in test_customer_sync.py.)
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.variables import Variable

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.sandbox import SandboxBlocks
from flows.closed_won import DEFAULT_CONFIG, closed_won_to_invoice
from flows.customer_sync import STATE_VARIABLE as SYNC_STATE
from flows.customer_sync import customer_sync
from revbridge.config import load_config
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS
from tasks.quickbooks import qbo_call
from tests.drills.conftest import on_call
from tests.drills.test_salesforce_drills import assert_invoiced_once
from tests.flows.conftest import inject
from tests.flows.test_closed_won import invoices, opportunities
from tests.flows.test_customer_sync import wayne, writes

US, EU = (next(r for r in REALMS if r.key == key) for key in ("us", "eu"))


def test_a_429_storm_fails_its_realm_loudly_a_5xx_burst_is_absorbed_and_nothing_is_twice(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    # US: every create batch throttled, past qbo_call's 5 attempts x the task's 4 tries.
    # EU: 7 x 503, past qbo_call's 5 attempts but within the task's retries.
    # skip=1: the reference read goes through, the storm hits the writes.
    common = {"method": "POST", "path": r"/batch$", "skip": 1}
    inject(fresh, "quickbooks", tenant=US.realm_id, status=429, count=40, **common)
    inject(fresh, "quickbooks", tenant=EU.realm_id, status=503, count=7, **common)
    state = closed_won_to_invoice(return_state=True)
    assert state.is_failed()
    assert "QuickBooks realm us failed" in str(state.message), state.message
    assert invoices(blocks, "us") == []
    eu = invoices(blocks, "eu")
    eu_deals = [
        o
        for o in opportunities(blocks).values()
        if o["QB_Realm__c"] == EU.realm_id and o["QB_Invoice_Id__c"]
    ]
    assert eu and len(eu_deals) == len(eu)  # the burst cost time, not invoices
    assert {o["QB_Invoice_Id__c"] for o in eu_deals} == {i["Id"] for i in eu}

    httpx.delete(f"{fresh.servers['quickbooks'].base_url}/_sandbox/faults").raise_for_status()
    again = closed_won_to_invoice(return_state=True)
    assert again.is_completed(), again.message
    assert len(invoices(blocks, "eu")) == len(eu)  # none twice
    invoiced = assert_invoiced_once(blocks)
    assert any(o["QB_Realm__c"] == US.realm_id for o in invoiced)


def test_a_stale_synctoken_from_a_concurrent_edit_is_reported_never_overwritten(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    Variable.unset(SYNC_STATE)
    assert customer_sync(return_state=True).is_completed()  # both sides agree
    account, customer = wayne(blocks)
    blocks.salesforce.get_client().Account.update(account["Id"], {"BillingCity": "Bludhaven"})
    backend = fresh.services["quickbooks"].backend

    def someone_edits_in_quickbooks() -> None:
        """A bookkeeper saves the customer while our update is on its way (SyncToken + 1)."""
        current = backend.get(US.realm_id, "Customer", customer["Id"])
        address = {**current["BillAddr"], "City": "Gotham (per the bookkeeper)"}
        body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True}
        backend.save(US.realm_id, "Customer", {**body, "BillAddr": address})

    quickbooks = fresh.services["quickbooks"]
    with on_call(quickbooks, "customer", someone_edits_in_quickbooks, method="POST") as hit:
        state = customer_sync(return_state=True)
    assert hit.is_set()
    assert state.is_failed()
    assert f"QuickBooks customer {customer['Id']}" in str(state.message), state.message
    assert "Stale Object Error" in str(state.message), state.message
    _, now = wayne(blocks)
    assert now["BillAddr"]["City"] == "Gotham (per the bookkeeper)"  # their edit stands
    assert int(now["SyncToken"]) == int(customer["SyncToken"]) + 1  # ours never landed

    # next run: both sides changed the Salesforce-owned address since the last agreement; a
    # conflict to report, not a write in either direction, and the same again after that
    before = writes(fresh)
    for _ in range(2):
        again = customer_sync(return_state=True)
        assert again.is_completed(), again.message
        (conflict,) = again.result()["conflicts"]
        assert conflict["field"] == "billing_address"
        assert "per the bookkeeper" in str(conflict["quickbooks"])
    assert writes(fresh) == before
    assert wayne(blocks)[0]["BillingCity"] == "Bludhaven"


CALLERS = 6


@task(cache_policy=NO_CACHE)
def company_name(block: str, first_done: threading.Barrier, go: threading.Event) -> str:
    """One task's own copy of the realm's block: a call, a wait while the tokens are aged,
    then another call (401 → refresh → retry inside qbo_call)."""
    connection = load_block(QuickBooksConnection, block)
    path = f"companyinfo/{connection.realm_id}"
    qbo_call(connection, "GET", path)
    first_done.wait(timeout=60)
    assert go.wait(timeout=60)
    answer = qbo_call(connection, "GET", path)
    return str(answer["CompanyInfo"]["CompanyName"])


@flow(name="drill-concurrent-refresh")
def concurrent_callers(block: str, first_done: threading.Barrier, go: threading.Event) -> list[str]:
    futures = [company_name.submit(block, first_done, go) for _ in range(CALLERS)]
    return [f.result() for f in futures]


def test_refresh_token_rotation_under_concurrent_tasks_keeps_one_valid_token(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    control = f"{fresh.servers['quickbooks'].base_url}/_sandbox/tokens"
    block = load_config(DEFAULT_CONFIG).realm("us").connection_block
    first_done = threading.Barrier(CALLERS + 1)
    go = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        result["names"] = concurrent_callers(block, first_done, go)

    runner = threading.Thread(target=run)
    runner.start()
    first_done.wait(timeout=60)  # every task holds a client with a live access token
    for action in ("rotate", "expire_access"):  # the refresh token is due to rotate
        httpx.post(control, json={"realm_id": US.realm_id, "action": action}).raise_for_status()
    go.set()  # all six meet 401 at once and refresh
    runner.join(timeout=120)
    assert len(result["names"]) == CALLERS and len(set(result["names"])) == 1

    state = httpx.get(control, params={"realm_id": US.realm_id}).json()["realms"][US.realm_id]
    assert state["rotations"] == 1  # one refresh rotated; the others used its successor
    saved = QuickBooksConnection.load(block).refresh_token.get_secret_value()
    assert saved == state["current_refresh_token"]
    active = [t for t in state["refresh_tokens"] if t["status"] == "active"]
    assert [t["refresh_token"] for t in active] == [saved]
    # and the next run in a new process-worth of state starts from the saved token
    assert closed_won_to_invoice(return_state=True).is_completed()
