"""Seed profiles of the Salesforce org, loaded from ``sandbox.demo_company``.

- ``empty``: what every org has: the users, the Opportunity record types (one per QuickBooks
  realm), the standard price book and the Organization row.
- ``demo``: plus products with standard prices in every active currency, accounts with a billing
  contact each, opportunities with line items, their files (signed order forms in Salesforce
  Files), and contracts coming up for renewal.

Ids come from ``DemoCompany.sf_id(key)`` where the demo company names them (users, accounts,
products, opportunities, contracts) and from ``salesforce_id(object, n)`` otherwise, so both are
the same on every run for the same day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sandbox.demo_company import ORG_ID, REALMS, DemoCompany, build, salesforce_id
from sandbox.salesforce.models import SalesforceBackend
from sandbox.salesforce.schema import ACTIVE_CURRENCIES

ORG_NAME = "Acme Analytics"
STANDARD_PRICEBOOK_ID = salesforce_id("Pricebook2", 1)


def record_type_id(developer_name: str) -> str:
    """The Id of an Opportunity record type the seeds create (``US_Sales``, ``EU_Sales``)."""
    index = next(i for i, r in enumerate(REALMS, start=1) if r.record_type == developer_name)
    return salesforce_id("RecordType", index)


def load(backend: SalesforceBackend, profile: str) -> None:
    """Replace the org's contents with a seed profile ("demo" or "empty")."""
    backend.clear()
    company = build(backend.clock.today())
    now = backend.clock.now()
    setup = _at(company.today - timedelta(days=400), 9, now)
    backend.api_user_id = company.sf_id("integration")
    _reference_data(backend, company, setup)
    if profile == "demo":
        _demo(backend, company, now)


def _at(day: date, hour: int, now: datetime) -> datetime:
    """A moment on ``day``, never later than a minute before ``now``."""
    return min(datetime.combine(day, time(hour), tzinfo=UTC), now - timedelta(minutes=1))


def _reference_data(backend: SalesforceBackend, company: DemoCompany, at: datetime) -> None:
    for user in company.users:
        backend.insert(
            "User",
            {
                "Username": user.email,
                "FirstName": user.first_name,
                "LastName": user.last_name,
                "Email": user.email,
                "Title": user.title,
                "IsActive": True,
            },
            record_id=company.sf_id(user.key),
            created=at,
        )
    for realm in company.realms:
        backend.insert(
            "RecordType",
            {
                "Name": realm.record_type_label,
                "DeveloperName": realm.record_type,
                "SobjectType": "Opportunity",
                "IsActive": True,
                "Description": f"Invoiced from {realm.company_name} ({realm.currency})",
            },
            record_id=record_type_id(realm.record_type),
            created=at,
        )
    backend.insert(
        "Pricebook2",
        {
            "Name": "Standard Price Book",
            "IsActive": True,
            "IsStandard": True,
            "Description": "The standard price book",
        },
        record_id=STANDARD_PRICEBOOK_ID,
        created=at,
    )
    backend.insert(
        "Organization",
        {
            "Name": ORG_NAME,
            "IsSandbox": False,
            "OrganizationType": "Enterprise Edition",
            "DefaultLocaleSidKey": "en_US",
            "DefaultCurrencyIsoCode": "USD",
        },
        record_id=ORG_ID,
        created=at,
    )


