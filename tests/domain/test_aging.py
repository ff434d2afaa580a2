"""Aging rules: days past due, buckets, alerts once per change, clearing paid invoices."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from revbridge.aging import (
    OpenInvoice,
    StoredAging,
    age,
    aged_query,
    aging_updates,
    alert_text,
    bucket_for,
    bucket_totals,
    days_past_due,
    digest_text,
    markdown_report,
    opportunities_query,
    orphans,
    should_alert,
)

TODAY = date(2026, 11, 23)
OPP = "0065g0000000001AAA"
OTHER = "0065g0000000002AAA"
US = "9341453172461001"
EU = "9341453172461002"


def invoice_row(
    opp_id: str = OPP, *, due: str | None = "2026-10-01", **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": "42",
        "DocNumber": "1004",
        "PrivateNote": f"revbridge:opportunity={opp_id}",
        "Balance": 1200.5,
        "TotalAmt": 2400,
        "CurrencyRef": {"value": "USD"},
        "CustomerRef": {"value": "7", "name": "Globex Corp."},
        "TxnDate": "2026-09-01",
    }
    if due is not None:
        row["DueDate"] = due
    row.update(extra)
    return row


def opp(
    opp_id: str = OPP, *, days: int | None = None, bucket: str | None = None, realm: str | None = US
) -> StoredAging:
    return StoredAging(
        id=opp_id,
        name="Globex — Team",
        realm_id=realm,
        days=days,
        bucket=bucket,
        owner_email="ava@example.com",
        owner_name="Ava",
    )


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, "Current"),
        (0, "Current"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
    ],
)
def test_bucket_edges(days: int, bucket: str) -> None:
    assert bucket_for(days) == bucket


def test_days_past_due_from_due_date_else_txn_date() -> None:
    assert days_past_due(date(2026, 11, 1), date(2026, 10, 1), TODAY) == 22
    assert days_past_due(None, date(2026, 10, 24), TODAY) == 30  # no DueDate: due on receipt
    assert days_past_due(date(2026, 12, 1), None, TODAY) == -8
    with pytest.raises(ValueError, match="DueDate or a TxnDate"):
        days_past_due(None, None, TODAY)


def test_alert_only_when_the_bucket_moves_to_31_60_or_worse() -> None:
    assert should_alert(None, "31-60")
    assert should_alert("1-30", "61-90")
    assert should_alert("31-60", "90+")
    assert should_alert("junk", "90+")
    assert not should_alert("61-90", "61-90")  # same bucket tomorrow: quiet
    assert not should_alert(None, "1-30")
    assert not should_alert("Current", "1-30")
    assert not should_alert("90+", None)


def test_open_invoice_reads_marker_and_ignores_others() -> None:
    inv = OpenInvoice.from_qbo(invoice_row(), US)
    assert inv is not None
    assert (inv.opportunity_id, inv.balance, inv.due_date) == (
        OPP,
        Decimal("1200.5"),
        date(2026, 10, 1),
    )
    assert inv.label == "#1004"
    assert OpenInvoice.from_qbo(invoice_row(PrivateNote="keyed in by hand"), US) is None
    assert OpenInvoice.from_qbo(invoice_row(Balance=0), US) is None
    assert OpenInvoice.from_qbo(invoice_row(due=None), US).due_date is None  # type: ignore[union-attr]


def test_age_writes_and_alerts_only_changes() -> None:
    inv = OpenInvoice.from_qbo(invoice_row(), US)
    assert inv is not None
    (first,) = age([opp()], [inv], TODAY, [US])
    assert (first.days, first.bucket, first.write, first.alert) == (53, "31-60", True, True)
    (again,) = age([opp(days=53, bucket="31-60")], [inv], TODAY, [US])
    assert (again.write, again.alert) == (False, False)
    (tomorrow,) = age([opp(days=53, bucket="31-60")], [inv], TODAY + timedelta(days=1), [US])
    assert (tomorrow.days, tomorrow.write, tomorrow.alert) == (54, True, False)


def test_not_yet_due_is_current_with_zero_days() -> None:
    inv = OpenInvoice.from_qbo(invoice_row(due="2026-12-20"), US)
    assert inv is not None
    (d,) = age([opp()], [inv], TODAY, [US])
    assert (d.days, d.bucket, d.alert) == (0, "Current", False)


def test_missing_due_date_ages_from_txn_date() -> None:
    inv = OpenInvoice.from_qbo(invoice_row(due=None), US)
    assert inv is not None
    (d,) = age([opp()], [inv], TODAY, [US])
    assert (d.days, d.bucket) == (83, "61-90")


def test_paid_invoice_clears_and_unscanned_realm_is_left_alone() -> None:
    decisions = age(
        [opp(days=40, bucket="31-60"), opp(OTHER, days=70, bucket="61-90", realm=EU)],
        [],
        TODAY,
        [US],
    )
    assert len(decisions) == 1  # the EU realm was not read: its deal keeps its fields
    (cleared,) = decisions
    assert (cleared.days, cleared.bucket, cleared.write, cleared.cleared) == (
        None,
        None,
        True,
        True,
    )
    (body,) = aging_updates(decisions)
    assert body["records"] == [
        {
            "attributes": {"type": "Opportunity"},
            "Id": OPP,
            "Days_Outstanding__c": None,
            "Aging_Bucket__c": None,
        }
    ]
    assert age([opp()], [], TODAY, [US])[0].write is False  # nothing stored, nothing to clear


def test_several_open_invoices_age_by_the_oldest() -> None:
    old = OpenInvoice.from_qbo(invoice_row(due="2026-08-01"), US)
    new = OpenInvoice.from_qbo(invoice_row(Id="43", due="2026-11-10"), US)
    assert old and new
    (d,) = age([opp()], [new, old], TODAY, [US])
    assert (d.days, d.bucket, d.balance) == (114, "90+", Decimal("2401.0"))


def test_orphans_and_queries() -> None:
    inv = OpenInvoice.from_qbo(invoice_row(OTHER), US)
    assert inv is not None
    assert orphans([opp()], [inv]) == [inv]
    assert "WHERE Id IN ('0065g0000000001AAA')" in opportunities_query([OPP, OPP])
    assert "Aging_Bucket__c != null OR Days_Outstanding__c != null" in aged_query()
    with pytest.raises(ValueError):
        opportunities_query([])


def test_reports() -> None:
    invs = [
        OpenInvoice.from_qbo(invoice_row(), US),
        OpenInvoice.from_qbo(invoice_row(OTHER, Id="9", due="2026-11-20", Balance=100), US),
    ]
    decisions = age([opp(), opp(OTHER)], [i for i in invs if i], TODAY, [US])
    totals = bucket_totals(decisions)
    assert [(t.bucket, t.count, t.balance) for t in totals] == [
        ("1-30", 1, Decimal("100")),
        ("31-60", 1, Decimal("1200.5")),
    ]
    assert "*31-60*" in alert_text(decisions[0]) and "USD 1,200.50" in alert_text(decisions[0])
    digest = digest_text("us", decisions)
    assert "2 open invoice(s)" in digest and "moved to a worse bucket today: 1" in digest
    report = markdown_report({"us": totals, "eu": []}, changes=2, alerts=1, cleared=0)
    assert "| us | 31-60 | 1 | USD 1,200.50 |" in report
