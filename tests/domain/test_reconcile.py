"""Monthly reconciliation: the joins and every discrepancy reason, with small frames."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from revbridge.reconcile import (
    DETAIL_COLUMNS,
    SUMMARY_COLUMNS,
    Reconciliation,
    applications_frame,
    chart_png,
    deals_frame,
    invoices_frame,
    markdown_report,
    parse_month,
    previous_month,
    reason_counts,
    reconcile,
    slack_text,
    table_rows,
    to_csv,
)
from sandbox.demo_company import salesforce_id

REALM_IDS = {"9341453172461001": "us", "9341453172461002": "eu"}
RECORD_TYPES = {"US_Sales": "us", "EU_Sales": "eu"}
HOME = {"us": "USD", "eu": "EUR"}
WON = ("Closed Won", "Closed Won - Paid")
MONTH = "2026-10"


def opp(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": salesforce_id("Opportunity", n),
        "Name": f"Deal {n}",
        "Amount": 1000.0,
        "CurrencyIsoCode": "USD",
        "CloseDate": "2026-10-05",
        "StageName": "Closed Won",
        "QB_Invoice_Id__c": None,
        "QB_Realm__c": None,
        "QB_Sync_Status__c": None,
        "QB_Sync_Error__c": None,
        "Account": {"Name": f"Account {n}"},
        "Owner": {"Name": "Ava Chen"},
        "RecordType": {"DeveloperName": "US_Sales"},
    }
    record.update(fields)
    return record


def invoice(invoice_id: str, deal: int | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Id": invoice_id,
        "DocNumber": str(1000 + int(invoice_id)),
        "TxnDate": "2026-10-05",
        "CustomerRef": {"value": "7", "name": f"Customer {deal}"},
        "CurrencyRef": {"value": "USD"},
        "ExchangeRate": 1,
        "TotalAmt": 1000.0,
        "Balance": 1000.0,
        "TxnTaxDetail": {"TotalTax": 0},
    }
    if deal is not None:
        body["PrivateNote"] = f"revbridge:opportunity={salesforce_id('Opportunity', deal)}"
    body.update(fields)
    return body


def payment(payment_id: str, total: float, *links: tuple[str, str, float]) -> dict[str, Any]:
    return {
        "Id": payment_id,
        "TotalAmt": total,
        "ExchangeRate": 1,
        "PaymentRefNum": f"CHK-{payment_id}",
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": kind}]}
            for kind, txn_id, amount in links
        ],
    }


def run(
    deals: list[dict[str, Any]],
    invoices: list[dict[str, Any]],
    payments: list[dict[str, Any]] | None = None,
    credit_memos: list[dict[str, Any]] | None = None,
    month: str = MONTH,
    realm: str = "us",
) -> Reconciliation:
    return reconcile(
        month,
        deals_frame(deals, REALM_IDS, RECORD_TYPES),
        invoices_frame(realm, invoices),
        applications_frame(realm, payments or [], credit_memos or []),
        HOME,
        WON,
    )


def row_of(rec: Reconciliation, deal: int) -> dict[str, Any]:
    rows = rec.details[rec.details["opportunity_id"] == salesforce_id("Opportunity", deal)]
    assert len(rows) == 1, rec.details
    return rows.iloc[0].to_dict()


def test_a_deal_invoiced_in_its_month_for_its_amount_matches() -> None:
    rec = run([opp(1, QB_Invoice_Id__c="1")], [invoice("1", 1)])
    row = row_of(rec, 1)
    assert (row["status"], row["reason"]) == ("matched", "")
    assert row["won_home"] == row["invoiced_home"] == 1000.0
    assert row["difference"] == 0
    assert list(rec.details.columns) == list(DETAIL_COLUMNS)
    assert list(rec.summary.columns) == list(SUMMARY_COLUMNS)
    summary = rec.summary.iloc[0].to_dict()
    assert summary | {"month": MONTH} == summary
    assert (summary["realm"], summary["customer"], summary["deals"], summary["invoices"]) == (
        "us",
        "Account 1",
        1,
        1,
    )
    assert rec.discrepancies.empty


def test_tax_is_left_out_of_the_comparison() -> None:
    taxed = invoice("1", 1, TotalAmt=1082.5, Balance=1082.5, TxnTaxDetail={"TotalTax": 82.5})
    rec = run([opp(1)], [taxed])
    assert row_of(rec, 1)["status"] == "matched"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"QB_Sync_Status__c": "Awaiting Approval"}, "missing invoice: awaiting finance approval"),
        (
            {"QB_Sync_Status__c": "Needs Review", "QB_Sync_Error__c": "Account: no billing"},
            "missing invoice: needs review — Account: no billing",
        ),
        ({}, "missing invoice: not synced yet"),
        (
            {"RecordType": {"DeveloperName": "APAC_Sales"}},
            "missing invoice: no QuickBooks company for its record type",
        ),
        (
            {"QB_Invoice_Id__c": "77", "QB_Realm__c": "9341453172461001"},
            "invoice deleted: QuickBooks has no invoice Id 77",
        ),
    ],
)
def test_a_won_deal_without_an_invoice_is_explained(fields: dict[str, Any], expected: str) -> None:
    rec = run([opp(1, **fields)], [])
    row = row_of(rec, 1)
    assert row["status"] == "discrepancy"
    assert row["reason"] == expected
    assert row["difference"] == 1000.0
    assert rec.summary["won_home"].sum() == 1000.0
    assert rec.summary["invoiced_home"].sum() == 0


def test_invoices_without_a_won_deal() -> None:
    open_deal = opp(2, StageName="Negotiation/Review", CloseDate="2026-12-01")
    rec = run([open_deal], [invoice("1", None), invoice("2", 2), invoice("3", 3)])
    reasons = dict(zip(rec.details["invoice_id"], rec.details["reason"], strict=True))
    assert reasons["1"] == "invoice without a deal: no Opportunity marker on the invoice"
    assert reasons["2"] == (
        f"invoice without a deal: Opportunity {salesforce_id('Opportunity', 2)} is "
        "Negotiation/Review"
    )
    assert reasons["3"].endswith("is not found in Salesforce")
    assert rec.summary["invoiced_home"].sum() == 3000.0
    assert rec.summary["won_home"].sum() == 0
    assert (rec.details["difference"] == -1000.0).all()


def test_amount_mismatch() -> None:
    rec = run([opp(1)], [invoice("1", 1, TotalAmt=900.0, Balance=900.0)])
    row = row_of(rec, 1)
    assert row["reason"] == "amount mismatch: deal USD 1,000.00, invoiced USD 900.00 (net of tax)"
    assert row["difference"] == 100.0


def test_invoiced_in_advance_shows_in_both_months() -> None:
    deals = [opp(1)]
    invoices = [invoice("1", 1, TxnDate="2026-09-28")]
    october = row_of(run(deals, invoices), 1)
    assert october["reason"] == "invoiced in advance: TxnDate 2026-09-28, CloseDate 2026-10-05"
    assert october["difference"] == 1000.0  # won in October, invoiced in September
    september = row_of(run(deals, invoices, month="2026-09"), 1)
    assert september["reason"] == october["reason"]
    assert september["difference"] == -1000.0


def test_invoiced_late() -> None:
    rec = run([opp(1, CloseDate="2026-09-30")], [invoice("1", 1, TxnDate="2026-10-02")])
    assert row_of(rec, 1)["reason"].startswith("invoiced late: TxnDate 2026-10-02")


def test_partially_paid_and_fully_paid() -> None:
    invoices = [
        invoice("1", 1, Balance=600.0),
        invoice("2", 2, Balance=0.0),
    ]
    payments = [
        payment("50", 400.0, ("Invoice", "1", 400.0)),
        payment("51", 1000.0, ("Invoice", "2", 1000.0)),
    ]
    rec = run([opp(1), opp(2)], invoices, payments)
    partial = row_of(rec, 1)
    assert partial["reason"] == "partially paid: USD 400.00 paid, USD 600.00 open"
    assert (partial["paid_home"], partial["open_home"]) == (400.0, 600.0)
    paid = row_of(rec, 2)
    assert (paid["status"], paid["paid_home"]) == ("matched", 1000.0)


def test_a_credit_memo_applied_through_a_payment_is_credit_not_cash() -> None:
    memo = {"Id": "9", "DocNumber": "1009", "TotalAmt": 250.0, "RemainingCredit": 0}
    # a payment of 500 cash plus the credit memo's 250, against one invoice
    pay = payment("60", 500.0, ("Invoice", "1", 750.0), ("CreditMemo", "9", 250.0))
    rec = run([opp(1)], [invoice("1", 1, Balance=250.0)], [pay], [memo])
    row = row_of(rec, 1)
    assert (row["paid_home"], row["credited_home"]) == (500.0, 250.0)
    assert "credited: USD 250.00 (credit memo #1009)" in row["reason"]
    assert "partially paid: USD 500.00 paid, USD 250.00 open" in row["reason"]


def test_a_credit_memo_marked_for_the_deal_counts_even_unapplied() -> None:
    note = f"revbridge:opportunity={salesforce_id('Opportunity', 1)}"
    memo = {"Id": "9", "DocNumber": "1009", "TotalAmt": 100.0, "PrivateNote": note}
    rec = run([opp(1)], [invoice("1", 1)], [], [memo])
    row = row_of(rec, 1)
    assert row["credited_home"] == 100.0
    assert row["reason"] == "credited: USD 100.00 (credit memo #1009)"


def test_a_voided_invoice_leaves_the_deal_uninvoiced() -> None:
    voided = invoice(
        "1", 1, TotalAmt=0, Balance=0, PrivateNote=f"Voided - {invoice('1', 1)['PrivateNote']}"
    )
    rec = run([opp(1)], [voided])
    row = row_of(rec, 1)
    assert row["reason"].startswith("voided: invoice #1001 was voided")
    assert row["invoiced_home"] == 0
    assert row["difference"] == 1000.0
    assert rec.summary.iloc[0]["invoices"] == 0


def test_an_invoice_without_marker_joins_by_the_deals_qb_invoice_id() -> None:
    deal = opp(1, QB_Invoice_Id__c="1", QB_Realm__c="9341453172461001")
    rec = run([deal], [invoice("1", None)])
    assert len(rec.details) == 1
    assert row_of(rec, 1)["status"] == "matched"


def test_foreign_currency_compares_in_home_currency() -> None:
    foreign = invoice(
        "1",
        1,
        CurrencyRef={"value": "EUR"},
        ExchangeRate=1.08,
        TotalAmt=1000.0,
        HomeTotalAmt=1080.0,
        Balance=1000.0,
        HomeBalance=1080.0,
    )
    rec = run([opp(1, CurrencyIsoCode="EUR")], [foreign])
    row = row_of(rec, 1)
    assert (row["status"], row["won_home"], row["invoiced_home"]) == ("matched", 1080.0, 1080.0)
    assert row["home_currency"] == "USD"
    unconvertible = row_of(run([opp(1, CurrencyIsoCode="GBP")], [foreign]), 1)
    assert unconvertible["reason"] == "amount mismatch: the deal is in GBP, the invoice in EUR"


def test_paid_stage_counts_as_won_and_other_months_are_left_out() -> None:
    deals = [
        opp(1, StageName="Closed Won - Paid"),
        opp(2, CloseDate="2026-11-01"),
        opp(3, StageName="Closed Lost"),
    ]
    rec = run(deals, [invoice("1", 1)])
    assert list(rec.details["opportunity_id"]) == [salesforce_id("Opportunity", 1)]


def test_realms_and_customers_are_summarised_apart() -> None:
    deals = [
        opp(1),
        opp(2),
        opp(3, RecordType={"DeveloperName": "EU_Sales"}, CurrencyIsoCode="EUR"),
    ]
    deals[1]["Account"] = {"Name": "Account 1"}
    rec = run(deals, [invoice("1", 1)])
    summary = rec.summary.set_index(["realm", "customer"])
    assert summary.loc[("us", "Account 1"), "deals"] == 2
    assert summary.loc[("us", "Account 1"), "difference"] == 1000.0
    assert summary.loc[("eu", "Account 3"), "home_currency"] == "EUR"
    totals = rec.totals().set_index("realm")
    assert totals.loc["us", "won_home"] == 2000.0
    assert reason_counts(rec) == {"missing invoice": 2}


def test_nothing_in_the_month() -> None:
    rec = run([], [])
    assert rec.details.empty and rec.summary.empty
    assert "_No won deals and no invoices in this month._" in markdown_report(rec, None, None)
    assert "Nothing won and nothing invoiced" in slack_text(rec)
    assert table_rows(rec.details) == []


def test_reports_carry_the_chart_the_csv_and_each_reason() -> None:
    rec = run([opp(1), opp(2, Name="Pipe | Deal")], [invoice("1", 1, TotalAmt=900.0)])
    png = chart_png(rec)
    assert png.startswith(b"\x89PNG")
    text = markdown_report(rec, png, "reports/reconciliation-2026-10.csv")
    assert "![Closed Won vs invoiced](data:image/png;base64," in text
    assert "reports/reconciliation-2026-10.csv" in text
    assert "## Discrepancies (2)" in text
    assert "Pipe \\| Deal" in text
    slack = slack_text(rec, "reports/x.csv")
    assert "won USD 2,000.00, invoiced USD 900.00, 2 discrepancies" in slack
    assert "amount mismatch 1, missing invoice 1" in slack
    rows = table_rows(rec.details)
    assert rows[0]["close_date"] == "2026-10-05"
    assert any(r["txn_date"] is None for r in rows)
    csv = to_csv(rec.details)
    assert csv.splitlines()[0] == ",".join(DETAIL_COLUMNS)
    assert "2026-10-05" in csv


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "Oct 2026", "", "2026-10-01"])
def test_month_must_be_yyyy_mm(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)


def test_months() -> None:
    assert parse_month("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert parse_month("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert previous_month(date(2027, 1, 15)) == "2026-12"
    assert previous_month(date(2026, 11, 1)) == "2026-10"


def test_frames_survive_odd_records() -> None:
    deals = deals_frame([opp(1, Amount=None, CloseDate=None)], REALM_IDS, RECORD_TYPES)
    assert pd.isna(deals.iloc[0]["close_date"])
    invoices = invoices_frame("us", [{"Id": "5", "TotalAmt": "12.50", "TxnDate": "bad"}])
    assert invoices.iloc[0]["net_home"] == 12.5
    assert pd.isna(invoices.iloc[0]["txn_date"])
