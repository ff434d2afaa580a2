from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from revbridge.models import Opportunity, Problem, parse_datetime
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


def _record(company: DemoCompany, key: str = "opp-012") -> dict[str, Any]:
    return demo_records.opportunity_record(company, key)


def test_parses_a_full_record(company: DemoCompany) -> None:
    opp = Opportunity.from_record(_record(company))
    assert opp.id == company.sf_id("opp-012")
    assert opp.name == "Stark Industries — Team 2026"
    assert opp.amount == Decimal("27000")
    assert opp.close_date == date(2026, 10, 29)
    assert opp.stage == "Closed Won"
    assert opp.currency == "USD"
    assert opp.system_modstamp == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert opp.payment_terms == "Net 15"
    assert opp.record_type == "US_Sales"
    assert opp.owner is not None and opp.owner.email == "marcus.webb@acme-analytics.example"
    account = opp.account
    assert account is not None
    assert account.id == company.sf_id("stark")
    assert account.billing_email == "ap@stark.example"
    assert account.billing_country == "US"
    assert [li.product_code for li in opp.line_items] == [
        "PLAT-ANNUAL",
        "SEAT-ADD",
        "TRAIN-DAY",
        "CONN-DATA",
    ]
    seats = opp.line_items[1]
    assert (seats.quantity, seats.unit_price, seats.discount, seats.total_price) == (
        Decimal("15"),
        Decimal("600"),
        Decimal("10"),
        Decimal("8100"),
    )
    assert seats.name == "Stark Industries — Team 2026 Additional Seat (annual)"
    assert seats.product_name == "Additional Seat (annual)"
    assert seats.label == "SEAT-ADD (Additional Seat (annual))"
    assert opp.lines_total == opp.amount
    assert opp.line_items_complete


def test_float_numbers_become_exact_decimals(company: DemoCompany) -> None:
    record = _record(company)
    record["Amount"] = 0.1 + 0.2  # 0.30000000000000004 as a float
    line = record["OpportunityLineItems"]["records"][0]
    line["UnitPrice"], line["Quantity"], line["Discount"] = 19.99, 1.5, 12.5
    opp = Opportunity.from_record(record)
    assert opp.amount == Decimal("0.30000000000000004")
    assert opp.line_items[0].unit_price == Decimal("19.99")
    assert opp.line_items[0].quantity == Decimal("1.5")
    assert opp.line_items[0].discount_pct == Decimal("12.5")


def test_tolerates_nulls_everywhere() -> None:
    opp = Opportunity.from_record(
        {
            "attributes": {"type": "Opportunity"},
            "Id": "0065g000000000sAAA",
            "Name": None,
            "Amount": None,
            "CloseDate": None,
            "SystemModstamp": None,
            "Account": None,
            "Owner": None,
            "RecordType": None,
            "OpportunityLineItems": None,
        }
    )
    assert opp.name == ""
    assert opp.amount is None and opp.close_date is None and opp.system_modstamp is None
    assert opp.account is None and opp.owner is None and opp.record_type is None
    assert opp.line_items == ()
    assert opp.lines_total == Decimal(0)
    line = Opportunity.from_record(
        {"Id": "x", "OpportunityLineItems": {"done": True, "records": [{"Id": "y"}]}}
    ).line_items[0]
    assert line.discount_pct == Decimal(0)
    assert line.label == "y"


def test_product_name_without_product2_drops_the_opportunity_prefix(
    company: DemoCompany,
) -> None:
    record = _record(company)
    for line in record["OpportunityLineItems"]["records"]:
        line["Product2"] = None
    record["OpportunityLineItems"]["records"][0]["Name"] = "Custom line"
    opp = Opportunity.from_record(record)
    assert [li.product_name for li in opp.line_items] == [
        "Custom line",
        "Additional Seat (annual)",
        "Training Day",
        "Data Connector",
    ]


def test_a_truncated_child_subquery_is_flagged(company: DemoCompany) -> None:
    record = _record(company)
    record["OpportunityLineItems"]["done"] = False
    assert not Opportunity.from_record(record).line_items_complete


def test_control_and_format_characters_are_stripped_from_names(company: DemoCompany) -> None:
    record = _record(company)
    record["Name"] = "\u200bStark\x00 Industries\t—\u202e Team\n"
    record["Account"]["Name"] = "\ufeff\x07"
    record["Account"]["BillingStreet"] = "10880 Malibu Point\r\nSuite\x0b 5"
    record["QB_Invoice_Id__c"] = "  "
    opp = Opportunity.from_record(record)
    assert opp.name == "Stark Industries — Team"
    assert opp.account is not None
    assert opp.account.name == ""
    assert opp.account.billing_street == "10880 Malibu Point\nSuite 5"
    assert opp.qb_invoice_id is None


def test_datetimes_are_aware_utc() -> None:
    expected = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_datetime("2026-11-23T10:00:00.000+0000") == expected
    assert parse_datetime("2026-11-23T11:00:00.000+0100") == expected
    assert parse_datetime("2026-11-23T10:00:00Z") == expected
    assert parse_datetime(datetime(2026, 11, 23, 10, 0)) == expected
    assert parse_datetime("") is None


def test_problem_names_record_and_field() -> None:
    problem = Problem(record_id="006X", field="Account.BillingStreet", reason="is empty")
    assert str(problem) == "006X Account.BillingStreet: is empty"
