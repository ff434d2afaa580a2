from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from revbridge.config import RevbridgeConfig
from revbridge.models import Opportunity, Problem
from revbridge.routing import route
from revbridge.validate import validate
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


def _problems(
    company: DemoCompany,
    config: RevbridgeConfig,
    change: Callable[[dict[str, Any]], None],
    key: str = "opp-012",
) -> list[str]:
    record = demo_records.opportunity_record(company, key)
    change(record)
    return [f"{p.field}: {p.reason}" for p in validate(Opportunity.from_record(record), config)]


def test_clean_demo_deals_have_no_problems(
    won: dict[str, Opportunity], config: RevbridgeConfig
) -> None:
    dirty = {"opp-nolines", "opp-unmapped", "opp-nobilling", "opp-019"}  # opp-019: nakatomi too
    for key, opp in won.items():
        assert (validate(opp, config) != []) == (key in dirty), key


def test_demo_dirt(won: dict[str, Opportunity], config: RevbridgeConfig) -> None:
    assert [str(p.reason) for p in validate(won["opp-unmapped"], config)] == [
        "product LEGACY-ADDON (Legacy Reporting Add-on) has no QuickBooks item in realm us"
    ]
    assert [p.field for p in validate(won["opp-nobilling"], config)] == [
        "Account.BillingStreet",
        "Account.BillingCity",
        "Account.BillingCountry",
    ]
    assert "Account.BillingStreet is empty" in [
        p.reason for p in validate(won["opp-nobilling"], config)
    ]
    nolines = validate(won["opp-nolines"], config)
    assert (
        Problem(
            record_id=won["opp-nolines"].id,
            field="OpportunityLineItems",
            reason="no line items: refusing a zero-line invoice",
        )
        in nolines
    )


def test_account_rules(company: DemoCompany, config: RevbridgeConfig) -> None:
    def no_account(r: dict[str, Any]) -> None:
        r["Account"] = None

    def bad_email(r: dict[str, Any]) -> None:
        r["Account"]["Billing_Email__c"] = "accounts payable"
        r["Account"]["Name"] = "\u200b\x00"

    assert _problems(company, config, no_account) == ["Account: the opportunity has no Account"]
    assert _problems(company, config, bad_email) == [
        "Account.Name: Account.Name is empty (or only control characters)",
        "Account.Billing_Email__c: Account.Billing_Email__c 'accounts payable' is not an email "
        "address",
    ]


def test_amount_rules(company: DemoCompany, config: RevbridgeConfig) -> None:
    def off_by_a_cent(r: dict[str, Any]) -> None:
        r["Amount"] = 27000.01

    def off_by_more(r: dict[str, Any]) -> None:
        r["Amount"] = 27000.02

    def negative(r: dict[str, Any]) -> None:
        r["Amount"] = -5.0

    assert _problems(company, config, off_by_a_cent) == []
    assert _problems(company, config, off_by_more) == [
        "Amount: Amount 27000.02 differs from the sum of line totals 27000.0"
    ]
    assert _problems(company, config, negative) == [
        "Amount: Amount must be greater than 0 (is -5.0)"
    ]


def test_line_rules(company: DemoCompany, config: RevbridgeConfig) -> None:
    def broken_lines(r: dict[str, Any]) -> None:
        lines = r["OpportunityLineItems"]["records"]
        lines[0]["Quantity"] = 0.0
        lines[1]["UnitPrice"] = -1.0
        lines[2]["Discount"] = 120.0
        lines[3]["TotalPrice"] = None
        lines[3]["ProductCode"] = None

    problems = _problems(company, config, broken_lines)
    assert problems[:4] == [
        "OpportunityLineItems[0].Quantity: line 1 (PLAT-ANNUAL (Platform Subscription (annual))): "
        "Quantity must be greater than 0",
        "OpportunityLineItems[1].UnitPrice: line 2 (SEAT-ADD (Additional Seat (annual))): "
        "UnitPrice must be 0 or more",
        "OpportunityLineItems[2].Discount: line 3 (TRAIN-DAY (Training Day)): "
        "Discount must be between 0 and 100",
        "OpportunityLineItems[3].TotalPrice: line 4 (Data Connector): TotalPrice is empty",
    ]
    assert (
        "OpportunityLineItems[3].ProductCode: line 4 (Data Connector): the product has no "
        "ProductCode" in problems
    )


