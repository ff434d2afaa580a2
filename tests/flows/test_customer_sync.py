"""Customer sync and the cleanse audit against the sandbox's demo company."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect.variables import Variable

import flows.customer_sync as module
from blocks.sandbox import SandboxBlocks
from flows.customer_sync import STATE_VARIABLE, customer_cleanse_audit, customer_sync
from revbridge.config_sections import CustomerSyncConfig
from sandbox.core.server import Sandbox
from sandbox.demo_company import build
from tests.flows.conftest import calls, inject, slack_messages


def wayne(blocks: SandboxBlocks) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo's linked pair: Salesforce Account and QuickBooks customer "Wayne Ent."."""
    company = build(date.today())  # Ids do not depend on the date
    sf = blocks.salesforce.get_client()
    account = sf.Account.get(company.sf_id("wayne"))
    connection = blocks.quickbooks["us"]
    qb = connection.get_client()
    url = f"{qb.api_url}/company/{connection.realm_id}/query"
    query = "SELECT * FROM Customer WHERE DisplayName = 'Wayne Ent.'"
    found = qb.make_request("POST", url, query, content_type="application/text")
    return account, found["QueryResponse"]["Customer"][0]


def update_customer(blocks: SandboxBlocks, customer: dict[str, Any], **fields: Any) -> None:
    connection = blocks.quickbooks["us"]
    qb = connection.get_client()
    url = f"{qb.api_url}/company/{connection.realm_id}/customer"
    body = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True, **fields}
    qb.make_request("POST", url, json.dumps(body))


def writes(sandbox: Sandbox) -> int:
    qb = sum(
        r["count"]
        for r in calls(sandbox, "quickbooks")["calls"]
        if r["endpoint"] == "customer" and r["method"] == "POST"
    )
    sf = sum(r["count"] for r in calls(sandbox, "salesforce")["calls"] if r["method"] == "PATCH")
    return qb + sf


@pytest.fixture
def clean_state(fresh: Sandbox) -> Sandbox:
    Variable.unset(STATE_VARIABLE)
    return fresh


def test_fields_flow_from_their_owner_and_conflicts_are_reported(
    clean_state: Sandbox, blocks: SandboxBlocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = clean_state
    first = customer_sync(return_state=True)
    assert first.is_completed(), first.message
    # every owned field has a home on both sides (Payment_Terms__c, Tax_Exempt__c on Account)
    assert set(first.result()["skipped_fields"]) == set()
    account, customer = wayne(blocks)
    assert customer["CompanyName"] == account["Name"]  # first sync: Salesforce owns the name

    # nothing new: nothing written
    before = writes(fresh)
    again = customer_sync(return_state=True)
    assert again.is_completed() and "0 changes, 0 conflicts" in str(again.message)
    assert writes(fresh) == before

    # a Salesforce-owned field changed in Salesforce → QuickBooks updated
    sf = blocks.salesforce.get_client()
    sf.Account.update(account["Id"], {"BillingCity": "Gotham City"})
    assert customer_sync(return_state=True).is_completed()
    account, customer = wayne(blocks)
    assert customer["BillAddr"]["City"] == "Gotham City"

    # dry run: reported, nothing written
    sf.Account.update(account["Id"], {"BillingCity": "New Gotham"})
    before = writes(fresh)
    dry = customer_sync(dry_run=True, return_state=True)
    assert dry.is_completed()
    assert [c["field"] for c in dry.result()["changes"]] == ["billing_address"]
    assert writes(fresh) == before
    assert wayne(blocks)[1]["BillAddr"]["City"] == "Gotham City"
    sf.Account.update(account["Id"], {"BillingCity": "Gotham City"})

    # a Salesforce-owned field changed in QuickBooks → conflict, nothing overwritten
    update_customer(blocks, customer, PrimaryEmailAddr={"Address": "treasury@wayne.example"})
    conflict = customer_sync(return_state=True)
    assert conflict.is_completed()
    (found,) = conflict.result()["conflicts"]
    assert (found["field"], found["quickbooks"]) == ("email", "treasury@wayne.example")
    account, customer = wayne(blocks)
    assert account["Billing_Email__c"] == "ap@wayne.example"
    assert customer["PrimaryEmailAddr"]["Address"] == "treasury@wayne.example"
    assert any("conflict" in m["text"] for m in slack_messages(fresh, "#revops-alerts"))
    before = writes(fresh)
    assert customer_sync(return_state=True).result()["conflicts"]
    assert writes(fresh) == before  # still reported, still no back and forth

    # a QuickBooks-owned field changed in QuickBooks → Salesforce updated
    owners = CustomerSyncConfig(fields={"contact": "quickbooks"})
    monkeypatch.setattr(module, "customer_sync_settings", lambda config: owners)
    assert customer_sync(return_state=True).is_completed()  # agree on the current phone first
    update_customer(blocks, customer, PrimaryPhone={"FreeFormNumber": "+1 201 555 0199"})
    assert customer_sync(return_state=True).is_completed()
    assert wayne(blocks)[0]["Phone"] == "+1 201 555 0199"


def test_cleanse_audit_lists_duplicates_and_look_alikes(
    clean_state: Sandbox, tmp_path: Path
) -> None:
    state = customer_cleanse_audit(report_dir=str(tmp_path), return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()["rows"]
    names = {(r["kind"], r["names"]) for r in rows}
    assert ("salesforce duplicate", "Umbrella Corp / Umbrella Corporation") in names
    assert ("look-alike", "Initech / Initech LLC") in names
    assert ("look-alike", "Initech / Initech Holdings LLC") in names
    assert (tmp_path / "cleanse-audit.csv").read_text().startswith("kind,realm,records")


def test_quickbooks_faults_during_sync_are_retried_and_write_once(
    clean_state: Sandbox, blocks: SandboxBlocks
) -> None:
    fresh = clean_state
    assert customer_sync(return_state=True).is_completed()  # first sync: both sides agree
    account, customer = wayne(blocks)
    blocks.salesforce.get_client().Account.update(account["Id"], {"BillingCity": "Bludhaven"})
    # the update is refused twice (503), then its connection drops after QuickBooks wrote it
    inject(fresh, "quickbooks", method="POST", path=r"/customer$", count=2, status=503)
    inject(fresh, "quickbooks", method="POST", path=r"/customer$", drop_after_write=True)
    state = customer_sync(return_state=True)
    assert state.is_completed(), state.message
    _, updated = wayne(blocks)
    assert updated["BillAddr"]["City"] == "Bludhaven"
    # one write landed: the retry after the drop replayed it by requestid
    assert int(updated["SyncToken"]) == int(customer["SyncToken"]) + 1
    assert customer_sync(return_state=True).result()["changes"] == []
