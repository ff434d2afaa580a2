"""Renewal rules: date math, eligibility, exactly-once checks, validation, routing, drafts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from revbridge.config import parse_config
from revbridge.invoices import InvoiceError
from revbridge.models import Problem
from revbridge.renewals import (
    ContractUpdate,
    RenewalContract,
    add_months,
    already_invoiced,
    build_renewal_invoice,
    check_contract,
    contract_updates,
    contracts_query,
    eligibility,
    latest_record_type_query,
    latest_record_types,
    renewal_date,
    renewal_from_invoice,
    renewal_marker,
    route_renewal,
    target_renewal,
)

CONTRACT = "8005g0000000001AAA"
ACCOUNT = "0015g0000000001AAA"
CONFIG = parse_config(
    {
        "salesforce_block": "sf",
        "slack": {"block": "slack"},
        "realms": {
            "us": {
                "realm_id": "1",
                "connection_block": "us",
                "record_types": ["US_Sales"],
                "currency": "USD",
                "tax_code": "NON",
                "item_map": {"PLAT-ANNUAL": "Platform Subscription"},
            },
            "eu": {
                "realm_id": "2",
                "connection_block": "eu",
                "record_types": ["EU_Sales"],
                "currency": "EUR",
                "item_map": {"PLAT-ANNUAL": {"id": "77"}},
            },
        },
    }
)
ITEMS = {"Platform Subscription": "5"}


def record(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": CONTRACT,
        "ContractNumber": "00000101",
        "Status": "Activated",
        "StartDate": "2025-11-30",
        "EndDate": "2026-11-29",
        "ContractTerm": 12,
        "CurrencyIsoCode": "USD",
        "Auto_Renew__c": True,
        "Renewal_Product__c": "01t5g0000000001AAA",
        "Renewal_Product__r": {
            "ProductCode": "PLAT-ANNUAL",
            "Name": "Platform Subscription (annual)",
        },
        "Renewal_Quantity__c": 2.0,
        "Renewal_Unit_Price__c": 12000.0,
        "Last_Invoice_Date__c": "2025-11-30",
        "QB_Renewal_Invoice_Id__c": None,
        "Owner": {"Id": "0055g0000000001AAA", "Name": "Ava Chen", "Email": "ava@example.com"},
        "Account": {"Id": ACCOUNT, "Name": "Globex", "Billing_Email__c": "ap@globex.example"},
    }
    row.update(changes)
    return row


def contract(**changes: Any) -> RenewalContract:
    return RenewalContract.from_record(record(**changes))


@pytest.mark.parametrize(
    ("end", "renews"),
    [
        ("2026-11-29", "2026-11-30"),
        ("2026-01-31", "2026-02-01"),
        ("2027-02-28", "2027-03-01"),
        ("2028-02-28", "2028-02-29"),
        ("2026-12-31", "2027-01-01"),
    ],
)
def test_renewal_date_is_the_day_after_the_end(end: str, renews: str) -> None:
    assert renewal_date(date.fromisoformat(end)) == date.fromisoformat(renews)


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 12) == date(2027, 11, 30)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_target_renewal_and_days_ahead_limits() -> None:
    assert target_renewal(date(2026, 11, 23), 7) == date(2026, 11, 30)
    assert target_renewal(date(2026, 12, 28), 7) == date(2027, 1, 4)
    for bad in (-1, 28):
        with pytest.raises(ValueError, match="days_ahead"):
            target_renewal(date(2026, 11, 23), bad)


def test_eligibility() -> None:
    renewal = date(2026, 11, 30)
    assert eligibility(contract(), renewal) == "due"
    assert eligibility(contract(), date(2026, 12, 1)) == "not due"
    assert eligibility(contract(Status="Draft"), renewal) == "inactive"
    assert eligibility(contract(Auto_Renew__c=False), renewal) == "no auto-renew"
    assert eligibility(contract(Auto_Renew__c=None), renewal) == "due"
    assert eligibility(contract(Last_Invoice_Date__c="2026-11-23"), renewal) == "invoiced"


def test_already_invoiced_looks_at_the_month_before_the_renewal() -> None:
    renewal = date(2026, 3, 31)
    assert not already_invoiced(contract(Last_Invoice_Date__c=None), renewal)
    assert not already_invoiced(contract(Last_Invoice_Date__c="2025-03-24"), renewal)  # last year
    assert not already_invoiced(contract(Last_Invoice_Date__c="2026-02-28"), renewal)  # month end
    assert already_invoiced(contract(Last_Invoice_Date__c="2026-03-01"), renewal)
    assert already_invoiced(contract(Last_Invoice_Date__c="2026-04-02"), renewal)


def test_bad_contract_data_is_reported_by_field() -> None:
    us = CONFIG.realm("us")
    assert check_contract(contract(), us) == []
    fields = lambda c: [p.field for p in check_contract(c, us)]  # noqa: E731
    assert fields(contract(Renewal_Product__c=None, Renewal_Product__r=None)) == [
        "Renewal_Product__c"
    ]
    assert fields(contract(Renewal_Product__r={"ProductCode": "LEGACY"})) == ["Renewal_Product__c"]
    assert fields(contract(Renewal_Quantity__c=None)) == ["Renewal_Quantity__c"]
    assert fields(contract(Renewal_Quantity__c=0)) == ["Renewal_Quantity__c"]
    assert fields(contract(Renewal_Unit_Price__c=None)) == ["Renewal_Unit_Price__c"]
    assert fields(contract(Renewal_Unit_Price__c=-5)) == ["Renewal_Unit_Price__c"]
    assert fields(contract(Account=None)) == ["AccountId"]
    odd = contract(QB_Renewal_Invoice_Id__c="99", Last_Invoice_Date__c=None)
    assert fields(odd) == ["Last_Invoice_Date__c"]
    (problem,) = check_contract(contract(Renewal_Unit_Price__c=-5), us)
    assert problem.reason == "must be positive, is -5"


def test_routing_by_latest_opportunity_record_type_or_default() -> None:
    assert route_renewal(contract(), "EU_Sales", CONFIG) == "eu"
    assert isinstance(route_renewal(contract(), None, CONFIG), Problem)
    with_default = CONFIG.model_copy(
        update={"routing": CONFIG.routing.model_copy(update={"default": "us"})}
    )
    assert route_renewal(contract(), "Partner", with_default) == "us"
    latest = {"records": [{"RecordType": {"DeveloperName": "EU_Sales"}}]}
    rows = [
        {"Id": ACCOUNT, "Opportunities": latest},
        {"Id": "0015g0000000002AAA", "Opportunities": None},
    ]
    assert latest_record_types(rows) == {ACCOUNT: "EU_Sales", "0015g0000000002AAA": None}
    assert "LIMIT 1" in latest_record_type_query([ACCOUNT, ACCOUNT])
    with pytest.raises(ValueError, match="not Salesforce Ids"):
        latest_record_type_query(["x' OR Id != '"])


def test_draft_invoice() -> None:
    renewal = date(2026, 11, 30)
    draft = build_renewal_invoice(
        contract(), CONFIG.realm("us"), "7", ITEMS, date(2026, 11, 23), renewal
    )
    body = draft.payload()
    assert body["TxnDate"] == "2026-11-23"
    assert body["DueDate"] == "2026-11-30"
    assert body["PrivateNote"] == f"revbridge:contract={CONTRACT}:renewal=2026-11-30"
    assert body["BillEmail"] == {"Address": "ap@globex.example"}
    (line,) = body["Line"]
    assert line["Amount"] == 24000
    assert line["SalesItemLineDetail"]["ItemRef"] == {"value": "5", "name": "Platform Subscription"}
    assert line["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert "renewal 2026-11-30 to 2027-11-29" in line["Description"]
    assert draft.total == Decimal("24000")
    assert draft.record_id == CONTRACT and draft.entity == "Invoice"
    eu_contract = contract(CurrencyIsoCode="EUR")
    eu = build_renewal_invoice(
        eu_contract, CONFIG.realm("eu"), "3", {}, date(2026, 11, 23), renewal
    )
    assert eu.payload()["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "77"}


def test_draft_refuses_bad_data_and_missing_items() -> None:
    args = (CONFIG.realm("us"), "7")
    with pytest.raises(InvoiceError, match="does not exist"):
        build_renewal_invoice(contract(), *args, {}, date(2026, 11, 23), date(2026, 11, 30))
    with pytest.raises(InvoiceError, match="Renewal_Quantity__c"):
        build_renewal_invoice(
            contract(Renewal_Quantity__c=None), *args, ITEMS, date(2026, 11, 23), date(2026, 11, 30)
        )
    with pytest.raises(InvoiceError, match="whole number of cents"):
        build_renewal_invoice(
            contract(Renewal_Quantity__c=0.333, Renewal_Unit_Price__c=0.1),
            *args,
            ITEMS,
            date(2026, 11, 23),
            date(2026, 11, 30),
        )


def test_marker_round_trip_and_write_back() -> None:
    marker = renewal_marker(CONTRACT[:15], date(2026, 11, 30))
    assert marker == f"revbridge:contract={CONTRACT}:renewal=2026-11-30"
    assert renewal_from_invoice({"PrivateNote": f"Voided - {marker}"}) == (
        CONTRACT,
        date(2026, 11, 30),
    )
    assert renewal_from_invoice({"PrivateNote": "revbridge:opportunity=0065g0000000001AAA"}) is None
    (body,) = contract_updates(
        [ContractUpdate(contract_id=CONTRACT, invoice_id="12", invoice_date=date(2026, 11, 23))]
    )
    assert body == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Contract"},
                "Id": CONTRACT,
                "Last_Invoice_Date__c": "2026-11-23",
                "QB_Renewal_Invoice_Id__c": "12",
            }
        ],
    }
    assert "EndDate = 2026-11-29" in contracts_query(date(2026, 11, 30))
    assert "Status = 'Activated'" in contracts_query(date(2026, 11, 30))