def _demo(backend: SalesforceBackend, company: DemoCompany, now: datetime) -> None:
    setup = _at(company.today - timedelta(days=365), 10, now)
    entries: dict[tuple[str, str], str] = {}
    n_entry = 0
    for product in company.products:
        product_id = backend.insert(
            "Product2",
            {
                "Name": product.name,
                "ProductCode": product.code,
                "Family": product.family,
                "IsActive": True,
                "Description": product.name,
            },
            record_id=company.sf_id(product.code),
            created=setup,
        )
        for currency in ACTIVE_CURRENCIES:
            n_entry += 1
            entries[(product.code, currency)] = backend.insert(
                "PricebookEntry",
                {
                    "Pricebook2Id": STANDARD_PRICEBOOK_ID,
                    "Product2Id": product_id,
                    "UnitPrice": product.unit_price,
                    "IsActive": True,
                    "CurrencyIsoCode": currency,
                },
                record_id=salesforce_id("PricebookEntry", n_entry),
                created=setup,
            )

    for n, account in enumerate(company.accounts, start=1):
        currency = company.realm(account.realm_key).currency
        owner = company.sf_id(account.owner_key)
        account_id = backend.insert(
            "Account",
            {
                "Name": account.name,
                "Website": account.website,
                "Phone": account.phone,
                "Industry": account.industry,
                "Type": "Customer",
                "BillingStreet": account.billing_street,
                "BillingCity": account.billing_city,
                "BillingState": account.billing_state,
                "BillingPostalCode": account.billing_postal_code,
                "BillingCountry": account.billing_country,
                "Billing_Email__c": account.billing_email,
                "OwnerId": owner,
                "CurrencyIsoCode": currency,
            },
            record_id=company.sf_id(account.key),
            created=setup,
        )
        backend.insert(
            "Contact",
            {
                "AccountId": account_id,
                "FirstName": account.contact_first,
                "LastName": account.contact_last,
                "Email": account.billing_email,
                "Phone": account.phone,
                "Title": "Accounts Payable",
                "OwnerId": owner,
                "CurrencyIsoCode": currency,
            },
            record_id=salesforce_id("Contact", n),
            created=setup,
        )

    n_line = 0
    for opp in company.opportunities:
        realm = company.realm(opp.realm_key)
        created = _at(min(opp.close_date, company.today) - timedelta(days=30), 9, now)
        closed = opp.stage.startswith("Closed")
        modified = max(
            _at(opp.close_date if closed else company.today - timedelta(days=2), 16, now), created
        )
        opp_id = backend.insert(
            "Opportunity",
            {
                "Name": opp.name,
                "AccountId": company.sf_id(opp.account_key),
                "OwnerId": company.sf_id(opp.owner_key),
                "RecordTypeId": record_type_id(realm.record_type),
                "StageName": opp.stage,
                "CloseDate": opp.close_date,
                "CurrencyIsoCode": realm.currency,
                "Pricebook2Id": STANDARD_PRICEBOOK_ID,
                "Payment_Terms__c": opp.payment_terms,
                "Description": opp.description or None,
            },
            record_id=company.sf_id(opp.key),
            created=created,
            modified=modified,
        )
        for sort_order, line in enumerate(opp.lines, start=1):
            n_line += 1
            backend.insert(
                "OpportunityLineItem",
                {
                    "OpportunityId": opp_id,
                    "PricebookEntryId": entries[(line.product_code, realm.currency)],
                    "Quantity": Decimal(line.quantity),
                    "UnitPrice": line.unit_price,
                    "Discount": line.discount_pct or None,
                    "ServiceDate": opp.close_date,
                    "SortOrder": sort_order,
                },
                record_id=salesforce_id("OpportunityLineItem", n_line),
                created=created,
            )
        backend.set_modified(opp_id, modified)

    for n, file in enumerate(company.files, start=1):
        opp = next(o for o in company.opportunities if o.key == file.opportunity_key)
        backend.insert(
            "ContentVersion",
            {
                "Title": file.title,
                "PathOnClient": file.path_on_client,
                "VersionData": file.content,
                "FirstPublishLocationId": company.sf_id(file.opportunity_key),
                "OwnerId": company.sf_id(opp.owner_key),
            },
            record_id=salesforce_id("ContentVersion", n),
            created=_at(file.created, 11, now),
        )

    for contract in company.contracts:
        realm = company.realm(contract.realm_key)
        renewal = contract.renewal_lines[0]
        backend.insert(
            "Contract",
            {
                "AccountId": company.sf_id(contract.account_key),
                "OwnerId": company.sf_id(contract.owner_key),
                "Status": contract.status,
                "StartDate": contract.start_date,
                "ContractTerm": contract.term_months,
                "Renewal_Product__c": company.sf_id(renewal.product_code),
                "Renewal_Quantity__c": Decimal(renewal.quantity),
                "Renewal_Unit_Price__c": renewal.unit_price,
                "Last_Invoice_Date__c": contract.start_date,
                "Auto_Renew__c": True,
                "CurrencyIsoCode": realm.currency,
                "Description": f"Annual platform subscription, renews {contract.renewal_date}",
            },
            record_id=company.sf_id(contract.key),
            created=setup,
        )
