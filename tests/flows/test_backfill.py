"""A 500-deal backfill: every deal invoiced once, in batches, within the API-call budget."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from sandbox.core.server import Sandbox
from sandbox.salesforce.bulk import GenerateRequest, generate
from tests.flows.conftest import calls, without_delivery
from tests.flows.test_closed_won import invoices

DEALS = 500


def test_a_500_deal_backfill_is_invoiced_once_within_the_call_budget(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    config_path = without_delivery(tmp_path)
    start = fresh.clock.today() - timedelta(days=430)  # long before any demo deal
    end = start + timedelta(days=29)
    request = GenerateRequest(
        opportunities=DEALS, new_account_share=0.33, close_from=start, close_to=end, seed=7
    )
    ids = set(generate(fresh.services["salesforce"].backend, request))
    assert len(ids) == DEALS
    for service in fresh.services.values():
        service.calls.clear()

    state = closed_won_to_invoice(
        closed_from=start, closed_to=end, config_path=config_path, return_state=True
    )
    assert state.is_completed(), state.message
    qbo, sf = calls(fresh, "quickbooks"), calls(fresh, "salesforce")

    client = blocks.salesforce.get_client()
    done = client.query_all(
        "SELECT Id, QB_Invoice_Id__c, QB_Realm__c FROM Opportunity "
        "WHERE Name LIKE 'Bulk deal%' AND QB_Invoice_Id__c != null"
    )["records"]
    assert {r["Id"] for r in done} == ids
    created = sum(len(invoices(blocks, realm)) for realm in ("us", "eu"))
    assert created == DEALS
    assert len({(r["QB_Realm__c"], r["QB_Invoice_Id__c"]) for r in done}) == DEALS
    # the budget: batches of 30 in QuickBooks, one query and 200-record writes in Salesforce
    assert qbo["total"] <= 0.1 * DEALS, qbo
    assert sf["total"] <= 0.02 * DEALS, sf

    # again: nothing new is created, and reading costs a handful of calls
    for service in fresh.services.values():
        service.calls.clear()
    again = closed_won_to_invoice(
        closed_from=start, closed_to=end, config_path=config_path, return_state=True
    )
    assert again.is_completed(), again.message
    assert calls(fresh, "quickbooks")["total"] == 0  # every deal already carries its invoice
    assert sum(len(invoices(blocks, realm)) for realm in ("us", "eu")) == DEALS


def test_generate_endpoint_validates_its_input(fresh: Sandbox) -> None:
    url = f"{fresh.servers['salesforce'].base_url}/_sandbox/generate"
    bad = httpx.post(url, json={"opportunities": 0}, verify=False)
    assert bad.status_code == 400
    good = httpx.post(
        url,
        json={"opportunities": 3, "close_from": "2025-01-01", "close_to": "2025-01-31", "seed": 3},
        verify=False,
    )
    assert good.status_code == 200 and good.json()["created"] == 3
