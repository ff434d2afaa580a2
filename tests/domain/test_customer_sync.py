"""Customer sync: field ownership, conflicts, the no-op second run, and the cleanse audit."""

from __future__ import annotations

from typing import Any

import pytest

from revbridge.config_sections import DEFAULT_OWNERS, CustomerSyncConfig
from revbridge.customer_sync import (
    Pair,
    cleanse_audit,
    link_pairs,
    plan_sync,
    quickbooks_patch,
    salesforce_fields,
    salesforce_patch,
)
from sandbox.demo_company import salesforce_id

ACCOUNT_ID = salesforce_id("Account", 1)


def account(**fields: Any) -> dict[str, Any]:
    return {
        "Id": ACCOUNT_ID,
        "Name": "Globex Corporation",
        "BillingStreet": "4 Globex Plaza",
        "BillingCity": "Springfield",
        "BillingState": "OR",
        "BillingPostalCode": "97477",
        "BillingCountry": "US",
        "Phone": "+1 541 555 0100",
        "Billing_Email__c": "ap@globex.example",
        "Payment_Terms__c": "Net 30",
        "Tax_Exempt__c": False,
        **fields,
    }


def customer(**fields: Any) -> dict[str, Any]:
    return {
        "Id": "5",
        "SyncToken": "0",
        "DisplayName": "Globex Corp.",
        "CompanyName": "Globex Corporation",
        "BillAddr": {
            "Id": "9",
            "Line1": "4 Globex Plaza",
            "City": "Springfield",
            "CountrySubDivisionCode": "OR",
            "PostalCode": "97477",
            "Country": "US",
        },
        "PrimaryPhone": {"FreeFormNumber": "+1 541 555 0100"},
        "PrimaryEmailAddr": {"Address": "AP@globex.example"},
        "SalesTermRef": {"value": "2", "name": "Net 30"},
        "Taxable": True,
        "Notes": f"Salesforce Account Id: {ACCOUNT_ID}",
        **fields,
    }


def pair(acc: dict[str, Any] | None = None, cust: dict[str, Any] | None = None) -> Pair:
    return Pair(realm="us", account=acc or account(), customer=cust or customer())


def test_agreeing_records_plan_nothing_and_remember_every_field() -> None:
    plan = plan_sync([pair()], DEFAULT_OWNERS, {})
    assert plan.decisions == ()
    assert set(plan.state[pair().key]) == set(DEFAULT_OWNERS)


def test_changes_flow_only_from_the_owner() -> None:
    agreed = plan_sync([pair()], DEFAULT_OWNERS, {}).state
    moved = pair(
        account(BillingCity="Shelbyville"),
        customer(SalesTermRef={"value": "3", "name": "Net 60"}),
    )
    plan = plan_sync([moved], DEFAULT_OWNERS, agreed)
    actions = {(d.field, d.action) for d in plan.decisions}
    assert actions == {("billing_address", "to_quickbooks"), ("payment_terms", "to_salesforce")}
    assert all(d.reason.startswith("changed in ") for d in plan.decisions)

    # applied, the next run with no new edits plans nothing: no sync war
    applied = pair(
        account(BillingCity="Shelbyville", Payment_Terms__c="Net 60"),
        customer(
            SalesTermRef={"value": "3", "name": "Net 60"},
            BillAddr={**customer()["BillAddr"], "City": "Shelbyville"},
        ),
    )
    again = plan_sync([applied], DEFAULT_OWNERS, plan.state)
    assert again.decisions == ()
    assert again.state == plan.state


def test_an_edit_on_the_wrong_side_is_a_conflict_and_is_not_overwritten() -> None:
    agreed = plan_sync([pair()], DEFAULT_OWNERS, {}).state
    edited_in_qbo = pair(cust=customer(PrimaryEmailAddr={"Address": "billing@globex.example"}))
    plan = plan_sync([edited_in_qbo], DEFAULT_OWNERS, agreed)
    (conflict,) = plan.decisions
    assert (conflict.field, conflict.action) == ("email", "conflict")
    assert "owned by Salesforce but was changed in QuickBooks" in conflict.reason
    assert plan.changes == []
    assert plan.state == agreed  # still the agreed value: reported again until fixed
    assert plan_sync([edited_in_qbo], DEFAULT_OWNERS, plan.state).conflicts


