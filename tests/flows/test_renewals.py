"""The contract renewals flow against the sandbox's demo company (contracts renewing at T+7)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from blocks.sandbox import SandboxBlocks
from flows.renewals import contract_renewals
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS, build
from tests.flows.conftest import inject, slack_messages


def contracts(blocks: SandboxBlocks) -> dict[str, dict[str, Any]]:
    sf = blocks.salesforce.get_client()
    rows = sf.query_all(
        "SELECT Id, EndDate, Last_Invoice_Date__c, QB_Renewal_Invoice_Id__c, Account.Name "
        "FROM Contract"
    )["records"]
    return {r["Id"]: r for r in rows}


def renewal_invoices(blocks: SandboxBlocks) -> dict[str, list[dict[str, Any]]]:
    """Contract Id → the renewal invoices QuickBooks holds for it (every realm)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for realm in REALMS:
        qb = blocks.quickbooks[realm.key].get_client()
        url = f"{qb.api_url}/company/{realm.realm_id}/query"
        answer = qb.make_request(
            "POST", url, "SELECT * FROM Invoice MAXRESULTS 1000", content_type="application/text"
        )
        for row in answer["QueryResponse"].get("Invoice", []):
            note = row.get("PrivateNote") or ""
            if note.startswith("revbridge:contract="):
                contract_id = note.split("=")[1].split(":")[0]
                found.setdefault(contract_id, []).append({**row, "realm": realm.key})
    return found


def due_contracts(today: date) -> dict[str, str]:
    """Demo contracts renewing at T+7 whose customer can be matched: Id → account key."""
    company = build(today)
    return {
        company.sf_id(c.key): c.account_key
        for c in company.contracts
        if c.renewal_date == today + timedelta(days=7) and c.account_key != "initech"
    }


def test_contracts_renewing_in_seven_days_are_invoiced_once(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    today = fresh.clock.today()
    renewal = today + timedelta(days=7)
    company = build(today)
    expected = due_contracts(today)
    assert len(expected) >= 2

    state = contract_renewals(as_of=today, return_state=True)
    assert state.is_completed(), state.message
    found = renewal_invoices(blocks)
    assert set(found) == set(expected)
    stored = contracts(blocks)
    for contract_id, account_key in expected.items():
        (invoice,) = found[contract_id]
        account = company.account(account_key)
        assert invoice["realm"] == account.realm_key  # routed by the account's deals
        assert invoice["DueDate"] == renewal.isoformat()
        assert invoice["TxnDate"] == today.isoformat()
        assert Decimal(str(invoice["TotalAmt"])) >= Decimal("12000")
        assert invoice["PrivateNote"] == f"revbridge:contract={contract_id}:renewal={renewal}"
        assert stored[contract_id]["Last_Invoice_Date__c"] == today.isoformat()
        assert stored[contract_id]["QB_Renewal_Invoice_Id__c"] == invoice["Id"]
    # Initech matches two QuickBooks customers: reported, not invoiced
    summary = slack_messages(fresh, "#revops-alerts")[-1]["text"]
    assert f"Contract renewals for {renewal}" in summary
    assert "Needs Review: 1" in summary and "Initech" in summary

    # a second run (and a run the next day) invoices nothing again
    assert contract_renewals(as_of=today, return_state=True).is_completed()
    assert contract_renewals(as_of=today + timedelta(days=1), return_state=True).is_completed()
    assert {k: len(v) for k, v in renewal_invoices(blocks).items()} == {k: 1 for k in expected}


def test_a_503_and_a_lost_answer_on_the_batch_and_a_lost_write_back_make_no_duplicates(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    today = fresh.clock.today()
    expected = due_contracts(today)
    us = next(r for r in REALMS if r.key == "us").realm_id
    # a batch refused with 503, then one executed whose answer never arrives: both are sent
    # again with the same requestid, and QuickBooks replays instead of creating twice
    inject(fresh, "quickbooks", method="POST", path="/batch$", tenant=us, status=503)
    inject(
        fresh, "quickbooks", method="POST", path="/batch$", tenant=us, skip=1, drop_after_write=True
    )
    state = contract_renewals(as_of=today, return_state=True)
    assert state.is_completed(), state.message
    assert fresh.services["quickbooks"].faults.pending() == []  # both faults were met
    found = renewal_invoices(blocks)
    assert {k: len(v) for k, v in found.items()} == {k: 1 for k in expected}

    # as if the run had crashed before its write-back: the contracts do not know their invoices
    sf = blocks.salesforce.get_client()
    before = contracts(blocks)
    for contract_id in expected:
        sf.Contract.update(
            contract_id,
            {
                "QB_Renewal_Invoice_Id__c": None,
                "Last_Invoice_Date__c": before[contract_id]["EndDate"][:4] + "-01-01",
            },
        )
    state = contract_renewals(as_of=today, return_state=True)
    assert state.is_completed(), state.message
    assert renewal_invoices(blocks) == found  # found by the marker: nothing created
    stored = contracts(blocks)
    for contract_id in expected:
        assert stored[contract_id]["QB_Renewal_Invoice_Id__c"] == found[contract_id][0]["Id"]
        assert stored[contract_id]["Last_Invoice_Date__c"] == today.isoformat()


def test_contracts_with_bad_renewal_data_are_reported_by_field(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    today = fresh.clock.today()
    sf = blocks.salesforce.get_client()
    broken = sorted(due_contracts(today))
    no_product, bad_price = broken[0], broken[1]
    sf.Contract.update(no_product, {"Renewal_Product__c": None})
    sf.Contract.update(bad_price, {"Renewal_Unit_Price__c": -5, "Renewal_Quantity__c": None})

    state = contract_renewals(as_of=today, return_state=True)
    assert state.is_completed(), state.message  # reported, not an error
    found = renewal_invoices(blocks)
    assert no_product not in found and bad_price not in found
    assert set(found) == set(due_contracts(today)) - {no_product, bad_price}
    summary = slack_messages(fresh, "#revops-alerts")[-1]["text"]
    assert "Needs Review: 3" in summary
    assert "Renewal_Product__c: no renewal product" in summary
    assert "Renewal_Quantity__c: no renewal quantity" in summary
    assert "Renewal_Unit_Price__c: must be positive, is -5" in summary
    assert not contracts(blocks)[no_product]["QB_Renewal_Invoice_Id__c"]
