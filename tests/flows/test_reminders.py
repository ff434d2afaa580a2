"""Renewal reminders against the sandbox: the renewals flow invoices the contracts renewing at
T+7 (T = the renewal date = the invoice's DueDate); the daily aging flow e-mails each invoice still
unpaid at T+10 again through QuickBooks, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from quickbooks import QuickBooks

from blocks.quickbooks import QuickBooksConnection
from blocks.sandbox import SandboxBlocks
from flows.aging import DEFAULT_CONFIG, receivables_aging
from flows.renewals import contract_renewals
from revbridge.config import load_config
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS
from tests.flows.conftest import inject, slack_messages

US = next(r for r in REALMS if r.key == "us")


@pytest.fixture
def renewed(fresh: Sandbox) -> Iterator[date]:
    """The contracts renewing in 7 days invoiced today; yields T, their renewal date."""
    today = fresh.clock.today()
    fresh.clock.set(datetime.combine(today, time(12), UTC))
    try:
        state = contract_renewals(as_of=today, return_state=True)
        assert state.is_completed(), state.message
        yield today + timedelta(days=7)
    finally:
        fresh.clock.set(None)


def qbo() -> QuickBooks:
    """A client from the saved block: it holds the refresh token the flows rotated."""
    block = QuickBooksConnection.load(load_config(DEFAULT_CONFIG).realm("us").connection_block)
    return block.get_client()  # type: ignore[union-attr]


def renewal_invoices() -> dict[str, dict[str, Any]]:
    """Contract Id → its renewal invoice (the demo's due contracts all bill the US company)."""
    qb = qbo()
    answer = qb.make_request(
        "POST",
        f"{qb.api_url}/company/{US.realm_id}/query",
        "SELECT * FROM Invoice WHERE DueDate > '2000-01-01' MAXRESULTS 1000",
        content_type="application/text",
    )
    return {
        row["PrivateNote"].split("=")[1].split(":")[0]: row
        for row in answer["QueryResponse"].get("Invoice", [])
        if (row.get("PrivateNote") or "").startswith("revbridge:contract=")
    }


def reminder_dates(blocks: SandboxBlocks) -> dict[str, str | None]:
    sf = blocks.salesforce.get_client()
    rows = sf.query_all("SELECT Id, Renewal_Reminder_Sent__c FROM Contract")["records"]
    return {r["Id"]: r["Renewal_Reminder_Sent__c"] for r in rows}


def sends(sandbox: Sandbox) -> int:
    """Invoice e-mails QuickBooks was asked for (a replayed requestid counts as a call too)."""
    return sandbox.services["quickbooks"].calls.total(endpoint="invoice/send")


def age_on(sandbox: Sandbox, day: date, config_path: str = DEFAULT_CONFIG) -> Any:
    sandbox.clock.set(datetime.combine(day, time(12), UTC))
    return receivables_aging(as_of=day, config_path=config_path, return_state=True)


def pay(invoice: dict[str, Any]) -> None:
    qb = qbo()
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
    url = f"{qb.api_url}/company/{US.realm_id}/payment"
    qb.make_request("POST", url, request_body=json.dumps(payment))


def reminder_dms(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_messages(sandbox)
        if "e-mailed it to the customer again" in (m.get("text") or "")
    ]


def test_an_unpaid_renewal_invoice_is_reminded_once_even_after_missed_days(
    fresh: Sandbox, blocks: SandboxBlocks, renewed: date
) -> None:
    t = renewed
    invoices = renewal_invoices()
    assert len(invoices) >= 3
    paid = sorted(invoices)[0]
    pay(invoices[paid])
    unpaid = set(invoices) - {paid}

    # T+9: not yet
    assert age_on(fresh, t + timedelta(days=9)).is_completed()
    assert sends(fresh) == 0
    assert all(v is None for v in reminder_dates(blocks).values())

    # T+10 and T+11 missed: the run on T+12 reminds every unpaid invoice once, the paid one never
    state = age_on(fresh, t + timedelta(days=12))
    assert state.is_completed(), state.message
    assert sends(fresh) == len(unpaid)
    after = renewal_invoices()
    stored = reminder_dates(blocks)
    for contract_id in unpaid:
        assert after[contract_id]["EmailStatus"] == "EmailSent"
        assert after[contract_id]["DeliveryInfo"]["DeliveryTime"][:10] == str(t + timedelta(12))
        assert stored[contract_id] == str(t + timedelta(days=12))
    assert stored[paid] is None and "DeliveryInfo" not in after[paid]
    dms = reminder_dms(fresh)
    assert len(dms) == len(unpaid) and all(m["im_user"] for m in dms)  # the contract owners
    assert state.result()["reminded"] == len(unpaid)

    # the same day again, and the day after: nothing is sent twice
    assert age_on(fresh, t + timedelta(days=12)).is_completed()
    assert age_on(fresh, t + timedelta(days=13)).is_completed()
    assert sends(fresh) == len(unpaid)

    # the write-back lost (as after a crash between the e-mail and Salesforce): the invoice's own
    # DeliveryInfo says it went, so it is recorded, not sent again
    lost = sorted(unpaid)[0]
    blocks.salesforce.get_client().Contract.update(lost, {"Renewal_Reminder_Sent__c": None})
    assert age_on(fresh, t + timedelta(days=14)).is_completed()
    assert sends(fresh) == len(unpaid)
    assert reminder_dates(blocks)[lost] == str(t + timedelta(days=12))
    assert len(reminder_dms(fresh)) == len(unpaid)


def test_a_503_on_the_send_is_retried_and_an_invoice_without_email_goes_to_review(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    today = fresh.clock.today()
    t = today + timedelta(days=7)
    sf = blocks.salesforce.get_client()
    due = sf.query_all(
        f"SELECT Id, AccountId FROM Contract WHERE EndDate = {t - timedelta(days=1)} ORDER BY Id"
    )["records"]
    no_email = due[-1]
    sf.Account.update(no_email["AccountId"], {"Billing_Email__c": None})
    fresh.clock.set(datetime.combine(today, time(12), UTC))
    try:
        assert contract_renewals(as_of=today, return_state=True).is_completed()
        invoices = renewal_invoices()
        assert no_email["Id"] in invoices and not invoices[no_email["Id"]].get("BillEmail")
        inject(fresh, "quickbooks", method="POST", path="/send$", status=503, tenant=US.realm_id)

        state = age_on(fresh, t + timedelta(days=10))
    finally:
        fresh.clock.set(None)
    assert state.is_completed(), state.message  # missing data is reported, not an error
    assert fresh.services["quickbooks"].faults.pending() == []  # the 503 was met, and retried
    stored = reminder_dates(blocks)
    for contract_id in set(invoices) - {no_email["Id"]}:
        assert stored[contract_id] == str(t + timedelta(days=10))
    assert stored[no_email["Id"]] is None
    assert sends(fresh) == len(invoices)  # one answered 503 and was sent again; none to no one
    summary = [m for m in slack_messages(fresh, "#revops-alerts") if "reminder" in m["text"]][-1]
    assert f"renewal reminders e-mailed: {len(invoices) - 1}" in summary["text"]
    assert "needs a human: 1" in summary["text"] and "has no BillEmail" in summary["text"]
