"""The demo company (sandbox/demo_company.py) in the shapes revbridge meets: SOQL records as
simple-salesforce returns them, and QuickBooks Customer JSON as a query returns it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.demo_company import DemoCompany, build, salesforce_id

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
TODAY = date(2026, 11, 23)
MODSTAMP_BASE = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
API = "/services/data/v62.0/sobjects"


def company() -> DemoCompany:
    return build(TODAY)


def _attributes(sobject: str, record_id: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{API}/{sobject}/{record_id}"}


def account_record(c: DemoCompany, key: str) -> dict[str, Any]:
    account = c.account(key)
    record_id = c.sf_id(key)
    return {
        "attributes": _attributes("Account", record_id),
        "Id": record_id,
        "Name": account.name,
        "Website": account.website,
        "BillingStreet": account.billing_street,
        "BillingCity": account.billing_city,
        "BillingState": account.billing_state,
        "BillingPostalCode": account.billing_postal_code,
        "BillingCountry": account.billing_country,
        "Phone": account.phone,
        "Billing_Email__c": account.billing_email,
        "QB_Customer_Id__c": None,
    }


def opportunity_record(c: DemoCompany, key: str, modstamp_index: int = 0) -> dict[str, Any]:
    """One closed-won SOQL row, numbers as floats (as the JSON decoder gives them)."""
    opp = next(o for o in c.opportunities if o.key == key)
    record_id = c.sf_id(key)
    owner = next(u for u in c.users if u.key == opp.owner_key)
    realm = c.realm(opp.realm_key)
    stamp = MODSTAMP_BASE + timedelta(seconds=modstamp_index)
    lines = [
        {
            "attributes": _attributes(
                "OpportunityLineItem", salesforce_id("OpportunityLineItem", n)
            ),
            "Id": salesforce_id("OpportunityLineItem", n),
            "Product2Id": c.sf_id(line.product_code),
            "ProductCode": line.product_code,
            "Name": f"{opp.name} {c.product(line.product_code).name}",
            "Quantity": float(line.quantity),
            "UnitPrice": float(line.unit_price),
            "ListPrice": float(c.product(line.product_code).unit_price),
            "Discount": float(line.discount_pct) if line.discount_pct else None,
            "TotalPrice": float(line.total),
            "Description": None,
            "SortOrder": n,
            "Product2": {
                "attributes": _attributes("Product2", c.sf_id(line.product_code)),
                "Name": c.product(line.product_code).name,
            },
        }
        for n, line in enumerate(opp.lines, start=1)
    ]
    return {
        "attributes": _attributes("Opportunity", record_id),
        "Id": record_id,
        "Name": opp.name,
        "Amount": float(opp.amount),
        "CloseDate": opp.close_date.isoformat(),
        "StageName": opp.stage,
        "CurrencyIsoCode": realm.currency,
        "SystemModstamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "Payment_Terms__c": opp.payment_terms,
        "Description": opp.description or None,
        "QB_Invoice_Id__c": None,
        "QB_DocNumber__c": None,
        "QB_Realm__c": None,
        "QB_Sync_Status__c": None,
        "Account": account_record(c, opp.account_key),
        "Owner": {
            "attributes": _attributes("User", c.sf_id(owner.key)),
            "Id": c.sf_id(owner.key),
            "Name": owner.name,
            "Email": owner.email,
        },
        "RecordType": {
            "attributes": _attributes("RecordType", "0125g0000000001AAA"),
            "DeveloperName": realm.record_type,
        },
        "OpportunityLineItems": (
            {"totalSize": len(lines), "done": True, "records": lines} if lines else None
        ),
    }


def closed_won_records(c: DemoCompany) -> list[dict[str, Any]]:
    """Every closed-won demo deal, in SystemModstamp order."""
    won = [o.key for o in c.opportunities if o.is_won]
    return [opportunity_record(c, key, i) for i, key in enumerate(won)]


def qbo_customers(c: DemoCompany, realm_key: str) -> list[dict[str, Any]]:
    """The realm's existing QuickBooks customers, as a Customer query returns them."""
    realm = c.realm(realm_key)
    customers = []
    for n, customer in enumerate(c.qbo_customers, start=1):
        if customer.realm_key != realm_key:
            continue
        row: dict[str, Any] = {
            "Id": str(n),
            "SyncToken": "0",
            "DisplayName": customer.display_name,
            "CompanyName": customer.company_name,
            "Active": customer.active,
            "CurrencyRef": {"value": realm.currency, "name": realm.currency},
            "Balance": 0,
        }
        if customer.email:
            row["PrimaryEmailAddr"] = {"Address": customer.email}
        if customer.account_key:
            row["Notes"] = f"Salesforce Account Id: {c.sf_id(customer.account_key)}"
        customers.append(row)
    return customers


def qbo_taken_names(c: DemoCompany, realm_key: str) -> list[str]:
    """Vendor and Employee DisplayNames of the realm."""
    return [n.display_name for n in c.qbo_names if n.realm_key == realm_key]


def qbo_items(c: DemoCompany) -> dict[str, str]:
    """Item Name → Id, as the flow builds it from an Item query."""
    mapped = [p for p in c.products if p.qbo_item_name]
    return {p.qbo_item_name: str(20 + n) for n, p in enumerate(mapped) if p.qbo_item_name}


def qbo_terms(c: DemoCompany) -> dict[str, str]:
    return {name: str(n) for n, name in enumerate(c.payment_terms, start=1)}
