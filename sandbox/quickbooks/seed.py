"""Seed profiles of the QuickBooks emulator, from ``sandbox.demo_company``.

- ``empty``: both companies with what every QuickBooks company has: company info, preferences
  (multicurrency on; home currency USD / EUR), a chart of accounts, payment methods, the terms
  of the demo company, tax codes and rates (``TAX``/``NON`` + California in the US company,
  numeric VAT codes in the EU one), the other currencies, and the default "Services" item.
- ``demo``: adds an item per mapped product in both companies (priced in each company's
  currency), the existing customers (those linked to a Salesforce account carry
  ``Salesforce Account Id: <Id>`` in Notes), the vendors and employees whose names share the
  customer namespace, and a little unrelated history (invoices and payments of Bluth Company,
  Los Pollos Hermanos, Bob's Burgers and Fjord Fisk AS, all older than 30 days) so aging and
  reconciliation have something to chew on. No invoice of any Salesforce deal is seeded: the
  flows create those.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sandbox.demo_company import REALMS, DemoCompany, Realm, build
from sandbox.quickbooks.exceptions import COMPANY_TZ
from sandbox.quickbooks.models import (
    CURRENCY_NAMES,
    USD_PER_UNIT,
    Company,
    QuickBooksBackend,
    RealmInfo,
)

# (name, AccountType, AccountSubType)
CHART_OF_ACCOUNTS = (
    ("Checking", "Bank", "Checking"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable"),
    ("Sales Tax Payable", "Other Current Liability", "GlobalTaxPayable"),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
    ("Services", "Income", "ServiceFeeIncome"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Discounts given", "Income", "DiscountsRefundsGiven"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Software & Hosting", "Expense", "OtherMiscellaneousServiceCost"),
)
CLASSIFICATION = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Accounts Payable": "Liability",
    "Other Current Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
}
PAYMENT_METHODS = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("ACH", "NON_CREDIT_CARD"),
)
TERM_DAYS = {"Net 15": 15, "Net 30": 30, "Net 60": 60, "Due on receipt": 0}
US_SALES_TAX = Decimal("8.25")
# EU company (Netherlands): (tax code id, name, rate id, rate name, percent)
EU_VAT = (
    ("3", "21% NL", "1", "NL VAT 21%", Decimal("21")),
    ("4", "9% NL", "2", "NL VAT 9%", Decimal("9")),
    ("5", "0% EC Services", "3", "EC Services 0%", Decimal("0")),
    ("6", "Exempt", "4", "Exempt 0%", Decimal("0")),
)
ADDRESSES = {
    "us": {
        "Line1": "500 Market Street",
        "City": "San Francisco",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94105",
        "Country": "US",
    },
    "eu": {
        "Line1": "Herengracht 1",
        "City": "Amsterdam",
        "CountrySubDivisionCode": "NH",
        "PostalCode": "1015 BA",
        "Country": "NL",
    },
}


def seed(backend: QuickBooksBackend, profile: str) -> None:
    """Load ``profile`` ("demo" or "empty") into an emptied backend."""
    demo = build(backend.today())
    epoch = backend.now() - timedelta(days=400)
    for realm in REALMS:
        company = backend.add_company(
            RealmInfo(
                realm.key,
                realm.realm_id,
                realm.company_name,
                realm.currency,
                realm.country,
                realm.email,
            )
        )
        _reference(backend, company, realm, demo, epoch)
        if profile == "demo":
            _demo(backend, company, realm, demo, epoch)


# ---- what every company has ------------------------------------------------------------------
def _reference(
    backend: QuickBooksBackend, company: Company, realm: Realm, demo: DemoCompany, when: datetime
) -> None:
    put = backend.put
    put(company, "CompanyInfo", _company_info(realm), when)
    for name, kind, subtype in CHART_OF_ACCOUNTS:
        put(
            company,
            "Account",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "AccountType": kind,
                "AccountSubType": subtype,
                "Classification": CLASSIFICATION[kind],
                "Active": True,
                "SubAccount": False,
                "CurrentBalance": Decimal("0"),
                "CurrentBalanceWithSubAccounts": Decimal("0"),
                "CurrencyRef": {"value": realm.currency, "name": CURRENCY_NAMES[realm.currency]},
            },
            when,
        )
    for name, kind in PAYMENT_METHODS:
        put(company, "PaymentMethod", {"Name": name, "Type": kind, "Active": True}, when)
    for name in demo.payment_terms:
        put(
            company,
            "Term",
            {"Name": name, "Active": True, "Type": "STANDARD", "DueDays": TERM_DAYS[name]},
            when,
        )
    _taxes(backend, company, realm, when)
    for number, code in enumerate((c for c in USD_PER_UNIT if c != realm.currency), start=1):
        put(
            company,
            "CompanyCurrency",
            {"Id": str(number), "Code": code, "Name": CURRENCY_NAMES[code], "Active": True},
            when,
        )
    put(company, "Preferences", _preferences(company, realm), when)
    services = company.by_name("Account", "Services")
    assert services is not None
    put(
        company,
        "Item",
        {
            "Name": "Services",
            "FullyQualifiedName": "Services",
            "Type": "Service",
            "Active": True,
            "Taxable": False,
            "UnitPrice": Decimal("0"),
            "IncomeAccountRef": {"value": services["Id"], "name": "Services"},
            "TrackQtyOnHand": False,
            "SubItem": False,
        },
        when,
    )


def _company_info(realm: Realm) -> dict[str, Any]:
    address = ADDRESSES[realm.key]
    return {
        "Id": "1",
        "CompanyName": realm.company_name,
        "LegalName": realm.company_name,
        "CompanyAddr": {"Id": "1", **address},
        "CustomerCommunicationAddr": {"Id": "1", **address},
        "LegalAddr": {"Id": "1", **address},
        "CustomerCommunicationEmailAddr": {"Address": realm.email},
        "PrimaryPhone": {
            "FreeFormNumber": "+1 415 555 0142" if realm.key == "us" else "+31 20 555 0100"
        },
        "CompanyStartDate": "2019-01-01",
        "FiscalYearStartMonth": "January",
        "Country": realm.country,
        "Email": {"Address": realm.email},
        "WebAddr": {"URI": "https://www.acme-analytics.example"},
        "SupportedLanguages": "en",
        "NameValue": [
            {"Name": "NeoEnabled", "Value": "true"},
            {"Name": "IndustryType", "Value": "Software Publishers"},
            {"Name": "CompanyType", "Value": "Corporation"},
            {"Name": "SubscriptionStatus", "Value": "PAID"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Advanced"},
            {"Name": "PayrollFeature", "Value": "false"},
            {"Name": "AccountantFeature", "Value": "false"},
            {"Name": "IsQbdtMigrated", "Value": "false"},
        ],
    }


def _taxes(backend: QuickBooksBackend, company: Company, realm: Realm, when: datetime) -> None:
    put = backend.put

    def rate(rate_id: str, name: str, percent: Decimal) -> None:
        put(
            company,
            "TaxRate",
            {
                "Id": rate_id,
                "Name": name,
                "Description": name,
                "Active": True,
                "RateValue": percent,
                "AgencyRef": {"value": "1"},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
                "EffectiveTaxRate": [
                    {"RateValue": percent, "EffectiveDate": "2019-01-01T00:00:00-08:00"}
                ],
            },
            when,
        )

    def code(code_id: str, name: str, rate_ids: list[str], taxable: bool, group: bool) -> None:
        put(
            company,
            "TaxCode",
            {
                "Id": code_id,
                "Name": name,
                "Description": name,
                "Active": True,
                "Hidden": False,
                "Taxable": taxable,
                "TaxGroup": group,
                "SalesTaxRateList": {
                    "TaxRateDetail": [
                        {
                            "TaxRateRef": {"value": r, "name": company.table("TaxRate")[r]["Name"]},
                            "TaxTypeApplicable": "TaxOnAmount",
                            "TaxOrder": 0,
                        }
                        for r in rate_ids
                    ]
                },
                "PurchaseTaxRateList": {"TaxRateDetail": []},
            },
            when,
        )

    if realm.country == "US":
        rate("1", "California", US_SALES_TAX)
        code("TAX", "TAX", [], taxable=True, group=False)
        code("NON", "NON", [], taxable=False, group=False)
        code("2", "California", ["1"], taxable=True, group=True)
    else:
        for code_id, name, rate_id, rate_name, percent in EU_VAT:
            rate(rate_id, rate_name, percent)
            code(code_id, name, [rate_id], taxable=True, group=False)


def _preferences(company: Company, realm: Realm) -> dict[str, Any]:
    net30 = company.by_name("Term", "Net 30")
    assert net30 is not None
    us = realm.country == "US"
    return {
        "Id": "1",
        "AccountingInfoPrefs": {
            "FirstMonthOfFiscalYear": "January",
            "UseAccountNumbers": False,
            "TaxYearMonth": "January",
            "ClassTrackingPerTxn": False,
            "TrackDepartments": False,
            "CustomerTerminology": "Customers",
            "BookCloseDate": "",
        },
        "ProductAndServicesPrefs": {
            "ForSales": True,
            "ForPurchase": True,
            "QuantityWithPriceAndRate": True,
            "QuantityOnHand": True,
        },
        "SalesFormsPrefs": {
            "CustomTxnNumbers": False,
            "AllowDeposit": False,
            "AllowDiscount": True,
            "DefaultDiscountAccount": "Discounts given",
            "AllowEstimates": True,
            "AllowShipping": False,
            "AllowServiceDate": True,
            "AutoApplyCredit": True,
            "AutoApplyPayments": True,
            "DefaultTerms": {"value": net30["Id"], "name": "Net 30"},
            "ETransactionEnabledStatus": "NotApplicable",
            "EmailCopyToCompany": False,
            "IPNSupportEnabled": False,
            "UsingPriceLevels": False,
            "UsingProgressInvoicing": False,
        },
        "EmailMessagesPrefs": {
            "InvoiceMessage": {
                "Subject": "Invoice [Invoice No.] from " + realm.company_name,
                "Message": "Dear [Name],\n\nYour invoice is attached. Thank you for your "
                "business.\n\n" + realm.company_name,
            }
        },
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": False, "BillableExpenseTracking": False},
        "TimeTrackingPrefs": {"UseServices": True, "BillCustomers": False},
        "TaxPrefs": {
            "UsingSalesTax": True,
            "PartnerTaxEnabled": True,
            **({"TaxGroupCodeRef": {"value": "2"}} if us else {}),
        },
        "CurrencyPrefs": {
            "MultiCurrencyEnabled": True,
            "HomeCurrency": {"value": realm.currency},
        },
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {
            "NameValue": [
                {"Name": "SalesFormsPrefs.DefaultCustomerMessage", "Value": "Thank you!"},
                {"Name": "DTXCopyMemo", "Value": "false"},
            ]
        },
    }


# ---- the demo company ------------------------------------------------------------------------
def _demo(
    backend: QuickBooksBackend, company: Company, realm: Realm, demo: DemoCompany, when: datetime
) -> None:
    create = backend.seed_create
    services = company.by_name("Account", "Services")
    product_income = company.by_name("Account", "Sales of Product Income")
    assert services is not None and product_income is not None
    for product in demo.products:
        if product.qbo_item_name is None:
            continue
        income = services if product.qbo_item_type == "Service" else product_income
        create(
            company,
            "Item",
            {
                "Name": product.qbo_item_name,
                "Description": product.name,
                "Sku": product.code,
                "Type": product.qbo_item_type,
                "UnitPrice": product.unit_price,  # the same figure in each company's currency
                "IncomeAccountRef": {"value": income["Id"]},
            },
            when,
        )
    for customer in demo.qbo_customers:
        if customer.realm_key != realm.key:
            continue
        data: dict[str, Any] = {
            "DisplayName": customer.display_name,
            "CompanyName": customer.company_name,
            "CurrencyRef": {"value": realm.currency},
            "Active": customer.active,
        }
        if customer.email:
            data["PrimaryEmailAddr"] = {"Address": customer.email}
        if customer.account_key:
            data["Notes"] = f"Salesforce Account Id: {demo.sf_id(customer.account_key)}"
            account = demo.account(customer.account_key)
            if account.billing_street:
                data["BillAddr"] = {
                    "Line1": account.billing_street,
                    "City": account.billing_city,
                    "CountrySubDivisionCode": account.billing_state,
                    "PostalCode": account.billing_postal_code,
                    "Country": account.billing_country,
                }
        create(company, "Customer", data, when)
    for name in demo.qbo_names:
        if name.realm_key != realm.key:
            continue
        data = {"DisplayName": name.display_name}
        if name.kind == "Employee":
            given, _, family = name.display_name.partition(" ")
            data.update({"GivenName": given, "FamilyName": family})
        else:
            data["CompanyName"] = name.display_name
        create(company, name.kind, data, when)
    _history(backend, company, realm, demo)


# (realm key, customer, item, qty, invoice age in days, [(payment age in days, amount)])
HISTORY: tuple[tuple[str, str, str, int, int, tuple[tuple[int, Decimal], ...]], ...] = (
    ("us", "Bluth Company", "Implementation", 1, 75, ((40, Decimal("2000.00")),)),
    ("us", "Los Pollos Hermanos", "Training", 2, 100, ()),
    ("us", "Bob's Burgers", "Premium Support", 1, 60, ((35, Decimal("3000.00")),)),
    ("eu", "Fjord Fisk AS", "Training", 1, 50, ()),
)


def _history(backend: QuickBooksBackend, company: Company, realm: Realm, demo: DemoCompany) -> None:
    for realm_key, customer_name, item_name, qty, age, payments in HISTORY:
        if realm_key != realm.key:
            continue
        customer = company.by_name("Customer", customer_name)
        item = company.by_name("Item", item_name)
        assert customer is not None and item is not None
        day = demo.today - timedelta(days=age)
        invoice = backend.seed_create(
            company,
            "Invoice",
            {
                "CustomerRef": {"value": customer["Id"]},
                "TxnDate": day.isoformat(),
                "Line": [
                    {
                        "DetailType": "SalesItemLineDetail",
                        "Amount": item["UnitPrice"] * qty,
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item["Id"]},
                            "Qty": qty,
                            "UnitPrice": item["UnitPrice"],
                        },
                    }
                ],
            },
            _at(day),
        )
        for paid_age, amount in payments:
            paid_day = demo.today - timedelta(days=paid_age)
            backend.seed_create(
                company,
                "Payment",
                {
                    "CustomerRef": {"value": customer["Id"]},
                    "TxnDate": paid_day.isoformat(),
                    "TotalAmt": amount,
                    "PaymentRefNum": f"CHK-{invoice['DocNumber']}",
                    "PaymentMethodRef": {"value": _payment_method_id(company, "Check")},
                    "Line": [
                        {
                            "Amount": amount,
                            "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                        }
                    ],
                },
                _at(paid_day),
            )


def _at(day: Any) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=COMPANY_TZ)


def _payment_method_id(company: Company, name: str) -> str:
    method = company.by_name("PaymentMethod", name)
    assert method is not None
    return str(method["Id"])
