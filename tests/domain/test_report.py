from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from revbridge.report import AuditRow, escape_slack, markdown_table, slack_summary


def _rows() -> list[AuditRow]:
    return [
        AuditRow(
            opportunity_id="006A",
            name="Stark Industries — Enterprise",
            realm="us",
            customer="Stark Industries (Customer)",
            match_kind="new",
            amount=Decimal("41000"),
            currency="USD",
            outcome="Invoiced",
            invoice_id="130",
            doc_number="1001",
        ),
        AuditRow(
            opportunity_id="006B",
            name="Milano Moda — Enterprise",
            realm="eu",
            customer="Milano Moda S.p.A.",
            match_kind="new",
            amount=Decimal("39000"),
            currency="EUR",
            outcome="Invoiced",
            invoice_id="7",
        ),
        AuditRow(
            opportunity_id="006C",
            name="Initech — Team renewal",
            realm="us",
            match_kind="review",
            amount=Decimal("12000"),
            currency="USD",
            outcome="Needs Review",
            reason="2 QuickBooks customers have a similar name",
        ),
        AuditRow(
            opportunity_id="006D",
            name="R&D <Labs> | Pipes",
            realm="us",
            amount=Decimal("1.5"),
            currency="USD",
            outcome="Error",
            reason="QuickBooks refused the invoice:\n2500 | bad ref",
        ),
        AuditRow(
            opportunity_id="006E",
            name="Hooli — Team 2026",
            outcome="Skipped",
            reason="already invoiced",
        ),
    ]


def test_markdown_table() -> None:
    lines = markdown_table(_rows()).splitlines()
    assert lines[0] == (
        "| Opportunity | Name | Realm | Customer | Match | Amount | Outcome | Invoice | Reason |"
    )
    assert lines[1] == "|---|---|---|---|---|---:|---|---|---|"
    assert lines[2] == (
        "| 006A | Stark Industries — Enterprise | us | Stark Industries (Customer) | new | "
        "USD 41,000.00 | Invoiced | #1001 (Id 130) |  |"
    )
    assert lines[3].split(" | ")[7] == "7"
    assert lines[5] == (
        "| 006D | R&D <Labs> \\| Pipes | us |  |  | USD 1.50 | Error |  | "
        "QuickBooks refused the invoice: 2500 \\| bad ref |"
    )
    assert len(lines) == 7
    assert markdown_table([]) == "_No deals in this run._"


def test_slack_summary() -> None:
    text = slack_summary(_rows())
    assert text.splitlines() == [
        "*Closed Won → QuickBooks*: 5 deals",
        ":white_check_mark: Invoiced: 2 (EUR 39,000.00, USD 41,000.00)",
        ":mag: Needs Review: 1",
        ":x: Error: 1",
        ":fast_forward: Skipped: 1",
        "• Initech — Team renewal (Needs Review): 2 QuickBooks customers have a similar name",
        "• R&amp;D &lt;Labs&gt; | Pipes (Error): QuickBooks refused the invoice: 2500 | bad ref",
    ]
    assert slack_summary([], title="Backfill <Oct>") == "*Backfill &lt;Oct&gt;*: 0 deals"


def test_slack_summary_lists_at_most_five() -> None:
    rows = [
        AuditRow(opportunity_id=f"006{n}", name=f"Deal {n}", outcome="Error", reason="x")
        for n in range(8)
    ]
    lines = slack_summary(rows).splitlines()
    assert lines[0] == "*Closed Won → QuickBooks*: 8 deals"
    assert sum(line.startswith("• Deal") for line in lines) == 5
    assert lines[-1] == "• … and 3 more in the run report"


@given(st.text())
def test_slack_escaping_leaves_no_control_characters(text: str) -> None:
    escaped = escape_slack(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    unescaped = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert unescaped == text