def test_first_sync_takes_the_owner_side() -> None:
    differing = pair(account(Phone="+1 541 555 0199"))
    (decision,) = plan_sync([differing], DEFAULT_OWNERS, {}).decisions
    assert (decision.field, decision.action, decision.reason) == (
        "contact",
        "to_quickbooks",
        "first sync",
    )


def test_ownership_is_configurable_per_field() -> None:
    owners = {"contact": "quickbooks"}
    agreed = plan_sync([pair()], owners, {}).state  # type: ignore[arg-type]
    assert set(agreed[pair().key]) == {"contact"}
    changed = pair(cust=customer(PrimaryPhone={"FreeFormNumber": "+1 541 555 0142"}))
    (decision,) = plan_sync([changed], owners, agreed).decisions  # type: ignore[arg-type]
    assert decision.action == "to_salesforce"
    assert salesforce_patch("contact", decision.quickbooks) == {"Phone": "+1 541 555 0142"}
    with pytest.raises(ValueError, match="quickbooks"):
        CustomerSyncConfig(fields={"contact": "excel"})  # type: ignore[dict-item]


def test_patches() -> None:
    address = ["1 Main St\nSuite 2", "Austin", "TX", "73301", "US"]
    patch = quickbooks_patch("billing_address", address, customer(), {})
    assert patch == {
        "BillAddr": {
            "Id": "9",
            "Line1": "1 Main St",
            "Line2": "Suite 2",
            "City": "Austin",
            "CountrySubDivisionCode": "TX",
            "PostalCode": "73301",
            "Country": "US",
        }
    }
    assert quickbooks_patch("payment_terms", "Net 60", customer(), {"Net 60": "3"}) == {
        "SalesTermRef": {"value": "3"}
    }
    with pytest.raises(ValueError, match="no Term named 'Net 90'"):
        quickbooks_patch("payment_terms", "Net 90", customer(), {})
    assert salesforce_patch("tax", False) == {"Tax_Exempt__c": True}
    assert salesforce_patch("billing_address", ["", "Oslo", "", "", "NO"])["BillingStreet"] is None


def test_missing_salesforce_columns_are_reported() -> None:
    have = ["Name", "Phone", "Billing_Email__c"]
    assert salesforce_fields(DEFAULT_OWNERS, have) == [
        "billing_address",
        "payment_terms",
        "tax",
    ]


def test_pairs_by_notes_and_by_deals() -> None:
    other = {"Id": salesforce_id("Account", 2), "Name": "Hooli"}
    customers = {
        "us": [customer(), {"Id": "8", "DisplayName": "Hooli XYZ"}, {"Id": "11", "Notes": "x"}]
    }
    pairs = link_pairs(
        [account(), other],
        customers,
        [("us", other["Id"], "8"), ("us", other["Id"], "404"), ("eu", other["Id"], "8")],
    )
    assert [(p.realm, p.customer["Id"], p.account["Id"]) for p in pairs] == [
        ("us", "5", ACCOUNT_ID),
        ("us", "8", other["Id"]),
    ]


def test_cleanse_audit_finds_duplicates_and_look_alikes() -> None:
    accounts = [
        {"Id": salesforce_id("Account", 3), "Name": "Umbrella Corp", "Website": "umbrella.example"},
        {"Id": salesforce_id("Account", 4), "Name": "Umbrella Corporation"},
        {"Id": salesforce_id("Account", 5), "Name": "Initech"},
        account(),
    ]
    customers = {
        "us": [
            customer(),
            {"Id": "20", "DisplayName": "Initech LLC"},
            {"Id": "21", "DisplayName": "Initech Holdings LLC"},
            {
                "Id": "30",
                "DisplayName": "Bob's Burgers",
                "PrimaryEmailAddr": {"Address": "a@gmail.com"},
            },
            {"Id": "31", "DisplayName": "Bluth", "PrimaryEmailAddr": {"Address": "b@gmail.com"}},
        ]
    }
    found = cleanse_audit(accounts, customers, [pair()], ["gmail.com"], 80)
    kinds = {(d.kind, d.names) for d in found}
    assert ("salesforce duplicate", "Umbrella Corp / Umbrella Corporation") in kinds
    assert ("look-alike", "Initech / Initech LLC") in kinds
    assert ("look-alike", "Initech / Initech Holdings LLC") in kinds
    # linked pairs and free-mail domains are not findings
    assert not any("Globex" in d.names for d in found)
    assert not any(d.kind == "quickbooks duplicate" for d in found)
