"""Names, lists and reference data through python-quickbooks: queries, saves and their faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from quickbooks import QuickBooks
from quickbooks.exceptions import (
    ObjectNotFoundException,
    QuickbooksException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects import (
    Account,
    CompanyInfo,
    Customer,
    Employee,
    Item,
    PaymentMethod,
    Preferences,
    TaxCode,
    TaxRate,
    Term,
    Vendor,
)
from quickbooks.objects.base import EmailAddress, Ref
from quickbooks.objects.companycurrency import CompanyCurrency
from quickbooks.objects.exchangerate import ExchangeRate

from sandbox.demo_company import REALMS, build
from sandbox.quickbooks import QuickBooksEmulator

FaultCheck = Callable[[type[QuickbooksException], int], AbstractContextManager[Any]]


def new_customer(name: str, email: str | None = None) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    if email:
        customer.PrimaryEmailAddr = EmailAddress()
        customer.PrimaryEmailAddr.Address = email
    return customer


# ---- queries ---------------------------------------------------------------------------------
def test_all_orders_and_hides_inactive_customers(qb: QuickBooks) -> None:
    names = [c.DisplayName for c in Customer.all(order_by="DisplayName", qb=qb)]
    assert names == sorted(names, key=str.casefold)
    assert "Duff Brewing (inactive)" not in names and "Bob's Burgers" in names
    everyone = Customer.where("Active IN (true, false)", qb=qb)
    assert "Duff Brewing (inactive)" in [c.DisplayName for c in everyone]
    assert Customer.count(qb=qb) == len(names)
    assert Customer.count("Active = false", qb=qb) == 1


def test_filter_where_choose_and_paging(qb: QuickBooks) -> None:
    (bob,) = Customer.filter(DisplayName="Bob's Burgers", qb=qb)
    assert bob.PrimaryEmailAddr.Address == "linda@bobsburgers.example"
    initech = Customer.where("DisplayName LIKE 'Initech%'", order_by="DisplayName DESC", qb=qb)
    assert [c.DisplayName for c in initech] == ["Initech LLC", "Initech Holdings LLC"]
    chosen = Customer.choose([bob.Id, initech[0].Id], qb=qb)
    assert {c.Id for c in chosen} == {bob.Id, initech[0].Id}
    ids = [c.Id for c in Customer.all(order_by="Id", qb=qb)]
    page = Customer.all(order_by="Id", start_position=3, max_results=2, qb=qb)
    assert [c.Id for c in page] == ids[2:4]
    assert Customer.where("DisplayName = 'nobody'", qb=qb) == []
    custom = Customer.query(
        "select * from customer where Balance > '0' orderby Balance desc", qb=qb
    )
    assert [c.DisplayName for c in custom] == ["Bluth Company", "Los Pollos Hermanos"]


def test_query_response_shapes(qb: QuickBooks) -> None:
    answer = qb.query("SELECT Id, DisplayName FROM Customer ORDERBY Id MAXRESULTS 2")
    rows = answer["QueryResponse"]["Customer"]
    assert answer["QueryResponse"]["startPosition"] == 1
    assert answer["QueryResponse"]["maxResults"] == 2
    assert set(rows[0]) == {"Id", "DisplayName", "domain", "sparse"} and rows[0]["sparse"]
    assert qb.query("select * from customer where DisplayName = 'x'")["QueryResponse"] == {}
    assert qb.query("SELECT COUNT(*) FROM Vendor")["QueryResponse"] == {"totalCount": 2}
    assert "time" in answer
    assert qb.get(
        f"{qb.api_url}/company/{qb.company_id}/query",
        params={"query": "SELECT COUNT(*) FROM Employee"},
    )["QueryResponse"] == {"totalCount": 1}


def test_query_faults(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(ValidationException, 4000):
        Customer.where("DisplayName = 'a' OR DisplayName = 'b'", qb=qb)
    with expect_fault(ValidationException, 4001):
        Customer.where("Notes = 'x'", qb=qb)  # Notes is not filterable in QuickBooks either
    with expect_fault(ValidationException, 4001):
        qb.query("SELECT * FROM Customer MAXRESULTS 1001")
    with expect_fault(ValidationException, 4001):
        qb.query("SELECT * FROM Spaceship")


# ---- customers -------------------------------------------------------------------------------
def test_demo_customers_carry_salesforce_ids(
    qb: QuickBooks, qb_eu: QuickBooks, qbo_emulator: QuickBooksEmulator
) -> None:
    demo = build(qbo_emulator.backend.today())
    (wayne,) = Customer.filter(DisplayName="Wayne Ent.", qb=qb)
    assert wayne.Notes == f"Salesforce Account Id: {demo.sf_id('wayne')}"
    assert wayne.CurrencyRef.value == "USD"
    (muller,) = Customer.filter(DisplayName="Müller und Söhne", qb=qb_eu)
    assert muller.Notes == f"Salesforce Account Id: {demo.sf_id('muller')}"
    assert muller.CurrencyRef.value == "EUR"
    (bluth,) = Customer.filter(DisplayName="Bluth Company", qb=qb)
    assert float(bluth.Balance) == 3000.0  # a partly paid historical invoice


def test_create_read_update_customer(qb: QuickBooks) -> None:
    created = new_customer("Sterling Cooper", "ap@sterling.example").save(qb=qb)
    assert (created.SyncToken, created.Active, created.FullyQualifiedName) == (
        "0",
        True,
        "Sterling Cooper",
    )
    fetched = Customer.get(created.Id, qb=qb)
    fetched.Notes = "Salesforce Account Id: 0015g00000000XYZAA"
    updated = fetched.save(qb=qb)
    assert updated.SyncToken == "1" and updated.Notes.startswith("Salesforce")
    assert updated.MetaData["CreateTime"] == created.MetaData["CreateTime"]


def test_sparse_update_changes_only_sent_fields_full_update_replaces(qb: QuickBooks) -> None:
    customer = new_customer("Sparse Co", "a@sparse.example").save(qb=qb)
    url = f"{qb.api_url}/company/{qb.company_id}/customer"
    sparse = {"Id": customer.Id, "SyncToken": "0", "sparse": True, "Notes": "hello"}
    after = qb.post(url, json.dumps(sparse))["Customer"]
    assert after["Notes"] == "hello" and after["PrimaryEmailAddr"]["Address"] == "a@sparse.example"
    full = {"Id": customer.Id, "SyncToken": after["SyncToken"], "DisplayName": "Sparse Co"}
    replaced = qb.post(url, json.dumps(full))["Customer"]
    assert "Notes" not in replaced and "PrimaryEmailAddr" not in replaced


def test_customer_named_like_a_vendor_is_6240(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(QuickbooksException, 6240):
        new_customer("stark industries ").save(qb=qb)
    with expect_fault(QuickbooksException, 6240):
        new_customer("Ava Chen").save(qb=qb)  # an employee
    vendor = Vendor()
    vendor.DisplayName = "Bob's Burgers"
    with expect_fault(QuickbooksException, 6240):
        vendor.save(qb=qb)


def test_detail_of_duplicate_name(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(QuickbooksException, 6240) as caught:
        new_customer("Stark Industries").save(qb=qb)
    assert caught.value.message == "Duplicate Name Exists Error"
    assert "Another customer, vendor or employee is already using this name" in (
        caught.value.detail
    )


def test_stale_sync_token_is_5010(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    customer = new_customer("Stale Co").save(qb=qb)
    first = Customer.get(customer.Id, qb=qb)
    second = Customer.get(customer.Id, qb=qb)
    first.Notes = "first"
    first.save(qb=qb)
    second.Notes = "second"
    with expect_fault(QuickbooksException, 5010):
        second.save(qb=qb)


def test_unknown_id_is_610(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(ObjectNotFoundException, 610):
        Customer.get(999999, qb=qb)
    customer = Customer()
    customer.Id, customer.SyncToken, customer.DisplayName = "999999", 0, "Ghost"
    with expect_fault(ObjectNotFoundException, 610):
        customer.save(qb=qb)


def test_customer_without_any_name_is_6080(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(QuickbooksException, 6080):
        Customer().save(qb=qb)
    named = Customer()
    named.GivenName, named.FamilyName = "Peggy", "Olson"
    assert named.save(qb=qb).DisplayName == "Peggy Olson"


def test_vendors_and_employees_are_readable(qb: QuickBooks) -> None:
    assert {v.DisplayName for v in Vendor.all(qb=qb)} == {"Stark Industries", "Amazon Web Services"}
    (ava,) = Employee.all(qb=qb)
    assert (ava.GivenName, ava.FamilyName) == ("Ava", "Chen")


# ---- items and reference lists ---------------------------------------------------------------
def test_items_seeded_in_both_realms(qb: QuickBooks, qb_eu: QuickBooks) -> None:
    us = {i.Name: i for i in Item.all(qb=qb)}
    eu = {i.Name: i for i in Item.all(qb=qb_eu)}
    mapped = {"Platform Subscription", "Additional Seat", "Implementation", "Training",
              "Premium Support", "Data Connector"}  # fmt: skip
    assert mapped <= set(us) and mapped <= set(eu)
    assert us["Data Connector"].Type == "NonInventory" and us["Training"].Type == "Service"
    assert float(us["Platform Subscription"].UnitPrice) == 12000.0
    assert us["Platform Subscription"].Sku == "PLAT-ANNUAL"
    assert Item.where("Sku = 'IMPL-STD'", qb=qb)[0].Name == "Implementation"


def test_item_rules(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    income = Account.filter(Name="Services", qb=qb)[0]
    item = Item()
    item.Name, item.Type = "Consulting Hour", "Service"
    with expect_fault(ValidationException, 2020):
        item.save(qb=qb)  # no IncomeAccountRef
    item.IncomeAccountRef = income.to_ref()
    item.UnitPrice = 150
    saved = item.save(qb=qb)
    assert saved.Name == "Consulting Hour" and float(saved.UnitPrice) == 150.0
    duplicate = Item()
    duplicate.Name, duplicate.IncomeAccountRef = "consulting hour", income.to_ref()
    with expect_fault(QuickbooksException, 6240):
        duplicate.save(qb=qb)
    stock = Item()
    stock.Name, stock.Type, stock.IncomeAccountRef = "Widget", "Inventory", income.to_ref()
    with expect_fault(ValidationException, 2020):
        stock.save(qb=qb)  # inventory needs an asset account and a start date
    missing = Ref()
    missing.value = "424242"
    stock.IncomeAccountRef = missing
    with expect_fault(ValidationException, 2500):
        stock.save(qb=qb)


def test_reference_entities_are_creatable(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    account = Account()
    account.Name, account.AccountType = "Consulting Income", "Income"
    saved = account.save(qb=qb)
    assert (saved.Classification, saved.AccountSubType) == ("Revenue", "ServiceFeeIncome")
    nameless = Account()
    nameless.Name = "No Type"
    with expect_fault(QuickbooksException, 6010):
        nameless.save(qb=qb)
    method = PaymentMethod()
    method.Name, method.Type = "Wire", "NON_CREDIT_CARD"
    assert method.save(qb=qb).Name == "Wire"
    term = Term()
    term.Name, term.DueDays = "Net 45", 45
    assert term.save(qb=qb).Type == "STANDARD"
    assert {t.Name for t in Term.all(qb=qb)} == {
        "Net 15", "Net 30", "Net 60", "Due on receipt", "Net 45"
    }  # fmt: skip
    assert {m.Name for m in PaymentMethod.all(qb=qb)} >= {
        "Cash",
        "Check",
        "Visa",
        "MasterCard",
        "ACH",
    }


def test_chart_of_accounts(qb: QuickBooks) -> None:
    names = {a.Name for a in Account.all(qb=qb, max_results=1000)}
    assert {"Services", "Sales of Product Income", "Accounts Receivable (A/R)",
            "Undeposited Funds"} <= names  # fmt: skip
    (ar,) = Account.where("AccountType = 'Accounts Receivable'", qb=qb)
    assert ar.Classification == "Asset"


def test_tax_codes_are_read_only(
    qb: QuickBooks, qb_eu: QuickBooks, expect_fault: FaultCheck
) -> None:
    assert {c.Name for c in TaxCode.all(qb=qb)} == {"TAX", "NON", "California"}
    assert {c.Id for c in TaxCode.all(qb=qb_eu)} == {"3", "4", "5", "6"}
    assert float(TaxRate.get(1, qb=qb).RateValue) == 8.25
    assert float(TaxRate.get(1, qb=qb_eu).RateValue) == 21.0
    with expect_fault(UnsupportedException, 500):
        qb.create_object("TaxCode", json.dumps({"Name": "Mine"}))


def test_company_info_preferences_and_currencies(qb: QuickBooks, qb_eu: QuickBooks) -> None:
    info = CompanyInfo.get(qb.company_id, qb=qb)
    assert (info.CompanyName, info.Country) == ("Acme Analytics Inc.", "US")
    prefs = Preferences.get(qb=qb_eu)
    assert prefs.CurrencyPrefs.HomeCurrency.value == "EUR"
    assert prefs.CurrencyPrefs.MultiCurrencyEnabled is True
    assert Preferences.get(qb=qb).CurrencyPrefs.HomeCurrency.value == "USD"
    assert {c.Code for c in CompanyCurrency.all(qb=qb)} == {"EUR", "GBP", "CAD"}
    (eur,) = ExchangeRate.where("SourceCurrencyCode = 'EUR'", qb=qb)
    assert (eur.TargetCurrencyCode, float(eur.Rate)) == ("USD", 1.08)
    rate = qb_eu.get(
        f"{qb_eu.api_url}/company/{qb_eu.company_id}/exchangerate",
        params={"sourcecurrencycode": "USD", "asofdate": "2026-01-15"},
    )
    assert rate["ExchangeRate"]["TargetCurrencyCode"] == "EUR"
    assert rate["ExchangeRate"]["AsOfDate"] == "2026-01-15"


def test_preferences_sparse_update(qb: QuickBooks) -> None:
    url = f"{qb.api_url}/company/{qb.company_id}/preferences"
    before = qb.get(url)["Preferences"]
    body = {
        "Id": before["Id"],
        "SyncToken": before["SyncToken"],
        "sparse": True,
        "SalesFormsPrefs": {"CustomTxnNumbers": True},
    }
    after = qb.post(url, json.dumps(body))["Preferences"]
    assert after["SyncToken"] == "1"
    assert after["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    assert after["SalesFormsPrefs"]["DefaultTerms"]["name"] == "Net 30"  # deep merge


def test_every_realm_of_the_seed_is_served(qbo_emulator: QuickBooksEmulator) -> None:
    assert set(qbo_emulator.backend.realm_ids()) == {r.realm_id for r in REALMS}