def test_partial_line_items_are_refused(company: DemoCompany, config: RevbridgeConfig) -> None:
    def truncated(r: dict[str, Any]) -> None:
        r["OpportunityLineItems"]["done"] = False

    assert _problems(company, config, truncated) == [
        "OpportunityLineItems: only 4 line items were returned (more exist): refusing a partial "
        "invoice"
    ]


def test_currency_terms_and_close_date(company: DemoCompany, config: RevbridgeConfig) -> None:
    def wrong_currency(r: dict[str, Any]) -> None:
        r["CurrencyIsoCode"] = "GBP"

    def no_currency(r: dict[str, Any]) -> None:  # single-currency org: the realm's currency
        r["CurrencyIsoCode"] = None

    def no_terms(r: dict[str, Any]) -> None:
        r["Payment_Terms__c"] = None
        r["CloseDate"] = None

    assert _problems(company, config, wrong_currency) == [
        "CurrencyIsoCode: currency GBP is not one realm us invoices in (USD); add it to the "
        "realm's other_currencies if the QuickBooks company has it"
    ]
    multi = config.model_copy(
        update={
            "realms": {
                **config.realms,
                "us": config.realm("us").model_copy(update={"other_currencies": ["GBP"]}),
            }
        }
    )
    assert _problems(company, multi, wrong_currency) == []
    assert _problems(company, config, no_currency) == []
    assert _problems(company, config, no_terms) == ["CloseDate: CloseDate is empty"]  # Net 30
    no_default = config.model_copy(
        update={
            "realms": {
                **config.realms,
                "us": config.realm("us").model_copy(update={"default_terms": None}),
            }
        }
    )
    assert _problems(company, no_default, no_terms)[-1] == (
        "Payment_Terms__c: Payment_Terms__c is empty and realm us has no default_terms"
    )


def test_name_empty_after_cleaning(company: DemoCompany, config: RevbridgeConfig) -> None:
    def control_only(r: dict[str, Any]) -> None:
        r["Name"] = "\x00\u200b"

    assert _problems(company, config, control_only) == [
        "Name: Opportunity.Name is empty (or only control characters)"
    ]


def test_unroutable_deal_is_a_problem(company: DemoCompany, config: RevbridgeConfig) -> None:
    def other_type(r: dict[str, Any]) -> None:
        r["RecordType"] = {"DeveloperName": "APAC_Sales"}

    problems = _problems(company, config, other_type)
    assert problems == [
        "RecordType.DeveloperName: no realm for record type APAC_Sales or owner "
        "marcus.webb@acme-analytics.example, and routing.default is not set"
    ]


@pytest.mark.parametrize(
    ("record_type", "owner", "default", "realm"),
    [
        ("US_Sales", "sofia.rossi@acme-analytics.example", None, "us"),
        ("EU_Sales", None, None, "eu"),
        (None, "Sofia.Rossi@acme-analytics.example", None, "eu"),  # owner routing, any case
        ("APAC", "nobody@example.com", "us", "us"),
        (None, None, None, None),
    ],
)
def test_route(
    company: DemoCompany,
    config: RevbridgeConfig,
    record_type: str | None,
    owner: str | None,
    default: str | None,
    realm: str | None,
) -> None:
    routed = config.model_copy(
        update={
            "realms": {
                **config.realms,
                "eu": config.realm("eu").model_copy(
                    update={"owners": ["sofia.rossi@acme-analytics.example"]}
                ),
            },
            "routing": config.routing.model_copy(update={"default": default}),
        }
    )
    record = demo_records.opportunity_record(company, "opp-012")
    record["RecordType"] = {"DeveloperName": record_type} if record_type else None
    record["Owner"]["Email"] = owner
    result = route(Opportunity.from_record(record), routed)
    if realm is None:
        assert isinstance(result, Problem)
        assert result.field == "RecordType.DeveloperName"
    else:
        assert result == realm


def test_amounts_no_salesforce_field_can_hold_are_refused_by_name(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    def huge(r: dict[str, Any]) -> None:
        r["Amount"] = 10**30
        r["OpportunityLineItems"]["records"][0]["UnitPrice"] = 10**30

    problems = _problems(company, config, huge)
    assert (
        "Amount: Amount 1000000000000000000000000000000 has more than 16 digits before the "
        "decimal point" in problems
    )
    assert any(p.startswith("OpportunityLineItems[0].UnitPrice: line 1 ") for p in problems)
