"""QuickBooks payments → Salesforce against the sandbox: payments made with python-quickbooks
after the Closed Won flow invoiced the demo deals, then the CDC sweep and the webhook path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prefect.variables import Variable
from quickbooks import QuickBooks
from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment, PaymentLine

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from flows.payments import STATE_VARIABLE, sync_payments
from sandbox.core.server import Sandbox
from tests.flows.conftest import calls, inject, slack_messages

US = "9341453172461001"
PAID_STAGE = "Closed Won - Paid"


def deals(blocks: SandboxBlocks) -> dict[str, dict[str, Any]]:
    """Invoiced US deals by account name (the part of Name before " — ")."""
    sf = blocks.salesforce.get_client()
    rows = sf.query_all(
        "SELECT Id, Name, StageName, Payment_Status__c, Amount_Paid__c, QB_Invoice_Id__c, "
        "QB_Customer_Id__c, QB_Sync_Status__c, QB_Sync_Error__c, Owner.Email FROM Opportunity "
        f"WHERE QB_Realm__c = '{US}' AND QB_Invoice_Id__c != null"
    )["records"]
    by_account: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["QB_Invoice_Id__c"])):
        by_account.setdefault(row["Name"].split(" — ")[0], row)
        by_account[f"{row['Name']} #{row['QB_Invoice_Id__c']}"] = row
    return by_account


def invoice(qb: QuickBooks, deal: dict[str, Any]) -> Invoice:
    return Invoice.get(deal["QB_Invoice_Id__c"], qb=qb)


def pay(
    qb: QuickBooks, customer: str, total: Decimal, applied: list[tuple[str, str, Decimal]]
) -> Payment:
    payment = Payment()
    payment.CustomerRef = Ref()
    payment.CustomerRef.value = customer
    payment.TotalAmt = float(total)
    payment.Line = []
    for txn_type, txn_id, amount in applied:
        line = PaymentLine()
        line.Amount = float(amount)
        link = LinkedTxn()
        link.TxnId, link.TxnType = txn_id, txn_type
        line.LinkedTxn = [link]
        payment.Line.append(line)
    payment.save(qb=qb)
    return payment


def dms(fresh: Sandbox, blocks: SandboxBlocks, email: str) -> list[str]:
    user = blocks.slack.get_client().users_lookupByEmail(email=email)["user"]["id"]
    return [m["text"] for m in slack_messages(fresh, user)]


def test_payments_reach_salesforce_once(fresh: Sandbox, blocks: SandboxBlocks) -> None:
    Variable.unset(STATE_VARIABLE)
    assert closed_won_to_invoice(return_state=True).is_completed()
    qb = blocks.quickbooks["us"].get_client()
    before = deals(blocks)
    hooli = [v for k, v in before.items() if k.startswith("Hooli — ")]
    umbrella, oreilly = before["Umbrella Corporation"], before["O'Reilly Media"]
    soylent = before["Soylent Foods"]
    assert len(hooli) == 2

    # one payment across Hooli's two invoices; a partial on Umbrella; O'Reilly paid in part and
    # then voided; money from Soylent applied to nothing
    hooli_invoices = [invoice(qb, d) for d in hooli]
    pay(
        qb,
        hooli[0]["QB_Customer_Id__c"],
        sum((Decimal(str(i.TotalAmt)) for i in hooli_invoices), Decimal(0)),
        [("Invoice", str(i.Id), Decimal(str(i.TotalAmt))) for i in hooli_invoices],
    )
    for deal, amount in ((umbrella, Decimal(5000)), (oreilly, Decimal(3000))):
        pay(qb, deal["QB_Customer_Id__c"], amount, [("Invoice", deal["QB_Invoice_Id__c"], amount)])
    invoice(qb, oreilly).void(qb=qb)
    pay(qb, soylent["QB_Customer_Id__c"], Decimal(1000), [])

    state = sync_payments(return_state=True)
    assert state.is_completed(), state.message
    after = deals(blocks)
    for deal in hooli:
        now = after[f"{deal['Name']} #{deal['QB_Invoice_Id__c']}"]
        assert now["Payment_Status__c"] == "Paid"
        assert now["StageName"] == PAID_STAGE
        assert Decimal(str(now["Amount_Paid__c"])) > 0
    assert after["Umbrella Corporation"]["Payment_Status__c"] == "Partially Paid"
    assert after["Umbrella Corporation"]["Amount_Paid__c"] == 5000
    assert after["Umbrella Corporation"]["StageName"] == "Closed Won"
    voided = after["O'Reilly Media"]
    assert (voided["Payment_Status__c"], voided["Amount_Paid__c"]) == ("Unpaid", 0)
    assert voided["QB_Sync_Status__c"] == "Needs Review"
    assert "voided" in voided["QB_Sync_Error__c"]
    untouched = after["Dunder Mifflin"]
    assert (untouched["Payment_Status__c"], untouched["Amount_Paid__c"]) == ("Unpaid", 0)

    # owners hear about their own deals; the alerts channel gets the summary
    ava = dms(fresh, blocks, hooli[0]["Owner"]["Email"])
    assert sum("paid in full" in t for t in ava) == 2
    marcus = dms(fresh, blocks, umbrella["Owner"]["Email"])
    assert any("partially paid" in t and "5,000.00 of USD 21,000.00" in t for t in marcus)
    assert any("needs review" in t and "voided" in t for t in marcus)
    summary = slack_messages(fresh, "#revops-alerts")[-1]["text"]
    assert "QuickBooks payments" in summary and "(2 paid, 1 partial)" in summary
    # Soylent's money, and O'Reilly's released by the void, wait unapplied
    assert "Unapplied" in summary and "1,000.00" in summary and "3,000.00" in summary
    assert "Needs Review: O'Reilly Media" in summary and "was voided" in summary
    watermark = Variable.get(STATE_VARIABLE)
    assert set(watermark) == {"us", "eu"}
    assert len(watermark["us"]["unapplied"]) == 2  # said once; the next sweep stays quiet

    # a second sweep reads the same changes again and writes nothing, tells nobody
    for service in fresh.services.values():
        service.calls.clear()
    sent = len(slack_messages(fresh))
    again = sync_payments(return_state=True)
    assert again.is_completed(), again.message
    sf = calls(fresh, "salesforce")["calls"]
    assert not [c for c in sf if c["endpoint"] == "composite/sobjects"], sf
    assert len(slack_messages(fresh)) == sent
    assert deals(blocks) == after


def test_webhook_path_credit_memo_delete_and_a_503_during_cdc(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    Variable.unset(STATE_VARIABLE)
    assert closed_won_to_invoice(return_state=True).is_completed()
    qb = blocks.quickbooks["us"].get_client()
    before = deals(blocks)

    # QuickBooks answers the sweep's CDC with a 503 once: retried, the run completes
    for service in fresh.services.values():
        service.calls.clear()
    inject(fresh, "quickbooks", path="/cdc", tenant=US, status=503, count=1)
    swept = sync_payments(realm="us", return_state=True)
    assert swept.is_completed(), swept.message
    cdc = [c for c in calls(fresh, "quickbooks")["calls"] if c["endpoint"] == "cdc"]
    assert sum(c["count"] for c in cdc) == 2
    assert deals(blocks)["Massive Dynamic"]["Payment_Status__c"] == "Unpaid"

    # a credit memo covers Massive Dynamic's first invoice (applied through a zero payment)
    massive = before["Massive Dynamic"]
    target = invoice(qb, massive)
    memo = CreditMemo()
    memo.CustomerRef = Ref()
    memo.CustomerRef.value = massive["QB_Customer_Id__c"]
    line = SalesItemLine()
    line.Amount = float(target.TotalAmt)
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = target.Line[0].SalesItemLineDetail.ItemRef
    line.SalesItemLineDetail.Qty = 1
    line.SalesItemLineDetail.UnitPrice = float(target.TotalAmt)
    memo.Line = [line]
    memo.save(qb=qb)
    amount = Decimal(str(target.TotalAmt))
    pay(
        qb,
        massive["QB_Customer_Id__c"],
        Decimal(0),
        [("Invoice", str(target.Id), amount), ("CreditMemo", str(memo.Id), amount)],
    )
    # Dunder Mifflin's invoice is deleted
    invoice(qb, before["Dunder Mifflin"]).delete(qb=qb)

    # the webhook path: the trigger passes the realm id and the changed document's Id
    credited = sync_payments(realm=US, credit_memo_ids=[str(memo.Id)], return_state=True)
    assert credited.is_completed(), credited.message
    deleted = sync_payments(
        realm=US, invoice_ids=[before["Dunder Mifflin"]["QB_Invoice_Id__c"]], return_state=True
    )
    assert deleted.is_completed(), deleted.message
    after = deals(blocks)
    assert after["Massive Dynamic"]["Payment_Status__c"] == "Paid"
    assert after["Massive Dynamic"]["StageName"] == PAID_STAGE
    assert Decimal(str(after["Massive Dynamic"]["Amount_Paid__c"])) == amount
    gone = after["Dunder Mifflin"]
    assert gone["QB_Sync_Status__c"] == "Needs Review"
    assert "deleted" in gone["QB_Sync_Error__c"]
    # the webhook path leaves the sweep's watermark alone
    assert set(Variable.get(STATE_VARIABLE)) == {"us"}

    # bad input fails loudly, naming the problem
    unknown = sync_payments(realm="nowhere", return_state=True)
    assert unknown.is_failed() and "unknown realm 'nowhere'" in (unknown.message or "")
    no_realm = sync_payments(invoice_ids=["1"], return_state=True)
    assert no_realm.is_failed() and "need a realm" in (no_realm.message or "")
