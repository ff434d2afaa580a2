"""The receivables aging flow against the sandbox: invoices from the Closed Won flow age as the
sandbox clock moves; owners hear once per bucket change; payments clear the fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from quickbooks import QuickBooks

from blocks.quickbooks import QuickBooksConnection
from blocks.sandbox import SandboxBlocks
from flows.aging import DEFAULT_CONFIG, receivables_aging
from flows.closed_won import closed_won_to_invoice
from revbridge.config import load_config
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS
from tests.flows.conftest import calls, inject, slack_messages

ALERTING = {"31-60", "61-90", "90+"}


@pytest.fixture
def invoiced(fresh: Sandbox) -> Iterator[date]:
    """The demo company with its small deals invoiced, the clock pinned at noon today; yields
    today."""
    today = fresh.clock.today()
    fresh.clock.set(datetime.combine(today, time(12), UTC))
    try:
        state = closed_won_to_invoice(return_state=True)
        assert state.is_completed(), state.message
        yield today
    finally:
        fresh.clock.set(None)


def expected_bucket(days: int) -> str:
    """The convention, spelled out independently of revbridge.aging."""
    if days <= 0:
        return "Current"
    return "1-30" if days <= 30 else "31-60" if days <= 60 else "61-90" if days <= 90 else "90+"


def aged_opportunities(blocks: SandboxBlocks) -> dict[str, dict[str, Any]]:
    sf = blocks.salesforce.get_client()
    rows = sf.query_all(
        "SELECT Id, Name, QB_Invoice_Id__c, QB_Realm__c, Days_Outstanding__c, Aging_Bucket__c, "
        "Owner.Email FROM Opportunity WHERE QB_Invoice_Id__c != null"
    )["records"]
    return {r["Id"]: r for r in rows}


def qbo(realm_key: str) -> QuickBooks:
    """A client from the saved block: it holds the refresh token the flows rotated (the
    clock moves by weeks here, so a client from the seed's token would be refused)."""
    config = load_config(DEFAULT_CONFIG)
    block = QuickBooksConnection.load(config.realm(realm_key).connection_block)
    return block.get_client()  # type: ignore[union-attr]


def invoice_rows() -> dict[str, dict[str, Any]]:
    """Every revbridge invoice, keyed by "realm id/invoice id"."""
    found: dict[str, dict[str, Any]] = {}
    for realm in REALMS:
        qb = qbo(realm.key)
        url = f"{qb.api_url}/company/{realm.realm_id}/query"
        answer = qb.make_request(
            "POST", url, "SELECT * FROM Invoice MAXRESULTS 1000", content_type="application/text"
        )
        for row in answer["QueryResponse"].get("Invoice", []):
            if "revbridge:opportunity=" in (row.get("PrivateNote") or ""):
                found[f"{realm.realm_id}/{row['Id']}"] = row
    return found


def owner_alerts(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The aging alerts sent to owners (DMs, or named in the alerts channel)."""
    return [
        m
        for m in slack_messages(sandbox)
        if "days past due" in (m.get("text") or "") and not m["text"].startswith("*Receivables")
    ]


def check_aged(blocks: SandboxBlocks, today: date) -> dict[str, str]:
    """Every invoiced deal carries the days past due and bucket of its invoice; returns
    Opportunity Id → bucket."""
    invoices = invoice_rows()
    buckets: dict[str, str] = {}
    for opp_id, opp in aged_opportunities(blocks).items():
        invoice = invoices[f"{opp['QB_Realm__c']}/{opp['QB_Invoice_Id__c']}"]
        days = (today - date.fromisoformat(invoice["DueDate"])).days
        assert Decimal(str(invoice["Balance"])) > 0
        assert opp["Aging_Bucket__c"] == expected_bucket(days), opp["Name"]
        assert opp["Days_Outstanding__c"] == max(days, 0), opp["Name"]
        buckets[opp_id] = opp["Aging_Bucket__c"]
    return buckets


def test_buckets_move_with_time_and_owners_hear_once_per_change(
    fresh: Sandbox, blocks: SandboxBlocks, invoiced: date
) -> None:
    today = invoiced
    assert receivables_aging(as_of=today, return_state=True).is_completed()
    first = check_aged(blocks, today)
    assert len(first) >= 10
    alerts = owner_alerts(fresh)
    assert len(alerts) == sum(1 for b in first.values() if b in ALERTING)
    assert all(m["im_user"] for m in alerts)  # every demo owner is in Slack: DMs
    digests = slack_messages(fresh, "#revops-alerts")
    assert {r.key for r in REALMS} <= {
        r.key for r in REALMS for m in digests if f"Receivables aging — {r.key}" in m["text"]
    }

    # the same day again: nothing to write, nobody alerted twice
    patches = calls(fresh, "salesforce")
    assert receivables_aging(as_of=today, return_state=True).is_completed()
    assert len(owner_alerts(fresh)) == len(alerts)
    assert calls(fresh, "salesforce") != patches  # it read...
    assert _patch_count(fresh) == _patch_count_of(patches)  # ...but wrote nothing

    seen = len(alerts)
    previous = first
    for offset in (45, 100):
        later = today + timedelta(days=offset)
        fresh.clock.set(datetime.combine(later, time(12), UTC))
        assert receivables_aging(as_of=later, return_state=True).is_completed()
        now = check_aged(blocks, later)
        moved = [i for i, b in now.items() if b != previous[i] and b in ALERTING]
        assert moved, f"nothing moved at +{offset} days"
        assert len(owner_alerts(fresh)) == seen + len(moved)
        seen += len(moved)
        previous = now
    assert set(previous.values()) <= ALERTING and "90+" in previous.values()


def test_faults_retried_junk_corrected_and_a_paid_invoice_clears_the_fields(
    fresh: Sandbox, blocks: SandboxBlocks, invoiced: date
) -> None:
    later = invoiced + timedelta(days=45)
    sf = blocks.salesforce.get_client()
    junk = next(iter(aged_opportunities(blocks)))
    sf.Opportunity.update(junk, {"Aging_Bucket__c": "ninety-ish", "Days_Outstanding__c": 7})
    eu = next(r for r in REALMS if r.key == "eu")
    inject(
        fresh, "quickbooks", method="POST", path="/query$", count=2, status=503, tenant=eu.realm_id
    )
    state = receivables_aging(as_of=later, return_state=True)
    assert state.is_completed(), state.message
    assert fresh.services["quickbooks"].faults.pending() == []  # both 503s were met, and retried
    check_aged(blocks, later)  # every realm aged, the junk bucket replaced

    opps = aged_opportunities(blocks)
    us = next(r for r in REALMS if r.key == "us")
    paid_id, paid = next((i, o) for i, o in opps.items() if o["QB_Realm__c"] == us.realm_id)
    invoice = invoice_rows()[f"{us.realm_id}/{paid['QB_Invoice_Id__c']}"]
    qb = qbo("us")
    payment = {
        "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
        "TotalAmt": invoice["Balance"],
        "Line": [
            {
                "Amount": invoice["Balance"],
                "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
            }
        ],
    }
    qb.make_request(
        "POST", f"{qb.api_url}/company/{us.realm_id}/payment", request_body=json.dumps(payment)
    )

    assert receivables_aging(as_of=later, return_state=True).is_completed()
    after = aged_opportunities(blocks)
    assert after[paid_id]["Days_Outstanding__c"] is None
    assert after[paid_id]["Aging_Bucket__c"] is None
    others = {i for i, o in after.items() if o["Aging_Bucket__c"]}
    assert others == set(opps) - {paid_id}


def _patch_count_of(snapshot: dict[str, Any]) -> int:
    return sum(
        c["count"]
        for c in snapshot["calls"]
        if c["method"] == "PATCH" and "composite" in c["endpoint"]
    )


def _patch_count(sandbox: Sandbox) -> int:
    return _patch_count_of(calls(sandbox, "salesforce"))
