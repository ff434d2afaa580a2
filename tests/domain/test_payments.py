"""Payment status rules: balances, partial and multi-invoice payments, unapplied money, void,
delete, credit memos, pairing invoices with deals, CDC bookkeeping, write-back bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from revbridge.payments import (
    CDC_MAX_OBJECTS,
    CDC_OVERLAP,
    InvoiceState,
    OpportunityPayment,
    PaymentRow,
    cdc_rows,
    cdc_start,
    cdc_truncated,
    decide,
    linked_ids,
    markdown_report,
    next_watermark,
    opportunities_query,
    owner_message,
    pair_invoices,
    payment_status,
    payment_updates,
    slack_summary,
    unapplied_amount,
    unapplied_news,
)

OPP = "006000000000001AAA"
OTHER = "006000000000002AAA"
REALM = "9341453172461001"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PAID_STAGE = "Closed Won - Paid"


def invoice(
    inv_id: str = "130",
    total: str = "1000.00",
    balance: str = "1000.00",
    opp: str | None = OPP,
    note: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": inv_id,
        "DocNumber": "1004",
        "TotalAmt": total,
        "Balance": balance,
        "CurrencyRef": {"value": "USD"},
    }
    marker = f"revbridge:opportunity={opp}" if opp else ""
    row["PrivateNote"] = note if note is not None else marker
    return row


def opportunity(**fields: Any) -> OpportunityPayment:
    record = {
        "Id": OPP,
        "Name": "Hooli renewal",
        "StageName": "Closed Won",
        "QB_Invoice_Id__c": "130",
        "QB_Realm__c": REALM,
        "Owner": {"Name": "Dana Scully", "Email": "dana@acme.example"},
        **fields,
    }
    return OpportunityPayment.from_record(record)


@pytest.mark.parametrize(
    ("total", "balance", "status"),
    [
        ("1000", "0", "Paid"),
        ("1000", "0.00", "Paid"),
        ("1000", "400", "Partially Paid"),
        ("1000", "999.99", "Partially Paid"),
        ("1000", "1000", "Unpaid"),
        ("0", "0", "Unpaid"),  # a zero invoice is never "paid"
        ("1000", "1200", "Unpaid"),  # more open than billed: not a payment
    ],
)
def test_status_follows_balance(total: str, balance: str, status: str) -> None:
    assert payment_status(Decimal(total), Decimal(balance)) == status


def test_amount_paid_is_total_less_balance() -> None:
    state = InvoiceState.from_qbo(invoice(total="1000.00", balance="250.5"))
    assert state.status == "Partially Paid"
    assert state.amount_paid == Decimal("749.50")
    assert state.opportunity_id == OPP
    assert state.label == "1004 (Id 130)"


def test_voided_and_deleted_invoices_are_unpaid_and_need_review() -> None:
    voided = InvoiceState.from_qbo(
        invoice(total="0", balance="0", note=f"Voided - revbridge:opportunity={OPP}")
    )
    assert voided.voided and voided.status == "Unpaid" and voided.amount_paid == 0
    assert voided.opportunity_id == OPP
    assert "voided" in (voided.review_reason or "")
    tombstone = InvoiceState.from_qbo(
        {"Id": "131", "status": "Deleted", "domain": "QBO", "MetaData": {}}
    )
    assert tombstone.deleted and tombstone.status == "Unpaid"
    assert "deleted" in (tombstone.review_reason or "")
    # a paid invoice whose note merely mentions the word is not voided
    assert not InvoiceState.from_qbo(invoice(balance="0", note="Voided? no")).voided


def test_credit_memo_lowers_the_balance_like_a_payment() -> None:
    # 1000 invoice: 600 paid in cash, 400 covered by a credit memo through a payment
    state = InvoiceState.from_qbo(invoice(balance="0"))
    change = decide(opportunity(Payment_Status__c="Partially Paid"), state, PAID_STAGE, NOW)
    assert state.amount_paid == Decimal("1000.00")
    assert change.fields["Payment_Status__c"] == "Paid"


def test_full_payment_moves_the_stage_and_notifies_once() -> None:
    state = InvoiceState.from_qbo(invoice(balance="0"))
    change = decide(
        opportunity(Payment_Status__c="Unpaid", Amount_Paid__c=0), state, PAID_STAGE, NOW
    )
    assert change.fields == {
        "Payment_Status__c": "Paid",
        "Amount_Paid__c": 1000,
        "StageName": PAID_STAGE,
    }
    assert change.notice == "paid"
    again = opportunity(Payment_Status__c="Paid", Amount_Paid__c=1000, StageName=PAID_STAGE)
    unchanged = decide(again, state, PAID_STAGE, NOW)
    assert unchanged.fields == {} and unchanged.notice is None
    assert payment_updates([unchanged]) == []


def test_partial_payments_notify_on_each_new_amount() -> None:
    first = decide(opportunity(), InvoiceState.from_qbo(invoice(balance="600")), PAID_STAGE, NOW)
    assert first.fields == {"Payment_Status__c": "Partially Paid", "Amount_Paid__c": 400}
    assert first.notice == "partial"
    second = decide(
        opportunity(Payment_Status__c="Partially Paid", Amount_Paid__c=400),
        InvoiceState.from_qbo(invoice(balance="100")),
        PAID_STAGE,
        NOW,
    )
    assert second.fields == {"Amount_Paid__c": 900}
    assert second.notice == "partial"
    assert "900.00 of USD 1,000.00" in owner_message(second)


def test_paid_deal_whose_payment_is_deleted_goes_back_to_closed_won() -> None:
    opp = opportunity(Payment_Status__c="Paid", Amount_Paid__c=1000, StageName=PAID_STAGE)
    change = decide(opp, InvoiceState.from_qbo(invoice(balance="1000")), PAID_STAGE, NOW)
    assert change.fields == {
        "Payment_Status__c": "Unpaid",
        "Amount_Paid__c": 0,
        "StageName": "Closed Won",
    }
    assert change.notice is None


def test_void_writes_a_review_note_once() -> None:
    voided = InvoiceState.from_qbo(
        invoice(total="0", balance="0", note=f"Voided - revbridge:opportunity={OPP}")
    )
    opp = opportunity(Payment_Status__c="Partially Paid", Amount_Paid__c=400)
    change = decide(opp, voided, PAID_STAGE, NOW)
    assert change.fields["Payment_Status__c"] == "Unpaid"
    assert change.fields["Amount_Paid__c"] == 0
    assert change.fields["QB_Sync_Status__c"] == "Needs Review"
    assert change.fields["QB_Sync_Error__c"].startswith("2026-11-23 10:00 UTC: ")
    assert change.notice == "review"
    noted = opportunity(
        Payment_Status__c="Unpaid",
        Amount_Paid__c=0,
        QB_Sync_Status__c="Needs Review",
        QB_Sync_Error__c=change.fields["QB_Sync_Error__c"],
    )
    assert decide(noted, voided, PAID_STAGE, NOW).fields == {}


def test_pairing_needs_the_marker_and_the_link() -> None:
    mine = InvoiceState.from_qbo(invoice("130"))
    void_note = f"Voided - revbridge:opportunity={OPP}"
    old = InvoiceState.from_qbo(invoice("120", total="0", balance="0", note=void_note))
    foreign = InvoiceState.from_qbo(invoice("1", opp=None))  # not revbridge's: ignored
    unlinked = InvoiceState.from_qbo(invoice("140", opp=OTHER))
    deleted = InvoiceState.gone("150")
    opps = [
        opportunity(),
        opportunity(Id=OTHER, QB_Invoice_Id__c=None),
        opportunity(Id="006000000000003AAA", QB_Invoice_Id__c="150"),
    ]
    pairs, skipped = pair_invoices([mine, old, foreign, unlinked, deleted], opps, REALM)
    assert [(o.id, i.invoice_id) for o, i in pairs] == [
        (OPP, "130"),
        ("006000000000003AAA", "150"),
    ]
    reasons = {s.invoice.invoice_id: s.reason for s in skipped}
    assert "links another invoice (130)" in reasons["120"]
    assert "not linked" in reasons["140"]
    assert "1" not in reasons
    # the same invoice Id in another realm is another invoice
    other_realm, _ = pair_invoices([deleted], opps, "9341453172461002")
    assert other_realm == []


def test_payment_across_two_invoices_and_unapplied_money() -> None:
    payment = {
        "Id": "200",
        "TotalAmt": "1500.00",
        "UnappliedAmt": "100.00",
        "Line": [
            {"Amount": "400", "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
            {"Amount": "1000", "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
            {"Amount": "0", "LinkedTxn": [{"TxnId": "90", "TxnType": "CreditMemo"}]},
        ],
    }
    assert linked_ids(payment, "Invoice") == ["130", "131"]
    assert linked_ids(payment, "CreditMemo") == ["90"]
    assert unapplied_amount(payment) == Decimal("100.00")
    assert unapplied_amount({"Id": "200", "status": "Deleted"}) == 0
    memo = {"Id": "90", "LinkedTxn": [{"TxnId": "200", "TxnType": "Payment"}]}
    assert linked_ids(memo, "Payment") == ["200"]


def test_cdc_start_never_goes_past_30_days() -> None:
    assert cdc_start(None, NOW) > NOW - timedelta(days=30)
    assert cdc_start(NOW - timedelta(days=90), NOW) == cdc_start(None, NOW)
    recent = NOW - timedelta(hours=1)
    assert cdc_start(recent, NOW) == recent


def test_cdc_answer_and_watermark() -> None:
    answer = {
        "CDCResponse": [
            {"QueryResponse": [{"Invoice": [invoice()], "totalCount": 1}, {}, {"Payment": []}]}
        ],
        "time": "2026-11-23T02:00:00.000-08:00",
    }
    rows = cdc_rows(answer)
    assert [r["Id"] for r in rows["Invoice"]] == ["130"]
    assert not cdc_truncated(rows)
    since = NOW - timedelta(hours=2)
    assert next_watermark(since, NOW, rows["Invoice"]) == NOW - CDC_OVERLAP
    assert next_watermark(since, since, []) == since  # never moves backwards
    full = [
        {"Id": str(n), "MetaData": {"LastUpdatedTime": "2026-11-23T01:00:00-08:00"}}
        for n in range(CDC_MAX_OBJECTS)
    ]
    assert cdc_truncated({"Invoice": full})
    assert next_watermark(since, NOW, full) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_opportunities_query_and_bodies() -> None:
    soql = opportunities_query(REALM, ["130", "131"], [OPP])
    assert f"(QB_Realm__c = '{REALM}' AND QB_Invoice_Id__c IN ('130', '131')) OR Id IN" in soql
    assert "Owner.Email" in soql
    with pytest.raises(ValueError, match="no invoice"):
        opportunities_query(REALM, [], [])
    changes = [
        decide(opportunity(), InvoiceState.from_qbo(invoice(balance="0")), PAID_STAGE, NOW)
    ] * 201
    bodies = payment_updates(changes)
    assert [len(b["records"]) for b in bodies] == [200, 1]
    assert bodies[0]["allOrNone"] is False
    assert bodies[0]["records"][0]["attributes"] == {"type": "Opportunity"}


def test_report_lists_what_changed() -> None:
    change = decide(opportunity(), InvoiceState.from_qbo(invoice(balance="0")), PAID_STAGE, NOW)
    rows = [
        PaymentRow.of("us", change, "Updated"),
        PaymentRow(realm="us", invoice="payment 200", outcome="Unapplied", reason="USD 100.00"),
        PaymentRow.of("us", change, "Unchanged"),
    ]
    text = markdown_report(rows, "Payments")
    assert "Updated: 1, Unapplied: 1, Unchanged: 1" in text
    assert text.count("| us |") == 2
    summary = slack_summary(rows, "Payments")
    assert summary and "1 deal(s) updated (1 paid, 0 partial)" in summary
    assert "Unapplied" in summary
    assert slack_summary(rows[2:], "Payments") is None
    assert "(Dana Scully)" in owner_message(change, mention="(Dana Scully)")


def test_unapplied_money_is_news_once_per_amount() -> None:
    payments = [
        {"Id": "200", "UnappliedAmt": "100.00"},
        {"Id": "201", "UnappliedAmt": "0"},
        {"Id": "202", "status": "Deleted"},
    ]
    found, known = unapplied_news(payments, {"201": "50.00", "202": "10.00"})
    assert [(p["Id"], news) for p, news in found] == [("200", True)]
    assert known == {"200": "100.00"}  # applied or deleted ones are forgotten
    again, same = unapplied_news(payments, known)
    assert [news for _, news in again] == [False] and same == known
    more, _ = unapplied_news([{"Id": "200", "UnappliedAmt": "150"}], known)
    assert [news for _, news in more] == [True]
